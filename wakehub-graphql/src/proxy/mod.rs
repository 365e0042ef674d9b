//! The wake-on-request proxy (`wakehub serve --proxy-listen ADDR`): HTTP requests routed by
//! host name and path prefix (each node's `[node.proxy]` table) to the node's service. A
//! request to a node that is on streams through (WebSocket upgrades too) and counts as its
//! activity; to a node that is off, it starts the node's cascade and answers at once — a
//! browser gets a waiting page that follows the cascade live and comes back when it is done;
//! an API client gets `503` with `Retry-After`, or, asking `X-WakeHub-Wait: SECONDS`, its
//! answer once the node is up. `/.wakehub/auth` is the same decision for a proxy in front
//! (Traefik, Caddy, nginx): `200` when up, else the waiting page. [`tcp`] holds TCP wakes.

mod forward;
mod routes;
pub mod tcp;
pub mod tls;
mod wait;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use wakehub_core::engine::{Engine, EngineError};
use wakehub_core::model::{Action, CascadeId, NodeId, PowerState};

pub use routes::{Route, Routes};

/// The longest an API client may ask to wait (`X-WakeHub-Wait`).
const MAX_WAIT: Duration = Duration::from_secs(300);

/// The proxy's state: the engine, one upstream client, the routes (rebuilt when the
/// topology changes) and the waiting pages' tickets.
pub struct Proxy {
    engine: Engine,
    /// `https` when it listens with TLS (`X-Forwarded-Proto`).
    scheme: &'static str,
    client: forward::Upstream,
    /// A client per pinned upstream certificate.
    pinned: std::sync::Mutex<std::collections::HashMap<String, forward::Upstream>>,
    routes: routes::RouteCache,
    tickets: wait::Tickets,
    /// When a start was last asked for a node seen on whose service did not answer.
    rewoken: std::sync::Mutex<std::collections::HashMap<NodeId, std::time::Instant>>,
}

impl Proxy {
    /// A proxy over `engine`'s topology.
    pub fn new(engine: Engine) -> anyhow::Result<Arc<Proxy>> {
        Ok(Arc::new(Proxy {
            engine,
            scheme: "http",
            client: forward::upstream(None)?,
            pinned: Default::default(),
            routes: Default::default(),
            tickets: Default::default(),
            rewoken: Default::default(),
        }))
    }

    /// The same proxy, behind TLS (`X-Forwarded-Proto: https`).
    pub fn new_https(engine: Engine) -> anyhow::Result<Arc<Proxy>> {
        let mut proxy = Arc::into_inner(Self::new(engine)?).expect("just made");
        proxy.scheme = "https";
        Ok(Arc::new(proxy))
    }

    /// The routes of the current topology, and the problems found building them.
    pub fn routes(&self) -> Arc<Routes> {
        self.routes.get(&self.engine)
    }

    /// The client for `route`: the shared one, or one pinning its upstream's certificate.
    fn client(&self, route: &Route) -> Result<forward::Upstream, String> {
        let Some(fp) = &route.tls_fingerprint else { return Ok(self.client.clone()) };
        let mut pinned = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = pinned.get(fp) {
            return Ok(c.clone());
        }
        let config = wakehub_core::connector::pinned_tls(fp)?;
        let client = forward::upstream(Some(config)).map_err(|e| e.to_string())?;
        pinned.insert(fp.clone(), client.clone());
        Ok(client)
    }

    /// Whether a start may be asked again for `node`, seen on but not answering (once per
    /// 30 s: each request to a dead service must not journal a cascade).
    fn may_rewake(&self, node: NodeId) -> bool {
        let mut last = self.rewoken.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        match last.get(&node) {
            Some(at) if now.duration_since(*at) < Duration::from_secs(30) => false,
            _ => {
                last.insert(node, now);
                true
            }
        }
    }

    /// Starts `node`'s cascade, or finds the one already starting it: its id.
    async fn wake(&self, node: NodeId) -> Result<CascadeId, EngineError> {
        match self.engine.request_by(node, Action::Start, "proxy").await {
            Ok(record) => Ok(record.id),
            Err(EngineError::CascadeInProgress { cascade }) => Ok(cascade),
            Err(e) => Err(e),
        }
    }
}

/// The proxy's router: the waiting pages' live feed, the forward-auth endpoint, and every
/// other request routed by host and path.
pub fn router(proxy: Arc<Proxy>) -> Router {
    Router::new()
        .route("/.wakehub/wait/{ticket}", get(wait::events))
        .route("/.wakehub/auth", get(forward_auth))
        .fallback(handle)
        .with_state(proxy)
}

