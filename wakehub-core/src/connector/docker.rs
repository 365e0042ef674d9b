//! The Docker connector (`type = "docker"`, bollard): containers on a Docker Engine.
//!
//! A container node names its container (`container = "paperless"`, a name or id). The
//! engine endpoint comes from the host it runs on — the parent's connector table key
//! `docker_host` — or from the node's own `docker_host`:
//! `unix:///run/docker.sock`, `tcp://host:2375` (plain HTTP), or `https://host:2376` /
//! `tcp://…` with `docker_tls_ca`, `docker_tls_cert`, `docker_tls_key` (file paths; mutual
//! TLS as Docker's own `--tlsverify`). The API version is negotiated with the engine.
//!
//! A container is `on` when it runs **and**, if it has a healthcheck, Docker reports it
//! `healthy` (`unhealthy` is reported as `error`, which fails a start at once). Status
//! changes come from Docker's event stream, not from polling.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerStateStatusEnum, ContainerSummary, HealthStatusEnum};
use bollard::query_parameters::{
    EventsOptionsBuilder, ListContainersOptionsBuilder, StatsOptionsBuilder, StopContainerOptionsBuilder,
};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::transport::cause_chain;
use super::{ConfigError, Connector, ConnectorError, DiscoveredGuest, ErrorCode, PowerState, Target};
use crate::model::{ConnectorConfig, Kind};

/// How long one Docker API call may take.
const CALL_TIMEOUT_SECS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Endpoint {
    Unix(String),
    Http(String),
    Tls { addr: String, ca: PathBuf, cert: PathBuf, key: PathBuf },
}

fn endpoint_of(config: &ConnectorConfig) -> Result<Option<Endpoint>, String> {
    let Some(host) = config.str("docker_host") else {
        return Ok(None);
    };
    let tls = (config.str("docker_tls_ca"), config.str("docker_tls_cert"), config.str("docker_tls_key"));
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Err("docker: `docker_host` unix:// needs a socket path".into());
        }
        return Ok(Some(Endpoint::Unix(path.to_owned())));
    }
    let addr =
        host.strip_prefix("tcp://").or_else(|| host.strip_prefix("https://")).or_else(|| host.strip_prefix("http://"));
    let Some(addr) = addr.filter(|a| !a.is_empty()) else {
        return Err(format!("docker: `docker_host` `{host}` is not unix://PATH, tcp://HOST:PORT or https://HOST:PORT"));
    };
    match tls {
        (Some(ca), Some(cert), Some(key)) => {
            Ok(Some(Endpoint::Tls { addr: addr.to_owned(), ca: ca.into(), cert: cert.into(), key: key.into() }))
        }
        (None, None, None) if host.starts_with("https://") => {
            Err("docker: an https:// `docker_host` needs `docker_tls_ca`, `docker_tls_cert` and `docker_tls_key`"
                .into())
        }
        (None, None, None) => Ok(Some(Endpoint::Http(addr.to_owned()))),
        _ => Err("docker: give all three of `docker_tls_ca`, `docker_tls_cert`, `docker_tls_key`, or none".into()),
    }
}

/// A client of the engine a table names (`docker_host` and its TLS keys), its API version
/// negotiated; `what` names the table's node in errors.
pub(crate) async fn client_for(config: &ConnectorConfig, what: &str) -> Result<Docker, ConnectorError> {
    let invalid = |m: String| ConnectorError::new(ErrorCode::InvalidConfig, format!("{what}: {m}"));
    let endpoint = endpoint_of(config).map_err(invalid)?.ok_or_else(|| invalid("docker: no `docker_host`".into()))?;
    let version = bollard::API_DEFAULT_VERSION;
    let fail = |doing: &str, e: DockerError| {
        ConnectorError::new(ErrorCode::Unreachable, format!("{what}: docker: cannot {doing}: {}", cause_chain(&e)))
    };
    let client = match &endpoint {
        Endpoint::Unix(path) => Docker::connect_with_unix(path, CALL_TIMEOUT_SECS, version),
        Endpoint::Http(addr) => Docker::connect_with_http(addr, CALL_TIMEOUT_SECS, version),
        Endpoint::Tls { addr, ca, cert, key } => {
            Docker::connect_with_ssl(addr, key, cert, ca, CALL_TIMEOUT_SECS, version)
        }
    }
    .map_err(|e| fail("connect", e))?;
    client.negotiate_version().await.map_err(|e| fail("negotiate the API version", e))
}

