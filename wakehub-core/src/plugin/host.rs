//! What a plugin may call: one implementation per capability interface of the WIT world,
//! each checking the call against the node's configuration (the grant) first.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::latest::wakehub::connector::{clock, http, log, ssh, tcp, types, wol};
use crate::connector::transport::{cause_chain, ssh as ssh_exec, tls, wol as magic};
use crate::connector::{Notice, Target};
use crate::model::{ConfigValue, ConnectorConfig};

/// Caps a store's linear memory; remembers a refusal (to report `PLUGIN_MEMORY`).
pub(super) struct Limiter {
    max: usize,
    pub(super) denied: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The per-call store data: an empty WASI context, the limits, and the node the call is
/// about (whose configuration is the grant).
pub(super) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: Limiter,
    target: Option<Target>,
    deadline: Instant,
    log_left: usize,
    plugin_log_name: String,
    clients: Arc<HttpClients>,
}

/// The HTTP clients plugins' requests go through, one per set of granted hosts and pinned
/// certificate (what a client's redirect policy and TLS depend on): connections stay alive
/// from one call to the next instead of a client, and its pool, per request. Secrets are
/// per request (headers), never in a client.
#[derive(Default)]
pub(super) struct HttpClients(Mutex<HashMap<ClientKey, reqwest::Client>>);

/// What a client depends on: the granted hosts (its redirect policy) and the pinned
/// certificate.
type ClientKey = (BTreeSet<String>, Option<String>);

/// At most this many clients are kept; past it the cache starts again.
const MAX_CLIENTS: usize = 256;

impl HttpClients {
    fn get(
        &self,
        grants: &BTreeSet<String>,
        fingerprint: Option<&str>,
    ) -> Result<reqwest::Client, types::ConnectorError> {
        let key = (grants.clone(), fingerprint.map(str::to_owned));
        let mut clients = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        // Redirects are followed only to granted hosts.
        let redirect_grants = grants.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            let url = attempt.url();
            let ok =
                url.host_str().is_some_and(|h| allowed(&redirect_grants, h, url.port_or_known_default().unwrap_or(0)));
            if attempt.previous().len() > 5 || !ok { attempt.stop() } else { attempt.follow() }
        });
        let mut builder = reqwest::Client::builder().redirect(policy).connect_timeout(Duration::from_secs(10));
        if let Some(fp) = fingerprint {
            let tls = tls::pinned_tls(fp)
                .map_err(|e| failure(types::ErrorCode::InvalidConfig, format!("`tls_fingerprint`: {e}")))?;
            builder = builder.use_preconfigured_tls(tls);
        }
        let client =
            builder.build().map_err(|e| failure(types::ErrorCode::PlatformError, format!("HTTP client: {e}")))?;
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl State {
    pub(super) fn new(
        target: Option<Target>,
        deadline: Instant,
        limits: &super::PluginLimits,
        clients: Arc<HttpClients>,
    ) -> State {
        State {
            // No preopened directories, no sockets, no environment, no arguments.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: Limiter { max: limits.memory_bytes, denied: false },
            plugin_log_name: target.as_ref().map(|t| t.config.type_name.clone()).unwrap_or_default(),
            target,
            deadline,
            log_left: limits.log_bytes,
            clients,
        }
    }

    fn error(&self, code: types::ErrorCode, message: impl Into<String>) -> types::ConnectorError {
        failure(code, message)
    }

    /// A denied capability: answered to the plugin, logged, and journaled (a
    /// `capability-denied` event) when the call comes from an engine.
    fn deny(&self, what: String) -> types::ConnectorError {
        let node = self.target.as_ref().map(|t| t.name.as_str()).unwrap_or("-");
        tracing::warn!(plugin = %self.plugin_log_name, node, "capability denied: {what}");
        if let Some(target) = &self.target {
            target.notify(Notice::CapabilityDenied {
                node: target.node,
                name: target.name.clone(),
                plugin: self.plugin_log_name.clone(),
                what: what.clone(),
            });
        }
        self.error(types::ErrorCode::CapabilityDenied, format!("capability denied: {what}"))
    }

    /// The node, or `capability-denied` (no node: `describe`, `validate`).
    fn context(&self) -> Result<&Target, types::ConnectorError> {
        self.target.as_ref().ok_or_else(|| self.deny("no node in this call".into()))
    }

    fn time_left(&self) -> Result<Duration, types::ConnectorError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.error(types::ErrorCode::Timeout, "the call's time is up"));
        }
        Ok(left)
    }

    /// The secret at `key` in the node's own table, else in its host's (the endpoint the
    /// host offers, as for native connectors); anything else is not granted.
    fn secret(&self, key: &str) -> Result<crate::secrets::SecretString, types::ConnectorError> {
        let target = self.context()?;
        let tables = std::iter::once(&target.config).chain(target.host.as_ref().map(|h| &h.config));
        for table in tables {
            match target.secret(table, key) {
                Ok(Some(s)) => return Ok(s),
                Ok(None) => {}
                Err(e) => return Err(self.error(types::ErrorCode::InvalidConfig, e.message)),
            }
        }
        Err(self.deny(format!("the credential `{key}`, which this node's configuration does not hold")))
    }
}

