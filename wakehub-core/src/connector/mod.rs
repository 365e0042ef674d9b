//! The `Connector` trait: how WakeHub talks to one platform (Wake-on-LAN + SSH, Proxmox,
//! Docker, the simulator, a WASM plugin). One implementation per platform, registered by
//! type name; each call carries everything it needs about one node (its own connector
//! table and the endpoint its parent offers), never the whole topology.

pub mod activity;
#[cfg(feature = "docker")]
pub mod compose;
#[cfg(feature = "docker")]
pub mod docker;
#[cfg(feature = "wol-ssh")]
mod machine;
pub mod probe;
#[cfg(feature = "proxmox")]
pub mod proxmox;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "docker")]
pub mod stack;
pub(crate) mod transport;
#[cfg(feature = "wol-ssh")]
pub use machine::{probe_machine, rebooted_since};
/// A TLS client configuration that accepts exactly the certificate whose SHA-256 is the
/// given `AB:CD:…` (handshake signatures still verified): how WakeHub pins a self-signed
/// service.
#[cfg(any(feature = "proxmox", feature = "wasm", feature = "homeassistant"))]
pub use transport::tls::pinned_tls;
#[cfg(feature = "wol-ssh")]
pub mod wol_ssh;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use futures::stream::BoxStream;

pub use crate::model::{Action, ErrorCode, PowerState};

/// Keys any node's table may carry for WakeHub to reach the machine it is over SSH (its
/// state, its actions, maintenance), whatever powers it: `host`, `ssh_port`, `ssh_user`,
/// `ssh_password` or `ssh_private_key` (with `ssh_passphrase`), `ssh_host_key`,
/// `sudo_password`, and commands `NAME_command` (`reboot_command`, the operator's actions).
pub const SSH_ACCESS_KEYS: [&str; 8] = [
    "host",
    "ssh_port",
    "ssh_user",
    "ssh_password",
    "ssh_private_key",
    "ssh_passphrase",
    "ssh_host_key",
    "sudo_password",
];

/// Checks `key` of `config` as one of the [`SSH_ACCESS_KEYS`] or a `NAME_command`: `None`
/// when it is neither, else whether its value is right.
#[cfg(any(feature = "sim", feature = "wol-ssh", feature = "proxmox"))]
pub(crate) fn check_ssh_access_key(config: &ConnectorConfig, key: &str) -> Option<Result<(), String>> {
    if key.ends_with("_command") && key.len() > "_command".len() {
        return Some(if config.str(key).is_none_or(|c| c.trim().is_empty()) {
            Err(format!("`{key}` must be a command (a non-empty string)"))
        } else {
            Ok(())
        });
    }
    if !SSH_ACCESS_KEYS.contains(&key) {
        return None;
    }
    Some(match key {
        "ssh_port" if config.int("ssh_port").is_none_or(|p| !(1..=65535).contains(&p)) => {
            Err("`ssh_port` must be a port number (1 to 65535)".into())
        }
        "host" if config.str("host").is_none_or(|h| h.trim().is_empty()) => Err("`host` must be a host name".into()),
        _ => Ok(()),
    })
}
use crate::model::{
    Capability, ConfigValue, ConnectorConfig, Kind, NodeId, PluginKinds, SecretRef, Timeouts, Topology, is_command_key,
    is_endpoint_key, is_file_key, is_secret_key,
};
use crate::secrets::{SecretError, SecretString};

/// A connector failure: a stable code, a human message naming the node and platform (never
/// a secret), and whether retrying may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct ConnectorError {
    /// The stable code.
    pub code: ErrorCode,
    /// What happened.
    pub message: String,
    /// Whether the same call may succeed later (the platform was unreachable, slow, or
    /// busy). The engine acts on it within the step's timeout: a retryable `start` or `stop`
    /// is issued again, up to [`POWER_ATTEMPTS`] times in all with exponential backoff (50 ms
    /// doubling, at most 1 s between attempts), and a retryable `status` error while it waits
    /// for the new state is noted and polled again; anything not retryable fails the step
    /// at once.
    pub retryable: bool,
}

/// How many times in all the engine issues a `start` or `stop` whose error is retryable.
pub const POWER_ATTEMPTS: u32 = 4;

impl ConnectorError {
    /// A new error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retryable: code.is_retryable() }
    }
}

/// A connector table a connector refuses ([`Connector::validate`]): which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    /// The key at fault, when one is.
    pub key: Option<String>,
    /// What is wrong (naming the connector and the key).
    pub message: String,
    /// The table's other problems, when a check reports them all at once.
    pub also: Vec<ConfigError>,
}

