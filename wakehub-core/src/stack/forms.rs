//! The compose file as written: every form Compose allows for the accepted keys (short and
//! long), read by shape, and turned into the normalized model of [`super::compose`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde::de;

use super::compose::{ComposeError, Condition, Healthcheck, Mount, Port, Restart, Service};

/// The keys accepted at the top level and in a service (besides `x-…` extensions), checked
/// by [`check_keys`] before the typed read (which ignores what it does not know).
pub(super) const TOP_KEYS: &[&str] = &["services", "volumes", "networks", "name", "version"];
pub(super) const SERVICE_KEYS: &[&str] = &[
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
    "stop_grace_period",
];

#[derive(Deserialize)]
pub(super) struct RawFile {
    pub(super) services: BTreeMap<String, RawService>,
    #[serde(default)]
    pub(super) volumes: BTreeMap<String, Option<RawVolume>>,
    #[serde(default)]
    pub(super) networks: BTreeMap<String, Option<RawNetwork>>,
}

#[derive(Deserialize)]
pub(super) struct RawService {
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
    #[serde(default)]
    stop_grace_period: Option<String>,
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
pub(super) struct RawVolume {
    #[serde(default)]
    pub(super) driver: Option<String>,
    #[serde(default)]
    pub(super) external: bool,
    #[serde(default)]
    pub(super) name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    #[serde(default)]
    pub(super) driver: Option<String>,
    #[serde(default)]
    pub(super) external: bool,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) internal: bool,
}

/// Whether `name` may name a service, volume or network: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at
/// most 63 characters (it becomes part of container names).
pub(super) fn is_name(name: &str) -> bool {
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

pub(super) fn service(name: &str, raw: RawService) -> Result<Service, ComposeError> {
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
        stop_grace_period: match raw.stop_grace_period {
            None => None,
            Some(d) => Some(duration(Some(&d), Duration::ZERO, &format!("{path}.stop_grace_period"))?),
        },
    })
}
