//! Stacks in the engine: versions written from compose files, commands (`apply`,
//! `rollback`, `stop`, `remove`, `refresh`) queued durably and run one at a time per stack
//! by a driver that waits its turn on the stack's machine (never beside an upgrade, a reboot
//! or a refresh of its host), their logs streamed live, and a stack observed on demand.
//!
//! An apply first runs an ordinary start cascade of the stack (wake the machine, start the
//! VM, start what the stack depends on; a stack that was off is applied by its connector
//! there), then converges the engine to the version. When it fails, the stack goes back to
//! the version it was on (converged again, with that version's images) and stays there.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::connector::stack::{self as docker_stack, StackState};
use crate::connector::{ConnectorError, ErrorCode, StackToApply, Target};
use crate::model::{Action, Kind, NodeId, NodeRef, Refusal, Topology};
use crate::stack::{Compose, MAX_COMPOSE_BYTES, parse_compose, render};
use crate::store::{StackCommand, StackCommandKind, StackCommandStatus, StackOutcome, StackVersion, StoreError};

use super::live_log::{Following, Kept, Logs, Phase};
use super::{Engine, EngineError};

/// How long a claim holds before it must be renewed.
const LEASE: Duration = Duration::from_secs(60);
/// How often a running command renews its lease.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// A line of a stack command's log as it is streamed.
pub type StackLogLine = super::live_log::Line<StackCommandStatus>;

/// Where a stack command is, for its log's followers.
fn phase(store: &crate::store::Store, id: i64) -> Result<Phase, crate::store::StoreError> {
    Ok(match store.stack_command(id)?.map(|c| c.status) {
        Some(StackCommandStatus::Pending) => Phase::Waiting,
        Some(StackCommandStatus::Running) => Phase::Running,
        _ => Phase::Over,
    })
}

/// A command's log and end, as its record keeps them (for an instance that does not lead).
fn kept(store: &crate::store::Store, id: i64) -> Result<Kept<StackCommandStatus>, crate::store::StoreError> {
    Ok(store.stack_command(id)?.map(|c| (c.log, c.status.is_final().then_some(c.status))))
}

fn logs(st: &mut super::State) -> &mut Logs<StackCommandStatus> {
    &mut st.stacks.logs
}

/// What the engine holds about the stacks' queues.
#[derive(Default)]
pub(super) struct Stacks {
    /// Stacks whose command queue has a driver.
    drivers: std::collections::BTreeSet<NodeId>,
    /// Stacks running a command now: their host, and whether the command stops the stack
    /// itself (other stops of the stack or its host are refused otherwise).
    pub(super) stacking: BTreeMap<NodeId, (NodeId, bool)>,
    /// The version a running command applies to each stack.
    targets: std::collections::HashMap<NodeId, i64>,
    /// The live logs of commands followed or running.
    logs: Logs<StackCommandStatus>,
    /// The command running on each stack (its connector's lines go to its log).
    running: std::collections::HashMap<NodeId, i64>,
}

/// A stack as the API shows it: the version it is on, its latest, and what its engine runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StackView {
    /// The stack node.
    pub node: NodeId,
    /// Its name.
    pub name: String,
    /// The Docker project name (container names are `PROJECT-SERVICE`).
    pub project: String,
    /// The version it is on, and since when (ms).
    pub current: Option<(i64, i64)>,
    /// Its latest version.
    pub latest: Option<i64>,
    /// What its engine runs now (or why it could not be read: an asleep host says so).
    pub state: Result<StackState, ConnectorError>,
}

/// The compose files a topology file gives its stack nodes (`compose`, inline, or
/// `compose_file`, a path relative to `base`), read and checked: each stack's name and
/// model, or every problem.
pub fn stack_sources(topology: &Topology, base: &Path) -> Result<Vec<(String, Compose)>, String> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for node in topology.nodes().filter(|n| n.spec.kind == Kind::Stack) {
        let c = &node.spec.connector;
        let text = match (c.str("compose"), c.str("compose_file")) {
            (Some(text), _) => text.to_owned(),
            (None, Some(path)) => {
                let path = base.join(path);
                let read = std::fs::metadata(&path).and_then(|m| {
                    if m.len() > MAX_COMPOSE_BYTES as u64 {
                        Err(std::io::Error::other(format!("larger than {} KiB", MAX_COMPOSE_BYTES >> 10)))
                    } else {
                        std::fs::read_to_string(&path)
                    }
                });
                match read {
                    Ok(t) => t,
                    Err(e) => {
                        problems.push(format!("node `{}`: cannot read {}: {e}", node.name(), path.display()));
                        continue;
                    }
                }
            }
            (None, None) => continue,
        };
        match parse_compose(&text) {
            Ok(compose) => out.push((node.name().to_owned(), compose)),
            Err(e) => problems.push(format!("node `{}`, its compose file: {e}", node.name())),
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems.join("\n")) }
}

