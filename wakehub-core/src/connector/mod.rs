//! The `Connector` trait: how WakeHub talks to one platform (Wake-on-LAN + SSH, Proxmox,
//! Docker, the simulator, a WASM plugin). One implementation per platform, registered by
//! type name; each call carries everything it needs about one node (its own connector
//! table and the endpoint its parent offers), never the whole topology.

#[cfg(feature = "docker")]
pub mod docker;
#[cfg(feature = "proxmox")]
pub mod proxmox;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "wol-ssh")]
pub mod wol_ssh;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use futures::stream::BoxStream;

use crate::model::{Capability, ConnectorConfig, Kind, NodeId, Topology};

/// What a node's connector reports (or the engine last observed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PowerState {
    /// Running.
    On,
    /// Not running.
    Off,
    /// Coming up.
    Starting,
    /// Going down.
    Stopping,
    /// Could not be determined (unreachable platform…).
    Unknown,
    /// The platform reports a fault.
    Error,
}

impl PowerState {
    /// The lowercase name used in events and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Starting => "starting",
            PowerState::Stopping => "stopping",
            PowerState::Unknown => "unknown",
            PowerState::Error => "error",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::On, Self::Off, Self::Starting, Self::Stopping, Self::Unknown, Self::Error]
            .into_iter()
            .find(|p| p.as_str() == s)
    }

    /// Whether a node in this state may be using what it depends on. Anything but `off`
    /// counts: an unknown node is assumed to be running, so nothing is stopped under it.
    pub fn may_be_running(self) -> bool {
        self != PowerState::Off
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stable code of a connector failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Credentials were refused.
    AuthFailed,
    /// The platform could not be reached.
    Unreachable,
    /// The operation did not finish in time.
    Timeout,
    /// The platform does not know the node (unknown vmid, container…).
    NotFound,
    /// An SSH host key differs from the pinned one.
    HostKeyMismatch,
    /// A TLS certificate differs from the pinned one.
    TlsPinMismatch,
    /// The node's connector configuration is invalid.
    InvalidConfig,
    /// The connector does not support this operation.
    Unsupported,
    /// The platform reported an error.
    PlatformError,
    /// The readiness probe never passed.
    NotReady,
    /// A plugin asked for something its node's configuration does not grant.
    CapabilityDenied,
    /// A plugin call ran out of time.
    PluginTimeout,
    /// A plugin went over its memory limit.
    PluginMemory,
    /// A plugin trapped (a panic, an invalid operation).
    PluginTrap,
    /// A plugin faulted too often in a row and is no longer called.
    PluginQuarantined,
}

impl ErrorCode {
    /// The code as written in the journal and the API (`AUTH_FAILED`…).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AuthFailed => "AUTH_FAILED",
            ErrorCode::Unreachable => "UNREACHABLE",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::HostKeyMismatch => "HOST_KEY_MISMATCH",
            ErrorCode::TlsPinMismatch => "TLS_PIN_MISMATCH",
            ErrorCode::InvalidConfig => "INVALID_CONFIG",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::PlatformError => "PLATFORM_ERROR",
            ErrorCode::NotReady => "NOT_READY",
            ErrorCode::CapabilityDenied => "CAPABILITY_DENIED",
            ErrorCode::PluginTimeout => "PLUGIN_TIMEOUT",
            ErrorCode::PluginMemory => "PLUGIN_MEMORY",
            ErrorCode::PluginTrap => "PLUGIN_TRAP",
            ErrorCode::PluginQuarantined => "PLUGIN_QUARANTINED",
        }
    }
}

/// A connector failure: a stable code, a human message naming the node and platform (never
/// a secret), and whether retrying may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    /// The stable code.
    pub code: ErrorCode,
    /// What happened.
    pub message: String,
    /// Whether the same call may succeed later.
    pub retryable: bool,
}

impl ConnectorError {
    /// A new error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let retryable = matches!(code, ErrorCode::Unreachable | ErrorCode::Timeout);
        Self { code, message: message.into(), retryable }
    }
}

/// An error and its causes, `outer: inner: …` — the useful part of a transport error
/// (refused, certificate, pin) is usually deep inside.
#[cfg(any(feature = "docker", feature = "proxmox"))]
pub(crate) fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut chain = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    chain
}

/// The host a node runs on, as its connector needs it: the parent's connector table (the
/// Proxmox URL and credentials of a VM's machine, the Docker endpoint of a container's VM).
#[derive(Debug, Clone)]
pub struct HostEndpoint {
    /// The parent's id.
    pub node: NodeId,
    /// The parent's name.
    pub name: String,
    /// The parent's kind.
    pub kind: Kind,
    /// What it offers.
    pub offers: Vec<Capability>,
    /// Its connector table.
    pub config: ConnectorConfig,
}

