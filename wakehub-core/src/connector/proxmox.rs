//! The Proxmox VE connector (`type = "proxmox"`, reqwest + rustls): VMs and LXCs through
//! the Proxmox API of the host they run on.
//!
//! The guest names its `vmid`; the host's connector table gives the endpoint:
//! `proxmox_url` (`https://pve:8006`), `proxmox_node` (the PVE node name, default `pve`),
//! and either an API token (`proxmox_token_id = "user@realm!name"`,
//! `proxmox_token_secret`) or a user and password (`proxmox_user`, `proxmox_password`;
//! ticket login, renewed before it expires, `CSRFPreventionToken` on writes). TLS: the
//! system roots, or — Proxmox ships self-signed certificates — a pinned SHA-256
//! certificate fingerprint `proxmox_fingerprint = "AB:CD:…"`. Never "accept anything".
//!
//! Start, graceful shutdown (`stop = "shutdown"`, default; `force_stop = true` lets Proxmox
//! fall back to a hard stop after `shutdown_timeout_secs`) or hard `stop = "stop"`: every
//! action's UPID task is followed to its end and a failed `exitstatus` is reported.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

use super::transport::cause_chain;
use super::transport::tls::{PIN_MISMATCH, pinned_tls};
use super::{ConfigError, Connector, ConnectorError, DiscoveredGuest, ErrorCode, PowerState, Target};
use crate::model::{ConnectorConfig, Kind};
use crate::secrets::SecretString;

/// Tickets are valid two hours; renew well before.
const TICKET_RENEW: Duration = Duration::from_secs(90 * 60);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct EndpointKey {
    url: String,
    node: String,
    identity: String,
    fingerprint: Option<String>,
}

#[derive(Clone)]
enum Auth {
    Token { id: String, secret: SecretString },
    Password { user: String, password: SecretString },
}

struct Ticket {
    ticket: SecretString,
    csrf: SecretString,
    obtained: Instant,
}

/// One Proxmox endpoint: an HTTP client (pinned or not) and its login.
struct Api {
    client: Client,
    url: String,
    node: String,
    auth: Auth,
    ticket: tokio::sync::Mutex<Option<Ticket>>,
}

/// The Proxmox connector. One client per endpoint and identity, reused across calls.
#[derive(Default)]
pub struct ProxmoxConnector {
    apis: Mutex<HashMap<EndpointKey, Arc<Api>>>,
}

