//! Inactivity rules: when a running node counts as idle, what counts as activity, and what
//! vetoes its stop. A node's `idle` table in the topology file (or the API's node input):
//!
//! ```toml
//! [node.idle]
//! after = "30m"                 # idle once no signal fired for this long
//! tcp_ports = [445, 22]         # established TCP connections to these ports (over SSH)
//! ssh_sessions = true           # interactive SSH sessions (with a terminal, over SSH)
//! cpu_percent = 5.0             # the container's or guest's CPU above this (% of one core)
//! net_kbps = 50.0               # its network traffic above this (kB/s, in and out)
//! reported = true               # its connector (a plugin's `measure`) reports it in use
//! watts_above = 25.0            # the power it draws above this (its `watts.meter`, or itself)
//! probe = { url = "http://jellyfin:8096/Sessions?activeWithinSeconds=60" }
//! veto_url = { url = "http://backup:8080/running", pointer = "/running" }
//! veto_command = "pgrep -x rsync"   # exit 0 keeps it on (the operator's file only)
//! ```
//!
//! Requests through WakeHub's proxy always count. An HTTP check (`probe`, `veto_url`) fires
//! on a 2xx answer whose body — or the value at its JSON `pointer` — is "something": a
//! non-empty array, object or string other than `0`/`false`, a non-zero number, `true`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The shortest idle time (a node stopped a minute after its last use is already eager).
pub const MIN_IDLE: Duration = Duration::from_secs(60);
/// The longest idle time.
pub const MAX_IDLE: Duration = Duration::from_secs(30 * 86_400);

/// An HTTP check: a URL asked with `GET`, and where in its JSON answer to look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// An `http` or `https` URL (shown to whoever may read the node: no secret in it).
    pub url: String,
    /// A JSON pointer (`/MediaContainer/size`) into the answer; the whole body without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

/// A node's inactivity rule.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleRule {
    /// Idle once no signal fired for this long.
    pub after: Duration,
    /// Established TCP connections to these local ports count (measured over SSH).
    pub tcp_ports: Vec<u16>,
    /// Interactive SSH sessions count (measured over SSH).
    pub ssh_sessions: bool,
    /// CPU use above this (percent of one core) counts.
    pub cpu_percent: Option<f64>,
    /// Network traffic above this (kilobytes per second, in plus out) counts.
    pub net_kbps: Option<f64>,
    /// The node's connector reporting it in use (a plugin's `measure`) counts.
    pub reported: bool,
    /// A power draw above this (watts) counts: read by the node's `watts.meter`, else by
    /// its own connector.
    pub watts_above: Option<f64>,
    /// An HTTP check that reports activity (a media server's active sessions).
    pub probe: Option<HttpCheck>,
    /// An HTTP check that, while it reports something, keeps the node on.
    pub veto_url: Option<HttpCheck>,
    /// A command run on the node over SSH; exit status 0 keeps it on.
    pub veto_command: Option<String>,
}

/// The file and JSON form of an [`IdleRule`] (durations as text).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdleText {
    after: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tcp_ports: Vec<u16>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    ssh_sessions: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cpu_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    net_kbps: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    reported: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    watts_above: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    probe: Option<HttpCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    veto_url: Option<HttpCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    veto_command: Option<String>,
}

impl IdleRule {
    /// A rule idle after `after` with no signal but requests through the proxy.
    pub fn after(after: Duration) -> IdleRule {
        IdleRule {
            after,
            tcp_ports: Vec::new(),
            ssh_sessions: false,
            cpu_percent: None,
            net_kbps: None,
            reported: false,
            watts_above: None,
            probe: None,
            veto_url: None,
            veto_command: None,
        }
    }

    /// Reads a rule from its file or JSON form, checked: every problem in one message.
    pub fn from_value<V: serde::Serialize>(value: &V) -> Result<IdleRule, String> {
        let json = serde_json::to_value(value).map_err(|e| e.to_string())?;
        let text: IdleText = serde_json::from_value(json).map_err(|e| e.to_string())?;
        let after = humantime::parse_duration(&text.after)
            .map_err(|e| format!("after: `{}` is not a duration such as \"30m\" ({e})", text.after))?;
        let rule = IdleRule {
            after,
            tcp_ports: text.tcp_ports,
            ssh_sessions: text.ssh_sessions,
            cpu_percent: text.cpu_percent,
            net_kbps: text.net_kbps,
            reported: text.reported,
            watts_above: text.watts_above,
            probe: text.probe,
            veto_url: text.veto_url,
            veto_command: text.veto_command,
        };
        rule.validate()?;
        Ok(rule)
    }

