//! The `stack` connector: a node of kind `stack` is a compose file's services on the Docker
//! Engine its host offers. Starting it applies the version its driver gives
//! ([`NodeContext::stack`](super::NodeContext::stack)) with the image ids that version ran with; stopping it stops its
//! containers; its status is whether any of them runs. Beside the [`Connector`], what the
//! engine's stack commands use: observing a stack (per service state, health, uptime,
//! restarts, drift), removing it, and its containers' Docker events.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerStateStatusEnum, EventMessageTypeEnum};
use bollard::query_parameters::{
    CreateImageOptionsBuilder, EventsOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    StopContainerOptions,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Serialize;

pub use super::StackToApply;
pub use super::compose::IMAGE_LABEL;
use super::compose::{CONFIG_LABEL, SERVICE_LABEL, STACK_LABEL, VERSION_LABEL, config_digest};
use super::transport::cause_chain;
use super::{ConfigError, Connector, ConnectorError, ErrorCode, Notice, PowerState, Target};
use crate::model::ConnectorConfig;
use crate::stack::Compose;

/// How long an apply waits for one condition (a dependency healthy, a one-shot done) unless
/// the node's `wait_secs` says.
const DEFAULT_WAIT: Duration = Duration::from_secs(120);

/// The project name of a stack node: its `project` key, else its node name.
pub fn project_of(target: &Target) -> String {
    target.config.str("project").map_or_else(|| target.name.clone(), str::to_owned)
}

/// How long each condition of an apply may take.
pub fn wait_of(target: &Target) -> Duration {
    target.config.int("wait_secs").and_then(|s| u64::try_from(s).ok()).map_or(DEFAULT_WAIT, Duration::from_secs)
}

/// A client of the Docker Engine the stack's host offers.
pub async fn client(target: &Target) -> Result<Docker, ConnectorError> {
    let host = target.host.as_ref().ok_or_else(|| {
        ConnectorError::new(
            ErrorCode::InvalidConfig,
            format!("{}: a stack runs on a host that offers docker", target.name),
        )
    })?;
    super::docker::client_for(&host.config, &target.name).await
}

fn fail(stack: &str, doing: &str, e: DockerError) -> ConnectorError {
    let code = match &e {
        DockerError::DockerResponseServerError { status_code: 404, .. } => ErrorCode::NotFound,
        DockerError::DockerResponseServerError { .. } => ErrorCode::PlatformError,
        DockerError::RequestTimeoutError => ErrorCode::Timeout,
        _ => ErrorCode::Unreachable,
    };
    ConnectorError::new(code, format!("stack `{stack}`: cannot {doing}: {}", cause_chain(&e)))
}

/// Pins each service of `compose` to an image id: the one `recorded` for it, else the id its
/// reference names on the engine now (pulled first when the engine lacks it). Returns the
/// pinned model (each service's reference kept in [`IMAGE_LABEL`]) and the ids.
pub async fn pin_images(
    client: &Docker,
    stack: &str,
    compose: &Compose,
    recorded: Option<&BTreeMap<String, String>>,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(Compose, BTreeMap<String, String>), ConnectorError> {
    let mut pinned = compose.clone();
    let mut ids = BTreeMap::new();
    for (name, s) in pinned.services.iter_mut() {
        let reference = s.image.clone();
        let id = match recorded.and_then(|r| r.get(name)) {
            Some(id) => {
                client.inspect_image(id).await.map_err(|e| match e {
                    DockerError::DockerResponseServerError { status_code: 404, .. } => ConnectorError::new(
                        ErrorCode::NotFound,
                        format!(
                            "stack `{stack}`: the image `{reference}` ({id}) this version ran with is no longer on the engine"
                        ),
                    ),
                    e => fail(stack, "inspect an image", e),
                })?;
                id.clone()
            }
            None => match client.inspect_image(&reference).await {
                Ok(image) => image.id.unwrap_or_else(|| reference.clone()),
                Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {
                    log(format!("{name}: pulling {reference}"));
                    let options = CreateImageOptionsBuilder::default().from_image(&reference).build();
                    let mut pull = client.create_image(Some(options), None, None);
                    while let Some(step) = pull.next().await {
                        step.map_err(|e| {
                            ConnectorError::new(
                                ErrorCode::NotFound,
                                format!(
                                    "stack `{stack}`: the image `{reference}` is not on the engine and cannot be pulled: {}",
                                    cause_chain(&e)
                                ),
                            )
                        })?;
                    }
                    let image =
                        client.inspect_image(&reference).await.map_err(|e| fail(stack, "inspect an image", e))?;
                    image.id.unwrap_or_else(|| reference.clone())
                }
                Err(e) => return Err(fail(stack, "inspect an image", e)),
            },
        };
        s.labels.insert(IMAGE_LABEL.into(), reference);
        s.image = id.clone();
        ids.insert(name.clone(), id);
    }
    Ok((pinned, ids))
}

/// One service of a stack as the engine runs it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ServiceState {
    /// The service.
    pub service: String,
    /// Its container's id (none: it has none).
    pub container: Option<String>,
    /// `running`, `exited`, `created`, `restarting`, `paused`, `dead`, or `missing`.
    pub state: String,
    /// `healthy`, `unhealthy`, `starting` (none: no health check).
    pub health: Option<String>,
    /// When it started (RFC 3339).
    pub started_at: Option<String>,
    /// How often the engine restarted it.
    pub restarts: i64,
    /// Its exit status, when it exited.
    pub exit_code: Option<i64>,
    /// The image reference it was written with.
    pub image: Option<String>,
    /// The version that created it.
    pub version: Option<i64>,
}

/// A stack as the engine runs it now, against the version it should be on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StackState {
    /// Each service (of the version, and any other container labeled for the stack).
    pub services: Vec<ServiceState>,
    /// What differs from the version, for people (a container removed or stopped by hand,
    /// a changed configuration, a container of no service of the version).
    pub drift: Vec<String>,
}