/// The host a request is for: `Host` (or the URI's authority), lowercase, without port.
fn host_of(headers: &HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    let raw =
        headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| uri.authority().map(|a| a.as_str()))?;
    Some(strip_port(raw))
}

fn strip_port(host: &str) -> String {
    let host = if host.starts_with('[') {
        host.split_once(']').map_or(host, |(h, _)| h).trim_start_matches('[')
    } else {
        host.rsplit_once(':').filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit())).map_or(host, |(h, _)| h)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], text.into()).into_response()
}

/// Whether the client is a browser (it takes HTML).
fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// How long an API client asked to wait for the node, if it did.
fn asked_wait(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers.get("x-wakehub-wait")?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_WAIT))
}

async fn handle(State(proxy): State<Arc<Proxy>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let Some(host) = host_of(req.headers(), req.uri()) else {
        return plain(StatusCode::BAD_REQUEST, "no Host header\n");
    };
    let routes = proxy.routes();
    let Some(route) = routes.find(&host, req.uri().path()) else {
        return plain(StatusCode::NOT_FOUND, format!("WakeHub routes nothing for {host}{}\n", req.uri().path()));
    };
    let route = route.clone();
    proxy.engine.touch(route.node, "request through the proxy");
    if proxy.engine.seen(route.node) == Some(PowerState::On) {
        return forward::forward(&proxy, &route, req, peer).await;
    }
    // Off, starting, or never observed: start it (or join its start).
    let cascade = match proxy.wake(route.node).await {
        Ok(c) => c,
        Err(e) => return plain(StatusCode::SERVICE_UNAVAILABLE, format!("cannot start {}: {e}\n", route.name)),
    };
    if let Some(wait) = asked_wait(req.headers()) {
        return match tokio::time::timeout(wait, proxy.engine.wait(cascade)).await {
            Ok(Ok(record)) if record.status == wakehub_core::events::CascadeStatus::Completed => {
                forward::forward(&proxy, &route, req, peer).await
            }
            Ok(Ok(record)) => wait::failed(&route, &record),
            Ok(Err(e)) => plain(StatusCode::BAD_GATEWAY, format!("{e}\n")),
            Err(_) => wait::starting(&proxy, &route, cascade, false).await,
        };
    }
    wait::starting(&proxy, &route, cascade, wants_html(req.headers())).await
}

/// Forward-auth: `200` when the node routed for `X-Forwarded-Host` and `X-Forwarded-Uri` is
/// up (counted as its activity), else its start and the waiting page (`503`). With
/// `?mode=nginx`, `401` instead of the page: nginx's `auth_request` passes only 2xx, 401 and
/// 403, and its `error_page 401` then asks this endpoint again for the page.
async fn forward_auth(State(proxy): State<Arc<Proxy>>, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let nginx = uri.query().is_some_and(|q| q.split('&').any(|p| p == "mode=nginx"));
    let host = headers.get("x-forwarded-host").and_then(|h| h.to_str().ok()).map(strip_port);
    let uri = headers.get("x-forwarded-uri").and_then(|h| h.to_str().ok()).unwrap_or("/");
    let path = uri.split('?').next().unwrap_or("/");
    let Some(host) = host else {
        return plain(StatusCode::BAD_REQUEST, "X-Forwarded-Host is missing\n");
    };
    let routes = proxy.routes();
    let Some(route) = routes.find(&host, path).cloned() else {
        return plain(StatusCode::NOT_FOUND, format!("WakeHub routes nothing for {host}{path}\n"));
    };
    proxy.engine.touch(route.node, "request through the proxy in front");
    if proxy.engine.seen(route.node) == Some(PowerState::On) {
        return (StatusCode::OK, [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], Body::empty())
            .into_response();
    }
    let cascade = match proxy.wake(route.node).await {
        Ok(c) => c,
        Err(e) => return plain(StatusCode::SERVICE_UNAVAILABLE, format!("cannot start {}: {e}\n", route.name)),
    };
    if nginx {
        return plain(StatusCode::UNAUTHORIZED, format!("{} is starting\n", route.name));
    }
    wait::starting(&proxy, &route, cascade, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_their_port_and_case() {
        assert_eq!(strip_port("Jellyfin.Home.Example:8080"), "jellyfin.home.example");
        assert_eq!(strip_port("nas.lan."), "nas.lan");
        assert_eq!(strip_port("[::1]:8081"), "::1");
        let mut h = HeaderMap::new();
        h.insert("x-wakehub-wait", HeaderValue::from_static("9999"));
        assert_eq!(asked_wait(&h), Some(MAX_WAIT));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html,application/xhtml+xml"));
        assert!(wants_html(&h));
    }
}
