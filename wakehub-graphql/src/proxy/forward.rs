//! One request streamed to the node's service and its answer streamed back: hop-by-hop
//! headers dropped, `X-Forwarded-*` added, the `Host` kept; a WebSocket (any `Upgrade`)
//! spliced both ways once the service agreed, counted as activity while it stays open.
//!
//! The upstream client is hyper's own (pooled keep-alive connections, `TCP_NODELAY`): the
//! request's body and the answer's are handed through as they are, not re-wrapped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, Version, header};
use axum::response::Response;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::{Proxy, Route, plain};

/// The client the proxy reaches services with: HTTP, or HTTPS checked against the web's
/// public roots.
pub(super) type Upstream = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

/// A pooled HTTP/1.1 client: connect within 5 s, idle connections kept a minute; HTTPS
/// with `tls` (a pinned certificate), else the web's public roots.
pub(super) fn upstream(tls: Option<rustls::ClientConfig>) -> anyhow::Result<Upstream> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    http.enforce_http(false);
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match tls {
        Some(config) => builder.with_tls_config(config),
        None => builder.with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))?,
    };
    let https = builder.https_or_http().enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(https))
}

/// How often an open WebSocket counts as activity.
pub(super) const TOUCH_EVERY: Duration = Duration::from_secs(30);

/// Headers that concern one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Drops the hop-by-hop headers, and those `Connection` names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::try_from(n.trim()).ok())
        .collect();
    for h in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(h);
    }
    headers.remove(header::UPGRADE);
}

/// Whether the request asks to switch protocols (a WebSocket).
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// Streams `req` to `route`'s upstream and its answer back.
pub(super) async fn forward(proxy: &Proxy, route: &Route, req: Request, peer: SocketAddr) -> Response {
    let (mut parts, body) = req.into_parts();
    let upgrade = is_upgrade(&parts.headers).then(|| parts.headers.get(header::UPGRADE).cloned()).flatten();
    let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", route.upstream);
    let Ok(uri) = url.parse::<Uri>() else {
        return plain(StatusCode::BAD_GATEWAY, format!("{}: `{url}` is not a URL\n", route.name));
    };
    let mut headers = std::mem::take(&mut parts.headers);
    strip_hop_by_hop(&mut headers);
    let host = headers.get(header::HOST).cloned();
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(before) => format!("{before}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(v) = HeaderValue::try_from(forwarded_for) {
        headers.insert("x-forwarded-for", v);
    }
    if let Some(h) = host {
        headers.insert("x-forwarded-host", h);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(proxy.scheme));
    if let Some(protocol) = &upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    parts.headers = headers;
    parts.extensions = Default::default();
    // An upgrade carries no body; any other request's body streams through as it came (none
    // for most GETs: hyper then sends none, not an empty chunked stream).
    let body = if upgrade.is_some() { Body::empty() } else { body };
    let client = match proxy.client(route) {
        Ok(c) => c,
        Err(e) => return plain(StatusCode::BAD_GATEWAY, format!("{}: tls_fingerprint: {e}\n", route.name)),
    };
    let mut answer = match client.request(Request::from_parts(parts, body)).await {
        Ok(a) => a,
        Err(e) => {
            // On, but its service does not answer: perhaps it went down behind WakeHub's back;
            // a start re-observes it (and starts what is off) — at most every 30 s.
            if e.is_connect() && proxy.may_rewake(route.node) {
                let _ = proxy.wake(route.node).await;
            }
            tracing::warn!(node = %route.name, "proxy: {url}: {e}");
            return plain(StatusCode::BAD_GATEWAY, format!("{} does not answer at {}\n", route.name, route.upstream));
        }
    };
    let status = answer.status();
    if status == StatusCode::SWITCHING_PROTOCOLS
        && let (Some(protocol), Some(on_upgrade)) = (upgrade, on_upgrade)
    {
        let upstream_upgrade = hyper::upgrade::on(&mut answer);
        let (mut out, _) = answer.into_parts();
        out.version = Version::HTTP_11;
        strip_hop_by_hop(&mut out.headers);
        out.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        out.headers.insert(header::UPGRADE, protocol);
        let (engine, node, name) = (proxy.engine.clone(), route.node, route.name.clone());
        tokio::spawn(async move {
            let (theirs, ours) = match tokio::join!(upstream_upgrade, on_upgrade) {
                (Ok(theirs), Ok(ours)) => (theirs, ours),
                (Err(e), _) => return tracing::warn!(node = %name, "proxy: upgrade refused upstream: {e}"),
                (_, Err(e)) => return tracing::warn!(node = %name, "proxy: the client's upgrade failed: {e}"),
            };
            let (mut theirs, mut ours) = (TokioIo::new(theirs), TokioIo::new(ours));
            let splice = tokio::io::copy_bidirectional(&mut ours, &mut theirs);
            tokio::pin!(splice);
            let mut every = tokio::time::interval(TOUCH_EVERY);
            loop {
                tokio::select! {
                    _ = &mut splice => break,
                    _ = every.tick() => engine.touch(node, "an open WebSocket through the proxy"),
                }
            }
        });
        return Response::from_parts(out, Body::empty());
    }
    let (mut out, body) = answer.into_parts();
    out.version = Version::HTTP_11;
    strip_hop_by_hop(&mut out.headers);
    Response::from_parts(out, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret-hop"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::COOKIE, HeaderValue::from_static("a=b"));
        assert!(!is_upgrade(&h));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["cookie"]);
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&h));
    }
}
