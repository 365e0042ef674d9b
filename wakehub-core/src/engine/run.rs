//! Running one cascade: plan, execute the steps' DAG with bounded concurrency, journal and
//! publish every transition.

use std::collections::{BTreeSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::{FutureExt, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Engine, EngineError, Op};
use crate::connector::probe::{Backoff, probe_once};
use crate::connector::{Connector, ConnectorError, Target};
use crate::events::{CascadeStatus, CurrentNode, EventKind, PlannedStep, StepStatus};
use crate::model::{Action, CascadeId, ErrorCode, NodeId, PowerState, Topology};
use crate::plan::{Observations, Plan, Role, Step, plan};
use crate::store::NewStep;

/// Why a step failed: a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepFailure {
    pub code: ErrorCode,
    pub message: String,
}

impl StepFailure {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        StepFailure { code, message: message.into() }
    }

    fn abandoned() -> Self {
        StepFailure::new(ErrorCode::Interrupted, "the operation was abandoned")
    }
}

impl From<ConnectorError> for StepFailure {
    fn from(e: ConnectorError) -> Self {
        StepFailure { code: e.code, message: e.message }
    }
}

/// A step's new status, as recorded.
struct StepEnd {
    status: StepStatus,
    reason: Option<String>,
    error: Option<(ErrorCode, String)>,
}

/// How a step ended well.
struct StepOutcome {
    status: StepStatus,
    reason: Option<String>,
    state: PowerState,
    /// Kept on at run time (a re-evaluation stop that found the node needed again).
    kept: bool,
}

/// The nodes a cascade's plan touches, and those of them it kept on at run time: a kept
/// node counts as a user of what it depends on, so re-evaluation does not stop that from
/// under it.
struct CascadeScope {
    nodes: BTreeSet<NodeId>,
    kept: Mutex<BTreeSet<NodeId>>,
    /// The first step whose journal write failed, and why (steps do not wait for their
    /// writes; the cascade fails with this once it is known).
    unjournaled: Mutex<Option<(usize, StepFailure)>>,
}

impl CascadeScope {
    fn unjournaled(&self) -> Option<(usize, StepFailure)> {
        self.unjournaled.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn keep(&self, node: NodeId) {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).insert(node);
    }

    /// Whether `node` counts as a user from outside this cascade's stops.
    fn outside(&self, node: NodeId) -> bool {
        !self.nodes.contains(&node) || self.kept.lock().unwrap_or_else(|e| e.into_inner()).contains(&node)
    }
}

enum Outcome {
    Completed,
    Failed { step: usize, failure: StepFailure },
    Cancelled,
}

/// Removes the node's in-flight operation and wakes joiners, also if the step is dropped.
struct OpGuard {
    engine: Engine,
    node: NodeId,
    done: watch::Sender<Option<Result<(), StepFailure>>>,
}

impl OpGuard {
    fn finish(self, result: Result<(), StepFailure>) {
        self.done.send_replace(Some(result));
    }
}

impl Drop for OpGuard {
    fn drop(&mut self) {
        if self.done.borrow().is_none() {
            self.done.send_replace(Some(Err(StepFailure::abandoned())));
        }
        self.engine.state().ops.remove(&self.node);
    }
}

/// A stop of `node` requested once a cascade has ended (a boxed future: the request runs a
/// cascade of its own, and the cascade's future must not contain itself).
fn follow_up_stop(engine: Engine, node: NodeId, name: String) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        match engine.request(node, Action::Stop).await {
            Ok(c) => tracing::info!(cascade = %c.id, node = %name, "unused after concurrent stops: stopping it"),
            Err(e) => tracing::info!(node = %name, "no follow-up stop: {e}"),
        }
    })
}

async fn wait_done(mut rx: watch::Receiver<Option<Result<(), StepFailure>>>) -> Result<(), StepFailure> {
    loop {
        if let Some(r) = rx.borrow_and_update().clone() {
            return r;
        }
        if rx.changed().await.is_err() {
            return rx.borrow().clone().unwrap_or_else(|| Err(StepFailure::abandoned()));
        }
    }
}

