//! The HTTP server: `POST /graphql`, WebSocket subscriptions on the same path (both
//! `graphql-transport-ws` and the legacy `graphql-ws`; a plain `GET /graphql` is sent to
//! the IDE), `/login` and `/logout`, `/metrics`, `/healthz`, and the web dashboard ([`crate::web`]):
//! `/`, `/graphiql` and their assets.
//!
//! Every GraphQL operation needs an API token: `Authorization: Bearer <token>` on HTTP (a
//! missing or revoked one gets HTTP 401 with `extensions.code = UNAUTHENTICATED`); on a
//! WebSocket, the same header on the upgrade request or in the `connection_init` payload
//! (`{"Authorization": "Bearer <token>"}` or `{"token": "<token>"}`). An open WebSocket
//! whose token is revoked is closed at the next check.
//!
//! Limits: request body size, query depth and complexity (in the schema), WebSocket message
//! size, message rate, subscriptions per connection and concurrent connections.

use std::sync::Arc;
use std::time::{Duration, Instant};
use wakehub_core::model::ErrorCode;
use wakehub_core::store::Principal;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, Executor as _};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::stream::BoxStream;
use futures::{SinkExt, Stream, StreamExt};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use wakehub_core::engine::Engine;

use crate::metrics::Metrics;
use crate::schema::Caller;
use crate::schema::{self, Limits};

/// Server limits and timings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted HTTP request body, in bytes.
    pub body_limit: usize,
    /// Largest accepted WebSocket message, in bytes.
    pub ws_max_message: usize,
    /// WebSocket messages a client may send in a burst…
    pub ws_burst: u32,
    /// …and per second after that.
    pub ws_per_second: u32,
    /// Subscriptions one WebSocket may hold open.
    pub ws_max_subscriptions: usize,
    /// Concurrent WebSocket connections.
    pub ws_max_connections: usize,
    /// How often an open WebSocket's token is checked again (revocation).
    pub token_recheck: Duration,
    /// How long a WebSocket may take to authenticate (`connection_init`) before it is
    /// closed (4408); until then it holds only a slot of the small pending pool.
    pub ws_auth_deadline: Duration,
    /// WebSockets not yet authenticated, all addresses together.
    pub ws_max_pending: usize,
    /// WebSockets (pending or open) from one client address.
    pub ws_max_per_address: usize,
    /// How long one HTTP query or mutation may run before it is answered `TIMEOUT`.
    pub request_timeout: Duration,
    /// How long a session opened by `POST /login` lasts.
    pub session_ttl: Duration,
    /// Failed logins allowed per user name, and per client address, in a minute.
    pub login_failures_per_minute: u32,
    /// Query limits.
    pub limits: Limits,
    /// The connector plugins loaded, listed by the `plugins` query.
    #[cfg(feature = "plugins")]
    pub plugins: Option<std::sync::Arc<wakehub_core::plugin::PluginHost>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            ws_max_message: 64 * 1024,
            ws_burst: 50,
            ws_per_second: 20,
            ws_max_subscriptions: 100,
            ws_max_connections: 4096,
            token_recheck: Duration::from_secs(10),
            ws_auth_deadline: Duration::from_secs(10),
            ws_max_pending: 256,
            ws_max_per_address: 64,
            request_timeout: Duration::from_secs(30),
            session_ttl: Duration::from_secs(12 * 3600),
            login_failures_per_minute: 5,
            limits: Limits::default(),
            #[cfg(feature = "plugins")]
            plugins: None,
        }
    }
}

#[derive(Clone)]
struct App {
    engine: Engine,
    /// The schema, behind what sends a follower's mutations to the leader.
    schema: crate::leader::Api,
    metrics: Arc<Metrics>,
    config: Arc<ServerConfig>,
    connections: Arc<Semaphore>,
    pending: Arc<Semaphore>,
    per_address: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    /// Recent failed logins, by user name and by address: (count, window start).
    failures: Arc<std::sync::Mutex<std::collections::HashMap<String, (u32, Instant)>>>,
}