impl ConfigError {
    /// A refusal of the table as a whole (or of a key the message names).
    pub fn new(message: impl Into<String>) -> Self {
        Self { key: None, message: message.into(), also: Vec::new() }
    }

    /// A refusal of `key`.
    pub fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: Some(key.into()), message: message.into(), also: Vec::new() }
    }

    /// Every problem of `problems` as one error (`Ok` when there is none).
    pub fn all(problems: Vec<ConfigError>) -> Result<(), ConfigError> {
        let mut each = problems.into_iter().flat_map(ConfigError::into_each);
        match each.next() {
            None => Ok(()),
            Some(first) => Err(ConfigError { also: each.collect(), ..first }),
        }
    }

    /// Each problem alone, this one first.
    pub fn into_each(self) -> Vec<ConfigError> {
        let also = self.also;
        let mut out = vec![ConfigError { key: self.key, message: self.message, also: Vec::new() }];
        out.extend(also.into_iter().flat_map(ConfigError::into_each));
        out
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for other in &self.also {
            write!(f, "; {other}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

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

/// What a connector needs from whoever drives it, for the node a call is about: its secrets,
/// the SSH host keys learned for it, and a place to report what must be journaled beside
/// the call's result. Defined here, on the connector's floor; the engine implements it over
/// its store and journal, and a test or an embedder may implement it over anything.
pub trait NodeContext: Send + Sync {
    /// The plaintext of `secret`, the setting `key` of node `owner`'s table (the node's own
    /// or its host's), for the one request that needs it.
    fn secret(&self, owner: NodeId, key: &str, secret: &SecretRef) -> Result<SecretString, SecretError>;
    /// The SSH host key learned for `endpoint` (`host:port`) of `node`, if any.
    fn host_key(&self, _node: NodeId, _endpoint: &str) -> Option<String> {
        None
    }
    /// Remembers the host key first seen at `endpoint`, to pin it from then on.
    fn remember_host_key(&self, _node: NodeId, _endpoint: &str, _key: &str) -> Result<(), SecretError> {
        Err(SecretError::Unavailable {
            reference: "host key".into(),
            message: "no place to store learned host keys".into(),
        })
    }
    /// Reports something that happened during a call and must be recorded (journaled,
    /// logged). Writing may block: it is called from a blocking-safe context.
    fn notify(&self, _notice: Notice) {}
    /// The version stack node `node` is to run (with its secrets and the image ids it ran
    /// with): the one a running stack command applies, else the one it is on, else its
    /// latest. `None` when it has none.
    fn stack(&self, _node: NodeId) -> Result<Option<StackToApply>, String> {
        Ok(None)
    }
}

/// A stack version to apply, as the driver of a stack gives it ([`NodeContext::stack`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StackToApply {
    /// Its number.
    pub version: i64,
    /// Its model, secrets included (never logged).
    pub compose: crate::stack::Compose,
    /// The image ids it ran with, when it ran before (a rollback restores exactly them).
    pub images: Option<std::collections::BTreeMap<String, String>>,
    /// The stack command applying it, if one is (its containers are labeled with it).
    pub command: Option<i64>,
}

impl StackToApply {
    /// A version to apply.
    pub fn new(
        version: i64,
        compose: crate::stack::Compose,
        images: Option<std::collections::BTreeMap<String, String>>,
    ) -> Self {
        StackToApply { version, compose, images, command: None }
    }

    /// The same, applied by stack command `command`.
    pub fn by_command(mut self, command: Option<i64>) -> Self {
        self.command = command;
        self
    }
}

/// What a connector reports through [`NodeContext::notify`]: a closed list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// A connector plugin asked for something its node's configuration does not grant.
    CapabilityDenied {
        /// The node the call was about.
        node: NodeId,
        /// Its name.
        name: String,
        /// The plugin's connector type (`plugin:<name>`).
        plugin: String,
        /// What it asked for.
        what: String,
    },
    /// A line of what a stack node's start is doing (its driver shows it with the command
    /// that asked, if one did).
    StackLog {
        /// The stack.
        node: NodeId,
        /// The line.
        line: String,
    },
    /// A stack node's start applied `version`, with these image ids (service → id).
    StackApplied {
        /// The stack.
        node: NodeId,
        /// The version now running.
        version: i64,
        /// The image ids it ran with.
        images: std::collections::BTreeMap<String, String>,
    },
}

/// The context a target carries (its `Debug` shows nothing).
#[derive(Clone)]
pub struct Context(pub Arc<dyn NodeContext>);

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Context(..)")
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
    /// Resolves its secrets, learned host keys, and takes its notices (the engine's store
    /// and journal when the call comes from an engine).
    pub context: Option<Context>,
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
            context: None,
        })
    }

    /// The same target with a context (secrets, host keys, notices).
    pub fn with_context(mut self, context: Arc<dyn NodeContext>) -> Target {
        self.context = Some(Context(context));
        self
    }

    /// Reports a notice to the context, if there is one.
    pub fn notify(&self, notice: Notice) {
        if let Some(c) = &self.context {
            c.0.notify(notice);
        }
    }

    /// Resolves the secret setting `key` of `config`, which is `self.config` or
    /// `self.host`'s table (the secret is bound to the node that table belongs to).
    pub fn secret(&self, config: &ConnectorConfig, key: &str) -> Result<Option<SecretString>, ConnectorError> {
        let Some(ConfigValue::Secret(secret)) = config.settings.get(key) else {
            return Ok(None);
        };
        let context = self.context.as_ref().ok_or_else(|| {
            ConnectorError::new(
                ErrorCode::InvalidConfig,
                format!("{}: no secret store to read `{key}` from", self.name),
            )
        })?;
        // The table is the node's own or its host's: the secret is its owner's.
        let owner = match &self.host {
            Some(h) if std::ptr::eq(config, &h.config) => h.node,
            _ => self.node,
        };
        context.0.secret(owner, key, secret).map(Some).map_err(|e| {
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
    /// The timeouts its node gets when discovery adds it: its kind's defaults, or what the
    /// plugin declares for its kind.
    pub timeouts: Timeouts,
    /// Its connector table, pre-filled (`type = "proxmox"`, `vmid = 101`).
    pub connector: ConnectorConfig,
    /// Its power state as the platform reported it.
    pub status: PowerState,
    /// Everything else the API told (vmid or container id, type, status, image, ports,
    /// tags or labels), as JSON. Never a secret.
    pub details: serde_json::Value,
}

/// One guest as a connector plugin reports it across the WIT boundary: plain strings,
/// untrusted ([`DiscoveredGuest::from_report`] checks and converts them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestReport {
    /// Its identity on the host.
    pub key: String,
    /// Its name there.
    pub name: String,
    /// A node kind the plugin declares.
    pub kind: String,
    /// Its pre-filled connector table, a JSON object.
    pub config: String,
    /// Its power state.
    pub status: PowerState,
    /// What the platform said, a JSON object.
    pub details: String,
}

/// A JSON value a plugin returned as a configuration value (no secrets, no nulls).
pub(crate) fn config_value(v: &serde_json::Value) -> Option<ConfigValue> {
    Some(match v {
        serde_json::Value::String(s) => ConfigValue::String(s.clone()),
        serde_json::Value::Bool(b) => ConfigValue::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => ConfigValue::Integer(i),
            None => ConfigValue::Float(n.as_f64()?),
        },
        serde_json::Value::Array(a) => ConfigValue::Array(a.iter().filter_map(config_value).collect()),
        serde_json::Value::Object(o) => {
            ConfigValue::Table(o.iter().filter_map(|(k, v)| Some((k.clone(), config_value(v)?))).collect())
        }
        serde_json::Value::Null => return None,
    })
}