impl Engine {
    pub(super) async fn run_cascade(
        &self,
        id: CascadeId,
        topology: Arc<Topology>,
        node: NodeId,
        action: Action,
        cancel: CancellationToken,
    ) {
        if let Err(e) = self.try_run(id, topology, node, action, &cancel).await {
            let (code, message) = (e.code(), e.to_string());
            tracing::error!(cascade = %id, "cascade failed before its steps: {message}");
            self.fail_cascade(id, node, action, code, message).await;
        }
    }

    async fn try_run(
        &self,
        id: CascadeId,
        topology: Arc<Topology>,
        node: NodeId,
        action: Action,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let states = self.observe(&topology).await;
        let durations = self.durations(&topology).await?;
        let held = self.held(Some(id));
        let busy = self.busy();
        let plan = plan(&topology, Observations::new(&states, &held, &durations).with_busy(&busy), node, action)?;
        let new_steps: Vec<(NodeId, String, Action, Role, Vec<usize>)> =
            plan.steps.iter().map(|s| (s.node, topology.name_of(s.node), s.action, s.role, s.after.clone())).collect();
        self.record(move |tx| {
            let steps: Vec<NewStep<'_>> = new_steps
                .iter()
                .map(|(node, name, action, role, after)| NewStep {
                    node: *node,
                    node_name: name,
                    action: *action,
                    role: *role,
                    after,
                })
                .collect();
            tx.begin_cascade(id, &steps)?;
            let planned = new_steps
                .iter()
                .map(|(node, name, step_action, _, after)| {
                    PlannedStep::new(*node, name.clone(), *step_action, after.clone())
                })
                .collect();
            tx.emit(EventKind::CascadePlanned { cascade: id, node, action, steps: planned });
            Ok(())
        })
        .await?;
        tracing::info!(cascade = %id, node = %topology.name_of(node), %action, steps = plan.steps.len(), "cascade started");

        let outcome = self.execute(id, &topology, &plan, cancel).await;
        // Nodes kept because a node another stop was stopping still used them, and unused
        // now that both stops are over: stopped by a follow-up cascade (so two concurrent
        // stops of a shared dependency's last users never keep it on for ever).
        let mut follow_ups = Vec::new();
        let (status, events, failed, error) = match outcome {
            Outcome::Completed => {
                let mut events = Vec::new();
                let seen = self.last_seen();
                let held = self.held(Some(id));
                let others_stopping = self.stopping_elsewhere(id);
                for k in &plan.kept {
                    let running = |u: NodeId| seen.get(&u).is_none_or(|s| s.may_be_running());
                    let users = topology.users(k.node, running);
                    let stopped_since = action == Action::Stop
                        && !held.contains_key(&k.node)
                        && topology.node(k.node).is_some_and(|n| n.spec.state == crate::model::NodeState::Configured)
                        && users.iter().all(|u| others_stopping.contains(u));
                    if stopped_since && users.is_empty() {
                        let spec = topology.node(k.node).map(|n| n.spec.confirm_auto_shutdown).unwrap_or(true);
                        if spec {
                            events.push((k.node, "no longer used; confirm_auto_shutdown is on".to_owned(), true));
                        } else {
                            follow_ups.push(k.node);
                        }
                    } else {
                        events.push((k.node, k.reason.clone(), false));
                    }
                }
                for p in &plan.proposed {
                    // Checked again at the end: something may have started using it meanwhile.
                    let users = topology.users(p.node, |u| seen.get(&u).is_none_or(|s| s.may_be_running()));
                    if let Some(c) = held.get(&p.node) {
                        events.push((p.node, format!("needed by start {c} in progress"), false));
                    } else if !users.is_empty() {
                        let names: Vec<String> = users.iter().map(|u| topology.name_of(*u)).collect();
                        events.push((p.node, format!("used by {}", names.join(", ")), false));
                    } else {
                        events.push((p.node, p.reason.clone(), true));
                    }
                }
                (CascadeStatus::Completed, events, None, None)
            }
            Outcome::Failed { step, failure } => {
                (CascadeStatus::Failed, Vec::new(), Some(step), Some((failure.code, failure.message)))
            }
            Outcome::Cancelled => (
                CascadeStatus::Cancelled,
                Vec::new(),
                None,
                Some((ErrorCode::Cancelled, "cancelled before every step ran".to_owned())),
            ),
        };
        let topo = topology.clone();
        self.record_end(id, move |tx| {
            let err = error.as_ref().map(|(c, m)| (*c, m.as_str()));
            if !tx.finish_cascade(id, status, failed, err)? {
                // Ended already (a shutdown marked it interrupted): its end stays as it was.
                return Ok(());
            }
            for (n, reason, propose) in events {
                let name = topo.name_of(n);
                if propose {
                    let proposal = tx.insert_proposal(n, &name, id, &reason)?;
                    tx.emit(EventKind::ShutdownProposed { proposal, cascade: id, node: n, name, reason });
                } else {
                    tx.emit(EventKind::NodeKept { cascade: id, node: n, name, reason });
                }
            }
            tx.emit(match error {
                None => EventKind::CascadeComplete { cascade: id, node, action },
                Some((code, message)) => {
                    EventKind::CascadeError { cascade: id, node, action, status, failed_step: failed, code, message }
                }
            });
            Ok(())
        })
        .await?;
        tracing::info!(cascade = %id, status = status.as_str(), "cascade ended");
        for node in follow_ups {
            tokio::spawn(follow_up_stop(self.clone(), node, topology.name_of(node)));
        }
        Ok(())
    }

