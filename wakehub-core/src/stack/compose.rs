//! The Compose subset WakeHub applies: a compose file read into a [`Compose`], checked, and
//! normalized (every short form given its long form), so that two files meaning the same
//! give the same model — and the same version.
//!
//! Accepted: top-level `services`, `volumes`, `networks` (and `name`, `version`, `x-…`
//! extensions, which are ignored); per service `image` (required), `command`, `entrypoint`,
//! `environment`, `ports`, `volumes`, `networks`, `healthcheck`, `depends_on` (with
//! `service_started`, `service_healthy`, `service_completed_successfully`), `restart`,
//! `labels`, `user`, `working_dir`, `x-…`. Anything else is refused with its key and line.
//! Variable substitution (`${VAR}`) is refused: a value comes from the file (or a secret),
//! never from the server's environment; `$$` is a literal `$`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::de;
use serde::{Deserialize, Serialize};

/// Why a compose file is refused: what, and where when known (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", location.map(|(l, c)| format!("line {l}, column {c}: ")).unwrap_or_default())]
pub struct ComposeError {
    /// What is wrong, naming the key (`services.web.depends_on.db`).
    pub message: String,
    /// Line and column, when the parser knows them.
    pub location: Option<(usize, usize)>,
}

impl ComposeError {
    fn at(message: impl Into<String>) -> ComposeError {
        ComposeError { message: message.into(), location: None }
    }
}

/// The most a compose file may weigh.
pub const MAX_COMPOSE_BYTES: usize = 256 * 1024;

/// A compose file, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Compose {
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Named volumes (declared at the top level), by name.
    pub volumes: BTreeMap<String, Volume>,
    /// Networks (declared at the top level), by name.
    pub networks: BTreeMap<String, Network>,
}

/// One service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Service {
    /// The image reference (`nginx:1.27`, `registry/app@sha256:…`).
    pub image: String,
    /// The command (exec form; a string is split as a shell would).
    pub command: Option<Vec<String>>,
    /// The entrypoint (exec form).
    pub entrypoint: Option<Vec<String>>,
    /// Environment, by name.
    pub environment: BTreeMap<String, String>,
    /// Published ports.
    pub ports: Vec<Port>,
    /// Mounts.
    pub volumes: Vec<Mount>,
    /// Networks it joins (none: the stack's default network).
    pub networks: Vec<String>,
    /// Its health check.
    pub healthcheck: Option<Healthcheck>,
    /// What must be true of other services before it starts.
    pub depends_on: BTreeMap<String, Condition>,
    /// `no`, `always`, `on-failure[:N]`, `unless-stopped`.
    pub restart: Restart,
    /// Labels, by name.
    pub labels: BTreeMap<String, String>,
    /// The user it runs as.
    pub user: Option<String>,
    /// Its working directory.
    pub working_dir: Option<String>,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Port {
    /// The host address it binds (none: every address).
    pub host_ip: Option<String>,
    /// The host port (none: one the engine picks).
    pub published: Option<u16>,
    /// The container port.
    pub target: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// A mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// `volume` (a named volume of the stack), `bind` (a path of the Docker host) or `tmpfs`.
    pub kind: String,
    /// The volume's name or the host path (none for tmpfs).
    pub source: Option<String>,
    /// The path in the container.
    pub target: String,
    /// Read-only.
    pub read_only: bool,
}

/// A health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["CMD", …]`, `["CMD-SHELL", …]`, or `["NONE"]` (the image's own check disabled).
    pub test: Vec<String>,
    /// Between checks (default 30 s).
    pub interval: Duration,
    /// One check's bound (default 30 s).
    pub timeout: Duration,
    /// Failures in a row before unhealthy (default 3).
    pub retries: u32,
    /// Failures not counted at start (default 0).
    pub start_period: Duration,
}

/// What a dependency must be before a service starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Started.
    ServiceStarted,
    /// Healthy (by a fresh health check result).
    ServiceHealthy,
    /// Exited with status 0 (a one-shot init).
    ServiceCompletedSuccessfully,
}