impl ProxmoxConnector {
    /// A connector with no client yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn host_config(target: &Target) -> Result<&ConnectorConfig, ConnectorError> {
        let host = target.host.as_ref().ok_or_else(|| invalid(target, "proxmox: the guest has no host"))?;
        if host.config.str("proxmox_url").is_none() {
            return Err(invalid(target, &format!("proxmox: its host `{}` has no `proxmox_url`", host.name)));
        }
        Ok(&host.config)
    }

    /// The API of the host a guest runs on.
    fn api(&self, target: &Target) -> Result<Arc<Api>, ConnectorError> {
        let host = Self::host_config(target)?;
        self.api_at(target, host)
    }

    /// The API a node's own table describes (a Proxmox host, for discovery and shutdown).
    fn own_api(&self, target: &Target) -> Result<Arc<Api>, ConnectorError> {
        if target.config.str("proxmox_url").is_none() {
            return Err(invalid(target, "proxmox: the node has no `proxmox_url`"));
        }
        self.api_at(target, &target.config)
    }

    fn api_at(&self, target: &Target, host: &ConnectorConfig) -> Result<Arc<Api>, ConnectorError> {
        let url = host.str("proxmox_url").unwrap_or_default().trim_end_matches('/').to_owned();
        let node = host.str("proxmox_node").unwrap_or("pve").to_owned();
        let auth = match (host.str("proxmox_token_id"), host.str("proxmox_user")) {
            (Some(id), _) => Auth::Token {
                id: id.to_owned(),
                secret: target
                    .secret(host, "proxmox_token_secret")?
                    .ok_or_else(|| invalid(target, "proxmox: `proxmox_token_id` needs `proxmox_token_secret`"))?,
            },
            (None, Some(user)) => Auth::Password {
                user: user.to_owned(),
                password: target
                    .secret(host, "proxmox_password")?
                    .ok_or_else(|| invalid(target, "proxmox: `proxmox_user` needs `proxmox_password`"))?,
            },
            (None, None) => {
                return Err(invalid(target, "proxmox: the host needs `proxmox_token_id` or `proxmox_user`"));
            }
        };
        let identity = match &auth {
            Auth::Token { id, .. } => id.clone(),
            Auth::Password { user, .. } => user.clone(),
        };
        let fingerprint = host.str("proxmox_fingerprint").map(str::to_owned);
        let key = EndpointKey { url: url.clone(), node: node.clone(), identity, fingerprint: fingerprint.clone() };
        if let Some(api) = self.apis.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(api.clone());
        }
        let mut builder = Client::builder().timeout(Duration::from_secs(30)).connect_timeout(Duration::from_secs(5));
        if let Some(fp) = &fingerprint {
            builder = builder.use_preconfigured_tls(pinned_tls(fp).map_err(|e| invalid(target, &e))?);
        }
        let client = builder.build().map_err(|e| invalid(target, &format!("proxmox: HTTP client: {e}")))?;
        let api = Arc::new(Api { client, url, node, auth, ticket: tokio::sync::Mutex::new(None) });
        self.apis.lock().unwrap_or_else(|e| e.into_inner()).insert(key, api.clone());
        Ok(api)
    }

    fn guest_path(target: &Target, api: &Api) -> Result<String, ConnectorError> {
        let vmid =
            target.config.int("vmid").ok_or_else(|| invalid(target, "proxmox: `vmid` (a number) is required"))?;
        let kind = if target.kind == Kind::Lxc { "lxc" } else { "qemu" };
        Ok(format!("/nodes/{}/{kind}/{vmid}", api.node))
    }
}

impl ProxmoxConnector {
    /// Shuts a Proxmox host itself down through its API (`POST /nodes/{node}/status`,
    /// `command=shutdown`), the alternative to SSH: `target` is the host, its own table
    /// holds `proxmox_url`, `proxmox_node` and the credentials.
    pub async fn shutdown_host(&self, target: &Target) -> Result<(), ConnectorError> {
        let api = self.own_api(target)?;
        let path = format!("/nodes/{}/status", api.node);
        api.call(target, Method::POST, &path, &[("command", "shutdown".to_owned())]).await.map(|_| ())
    }
}

/// One entry of `/nodes/{node}/qemu` or `/nodes/{node}/lxc` as a discovered guest
/// (`None` for a template, which never runs).
fn guest_of(item: &Value, kind: Kind) -> Option<DiscoveredGuest> {
    let vmid = item["vmid"].as_i64().or_else(|| item["vmid"].as_str()?.parse().ok())?;
    if item["template"].as_i64() == Some(1) || item["template"].as_str() == Some("1") {
        return None;
    }
    let flavour = if kind == Kind::Lxc { "lxc" } else { "qemu" };
    let name =
        item["name"].as_str().filter(|n| !n.is_empty()).map(str::to_owned).unwrap_or(format!("{flavour}-{vmid}"));
    let status = match item["status"].as_str() {
        Some("running") => PowerState::On,
        Some("stopped") => PowerState::Off,
        _ => PowerState::Unknown,
    };
    let tags: Vec<&str> =
        item["tags"].as_str().map(|t| t.split([';', ',', ' ']).filter(|t| !t.is_empty()).collect()).unwrap_or_default();
    let mut connector = ConnectorConfig::new("proxmox");
    connector.settings.insert("vmid".into(), crate::model::ConfigValue::Integer(vmid));
    let mut details = serde_json::json!({
        "vmid": vmid,
        "type": flavour,
        "name": name,
        "status": item["status"],
        "tags": tags,
    });
    for key in ["maxmem", "maxdisk", "cpus", "uptime", "lock"] {
        if !item[key].is_null() {
            details[key] = item[key].clone();
        }
    }
    let timeouts = kind.default_timeouts();
    Some(DiscoveredGuest { key: format!("{flavour}/{vmid}"), name, kind, timeouts, connector, status, details })
}