/// One WebSocket counted against its client address; uncounted on drop.
struct AddressSlot {
    map: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// The router, with the schema built over `engine`. Also starts the metrics collector.
pub fn router(engine: Engine, config: ServerConfig) -> Router {
    let metrics = Arc::new(Metrics::new());
    metrics.spawn_collector(&engine);
    #[cfg(feature = "plugins")]
    let schema = schema::build_with_plugins(
        engine.clone(),
        config.limits.clone(),
        Some(metrics.clone()),
        config.plugins.clone(),
    );
    #[cfg(not(feature = "plugins"))]
    let schema = schema::build(engine.clone(), config.limits.clone(), Some(metrics.clone()));
    let app = App {
        schema: crate::leader::Api::new(schema, engine.clone()),
        engine,
        metrics,
        connections: Arc::new(Semaphore::new(config.ws_max_connections)),
        pending: Arc::new(Semaphore::new(config.ws_max_pending)),
        per_address: Arc::default(),
        failures: Arc::default(),
        config: Arc::new(config.clone()),
    };
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/login", axum::routing::post(login_post))
        .route("/logout", axum::routing::post(logout_post))
        .route("/metrics", get(metrics_get))
        .route("/artifacts/{id}", get(artifact_get))
        .route("/healthz", get(|| async { "ok" }))
        .route("/", get(crate::web::serve))
        .fallback(crate::web::serve)
        .layer(RequestBodyLimitLayer::new(config.body_limit))
        .with_state(app)
}

/// A WebSocket's read chunk and write batch (bytes).
const WS_BUFFER: usize = 4 << 10;

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

/// The caller a token stands for: its name, role and scope (`None`: missing, unknown,
/// revoked or expired).
async fn authenticate(engine: &Engine, token: Option<String>) -> Option<Caller> {
    let token = token?;
    let caller = |p: Principal| Caller { name: p.name, role: p.role, scope: p.scope };
    // A token checked a moment ago is answered from memory, with no blocking hop.
    if let Some(p) = engine.store().authenticated(&token) {
        return Some(caller(p));
    }
    match engine.store().run(move |s| s.authenticate(&token)).await {
        Ok(found) => found.map(caller),
        Err(e) => {
            tracing::error!("token check failed: {e}");
            None
        }
    }
}

async fn valid(engine: &Engine, token: Option<String>) -> bool {
    authenticate(engine, token).await.is_some()
}

fn unauthenticated() -> Response {
    let body = serde_json::json!({
        "data": null,
        "errors": [{"message": "missing, unknown or revoked API token", "extensions": {"code": "UNAUTHENTICATED"}}]
    });
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], axum::Json(body)).into_response()
}

async fn graphql_post(State(app): State<App>, headers: HeaderMap, request: GraphQLRequest) -> Response {
    let token = bearer(&headers);
    let Some(caller) = authenticate(&app.engine, token.clone()).await else {
        return unauthenticated();
    };
    // On an instance that follows another, the caller's mutations go to the leader with
    // its token (see `leader`); once only.
    let mut request = request.into_inner().data(caller);
    if let Some(token) = token {
        request = request.data(crate::leader::Bearer(token));
    }
    if headers.contains_key(crate::leader::FORWARDED) {
        request = request.data(crate::leader::Forwarded);
    }
    // Bounded, so a slow request cannot hold the server (or its graceful shutdown) for ever.
    match tokio::time::timeout(app.config.request_timeout, app.schema.execute(request)).await {
        Ok(mut response) => {
            // The parser's and validator's own refusals (syntax, depth, complexity, unknown
            // fields) carry a stable code too: the request is not valid.
            for error in &mut response.errors {
                let coded = error.extensions.as_ref().is_some_and(|x| x.get("code").is_some());
                if !coded {
                    error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::Validation.as_str());
                }
            }
            GraphQLResponse::from(response).into_response()
        }
        Err(_) => {
            let body = serde_json::json!({"data": null, "errors": [{"message": "the request took too long",
                                          "extensions": {"code": "TIMEOUT"}}]});
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}

fn code_body(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"message": message, "extensions": {"code": code.as_str()}}]});
    (status, axum::Json(body)).into_response()
}

