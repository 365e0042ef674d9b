//! The Compose subset WakeHub applies: a compose file read into a [`Compose`], checked, and
//! normalized (every short form given its long form), so that two files meaning the same
//! give the same model — and the same version.
//!
//! Accepted: top-level `services`, `volumes`, `networks` (and `name`, `version`, `x-…`
//! extensions, which are ignored); per service `image` (required), `command`, `entrypoint`,
//! `environment`, `ports`, `volumes`, `networks`, `healthcheck`, `depends_on` (with
//! `service_started`, `service_healthy`, `service_completed_successfully`), `restart`,
//! `labels`, `user`, `working_dir`, `stop_grace_period`, `x-…`. Anything else is refused with its key and line.
//! Variable substitution (`${VAR}`) is refused: a value comes from the file (or a secret),
//! never from the server's environment; `$$` is a literal `$`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::forms::{RawFile, SERVICE_KEYS, TOP_KEYS, is_name, service};

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
    pub(super) fn at(message: impl Into<String>) -> ComposeError {
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
    /// How long a stop waits after SIGTERM before SIGKILL (none: the engine's 10 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Duration>,
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
