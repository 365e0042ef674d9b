//! Actions on machines (upgrade, reboot, Docker prune, the operator's commands) as recorded
//! executions, one at a time per machine: queued in the store (the durable queue), claimed
//! with a lease a heartbeat renews, run over SSH with every line of output streamed to
//! subscribers, ended with a structured result, a report and the redacted raw log, then the
//! machine refreshed. A machine's executions never overlap its power operations or its
//! refreshes: an execution waits for them; a stop cascade and a refresh are refused while an
//! execution runs, with the reason.

use std::time::{Duration, Instant};

use crate::connector::transport::ssh::{SshEndpoint, ssh_stream};
use crate::connector::{ConnectorError, ErrorCode, Target, rebooted_since};
use crate::machine::actions::{self, MachineAction, Privilege};
use crate::model::{NodeId, NodeRef, PowerState, Refusal};
use crate::store::{ExecutionRecord, ExecutionStatus, Finished};

use super::live_log::{Following, Kept, Logs, Phase};
use super::machines::{RefreshOptions, machine_of};
use super::{Engine, EngineError};

/// How long a claim holds before it must be renewed.
const LEASE: Duration = Duration::from_secs(60);
/// How often a running execution renews its lease.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// The longest an action may run (an upgrade of a machine long left alone takes a while).
const ACTION_TIMEOUT: Duration = Duration::from_secs(3600);
/// The most of an action's log kept.
const LOG_LIMIT: usize = 16 << 20;
/// How long a rebooting machine may take to go down.
const DOWN_TIMEOUT: Duration = Duration::from_secs(120);

/// A line of an execution's log as it is streamed.
pub type LogLine = super::live_log::Line<ExecutionStatus>;

/// Where an execution is, for its log's followers.
fn phase(store: &crate::store::Store, id: i64) -> Result<Phase, crate::store::StoreError> {
    Ok(match store.execution(id)?.map(|e| e.status) {
        Some(ExecutionStatus::Queued) => Phase::Waiting,
        Some(ExecutionStatus::Running) => Phase::Running,
        _ => Phase::Over,
    })
}

/// An action's end and then its kept log, as its record says (for an instance that does
/// not lead: an action's lines are kept only when it ends).
fn kept(store: &crate::store::Store, id: i64) -> Result<Kept<ExecutionStatus>, crate::store::StoreError> {
    let Some(e) = store.execution(id)? else { return Ok(None) };
    if matches!(e.status, ExecutionStatus::Queued | ExecutionStatus::Running) {
        return Ok(Some((String::new(), None)));
    }
    let log = match e.artifact {
        Some(a) => {
            store.artifact(a)?.and_then(|(_, content)| content).map(|c| String::from_utf8_lossy(&c).into_owned())
        }
        None => None,
    };
    Ok(Some((log.unwrap_or_default(), Some(e.status))))
}

fn logs(st: &mut super::State) -> &mut Logs<ExecutionStatus> {
    &mut st.logs
}

impl Engine {
    /// Queues `action` (`upgrade`, `reboot`, `docker-prune`, `command:NAME`) on machine
    /// `node` in `mode` (`manual`, `scheduled`, `maintenance`) for `actor`, and returns the
    /// execution at once (`queued`); it runs when the machine has nothing else running.
    /// Refused for a node that is not a machine, an action it does not offer (`command:NAME`
    /// needs the operator's `NAME_command` in its table).
    pub async fn run_action(
        &self,
        node: impl Into<NodeRef>,
        action: &str,
        mode: &str,
        actor: &str,
    ) -> Result<ExecutionRecord, EngineError> {
        self.must_lead()?;
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let node = machine_of(&topology, &node.into())?;
        let (id, name) = (node.id, node.spec.name.clone());
        if !matches!(mode, "manual" | "scheduled" | "maintenance") {
            return Err(Refusal::invalid(format!("mode `{mode}` is manual, scheduled or maintenance")).into());
        }
        let offered = actions::operator_commands(node.spec.connector.settings.keys());
        let parsed = MachineAction::parse(action).filter(|a| match a {
            MachineAction::Command(n) => offered.contains(n),
            _ => true,
        });
        let Some(parsed) = parsed else {
            let mut known = vec!["upgrade".to_owned(), "reboot".into(), "docker-prune".into()];
            known.extend(offered.iter().map(|c| format!("command:{c}")));
            return Err(Refusal::invalid(format!(
                "`{name}` offers no action `{action}` (it offers {})",
                known.join(", ")
            ))
            .into());
        };
        let (action, mode, actor) = (parsed.name(), mode.to_owned(), actor.to_owned());
        let now = crate::store::now_ms();
        let name2 = name.clone();
        let record = self.record(move |tx| tx.queue_execution(id, &name2, &action, &mode, &actor, now)).await?;
        self.drive_executions(id);
        Ok(record)
    }