/// An error the host answers a plugin with; retryable when unreachable or timed out.
fn failure(code: types::ErrorCode, message: impl Into<String>) -> types::ConnectorError {
    let retryable = matches!(code, types::ErrorCode::Unreachable | types::ErrorCode::Timeout);
    types::ConnectorError { code, message: message.into(), retryable }
}

/// What a failed HTTP exchange means for the plugin.
fn http_error(e: reqwest::Error) -> types::ConnectorError {
    let chain = cause_chain(&e);
    let code = if chain.contains(tls::PIN_MISMATCH) {
        types::ErrorCode::TlsPinMismatch
    } else if e.is_timeout() {
        types::ErrorCode::Timeout
    } else {
        types::ErrorCode::Unreachable
    };
    failure(code, format!("HTTP: {chain}"))
}

fn from_native(e: crate::connector::ConnectorError) -> types::ConnectorError {
    use crate::connector::ErrorCode as N;
    use types::ErrorCode as W;
    let code = match e.code {
        N::AuthFailed => W::AuthFailed,
        N::Unreachable => W::Unreachable,
        N::Timeout => W::Timeout,
        N::NotFound => W::NotFound,
        N::HostKeyMismatch => W::HostKeyMismatch,
        N::TlsPinMismatch => W::TlsPinMismatch,
        N::InvalidConfig => W::InvalidConfig,
        N::Unsupported => W::Unsupported,
        N::CapabilityDenied => W::CapabilityDenied,
        N::Conflict => W::Busy,
        N::RateLimited => W::RateLimited,
        _ => W::PlatformError,
    };
    types::ConnectorError { code, message: e.message, retryable: e.retryable }
}

/// The hosts (`host` or `host:port`) a node's configuration names: the host of every
/// `…url` key, its `host` key and its `allow_hosts` list, in its own table and its host's.
pub(super) fn granted_hosts(target: &Target) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let tables = std::iter::once(&target.config).chain(target.host.as_ref().map(|h| &h.config));
    for config in tables {
        for (key, value) in &config.settings {
            match value {
                ConfigValue::String(s) if key.ends_with("url") => {
                    if let Ok(url) = reqwest::Url::parse(s)
                        && let Some(host) = url.host_str()
                    {
                        out.insert(format!("{host}:{}", url.port_or_known_default().unwrap_or(0)));
                    }
                }
                ConfigValue::String(s) if key == "host" => {
                    out.insert(s.clone());
                }
                ConfigValue::Array(items) if key == "allow_hosts" => {
                    out.extend(items.iter().filter_map(|i| match i {
                        ConfigValue::String(s) => Some(s.clone()),
                        _ => None,
                    }));
                }
                _ => {}
            }
        }
    }
    out
}

/// Whether `host:port` is granted (a grant without a port allows every port of the host).
fn allowed(grants: &BTreeSet<String>, host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    grants.contains(host) || grants.contains(&format!("{host}:{port}"))
}

/// A configuration as the plugin sees it: JSON, secrets as `{"secret": true}`.
pub(super) fn config_json(config: &ConnectorConfig) -> serde_json::Value {
    fn value(v: &ConfigValue) -> serde_json::Value {
        match v {
            ConfigValue::String(s) => s.clone().into(),
            ConfigValue::Integer(i) => (*i).into(),
            ConfigValue::Float(f) => (*f).into(),
            ConfigValue::Bool(b) => (*b).into(),
            ConfigValue::Array(a) => a.iter().map(value).collect(),
            ConfigValue::Table(t) => t.iter().map(|(k, v)| (k.clone(), value(v))).collect(),
            _ => serde_json::json!({ "secret": true }),
        }
    }
    config.settings.iter().map(|(k, v)| (k.clone(), value(v))).collect()
}

