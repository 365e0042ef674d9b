//! A node and everything that describes it, apart from its links (which the
//! [`Topology`](super::Topology) owns so that it can keep them acyclic).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::ids::{CredentialId, NodeId};

/// What a node is. The built-in kinds have fixed hosting rules; plugin kinds are declared by
/// a loaded connector plugin.
///
/// A kind decides **only** the hosting rules (what may be its parent, what it may offer
/// its guests) and defaults (timeouts, `confirm_auto_shutdown`). It does not choose how the
/// node is powered: that is its connector's `type` — a `physical` machine may be driven by
/// `wol-ssh`, a Redfish plugin or a smart plug, and a `vm` by `proxmox` or by `sim`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A physical machine: woken by Wake-on-LAN, shut down over SSH. Never has a parent.
    Physical,
    /// A virtual machine, driven through its parent's Proxmox API.
    Vm,
    /// A Linux container, driven through its parent's Proxmox API.
    Lxc,
    /// A Docker container, driven through its parent's Docker API. Always a leaf.
    Container,
    /// A stack of containers (a compose file's services, as numbered versions), applied
    /// through its parent's Docker API. Always a leaf.
    Stack,
    /// A kind declared by a connector plugin (a Redfish server, a smart plug…).
    Plugin(String),
}

impl Kind {
    /// The name used in topology files and the API.
    pub fn as_str(&self) -> &str {
        match self {
            Kind::Physical => "physical",
            Kind::Vm => "vm",
            Kind::Lxc => "lxc",
            Kind::Container => "container",
            Kind::Stack => "stack",
            Kind::Plugin(name) => name,
        }
    }

    /// Parses a built-in kind, or a plugin kind when `plugin_kinds` declares it.
    pub fn parse(s: &str, plugin_kinds: &PluginKinds) -> Option<Kind> {
        match s {
            "physical" => Some(Kind::Physical),
            "vm" => Some(Kind::Vm),
            "lxc" => Some(Kind::Lxc),
            "container" => Some(Kind::Container),
            "stack" => Some(Kind::Stack),
            other if plugin_kinds.contains(other) => Some(Kind::Plugin(other.to_owned())),
            _ => None,
        }
    }

    /// `confirm_auto_shutdown` when the file does not say: on for physical machines (and
    /// plugin kinds, which are usually hardware), off for guests.
    pub fn default_confirm_auto_shutdown(&self) -> bool {
        matches!(self, Kind::Physical | Kind::Plugin(_))
    }

    /// Per-kind default timeouts. A physical boot (POST, disks, services) takes minutes; a
    /// container starts in seconds. A plugin kind's own, when its plugin declares them, are
    /// in [`PluginKinds::timeouts_of`]; these are for a kind that declares none.
    pub fn default_timeouts(&self) -> Timeouts {
        let (start, stop) = match self {
            Kind::Physical => (300, 180),
            Kind::Vm => (180, 120),
            Kind::Lxc => (90, 60),
            Kind::Container => (60, 30),
            // An apply pulls nothing (images are local) but waits for health checks.
            Kind::Stack => (600, 120),
            Kind::Plugin(_) => (300, 180),
        };
        Timeouts { start: Duration::from_secs(start), stop: Duration::from_secs(stop) }
    }

    /// The capabilities a node of this kind may offer to children.
    pub fn may_offer(&self, capability: Capability) -> bool {
        match self {
            Kind::Physical | Kind::Plugin(_) => true,
            Kind::Vm | Kind::Lxc => capability == Capability::Docker,
            Kind::Container | Kind::Stack => false,
        }
    }
}

/// The node kinds loaded connector plugins define, each with the timeouts its plugin
/// declares: what a topology may use beside the built-in kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginKinds(BTreeMap<String, Timeouts>);

impl PluginKinds {
    /// Adds (or replaces) kind `name` with its nodes' default `timeouts`.
    pub fn insert(&mut self, name: impl Into<String>, timeouts: Timeouts) {
        self.0.insert(name.into(), timeouts);
    }