fn invalid(target: &Target, message: &str) -> ConnectorError {
    ConnectorError::new(ErrorCode::InvalidConfig, format!("{}: {message}", target.name))
}

/// A transport failure as a code: a pin mismatch, or the API cannot be reached.
fn transport_error(target: &Target, e: &reqwest::Error) -> ConnectorError {
    let chain = cause_chain(e);
    if chain.contains(PIN_MISMATCH) {
        return ConnectorError::new(
            ErrorCode::TlsPinMismatch,
            format!("{}: proxmox: the server's certificate does not match `proxmox_fingerprint`", target.name),
        );
    }
    let what = if chain.contains("certificate") || chain.contains("UnknownIssuer") {
        "its TLS certificate is not trusted (pin it with `proxmox_fingerprint`)"
    } else if e.is_timeout() {
        return ConnectorError::new(
            ErrorCode::Timeout,
            format!("{}: proxmox: the API did not answer in time", target.name),
        );
    } else {
        "it does not answer"
    };
    ConnectorError::new(ErrorCode::Unreachable, format!("{}: proxmox: cannot reach the API: {what}", target.name))
}

impl Api {
    async fn login(&self, target: &Target, user: &str, password: &SecretString) -> Result<Ticket, ConnectorError> {
        let resp = self
            .client
            .post(format!("{}/api2/json/access/ticket", self.url))
            .form(&[("username", user), ("password", password.expose())])
            .send()
            .await
            .map_err(|e| transport_error(target, &e))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(ConnectorError::new(
                ErrorCode::AuthFailed,
                format!("{}: proxmox: login of `{user}` refused (wrong user or password)", target.name),
            ));
        }
        let body: Value = resp.json().await.map_err(|e| transport_error(target, &e))?;
        let data = &body["data"];
        match (data["ticket"].as_str(), data["CSRFPreventionToken"].as_str()) {
            (Some(t), Some(c)) => {
                Ok(Ticket { ticket: SecretString::new(t), csrf: SecretString::new(c), obtained: Instant::now() })
            }
            _ => Err(ConnectorError::new(
                ErrorCode::PlatformError,
                format!("{}: proxmox: login answered no ticket", target.name),
            )),
        }
    }

    /// One API call; `form` for writes. Logs in (or renews the ticket) as needed.
    async fn call(
        &self,
        target: &Target,
        method: Method,
        path: &str,
        form: &[(&str, String)],
    ) -> Result<Value, ConnectorError> {
        for attempt in 0..2 {
            let mut req = self.client.request(method.clone(), format!("{}/api2/json{path}", self.url));
            match &self.auth {
                Auth::Token { id, secret } => {
                    req = req.header("Authorization", format!("PVEAPIToken={id}={}", secret.expose()));
                }
                Auth::Password { user, password } => {
                    let mut ticket = self.ticket.lock().await;
                    if attempt > 0 || ticket.as_ref().is_none_or(|t| t.obtained.elapsed() > TICKET_RENEW) {
                        *ticket = Some(self.login(target, user, password).await?);
                    }
                    if let Some(t) = ticket.as_ref() {
                        req = req.header("Cookie", format!("PVEAuthCookie={}", t.ticket.expose()));
                        if method != Method::GET {
                            req = req.header("CSRFPreventionToken", t.csrf.expose());
                        }
                    }
                }
            }
            if !form.is_empty() {
                req = req.form(form);
            }
            let resp = req.send().await.map_err(|e| transport_error(target, &e))?;
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(body["data"].clone());
            }
            if status == StatusCode::UNAUTHORIZED && attempt == 0 && matches!(self.auth, Auth::Password { .. }) {
                continue; // the ticket expired: log in again once
            }
            let message = body["message"].as_str().map(str::trim).unwrap_or("").to_owned();
            let detail = match body.get("errors") {
                Some(Value::Object(errors)) if !errors.is_empty() => errors
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("; "),
                _ => message.clone(),
            };
            let code = match status.as_u16() {
                401 | 403 => ErrorCode::AuthFailed,
                595 => ErrorCode::Unreachable,
                _ if message.contains("does not exist") => ErrorCode::NotFound,
                _ => ErrorCode::PlatformError,
            };
            return Err(ConnectorError::new(
                code,
                format!("{}: proxmox: {method} {path} answered {}: {detail}", target.name, status.as_u16()),
            ));
        }
        Err(ConnectorError::new(ErrorCode::AuthFailed, format!("{}: proxmox: authentication refused", target.name)))
    }

    /// Follows a task (UPID) to its end; a failed `exitstatus` is an error.
    async fn follow(&self, target: &Target, upid: &str, what: &str) -> Result<(), ConnectorError> {
        let path = format!("/nodes/{}/tasks/{}/status", self.node, encode_segment(upid));
        let mut delay = Duration::from_millis(100);
        loop {
            let task = self.call(target, Method::GET, &path, &[]).await?;
            if task["status"].as_str() == Some("stopped") {
                return match task["exitstatus"].as_str() {
                    Some("OK") => Ok(()),
                    other => Err(ConnectorError::new(
                        ErrorCode::PlatformError,
                        format!("{}: proxmox: {what} failed: {}", target.name, other.unwrap_or("no exit status")),
                    )),
                };
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }
}

/// Percent-encodes a path segment (UPIDs contain `:`).
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[async_trait::async_trait]
impl Connector for ProxmoxConnector {
    async fn status(&self, target: &Target) -> Result<PowerState, ConnectorError> {
        let api = self.api(target)?;
        let path = format!("{}/status/current", Self::guest_path(target, &api)?);
        let data = api.call(target, Method::GET, &path, &[]).await?;
        Ok(match (data["status"].as_str(), data["qmpstatus"].as_str()) {
            (Some("running"), Some("paused" | "suspended")) => PowerState::Off,
            (Some("running"), _) => PowerState::On,
            (Some("stopped"), _) => PowerState::Off,
            _ => PowerState::Unknown,
        })
    }

    /// The guest's current CPU use (Proxmox averages it: `cpu` is a fraction of its `cpus`)
    /// and its network bytes in and out so far.
    async fn load(&self, target: &Target) -> Result<super::activity::Load, ConnectorError> {
        let api = self.api(target)?;
        let path = format!("{}/status/current", Self::guest_path(target, &api)?);
        let data = api.call(target, Method::GET, &path, &[]).await?;
        let cpus = data["cpus"].as_f64().unwrap_or(1.0);
        let cpu = data["cpu"].as_f64().map(|f| super::activity::Cpu::Percent(f * cpus * 100.0));
        let net = match (data["netin"].as_u64(), data["netout"].as_u64()) {
            (Some(i), Some(o)) => Some(i + o),
            _ => None,
        };
        Ok(super::activity::Load { cpu, net_bytes: net, ..Default::default() })
    }

    async fn start(&self, target: &Target) -> Result<(), ConnectorError> {
        let api = self.api(target)?;
        let path = format!("{}/status/start", Self::guest_path(target, &api)?);
        let upid = api.call(target, Method::POST, &path, &[]).await?;
        match upid.as_str() {
            Some(upid) => api.follow(target, upid, "start").await,
            None => Ok(()),
        }
    }

    async fn stop(&self, target: &Target) -> Result<(), ConnectorError> {
        let api = self.api(target)?;
        let base = Self::guest_path(target, &api)?;
        let hard = target.config.str("stop") == Some("stop");
        let (path, form) = if hard {
            (format!("{base}/status/stop"), Vec::new())
        } else {
            let timeout = target.config.int("shutdown_timeout_secs").unwrap_or(120).clamp(1, 3600);
            let mut form = vec![("timeout", timeout.to_string())];
            if target.config.settings.get("force_stop") == Some(&crate::model::ConfigValue::Bool(true)) {
                form.push(("forceStop", "1".to_owned()));
            }
            (format!("{base}/status/shutdown"), form)
        };
        let upid = api.call(target, Method::POST, &path, &form).await?;
        match upid.as_str() {
            Some(upid) => api.follow(target, upid, if hard { "stop" } else { "shutdown" }).await,
            None => Ok(()),
        }
    }

    /// The VMs and LXCs of a Proxmox host (templates left out).
    async fn discover(&self, host: &Target) -> Result<Vec<DiscoveredGuest>, ConnectorError> {
        let api = self.own_api(host)?;
        let mut guests = Vec::new();
        for (flavour, kind) in [("qemu", Kind::Vm), ("lxc", Kind::Lxc)] {
            let list = api.call(host, Method::GET, &format!("/nodes/{}/{flavour}", api.node), &[]).await?;
            let items = list.as_array().ok_or_else(|| {
                ConnectorError::new(
                    ErrorCode::PlatformError,
                    format!("{}: proxmox: the {flavour} listing is not a list", host.name),
                )
            })?;
            guests.extend(items.iter().filter_map(|item| guest_of(item, kind.clone())));
        }
        guests.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(guests)
    }

    fn validate(&self, config: &ConnectorConfig) -> Result<(), ConfigError> {
        validate(config).map_err(ConfigError::new)
    }

    fn validate_host(&self, host: &ConnectorConfig) -> Result<(), ConfigError> {
        const KEYS: [&str; 7] = [
            "proxmox_url",
            "proxmox_node",
            "proxmox_token_id",
            "proxmox_token_secret",
            "proxmox_user",
            "proxmox_password",
            "proxmox_fingerprint",
        ];
        for key in host.settings.keys().filter(|k| k.starts_with("proxmox_")) {
            if !KEYS.contains(&key.as_str()) {
                return Err(ConfigError::key(
                    key,
                    format!("proxmox: unknown key `{key}` (expected {})", KEYS.join(", ")),
                ));
            }
        }
        if let Some(url) = host.settings.get("proxmox_url") {
            let ok = matches!(url, crate::model::ConfigValue::String(u)
                if reqwest::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()));
            if !ok {
                return Err(ConfigError::key("proxmox_url", "proxmox: `proxmox_url` must be an http(s) URL"));
            }
        }
        if let Some(fp) = host.settings.get("proxmox_fingerprint") {
            match fp {
                crate::model::ConfigValue::String(fp) => {
                    crate::connector::transport::tls::parse_fingerprint(fp)
                        .map_err(|e| ConfigError::key("proxmox_fingerprint", e))?;
                }
                _ => return Err(ConfigError::key("proxmox_fingerprint", "proxmox: `proxmox_fingerprint` is a string")),
            }
        }
        Ok(())
    }
}