/// Reads the secrets a node's configuration references (`credential:N`, `env:VAR`,
/// `file:PATH`). The store implements it; a connector only ever holds a handle.
pub trait SecretResolver: Send + Sync {
    /// The plaintext of `secret`, for the one request that needs it.
    fn resolve(&self, secret: &crate::model::SecretRef) -> Result<crate::secrets::SecretString, String>;
    /// The SSH host key learned for `endpoint` (`host:port`) of `node`, if any.
    fn host_key(&self, _node: NodeId, _endpoint: &str) -> Option<String> {
        None
    }
    /// Remembers the host key first seen at `endpoint`, to pin it from then on.
    fn remember_host_key(&self, _node: NodeId, _endpoint: &str, _key: &str) -> Result<(), String> {
        Err("no place to store host keys".into())
    }
}

/// The secret resolver a target carries (its `Debug` shows nothing).
#[derive(Clone)]
pub struct Secrets(pub Arc<dyn SecretResolver>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// Where a connector records what must be journaled beside its result (a plugin's denied
/// capability). Writing may block: call it from a blocking context.
#[derive(Clone)]
pub struct Journal(pub Arc<dyn Fn(crate::events::EventKind) + Send + Sync>);

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Journal(..)")
    }
}

/// Everything a connector call needs about one node.
#[derive(Debug, Clone)]
pub struct Target {
    /// The node's id.
    pub node: NodeId,
    /// Its name (for messages).
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Its own connector table.
    pub config: ConnectorConfig,
    /// The host it runs on, if any.
    pub host: Option<HostEndpoint>,
    /// Resolves the secrets its configuration (or its host's) references.
    pub secrets: Option<Secrets>,
    /// The engine's journal, when the call comes from an engine.
    pub journal: Option<Journal>,
}

impl Target {
    /// Builds the target of `node` from a topology (`None` if the node is unknown).
    pub fn of(topology: &Topology, node: NodeId) -> Option<Target> {
        let n = topology.node(node)?;
        let host = n.parent.and_then(|p| topology.node(p)).map(|p| HostEndpoint {
            node: p.id,
            name: p.spec.name.clone(),
            kind: p.spec.kind.clone(),
            offers: p.spec.offers.iter().copied().collect(),
            config: p.spec.connector.clone(),
        });
        Some(Target {
            node,
            name: n.spec.name.clone(),
            kind: n.spec.kind.clone(),
            config: n.spec.connector.clone(),
            host,
            secrets: None,
            journal: None,
        })
    }

    /// The same target with a journal.
    pub fn with_journal(mut self, journal: Journal) -> Target {
        self.journal = Some(journal);
        self
    }

    /// The same target with a secret resolver.
    pub fn with_secrets(mut self, secrets: Arc<dyn SecretResolver>) -> Target {
        self.secrets = Some(Secrets(secrets));
        self
    }

    /// Resolves the secret setting `key` of `config` (the node's or its host's table).
    pub fn secret(
        &self,
        config: &ConnectorConfig,
        key: &str,
    ) -> Result<Option<crate::secrets::SecretString>, ConnectorError> {
        let Some(crate::model::ConfigValue::Secret(secret)) = config.settings.get(key) else {
            return Ok(None);
        };
        let resolver = self.secrets.as_ref().ok_or_else(|| {
            ConnectorError::new(
                ErrorCode::InvalidConfig,
                format!("{}: no secret store to read `{key}` from", self.name),
            )
        })?;
        resolver.0.resolve(secret).map(Some).map_err(|e| {
            ConnectorError::new(ErrorCode::InvalidConfig, format!("{}: secret `{key}` is unavailable: {e}", self.name))
        })
    }
}

/// A guest a host's platform reports (a Proxmox VM or LXC, a Docker container): what
/// discovery stores as a *discovered, not configured* node under that host.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveredGuest {
    /// Its stable identity on the host (`qemu/100`, `lxc/101`, `container/paperless`):
    /// discovering again matches on it, never duplicates.
    pub key: String,
    /// The name the platform gives it (a node name is derived from it).
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// Its connector table, pre-filled (`type = "proxmox"`, `vmid = 101`).
    pub connector: ConnectorConfig,
    /// Its power state as the platform reported it.
    pub status: PowerState,
    /// Everything else the API told (vmid or container id, type, status, image, ports,
    /// tags or labels), as JSON. Never a secret.
    pub details: serde_json::Value,
}