impl DiscoveredGuest {
    /// Checks and converts what a plugin of connector type `connector_type` reported:
    /// bounded sizes, a kind it declares (`kinds`), JSON where JSON is due; the result is
    /// [`sanitized`](Self::sanitized). Never panics, whatever the input.
    pub fn from_report(
        connector_type: &str,
        kinds: &PluginKinds,
        report: GuestReport,
    ) -> Result<DiscoveredGuest, String> {
        const MAX_TEXT: usize = 256;
        const MAX_JSON: usize = 64 << 10;
        if report.key.is_empty() || report.key.len() > MAX_TEXT || report.name.len() > MAX_TEXT {
            return Err(format!("a key or name is empty or longer than {MAX_TEXT} bytes"));
        }
        if report.config.len() > MAX_JSON || report.details.len() > MAX_JSON {
            return Err(format!("a configuration or details longer than {} KiB", MAX_JSON >> 10));
        }
        let kind = Kind::parse(&report.kind, kinds).ok_or_else(|| format!("unknown kind `{}`", report.kind))?;
        let config: serde_json::Value =
            serde_json::from_str(&report.config).map_err(|e| format!("config is not JSON: {e}"))?;
        let object = config.as_object().ok_or("config is not a JSON object")?;
        let mut connector = ConnectorConfig::new(connector_type);
        for (k, v) in object {
            if let Some(v) = config_value(v) {
                connector.settings.insert(k.clone(), v);
            }
        }
        let details = serde_json::from_str(&report.details).unwrap_or(serde_json::Value::Null);
        let timeouts = kinds.timeouts_of(&kind);
        Ok(DiscoveredGuest {
            key: report.key,
            name: report.name,
            kind,
            timeouts,
            connector,
            status: report.status,
            details,
        }
        .sanitized())
    }

