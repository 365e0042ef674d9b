//! The proxy's routing table, built from the nodes' `[node.proxy]` tables and rebuilt when
//! the topology changes (the store hands out one shared snapshot per change).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use wakehub_core::engine::Engine;
use wakehub_core::model::{NodeId, Topology};

/// Where one host and path prefix go.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The node.
    pub node: NodeId,
    /// Its name.
    pub name: String,
    /// The host name.
    pub host: String,
    /// The path prefix.
    pub path: String,
    /// The upstream base URL, without a trailing `/`.
    pub upstream: String,
    /// The upstream's certificate, pinned (SHA-256), if it is.
    pub tls_fingerprint: Option<String>,
}

/// Every route by host, longest prefix first, and what could not be routed.
#[derive(Debug, Default)]
pub struct Routes {
    by_host: HashMap<String, Vec<Route>>,
    /// Routes refused: another node already has the same host and path.
    pub conflicts: Vec<String>,
}

impl Routes {
    /// The routes of `topology`'s configured nodes.
    pub fn of(topology: &Topology) -> Routes {
        let mut out = Routes::default();
        let mut nodes: Vec<_> = topology.nodes().collect();
        nodes.sort_by_key(|n| n.id);
        for n in nodes {
            let Some(proxy) = &n.spec.proxy else { continue };
            let Some(upstream) = proxy.upstream.as_ref().or(n.spec.url.as_ref()) else { continue };
            for host in &proxy.hosts {
                let list = out.by_host.entry(host.clone()).or_default();
                if let Some(other) = list.iter().find(|r| r.path == proxy.path) {
                    out.conflicts.push(format!(
                        "`{}` and `{}` both route {host}{}: `{}` keeps it",
                        other.name, n.spec.name, proxy.path, other.name
                    ));
                    continue;
                }
                list.push(Route {
                    node: n.id,
                    name: n.spec.name.clone(),
                    host: host.clone(),
                    path: proxy.path.clone(),
                    upstream: upstream.trim_end_matches('/').to_owned(),
                    tls_fingerprint: proxy.tls_fingerprint.clone(),
                });
                list.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
            }
        }
        out
    }

    /// The route of `host` whose prefix is the longest that `path` starts with (a prefix
    /// `/media` takes `/media` and `/media/…`, not `/mediaserver`).
    pub fn find(&self, host: &str, path: &str) -> Option<&Route> {
        self.by_host.get(host)?.iter().find(|r| {
            let p = r.path.trim_end_matches('/');
            p.is_empty() || path == p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// Every route, by host then path.
    pub fn all(&self) -> Vec<&Route> {
        let mut all: Vec<&Route> = self.by_host.values().flatten().collect();
        all.sort_by(|a, b| (&a.host, &a.path).cmp(&(&b.host, &b.path)));
        all
    }
}

/// The routes of the topology last seen, rebuilt when the store's snapshot changes.
#[derive(Default)]
pub(super) struct RouteCache(RwLock<Option<(Arc<Topology>, Arc<Routes>)>>);

impl RouteCache {
    pub(super) fn get(&self, engine: &Engine) -> Arc<Routes> {
        let Ok(topology) = engine.store().topology_shared() else {
            return Arc::new(Routes::default());
        };
        if let Some((t, r)) = self.0.read().unwrap_or_else(|e| e.into_inner()).as_ref()
            && Arc::ptr_eq(t, &topology)
        {
            return r.clone();
        }
        let routes = Arc::new(Routes::of(&topology));
        for c in &routes.conflicts {
            tracing::warn!("proxy: {c}");
        }
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some((topology, routes.clone()));
        routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_prefix_wins_and_a_duplicate_is_refused() {
        let text = r#"
[[node]]
name = "site"
kind = "physical"
proxy = { hosts = ["home.example"], upstream = "http://10.0.0.2/" }
[node.connector]
type = "sim"

[[node]]
name = "media"
kind = "physical"
url = "http://10.0.0.3:8096"
proxy = { hosts = ["home.example", "media.example"], path = "/media" }
[node.connector]
type = "sim"

[[node]]
name = "again"
kind = "physical"
proxy = { hosts = ["media.example"], path = "/media", upstream = "http://10.0.0.4" }
[node.connector]
type = "sim"
"#;
        let t =
            wakehub_core::topology_file::parse(text, &wakehub_core::topology_file::ParseOptions::operator()).unwrap();
        let r = Routes::of(&t);
        let at = |h: &str, p: &str| r.find(h, p).map(|r| (r.name.as_str(), r.upstream.as_str()));
        assert_eq!(at("home.example", "/media/movies"), Some(("media", "http://10.0.0.3:8096")));
        assert_eq!(at("home.example", "/media"), Some(("media", "http://10.0.0.3:8096")));
        assert_eq!(at("home.example", "/mediaserver"), Some(("site", "http://10.0.0.2")));
        assert_eq!(at("home.example", "/"), Some(("site", "http://10.0.0.2")));
        assert_eq!(at("media.example", "/"), None);
        assert_eq!(at("other.example", "/"), None);
        assert_eq!(r.conflicts, ["`media` and `again` both route media.example/media: `media` keeps it"]);
        assert_eq!(r.all().len(), 3);
    }
}