    /// The rule in its file and JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        let text = IdleText {
            after: humantime::format_duration(self.after).to_string(),
            tcp_ports: self.tcp_ports.clone(),
            ssh_sessions: self.ssh_sessions,
            cpu_percent: self.cpu_percent,
            net_kbps: self.net_kbps,
            reported: self.reported,
            watts_above: self.watts_above,
            probe: self.probe.clone(),
            veto_url: self.veto_url.clone(),
            veto_command: self.veto_command.clone(),
        };
        serde_json::to_value(text).unwrap_or_default()
    }

    /// Checks the rule's values: every problem found, joined.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !(MIN_IDLE..=MAX_IDLE).contains(&self.after) {
            problems.push("after: must be between 1m and 30days".to_owned());
        }
        if self.tcp_ports.contains(&0) || self.tcp_ports.len() > 16 {
            problems.push("tcp_ports: at most 16 ports, each 1 to 65535".to_owned());
        }
        let limits = [
            ("cpu_percent", self.cpu_percent, 100_000.0),
            ("net_kbps", self.net_kbps, 1e9),
            ("watts_above", self.watts_above, 100_000.0),
        ];
        for (name, v, max) in limits {
            if v.is_some_and(|v| !(v.is_finite() && v > 0.0 && v <= max)) {
                problems.push(format!("{name}: must be a number above 0 and at most {max}"));
            }
        }
        for (name, check) in [("probe", &self.probe), ("veto_url", &self.veto_url)] {
            let Some(check) = check else { continue };
            if let Err(e) = super::validate_url(&check.url) {
                problems.push(format!("{name}.url: {e}"));
            }
            if check.pointer.as_ref().is_some_and(|p| !(p.is_empty() || p.starts_with('/')) || p.len() > 512) {
                problems.push(format!("{name}.pointer: a JSON pointer starts with `/` (such as `/sessions`)"));
            }
        }
        if let Some(c) = &self.veto_command
            && (c.trim().is_empty() || c.len() > 4096 || c.contains('\0'))
        {
            problems.push("veto_command: a command line of 1 to 4096 bytes".to_owned());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }

    /// Whether measuring it needs a shell on the node (over SSH).
    pub fn needs_shell(&self) -> bool {
        !self.tcp_ports.is_empty() || self.ssh_sessions || self.veto_command.is_some()
    }

    /// Whether measuring it needs its own connector's load figures (CPU, network, in use).
    pub fn needs_load(&self) -> bool {
        self.cpu_percent.is_some() || self.net_kbps.is_some() || self.reported
    }
}

/// Whether an HTTP check's answer reports something: the value at `pointer` (or the whole
/// body) read as JSON, else as text. See the module's documentation.
pub fn reports_something(body: &str, pointer: Option<&str>) -> bool {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => {
            let v = match pointer {
                Some(p) => match v.pointer(p) {
                    Some(v) => v.clone(),
                    None => return false,
                },
                None => v,
            };
            truthy(&v)
        }
        Err(_) if pointer.is_some() => false,
        Err(_) => truthy(&serde_json::Value::String(body.trim().to_owned())),
    }
}

fn truthy(v: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match v {
        J::Null => false,
        J::Bool(b) => *b,
        J::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        J::String(s) => !matches!(s.trim(), "" | "0" | "false" | "no"),
        J::Array(a) => !a.is_empty(),
        J::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_that_report_something() {
        assert!(reports_something("[{\"id\":1}]", None));
        assert!(!reports_something("[]", None));
        assert!(reports_something("{\"MediaContainer\":{\"size\":2}}", Some("/MediaContainer/size")));
        assert!(!reports_something("{\"MediaContainer\":{\"size\":0}}", Some("/MediaContainer/size")));
        assert!(!reports_something("{\"other\":1}", Some("/MediaContainer/size")));
        assert!(reports_something("yes\n", None));
        assert!(!reports_something("0\n", None));
        assert!(!reports_something("", None));
        assert!(!reports_something("<xml/>", Some("/a")));
    }

    #[test]
    fn rules_read_back_and_are_checked() {
        let rule = IdleRule::from_value(&serde_json::json!({
            "after": "30m", "tcp_ports": [445], "cpu_percent": 5.0,
            "probe": {"url": "http://jf:8096/Sessions", "pointer": "/0"}
        }))
        .unwrap();
        assert_eq!(rule.after, Duration::from_secs(1800));
        assert_eq!(IdleRule::from_value(&rule.to_json()).unwrap(), rule);
        let err = IdleRule::from_value(&serde_json::json!({"after": "10s", "tcp_ports": [0], "cpu_percent": -1.0}))
            .unwrap_err();
        assert!(err.contains("after:") && err.contains("tcp_ports") && err.contains("cpu_percent"), "{err}");
        let err = IdleRule::from_value(&serde_json::json!({"after": "1h", "cpus": 3})).unwrap_err();
        assert!(err.contains("unknown field `cpus`"), "{err}");
        let err = IdleRule::from_value(&serde_json::json!({"after": "1h", "probe": {"url": "ftp://x"}})).unwrap_err();
        assert!(err.contains("probe.url"), "{err}");
    }
}
