//! Applying a stack version: converging a Docker Engine to a [`Compose`] through its API
//! (bollard; never `docker compose`). Networks and volumes are ensured, each service's
//! container is created with WakeHub's labels and started in `depends_on` order, each
//! dependency's condition awaited (`service_healthy` by a health result newer than this
//! apply; `service_completed_successfully` by an exit status 0). A container whose
//! configuration did not change is kept (same id); a changed one is recreated; services a
//! version dropped are removed; containers WakeHub did not label are never touched.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, EndpointSettings, HealthConfig,
    HealthStatusEnum, HostConfig, Mount as DockerMount, MountType, NetworkCreateRequest, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptions,
};
use futures::StreamExt;

use super::transport::cause_chain;
use super::{ConnectorError, ErrorCode};
use crate::stack::{Compose, Condition, Restart, Service};

/// The label naming the stack a container, network or volume belongs to.
pub const STACK_LABEL: &str = "io.wakehub.stack";
/// The label naming the service a container runs.
pub const SERVICE_LABEL: &str = "io.wakehub.service";
/// The label naming the version that created a container.
pub const VERSION_LABEL: &str = "io.wakehub.version";
/// The label naming what created a container (`stack-command:N`, or `cascade` when a start
/// of the stack node did).
pub const COMMAND_LABEL: &str = "io.wakehub.command";
/// The label holding the digest of a container's configuration (what decides "changed").
pub const CONFIG_LABEL: &str = "io.wakehub.config";
/// The label keeping the image reference a service pinned to an image id was written with.
pub const IMAGE_LABEL: &str = "io.wakehub.image";

/// What an apply did, per service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// Service → its container id now.
    pub containers: BTreeMap<String, String>,
    /// Services whose container was created (new, or recreated because it changed).
    pub created: Vec<String>,
    /// Services whose container was kept as it was.
    pub kept: Vec<String>,
    /// Services (of earlier versions) whose container was removed.
    pub removed: Vec<String>,
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

fn not_found(e: &DockerError) -> bool {
    matches!(e, DockerError::DockerResponseServerError { status_code: 404, .. })
}

/// The engine-side name of a stack's network or volume `name`.
fn scoped(stack: &str, name: &str) -> String {
    format!("{stack}_{name}")
}

/// A service's container name.
pub fn container_name(stack: &str, service: &str) -> String {
    format!("{stack}-{service}")
}

fn secs_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The container a service runs as, for the engine.
fn body(
    stack: &str,
    version: u64,
    command: Option<&str>,
    name: &str,
    s: &Service,
    compose: &Compose,
) -> ContainerCreateBody {
    let net_of = |n: &str| match compose.networks.get(n) {
        Some(net) if net.external => net.name.clone().unwrap_or_else(|| n.to_owned()),
        Some(net) => net.name.clone().unwrap_or_else(|| scoped(stack, n)),
        None => scoped(stack, n),
    };
    let networks: Vec<String> = if s.networks.is_empty() {
        vec![scoped(stack, "default")]
    } else {
        s.networks.iter().map(|n| net_of(n)).collect()
    };
    let mounts = s
        .volumes
        .iter()
        .map(|m| DockerMount {
            target: Some(m.target.clone()),
            source: match (m.kind.as_str(), &m.source) {
                ("volume", Some(v)) => Some(match compose.volumes.get(v) {
                    Some(vol) if vol.external => vol.name.clone().unwrap_or_else(|| v.clone()),
                    Some(vol) => vol.name.clone().unwrap_or_else(|| scoped(stack, v)),
                    None => scoped(stack, v),
                }),
                (_, source) => source.clone(),
            },
            typ: Some(match m.kind.as_str() {
                "bind" => MountType::BIND,
                "tmpfs" => MountType::TMPFS,
                _ => MountType::VOLUME,
            }),
            read_only: Some(m.read_only),
            ..Default::default()
        })
        .collect();
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &s.ports {
        port_bindings
            .entry(format!("{}/{}", p.target, p.protocol))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_default()
            .push(PortBinding { host_ip: p.host_ip.clone(), host_port: p.published.map(|p| p.to_string()) });
    }
    let restart = match s.restart {
        Restart::No => RestartPolicy { name: Some(RestartPolicyNameEnum::NO), maximum_retry_count: None },
        Restart::Always => RestartPolicy { name: Some(RestartPolicyNameEnum::ALWAYS), maximum_retry_count: None },
        Restart::UnlessStopped => {
            RestartPolicy { name: Some(RestartPolicyNameEnum::UNLESS_STOPPED), maximum_retry_count: None }
        }
        Restart::OnFailure(n) => {
            RestartPolicy { name: Some(RestartPolicyNameEnum::ON_FAILURE), maximum_retry_count: n.map(i64::from) }
        }
    };
    let mut labels: HashMap<String, String> = s.labels.clone().into_iter().collect();
    labels.insert(STACK_LABEL.into(), stack.into());
    labels.insert(SERVICE_LABEL.into(), name.into());
    labels.insert(VERSION_LABEL.into(), version.to_string());
    if let Some(command) = command {
        labels.insert(COMMAND_LABEL.into(), command.into());
    }
    labels.insert(CONFIG_LABEL.into(), config_digest(stack, name, s, compose));
    let first = networks.first().cloned().unwrap_or_default();
    ContainerCreateBody {
        image: Some(s.image.clone()),
        cmd: s.command.clone(),
        entrypoint: s.entrypoint.clone(),
        env: Some(s.environment.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        user: s.user.clone(),
        working_dir: s.working_dir.clone(),
        stop_timeout: s.stop_grace_period.map(|g| i64::try_from(g.as_secs()).unwrap_or(i64::MAX)),
        exposed_ports: Some(s.ports.iter().map(|p| format!("{}/{}", p.target, p.protocol)).collect()),
        healthcheck: s.healthcheck.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: Some(secs_ns(h.interval)),
            timeout: Some(secs_ns(h.timeout)),
            retries: Some(i64::from(h.retries)),
            start_period: Some(secs_ns(h.start_period)),
            start_interval: None,
        }),
        host_config: Some(HostConfig {
            mounts: Some(mounts),
            port_bindings: Some(port_bindings),
            restart_policy: Some(restart),
            network_mode: Some(first.clone()),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                first,
                EndpointSettings { aliases: Some(vec![name.to_owned()]), ..Default::default() },
            )])),
        }),
        ..Default::default()
    }
}