    /// Runs the plan's steps: each as soon as its prerequisites are done, at most
    /// `concurrency` at once. After a failure or a cancel no step begins; steps in flight
    /// finish.
    async fn execute(
        &self,
        id: CascadeId,
        topology: &Arc<Topology>,
        plan: &Plan,
        cancel: &CancellationToken,
    ) -> Outcome {
        let n = plan.steps.len();
        let mut waiting: Vec<usize> = plan.steps.iter().map(|s| s.after.len()).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for s in &plan.steps {
            for a in &s.after {
                dependents[*a].push(s.id);
            }
        }
        let mut ready: VecDeque<usize> = plan.steps.iter().filter(|s| s.after.is_empty()).map(|s| s.id).collect();
        let scope = Arc::new(CascadeScope {
            nodes: plan.steps.iter().map(|s| s.node).chain(plan.skipped.iter().map(|d| d.node)).collect(),
            kept: Mutex::new(BTreeSet::new()),
            unjournaled: Mutex::new(None),
        });
        let mut set = JoinSet::new();
        let mut failed: Option<(usize, StepFailure)> = None;
        let mut cancelled = false;
        let limit = self.inner.config.concurrency;
        loop {
            // A cancel that came before (or between) steps launches nothing more.
            cancelled |= cancel.is_cancelled();
            while failed.is_none() && !cancelled && set.len() < limit {
                let Some(i) = ready.pop_front() else { break };
                let engine = self.clone();
                let step = plan.steps[i].clone();
                let (topology, scope, target) = (topology.clone(), scope.clone(), plan.target);
                set.spawn(async move { (i, engine.run_step(id, target, n, step, &topology, scope).await) });
            }
            if set.is_empty() {
                break;
            }
            tokio::select! {
                joined = set.join_next() => match joined {
                    Some(Ok((_, Ok(())))) if scope.unjournaled().is_some() => {
                        failed = failed.or_else(|| scope.unjournaled());
                    }
                    Some(Ok((i, Ok(())))) => {
                        for d in &dependents[i] {
                            waiting[*d] -= 1;
                            if waiting[*d] == 0 {
                                ready.push_back(*d);
                            }
                        }
                    }
                    Some(Ok((i, Err(f)))) => {
                        failed.get_or_insert((i, f));
                    }
                    Some(Err(e)) => {
                        tracing::error!(cascade = %id, "a step task panicked: {e}");
                        failed.get_or_insert((0, StepFailure::new(ErrorCode::Internal, "a step crashed")));
                    }
                    None => {}
                },
                _ = cancel.cancelled(), if !cancelled => cancelled = true,
            }
        }
        // The steps did not wait for their journal writes: once these are settled, a write
        // that failed fails the cascade.
        if failed.is_none() && self.record(|_| Ok(())).await.is_ok() {
            failed = scope.unjournaled();
        }
        match failed {
            Some((step, failure)) => Outcome::Failed { step, failure },
            None if cancelled && (waiting.iter().any(|w| *w > 0) || !ready.is_empty()) => Outcome::Cancelled,
            None => Outcome::Completed,
        }
    }