/// Observes stack `stack` on `client`, against `expected` (its version, pinned) if given.
pub async fn observe(client: &Docker, stack: &str, expected: Option<&Compose>) -> Result<StackState, ConnectorError> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{STACK_LABEL}={stack}")])]);
    let list = client
        .list_containers(Some(ListContainersOptionsBuilder::default().all(true).filters(&filters).build()))
        .await
        .map_err(|e| fail(stack, "list its containers", e))?;
    let mut out = StackState::default();
    let mut seen: BTreeMap<String, (String, Option<String>, String)> = BTreeMap::new();
    for c in list {
        let Some(id) = c.id else { continue };
        let labels = c.labels.unwrap_or_default();
        let service = labels.get(SERVICE_LABEL).cloned().unwrap_or_default();
        let i = client.inspect_container(&id, None).await.map_err(|e| fail(stack, "inspect a container", e))?;
        let state = i.state.unwrap_or_default();
        let status = state.status.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into());
        seen.insert(service.clone(), (status.clone(), labels.get(CONFIG_LABEL).cloned(), id.clone()));
        out.services.push(ServiceState {
            service,
            container: Some(id.chars().take(12).collect()),
            state: status,
            health: state.health.and_then(|h| h.status).map(|h| h.to_string()).filter(|h| !h.is_empty() && h != "none"),
            started_at: state.started_at.filter(|_| state.status == Some(ContainerStateStatusEnum::RUNNING)),
            restarts: i.restart_count.unwrap_or(0),
            exit_code: state.exit_code.filter(|_| state.status == Some(ContainerStateStatusEnum::EXITED)),
            image: labels.get(IMAGE_LABEL).cloned().or(c.image),
            version: labels.get(VERSION_LABEL).and_then(|v| v.parse().ok()),
        });
    }
    if let Some(compose) = expected {
        for (name, s) in &compose.services {
            let one_shot = compose
                .services
                .values()
                .any(|o| o.depends_on.get(name) == Some(&crate::stack::Condition::ServiceCompletedSuccessfully));
            match seen.get(name) {
                None => {
                    out.drift.push(format!("`{name}` has no container (removed by hand?)"));
                    out.services.push(ServiceState {
                        service: name.clone(),
                        container: None,
                        state: "missing".into(),
                        health: None,
                        started_at: None,
                        restarts: 0,
                        exit_code: None,
                        image: s.labels.get(IMAGE_LABEL).cloned(),
                        version: None,
                    });
                }
                Some((status, digest, _)) => {
                    if digest.as_deref() != Some(config_digest(stack, name, s, compose).as_str()) {
                        out.drift.push(format!("`{name}`'s container differs from the version's configuration"));
                    }
                    if status != "running" && !(one_shot && status == "exited") {
                        out.drift.push(format!("`{name}` is {status}, not running"));
                    }
                }
            }
        }
        for name in seen.keys().filter(|n| !compose.services.contains_key(*n)) {
            out.drift.push(format!("`{name}` is not a service of this version"));
        }
    }
    out.services.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(out)
}