/// The lines of a unified diff from `a` to `b` (compose files as rendered).
pub fn diff_text(a: &str, b: &str, a_name: &str, b_name: &str) -> String {
    similar::TextDiff::from_lines(a, b).unified_diff().context_radius(3).header(a_name, b_name).to_string()
}

impl Engine {
    fn stack_node(
        &self,
        topology: &Topology,
        stack: &NodeRef,
    ) -> Result<(NodeId, String, Option<NodeId>), EngineError> {
        let n = topology.find(stack)?;
        if n.spec.kind != Kind::Stack {
            return Err(Refusal::invalid(format!("`{}` is a {}, not a stack", n.spec.name, n.spec.kind)).into());
        }
        Ok((n.id, n.spec.name.clone(), n.parent))
    }

    /// Writes compose file `text` as the next version of stack `stack` for `actor` (nothing
    /// new when it means the same as the latest): the version, and whether it is new.
    pub async fn save_stack_version(
        &self,
        stack: impl Into<NodeRef>,
        text: &str,
        actor: &str,
        note: Option<&str>,
    ) -> Result<(StackVersion, bool), EngineError> {
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let (id, _, _) = self.stack_node(&topology, &stack.into())?;
        let compose = parse_compose(text)
            .map_err(|e| EngineError::from(Refusal::new(ErrorCode::ComposeInvalid, e.to_string())))?;
        let (actor, note) = (actor.to_owned(), note.map(str::to_owned));
        Ok(self.inner.store.run(move |s| s.save_stack_version(id, &compose, &actor, note.as_deref())).await?)
    }

    /// The versions of `stack`, newest first.
    pub async fn stack_versions(&self, stack: impl Into<NodeRef>) -> Result<Vec<StackVersion>, EngineError> {
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let (id, _, _) = self.stack_node(&topology, &stack.into())?;
        Ok(self.inner.store.run(move |s| s.stack_versions(id)).await?)
    }

    /// A unified diff of `stack`'s version `from` to version `to` (as rendered; secret
    /// values are placeholders on both sides).
    pub async fn stack_diff(&self, stack: impl Into<NodeRef>, from: i64, to: i64) -> Result<String, EngineError> {
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let (id, _, _) = self.stack_node(&topology, &stack.into())?;
        let get = |n: i64| -> Result<StackVersion, EngineError> {
            self.inner.store.stack_version(id, n)?.ok_or_else(|| EngineError::NotFound { what: format!("version {n}") })
        };
        let (a, b) = (get(from)?, get(to)?);
        Ok(diff_text(&render(&a.compose), &render(&b.compose), &format!("version {from}"), &format!("version {to}")))
    }