    async fn run_step(
        &self,
        id: CascadeId,
        target_node: NodeId,
        total: usize,
        step: Step,
        topology: &Topology,
        scope: Arc<CascadeScope>,
    ) -> Result<(), StepFailure> {
        let name = topology.name_of(step.node);
        let transitional = match step.action {
            Action::Start => PowerState::Starting,
            Action::Stop => PowerState::Stopping,
        };
        let progress = |done: usize, state: PowerState, step_status: StepStatus| EventKind::CascadeProgress {
            cascade: id,
            node: target_node,
            step: done,
            total_steps: total,
            current: CurrentNode { node: step.node, name: name.clone(), action: step.action, state, step_status },
        };
        let index = step.id;
        let running = StepEnd { status: StepStatus::Running, reason: None, error: None };
        self.record_step(id, index, running, progress(0, transitional, StepStatus::Running), None, &scope);
        // A connector that panics fails this step (and so the cascade), nothing else: the
        // operation's guard unwinds and frees the node for the next request.
        let result =
            AssertUnwindSafe(self.perform(id, &step, topology, &scope)).catch_unwind().await.unwrap_or_else(|_| {
                tracing::error!(cascade = %id, node = %name, "the connector panicked");
                Err(StepFailure::new(
                    ErrorCode::Internal,
                    format!("`{name}`: the connector failed unexpectedly (see WakeHub's log)"),
                ))
            });
        let (status, reason, error, state) = match &result {
            Ok(o) => (o.status, o.reason.clone(), None, o.state),
            Err(f) => (StepStatus::Failed, None, Some((f.code, f.message.clone())), PowerState::Error),
        };
        // A keep decided at run time is an event of its own, as at plan time.
        let kept = match &result {
            Ok(o) if o.kept => Some(EventKind::NodeKept {
                cascade: id,
                node: step.node,
                name: name.clone(),
                reason: o.reason.clone().unwrap_or_default(),
            }),
            _ => None,
        };
        self.record_step(id, index, StepEnd { status, reason, error }, progress(0, state, status), kept, &scope);
        result.map(|_| ())
    }

    /// Records a step's new status and publishes its progress event (with the count of
    /// finished steps filled in), without waiting: a failed write is noted in `scope`.
    fn record_step(
        &self,
        id: CascadeId,
        index: usize,
        end: StepEnd,
        mut event: EventKind,
        also: Option<EventKind>,
        scope: &Arc<CascadeScope>,
    ) {
        let StepEnd { status, reason, error } = end;
        let scope = scope.clone();
        self.record_detached(
            false,
            move |tx| {
                let err = error.as_ref().map(|(c, m)| (*c, m.as_str()));
                let done = tx.set_step(id, index, status, reason.as_deref(), err)?;
                if let EventKind::CascadeProgress { step, .. } = &mut event {
                    *step = done;
                }
                tx.emit(event);
                also.into_iter().for_each(|e| tx.emit(e));
                Ok(())
            },
            move |e| {
                tracing::error!(cascade = %id, step = index, "cannot journal a step: {e}");
                let mut first = scope.unjournaled.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert((index, StepFailure::new(e.code(), e.to_string())));
            },
        );
    }