/// `POST /login` with `{"name", "password"}`: a session token (`whs_…`, used like an API
/// token) with the user's role, or 401. Failed attempts are limited per name and per
/// address (429 beyond).
async fn login_post(State(app): State<App>, request: axum::extract::Request) -> Response {
    let address = request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let Ok(body) = axum::body::to_bytes(request.into_body(), 64 * 1024).await else {
        return code_body(StatusCode::BAD_REQUEST, ErrorCode::Validation, "the body is too large");
    };
    let Ok(form) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return code_body(StatusCode::BAD_REQUEST, ErrorCode::Validation, "expected {\"name\": …, \"password\": …}");
    };
    let (Some(name), Some(password)) = (form["name"].as_str(), form["password"].as_str()) else {
        return code_body(StatusCode::BAD_REQUEST, ErrorCode::Validation, "expected {\"name\": …, \"password\": …}");
    };
    let keys: Vec<String> =
        [Some(format!("user:{name}")), address.map(|a| format!("addr:{a}"))].into_iter().flatten().collect();
    let limit = app.config.login_failures_per_minute;
    let blocked = {
        let mut failures = app.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.retain(|_, (_, since)| since.elapsed() < Duration::from_secs(60));
        keys.iter().any(|k| failures.get(k).is_some_and(|(n, _)| *n >= limit))
    };
    if blocked {
        return code_body(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "too many failed logins; wait a minute",
        );
    }
    let (name, password, ttl) = (name.to_owned(), password.to_owned(), app.config.session_ttl.as_millis() as i64);
    match app.engine.store().run(move |s| s.login(&name, &password, ttl)).await {
        Ok(Some((user, token, expires))) => {
            tracing::info!(user = %user.name, "login");
            let body = serde_json::json!({"token": token.expose(), "expiresAt": expires, "role": user.role.as_str(),
                                          "name": user.name});
            axum::Json(body).into_response()
        }
        Ok(None) => {
            let mut failures = app.failures.lock().unwrap_or_else(|e| e.into_inner());
            for k in keys {
                failures.entry(k).or_insert((0, Instant::now())).0 += 1;
            }
            code_body(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, "wrong user name or password")
        }
        Err(e) => {
            tracing::error!("login failed: {e}");
            code_body(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error (see the server log)")
        }
    }
}

/// `POST /logout` with the session's bearer token: the session ends.
async fn logout_post(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers).filter(|t| t.starts_with("whs_")) else {
        return code_body(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, "no session token");
    };
    match app.engine.store().run(move |s| s.revoke_session(&token)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => code_body(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, "no live session"),
    }
}

/// `GET /artifacts/N`: an action's raw log (redacted), for a caller who sees its machine
/// (`404` otherwise, as for an unknown one; `410` once its retention swept it).
async fn artifact_get(
    State(app): State<App>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let Some(caller) = authenticate(&app.engine, bearer(&headers)).await else {
        return unauthenticated();
    };
    let not_found = || code_body(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such artifact");
    let Ok(id) = id.parse::<i64>() else { return not_found() };
    let found = app
        .engine
        .store()
        .run(move |s| Ok::<_, wakehub_core::store::StoreError>((s.artifact(id)?, s.topology_shared()?)))
        .await;
    let (artifact, topology) = match found {
        Ok(v) => v,
        Err(e) => return code_body(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, &e.to_string()),
    };
    let Some((record, content)) = artifact else { return not_found() };
    if !topology.node(record.node).is_some_and(|n| caller.scope.allows(n)) {
        return not_found();
    }
    match content {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (header::HeaderName::from_static("x-content-sha256"), record.sha256),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            bytes,
        )
            .into_response(),
        None => code_body(StatusCode::GONE, ErrorCode::NotFound, "this log was deleted by its retention policy"),
    }
}

async fn metrics_get(State(app): State<App>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], app.metrics.encode())
        .into_response()
}

async fn graphql_get(State(app): State<App>, req: axum::extract::Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &()).await;
    let Ok(upgrade) = upgrade else {
        // The IDE lives at `/graphiql` (bundled, no CDN).
        return axum::response::Redirect::temporary("/graphiql").into_response();
    };
    let Ok(protocol) = GraphQLProtocol::from_request_parts(&mut parts, &()).await else {
        return (StatusCode::BAD_REQUEST, "unsupported WebSocket subprotocol (use graphql-transport-ws or graphql-ws)")
            .into_response();
    };
    // Per client address (when the server knows it), then the pending pool: a socket holds a
    // connection slot only once it has authenticated.
    let address = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let slot = match address {
        Some(ip) => {
            let mut map = app.per_address.lock().unwrap_or_else(|e| e.into_inner());
            let n = map.entry(ip).or_insert(0);
            if *n >= app.config.ws_max_per_address {
                return (StatusCode::TOO_MANY_REQUESTS, "too many WebSockets from this address").into_response();
            }
            *n += 1;
            Some(AddressSlot { map: app.per_address.clone(), ip })
        }
        None => None,
    };
    let Ok(pending) = app.pending.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many WebSockets waiting to authenticate").into_response();
    };
    let header_token = bearer(&parts.headers);
    let config = app.config.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(config.ws_max_message)
        .max_frame_size(config.ws_max_message)
        // Small buffers: a subscriber mostly idles, and clients send little. (The default
        // 128 KiB each way held ~150 KiB per socket: 1,000 subscribers took 150 MiB.)
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(WS_BUFFER)
        .on_upgrade(move |socket| async move {
            serve_socket(app, socket, protocol, header_token, pending).await;
            drop(slot);
        })
}