    /// Queues command `kind` on `stack` for `actor` and returns it at once (`pending`; it is
    /// persisted first). `version`: for `apply`, the version (default: the latest); for
    /// `rollback`, the version to go back to (required, not the one it is on).
    pub async fn stack_command(
        &self,
        stack: impl Into<NodeRef>,
        kind: StackCommandKind,
        version: Option<i64>,
        actor: &str,
    ) -> Result<StackCommand, EngineError> {
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let (id, name, _) = self.stack_node(&topology, &stack.into())?;
        if self.state().shutting_down {
            return Err(EngineError::ShuttingDown);
        }
        if !self.is_leader() {
            return Err(EngineError::NotLeader);
        }
        let latest = self.inner.store.stack_latest(id)?;
        let current = self.inner.store.stack_current(id)?.map(|c| c.0);
        let exists = |n: i64| latest.is_some_and(|l| (1..=l).contains(&n));
        let version = match kind {
            StackCommandKind::Apply => {
                let n = version.or(latest).ok_or_else(|| {
                    EngineError::from(Refusal::invalid(format!("`{name}` has no version yet: write one first")))
                })?;
                if !exists(n) {
                    return Err(EngineError::NotFound { what: format!("version {n} of `{name}`") });
                }
                Some(n)
            }
            StackCommandKind::Rollback => {
                let n = version
                    .ok_or_else(|| EngineError::from(Refusal::invalid("a rollback names the version to go back to")))?;
                if !exists(n) {
                    return Err(EngineError::NotFound { what: format!("version {n} of `{name}`") });
                }
                if current == Some(n) {
                    return Err(Refusal::conflict(format!("`{name}` is on version {n} already")).into());
                }
                Some(n)
            }
            _ if version.is_some() => {
                return Err(Refusal::invalid(format!("a `{}` names no version", kind.as_str())).into());
            }
            _ => None,
        };
        let (actor, now) = (actor.to_owned(), crate::store::now_ms());
        let command = self.record(move |tx| tx.queue_stack_command(id, &name, kind, version, &actor, now)).await?;
        self.drive_stack(id);
        Ok(command)
    }

    /// Cancels a pending command; a running one answers `COMMAND_RUNNING` (it runs to its
    /// end: an apply half done is worse than one finished or rolled back).
    pub async fn cancel_stack_command(&self, id: i64) -> Result<StackCommand, EngineError> {
        let c = self
            .inner
            .store
            .stack_command(id)?
            .ok_or_else(|| EngineError::NotFound { what: format!("stack command {id}") })?;
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let name = topology.name_of(c.stack);
        let now = crate::store::now_ms();
        let cancelled = self.record(move |tx| tx.cancel_stack_command(id, &name, now)).await?;
        self.state().stacks.logs.end(id, cancelled.status);
        Ok(cancelled)
    }

    /// Follows the log of command `c`: what it said so far and its next lines, from the
    /// moment it is queued until it ends; `None` once it is over (its log is then whole in
    /// its record, read after this returns).
    pub async fn stack_log(&self, c: &StackCommand) -> Result<Option<Following<StackCommandStatus>>, EngineError> {
        self.follow_log(c.id, c.stack, logs, phase, kept).await
    }

    /// Marks commands a previous run left running `failed` (`INTERRUPTED`; never run again)
    /// and starts the stacks' queues again. Call once the runtime runs.
    pub async fn resume_stacks(&self) -> Result<(), EngineError> {
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let reclaimed = self.record(move |tx| tx.reclaim_stack_commands(i64::MAX, &|n| topology.name_of(n))).await?;
        for c in &reclaimed {
            tracing::warn!(
                command = c.id,
                kind = c.kind.as_str(),
                "a stack command the previous run left running is marked failed (interrupted)"
            );
        }
        for stack in self.inner.store.stacks_with_pending_commands()? {
            self.drive_stack(stack);
        }
        Ok(())
    }

    /// Stack `stack` as it is: its versions and what its engine runs, with drift from the
    /// version it is on.
    pub async fn stack_view(&self, stack: impl Into<NodeRef>) -> Result<StackView, EngineError> {
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let (id, name, _) = self.stack_node(&topology, &stack.into())?;
        let target = self.target(&topology, id).ok_or_else(|| EngineError::NotFound { what: name.clone() })?;
        let current = self.inner.store.stack_current(id)?;
        let latest = self.inner.store.stack_latest(id)?;
        let state = self.observe_stack(&target, current.map(|c| c.0)).await;
        Ok(StackView { node: id, name, project: docker_stack::project_of(&target), current, latest, state })
    }

    /// What the stack's engine runs, against version `version` (pinned as it ran).
    async fn observe_stack(&self, target: &Target, version: Option<i64>) -> Result<StackState, ConnectorError> {
        let client = tokio::time::timeout(self.inner.config.status_timeout, docker_stack::client(target))
            .await
            .map_err(|_| {
                ConnectorError::new(ErrorCode::Timeout, format!("{}: its Docker Engine did not answer", target.name))
            })??;
        let project = docker_stack::project_of(target);
        let expected = match version.map(|n| self.inner.store.stack_version_to_apply(target.node, n)) {
            Some(Ok(Some((v, full)))) => match &v.images {
                // Pinned as it ran (what its containers' configuration was written from).
                Some(images) => {
                    let mut quiet = |_: String| {};
                    docker_stack::pin_images(&client, &project, &full, Some(images), &mut quiet).await.ok().map(|p| p.0)
                }
                None => None,
            },
            _ => None,
        };
        docker_stack::observe(&client, &project, expected.as_ref()).await
    }