    async fn perform(
        &self,
        id: CascadeId,
        step: &Step,
        topology: &Topology,
        scope: &CascadeScope,
    ) -> Result<StepOutcome, StepFailure> {
        let name = topology.name_of(step.node);
        let node = topology
            .node(step.node)
            .ok_or_else(|| StepFailure::new(ErrorCode::NotFound, format!("node `{name}` vanished")))?;
        let target = self
            .target(topology, step.node)
            .ok_or_else(|| StepFailure::new(ErrorCode::NotFound, format!("node `{name}` vanished")))?;
        let connector = self.inner.connectors.get(&node.spec.connector.type_name).ok_or_else(|| {
            let (code, message) = super::missing_connector(&name, &node.spec.connector.type_name);
            StepFailure::new(code, message)
        })?;

        if step.action == Action::Stop {
            // Conflict rule 3: a start accepted meanwhile has claimed this node.
            if let Some(other) = self.claimed_from(id, step.node) {
                let seen = self.last_seen().get(&step.node).copied().unwrap_or(PowerState::Unknown);
                if step.role == Role::Unused {
                    scope.keep(step.node);
                    return Ok(StepOutcome {
                        status: StepStatus::Skipped,
                        reason: Some(format!("kept: needed by start {other} in progress")),
                        state: seen,
                        kept: true,
                    });
                }
                return Err(StepFailure::new(
                    ErrorCode::Conflict,
                    format!("`{name}` is now needed by start {other}; this stop is superseded"),
                ));
            }
            if step.role == Role::Unused {
                let seen = self.last_seen();
                let users =
                    topology.users(step.node, |u| scope.outside(u) && seen.get(&u).is_none_or(|s| s.may_be_running()));
                if !users.is_empty() {
                    let names: Vec<String> = users.iter().map(|u| topology.name_of(*u)).collect();
                    scope.keep(step.node);
                    return Ok(StepOutcome {
                        status: StepStatus::Skipped,
                        reason: Some(format!("kept: now used by {}", names.join(", "))),
                        state: seen.get(&step.node).copied().unwrap_or(PowerState::Unknown),
                        kept: true,
                    });
                }
            }
        }

        let desired = match step.action {
            Action::Start => PowerState::On,
            Action::Stop => PowerState::Off,
        };
        // At most one operation per node: join the same one, wait out the opposite one.
        let guard = loop {
            enum Wait {
                Join(CascadeId, watch::Receiver<Option<Result<(), StepFailure>>>),
                Behind(watch::Receiver<Option<Result<(), StepFailure>>>),
            }
            let wait = {
                let mut st = self.state();
                match st.ops.get(&step.node) {
                    Some(op) if op.action == step.action => Wait::Join(op.cascade, op.done.clone()),
                    Some(op) => Wait::Behind(op.done.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        st.ops.insert(step.node, Op { action: step.action, cascade: id, done: rx });
                        break OpGuard { engine: self.clone(), node: step.node, done: tx };
                    }
                }
            };
            match wait {
                Wait::Join(other, rx) => {
                    wait_done(rx).await?;
                    return Ok(StepOutcome {
                        status: StepStatus::Joined,
                        reason: Some(format!("joined the {} already in flight in {other}", step.action)),
                        state: desired,
                        kept: false,
                    });
                }
                Wait::Behind(rx) => {
                    let _ = wait_done(rx).await;
                }
            }
        };

        let timeout = match step.action {
            Action::Start => node.spec.timeouts.start,
            Action::Stop => node.spec.timeouts.stop,
        };
        let last = Mutex::new(String::from("no answer yet"));
        let driven =
            tokio::time::timeout(timeout, self.drive(&*connector, &target, topology, step.action, &last)).await;
        let result = match driven {
            Ok(r) => r,
            Err(_) => {
                let verb = if step.action == Action::Start { "come up" } else { "go down" };
                let last = last.lock().map(|l| l.clone()).unwrap_or_default();
                Err(StepFailure::new(
                    ErrorCode::Timeout,
                    format!("`{name}` did not {verb} within {} ({last})", humantime::format_duration(timeout)),
                ))
            }
        };
        guard.finish(result.as_ref().map(|_| ()).map_err(Clone::clone));
        result
    }