/// What decides whether a service's container changed: its service as written and the
/// names of what it mounts and joins (not the version number: an unchanged service survives
/// a new version).
pub(crate) fn config_digest(stack: &str, name: &str, s: &Service, compose: &Compose) -> String {
    use sha2::Digest;
    let used_volumes: BTreeMap<&String, _> =
        s.volumes.iter().filter_map(|m| m.source.as_ref()).filter_map(|v| compose.volumes.get_key_value(v)).collect();
    let used_networks: BTreeMap<&String, _> =
        s.networks.iter().filter_map(|n| compose.networks.get_key_value(n)).collect();
    let text = serde_json::json!({"stack": stack, "service": name, "spec": s, "volumes": used_volumes, "networks": used_networks})
        .to_string();
    sha2::Sha256::digest(text.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The containers labeled as stack `stack`'s, by service (a stray duplicate is listed apart).
async fn ours(client: &Docker, stack: &str) -> Result<Vec<(String, String, Option<String>)>, ConnectorError> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{STACK_LABEL}={stack}")])]);
    let list = client
        .list_containers(Some(ListContainersOptionsBuilder::default().all(true).filters(&filters).build()))
        .await
        .map_err(|e| fail(stack, "list its containers", e))?;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            let labels = c.labels.unwrap_or_default();
            Some((labels.get(SERVICE_LABEL)?.clone(), c.id?, labels.get(CONFIG_LABEL).cloned()))
        })
        .collect())
}

async fn remove(client: &Docker, stack: &str, id: &str) -> Result<(), ConnectorError> {
    // The container's own grace (its service's `stop_grace_period`, else the engine's).
    let _ = client.stop_container(id, None::<StopContainerOptions>).await;
    match client.remove_container(id, Some(RemoveContainerOptionsBuilder::default().force(true).build())).await {
        Err(e) if !not_found(&e) => Err(fail(stack, "remove a container", e)),
        _ => Ok(()),
    }
}

/// The last lines of a container's log, for an error a person reads.
async fn log_tail(client: &Docker, id: &str) -> String {
    tail(client, id, 20, 4096).await
}

/// The last `lines` lines of container `id`'s output (stdout and stderr), at most `bytes`.
pub(crate) async fn tail(client: &Docker, id: &str, lines: usize, bytes: usize) -> String {
    let options = LogsOptionsBuilder::default().stdout(true).stderr(true).tail(&lines.to_string()).build();
    let mut logs = client.logs(id, Some(options));
    let mut out = String::new();
    while let Some(Ok(chunk)) = logs.next().await {
        out.push_str(&chunk.to_string());
        if out.len() > bytes {
            break;
        }
    }
    out.trim_end().to_owned()
}

