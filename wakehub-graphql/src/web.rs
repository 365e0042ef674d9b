//! The web dashboard and GraphiQL, served from the binary: the files the npm build wrote to
//! `web/dist` (committed, and checked against the sources in CI) are embedded at compile
//! time, each with its gzip and brotli versions.
//!
//! `/` is the dashboard, `/graphiql` the GraphQL IDE, every other file at its path.
//! Hashed assets (`/assets/…`) are cached for a year; the pages are revalidated (ETag).
//! Every answer carries a Content-Security-Policy that lets a page load and connect only to
//! this server: nothing the dashboard shows can make a browser talk to another host.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "web/dist/"]
struct Dist;

/// The policy of every page: this origin only (`'unsafe-inline'` styles: Svelte and
/// GraphiQL set `style` attributes).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// The embedded file a request path names: `/` is the dashboard, `/graphiql` the IDE.
fn file_for(path: &str) -> Option<&str> {
    let path = path.trim_start_matches('/');
    match path {
        "" | "index.html" => Some("index.html"),
        "graphiql" | "graphiql.html" => Some("graphiql.html"),
        // The compressed twins are served by content negotiation, not by name.
        p if p.ends_with(".gz") || p.ends_with(".br") => None,
        p => Some(p),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("webmanifest") => "application/manifest+json",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The encodings the client accepts, best first among those we have (`br`, `gzip`).
fn accepted(headers: &HeaderMap) -> Vec<&'static str> {
    let accept = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    let takes = |name: &str| {
        accept.split(',').any(|part| {
            let mut bits = part.split(';');
            let coding = bits.next().unwrap_or("").trim();
            let refused = bits.any(|q| matches!(q.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            coding.eq_ignore_ascii_case(name) && !refused
        })
    };
    ["br", "gzip"].into_iter().filter(|e| takes(e)).collect()
}

/// Answers a GET for a dashboard file (404 if there is none).
pub(crate) async fn serve(request: Request) -> Response {
    if !matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD) {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    let Some(path) = file_for(request.uri().path()) else {
        return not_found();
    };
    let Some(plain) = Dist::get(path) else {
        return not_found();
    };
    // The smallest variant the client takes.
    let variant = accepted(request.headers())
        .into_iter()
        .find_map(|encoding| {
            Dist::get(&format!("{path}.{}", if encoding == "br" { "br" } else { "gz" })).map(|f| (Some(encoding), f))
        })
        .unwrap_or((None, plain));
    let (encoding, file) = variant;
    let etag = format!(
        "\"{}{}\"",
        hex(&file.metadata.sha256_hash()[..16]),
        encoding.map_or("", |e| if e == "br" { "-br" } else { "-gz" })
    );
    let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    security_headers(&mut headers);
    if let Some(e) = encoding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e));
    }
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, file.data.into_owned()).into_response()
}

/// The headers every page and asset carries.
fn security_headers(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "not found").into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_files() {
        assert_eq!(file_for("/"), Some("index.html"));
        assert_eq!(file_for("/graphiql"), Some("graphiql.html"));
        assert_eq!(file_for("/assets/app-1234.js"), Some("assets/app-1234.js"));
        assert_eq!(file_for("/assets/app-1234.js.gz"), None);
        assert_eq!(file_for("/manifest.webmanifest.br"), None);
    }

    #[test]
    fn encodings_are_negotiated_best_first_and_refusals_count() {
        let mut h = HeaderMap::new();
        assert!(accepted(&h).is_empty());
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate, br"));
        assert_eq!(accepted(&h), ["br", "gzip"]);
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip;q=1.0, br;q=0"));
        assert_eq!(accepted(&h), ["gzip"]);
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        assert!(accepted(&h).is_empty());
    }
}