/// A connector table as its plugin's schema sees it: like [`config_json`], but a secret is
/// a string (it is written as one; its value stays with the host).
pub(super) fn config_for_schema(config: &ConnectorConfig) -> serde_json::Value {
    let mut json = config_json(config);
    if let Some(table) = json.as_object_mut() {
        for value in table.values_mut() {
            if *value == serde_json::json!({ "secret": true }) {
                *value = "(secret)".into();
            }
        }
    }
    json
}

/// The node a call is about, as the WIT record.
pub(super) fn node_of(target: &Target) -> types::Node {
    types::Node {
        name: target.name.clone(),
        kind: target.kind.as_str().to_owned(),
        config: config_json(&target.config).to_string(),
        host_config: target.host.as_ref().map(|h| config_json(&h.config).to_string()),
    }
}

impl types::Host for State {}

const MAX_BODY: usize = 4 << 20;

impl http::Host for State {
    async fn send(&mut self, req: http::Request) -> Result<http::Response, types::ConnectorError> {
        let left = self.time_left()?;
        let target = self.context()?;
        let url = reqwest::Url::parse(&req.url)
            .map_err(|e| self.error(types::ErrorCode::InvalidConfig, format!("bad URL `{}`: {e}", req.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self.deny(format!("scheme `{}` (only http and https)", url.scheme())));
        }
        let grants = granted_hosts(target);
        let (host, port) = (url.host_str().unwrap_or_default().to_owned(), url.port_or_known_default().unwrap_or(0));
        if !allowed(&grants, &host, port) {
            return Err(self.deny(format!("HTTP to {host}:{port}, which this node's configuration does not name")));
        }
        let timeout = req.timeout_ms.map_or(left, |ms| Duration::from_millis(ms.into()).min(left));
        let fingerprint =
            target.config.str("tls_fingerprint").or_else(|| target.host.as_ref()?.config.str("tls_fingerprint"));
        let client = self.clients.get(&grants, fingerprint)?;
        let method = reqwest::Method::from_bytes(req_method_name(&req.method).as_bytes())
            .map_err(|e| self.error(types::ErrorCode::PlatformError, format!("HTTP method: {e}")))?;
        let mut request = client.request(method, url.clone()).timeout(timeout);
        for h in &req.headers {
            request = request.header(h.name.as_str(), h.value.as_str());
        }
        let mut digest = None;
        match &req.auth {
            None => {}
            Some(http::Auth::Basic((user, key))) => {
                request = request.basic_auth(user, Some(self.secret(key)?.expose()));
            }
            Some(http::Auth::Bearer(key)) => request = request.bearer_auth(self.secret(key)?.expose()),
            Some(http::Auth::Header((name, key))) => {
                request = request.header(name.as_str(), self.secret(key)?.expose());
            }
            Some(http::Auth::Digest((user, key))) => digest = Some((user.clone(), self.secret(key)?)),
        }
        if let Some(body) = &req.body {
            request = request.body(body.clone());
        }
        let resp = match digest {
            None => request.send().await.map_err(http_error)?,
            Some((user, password)) => {
                // A body given as bytes can always be sent again.
                let again = request.try_clone();
                let first = request.send().await.map_err(http_error)?;
                match (digest_challenge(&first), again) {
                    (Some(challenge), Some(again)) => {
                        let method = req_method_name(&req.method);
                        let answer = digest_answer(&challenge, &user, password.expose(), &url, method, &req.body)
                            .map_err(|m| failure(types::ErrorCode::AuthFailed, m))?;
                        again.header(reqwest::header::AUTHORIZATION, answer).send().await.map_err(http_error)?
                    }
                    _ => first,
                }
            }
        };
        read_response(resp).await.map_err(http_error)
    }
}

/// A response, its body bounded by [`MAX_BODY`].
async fn read_response(mut resp: reqwest::Response) -> Result<http::Response, reqwest::Error> {
    let status = resp.status().as_u16();
    let headers: Vec<http::Header> = resp
        .headers()
        .iter()
        .map(|(k, v)| http::Header { name: k.to_string(), value: v.to_str().unwrap_or_default().to_owned() })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            body.truncate(MAX_BODY);
            break;
        }
    }
    Ok(http::Response { status, headers, body })
}

fn req_method_name(m: &http::Method) -> &'static str {
    match m {
        http::Method::Get => "GET",
        http::Method::Head => "HEAD",
        http::Method::Post => "POST",
        http::Method::Put => "PUT",
        http::Method::Patch => "PATCH",
        http::Method::Delete => "DELETE",
    }
}

/// The `Digest` challenge of a `401` answer, if it has one.
fn digest_challenge(resp: &reqwest::Response) -> Option<String> {
    if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
        return None;
    }
    resp.headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.trim_start().get(..7).is_some_and(|s| s.eq_ignore_ascii_case("digest ")))
        .map(str::to_owned)
}