    /// The guest as a platform (or a plugin) may report it: its connector table loses every
    /// secret, every key that says where secrets go or what a plugin may reach (hosts,
    /// URLs, ports, pins, `allow_hosts`), every command key and every `$`-key. What a
    /// host reports can then never grant a node anything: a discovered node reaches the
    /// world only through its host's table, and the user's adoption.
    pub fn sanitized(mut self) -> DiscoveredGuest {
        fn clean(v: ConfigValue) -> Option<ConfigValue> {
            match v {
                ConfigValue::Secret(_) => None,
                ConfigValue::Array(items) => Some(ConfigValue::Array(items.into_iter().filter_map(clean).collect())),
                ConfigValue::Table(t) => Some(ConfigValue::Table(
                    t.into_iter()
                        .filter(|(k, _)| !k.starts_with('$'))
                        .filter_map(|(k, v)| Some((k, clean(v)?)))
                        .collect(),
                )),
                other => Some(other),
            }
        }
        let settings = std::mem::take(&mut self.connector.settings);
        self.connector.settings = settings
            .into_iter()
            .filter(|(k, _)| {
                !(k.starts_with('$') || is_secret_key(k) || is_endpoint_key(k) || is_command_key(k) || is_file_key(k))
            })
            .filter_map(|(k, v)| Some((k, clean(v)?)))
            .collect();
        self
    }

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
    /// The node's load (CPU, network, in use, watts) for the inactivity rules and the
    /// energy report; `UNSUPPORTED` where the platform reports none.
    async fn load(&self, target: &Target) -> Result<activity::Load, ConnectorError> {
        Err(ConnectorError::new(
            ErrorCode::Unsupported,
            format!("{}: its connector measures nothing (no CPU, network or power figures)", target.name),
        ))
    }
    /// Checks that the platform answers and the configuration is accepted.
    async fn test_connection(&self, target: &Target) -> Result<(), ConnectorError> {
        self.status(target).await.map(|_| ())
    }
    /// How long `action` usually takes on this node, if the connector can tell (used for
    /// plan estimates until the journal has observed durations).
    fn typical_duration(&self, _target: &Target, _action: Action) -> Option<std::time::Duration> {
        None
    }
    /// Checks a node's connector table before anything runs: when it is written (a file
    /// import, the API, discovery) and by `wakehub check`.
    fn validate(&self, _config: &ConnectorConfig) -> Result<(), ConfigError> {
        Ok(())
    }
    /// Checks the keys a host gives its guests for the capability this connector drives
    /// (`proxmox_url`…, `docker_host`…), whatever the host's own connector is.
    fn validate_host(&self, _host: &ConnectorConfig) -> Result<(), ConfigError> {
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
        #[cfg(feature = "docker")]
        r.register("stack", stack::StackConnector::new());
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

    /// Checks one connector table as it is written: its type is registered, its connector
    /// accepts it, and the endpoint keys it offers guests (`proxmox_…`, `docker_…`) are
    /// accepted by that capability's connector.
    pub fn validate_config(&self, config: &ConnectorConfig) -> Result<(), ConfigError> {
        let connector = self.get(&config.type_name).ok_or_else(|| {
            ConfigError::new(format!(
                "unknown connector type `{}` (known: {})",
                config.type_name,
                self.type_names().join(", ")
            ))
        })?;
        connector.validate(config)?;
        for capability in Capability::ALL {
            let prefix = format!("{}_", capability.as_str());
            if config.settings.keys().any(|k| k.starts_with(&prefix))
                && let Some(c) = self.get(capability.as_str())
            {
                c.validate_host(config)?;
            }
        }
        Ok(())
    }

    /// Checks every node's connector type and table; one message per problem.
    pub fn validate(&self, topology: &Topology) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for node in topology.nodes() {
            for p in self.problems(&node.spec.connector) {
                problems.push((node.spec.name.clone(), p.message));
            }
        }
        problems
    }

    /// Every problem of one connector table, each alone with its key.
    pub fn problems(&self, config: &ConnectorConfig) -> Vec<ConfigError> {
        self.validate_config(config).err().map(ConfigError::into_each).unwrap_or_default()
    }

    /// [`problems`](Self::problems) as the topology parser takes them
    /// (`ParseOptions::with_connector_check`): each problem's key and message.
    pub fn table_check(&self) -> impl Fn(&ConnectorConfig) -> Vec<(Option<String>, String)> + Send + Sync + 'static {
        let registry = self.clone();
        move |config| registry.problems(config).into_iter().map(|p| (p.key, p.message)).collect()
    }
}