fn validate(config: &ConnectorConfig) -> Result<(), String> {
    for key in config.settings.keys() {
        match crate::connector::check_ssh_access_key(config, key) {
            Some(checked) => checked.map_err(|e| format!("proxmox: {e}"))?,
            None if ["vmid", "stop", "force_stop", "shutdown_timeout_secs"].contains(&key.as_str()) => {}
            None => {
                return Err(format!(
                    "proxmox: unknown key `{key}` (expected vmid, stop, force_stop, shutdown_timeout_secs; to reach \
                     the guest over SSH: {}, reboot_command or an action `NAME_command`)",
                    crate::connector::SSH_ACCESS_KEYS.join(", ")
                ));
            }
        }
    }
    if config.int("vmid").is_none_or(|v| v < 1) {
        return Err("proxmox: `vmid` (a positive number) is required".into());
    }
    match config.str("stop") {
        None | Some("shutdown" | "stop") => {}
        Some(other) => return Err(format!("proxmox: `stop` is \"shutdown\" or \"stop\", not \"{other}\"")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upids_are_encoded() {
        assert_eq!(
            encode_segment("UPID:pve1:0001:qmstart:100:root@pam:"),
            "UPID%3Apve1%3A0001%3Aqmstart%3A100%3Aroot%40pam%3A"
        );
    }
}
