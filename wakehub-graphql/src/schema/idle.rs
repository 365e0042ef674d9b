//! The lab running itself, in the API: a node's inactivity rule (`idle`, read and written
//! with the node), its `idleStatus` — the countdown to its stop and what keeps it on — and
//! how the proxy fronts it (`proxy`).

use async_graphql::{InputObject, SimpleObject};
use wakehub_core::engine::{IdleStatus, Reading};
use wakehub_core::model::{HttpCheck, IdleRule};

use super::shared::time;

/// An HTTP check: a URL asked with `GET`, and where to look in its JSON answer.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(name = "HttpCheck", input_name = "HttpCheckInput")]
pub struct GqlHttpCheck {
    /// An `http` or `https` URL (shown to whoever may read the node: no secret in it).
    pub url: String,
    /// A JSON pointer (`/MediaContainer/size`) into the answer; the whole body without it.
    pub pointer: Option<String>,
}

impl From<&HttpCheck> for GqlHttpCheck {
    fn from(c: &HttpCheck) -> Self {
        GqlHttpCheck { url: c.url.clone(), pointer: c.pointer.clone() }
    }
}

/// When a node counts as idle and is stopped. Requests through WakeHub's proxy always count
/// as activity; an HTTP check reports activity (or vetoes) on a 2xx answer that is
/// "something" (a non-empty list, a non-zero number, `true`…).
#[derive(SimpleObject)]
#[graphql(name = "IdleRule")]
pub struct GqlIdleRule {
    /// Idle once no signal fired for this long (`"30m"`).
    pub after: String,
    /// Established TCP connections to these ports count (measured over SSH).
    pub tcp_ports: Vec<i32>,
    /// Interactive SSH sessions count (measured over SSH).
    pub ssh_sessions: bool,
    /// CPU use above this (percent of one core) counts.
    pub cpu_percent: Option<f64>,
    /// Network traffic above this (kB/s, in plus out) counts.
    pub net_kbps: Option<f64>,
    /// The node's connector reporting it in use (a plugin's `measure`) counts.
    pub reported: bool,
    /// A power draw above this (watts) counts: read by the node's meter, else by its own
    /// connector.
    pub watts_above: Option<f64>,
    /// An HTTP check that reports activity (a media server's sessions).
    pub probe: Option<GqlHttpCheck>,
    /// An HTTP check that keeps the node on while it reports something.
    pub veto_url: Option<GqlHttpCheck>,
    /// A command run on the node over SSH whose exit status 0 keeps it on (set in the
    /// operator's topology file).
    pub veto_command: Option<String>,
}

impl From<&IdleRule> for GqlIdleRule {
    fn from(r: &IdleRule) -> Self {
        GqlIdleRule {
            after: humantime::format_duration(r.after).to_string(),
            tcp_ports: r.tcp_ports.iter().map(|p| i32::from(*p)).collect(),
            ssh_sessions: r.ssh_sessions,
            cpu_percent: r.cpu_percent,
            net_kbps: r.net_kbps,
            reported: r.reported,
            watts_above: r.watts_above,
            probe: r.probe.as_ref().map(Into::into),
            veto_url: r.veto_url.as_ref().map(Into::into),
            veto_command: r.veto_command.clone(),
        }
    }
}

/// An inactivity rule as given with a node (the fields of its `[node.idle]` table).
#[derive(InputObject)]
pub struct IdleRuleInput {
    /// Idle once no signal fired for this long (`"30m"`, 1 minute to 30 days).
    pub after: String,
    /// Established TCP connections to these ports count.
    pub tcp_ports: Option<Vec<i32>>,
    /// Interactive SSH sessions count.
    pub ssh_sessions: Option<bool>,
    /// CPU use above this (percent of one core) counts.
    pub cpu_percent: Option<f64>,
    /// Network traffic above this (kB/s) counts.
    pub net_kbps: Option<f64>,
    /// The node's connector reporting it in use counts.
    pub reported: Option<bool>,
    /// A power draw above this (watts) counts.
    pub watts_above: Option<f64>,
    /// An HTTP check that reports activity.
    pub probe: Option<GqlHttpCheck>,
    /// An HTTP check that keeps the node on while it reports something.
    pub veto_url: Option<GqlHttpCheck>,
    /// Accepted only unchanged: a veto command is set in the operator's topology file.
    pub veto_command: Option<String>,
}

impl IdleRuleInput {
    /// The rule in the file's form (checked when the node is parsed).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::{Value, json};
        let mut v = json!({ "after": self.after });
        let m = v.as_object_mut().expect("an object literal");
        if let Some(p) = &self.tcp_ports {
            m.insert("tcp_ports".into(), p.iter().map(|p| Value::from(*p)).collect());
        }
        if let Some(s) = self.ssh_sessions {
            m.insert("ssh_sessions".into(), s.into());
        }
        if let Some(c) = self.cpu_percent {
            m.insert("cpu_percent".into(), c.into());
        }
        if let Some(n) = self.net_kbps {
            m.insert("net_kbps".into(), n.into());
        }
        if let Some(r) = self.reported {
            m.insert("reported".into(), r.into());
        }
        if let Some(w) = self.watts_above {
            m.insert("watts_above".into(), w.into());
        }
        for (key, check) in [("probe", &self.probe), ("veto_url", &self.veto_url)] {
            if let Some(c) = check {
                let mut cm = json!({ "url": c.url });
                if let Some(p) = &c.pointer {
                    cm["pointer"] = p.clone().into();
                }
                m.insert(key.into(), cm);
            }
        }
        if let Some(c) = &self.veto_command {
            m.insert("veto_command".into(), c.clone().into());
        }
        v
    }
}