    /// Whether `name` is one of them.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Their names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The default timeouts of a node of `kind`: its plugin's, for a plugin kind that
    /// declares them, else the kind's own ([`Kind::default_timeouts`]).
    pub fn timeouts_of(&self, kind: &Kind) -> Timeouts {
        match kind {
            Kind::Plugin(name) => self.0.get(name).copied().unwrap_or_else(|| kind.default_timeouts()),
            _ => kind.default_timeouts(),
        }
    }
}

/// Kinds named without timeouts: each gets a plugin kind's defaults.
impl FromIterator<String> for PluginKinds {
    fn from_iter<I: IntoIterator<Item = String>>(names: I) -> Self {
        let defaults = Kind::Plugin(String::new()).default_timeouts();
        PluginKinds(names.into_iter().map(|n| (n, defaults)).collect())
    }
}

impl<const N: usize> From<[String; N]> for PluginKinds {
    fn from(names: [String; N]) -> Self {
        names.into_iter().collect()
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A control channel a host offers to the nodes it hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// A Proxmox VE API: the host can start and stop VMs and LXCs.
    Proxmox,
    /// A Docker Engine API: the host can start and stop containers.
    Docker,
}

impl Capability {
    /// Every capability, for listings and error messages.
    pub const ALL: [Capability; 2] = [Capability::Proxmox, Capability::Docker];

    /// The name used in topology files and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Proxmox => "proxmox",
            Capability::Docker => "docker",
        }
    }
}

impl FromStr for Capability {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s).ok_or(())
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Start and stop timeouts of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long a start may take until the node is up (connector status and readiness).
    pub start: Duration,
    /// How long a stop may take until the node is down.
    pub stop: Duration,
}

/// How to tell that a node that reports `on` really serves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Readiness {
    /// A TCP connection to `host:port` succeeds.
    Tcp {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// An HTTP GET of `url` answers with `status`.
    Http {
        /// The URL to fetch (`http://` or `https://`).
        url: String,
        /// The expected status code.
        status: u16,
    },
}

/// Whether a node was configured by the user or only discovered on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NodeState {
    /// Configured: the engine may start and stop it.
    #[default]
    Configured,
    /// Discovered on a host, waiting for the user to adopt it.
    Discovered,
}

/// A secret as written by the user. Plaintext only ever lives in [`SecretRef::Inline`] between
/// parsing and storing; the store replaces it by an encrypted [`SecretRef::Stored`].
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretRef {
    /// The secret itself, as typed in the file. Never printed: `Debug` redacts it.
    Inline(String),
    /// Read from an environment variable when needed.
    Env(String),
    /// Read from a file when needed (trailing newline trimmed).
    File(PathBuf),
    /// Encrypted in the store.
    Stored(CredentialId),
}

impl SecretRef {
    /// Parses the file syntax: `env:VAR`, `file:PATH`, `credential:N`, or an inline value.
    pub fn parse(value: &str) -> Result<SecretRef, String> {
        if let Some(var) = value.strip_prefix("env:") {
            if var.is_empty() {
                return Err("`env:` needs a variable name".into());
            }
            Ok(SecretRef::Env(var.to_owned()))
        } else if let Some(path) = value.strip_prefix("file:") {
            if path.is_empty() {
                return Err("`file:` needs a path".into());
            }
            Ok(SecretRef::File(PathBuf::from(path)))
        } else if let Some(id) = value.strip_prefix("credential:") {
            id.parse::<i64>()
                .map(|n| SecretRef::Stored(CredentialId::new(n)))
                .map_err(|_| format!("`credential:{id}` is not a credential id"))
        } else if value.is_empty() {
            Err("empty secret".into())
        } else {
            Ok(SecretRef::Inline(value.to_owned()))
        }
    }