/// The Docker connector. Clients are created once per endpoint and reused.
#[derive(Default)]
pub struct DockerConnector {
    clients: Mutex<HashMap<Endpoint, Docker>>,
}

impl DockerConnector {
    /// A connector with no client yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn container(target: &Target) -> Result<String, ConnectorError> {
        target.config.str("container").map(str::to_owned).ok_or_else(|| {
            ConnectorError::new(
                ErrorCode::InvalidConfig,
                format!("{}: docker: `container` (a name or id) is required", target.name),
            )
        })
    }

    fn endpoint(target: &Target) -> Result<Endpoint, ConnectorError> {
        let invalid = |m: String| ConnectorError::new(ErrorCode::InvalidConfig, format!("{}: {m}", target.name));
        if let Some(e) = endpoint_of(&target.config).map_err(invalid)? {
            return Ok(e);
        }
        match &target.host {
            Some(host) => endpoint_of(&host.config).map_err(invalid)?.ok_or_else(|| {
                invalid(format!("docker: its host `{}` has no `docker_host` in its connector table", host.name))
            }),
            None => Err(invalid("docker: no `docker_host` (give it on the node or on the host it runs on)".into())),
        }
    }

    async fn client(&self, target: &Target) -> Result<Docker, ConnectorError> {
        let endpoint = Self::endpoint(target)?;
        if let Some(c) = self.clients.lock().unwrap_or_else(|e| e.into_inner()).get(&endpoint) {
            return Ok(c.clone());
        }
        let version = bollard::API_DEFAULT_VERSION;
        let client = match &endpoint {
            Endpoint::Unix(path) => Docker::connect_with_unix(path, CALL_TIMEOUT_SECS, version),
            Endpoint::Http(addr) => Docker::connect_with_http(addr, CALL_TIMEOUT_SECS, version),
            Endpoint::Tls { addr, ca, cert, key } => {
                Docker::connect_with_ssl(addr, key, cert, ca, CALL_TIMEOUT_SECS, version)
            }
        }
        .map_err(|e| map_error(target, "connect", e))?;
        let client = client.negotiate_version().await.map_err(|e| map_error(target, "negotiate the API version", e))?;
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).insert(endpoint, client.clone());
        Ok(client)
    }
}

/// A Docker failure as a stable code and a message naming the node; never a secret.
fn map_error(target: &Target, doing: &str, e: DockerError) -> ConnectorError {
    let chain = cause_chain(&e);
    let (code, detail) = match &e {
        DockerError::DockerResponseServerError { status_code, message } => (
            match status_code {
                404 => ErrorCode::NotFound,
                401 | 403 => ErrorCode::AuthFailed,
                _ => ErrorCode::PlatformError,
            },
            format!("Docker answered {status_code}: {message}"),
        ),
        DockerError::RequestTimeoutError => (ErrorCode::Timeout, "the Docker API did not answer in time".to_owned()),
        DockerError::SocketNotFoundError(path) => (ErrorCode::Unreachable, format!("no Docker socket at {path}")),
        _ if chain.contains("certificate") || chain.contains("UnknownIssuer") => (
            ErrorCode::Unreachable,
            format!("the engine's TLS certificate is not trusted by `docker_tls_ca` ({chain})"),
        ),
        DockerError::IOError { .. } | DockerError::HyperResponseError { .. } | DockerError::HyperLegacyError { .. } => {
            (ErrorCode::Unreachable, format!("cannot reach the Docker engine: {chain}"))
        }
        _ => (ErrorCode::PlatformError, chain),
    };
    ConnectorError::new(code, format!("{}: docker: cannot {doing}: {detail}", target.name))
}

/// Docker's view of a container as a power state.
fn state_of(status: Option<ContainerStateStatusEnum>, health: Option<HealthStatusEnum>) -> PowerState {
    match status {
        Some(ContainerStateStatusEnum::RUNNING) => match health {
            Some(HealthStatusEnum::STARTING) => PowerState::Starting,
            Some(HealthStatusEnum::UNHEALTHY) => PowerState::Error,
            _ => PowerState::On,
        },
        Some(ContainerStateStatusEnum::RESTARTING) => PowerState::Starting,
        Some(ContainerStateStatusEnum::REMOVING | ContainerStateStatusEnum::STOPPING) => PowerState::Stopping,
        Some(
            ContainerStateStatusEnum::CREATED
            | ContainerStateStatusEnum::EXITED
            | ContainerStateStatusEnum::DEAD
            | ContainerStateStatusEnum::PAUSED,
        ) => PowerState::Off,
        _ => PowerState::Unknown,
    }
}

