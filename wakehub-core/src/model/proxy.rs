//! How WakeHub fronts a node's service (`[node.proxy]`): the host names and path prefix its
//! HTTP proxy answers for, where it sends those requests, and the TCP ports it listens on
//! for services that are not HTTP. A request or a connection to a node that is off starts it.
//!
//! ```toml
//! [node.proxy]
//! hosts = ["jellyfin.home.example"]       # the Host names routed to this node
//! path = "/"                              # the path prefix (default "/"; the longest wins)
//! upstream = "http://10.0.0.9:8096"       # where requests go (default: the node's `url`)
//! tls_fingerprint = "AB:CD:…"             # an https upstream's certificate, pinned (SHA-256)
//! tcp = [{ listen = "0.0.0.0:4450", to = "10.0.0.5:445" }]   # the operator's file only
//! ```

use serde::{Deserialize, Serialize};

/// One TCP wake: WakeHub listens on `listen`; a connection starts the node, is held while
/// the cascade runs, then spliced to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpWake {
    /// `address:port` WakeHub listens on.
    pub listen: String,
    /// `host:port` of the service.
    pub to: String,
}

/// A node's proxy table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyRoute {
    /// Host names (lowercase, no port) routed to the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The path prefix routed (`/` by default); the path is forwarded unchanged.
    #[serde(default = "root", skip_serializing_if = "is_root")]
    pub path: String,
    /// Where requests go: an `http`/`https` base URL (the node's `url` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The SHA-256 of an `https` upstream's certificate (`AB:CD:…`): that certificate and no
    /// other is accepted (a self-signed service). Without it, the web's public roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<String>,
    /// TCP wakes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<TcpWake>,
}

fn root() -> String {
    "/".to_owned()
}

fn is_root(p: &str) -> bool {
    p == "/"
}

/// A host name: labels of letters, digits and `-`, joined by dots, lowercase.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// `host:port` with a port above 0.
fn valid_endpoint(s: &str) -> bool {
    s.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
}

impl ProxyRoute {
    /// Reads a proxy table from its file or JSON form, checked; every problem in one message.
    pub fn from_value<V: Serialize>(value: &V) -> Result<ProxyRoute, String> {
        let json = serde_json::to_value(value).map_err(|e| e.to_string())?;
        let route: ProxyRoute = serde_json::from_value(json).map_err(|e| e.to_string())?;
        route.validate()?;
        Ok(route)
    }

    /// The table in its file and JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Checks the values (whether an upstream is known is checked with the node's `url`).
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.hosts.is_empty() && self.tcp.is_empty() {
            problems.push("give `hosts` (HTTP) or `tcp` (TCP wakes), or both".to_owned());
        }
        if let Some(bad) = self.hosts.iter().find(|h| !valid_host(h)) {
            problems.push(format!("hosts: `{bad}` is not a lowercase host name such as jellyfin.home.example"));
        }
        if self.hosts.len() > 32 {
            problems.push("hosts: at most 32".to_owned());
        }
        if !self.path.starts_with('/') || self.path.len() > 1024 || self.path.contains(['?', '#', ' ']) {
            problems.push(format!("path: `{}` is not a path prefix such as /media", self.path));
        }
        if let Some(u) = &self.upstream {
            match super::validate_url(u) {
                Err(e) => problems.push(format!("upstream: {e}")),
                Ok(()) if u.contains(['?', '#']) => problems.push("upstream: a base URL, without query".to_owned()),
                Ok(()) => {}
            }
        }
        if let Some(fp) = &self.tls_fingerprint {
            let hex: String = fp.chars().filter(|c| *c != ':').collect();
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                problems.push("tls_fingerprint: a SHA-256 fingerprint (64 hex digits, `:` allowed)".to_owned());
            }
        }
        for t in &self.tcp {
            if !valid_endpoint(&t.listen) || t.listen.parse::<std::net::SocketAddr>().is_err() {
                problems.push(format!("tcp.listen: `{}` is not an address:port such as 0.0.0.0:4450", t.listen));
            }
            if !valid_endpoint(&t.to) {
                problems.push(format!("tcp.to: `{}` is not a host:port such as 10.0.0.5:445", t.to));
            }
        }
        if self.tcp.len() > 16 {
            problems.push("tcp: at most 16".to_owned());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_read_back_and_are_checked() {
        let r = ProxyRoute::from_value(&serde_json::json!({
            "hosts": ["jellyfin.home.example"], "upstream": "http://10.0.0.9:8096",
            "tcp": [{"listen": "127.0.0.1:4450", "to": "nas.lan:445"}]
        }))
        .unwrap();
        assert_eq!(r.path, "/");
        assert_eq!(ProxyRoute::from_value(&r.to_json()).unwrap(), r);
        assert!(!r.to_json().as_object().unwrap().contains_key("path"));
        let err = ProxyRoute::from_value(&serde_json::json!({
            "hosts": ["Jellyfin.Home"], "path": "media", "upstream": "ftp://x",
            "tcp": [{"listen": "nas:445", "to": "nas"}]
        }))
        .unwrap_err();
        for needle in ["hosts:", "path:", "upstream:", "tcp.listen", "tcp.to"] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        assert!(ProxyRoute::from_value(&serde_json::json!({})).unwrap_err().contains("give `hosts`"));
        assert!(ProxyRoute::from_value(&serde_json::json!({"hosts": ["a"], "port": 1})).unwrap_err().contains("port"));
    }
}