    /// The file syntax, or `None` for an inline secret (which is never written back).
    pub fn to_reference(&self) -> Option<String> {
        match self {
            SecretRef::Inline(_) => None,
            SecretRef::Env(var) => Some(format!("env:{var}")),
            SecretRef::File(path) => Some(format!("file:{}", path.display())),
            SecretRef::Stored(id) => Some(id.to_string()),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_reference() {
            Some(r) => write!(f, "SecretRef({r})"),
            None => f.write_str("SecretRef(<inline, redacted>)"),
        }
    }
}

/// Who writes a node's configuration, which decides what it may say.
///
/// - [`Origin::Operator`]: the operator's own topology file (`serve --config`, the CLI) or
///   the embedding program. Secrets may be references (`env:VAR`, `file:PATH`), and command
///   keys (`shutdown_command`) may hold any command.
/// - [`Origin::Api`]: a client of the API. A secret is a value (or the `credential:N` this
///   very node already holds for this very key), never a reference that would make WakeHub
///   read a file or an environment variable; a command key is one of
///   [`STANDARD_COMMANDS`] or the command the operator already set on that node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Origin {
    /// The operator's own files and code.
    Operator,
    /// A client of the API (the default: the least trusted).
    #[default]
    Api,
}

/// The commands a client of the API may choose for a command key; anything else comes from
/// the operator's topology file.
pub const STANDARD_COMMANDS: &[&str] = &[
    "shutdown -h now",
    "poweroff",
    "systemctl poweroff",
    "sudo -n shutdown -h now",
    "sudo -n poweroff",
    "sudo -n systemctl poweroff",
    "shutdown -r now",
    "reboot",
    "systemctl reboot",
    "sudo -n shutdown -r now",
    "sudo -n reboot",
    "sudo -n systemctl reboot",
];

/// Whether a connector key holds a command WakeHub runs on the node (`shutdown_command`).
pub fn is_command_key(key: &str) -> bool {
    key.ends_with("_command")
}

/// Whether a connector key names a file on WakeHub's machine that a connector reads (the
/// Docker client's certificates `docker_tls_ca`, `docker_tls_cert`, `docker_tls_key`, a
/// stack's `compose_file`):
/// only the operator sets those; through the API they are kept as they are.
pub fn is_file_key(key: &str) -> bool {
    key.starts_with("docker_tls_") || key == "compose_file"
}

/// Whether a connector key says where the node's secrets are sent: a host, a URL, a port,
/// a broadcast address, a certificate pin or the hosts a plugin may reach. A stored
/// credential is kept only while these stay as they were when it was given.
pub fn is_endpoint_key(key: &str) -> bool {
    matches!(key, "host" | "broadcast" | "allow_hosts")
        || ["url", "_host", "port", "fingerprint"].iter().any(|s| key.ends_with(s))
}

/// The endpoint a table's secrets are bound to: its endpoint keys and their values, in a
/// canonical form (`host=10.0.0.5;ssh_port=22`).
pub fn endpoint_of(config: &ConnectorConfig) -> String {
    fn text(v: &ConfigValue) -> String {
        match v {
            ConfigValue::String(s) => s.clone(),
            ConfigValue::Integer(i) => i.to_string(),
            ConfigValue::Float(f) => f.to_string(),
            ConfigValue::Bool(b) => b.to_string(),
            ConfigValue::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
            ConfigValue::Table(t) => t.iter().map(|(k, v)| format!("{k}:{}", text(v))).collect::<Vec<_>>().join(","),
            ConfigValue::Secret(_) => String::new(),
        }
    }
    config
        .settings
        .iter()
        .filter(|(k, _)| is_endpoint_key(k))
        .map(|(k, v)| format!("{k}={}", text(v)))
        .collect::<Vec<_>>()
        .join(";")
}

/// Whether a connector key holds a secret. Connectors name their secret keys with one of
/// these suffixes (`password`, `ssh_password`, `token_secret`, `api_key`…).
pub fn is_secret_key(key: &str) -> bool {
    const SUFFIXES: [&str; 6] = ["password", "secret", "token", "passphrase", "private_key", "api_key"];
    SUFFIXES.iter().any(|s| key.ends_with(s))
}

/// A value in a connector table, kept as the user wrote it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigValue {
    /// A string.
    String(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An array.
    Array(Vec<ConfigValue>),
    /// A nested table.
    Table(BTreeMap<String, ConfigValue>),
    /// A secret (its key is a secret key, see [`is_secret_key`]).
    Secret(SecretRef),
}