/// One container of a listing as a discovered guest, keyed by its name (stable when the
/// container is re-created, unlike its id).
fn guest_of(c: ContainerSummary) -> Option<DiscoveredGuest> {
    let id = c.id?;
    let name = c
        .names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_owned())
        .unwrap_or_else(|| id.chars().take(12).collect());
    let state = c.state.map(|s| s.to_string()).unwrap_or_default();
    let text = c.status.clone().unwrap_or_default();
    let health = if text.contains("(healthy)") {
        Some(HealthStatusEnum::HEALTHY)
    } else if text.contains("(unhealthy)") {
        Some(HealthStatusEnum::UNHEALTHY)
    } else if text.contains("(health: starting)") {
        Some(HealthStatusEnum::STARTING)
    } else {
        None
    };
    let status = state_of(state.parse().ok(), health);
    let ports: Vec<serde_json::Value> = c
        .ports
        .unwrap_or_default()
        .iter()
        .map(|p| {
            serde_json::json!({
                "private": p.private_port,
                "public": p.public_port,
                "ip": p.ip,
                "type": p.typ.map(|t| t.to_string()),
            })
        })
        .collect();
    let mut connector = ConnectorConfig::new("docker");
    connector.settings.insert("container".into(), crate::model::ConfigValue::String(name.clone()));
    let details = serde_json::json!({
        "id": id,
        "name": name,
        "image": c.image,
        "state": state,
        "status": text,
        "ports": ports,
        "labels": c.labels.unwrap_or_default(),
    });
    Some(DiscoveredGuest {
        key: format!("container/{name}"),
        name,
        kind: Kind::Container,
        timeouts: Kind::Container.default_timeouts(),
        connector,
        status,
        details,
    })
}

async fn inspect(client: &Docker, target: &Target, container: &str) -> Result<PowerState, ConnectorError> {
    let info =
        client.inspect_container(container, None).await.map_err(|e| map_error(target, "inspect the container", e))?;
    let state = info.state.unwrap_or_default();
    Ok(state_of(state.status, state.health.and_then(|h| h.status)))
}

#[async_trait::async_trait]
impl Connector for DockerConnector {
    async fn status(&self, target: &Target) -> Result<PowerState, ConnectorError> {
        let container = Self::container(target)?;
        let client = self.client(target).await?;
        inspect(&client, target, &container).await
    }

    async fn start(&self, target: &Target) -> Result<(), ConnectorError> {
        let container = Self::container(target)?;
        let client = self.client(target).await?;
        match client.start_container(&container, None).await {
            // 304: already running.
            Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            Err(e) => Err(map_error(target, "start the container", e)),
        }
    }

    async fn stop(&self, target: &Target) -> Result<(), ConnectorError> {
        let container = Self::container(target)?;
        let client = self.client(target).await?;
        let grace = target.config.int("stop_grace_secs").unwrap_or(10).clamp(0, 3600) as i32;
        let options = StopContainerOptionsBuilder::new().t(grace).build();
        match client.stop_container(&container, Some(options)).await {
            // 304: already stopped.
            Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            Err(e) => Err(map_error(target, "stop the container", e)),
        }
    }

    /// The container's busy CPU time and its network bytes in and out so far (one sample of
    /// Docker's stats, without waiting for a second one).
    async fn load(&self, target: &Target) -> Result<super::activity::Load, ConnectorError> {
        let container = Self::container(target)?;
        let client = self.client(target).await?;
        let options = StatsOptionsBuilder::new().stream(false).one_shot(true).build();
        let stats = client
            .stats(&container, Some(options))
            .next()
            .await
            .ok_or_else(|| ConnectorError::new(ErrorCode::PlatformError, format!("{}: no stats", target.name)))?
            .map_err(|e| map_error(target, "read the container's stats", e))?;
        let busy = stats.cpu_stats.and_then(|c| c.cpu_usage).and_then(|u| u.total_usage);
        // A container without a network of its own (`none`, or the host's) has no counters:
        // no traffic of its own (on the host's network, its traffic is not told apart).
        let net =
            stats.networks.map_or(0, |n| n.values().map(|i| i.rx_bytes.unwrap_or(0) + i.tx_bytes.unwrap_or(0)).sum());
        Ok(super::activity::Load {
            cpu: busy.map(|ns| super::activity::Cpu::BusySeconds(ns as f64 / 1e9)),
            net_bytes: Some(net),
            ..Default::default()
        })
    }