    /// The tail of the output of `service` of `stack` (`lines` lines).
    pub async fn stack_service_log(
        &self,
        stack: impl Into<NodeRef>,
        service: &str,
        lines: usize,
    ) -> Result<String, EngineError> {
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let (id, name, _) = self.stack_node(&topology, &stack.into())?;
        let target = self.target(&topology, id).ok_or(EngineError::NotFound { what: name })?;
        let client = docker_stack::client(&target).await?;
        Ok(docker_stack::service_log(&client, &docker_stack::project_of(&target), service, lines).await?)
    }

    /// The Docker events of `stack`'s containers, as they come.
    pub async fn stack_events(
        &self,
        stack: impl Into<NodeRef>,
    ) -> Result<futures::stream::BoxStream<'static, Result<docker_stack::ContainerEvent, ConnectorError>>, EngineError>
    {
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let (id, name, _) = self.stack_node(&topology, &stack.into())?;
        let target = self.target(&topology, id).ok_or(EngineError::NotFound { what: name })?;
        let client = docker_stack::client(&target).await?;
        Ok(docker_stack::events(&client, &docker_stack::project_of(&target)))
    }

    /// The version the stack's start applies ([`NodeContext::stack`](crate::connector::NodeContext::stack)).
    pub(super) fn stack_to_apply(&self, node: NodeId) -> Result<Option<StackToApply>, StoreError> {
        let store = &self.inner.store;
        let target = self.state().stacks.targets.get(&node).copied();
        let number = match target {
            Some(n) => Some(n),
            None => match store.stack_current(node)? {
                Some((n, _)) => Some(n),
                None => store.stack_latest(node)?,
            },
        };
        let Some(number) = number else { return Ok(None) };
        let command = self.state().stacks.running.get(&node).copied();
        Ok(store
            .stack_version_to_apply(node, number)?
            .map(|(v, full)| StackToApply::new(v.number, full, v.images).by_command(command)))
    }

    /// What a stack's start reported: the images its version ran with, and (outside a
    /// command, which decides for itself) the version it is on.
    pub(super) fn stack_applied(&self, node: NodeId, version: i64, images: &BTreeMap<String, String>) {
        let store = &self.inner.store;
        if let Err(e) = store.record_stack_images(node, version, images) {
            tracing::error!("cannot record a stack version's images: {e}");
        }
        if self.state().stacks.targets.contains_key(&node) {
            return;
        }
        let topology = store.topology_shared();
        let name = topology.map(|t| t.name_of(node)).unwrap_or_default();
        if store.stack_current(node).ok().flatten().map(|c| c.0) != Some(version) {
            self.record_detached(
                true,
                move |tx| tx.set_stack_current(node, &name, Some(version), crate::store::now_ms()),
                |e| tracing::error!("cannot record the version a stack is on: {e}"),
            );
        }
    }