impl From<&str> for ConfigValue {
    fn from(s: &str) -> Self {
        ConfigValue::String(s.to_owned())
    }
}

impl From<String> for ConfigValue {
    fn from(s: String) -> Self {
        ConfigValue::String(s)
    }
}

impl From<i64> for ConfigValue {
    fn from(i: i64) -> Self {
        ConfigValue::Integer(i)
    }
}

impl From<bool> for ConfigValue {
    fn from(b: bool) -> Self {
        ConfigValue::Bool(b)
    }
}

impl From<f64> for ConfigValue {
    fn from(f: f64) -> Self {
        ConfigValue::Float(f)
    }
}

impl From<SecretRef> for ConfigValue {
    fn from(s: SecretRef) -> Self {
        ConfigValue::Secret(s)
    }
}

/// A node's connector configuration: the connector's type name and its own keys, kept as
/// given. Each connector validates its keys.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorConfig {
    /// The registered connector type (`sim`, `wol-ssh`, `proxmox`, `docker`, `plugin:<name>`).
    pub type_name: String,
    /// The connector's keys, secrets already separated out.
    pub settings: BTreeMap<String, ConfigValue>,
}

impl ConnectorConfig {
    /// A configuration with no keys.
    pub fn new(type_name: impl Into<String>) -> Self {
        Self { type_name: type_name.into(), settings: BTreeMap::new() }
    }

    /// The same configuration with `key` set to `value`. A string given for a secret key
    /// ([`is_secret_key`]: `…password`, `…token`…) is kept as an inline secret, which the
    /// store encrypts.
    ///
    /// ```
    /// use wakehub_core::model::{ConfigValue, ConnectorConfig};
    /// let c = ConnectorConfig::new("wol-ssh").with("mac", "52:54:00:12:34:56").with("ssh_port", 22)
    ///     .with("ssh_password", "hunter2");
    /// assert_eq!(c.str("mac"), Some("52:54:00:12:34:56"));
    /// assert!(matches!(c.settings["ssh_password"], ConfigValue::Secret(_)));
    /// ```
    pub fn with(mut self, key: impl Into<String>, value: impl Into<ConfigValue>) -> Self {
        let key = key.into();
        let value = match value.into() {
            ConfigValue::String(s) if is_secret_key(&key) => ConfigValue::Secret(SecretRef::Inline(s)),
            other => other,
        };
        self.settings.insert(key, value);
        self
    }

    /// A string setting.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.settings.get(key) {
            Some(ConfigValue::String(s)) => Some(s),
            _ => None,
        }
    }

    /// An integer setting.
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.settings.get(key) {
            Some(ConfigValue::Integer(i)) => Some(*i),
            _ => None,
        }
    }
}

/// Everything about a node except its id and its links: what callers give to create or
/// update one.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    /// Unique human name, `[a-z0-9][a-z0-9-_]*`.
    pub name: String,
    /// What the node is.
    pub kind: Kind,
    /// Shown on the dashboard.
    pub pinned: bool,
    /// Re-evaluation proposes its shutdown instead of doing it.
    pub confirm_auto_shutdown: bool,
    /// A host a stop leaves with no running guest and no user is stopped (`true`) rather
    /// than proposed for shutdown (the default).
    pub stop_when_empty: bool,
    /// Start and stop timeouts.
    pub timeouts: Timeouts,
    /// Optional readiness probe.
    pub readiness: Option<Readiness>,
    /// Capabilities offered to hosted nodes.
    pub offers: BTreeSet<Capability>,
    /// The connector and its configuration.
    pub connector: ConnectorConfig,
    /// Configured or only discovered.
    pub state: NodeState,
    /// Free labels (`media`, `lab`): groups on the dashboard, and what an access
    /// [`Scope`](super::Scope) can select.
    pub tags: BTreeSet<String>,
    /// The service's web address (`http` or `https`), opened from the dashboard.
    pub url: Option<String>,
    /// When it counts as idle and is stopped (see [`IdleRule`](super::IdleRule)).
    pub idle: Option<super::IdleRule>,
    /// How WakeHub's proxy fronts it (see [`ProxyRoute`](super::ProxyRoute)).
    pub proxy: Option<super::ProxyRoute>,
    /// What it draws, on and off (for the energy report).
    pub power: Option<super::PowerDraw>,
}