impl DiscoveredGuest {
    /// Whether `config` (a configured node's connector table on the same host) names this
    /// guest: same connector type and the same identifying key — `vmid`, `container` (name,
    /// or an id of at least 12 hex digits), or a plugin's `system`.
    pub fn matches(&self, config: &ConnectorConfig) -> bool {
        if config.type_name != self.connector.type_name {
            return false;
        }
        if let Some(vmid) = self.connector.int("vmid") {
            return config.int("vmid") == Some(vmid);
        }
        if let Some(name) = self.connector.str("container") {
            return config.str("container").is_some_and(|c| {
                c == name || self.details["id"].as_str().is_some_and(|id| c.len() >= 12 && id.starts_with(c))
            });
        }
        match self.connector.str("system") {
            Some(system) => config.str("system") == Some(system),
            None => false,
        }
    }
}

/// One platform's power operations. Calls are independent; the engine guarantees at most one
/// `start`/`stop` in flight per node. `start` and `stop` may return as soon as the platform
/// accepted the request: the engine then waits for [`status`](Connector::status) (or the
/// [`watch`](Connector::watch) stream) to reach the desired state.
#[async_trait::async_trait]
pub trait Connector: Send + Sync + 'static {
    /// The node's current power state.
    async fn status(&self, target: &Target) -> Result<PowerState, ConnectorError>;
    /// Asks the platform to power the node on.
    async fn start(&self, target: &Target) -> Result<(), ConnectorError>;
    /// Asks the platform to power the node off (gracefully where it can).
    async fn stop(&self, target: &Target) -> Result<(), ConnectorError>;
    /// A stream of status changes for the node, if the platform pushes them (Docker events,
    /// Proxmox task status…). `None` makes the engine probe with backoff instead.
    fn watch(&self, _target: &Target) -> Option<BoxStream<'static, PowerState>> {
        None
    }
    /// Lists the guests a host runs on this platform (`host` is the host node itself: its
    /// own connector table holds the endpoint, `proxmox_url` or `docker_host`).
    async fn discover(&self, host: &Target) -> Result<Vec<DiscoveredGuest>, ConnectorError> {
        Err(ConnectorError::new(
            ErrorCode::Unsupported,
            format!("{}: this connector cannot discover guests", host.name),
        ))
    }
    /// Checks that the platform answers and the configuration is accepted.
    async fn test_connection(&self, target: &Target) -> Result<(), ConnectorError> {
        self.status(target).await.map(|_| ())
    }
    /// How long `action` usually takes on this node, if the connector can tell (used for
    /// plan estimates until the journal has observed durations).
    fn typical_duration(&self, _target: &Target, _action: crate::engine::Action) -> Option<std::time::Duration> {
        None
    }
    /// Checks a node's connector table before anything runs (`wakehub check`).
    fn validate(&self, _config: &ConnectorConfig) -> Result<(), String> {
        Ok(())
    }
}

/// Connectors by type name.
#[derive(Clone, Default)]
pub struct Registry {
    connectors: HashMap<String, Arc<dyn Connector>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.connectors.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in connectors enabled by cargo features.
    pub fn builtin() -> Self {
        #[allow(unused_mut)]
        let mut r = Self::new();
        #[cfg(feature = "sim")]
        r.register("sim", sim::SimConnector::new());
        #[cfg(feature = "docker")]
        r.register("docker", docker::DockerConnector::new());
        #[cfg(feature = "proxmox")]
        r.register("proxmox", proxmox::ProxmoxConnector::new());
        #[cfg(feature = "wol-ssh")]
        r.register("wol-ssh", wol_ssh::WolSshConnector::new());
        r
    }

    /// Registers (or replaces) the connector for `type_name`.
    pub fn register(&mut self, type_name: impl Into<String>, connector: impl Connector) -> &mut Self {
        self.connectors.insert(type_name.into(), Arc::new(connector));
        self
    }

    /// The connector for `type_name`.
    pub fn get(&self, type_name: &str) -> Option<Arc<dyn Connector>> {
        self.connectors.get(type_name).cloned()
    }

    /// Registered type names, sorted.
    pub fn type_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.connectors.keys().cloned().collect();
        v.sort();
        v
    }

    /// Checks every node's connector type and table; one message per problem.
    pub fn validate(&self, topology: &Topology) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for node in topology.nodes() {
            let config = &node.spec.connector;
            match self.get(&config.type_name) {
                None => problems.push((
                    node.spec.name.clone(),
                    format!("unknown connector type `{}` (known: {})", config.type_name, self.type_names().join(", ")),
                )),
                Some(c) => {
                    if let Err(e) = c.validate(config) {
                        problems.push((node.spec.name.clone(), e));
                    }
                }
            }
        }
        problems
    }
}