/// A restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "policy", content = "max_retries")]
pub enum Restart {
    /// Never restarted.
    No,
    /// Always restarted.
    Always,
    /// Restarted after a failure, up to the count if any.
    OnFailure(Option<u32>),
    /// Restarted unless stopped by hand.
    UnlessStopped,
}

/// A named volume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Volume {
    /// Its driver (default `local`).
    pub driver: Option<String>,
    /// Made outside the stack: used, never created or removed.
    pub external: bool,
    /// Its name on the engine, if not the stack's.
    pub name: Option<String>,
}

/// A network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Network {
    /// Its driver (default `bridge`).
    pub driver: Option<String>,
    /// Made outside the stack.
    pub external: bool,
    /// Its name on the engine, if not the stack's.
    pub name: Option<String>,
    /// No route outside.
    pub internal: bool,
}

// ---- The file as written: every form compose allows for the accepted keys. ----

/// The keys accepted at the top level and in a service (besides `x-…` extensions), checked
/// by [`check_keys`] before the typed read (which ignores what it does not know).
const TOP_KEYS: &[&str] = &["services", "volumes", "networks", "name", "version"];
const SERVICE_KEYS: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "ports",
    "volumes",
    "networks",
    "healthcheck",
    "depends_on",
    "restart",
    "labels",
    "user",
    "working_dir",
];

#[derive(Deserialize)]
struct RawFile {
    services: BTreeMap<String, RawService>,
    #[serde(default)]
    volumes: BTreeMap<String, Option<RawVolume>>,
    #[serde(default)]
    networks: BTreeMap<String, Option<RawNetwork>>,
}