/// One signal's latest reading.
#[derive(SimpleObject)]
#[graphql(name = "IdleReading")]
pub struct GqlReading {
    /// `tcp_ports`, `ssh_sessions`, `cpu_percent`, `net_kbps`, `reported`, `watts_above`,
    /// `probe`, `veto_url`, `veto_command`, or `shell`/`load` when the measurement itself
    /// failed.
    pub signal: String,
    /// What was measured (`2 connection(s) on 445`, `3.1 %`).
    pub value: String,
    /// Whether it counts as activity (for a veto: whether it keeps the node on).
    pub active: bool,
    /// Why it could not be measured (the node is then kept on).
    pub error: Option<String>,
}

impl From<&Reading> for GqlReading {
    fn from(r: &Reading) -> Self {
        GqlReading { signal: r.signal.clone(), value: r.value.clone(), active: r.active, error: r.error.clone() }
    }
}

/// What the inactivity rule says about a running node now.
#[derive(SimpleObject)]
#[graphql(name = "IdleStatus")]
pub struct GqlIdleStatus {
    /// When it was last active (RFC 3339): its own signals, a request through the proxy, or
    /// what runs on it or needs it.
    pub last_activity_at: String,
    /// What that activity was.
    pub last_activity: String,
    /// When it becomes idle if nothing happens (RFC 3339).
    pub idle_at: String,
    /// Seconds until then (0 once idle).
    pub seconds_left: i64,
    /// Why it stays on although idle, if it does.
    pub kept: Option<String>,
    /// Its signals' latest readings.
    pub readings: Vec<GqlReading>,
    /// When they were taken (RFC 3339).
    pub measured_at: Option<String>,
    /// The stop cascade the rule requested once it was idle (`cascade:N`).
    pub stop_requested: Option<async_graphql::ID>,
}

impl GqlIdleStatus {
    pub(crate) fn new(s: &IdleStatus, now: i64) -> Self {
        GqlIdleStatus {
            last_activity_at: time(s.last_activity_at),
            last_activity: s.last_activity.clone(),
            idle_at: time(s.idle_at),
            seconds_left: ((s.idle_at - now) / 1000).max(0),
            kept: s.kept.clone(),
            readings: s.readings.iter().map(Into::into).collect(),
            measured_at: s.measured_at.map(time),
            stop_requested: s.stop_requested.map(|c| async_graphql::ID(c.to_string())),
        }
    }
}

/// A TCP wake: WakeHub listens on `listen`; a connection starts the node, is held while it
/// starts, then spliced to `to`.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(name = "TcpWake", input_name = "TcpWakeInput")]
pub struct GqlTcpWake {
    /// `address:port` WakeHub listens on.
    pub listen: String,
    /// `host:port` of the service.
    pub to: String,
}

/// How WakeHub's proxy fronts a node: requests for these host names and path prefix go to
/// `upstream`, and start the node first when it is off.
#[derive(SimpleObject, InputObject)]
#[graphql(name = "ProxyRoute", input_name = "ProxyRouteInput")]
pub struct GqlProxyRoute {
    /// Host names routed to the node.
    pub hosts: Vec<String>,
    /// The path prefix (`/`).
    pub path: Option<String>,
    /// Where requests go (the node's `url` when absent).
    pub upstream: Option<String>,
    /// The SHA-256 of an `https` upstream's certificate, pinned (`AB:CD:…`).
    pub tls_fingerprint: Option<String>,
    /// TCP wakes (set in the operator's topology file; accepted only unchanged).
    pub tcp: Option<Vec<GqlTcpWake>>,
}

impl From<&wakehub_core::model::ProxyRoute> for GqlProxyRoute {
    fn from(r: &wakehub_core::model::ProxyRoute) -> Self {
        GqlProxyRoute {
            hosts: r.hosts.clone(),
            path: Some(r.path.clone()),
            upstream: r.upstream.clone(),
            tls_fingerprint: r.tls_fingerprint.clone(),
            tcp: Some(r.tcp.iter().map(|t| GqlTcpWake { listen: t.listen.clone(), to: t.to.clone() }).collect()),
        }
    }
}

impl GqlProxyRoute {
    /// The table in the file's form (checked when the node is parsed).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "hosts": self.hosts });
        if let Some(p) = &self.path {
            v["path"] = p.clone().into();
        }
        if let Some(u) = &self.upstream {
            v["upstream"] = u.clone().into();
        }
        if let Some(fp) = &self.tls_fingerprint {
            v["tls_fingerprint"] = fp.clone().into();
        }
        if let Some(t) = &self.tcp {
            v["tcp"] = t.iter().map(|t| serde_json::json!({"listen": t.listen, "to": t.to})).collect();
        }
        v
    }
}