    /// Cancels a queued execution (one already running is on the machine: it runs to its end).
    pub async fn cancel_execution(&self, execution: i64) -> Result<ExecutionRecord, EngineError> {
        self.must_lead()?;
        let e = self
            .inner
            .store
            .execution(execution)?
            .ok_or_else(|| EngineError::NotFound { what: format!("execution:{execution}") })?;
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let name = topology.name_of(e.node);
        let now = crate::store::now_ms();
        let cancelled = self.record(move |tx| tx.cancel_execution(execution, &name, now)).await?;
        self.state().logs.end(execution, cancelled.status);
        Ok(cancelled)
    }

    /// Marks maintenance runs and executions a previous run left running `interrupted` (never
    /// run again; the actions a run had queued are cancelled), and starts the machines'
    /// queues again. Call once the runtime runs (the server does at start).
    pub async fn resume_executions(&self) -> Result<(), EngineError> {
        let now = crate::store::now_ms();
        for run in self.record(move |tx| tx.reclaim_maintenance_runs(now)).await? {
            tracing::warn!(run = run.id, "a maintenance run the previous run left running is marked interrupted");
        }
        let reclaimed = self.record(|tx| tx.reclaim_executions(i64::MAX)).await?;
        for e in &reclaimed {
            tracing::warn!(execution = e.id, action = %e.action, "an execution the previous run left running is marked interrupted");
        }
        for node in self.inner.store.nodes_with_queued_executions()? {
            self.drive_executions(node);
        }
        Ok(())
    }

    /// Follows the log of execution `e`: what it said so far and its next lines, from the
    /// moment it is queued until it ends; `None` once it is over (its kept log is then in
    /// its record's artifact, read after this returns).
    pub async fn execution_log(&self, e: &ExecutionRecord) -> Result<Option<Following<ExecutionStatus>>, EngineError> {
        self.follow_log(e.id, e.node, logs, phase, kept).await
    }

    /// Whether `node` runs an execution now (refreshes and stops wait for it or are refused).
    pub(super) fn executing(&self, node: NodeId) -> bool {
        self.state().executing.contains(&node)
    }