/// Waits until `service`'s container `id` meets `condition`, within `timeout`. A health
/// result counts when it ended after `since`; with no `since` (a container this apply kept
/// running as it was), its current health counts.
async fn await_condition(
    client: &Docker,
    stack: &str,
    service: &str,
    id: &str,
    condition: Condition,
    since: Option<chrono_like::Instant>,
    timeout: Duration,
) -> Result<(), ConnectorError> {
    let until = Instant::now() + timeout;
    loop {
        let c: ContainerInspectResponse =
            client.inspect_container(id, None).await.map_err(|e| fail(stack, "inspect a container", e))?;
        let state = c.state.unwrap_or_default();
        let running = state.status == Some(ContainerStateStatusEnum::RUNNING);
        let met = match condition {
            Condition::ServiceStarted => running || state.status == Some(ContainerStateStatusEnum::EXITED),
            Condition::ServiceHealthy => {
                let health = state.health.unwrap_or_default();
                // A fresh result: a check that ended after this apply began (a stale
                // "healthy" from before a restart does not count).
                let fresh = match since {
                    None => true,
                    Some(since) => health
                        .log
                        .unwrap_or_default()
                        .iter()
                        .rev()
                        .find_map(|r| r.end.as_deref().map(|at| since.is_before(at)))
                        .unwrap_or(false),
                };
                match health.status {
                    Some(HealthStatusEnum::HEALTHY) => running && fresh,
                    Some(HealthStatusEnum::UNHEALTHY) if fresh => {
                        let tail = log_tail(client, id).await;
                        return Err(ConnectorError::new(
                            ErrorCode::Unhealthy,
                            format!("stack `{stack}`: service `{service}` is unhealthy; its log ends:\n{tail}"),
                        ));
                    }
                    None | Some(HealthStatusEnum::NONE) | Some(HealthStatusEnum::EMPTY) => {
                        return Err(ConnectorError::new(
                            ErrorCode::InvalidConfig,
                            format!(
                                "stack `{stack}`: `{service}` has no health check, so `service_healthy` cannot be met"
                            ),
                        ));
                    }
                    _ => false,
                }
            }
            Condition::ServiceCompletedSuccessfully => match state.status {
                Some(ContainerStateStatusEnum::EXITED) | Some(ContainerStateStatusEnum::DEAD) => {
                    match state.exit_code {
                        Some(0) => true,
                        code => {
                            let tail = log_tail(client, id).await;
                            return Err(ConnectorError::new(
                                ErrorCode::OneShotFailed,
                                format!(
                                    "stack `{stack}`: one-shot service `{service}` exited with {}; its log ends:\n{tail}",
                                    code.map_or("no status".to_owned(), |c| c.to_string())
                                ),
                            ));
                        }
                    }
                }
                _ => false,
            },
        };
        if met {
            return Ok(());
        }
        if Instant::now() > until {
            let tail = log_tail(client, id).await;
            return Err(ConnectorError::new(
                if condition == Condition::ServiceHealthy { ErrorCode::Unhealthy } else { ErrorCode::Timeout },
                format!(
                    "stack `{stack}`: `{service}` did not become {} within {timeout:?}; its log ends:\n{tail}",
                    match condition {
                        Condition::ServiceStarted => "started",
                        Condition::ServiceHealthy => "healthy",
                        Condition::ServiceCompletedSuccessfully => "completed",
                    }
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Docker's timestamps, compared with the moment an apply began.
mod chrono_like {
    /// A moment, as Docker writes it (RFC 3339 with nanoseconds), compared by parsing.
    #[derive(Debug, Clone, Copy)]
    pub struct Instant(pub jiff::Timestamp);

    impl Instant {
        /// Now.
        pub fn now() -> Instant {
            Instant(jiff::Timestamp::now())
        }

        /// Whether Docker's timestamp `at` is after this moment.
        pub fn is_before(self, at: &str) -> bool {
            at.parse::<jiff::Timestamp>().is_ok_and(|t| t > self.0)
        }
    }
}

/// Converges the engine `client` to `compose` as version `version` of stack `stack` (for
/// `command`, the label of what asked), telling each step to `log`. Each wait for a
/// condition is bounded by `wait`.
pub async fn converge(
    client: &Docker,
    stack: &str,
    version: u64,
    command: Option<&str>,
    compose: &Compose,
    wait: Duration,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<Applied, ConnectorError> {
    let since = chrono_like::Instant::now();
    let labels = HashMap::from([(STACK_LABEL.to_owned(), stack.to_owned())]);
    // Networks: the stack's default one, and those it declares (external ones must exist).
    let mut networks: Vec<(String, bool, bool, Option<String>)> = vec![(scoped(stack, "default"), false, false, None)];
    for (n, spec) in &compose.networks {
        let name = spec.name.clone().unwrap_or_else(|| if spec.external { n.clone() } else { scoped(stack, n) });
        networks.push((name, spec.external, spec.internal, spec.driver.clone()));
    }
    for (name, external, internal, driver) in networks {
        match client.inspect_network(&name, None).await {
            Ok(_) => {}
            Err(e) if not_found(&e) && !external => {
                client
                    .create_network(NetworkCreateRequest {
                        name: name.clone(),
                        driver,
                        internal: Some(internal),
                        labels: Some(labels.clone()),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| fail(stack, &format!("create network `{name}`"), e))?;
                log(format!("network {name} created"));
            }
            Err(e) if not_found(&e) => {
                return Err(ConnectorError::new(
                    ErrorCode::NotFound,
                    format!("stack `{stack}`: external network `{name}` does not exist"),
                ));
            }
            Err(e) => return Err(fail(stack, &format!("inspect network `{name}`"), e)),
        }
    }
    for (v, spec) in &compose.volumes {
        let name = spec.name.clone().unwrap_or_else(|| if spec.external { v.clone() } else { scoped(stack, v) });
        match client.inspect_volume(&name).await {
            Ok(_) => {}
            Err(e) if not_found(&e) && !spec.external => {
                client
                    .create_volume(VolumeCreateRequest {
                        name: Some(name.clone()),
                        driver: spec.driver.clone(),
                        labels: Some(labels.clone()),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| fail(stack, &format!("create volume `{name}`"), e))?;
                log(format!("volume {name} created"));
            }
            Err(e) if not_found(&e) => {
                return Err(ConnectorError::new(
                    ErrorCode::NotFound,
                    format!("stack `{stack}`: external volume `{name}` does not exist"),
                ));
            }
            Err(e) => return Err(fail(stack, &format!("inspect volume `{name}`"), e)),
        }
    }

    let mut applied = Applied::default();
    // Per service, since when its health counts (none: kept running as it was).
    let mut since_of: HashMap<String, Option<chrono_like::Instant>> = HashMap::new();
    let existing = ours(client, stack).await?;
    // Services a version dropped: their containers go.
    for (service, id, _) in existing.iter().filter(|(s, _, _)| !compose.services.contains_key(s)) {
        remove(client, stack, id).await?;
        log(format!("{service}: removed (not in version {version})"));
        applied.removed.push(service.clone());
    }
    let log = std::sync::Mutex::new(log);
    let say = |line: String| (log.lock().unwrap_or_else(|e| e.into_inner()))(line);
    // Level by level (a service after everything it depends on), the services of a level
    // side by side, as their conditions allow.
    for level in levels(compose) {
        let step = Step { client, stack, version, command, compose, existing: &existing, since, wait, say: &say };
        let done =
            futures::future::try_join_all(level.iter().map(|name| step.service(name, &applied.containers, &since_of)))
                .await?;
        for (name, (id, kept, was_running)) in level.iter().zip(done) {
            if kept {
                applied.kept.push((*name).to_owned());
            } else {
                applied.created.push((*name).to_owned());
            }
            since_of.insert((*name).to_owned(), if was_running { None } else { Some(since) });
            applied.containers.insert((*name).to_owned(), id);
        }
    }
    // The apply ends when every service with a health check is healthy (by a result newer
    // than its start, for what this apply started).
    let checked: Vec<&str> = compose
        .start_order()
        .into_iter()
        .filter(|n| compose.services[*n].healthcheck.as_ref().is_some_and(|h| h.test != ["NONE"]))
        .collect();
    futures::future::try_join_all(checked.iter().map(|name| {
        let id = applied.containers.get(*name).cloned().unwrap_or_default();
        let from = since_of.get(*name).copied().unwrap_or(Some(since));
        let say = &say;
        async move {
            say(format!("{name}: waiting until healthy"));
            await_condition(client, stack, name, &id, Condition::ServiceHealthy, from, wait).await?;
            say(format!("{name}: healthy"));
            Ok::<(), ConnectorError>(())
        }
    }))
    .await?;
    Ok(applied)
}

/// The services by level: each after every service it depends on (names sorted in a level).
fn levels(compose: &Compose) -> Vec<Vec<&str>> {
    let mut level_of: HashMap<&str, usize> = HashMap::new();
    for name in compose.start_order() {
        let level =
            compose.services[name].depends_on.keys().filter_map(|d| level_of.get(d.as_str())).map(|l| l + 1).max();
        level_of.insert(name, level.unwrap_or(0));
    }
    let mut out: Vec<Vec<&str>> = Vec::new();
    for name in compose.start_order() {
        let l = level_of[name];
        if out.len() <= l {
            out.resize_with(l + 1, Vec::new);
        }
        out[l].push(name);
    }
    for level in &mut out {
        level.sort_unstable();
    }
    out
}

/// What applying one service needs.
struct Step<'a, F: Fn(String) + Sync> {
    client: &'a Docker,
    stack: &'a str,
    version: u64,
    command: Option<&'a str>,
    compose: &'a Compose,
    existing: &'a [(String, String, Option<String>)],
    since: chrono_like::Instant,
    wait: Duration,
    say: &'a F,
}

impl<F: Fn(String) + Sync> Step<'_, F> {
    /// Waits for what `name` depends on, then makes its container as the version says
    /// (kept when unchanged) and starts it: its id, whether it was kept, whether it ran.
    async fn service(
        &self,
        name: &str,
        containers: &BTreeMap<String, String>,
        since_of: &HashMap<String, Option<chrono_like::Instant>>,
    ) -> Result<(String, bool, bool), ConnectorError> {
        let (client, stack, compose, say) = (self.client, self.stack, self.compose, self.say);
        let s = &compose.services[name];
        for (dep, condition) in &s.depends_on {
            let id = containers.get(dep).cloned().unwrap_or_default();
            say(format!(
                "{name}: waiting for {dep} ({})",
                serde_json::to_value(condition).unwrap_or_default().as_str().unwrap_or("")
            ));
            let dep_since = since_of.get(dep).copied().unwrap_or(Some(self.since));
            await_condition(client, stack, dep, &id, *condition, dep_since, self.wait).await?;
        }
        let want = config_digest(stack, name, s, compose);
        let mine: Vec<&(String, String, Option<String>)> =
            self.existing.iter().filter(|(sv, _, _)| sv == name).collect();
        let keep =
            mine.iter().find(|(_, _, digest)| digest.as_deref() == Some(want.as_str())).map(|(_, id, _)| id.clone());
        for (_, id, _) in mine.iter().filter(|(_, id, _)| Some(id) != keep.as_ref()) {
            remove(client, stack, id).await?;
            say(format!("{name}: its container changed, recreated"));
        }
        let kept = keep.is_some();
        let id = match keep {
            Some(id) => id,
            None => {
                let cname = container_name(stack, name);
                // A container of that name WakeHub did not make is not ours to replace.
                if let Ok(other) = client.inspect_container(&cname, None).await {
                    let theirs = other.config.and_then(|c| c.labels).and_then(|l| l.get(STACK_LABEL).cloned());
                    if theirs.as_deref() != Some(stack) {
                        return Err(ConnectorError::new(
                            ErrorCode::Conflict,
                            format!(
                                "stack `{stack}`: a container named `{cname}` exists that this stack did not create"
                            ),
                        ));
                    }
                }
                let created = client
                    .create_container(
                        Some(CreateContainerOptionsBuilder::default().name(&cname).build()),
                        body(stack, self.version, self.command, name, s, compose),
                    )
                    .await
                    .map_err(|e| fail(stack, &format!("create the container of `{name}`"), e))?;
                let image = s.labels.get(IMAGE_LABEL).map_or(s.image.as_str(), |r| r.as_str());
                say(format!("{name}: container {} created from {image}", &created.id[..12.min(created.id.len())]));
                created.id
            }
        };
        let c = client.inspect_container(&id, None).await.map_err(|e| fail(stack, "inspect a container", e))?;
        let status = c.state.and_then(|s| s.status);
        // A one-shot that already completed is not run again on an unchanged re-apply.
        let completed_once = status == Some(ContainerStateStatusEnum::EXITED)
            && kept
            && compose
                .services
                .values()
                .any(|o| o.depends_on.get(name) == Some(&Condition::ServiceCompletedSuccessfully));
        let was_running = status == Some(ContainerStateStatusEnum::RUNNING);
        if !was_running && !completed_once {
            client
                .start_container(&id, None)
                .await
                .map_err(|e| fail(stack, &format!("start the container of `{name}`"), e))?;
            say(format!("{name}: started"));
        }
        Ok((id, kept, was_running))
    }
}

/// A client of the engine a host's table names (`docker_host`, and its TLS keys for
/// mutual TLS); `what` names the host in errors.
pub async fn connect(host: &crate::model::ConnectorConfig, what: &str) -> Result<Docker, ConnectorError> {
    super::docker::client_for(host, what).await
}