/// The last `lines` lines (at most 1,000, 256 KiB) of the output of `service`'s container in
/// stack `stack`; `NOT_FOUND` when it has none.
pub async fn service_log(client: &Docker, stack: &str, service: &str, lines: usize) -> Result<String, ConnectorError> {
    let state = observe(client, stack, None).await?;
    let id =
        state.services.iter().find(|s| s.service == service).and_then(|s| s.container.clone()).ok_or_else(|| {
            ConnectorError::new(ErrorCode::NotFound, format!("stack `{stack}`: service `{service}` has no container"))
        })?;
    Ok(super::compose::tail(client, &id, lines.clamp(1, 1000), 256 << 10).await)
}

/// Stops every running container of stack `stack`, dependents first when `order` (a start
/// order) is known.
pub async fn stop_all(
    client: &Docker,
    stack: &str,
    order: &[&str],
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), ConnectorError> {
    let state = observe(client, stack, None).await?;
    let rank = |s: &str| order.iter().position(|o| *o == s).unwrap_or(usize::MAX);
    let mut running: Vec<&ServiceState> = state.services.iter().filter(|s| s.state == "running").collect();
    running.sort_by_key(|s| std::cmp::Reverse(rank(&s.service)));
    for s in running {
        let Some(id) = &s.container else { continue };
        match client.stop_container(id, None::<StopContainerOptions>).await {
            Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 304, .. }) => {}
            Err(e) => return Err(fail(stack, &format!("stop `{}`", s.service), e)),
        }
        log(format!("{}: stopped", s.service));
    }
    Ok(())
}

/// Removes stack `stack`'s containers and networks (its volumes are kept: data outlives a
/// removal; `docker volume rm` is the operator's choice).
pub async fn remove_all(
    client: &Docker,
    stack: &str,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), ConnectorError> {
    let state = observe(client, stack, None).await?;
    for s in &state.services {
        if let Some(id) = &s.container {
            let _ = client.stop_container(id, None::<StopContainerOptions>).await;
            let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default().force(true).build();
            match client.remove_container(id, Some(options)).await {
                Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {}
                Err(e) => return Err(fail(stack, &format!("remove `{}`", s.service), e)),
            }
            log(format!("{}: removed", s.service));
        }
    }
    let filters = HashMap::from([("label".to_owned(), vec![format!("{STACK_LABEL}={stack}")])]);
    let networks = client
        .list_networks(Some(ListNetworksOptionsBuilder::default().filters(&filters).build()))
        .await
        .map_err(|e| fail(stack, "list its networks", e))?;
    for n in networks {
        if let Some(name) = n.name {
            match client.remove_network(&name).await {
                Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {}
                Err(e) => return Err(fail(stack, &format!("remove network `{name}`"), e)),
            }
            log(format!("network {name} removed"));
        }
    }
    Ok(())
}

/// A change of one of a stack's containers, as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ContainerEvent {
    /// The service.
    pub service: String,
    /// The container (12 hex digits).
    pub container: String,
    /// `create`, `start`, `die`, `stop`, `kill`, `destroy`, `restart`, `oom`, `healthy`,
    /// `unhealthy`…
    pub action: String,
    /// The exit code of a `die`.
    pub exit_code: Option<String>,
    /// When (seconds since the epoch).
    pub time: i64,
}

/// The Docker events of stack `stack`'s containers from now on, as they come (exec events of
/// health checks left out; a health result is `healthy` or `unhealthy`).
pub fn events(client: &Docker, stack: &str) -> BoxStream<'static, Result<ContainerEvent, ConnectorError>> {
    let filters = HashMap::from([
        ("type".to_owned(), vec!["container".to_owned()]),
        ("label".to_owned(), vec![format!("{STACK_LABEL}={stack}")]),
    ]);
    let stack = stack.to_owned();
    // From now, whenever the stream is first polled (the request is made then).
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .unwrap_or_default();
    client
        .events(Some(EventsOptionsBuilder::new().since(&since).filters(&filters).build()))
        .filter_map(move |e| {
            let stack = stack.clone();
            async move {
                let e = match e {
                    Ok(e) => e,
                    Err(e) => return Some(Err(fail(&stack, "follow its events", e))),
                };
                if e.typ != Some(EventMessageTypeEnum::CONTAINER) {
                    return None;
                }
                let action = e.action.unwrap_or_default();
                if action.starts_with("exec_") {
                    return None;
                }
                let action = action.strip_prefix("health_status: ").map_or(action.clone(), str::to_owned);
                let actor = e.actor.unwrap_or_default();
                let attributes = actor.attributes.unwrap_or_default();
                Some(Ok(ContainerEvent {
                    service: attributes.get(SERVICE_LABEL).cloned().unwrap_or_default(),
                    container: actor.id.unwrap_or_default().chars().take(12).collect(),
                    action,
                    exit_code: attributes.get("exitCode").cloned(),
                    time: e.time.unwrap_or(0),
                }))
            }
        })
        .boxed()
}