    /// The container's state now, then again after every Docker event about it (start, die,
    /// health_status…): the engine waits on the engine's own event stream.
    fn watch(&self, target: &Target) -> Option<BoxStream<'static, PowerState>> {
        let container = Self::container(target).ok()?;
        let endpoint = Self::endpoint(target).ok()?;
        let client = self.clients.lock().unwrap_or_else(|e| e.into_inner()).get(&endpoint)?.clone();
        let target = target.clone();
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            ("container".to_owned(), vec![container.clone()]),
        ]);
        let events = client.events(Some(EventsOptionsBuilder::new().filters(&filters).build()));
        let current = futures::stream::once({
            let (client, target, container) = (client.clone(), target.clone(), container.clone());
            async move { inspect(&client, &target, &container).await.unwrap_or(PowerState::Unknown) }
        });
        let changes = events.take_while(|e| futures::future::ready(e.is_ok())).then(move |_| {
            let (client, target, container) = (client.clone(), target.clone(), container.clone());
            async move { inspect(&client, &target, &container).await.unwrap_or(PowerState::Unknown) }
        });
        Some(current.chain(changes).boxed())
    }

    /// Every container of the engine (running or not), with its image, ports and labels.
    async fn discover(&self, host: &Target) -> Result<Vec<DiscoveredGuest>, ConnectorError> {
        let client = self.client(host).await?;
        let options = ListContainersOptionsBuilder::new().all(true).build();
        let list =
            client.list_containers(Some(options)).await.map_err(|e| map_error(host, "list the containers", e))?;
        let mut guests: Vec<DiscoveredGuest> = list.into_iter().filter_map(guest_of).collect();
        guests.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(guests)
    }

    async fn test_connection(&self, target: &Target) -> Result<(), ConnectorError> {
        let client = self.client(target).await?;
        client.ping().await.map(|_| ()).map_err(|e| map_error(target, "ping the engine", e))
    }

    fn validate(&self, config: &ConnectorConfig) -> Result<(), ConfigError> {
        validate(config).map_err(ConfigError::new)
    }

    fn validate_host(&self, host: &ConnectorConfig) -> Result<(), ConfigError> {
        const KEYS: [&str; 4] = ["docker_host", "docker_tls_ca", "docker_tls_cert", "docker_tls_key"];
        for key in host.settings.keys().filter(|k| k.starts_with("docker_")) {
            if !KEYS.contains(&key.as_str()) {
                return Err(ConfigError::key(
                    key,
                    format!("docker: unknown key `{key}` (expected {})", KEYS.join(", ")),
                ));
            }
        }
        endpoint_of(host).map(|_| ()).map_err(ConfigError::new)
    }
}

fn validate(config: &ConnectorConfig) -> Result<(), String> {
    for key in config.settings.keys() {
        if !["container", "docker_host", "docker_tls_ca", "docker_tls_cert", "docker_tls_key", "stop_grace_secs"]
            .contains(&key.as_str())
        {
            return Err(format!(
                "docker: unknown key `{key}` (expected container, docker_host, docker_tls_ca, docker_tls_cert, docker_tls_key, stop_grace_secs)"
            ));
        }
    }
    if config.str("container").is_none_or(str::is_empty) {
        return Err("docker: `container` (a name or id) is required".into());
    }
    endpoint_of(config).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_states_map_to_power_states() {
        use ContainerStateStatusEnum as S;
        use HealthStatusEnum as H;
        assert_eq!(state_of(Some(S::RUNNING), None), PowerState::On);
        assert_eq!(state_of(Some(S::RUNNING), Some(H::NONE)), PowerState::On);
        assert_eq!(state_of(Some(S::RUNNING), Some(H::STARTING)), PowerState::Starting);
        assert_eq!(state_of(Some(S::RUNNING), Some(H::HEALTHY)), PowerState::On);
        assert_eq!(state_of(Some(S::RUNNING), Some(H::UNHEALTHY)), PowerState::Error);
        assert_eq!(state_of(Some(S::EXITED), None), PowerState::Off);
        assert_eq!(state_of(Some(S::CREATED), None), PowerState::Off);
        assert_eq!(state_of(None, None), PowerState::Unknown);
    }
}