/// Why the server ended a WebSocket: sent to the client as the close frame's code and
/// reason (1008 policy violation: rate or subscriptions; 4403 forbidden: token revoked).
type CloseReason = Arc<std::sync::Mutex<Option<(u16, &'static str)>>>;

fn set_reason(reason: &CloseReason, code: u16, text: &'static str) {
    reason.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert((code, text));
}

async fn serve_socket(
    app: App,
    socket: WebSocket,
    protocol: GraphQLProtocol,
    header_token: Option<String>,
    pending: tokio::sync::OwnedSemaphorePermit,
) {
    let (mut sink, mut stream) = socket.split();
    // The client's messages come through a reader task that, once the session no longer
    // wants them, drains what the client still sends until its close (or 2 s): closing with
    // unread data would reset the connection and lose the close frame.
    let (in_tx, in_rx) = futures::channel::mpsc::channel::<Result<Message, axum::Error>>(64);
    let mut reader = tokio::spawn(async move {
        let mut in_tx = in_tx;
        while let Some(m) = stream.next().await {
            let closing = matches!(m, Ok(Message::Close(_)));
            if in_tx.send(m).await.is_err() || closing {
                break;
            }
        }
        let drain = async {
            while let Some(Ok(m)) = stream.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    });
    // The GraphQL session writes through a channel, so that the server can still send a
    // close frame with its reason once the session is over.
    let (tx, mut rx) = futures::channel::mpsc::channel::<Message>(16);
    // Frames already queued go out together: fed (tungstenite writes out whenever its 4 KiB
    // buffer fills), then one flush, so a burst of events costs a few writes, not one each.
    let forward = tokio::spawn(async move {
        'out: while let Some(m) = rx.next().await {
            if sink.feed(m).await.is_err() {
                break;
            }
            while let Ok(m) = rx.try_recv() {
                if sink.feed(m).await.is_err() {
                    break 'out;
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let closed = CancellationToken::new();
    let reason: CloseReason = Arc::default();
    let (token_tx, token_rx) = watch::channel(None::<String>);
    // Revocation: once authenticated, the token is checked again periodically.
    let watcher = {
        let (engine, closed, every) = (app.engine.clone(), closed.clone(), app.config.token_recheck);
        let deadline = app.config.ws_auth_deadline;
        let reason = reason.clone();
        let mut token_rx = token_rx;
        tokio::spawn(async move {
            let authenticated = async {
                loop {
                    if let Some(t) = token_rx.borrow_and_update().clone() {
                        break Some(t);
                    }
                    if token_rx.changed().await.is_err() {
                        break None;
                    }
                }
            };
            // A socket that does not authenticate in time is closed (graphql-transport-ws's
            // 4408), freeing its pending slot.
            let token = match tokio::time::timeout(deadline, authenticated).await {
                Ok(Some(t)) => t,
                Ok(None) => return,
                Err(_) => {
                    tracing::info!("closing a WebSocket that did not authenticate in time");
                    set_reason(&reason, 4408, "connection initialisation timeout");
                    closed.cancel();
                    return;
                }
            };
            loop {
                tokio::time::sleep(every).await;
                if !valid(&engine, Some(token.clone())).await {
                    tracing::info!("closing a WebSocket whose token was revoked");
                    set_reason(&reason, 4403, "API token revoked");
                    closed.cancel();
                    return;
                }
            }
        })
    };
    let input = guarded(in_rx.boxed(), &app.config, closed.clone(), reason.clone());
    let engine = app.engine.clone();
    let connections = app.connections.clone();
    // The connection slot, once authenticated; released when the socket ends.
    let held: Arc<std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>> = Arc::default();
    let _slot = held.clone();
    GraphQLWebSocket::new_with_pair(tx.clone(), input, app.schema.clone(), protocol)
        .on_connection_init(move |payload| async move {
            let token = init_token(&payload).or(header_token);
            if let Some(caller) = authenticate(&engine, token.clone()).await {
                // Authenticated: from the pending pool to a connection slot.
                let Ok(permit) = connections.try_acquire_owned() else {
                    return Err(schema::api_error(ErrorCode::RateLimited, "too many WebSocket connections"));
                };
                *held.lock().unwrap_or_else(|e| e.into_inner()) = Some(permit);
                drop(pending);
                let _ = token_tx.send(token.clone());
                let mut data = Data::default();
                data.insert(caller);
                if let Some(token) = token {
                    data.insert(crate::leader::Bearer(token));
                }
                Ok(data)
            } else {
                Err(schema::api_error(ErrorCode::Unauthenticated, "missing, unknown or revoked API token"))
            }
        })
        .serve()
        .await;
    closed.cancel();
    watcher.abort();
    let why = reason.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some((code, text)) = why {
        let frame = axum::extract::ws::CloseFrame { code, reason: text.into() };
        let _ = futures::SinkExt::send(&mut tx.clone(), Message::Close(Some(frame))).await;
    }
    drop(tx);
    let _ = forward.await;
    // Wait for the client's side of the closing handshake (bounded).
    if tokio::time::timeout(Duration::from_secs(3), &mut reader).await.is_err() {
        reader.abort();
    }
}

/// The token from a `connection_init` payload.
fn init_token(payload: &serde_json::Value) -> Option<String> {
    let header = |v: &serde_json::Value| {
        ["Authorization", "authorization"].iter().find_map(|k| v.get(*k)?.as_str().map(str::to_owned)).and_then(|h| {
            let (scheme, token) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
        })
    };
    header(payload)
        .or_else(|| payload.get("headers").and_then(header))
        .or_else(|| ["token", "authToken"].iter().find_map(|k| payload.get(*k)?.as_str().map(str::to_owned)))
}

/// The client's messages, ended (which closes the connection) when the client exceeds the
/// message rate or the subscription count, or when `closed` fires (revoked token).
fn guarded(
    stream: BoxStream<'static, Result<Message, axum::Error>>,
    config: &ServerConfig,
    closed: CancellationToken,
    reason: CloseReason,
) -> impl Stream<Item = Result<Message, axum::Error>> + Send + 'static {
    struct Guard {
        inner: BoxStream<'static, Result<Message, axum::Error>>,
        tokens: f64,
        refilled: Instant,
        burst: f64,
        rate: f64,
        subscriptions: std::collections::HashSet<String>,
        max_subscriptions: usize,
        closed: CancellationToken,
        reason: CloseReason,
        done: bool,
    }
    let guard = Guard {
        inner: stream,
        tokens: f64::from(config.ws_burst),
        refilled: Instant::now(),
        burst: f64::from(config.ws_burst),
        rate: f64::from(config.ws_per_second),
        subscriptions: std::collections::HashSet::new(),
        max_subscriptions: config.ws_max_subscriptions,
        closed,
        reason,
        done: false,
    };
    futures::stream::unfold(guard, |mut g| async move {
        if g.done {
            return None;
        }
        let next = tokio::select! {
            m = g.inner.next() => m,
            _ = g.closed.cancelled() => None,
        };
        let msg = match next {
            None => return None,
            Some(Err(e)) => return Some((Err(e), Guard { done: true, ..g })),
            Some(Ok(m)) => m,
        };
        let now = Instant::now();
        g.tokens = (g.tokens + now.duration_since(g.refilled).as_secs_f64() * g.rate).min(g.burst);
        g.refilled = now;
        if g.tokens < 1.0 {
            tracing::warn!("closing a WebSocket that exceeds the message rate");
            set_reason(&g.reason, 1008, "message rate exceeded");
            return Some((Err(axum::Error::new("message rate exceeded")), Guard { done: true, ..g }));
        }
        g.tokens -= 1.0;
        let bytes: Option<&[u8]> = match &msg {
            Message::Text(text) => Some(text.as_str().as_bytes()),
            Message::Binary(data) => Some(data),
            _ => None,
        };
        if let Some(v) = bytes.and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok()) {
            // Counted by id, text or binary frames alike; a `complete` for an id that is not
            // open frees nothing.
            let id = v.get("id").map(|i| i.to_string()).unwrap_or_default();
            match v.get("type").and_then(|t| t.as_str()) {
                Some("subscribe" | "start") => {
                    g.subscriptions.insert(id);
                }
                Some("complete" | "stop") => {
                    g.subscriptions.remove(&id);
                }
                _ => {}
            }
            if g.subscriptions.len() > g.max_subscriptions {
                tracing::warn!("closing a WebSocket that holds too many subscriptions");
                set_reason(&g.reason, 1008, "too many subscriptions");
                return Some((Err(axum::Error::new("too many subscriptions")), Guard { done: true, ..g }));
            }
        }
        Some((Ok(msg), g))
    })
}