    /// Starts the stack's queue driver unless one runs.
    fn drive_stack(&self, stack: NodeId) {
        if !self.state().stacks.drivers.insert(stack) {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            engine.drive_stack_queue(stack).await;
            engine.state().stacks.drivers.remove(&stack);
            if engine.inner.store.stacks_with_pending_commands().is_ok_and(|s| s.contains(&stack))
                && !engine.inner.closed.is_cancelled()
                && !engine.state().shutting_down
            {
                engine.drive_stack(stack);
            }
        });
    }

    /// Why the stack's machine is not free for a command now, if it is not.
    fn stack_host_busy(&self, host: Option<NodeId>, topology: &Topology) -> Option<String> {
        let host = host?;
        #[cfg(feature = "wol-ssh")]
        {
            let st = self.state();
            if st.executing.contains(&host) {
                drop(st);
                let what = self
                    .inner
                    .store
                    .running_execution(host)
                    .ok()
                    .flatten()
                    .map_or_else(|| "an action".to_owned(), |e| format!("`{}` (execution {})", e.action, e.id));
                return Some(format!("waiting for {what} on `{}`", topology.name_of(host)));
            }
            if st.refreshing.contains(&host) {
                return Some(format!("waiting for the refresh of `{}`", topology.name_of(host)));
            }
        }
        let st = self.state();
        st.stacks.stacking.iter().find(|(_, (h, _))| *h == host).map(|(s, _)| {
            format!("waiting for a command of stack `{}` on `{}`", topology.name_of(*s), topology.name_of(host))
        })
    }

    async fn drive_stack_queue(&self, stack: NodeId) {
        let mut said: Option<String> = None;
        loop {
            if self.state().shutting_down {
                return;
            }
            let topology = match self.inner.store.run(|s| s.topology_shared()).await {
                Ok(t) => t,
                Err(e) => return tracing::error!("stacks: {e}"),
            };
            let name = topology.name_of(stack);
            let host = topology.node(stack).and_then(|n| n.parent);
            let next = match self.inner.store.stack_commands(Some(stack), 1_000) {
                Ok(list) => list.into_iter().filter(|c| c.status == StackCommandStatus::Pending).min_by_key(|c| c.id),
                Err(e) => return tracing::error!("stacks: {e}"),
            };
            let Some(next) = next else { return };
            // Under the admission lock, so a stop cascade is either admitted before or sees it.
            let admission = self.inner.admission.lock().await;
            let busy = self.stack_host_busy(host, &topology);
            if busy.is_none() {
                let allow_stop = matches!(next.kind, StackCommandKind::Stop | StackCommandKind::Remove);
                self.state().stacks.stacking.insert(stack, (host.unwrap_or(stack), allow_stop));
            }
            drop(admission);
            if let Some(reason) = busy {
                if said.as_ref() != Some(&reason) {
                    let _ = self.inner.store.set_stack_reason(next.id, &reason);
                    said = Some(reason);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            said = None;
            let now = crate::store::now_ms();
            let lease = now + LEASE.as_millis() as i64;
            let claimed = {
                let name = name.clone();
                self.record(move |tx| tx.claim_stack_command(stack, &name, now, lease)).await
            };
            let command = match claimed {
                Ok(Some(c)) => c,
                Ok(None) => {
                    self.state().stacks.stacking.remove(&stack);
                    return self.close_stale_logs(stack, logs, phase).await;
                }
                Err(e) => {
                    self.state().stacks.stacking.remove(&stack);
                    return tracing::error!("stacks: cannot claim: {e}");
                }
            };
            {
                let mut st = self.state();
                st.stacks.logs.open(command.id, stack);
                st.stacks.running.insert(stack, command.id);
            }
            let heartbeat = {
                let engine = self.clone();
                let id = command.id;
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(HEARTBEAT).await;
                        let until = crate::store::now_ms() + LEASE.as_millis() as i64;
                        if !matches!(engine.inner.store.run(move |s| s.renew_stack_lease(id, until)).await, Ok(true)) {
                            return;
                        }
                    }
                })
            };
            let outcome = self.run_stack_command(&topology, &command).await;
            heartbeat.abort();
            self.state().stacks.targets.remove(&stack);
            let status = outcome.status;
            let (id, now, name2) = (command.id, crate::store::now_ms(), name.clone());
            if let Err(e) = self.record(move |tx| tx.finish_stack_command(id, &name2, now, outcome)).await {
                tracing::error!(command = id, "cannot record the end of a stack command: {e}");
            }
            let mut st = self.state();
            st.stacks.logs.end(id, status);
            st.stacks.stacking.remove(&stack);
            st.stacks.running.remove(&stack);
        }
    }

    /// A line the stack connector said while starting or stopping `node`: into the log of
    /// the command running on it, if one is, else the server's log.
    pub(super) fn stack_connector_line(&self, node: NodeId, line: String) {
        let running = self.state().stacks.running.get(&node).copied();
        match running {
            Some(id) => self.stack_line(id, line),
            None => tracing::info!(stack = %node, "{line}"),
        }
    }

    fn stack_line(&self, id: i64, line: String) {
        if let Err(e) = self.inner.store.append_stack_log(id, &line) {
            tracing::warn!(command = id, "cannot keep a log line: {e}");
        }
        self.state().stacks.logs.say(id, line);
    }

    /// Runs one claimed command to its end (every failure is its outcome).
    async fn run_stack_command(&self, topology: &Topology, c: &StackCommand) -> StackOutcome {
        let failed = |code: ErrorCode, message: String| StackOutcome {
            status: StackCommandStatus::Failed,
            error: Some((code.as_str().to_owned(), message)),
            result: serde_json::Value::Null,
            current: None,
        };
        let Some(target) = self.target(topology, c.stack) else {
            return failed(ErrorCode::NotFound, "the stack is no longer in the topology".into());
        };
        let id = c.id;
        let engine = self.clone();
        let mut log = move |line: String| engine.stack_line(id, line);
        match c.kind {
            StackCommandKind::Apply | StackCommandKind::Rollback => {
                let Some(number) = c.version else { return failed(ErrorCode::Validation, "no version".into()) };
                self.apply_stack(&target, c, number, &mut log).await
            }
            StackCommandKind::Stop => match self.stack_cascade(&target, Action::Stop, &c.actor, &mut log).await {
                Ok(()) => StackOutcome {
                    status: StackCommandStatus::Done,
                    error: None,
                    result: serde_json::Value::Null,
                    current: None,
                },
                Err(e) => failed(e.code, e.message),
            },
            StackCommandKind::Remove => {
                if let Err(e) = self.stack_cascade(&target, Action::Stop, &c.actor, &mut log).await {
                    return failed(e.code, e.message);
                }
                let project = docker_stack::project_of(&target);
                let removed = async {
                    let client = docker_stack::client(&target).await?;
                    docker_stack::remove_all(&client, &project, &mut log).await
                }
                .await;
                match removed {
                    Ok(()) => StackOutcome {
                        status: StackCommandStatus::Done,
                        error: None,
                        result: serde_json::Value::Null,
                        current: Some(None),
                    },
                    Err(e) => failed(e.code, e.message),
                }
            }
            StackCommandKind::Refresh => {
                let current = self.inner.store.stack_current(c.stack).ok().flatten().map(|c| c.0);
                match self.observe_stack(&target, current).await {
                    Ok(state) => {
                        for s in &state.services {
                            log(format!(
                                "{}: {}{}{}",
                                s.service,
                                s.state,
                                s.health.as_ref().map(|h| format!(" ({h})")).unwrap_or_default(),
                                if s.restarts > 0 {
                                    format!(", restarted {} times", s.restarts)
                                } else {
                                    String::new()
                                }
                            ));
                        }
                        for d in &state.drift {
                            log(format!("drift: {d}"));
                        }
                        StackOutcome {
                            status: StackCommandStatus::Done,
                            error: None,
                            result: serde_json::to_value(&state).unwrap_or_default(),
                            current: None,
                        }
                    }
                    Err(e) => failed(e.code, e.message),
                }
            }
        }
    }

    /// Runs a cascade of the stack node and waits for its end.
    async fn stack_cascade(
        &self,
        target: &Target,
        action: Action,
        actor: &str,
        log: &mut (dyn FnMut(String) + Send),
    ) -> Result<(), ConnectorError> {
        let as_error = |e: EngineError| ConnectorError::new(e.code(), e.to_string());
        let record = loop {
            match self.request_by(target.node, action, actor).await {
                Ok(r) => break r,
                // The same cascade runs already: wait for it, then ask again.
                Err(EngineError::CascadeInProgress { cascade }) => {
                    log(format!("waiting for {cascade}, already running"));
                    self.wait(cascade).await.map_err(as_error)?;
                }
                Err(e) => return Err(as_error(e)),
            }
        };
        log(format!("{} cascade {} of `{}`", action.as_str(), record.id, target.name));
        let end = self.wait(record.id).await.map_err(as_error)?;
        match end.error_code {
            None => {
                log(format!("{} cascade {}: {}", action.as_str(), record.id, end.status.as_str()));
                Ok(())
            }
            Some(code) => Err(ConnectorError::new(
                code,
                format!(
                    "the {} cascade {} failed: {}",
                    action.as_str(),
                    record.id,
                    end.error_message.unwrap_or_default()
                ),
            )),
        }
    }

    /// Applies version `number` (a start cascade first, then a convergence); on failure,
    /// converges back to the version the stack was on.
    async fn apply_stack(
        &self,
        target: &Target,
        c: &StackCommand,
        number: i64,
        log: &mut (dyn FnMut(String) + Send),
    ) -> StackOutcome {
        let failed = |e: ConnectorError, result: serde_json::Value| StackOutcome {
            status: StackCommandStatus::Failed,
            error: Some((e.code.as_str().to_owned(), e.message)),
            result,
            current: None,
        };
        let previous = self.inner.store.stack_current(c.stack).ok().flatten().map(|c| c.0);
        self.state().stacks.targets.insert(c.stack, number);
        log(format!(
            "{} to version {number}{}",
            c.kind.as_str(),
            previous.map(|p| format!(" (from version {p})")).unwrap_or_default()
        ));
        let applied = async {
            self.stack_cascade(target, Action::Start, &c.actor, log).await?;
            self.converge_stack(target, number, log).await
        }
        .await;
        match applied {
            Ok(result) => {
                StackOutcome { status: StackCommandStatus::Done, error: None, result, current: Some(Some(number)) }
            }
            Err(e) => {
                log(format!("failed ({}): {}", e.code.as_str(), e.message));
                let Some(previous) = previous.filter(|p| *p != number) else {
                    return failed(e, serde_json::Value::Null);
                };
                log(format!("going back to version {previous}"));
                self.state().stacks.targets.insert(c.stack, previous);
                let restored = match self.converge_stack(target, previous, log).await {
                    Ok(_) => format!("back on version {previous}"),
                    Err(r) => format!("could not go back to version {previous} ({}): {}", r.code.as_str(), r.message),
                };
                log(restored.clone());
                failed(e, serde_json::json!({ "restored": restored }))
            }
        }
    }

    /// Converges the stack's engine to version `number` with the images it ran with
    /// (recording them the first time); what it did, as JSON.
    async fn converge_stack(
        &self,
        target: &Target,
        number: i64,
        log: &mut (dyn FnMut(String) + Send),
    ) -> Result<serde_json::Value, ConnectorError> {
        let (version, full) = self
            .inner
            .store
            .stack_version_to_apply(target.node, number)
            .map_err(|e| ConnectorError::new(e.code(), e.to_string()))?
            .ok_or_else(|| ConnectorError::new(ErrorCode::NotFound, format!("version {number} is gone")))?;
        let client = docker_stack::client(target).await?;
        let project = docker_stack::project_of(target);
        let (pinned, images) = docker_stack::pin_images(&client, &project, &full, version.images.as_ref(), log).await?;
        let wait = docker_stack::wait_of(target);
        let command = self.state().stacks.running.get(&target.node).map(|c| format!("stack-command:{c}"));
        let applied = crate::connector::compose::converge(
            &client,
            &project,
            u64::try_from(number).unwrap_or(0),
            command.as_deref(),
            &pinned,
            wait,
            log,
        )
        .await?;
        self.stack_applied(target.node, number, &images);
        Ok(serde_json::json!({
            "version": number,
            "created": applied.created,
            "kept": applied.kept,
            "removed": applied.removed,
            "containers": applied.containers,
            "images": images,
        }))
    }

    /// Refuses a stop of `scope` (asked as a stop of `name`) that would cut a stack command
    /// short: of a stack in it or on a host in it.
    pub(super) fn refuse_stop_during_stack_command(
        &self,
        scope: &std::collections::BTreeSet<NodeId>,
        topology: &Topology,
        name: &str,
    ) -> Result<(), EngineError> {
        let busy = self
            .state()
            .stacks
            .stacking
            .iter()
            .find(|(s, (h, allow_stop))| !allow_stop && (scope.contains(s) || scope.contains(h)))
            .map(|(s, _)| *s);
        match busy {
            None => Ok(()),
            Some(stack) => Err(Refusal::conflict(format!(
                "cannot stop `{name}`: a command of stack `{}` is running; stop it once that is done",
                topology.name_of(stack)
            ))
            .into()),
        }
    }
}