    /// Issues the operation and waits until the node is in the desired state (and, for a
    /// start, ready). Bounded by the caller's timeout.
    async fn drive(
        &self,
        connector: &dyn Connector,
        target: &Target,
        topology: &Topology,
        action: Action,
        last: &Mutex<String>,
    ) -> Result<StepOutcome, StepFailure> {
        let desired = if action == Action::Start { PowerState::On } else { PowerState::Off };
        let note = |s: String| {
            if let Ok(mut l) = last.lock() {
                *l = s;
            }
        };
        let readiness = topology.node(target.node).and_then(|n| n.spec.readiness.clone());
        let current = connector.status(target).await;
        if let Ok(s) = current {
            self.note_state(topology, target.node, s).await;
        }
        let already = current.as_ref().is_ok_and(|s| *s == desired);
        if !already {
            // A retryable refusal (unreachable, slow, busy) is tried again, a bounded number
            // of times, all within the step's timeout.
            let mut backoff = Backoff::new();
            for attempt in 1.. {
                let issued = match action {
                    Action::Start => connector.start(target).await,
                    Action::Stop => connector.stop(target).await,
                };
                match issued {
                    Ok(()) => break,
                    Err(e) if e.retryable && attempt < crate::connector::POWER_ATTEMPTS => {
                        note(format!("{action} attempt {attempt}: {} (trying again)", e.message));
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            self.wait_state(connector, target, topology, desired, &note).await?;
        }
        if let (Action::Start, Some(r)) = (action, readiness) {
            let mut backoff = Backoff::new();
            loop {
                match probe_once(&r, std::time::Duration::from_secs(2)).await {
                    Ok(()) => break,
                    Err(e) => note(format!("readiness: {}", e.message)),
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
        Ok(StepOutcome {
            status: if already { StepStatus::Skipped } else { StepStatus::Done },
            reason: already.then(|| format!("already {}", desired.as_str())),
            state: desired,
            kept: false,
        })
    }

    /// Waits for `desired`: on the connector's status stream if it has one, else by probing
    /// with exponential backoff.
    async fn wait_state(
        &self,
        connector: &dyn Connector,
        target: &Target,
        topology: &Topology,
        desired: PowerState,
        note: &(dyn Fn(String) + Sync),
    ) -> Result<(), StepFailure> {
        // Records one observed state; `Some` once the wait is over (reached, or a fault).
        let seen = |s: PowerState| async move {
            self.note_state(topology, target.node, s).await;
            note(format!("last seen {s}"));
            match s {
                s if s == desired => Some(Ok(())),
                PowerState::Error => Some(Err(StepFailure::new(
                    ErrorCode::PlatformError,
                    format!("`{}` reports state `{s}`", target.name),
                ))),
                _ => None,
            }
        };
        if let Some(mut stream) = connector.watch(target) {
            while let Some(s) = stream.next().await {
                if let Some(done) = seen(s).await {
                    return done;
                }
            }
        }
        let mut backoff = Backoff::new();
        loop {
            match connector.status(target).await {
                Ok(s) => {
                    if let Some(done) = seen(s).await {
                        return done;
                    }
                }
                Err(e) if !e.retryable => return Err(e.into()),
                Err(e) => note(format!("status: {}", e.message)),
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}