impl NodeSpec {
    /// A spec with the kind's defaults for everything but name, kind and connector.
    pub fn new(name: impl Into<String>, kind: Kind, connector: ConnectorConfig) -> Self {
        Self {
            name: name.into(),
            pinned: false,
            confirm_auto_shutdown: kind.default_confirm_auto_shutdown(),
            stop_when_empty: false,
            timeouts: kind.default_timeouts(),
            readiness: None,
            offers: BTreeSet::new(),
            connector,
            state: NodeState::Configured,
            tags: BTreeSet::new(),
            url: None,
            idle: None,
            proxy: None,
            power: None,
            kind,
        }
    }

    /// The same spec with tag `tag` (checked when the spec enters a topology).
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.insert(tag.into());
        self
    }

    /// The same spec, shown on the dashboard (`pinned`) or not.
    pub fn with_pinned(mut self, pinned: bool) -> Self {
        self.pinned = pinned;
        self
    }

    /// The same spec, offering `capability` to the nodes it hosts.
    pub fn with_offer(mut self, capability: Capability) -> Self {
        self.offers.insert(capability);
        self
    }

    /// The same spec with this readiness probe: "up" also needs it to pass.
    pub fn with_readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = Some(readiness);
        self
    }

    /// The same spec with these start and stop timeouts.
    pub fn with_timeouts(mut self, start: Duration, stop: Duration) -> Self {
        self.timeouts = Timeouts { start, stop };
        self
    }

    /// The same spec, stopped (`true`) rather than proposed when a stop leaves it empty.
    pub fn with_stop_when_empty(mut self, stop: bool) -> Self {
        self.stop_when_empty = stop;
        self
    }

    /// The same spec, proposing its shutdown on re-evaluation (`true`) or stopping it.
    pub fn with_confirm_auto_shutdown(mut self, confirm: bool) -> Self {
        self.confirm_auto_shutdown = confirm;
        self
    }
}

/// One node as given through an API or a form (the same fields as a topology file's
/// `[[node]]` table), before its links are resolved against a topology.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDraft {
    /// Everything but the links.
    pub spec: NodeSpec,
    /// The parent's name or id, if any.
    pub parent: Option<String>,
    /// Names or ids of what it depends on.
    pub depends_on: Vec<String>,
}

/// A node in a [`Topology`](super::Topology).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Stable id.
    pub id: NodeId,
    /// Its parent in the hosting tree.
    pub parent: Option<NodeId>,
    /// Everything else.
    pub spec: NodeSpec,
}

impl Node {
    /// The node's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }
    /// The node's kind.
    pub fn kind(&self) -> &Kind {
        &self.spec.kind
    }
    /// Whether it offers `capability` to children.
    pub fn offers(&self, capability: Capability) -> bool {
        self.spec.offers.contains(&capability)
    }
}

/// Checks a service address: an absolute `http` or `https` URL with a host, at most 2048
/// bytes, with no credentials in it (it is shown to every viewer of the node).
pub fn validate_url(url: &str) -> Result<(), String> {
    if url.len() > 2048 {
        return Err("is longer than 2048 bytes".into());
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` must be an http:// or https:// address with a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry a user name or password (every viewer of the node sees it)".into());
    }
    Ok(())
}

/// Checks a node name: `[a-z0-9][a-z0-9-_]*`, at most 63 characters.
pub fn validate_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("name is empty".into()),
        Some(c) if !(c.is_ascii_lowercase() || c.is_ascii_digit()) => {
            return Err(format!("`{name}` must start with a lowercase letter or a digit"));
        }
        _ => {}
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')) {
        return Err(format!("`{name}` contains `{bad}`; use lowercase letters, digits, `-` and `_`"));
    }
    if name.len() > 63 {
        return Err(format!("`{name}` is longer than 63 characters"));
    }
    Ok(())
}