    /// Starts the machine's queue driver unless one runs.
    fn drive_executions(&self, node: NodeId) {
        if !self.state().drivers.insert(node) {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            engine.drive_queue(node).await;
            engine.state().drivers.remove(&node);
            // Queued meanwhile, after the last claim looked: go on.
            if engine.inner.store.nodes_with_queued_executions().is_ok_and(|n| n.contains(&node))
                && !engine.inner.closed.is_cancelled()
            {
                engine.drive_executions(node);
            }
        });
    }

    async fn drive_queue(&self, node: NodeId) {
        loop {
            if self.state().shutting_down {
                return;
            }
            let topology = match self.inner.store.run(|s| s.topology_shared()).await {
                Ok(t) => t,
                Err(e) => return tracing::error!("executions: {e}"),
            };
            let name = topology.name_of(node);
            // Under the admission lock, so a cascade is either admitted before (and is waited
            // for) or sees the machine executing (and a stop is refused).
            let admission = self.inner.admission.lock().await;
            let free = {
                let mut st = self.state();
                let power = st.ops.contains_key(&node)
                    || st.running.values().any(|r| r.stops.contains(&node) || r.needs.contains(&node));
                #[cfg(feature = "docker")]
                let stacking = st.stacks.stacking.values().any(|(h, _)| *h == node);
                #[cfg(not(feature = "docker"))]
                let stacking = false;
                let free = !power && !st.refreshing.contains(&node) && !stacking;
                if free {
                    st.executing.insert(node);
                }
                free
            };
            drop(admission);
            if !free {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let now = crate::store::now_ms();
            let lease = now + LEASE.as_millis() as i64;
            let claimed = {
                let name = name.clone();
                self.record(move |tx| tx.claim_execution(node, &name, now, lease)).await
            };
            let e = match claimed {
                Ok(Some(e)) => e,
                Ok(None) => {
                    self.state().executing.remove(&node);
                    return self.close_stale_logs(node, logs, phase).await;
                }
                Err(err) => {
                    self.state().executing.remove(&node);
                    return tracing::error!("executions: cannot claim: {err}");
                }
            };
            let finished = self.execute_action(&topology, &e, &name).await;
            let status = finished.status;
            let id = e.id;
            let now = crate::store::now_ms();
            let name2 = name.clone();
            if let Err(err) = self.record(move |tx| tx.finish_execution(id, &name2, now, finished)).await {
                tracing::error!(execution = id, "cannot record the end of an execution: {err}");
            }
            self.state().logs.end(id, status);
            self.state().executing.remove(&node);
        }
    }

    /// Runs one claimed execution to its end (never returns an error: every failure is
    /// the execution's outcome).
    async fn execute_action(&self, topology: &crate::model::Topology, e: &ExecutionRecord, name: &str) -> Finished {
        let began = Instant::now();
        self.state().logs.open(e.id, e.node);
        let fail = |kind: &str, message: String| {
            let mut f = Finished::new(
                ExecutionStatus::Failed,
                format!("# {} on {name}: failed\n\nFailed ({kind}): {message}\n", e.action),
            );
            f.error = Some((kind.to_owned(), message));
            f
        };
        let Some(action) = MachineAction::parse(&e.action) else {
            return fail("invalid", format!("unknown action `{}`", e.action));
        };
        let Some(target) = self.target(topology, e.node) else {
            return fail("invalid", format!("`{name}` is no longer in the topology"));
        };
        // Asleep: nothing is run (a maintenance window wakes machines first).
        let connector = self.inner.connectors.get(&target.config.type_name);
        if let Some(c) = connector
            && let Ok(Ok(PowerState::Off)) =
                tokio::time::timeout(self.inner.config.status_timeout, c.status(&target)).await
        {
            return fail("asleep", format!("`{name}` is off; wake it first"));
        }
        // The heartbeat: the lease is renewed while the action runs.
        let heartbeat = {
            let engine = self.clone();
            let id = e.id;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(HEARTBEAT).await;
                    let until = crate::store::now_ms() + LEASE.as_millis() as i64;
                    if !matches!(engine.record(move |tx| tx.renew_lease(id, until)).await, Ok(true)) {
                        return;
                    }
                }
            })
        };
        let outcome = self.run_on_machine(&target, &action, e.id).await;
        heartbeat.abort();
        let took = began.elapsed().as_secs();
        let log = self.state().logs.text(e.id);
        let secrets: Vec<String> = ["sudo_password", "ssh_password"]
            .iter()
            .filter_map(|k| target.secret(&target.config, k).ok().flatten())
            .map(|s| s.expose().to_owned())
            .collect();
        let log = actions::redact(&log, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
        let (status, exit_code, result, failure) = match outcome {
            Err(e) => {
                let kind = match e.code {
                    ErrorCode::Timeout => "timeout",
                    ErrorCode::AuthFailed => "auth_failed",
                    ErrorCode::HostKeyMismatch => "host_key_mismatch",
                    ErrorCode::Unreachable => "unreachable",
                    ErrorCode::InvalidConfig => "invalid_config",
                    _ => "platform_error",
                };
                (ExecutionStatus::Failed, None, actions::ActionResult::default(), Some((kind, e.message)))
            }
            Ok((exit, extra_failure)) => {
                let (result, failure) = actions::read_output(&action, &log, exit);
                let failure = failure.or(extra_failure);
                let status = if failure.is_some() { ExecutionStatus::Failed } else { ExecutionStatus::Succeeded };
                (status, exit.map(i64::from), result, failure)
            }
        };
        let failure = failure.map(|(k, m)| (k.to_owned(), m));
        // What the output says a person should read joins the machine's messages.
        let found = actions::messages(&log);
        if !found.is_empty() {
            let (node, now) = (e.node, crate::store::now_ms());
            if let Err(err) = self.record(move |tx| tx.merge_messages(node, &found, now)).await {
                tracing::warn!(node = %name, "cannot keep the messages of an action: {err}");
            }
        }
        // What the machine is now: its state follows every action (still in the execution's
        // turn, so nothing else runs in between), and the report says it.
        let after = match self.refresh_now(topology, e.node, RefreshOptions::default(), "wakehub").await {
            Ok(r) => Some(r.state.summary()),
            Err(err) => Some(format!("the refresh after it failed: {err}")),
        };
        let report =
            actions::report(name, &action, failure.is_none(), took, &result, failure.as_ref(), after.as_deref());
        Finished {
            status,
            exit_code,
            error: failure,
            result: serde_json::to_value(&result).unwrap_or_default(),
            report,
            log: log.into_bytes(),
        }
    }

    /// Runs the action's script on the machine, streaming its output into the execution's
    /// live log; for a reboot, then waits until the machine went down and came back.
    async fn run_on_machine(
        &self,
        target: &Target,
        action: &MachineAction,
        id: i64,
    ) -> Result<(Option<u32>, Option<(&'static str, String)>), ConnectorError> {
        let SshEndpoint { host, port, user, auth } = SshEndpoint::of(target)?;
        let sudo_password = target.secret(&target.config, "sudo_password")?;
        let privilege = match (user.as_str(), &sudo_password) {
            ("root", _) => Privilege::Root,
            (_, Some(_)) => Privilege::SudoPassword,
            (_, None) => Privilege::SudoNoPassword,
        };
        let command = action.command_key().and_then(|k| target.config.str(&k).map(str::to_owned));
        let reboot = target.config.str("reboot_command").map(str::to_owned);
        let script = actions::script(action, privilege, command.as_deref(), reboot.as_deref(), &reboot_token(id));
        let stdin = match (privilege, &sudo_password) {
            (Privilege::SudoPassword, Some(p)) => Some(format!("{}\n", p.expose()).into_bytes()),
            _ => None,
        };
        let engine = self.clone();
        let mut pending = String::new();
        let mut kept = 0usize;
        let mut on_data = move |data: &[u8]| {
            kept += data.len();
            if kept > LOG_LIMIT {
                return;
            }
            pending.push_str(&String::from_utf8_lossy(data));
            while let Some(at) = pending.find('\n') {
                let line: String = pending[..at].trim_end_matches('\r').to_owned();
                pending.drain(..=at);
                engine.state().logs.say(id, line);
            }
        };
        let run = ssh_stream(target, &host, port, &user, auth, &script, stdin.as_deref(), &mut on_data);
        let exit = match tokio::time::timeout(ACTION_TIMEOUT, run).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(ConnectorError::new(
                    ErrorCode::Timeout,
                    format!("{}: {} did not finish in {ACTION_TIMEOUT:?}", target.name, action.name()),
                ));
            }
        };
        if *action != MachineAction::Reboot {
            return Ok((exit, None));
        }
        // The reboot was asked (the connection may drop before a status comes back).
        if exit.is_some_and(|c| c != 0) {
            return Ok((exit, None));
        }
        self.log_line(id, "@@ waiting for the machine to go down and come back");
        let connector = self.inner.connectors.get(&target.config.type_name);
        let went_down_by = Instant::now() + DOWN_TIMEOUT;
        let until = went_down_by + target_start_timeout(self, target);
        // Seen down: its SSH stopped answering, or its connector said it is off.
        let (mut down, mut powered_off) = (false, false);
        loop {
            match rebooted_since(target, &reboot_token(id)).await {
                Ok(true) => break,
                // Its `/run` survived a power cycle the connector saw: it came back anyway.
                Ok(false) if powered_off => {
                    self.log_line(id, "@@ the reboot marker survived the power cycle (is /run not cleared at boot?)");
                    break;
                }
                Ok(false) if !down && Instant::now() > went_down_by => {
                    return Ok((
                        Some(0),
                        Some(("reboot_timeout", "the machine did not go down after the reboot".into())),
                    ));
                }
                Ok(false) => {}
                Err(_) if !down => {
                    down = true;
                    self.log_line(id, "@@ down; waiting for it to come back");
                }
                Err(_) => {}
            }
            if !powered_off && let Some(c) = &connector {
                powered_off = matches!(
                    tokio::time::timeout(Duration::from_secs(5), c.status(target)).await,
                    Ok(Ok(PowerState::Off))
                );
            }
            if Instant::now() > until {
                return Ok((
                    Some(0),
                    Some(("reboot_timeout", "the machine did not come back after the reboot".into())),
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.log_line(id, "@@ back");
        Ok((Some(0), None))
    }

    fn log_line(&self, id: i64, line: &str) {
        self.state().logs.say(id, line.to_owned());
    }
}

/// What execution `id`'s reboot writes to the machine's reboot marker.
fn reboot_token(id: i64) -> String {
    format!("wakehub-execution-{id}")
}

/// The machine's start timeout: how long a reboot may take to come back.
fn target_start_timeout(engine: &Engine, target: &Target) -> Duration {
    engine
        .inner
        .store
        .topology_shared()
        .ok()
        .and_then(|t| t.node(target.node).map(|n| n.spec.timeouts.start))
        .unwrap_or(Duration::from_secs(300))
}