#[derive(Deserialize)]
struct RawService {
    image: Option<String>,
    #[serde(default)]
    command: Option<StringOrList>,
    #[serde(default)]
    entrypoint: Option<StringOrList>,
    #[serde(default)]
    environment: Option<MapOrList>,
    #[serde(default)]
    ports: Vec<RawPort>,
    #[serde(default)]
    volumes: Vec<RawMount>,
    #[serde(default)]
    networks: Option<NamesOrMap>,
    #[serde(default)]
    healthcheck: Option<RawHealthcheck>,
    #[serde(default)]
    depends_on: Option<RawDependsOn>,
    #[serde(default)]
    restart: Option<String>,
    #[serde(default)]
    labels: Option<MapOrList>,
    #[serde(default)]
    user: Option<Scalar>,
    #[serde(default)]
    working_dir: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

/// A scalar as compose accepts it where a string is meant (`PORT: 8080`, `DEBUG: true`).
#[derive(Deserialize, Clone)]
#[serde(untagged, expecting = "a string, a number or a boolean")]
enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn text(self) -> String {
        match self {
            Scalar::Str(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// A value compose allows in a flat form (a scalar or a list) or as a map: read by shape, so
/// an error inside either form is the parser's own (with its line), not "no variant matched".
enum Shape<F, M> {
    Flat(F),
    Map(M),
}

impl<'de, F: Deserialize<'de>, M: Deserialize<'de>> Deserialize<'de> for Shape<F, M> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use de::IntoDeserializer;
        use de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        struct V<F, M>(std::marker::PhantomData<(F, M)>);
        impl<'de, F: Deserialize<'de>, M: Deserialize<'de>> de::Visitor<'de> for V<F, M> {
            type Value = Shape<F, M>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a value, a list or a map")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                F::deserialize(v.into_deserializer()).map(Shape::Flat)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                F::deserialize(v.into_deserializer()).map(Shape::Flat)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                F::deserialize(v.into_deserializer()).map(Shape::Flat)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                F::deserialize(SeqAccessDeserializer::new(seq)).map(Shape::Flat)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                M::deserialize(MapAccessDeserializer::new(map)).map(Shape::Map)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `environment`, `labels`: a map of NAME: value, or a list of NAME=value.
type MapOrList = Shape<Vec<String>, BTreeMap<String, Option<Scalar>>>;
/// A service's `networks`: a list of names, or a map of names.
type NamesOrMap = Shape<Vec<String>, BTreeMap<String, Option<de::IgnoredAny>>>;
/// A port: `"[HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]"`, a number, or a map with `target`.
type RawPort = Shape<ShortPort, LongPort>;

#[derive(Deserialize)]
#[serde(untagged, expecting = "\"[HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]\" or a port number")]
enum ShortPort {
    Number(u16),
    Short(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongPort {
    target: u16,
    #[serde(default)]
    published: Option<Scalar>,
    #[serde(default)]
    host_ip: Option<String>,
    #[serde(default)]
    protocol: Option<String>,
}

/// A mount: `"SOURCE:TARGET[:ro]"`, or a map with type, source and target.
type RawMount = Shape<String, LongMount>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongMount {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    source: Option<String>,
    target: String,
    #[serde(default)]
    read_only: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealthcheck {
    #[serde(default)]
    test: Option<StringOrList>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    start_period: Option<String>,
    #[serde(default)]
    disable: bool,
}

/// `depends_on`: a list of service names, or a map of service names to `{ condition }`.
type RawDependsOn = Shape<Vec<String>, BTreeMap<String, DependsOnEntry>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DependsOnEntry {
    #[serde(default = "started")]
    condition: Condition,
    #[serde(default)]
    restart: bool,
    #[serde(default = "yes")]
    required: bool,
}

fn started() -> Condition {
    Condition::ServiceStarted
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVolume {
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    external: bool,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    external: bool,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    internal: bool,
}

/// Whether `name` may name a service, volume or network: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at
/// most 63 characters (it becomes part of container names).
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 63
}

/// Refuses `${VAR}` and `$VAR` (substitution from the server's environment); `$$` is `$`.
fn literal(value: &str, path: &str) -> Result<String, ComposeError> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('$') => {
                chars.next();
                out.push('$');
            }
            Some(n) if *n == '{' || n.is_ascii_alphabetic() || *n == '_' => {
                return Err(ComposeError::at(format!(
                    "{path}: variable substitution (`${n}…`) is not supported: WakeHub never reads the server's \
                     environment; write the value (or `$$` for a literal `$`)"
                )));
            }
            _ => out.push('$'),
        }
    }
    Ok(out)
}

fn duration(value: Option<&str>, default: Duration, path: &str) -> Result<Duration, ComposeError> {
    match value {
        None => Ok(default),
        Some(text) => humantime::parse_duration(text.trim())
            .map_err(|e| ComposeError::at(format!("{path}: `{text}` is not a duration (`30s`, `1m30s`): {e}"))),
    }
}

fn pairs(raw: Option<MapOrList>, path: &str) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut out = BTreeMap::new();
    match raw {
        None => {}
        Some(Shape::Map(map)) => {
            for (k, v) in map {
                let v = v.map(Scalar::text).unwrap_or_default();
                out.insert(k.clone(), literal(&v, &format!("{path}.{k}"))?);
            }
        }
        Some(Shape::Flat(list)) => {
            for item in list {
                let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
                if out.insert(k.to_owned(), literal(v, &format!("{path}.{k}"))?).is_some() {
                    return Err(ComposeError::at(format!("{path}: `{k}` is given twice")));
                }
            }
        }
    }
    if let Some(bad) = out.keys().find(|k| k.is_empty() || k.contains(char::is_whitespace)) {
        return Err(ComposeError::at(format!("{path}: `{bad}` is not a name")));
    }
    Ok(out)
}

fn words(raw: Option<StringOrList>, path: &str) -> Result<Option<Vec<String>>, ComposeError> {
    let list = match raw {
        None => return Ok(None),
        Some(StringOrList::Many(list)) => list,
        Some(StringOrList::One(line)) => {
            shlex::split(&line).ok_or_else(|| ComposeError::at(format!("{path}: `{line}` has an unclosed quote")))?
        }
    };
    list.iter().map(|w| literal(w, path)).collect::<Result<_, _>>().map(Some)
}

fn port(raw: RawPort, path: &str) -> Result<Port, ComposeError> {
    let bad = |text: &str| ComposeError::at(format!("{path}: `{text}` is not [HOST_IP:][PUBLISHED:]TARGET[/tcp|udp]"));
    let number = |text: &str| text.parse::<u16>().ok().filter(|p| *p > 0);
    let proto = |p: Option<String>| -> Result<String, ComposeError> {
        match p.as_deref().unwrap_or("tcp") {
            p @ ("tcp" | "udp") => Ok(p.to_owned()),
            other => Err(ComposeError::at(format!("{path}: protocol `{other}` is tcp or udp"))),
        }
    };
    match raw {
        Shape::Flat(ShortPort::Number(target)) if target > 0 => {
            Ok(Port { host_ip: None, published: None, target, protocol: "tcp".into() })
        }
        Shape::Flat(ShortPort::Number(_)) => Err(ComposeError::at(format!("{path}: port 0 is not a port"))),
        Shape::Map(l) => {
            let published = match l.published.map(Scalar::text) {
                None => None,
                Some(p) => Some(number(&p).ok_or_else(|| bad(&p))?),
            };
            if l.target == 0 {
                return Err(ComposeError::at(format!("{path}: port 0 is not a port")));
            }
            Ok(Port { host_ip: l.host_ip, published, target: l.target, protocol: proto(l.protocol)? })
        }
        Shape::Flat(ShortPort::Short(text)) => {
            let (spec, protocol) = match text.rsplit_once('/') {
                Some((s, p)) => (s, Some(p.to_owned())),
                None => (text.as_str(), None),
            };
            // An IPv6 host address is bracketed: `[::1]:8080:80`.
            let (host_ip, rest) = match spec.strip_prefix('[') {
                Some(v6) => {
                    let (ip, rest) = v6.split_once("]:").ok_or_else(|| bad(&text))?;
                    (Some(ip.to_owned()), rest)
                }
                None => match spec.matches(':').count() {
                    2 => {
                        let (ip, rest) = spec.split_once(':').ok_or_else(|| bad(&text))?;
                        (Some(ip.to_owned()), rest)
                    }
                    0 | 1 => (None, spec),
                    _ => return Err(bad(&text)),
                },
            };
            let (published, target) = match rest.split_once(':') {
                Some(("", t)) => (None, t),
                Some((p, t)) => (Some(number(p).ok_or_else(|| bad(&text))?), t),
                None => (None, rest),
            };
            let target = number(target).ok_or_else(|| bad(&text))?;
            Ok(Port { host_ip: host_ip.filter(|i| !i.is_empty()), published, target, protocol: proto(protocol)? })
        }
    }
}

fn mount(raw: RawMount, path: &str) -> Result<Mount, ComposeError> {
    let m = match raw {
        Shape::Map(l) => {
            if !matches!(l.kind.as_str(), "volume" | "bind" | "tmpfs") {
                return Err(ComposeError::at(format!("{path}: mount type `{}` is volume, bind or tmpfs", l.kind)));
            }
            Mount { kind: l.kind, source: l.source, target: l.target, read_only: l.read_only }
        }
        Shape::Flat(text) => {
            let parts: Vec<&str> = text.split(':').collect();
            let (source, target, mode) = match parts.as_slice() {
                [target] => (None, *target, None),
                [source, target] => (Some(*source), *target, None),
                [source, target, mode] => (Some(*source), *target, Some(*mode)),
                _ => return Err(ComposeError::at(format!("{path}: `{text}` is not SOURCE:TARGET[:ro|rw]"))),
            };
            let read_only = match mode {
                None | Some("rw") => false,
                Some("ro") => true,
                Some(other) => return Err(ComposeError::at(format!("{path}: mode `{other}` is ro or rw"))),
            };
            let kind = match source {
                None => "volume",
                Some(s) if s.starts_with('/') || s.starts_with('.') || s.starts_with('~') => "bind",
                Some(_) => "volume",
            };
            Mount { kind: kind.into(), source: source.map(str::to_owned), target: target.to_owned(), read_only }
        }
    };
    if !m.target.starts_with('/') {
        return Err(ComposeError::at(format!("{path}: the target `{}` is not an absolute path", m.target)));
    }
    match (m.kind.as_str(), &m.source) {
        ("bind", Some(s)) if !s.starts_with('/') => Err(ComposeError::at(format!(
            "{path}: a bind mount's source `{s}` must be an absolute path of the Docker host (there is no project \
             directory)"
        ))),
        ("bind", None) => Err(ComposeError::at(format!("{path}: a bind mount needs its source"))),
        _ => Ok(m),
    }
}

fn restart(raw: Option<String>, path: &str) -> Result<Restart, ComposeError> {
    Ok(match raw.as_deref() {
        None | Some("no") => Restart::No,
        Some("always") => Restart::Always,
        Some("unless-stopped") => Restart::UnlessStopped,
        Some("on-failure") => Restart::OnFailure(None),
        Some(other) => match other.strip_prefix("on-failure:").and_then(|n| n.parse().ok()) {
            Some(n) => Restart::OnFailure(Some(n)),
            None => {
                return Err(ComposeError::at(format!(
                    "{path}: `{other}` is no, always, on-failure[:N] or unless-stopped"
                )));
            }
        },
    })
}

fn service(name: &str, raw: RawService) -> Result<Service, ComposeError> {
    let path = format!("services.{name}");
    let image = raw
        .image
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| ComposeError::at(format!("{path}: `image` is required (WakeHub does not build images)")))?;
    let healthcheck = match raw.healthcheck {
        None => None,
        Some(h) if h.disable => Some(Healthcheck {
            test: vec!["NONE".into()],
            interval: Duration::ZERO,
            timeout: Duration::ZERO,
            retries: 0,
            start_period: Duration::ZERO,
        }),
        Some(h) => {
            let p = format!("{path}.healthcheck");
            let test = match h.test {
                None => return Err(ComposeError::at(format!("{p}: `test` is required"))),
                Some(StringOrList::One(line)) => vec!["CMD-SHELL".to_owned(), literal(&line, &p)?],
                Some(StringOrList::Many(list)) => {
                    match list.first().map(String::as_str) {
                        Some("CMD" | "CMD-SHELL") if list.len() > 1 => {}
                        Some("NONE") if list.len() == 1 => {}
                        _ => {
                            return Err(ComposeError::at(format!(
                                "{p}: `test` is a command line, [\"CMD\", …], [\"CMD-SHELL\", \"…\"] or [\"NONE\"]"
                            )));
                        }
                    }
                    list.iter().map(|w| literal(w, &p)).collect::<Result<_, _>>()?
                }
            };
            Some(Healthcheck {
                test,
                interval: duration(h.interval.as_deref(), Duration::from_secs(30), &format!("{p}.interval"))?,
                timeout: duration(h.timeout.as_deref(), Duration::from_secs(30), &format!("{p}.timeout"))?,
                retries: h.retries.unwrap_or(3),
                start_period: duration(h.start_period.as_deref(), Duration::ZERO, &format!("{p}.start_period"))?,
            })
        }
    };
    let depends_on = match raw.depends_on {
        None => BTreeMap::new(),
        Some(Shape::Flat(list)) => list.into_iter().map(|s| (s, Condition::ServiceStarted)).collect(),
        Some(Shape::Map(map)) => {
            if let Some((dep, _)) = map.iter().find(|(_, e)| !e.required || e.restart) {
                return Err(ComposeError::at(format!(
                    "{path}.depends_on.{dep}: `required: false` and `restart: true` are not supported"
                )));
            }
            map.into_iter().map(|(k, e)| (k, e.condition)).collect()
        }
    };
    let networks = match raw.networks {
        None => Vec::new(),
        Some(Shape::Flat(l)) => l,
        Some(Shape::Map(m)) => m.into_keys().collect(),
    };
    let mut ports: Vec<Port> =
        raw.ports.into_iter().map(|p| port(p, &format!("{path}.ports"))).collect::<Result<_, _>>()?;
    ports.sort();
    Ok(Service {
        image: literal(&image, &format!("{path}.image"))?,
        command: words(raw.command, &format!("{path}.command"))?,
        entrypoint: words(raw.entrypoint, &format!("{path}.entrypoint"))?,
        environment: pairs(raw.environment, &format!("{path}.environment"))?,
        ports,
        volumes: raw.volumes.into_iter().map(|m| mount(m, &format!("{path}.volumes"))).collect::<Result<_, _>>()?,
        networks,
        healthcheck,
        depends_on,
        restart: restart(raw.restart, &format!("{path}.restart"))?,
        labels: pairs(raw.labels, &format!("{path}.labels"))?,
        user: raw.user.map(Scalar::text),
        working_dir: raw.working_dir,
    })
}

/// Reads compose file `text` into its normalized model, or says what is wrong and where.
pub fn parse_compose(text: &str) -> Result<Compose, ComposeError> {
    if text.len() > MAX_COMPOSE_BYTES {
        return Err(ComposeError::at(format!("a compose file is at most {} KiB", MAX_COMPOSE_BYTES / 1024)));
    }
    check_keys(text)?;
    let raw: RawFile = serde_yaml_ng::from_str(text).map_err(yaml_error)?;
    if raw.services.is_empty() {
        return Err(ComposeError::at("`services` names no service"));
    }
    let mut services = BTreeMap::new();
    for (name, s) in raw.services {
        if !is_name(&name) {
            return Err(ComposeError::at(format!(
                "services: `{name}` is not a service name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"
            )));
        }
        let s = service(&name, s)?;
        services.insert(name, s);
    }
    let volumes: BTreeMap<String, Volume> = raw
        .volumes
        .into_iter()
        .map(|(k, v)| {
            let v = v.unwrap_or_default();
            (k, Volume { driver: v.driver, external: v.external, name: v.name })
        })
        .collect();
    let networks: BTreeMap<String, Network> = raw
        .networks
        .into_iter()
        .map(|(k, n)| {
            let n = n.unwrap_or_default();
            (k, Network { driver: n.driver, external: n.external, name: n.name, internal: n.internal })
        })
        .collect();
    for name in volumes.keys().chain(networks.keys()) {
        if !is_name(name) {
            return Err(ComposeError::at(format!("`{name}` is not a volume or network name")));
        }
    }
    let compose = Compose { services, volumes, networks };
    check(&compose)?;
    Ok(compose)
}

fn yaml_error(e: serde_yaml_ng::Error) -> ComposeError {
    let location = e.location().map(|l| (l.line(), l.column()));
    // serde_yaml's message ends with its own " at line L column C".
    let message = e.to_string();
    let message = match message.rfind(" at line ") {
        Some(at) if location.is_some() => message[..at].to_owned(),
        _ => message,
    };
    ComposeError { message, location }
}

/// The 1-based line of the key at `path` (`["services", "web", "build"]`), following the
/// indentation of block mappings; none when it cannot be told (flow style).
fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    let mut parent: Option<usize> = None;
    let mut from = 0;
    let lines: Vec<&str> = text.lines().collect();
    let mut found = None;
    for segment in path {
        found = None;
        for (i, line) in lines.iter().enumerate().skip(from) {
            let body = line.trim_start();
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            let indent = line.len() - body.len();
            if parent.is_some_and(|p| indent <= p) {
                break; // out of the parent's block
            }
            let key = body.split(':').next().unwrap_or_default().trim().trim_matches(|c| c == '"' || c == '\'');
            if key == *segment && body.contains(':') && parent.is_none_or(|p| indent > p) {
                found = Some(i);
                parent = Some(indent);
                from = i + 1;
                break;
            }
        }
        found?;
    }
    found.map(|i| i + 1)
}

/// Refuses a key outside the accepted subset, naming it and its line.
fn check_keys(text: &str) -> Result<(), ComposeError> {
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(yaml_error)?;
    let top = value.as_mapping().ok_or_else(|| ComposeError::at("a compose file is a map with `services`"))?;
    let refuse =
        |path: &[&str], message: String| ComposeError { message, location: line_of(text, path).map(|l| (l, 1)) };
    let key_name = |k: &serde_yaml_ng::Value| k.as_str().map(str::to_owned);
    for k in top.keys() {
        let Some(k) = key_name(k) else { return Err(ComposeError::at("a top-level key is not a string")) };
        if !TOP_KEYS.contains(&k.as_str()) && !k.starts_with("x-") {
            return Err(refuse(
                &[&k],
                format!("`{k}` is not supported at the top level (supported: {}, x-…)", TOP_KEYS.join(", ")),
            ));
        }
    }
    let Some(services) = top.get("services").and_then(|s| s.as_mapping()) else { return Ok(()) };
    for (name, service) in services {
        let (Some(name), Some(service)) = (key_name(name), service.as_mapping()) else { continue };
        for k in service.keys() {
            let Some(k) = key_name(k) else { continue };
            if !SERVICE_KEYS.contains(&k.as_str()) && !k.starts_with("x-") {
                let hint = match k.as_str() {
                    "build" => " (WakeHub does not build images: give `image`)",
                    "<<" => " (merge keys are not supported: write the keys out)",
                    "env_file" => " (WakeHub never reads files of the server: write `environment`)",
                    _ => "",
                };
                return Err(refuse(
                    &["services", &name, &k],
                    format!(
                        "services.{name}: `{k}` is not supported{hint} (supported: {}, x-…)",
                        SERVICE_KEYS.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// What a file must be beyond its shape: references that resolve, no dependency cycle.
fn check(c: &Compose) -> Result<(), ComposeError> {
    for (name, s) in &c.services {
        for dep in s.depends_on.keys() {
            if !c.services.contains_key(dep) {
                return Err(ComposeError::at(format!("services.{name}.depends_on: there is no service `{dep}`")));
            }
            if dep == name {
                return Err(ComposeError::at(format!("services.{name}.depends_on: a service cannot depend on itself")));
            }
        }
        for m in s.volumes.iter().filter(|m| m.kind == "volume") {
            if let Some(v) = &m.source
                && !c.volumes.contains_key(v)
            {
                return Err(ComposeError::at(format!(
                    "services.{name}.volumes: volume `{v}` is not declared under the top-level `volumes`"
                )));
            }
        }
        for n in &s.networks {
            if !c.networks.contains_key(n) && n != "default" {
                return Err(ComposeError::at(format!(
                    "services.{name}.networks: network `{n}` is not declared under the top-level `networks`"
                )));
            }
        }
    }
    // Kahn's algorithm: whatever remains is on a cycle.
    let mut remaining: BTreeMap<&str, BTreeSet<&str>> =
        c.services.iter().map(|(n, s)| (n.as_str(), s.depends_on.keys().map(String::as_str).collect())).collect();
    while let Some(ready) = remaining.iter().find(|(_, deps)| deps.is_empty()).map(|(n, _)| *n) {
        remaining.remove(ready);
        for deps in remaining.values_mut() {
            deps.remove(ready);
        }
    }
    if !remaining.is_empty() {
        let names: Vec<&str> = remaining.keys().copied().collect();
        return Err(ComposeError::at(format!("depends_on forms a cycle between {}", names.join(", "))));
    }
    Ok(())
}

impl Compose {
    /// The services in an order that starts each after what it depends on (by name among
    /// equals).
    pub fn start_order(&self) -> Vec<&str> {
        let mut done: Vec<&str> = Vec::new();
        while done.len() < self.services.len() {
            let next = self
                .services
                .iter()
                .find(|(n, s)| !done.contains(&n.as_str()) && s.depends_on.keys().all(|d| done.contains(&d.as_str())))
                .map(|(n, _)| n.as_str());
            match next {
                Some(n) => done.push(n),
                None => break, // a cycle: refused by parse_compose
            }
        }
        done
    }

    /// The canonical JSON of the model: two files meaning the same give the same bytes.
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Its SHA-256 (hex) over [`canonical`](Self::canonical): a version's identity.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(self.canonical().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}