/// The `stack` connector.
#[derive(Debug, Default)]
pub struct StackConnector;

impl StackConnector {
    /// The connector.
    pub fn new() -> Self {
        StackConnector
    }
}

#[async_trait::async_trait]
impl Connector for StackConnector {
    /// On while any of its containers runs; off when none does (or it has none).
    async fn status(&self, target: &Target) -> Result<PowerState, ConnectorError> {
        let client = client(target).await?;
        let state = observe(&client, &project_of(target), None).await?;
        Ok(if state.services.iter().any(|s| s.state == "running" || s.state == "restarting") {
            PowerState::On
        } else {
            PowerState::Off
        })
    }

    /// Applies the version its driver gives, waiting for its health checks and one-shots.
    async fn start(&self, target: &Target) -> Result<(), ConnectorError> {
        let context = target.context.as_ref().ok_or_else(|| {
            ConnectorError::new(
                ErrorCode::InvalidConfig,
                format!("{}: no store to read the stack's versions from", target.name),
            )
        })?;
        let wanted = context.0.stack(target.node).map_err(|m| {
            ConnectorError::new(ErrorCode::InvalidConfig, format!("{}: cannot read its version: {m}", target.name))
        })?;
        let Some(wanted) = wanted else {
            return Err(ConnectorError::new(
                ErrorCode::InvalidConfig,
                format!("{}: the stack has no version yet; create one (a compose file) first", target.name),
            ));
        };
        let client = client(target).await?;
        let project = project_of(target);
        let mut log = |line: String| target.notify(Notice::StackLog { node: target.node, line });
        let (pinned, images) = pin_images(&client, &project, &wanted.compose, wanted.images.as_ref(), &mut log).await?;
        let version = u64::try_from(wanted.version).unwrap_or(0);
        let command = wanted.command.map_or_else(|| "cascade".to_owned(), |c| format!("stack-command:{c}"));
        super::compose::converge(&client, &project, version, Some(&command), &pinned, wait_of(target), &mut log)
            .await?;
        target.notify(Notice::StackApplied { node: target.node, version: wanted.version, images });
        Ok(())
    }

    /// Stops its containers (dependents first); they are kept, to start again as they were.
    async fn stop(&self, target: &Target) -> Result<(), ConnectorError> {
        let client = client(target).await?;
        let project = project_of(target);
        let wanted = target.context.as_ref().and_then(|c| c.0.stack(target.node).ok().flatten());
        let order: Vec<&str> = wanted.as_ref().map(|w| w.compose.start_order()).unwrap_or_default();
        let mut log = |line: String| target.notify(Notice::StackLog { node: target.node, line });
        stop_all(&client, &project, &order, &mut log).await
    }

    fn validate(&self, config: &ConnectorConfig) -> Result<(), ConfigError> {
        const KEYS: [&str; 4] = ["project", "wait_secs", "compose", "compose_file"];
        let mut problems = Vec::new();
        for key in config.settings.keys() {
            if !KEYS.contains(&key.as_str()) {
                problems
                    .push(ConfigError::key(key, format!("stack: unknown key `{key}` (expected {})", KEYS.join(", "))));
            }
        }
        if config.settings.contains_key("project")
            && config.str("project").is_none_or(|p| {
                p.is_empty()
                    || p.len() > 63
                    || !p.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    || !p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            })
        {
            problems
                .push(ConfigError::key("project", "stack: `project` is [a-z0-9][a-z0-9_-]*, at most 63 characters"));
        }
        if config.settings.contains_key("wait_secs") && config.int("wait_secs").is_none_or(|s| !(1..=3600).contains(&s))
        {
            problems.push(ConfigError::key("wait_secs", "stack: `wait_secs` is a number of seconds from 1 to 3600"));
        }
        for key in ["compose", "compose_file"] {
            if config.settings.contains_key(key) && config.str(key).is_none_or(|v| v.trim().is_empty()) {
                problems.push(ConfigError::key(key, format!("stack: `{key}` must be a non-empty string")));
            }
        }
        if let Some(text) = config.str("compose")
            && let Err(e) = crate::stack::parse_compose(text)
        {
            problems.push(ConfigError::key("compose", format!("stack: its compose file: {e}")));
        }
        if config.settings.contains_key("compose") && config.settings.contains_key("compose_file") {
            problems.push(ConfigError::new("stack: give `compose` or `compose_file`, not both"));
        }
        ConfigError::all(problems)
    }
}