/// The `Authorization` value answering a digest `challenge` (RFC 7616) for a request to
/// `url`: the URI digested is its path and query, as the request line writes them.
fn digest_answer(
    challenge: &str,
    user: &str,
    password: &str,
    url: &reqwest::Url,
    method: &str,
    body: &Option<Vec<u8>>,
) -> Result<String, String> {
    let mut prompt =
        digest_auth::parse(challenge).map_err(|e| format!("HTTP digest: a challenge we cannot read: {e}"))?;
    let uri = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let context = digest_auth::AuthContext::new_with_method(
        user,
        password,
        uri,
        body.as_deref(),
        digest_auth::HttpMethod::from(method),
    );
    let answer = prompt.respond(&context).map_err(|e| format!("HTTP digest: cannot answer the challenge: {e}"))?;
    Ok(answer.to_header_string())
}

impl ssh::Host for State {
    async fn exec(
        &mut self,
        user: String,
        password_key: String,
        command: String,
    ) -> Result<ssh::Output, types::ConnectorError> {
        let left = self.time_left()?;
        let target = self.context()?;
        let Some(host) = target.config.str("host").map(str::to_owned) else {
            return Err(self.deny("SSH: the node's configuration names no `host`".into()));
        };
        if target.config.str("ssh_user").is_some_and(|u| u != user) {
            return Err(self.deny(format!("SSH as `{user}`: the node's configuration names another `ssh_user`")));
        }
        let port = match target.config.int("ssh_port") {
            None => 22,
            Some(p) => u16::try_from(p).map_err(|_| self.error(types::ErrorCode::InvalidConfig, "bad `ssh_port`"))?,
        };
        let password = self.secret(&password_key)?;
        let auth = ssh_exec::SshAuth::Password(password);
        let run = ssh_exec::ssh_exec(target, &host, port, &user, auth, &command);
        match tokio::time::timeout(left, run).await {
            Ok(Ok((exit_code, output))) => Ok(ssh::Output { exit_code, output }),
            Ok(Err(e)) => Err(from_native(e)),
            Err(_) => Err(self.error(types::ErrorCode::Timeout, "SSH: the call's time is up")),
        }
    }
}

impl wol::Host for State {
    async fn wake(&mut self) -> Result<(), types::ConnectorError> {
        let left = self.time_left()?;
        let target = self.context()?;
        if target.config.str("mac").is_none() {
            return Err(self.deny("Wake-on-LAN: the node's configuration names no `mac`".into()));
        }
        let send = magic::wake(target);
        match tokio::time::timeout(left, send).await {
            Ok(r) => r.map_err(from_native),
            Err(_) => Err(self.error(types::ErrorCode::Timeout, "Wake-on-LAN: the call's time is up")),
        }
    }
}

impl tcp::Host for State {
    async fn probe(&mut self, host: String, port: u16, timeout_ms: u32) -> Result<bool, types::ConnectorError> {
        let left = self.time_left()?;
        let target = self.context()?;
        if !allowed(&granted_hosts(target), &host, port) {
            return Err(self.deny(format!("TCP to {host}:{port}, which this node's configuration does not name")));
        }
        let timeout = Duration::from_millis(timeout_ms.into()).min(left);
        let connect = tokio::net::TcpStream::connect((host, port));
        Ok(matches!(tokio::time::timeout(timeout, connect).await, Ok(Ok(_))))
    }
}

impl log::Host for State {
    async fn log(&mut self, level: log::Level, message: String) {
        if self.log_left == 0 {
            return;
        }
        let mut message: String = message.chars().take(self.log_left.min(4096)).collect();
        self.log_left = self.log_left.saturating_sub(message.len());
        if self.log_left == 0 {
            message.push_str(" … (log quota reached, the rest of this call's log is dropped)");
        }
        let node = self.target.as_ref().map(|t| t.name.as_str()).unwrap_or("-");
        let plugin = self.plugin_log_name.as_str();
        match level {
            log::Level::Debug => tracing::debug!(plugin, node, "{message}"),
            log::Level::Info => tracing::info!(plugin, node, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, node, "{message}"),
            log::Level::Error => tracing::error!(plugin, node, "{message}"),
        }
    }
}

impl clock::Host for State {
    async fn now_ms(&mut self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }

    async fn sleep_ms(&mut self, ms: u32) {
        let left = self.deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(Duration::from_millis(ms.into()).min(left)).await;
    }
}
