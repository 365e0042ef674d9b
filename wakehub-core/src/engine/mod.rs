//! The cascade engine: the pure [`plan`](crate::plan)ner and the [`Engine`] that runs plans
//! against connectors, journals every step and publishes events.
//!
//! ## Guarantees
//!
//! - **Order.** A node starts only after everything it depends on and everything it runs on
//!   is up (connector status `on` and readiness probe passed); a node stops only after
//!   everything that needs it is down.
//! - **Concurrency.** Independent branches run concurrently, up to
//!   [`EngineConfig::concurrency`] steps at once per cascade (1 reproduces the strictly
//!   sequential behaviour of the original design).
//! - **One operation per node.** At most one power operation is in flight per node across
//!   all cascades. A cascade that needs a node another cascade is already starting (or
//!   stopping) *joins* that operation instead of issuing a second one.
//! - **Start wins over stop.** See [`Engine::request`] for the conflict rule.
//! - **Failure.** A failing or timed-out step fails the cascade at that step (code and message
//!   recorded); there is no rollback; steps not yet begun are cancelled, steps in flight
//!   finish.
//! - **Durability.** Cascades, steps, proposals and events are written to the store before
//!   they are published; a subscriber can replay everything after any event id. On start-up,
//!   cascades a crash left unfinished become `interrupted`.

mod context;
mod discovery;
#[cfg(feature = "wol-ssh")]
mod executions;
mod follow;
mod idle;
mod journal;
#[cfg(any(feature = "wol-ssh", feature = "docker"))]
mod live_log;
#[cfg(feature = "wol-ssh")]
mod machines;
#[cfg(feature = "wol-ssh")]
mod maintenance;
mod meters;
mod observe;
mod proposals;
mod run;
mod schedule;
mod schedules;
#[cfg(feature = "docker")]
mod stacks;
mod subscribe;

#[cfg(feature = "wol-ssh")]
pub use executions::LogLine;
pub use idle::{IdleStatus, Reading};
#[cfg(any(feature = "wol-ssh", feature = "docker"))]
pub use live_log::{Following, Line};
#[cfg(feature = "wol-ssh")]
pub use machines::{RefreshOptions, is_machine};
#[cfg(feature = "wol-ssh")]
pub use maintenance::{MaintenancePlan, PlannedMachine, PlannedPackage, Skipped};
pub use meters::MeterReading;
pub use schedule::{CATCH_UP, Selection, describe_schedule, next_occurrence};
#[cfg(feature = "docker")]
pub use stacks::{StackLogLine, StackView, diff_text, stack_sources};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::connector::{ConnectorError, Registry};
use crate::events::{CascadeStatus, Event, EventKind};
use crate::model::{
    Action, CascadeId, ErrorCode, ModelError, NodeId, NodeRef, NodeState, Origin, PluginKinds, PowerState, Refusal,
    Topology,
};
use crate::plan::{Observations, Plan, plan};
use crate::store::{CascadeRecord, ImportSummary, ProposalStatus, Store, StoreError};

/// How long one platform listing may take.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Steps of one cascade that may run at once (at least 1).
    pub concurrency: usize,
    /// Bound on one `status` call while observing nodes.
    pub status_timeout: Duration,
    /// How long [`Engine::shutdown`] lets in-flight steps finish before marking what is left
    /// `interrupted`.
    pub shutdown_grace: Duration,
    /// Node kinds the loaded connector plugins define (accepted in topology changes).
    pub plugin_kinds: PluginKinds,
    /// An observation older than this is stale: whoever shows a node's state says so
    /// rather than trusting it (the reference server observes every node every 30 s).
    pub stale_after: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            status_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            plugin_kinds: PluginKinds::default(),
            stale_after: Duration::from_secs(90),
        }
    }
}

/// The code and message for a node whose connector type is not registered: a plugin the
/// server did not load (`PLUGIN_NOT_LOADED`, naming `--plugins`), or an unknown type.
fn missing_connector(node: &str, type_name: &str) -> (ErrorCode, String) {
    match type_name.strip_prefix("plugin:") {
        Some(plugin) => (
            ErrorCode::PluginNotLoaded,
            format!(
                "`{node}` uses the connector plugin `{plugin}`, which is not loaded: start WakeHub with \
                 `--plugins DIR`, DIR holding `{plugin}`'s .wasm file"
            ),
        ),
        None => (ErrorCode::InvalidConfig, format!("`{node}`: no connector of type `{type_name}` is registered")),
    }
}

/// Why the engine refused a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The node, cascade or proposal does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was asked for.
        what: String,
    },
    /// A cascade on the same node is already running.
    #[error("{cascade} on this node is still running")]
    CascadeInProgress {
        /// The running cascade.
        cascade: CascadeId,
    },
    /// The request breaks a rule: it conflicts with a cascade in flight (see
    /// [`Engine::request`]), or is not valid (a discovered node, a proposal already
    /// decided, an unregistered connector type…).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The engine is shutting down.
    #[error("WakeHub is shutting down")]
    ShuttingDown,
    /// This instance follows the one holding the shared database's lease: it runs no work.
    #[error("this WakeHub instance follows another one on a shared database: ask the instance holding its lease")]
    NotLeader,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A platform refused or failed (discovery, a connection test).
    #[error(transparent)]
    Connector(#[from] ConnectorError),
}

impl EngineError {
    /// The stable machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::NotFound { .. } => ErrorCode::NotFound,
            EngineError::CascadeInProgress { .. } => ErrorCode::CascadeInProgress,
            EngineError::Refused(r) => r.code,
            EngineError::ShuttingDown => ErrorCode::ShuttingDown,
            EngineError::NotLeader => ErrorCode::NotLeader,
            EngineError::Store(e) => e.code(),
            EngineError::Connector(e) => e.code,
        }
    }
}

impl From<ModelError> for EngineError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::UnknownNode { node } => EngineError::NotFound { what: format!("node `{node}`") },
            other => EngineError::Store(StoreError::Model(other)),
        }
    }
}

/// A power operation in flight on one node.
struct Op {
    action: Action,
    cascade: CascadeId,
    done: watch::Receiver<Option<Result<(), run::StepFailure>>>,
}

/// A cascade in flight.
struct Running {
    target: NodeId,
    action: Action,
    /// Start cascades: every node they need (the target's upstream closure and itself).
    needs: BTreeSet<NodeId>,
    /// Stop cascades: nodes claimed by starts accepted while this stop runs (conflict rule
    /// 3), with the claiming start. This stop issues no further stop on them.
    claimed: BTreeMap<NodeId, CascadeId>,
    /// Stop cascades: the nodes it stops (the target and everything that cannot run
    /// without it).
    stops: BTreeSet<NodeId>,
    cancel: CancellationToken,
}

/// What the engine last observed of each node: a snapshot, cheap to share
/// ([`Engine::observed`]).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Observed {
    /// The power state last seen of each node.
    pub states: HashMap<NodeId, PowerState>,
    /// When each node was last observed (whatever the answer).
    pub at: HashMap<NodeId, std::time::SystemTime>,
}

#[derive(Default)]
struct State {
    ops: HashMap<NodeId, Op>,
    running: HashMap<CascadeId, Running>,
    /// What was last observed of each node: a snapshot shared with readers, changed
    /// copy-on-write.
    observed: Arc<Observed>,
    /// The last capability denial journaled for each node: the same one again is counted,
    /// not journaled, until the node is observed fine or is denied something else.
    denied: HashMap<NodeId, String>,
    shutting_down: bool,
    /// Machines whose execution queue has a driver.
    #[cfg(feature = "wol-ssh")]
    drivers: BTreeSet<NodeId>,
    /// Machines running an execution now.
    #[cfg(feature = "wol-ssh")]
    executing: BTreeSet<NodeId>,
    /// Machines being refreshed now.
    #[cfg(feature = "wol-ssh")]
    refreshing: BTreeSet<NodeId>,
    /// The live logs of running executions.
    #[cfg(feature = "wol-ssh")]
    logs: live_log::Logs<crate::store::ExecutionStatus>,
    /// Machines in a running maintenance, with its run (0 while the run is being recorded).
    #[cfg(feature = "wol-ssh")]
    maintenance: HashMap<NodeId, i64>,
    /// The stacks' queues: drivers, running commands, their logs.
    #[cfg(feature = "docker")]
    stacks: stacks::Stacks,
    /// The running nodes with an inactivity rule, and what was measured of them.
    idle: idle::Tracks,
    /// The meters' latest readings and kept samples.
    meters: meters::Meters,
    /// On an instance that follows: the leader's last inactivity check, as it shared it.
    followed_idle: Option<Vec<idle::IdleStatus>>,
}

struct Inner {
    store: Store,
    connectors: Registry,
    config: EngineConfig,
    bus: broadcast::Sender<Event>,
    /// Held while an event is written and published, so the bus carries ids in order.
    publish: Arc<Mutex<()>>,
    /// The journal writer (group commit).
    journal: journal::Writer,
    state: Mutex<State>,
    /// Serializes admission of requests (check for conflicts, then register).
    admission: tokio::sync::Mutex<()>,
    /// Bumped whenever a cascade ends.
    finished: watch::Sender<u64>,
    /// Cancelled once [`Engine::shutdown`] has finished: subscriptions end.
    closed: CancellationToken,
    /// Held while a proposal is confirmed or dismissed: one decision per proposal.
    decisions: tokio::sync::Mutex<()>,
    /// Capability denials connectors reported, journaled or not.
    denials: std::sync::atomic::AtomicU64,
    /// Whether this engine runs work and writes the journal (see [`follow`]): false while
    /// it follows another instance on a shared database.
    leading: std::sync::atomic::AtomicBool,
    /// While following: the task that reads what the leader journals.
    following: Mutex<Option<follow::Following>>,
}

/// The cascade engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("connectors", &self.inner.connectors).finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `store` with `connectors`. Cascades a previous process left unfinished
    /// are marked `interrupted` first (each with a `cascade-error` event).
    ///
    /// Refused (`VALIDATION`) when a node in the store names a built-in connector type that
    /// `connectors` does not have (a build without that connector). A node whose plugin is
    /// not loaded is accepted: it is observed `UNKNOWN`, and powering it (or anything that
    /// needs it) fails with `PLUGIN_NOT_LOADED`; [`Engine::unserved_nodes`] lists them.
    pub fn new(store: Store, connectors: Registry, config: EngineConfig) -> Result<Engine, EngineError> {
        let engine = Self::build(store, connectors, config, true)?;
        engine.interrupt_unfinished()?;
        Ok(engine)
    }

    /// Marks the cascades left unfinished (by a previous run, or by the instance this one
    /// takes over from) `interrupted`.
    fn interrupt_unfinished(&self) -> Result<usize, EngineError> {
        let interrupted = self.record_blocking(|tx| tx.interrupt_unfinished())?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "cascades left unfinished by the previous run are marked interrupted");
        }
        Ok(interrupted)
    }

    fn build(store: Store, connectors: Registry, config: EngineConfig, leading: bool) -> Result<Engine, EngineError> {
        let (bus, _) = broadcast::channel(4096);
        let publish = Arc::new(Mutex::new(()));
        let journal = journal::Writer::start(store.clone(), bus.clone(), publish.clone())
            .map_err(|e| StoreError::Database { message: format!("cannot start the journal writer: {e}") })?;
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                connectors,
                config: EngineConfig { concurrency: config.concurrency.max(1), ..config },
                bus,
                publish,
                journal,
                state: Mutex::new(State::default()),
                admission: tokio::sync::Mutex::new(()),
                finished: watch::Sender::new(0),
                closed: CancellationToken::new(),
                decisions: tokio::sync::Mutex::new(()),
                denials: std::sync::atomic::AtomicU64::new(0),
                leading: std::sync::atomic::AtomicBool::new(leading),
                following: Mutex::new(None),
            }),
        };
        // A plugin left out of this run is not fatal: its nodes answer `PLUGIN_NOT_LOADED`
        // (see `unserved_nodes`); a connector this build lacks is.
        let topology = engine.inner.store.topology_shared()?;
        let built_in = topology.nodes().filter(|n| !n.spec.connector.type_name.starts_with("plugin:"));
        engine.check_connectors(&topology, built_in.map(|n| n.id))?;
        Ok(engine)
    }

    /// The store the engine journals to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The connector registry.
    pub fn connectors(&self) -> &Registry {
        &self.inner.connectors
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Nodes needed by start cascades in flight, with the cascade that needs them.
    fn held(&self, except: Option<CascadeId>) -> BTreeMap<NodeId, CascadeId> {
        let st = self.state();
        let mut held = BTreeMap::new();
        for (id, r) in &st.running {
            if r.action == Action::Start && Some(*id) != except {
                for n in &r.needs {
                    held.entry(*n).or_insert(*id);
                }
            }
        }
        held
    }

    /// Nodes in the scopes of stop cascades other than `except` that are running.
    fn stopping_elsewhere(&self, except: CascadeId) -> BTreeSet<NodeId> {
        let st = self.state();
        st.running
            .iter()
            .filter(|(id, r)| **id != except && r.action == Action::Stop)
            .flat_map(|(_, r)| r.stops.iter().copied())
            .collect()
    }

    /// Nodes with a power operation in flight (a cascade plans a step for them, to join or
    /// wait for it, whatever their state says).
    fn busy(&self) -> BTreeSet<NodeId> {
        self.state().ops.keys().copied().collect()
    }

    /// The dry run: what `action` on `node` would do now, and roughly how long it would take.
    /// It asks the connectors for the nodes' states and writes nothing (no journal entry).
    pub async fn plan(&self, node: impl Into<NodeRef>, action: Action) -> Result<Plan, EngineError> {
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let node = topology.find(&node.into())?.id;
        let states: BTreeMap<NodeId, PowerState> = self.poll(&topology).await.into_iter().collect();
        let durations = self.durations(&topology).await?;
        let held = self.held(None);
        let busy = self.busy();
        Ok(plan(&topology, Observations::new(&states, &held, &durations).with_busy(&busy), node, action)?)
    }

    /// The start that claimed `node` from stop cascade `stop`: a start in flight that needs
    /// it, or one accepted (even if already finished) since the stop began.
    fn claimed_from(&self, stop: CascadeId, node: NodeId) -> Option<CascadeId> {
        let st = self.state();
        let by_running_start = st
            .running
            .iter()
            .find(|(id, r)| **id != stop && r.action == Action::Start && r.needs.contains(&node))
            .map(|(id, _)| *id);
        by_running_start.or_else(|| st.running.get(&stop).and_then(|r| r.claimed.get(&node).copied()))
    }

    /// Typical step durations: observed in the journal, else the connector's own hint.
    pub(crate) async fn durations(
        &self,
        topology: &Topology,
    ) -> Result<BTreeMap<(NodeId, Action), Duration>, EngineError> {
        let mut durations = BTreeMap::new();
        for node in topology.nodes() {
            let (Some(c), Some(target)) =
                (self.inner.connectors.get(&node.spec.connector.type_name), self.target(topology, node.id))
            else {
                continue;
            };
            for action in [Action::Start, Action::Stop] {
                if let Some(d) = c.typical_duration(&target, action) {
                    durations.insert((node.id, action), d);
                }
            }
        }
        durations.extend(self.inner.store.run(|s| s.typical_durations()).await?);
        Ok(durations)
    }

    /// Accepts a start or stop of `node` and runs it in the background; returns the cascade
    /// at once, `pending`.
    ///
    /// **Conflict rule — start wins over stop, without tearing a node down mid-operation.**
    /// 1. Operations on one node never overlap: a start that reaches a node being stopped
    ///    waits for that stop to finish, then starts it again (and vice versa).
    /// 2. A stop whose scope (the node and everything that cannot run without it) contains
    ///    a node an in-flight start needs is refused at once with `CONFLICT`.
    /// 3. A start accepted while a stop cascade runs claims what it needs at once, for the
    ///    rest of that stop cascade (even if the start finishes first): the stop cascade
    ///    issues no further stop on those nodes. An auto-stop from re-evaluation is
    ///    skipped ("kept: needed by start …"); a stop the user asked for fails the stop
    ///    cascade with `CONFLICT`, leaving the rest of its scope as it is.
    ///
    /// So the most recent intent wins, and a node is never stopped from under a start
    /// that was accepted before the stop was issued.
    ///
    /// `node` is an id or a name. Refused at once when a node the cascade may touch names
    /// a connector type that is not registered.
    pub async fn request(&self, node: impl Into<NodeRef>, action: Action) -> Result<CascadeRecord, EngineError> {
        self.admit(node.into(), action, None, None).await
    }

    /// [`request`](Self::request) on behalf of `actor` (a token's or user's name), recorded
    /// as the cascade's `requested_by`.
    pub async fn request_by(
        &self,
        node: impl Into<NodeRef>,
        action: Action,
        actor: &str,
    ) -> Result<CascadeRecord, EngineError> {
        self.admit(node.into(), action, None, Some(actor.to_owned())).await
    }

    /// Shorthand for [`request`](Self::request) with [`Action::Start`].
    pub async fn start(&self, node: impl Into<NodeRef>) -> Result<CascadeRecord, EngineError> {
        self.request(node, Action::Start).await
    }

    /// Shorthand for [`request`](Self::request) with [`Action::Stop`].
    pub async fn stop(&self, node: impl Into<NodeRef>) -> Result<CascadeRecord, EngineError> {
        self.request(node, Action::Stop).await
    }

    /// Makes the store's configured nodes exactly `desired` (see [`Store::import`]), after
    /// checking that every node's connector type is registered and accepts its table;
    /// `origin` says who wrote it ([`Origin`]).
    pub async fn import(&self, desired: Topology, origin: Origin) -> Result<ImportSummary, EngineError> {
        let problems = self.inner.connectors.validate(&desired);
        if !problems.is_empty() {
            let message: Vec<String> =
                problems.iter().map(|(n, p)| format!("node `{n}`, field `connector`: {p}")).collect();
            return Err(EngineError::from(Refusal::invalid(message.join("; "))));
        }
        Ok(self.inner.store.run(move |s| s.import(&desired, origin)).await?)
    }

    /// Refuses nodes whose connector type is not registered: `PLUGIN_NOT_LOADED` when the
    /// first of them is a plugin, naming `--plugins`.
    fn check_connectors(&self, topology: &Topology, nodes: impl Iterator<Item = NodeId>) -> Result<(), EngineError> {
        let missing = nodes
            .filter_map(|id| topology.node(id))
            .find(|n| self.inner.connectors.get(&n.spec.connector.type_name).is_none());
        let Some(node) = missing else { return Ok(()) };
        let (code, message) = missing_connector(&node.spec.name, &node.spec.connector.type_name);
        // A request naming a type no build has is not valid; a plugin left out can be loaded.
        let code = if code == ErrorCode::PluginNotLoaded { code } else { ErrorCode::Validation };
        let known = self.inner.connectors.type_names().join(", ");
        Err(EngineError::from(Refusal::new(code, format!("{message} (registered: {known})"))))
    }

    /// The nodes whose connector no registered connector provides, with their type: a
    /// server warns about them at start (a plugin directory left out of its command line).
    pub fn unserved_nodes(&self, topology: &Topology) -> Vec<(String, String)> {
        topology
            .nodes()
            .filter(|n| self.inner.connectors.get(&n.spec.connector.type_name).is_none())
            .map(|n| (n.spec.name.clone(), n.spec.connector.type_name.clone()))
            .collect()
    }

    /// Runs an interrupted, failed or cancelled cascade again (a new cascade, linked to it).
    pub async fn rerun(&self, cascade: CascadeId) -> Result<CascadeRecord, EngineError> {
        self.rerun_by(cascade, None).await
    }

    /// [`rerun`](Self::rerun) on behalf of `actor`, if given.
    pub async fn rerun_by(&self, cascade: CascadeId, actor: Option<&str>) -> Result<CascadeRecord, EngineError> {
        let old = self
            .inner
            .store
            .run(move |s| s.cascade(cascade))
            .await?
            .ok_or_else(|| EngineError::NotFound { what: cascade.to_string() })?;
        if !old.status.is_final() {
            return Err(EngineError::CascadeInProgress { cascade });
        }
        self.admit(old.node.into(), old.action, Some(cascade), actor.map(str::to_owned)).await
    }

    async fn admit(
        &self,
        node: NodeRef,
        action: Action,
        rerun_of: Option<CascadeId>,
        actor: Option<String>,
    ) -> Result<CascadeRecord, EngineError> {
        let _admission = self.inner.admission.lock().await;
        // One snapshot from admission to the end of the cascade.
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let n = topology.find(&node)?;
        let node = n.id;
        if n.spec.state != NodeState::Configured {
            return Err(EngineError::from(Refusal::invalid(format!(
                "`{}` is discovered but not configured; adopt it first",
                n.spec.name
            ))));
        }
        let name = n.spec.name.clone();
        let scope: BTreeSet<NodeId> = match action {
            Action::Start => topology.upstream_closure(node),
            Action::Stop => topology.downstream_closure(node),
        }
        .into_iter()
        .chain([node])
        .collect();
        self.check_connectors(&topology, scope.iter().copied())?;
        {
            #[allow(unused_mut)]
            let mut st = self.state();
            if st.shutting_down {
                return Err(EngineError::ShuttingDown);
            }
            if !self.is_leader() {
                return Err(EngineError::NotLeader);
            }
            // The same request twice waits for the first; a start of a node whose stop runs
            // supersedes it (rule 3 below), like a start of anything that stop touches.
            if let Some((id, _)) = st
                .running
                .iter()
                .find(|(_, r)| r.target == node && !(action == Action::Start && r.action == Action::Stop))
            {
                return Err(EngineError::CascadeInProgress { cascade: *id });
            }
            // An action running on a machine (an upgrade…) is never cut short by a stop.
            #[cfg(feature = "wol-ssh")]
            if action == Action::Stop
                && let Some(busy) = st.executing.intersection(&scope).next().copied()
            {
                drop(st);
                let what = self
                    .inner
                    .store
                    .running_execution(busy)
                    .ok()
                    .flatten()
                    .map_or_else(|| "an action".to_owned(), |e| format!("{} (execution:{})", e.action, e.id));
                return Err(EngineError::from(Refusal::conflict(format!(
                    "cannot stop `{name}`: `{}` is running {what}; stop it once that is done",
                    topology.name_of(busy)
                ))));
            }
            #[cfg(feature = "docker")]
            if action == Action::Stop {
                drop(st);
                self.refuse_stop_during_stack_command(&scope, &topology, &name)?;
                st = self.state();
            }
            if action == Action::Stop {
                for (id, r) in st.running.iter().filter(|(_, r)| r.action == Action::Start) {
                    if let Some(clash) = r.needs.intersection(&scope).next() {
                        return Err(EngineError::from(Refusal::conflict(format!(
                            "cannot stop `{name}`: `{}` is needed by {id} (start of `{}`) in progress",
                            topology.name_of(*clash),
                            topology.name_of(r.target)
                        ))));
                    }
                }
            }
        }
        let stale = scope.clone();
        let record = self
            .record(move |tx| {
                let record = tx.insert_cascade(node, &name, action, rerun_of, actor.as_deref())?;
                // A start needs these nodes on: their pending shutdown proposals are stale.
                if action == Action::Start {
                    for p in tx.pending_proposals_of(&stale)? {
                        if tx.resolve_proposal(p.id, ProposalStatus::Dismissed)? {
                            tx.emit(EventKind::ProposalResolved { proposal: p.id, node: p.node, confirmed: false });
                        }
                    }
                }
                Ok(record)
            })
            .await?;
        let cancel = CancellationToken::new();
        {
            let mut st = self.state();
            if action == Action::Start {
                for r in st.running.values_mut().filter(|r| r.action == Action::Stop) {
                    for n in &scope {
                        r.claimed.entry(*n).or_insert(record.id);
                    }
                }
            }
            st.running.insert(
                record.id,
                Running {
                    target: node,
                    action,
                    stops: if action == Action::Stop { scope.clone() } else { BTreeSet::new() },
                    needs: if action == Action::Start { scope } else { BTreeSet::new() },
                    claimed: BTreeMap::new(),
                    cancel: cancel.clone(),
                },
            );
        }
        let engine = self.clone();
        let id = record.id;
        // Supervised: whatever happens to the cascade's task (a panic included), it ends
        // recorded and unregistered, so the node never stays `CASCADE_IN_PROGRESS`.
        let run = tokio::spawn({
            let engine = engine.clone();
            async move { engine.run_cascade(id, topology, node, action, cancel).await }
        });
        tokio::spawn(async move {
            if let Err(e) = run.await {
                tracing::error!(cascade = %id, "the cascade's task ended abnormally: {e}");
                engine.fail_abandoned(id, node, action).await;
            }
            // Normally done when the end is recorded; this covers a store failure.
            engine.unregister(id);
        });
        Ok(record)
    }

    /// Records the end of a cascade whose task died (`INTERNAL`), unless it already ended.
    async fn fail_abandoned(&self, id: CascadeId, node: NodeId, action: Action) {
        let message = "the cascade stopped unexpectedly (see WakeHub's log)".to_owned();
        self.fail_cascade(id, node, action, ErrorCode::Internal, message).await;
    }

    /// Ends cascade `id` as failed before (or outside) its steps, with `code` and
    /// `message`, unless it already ended; the record is the log's if it cannot be written.
    pub(crate) async fn fail_cascade(
        &self,
        id: CascadeId,
        node: NodeId,
        action: Action,
        code: ErrorCode,
        message: String,
    ) {
        let recorded = self
            .record_end(id, move |tx| {
                if tx.finish_cascade(id, CascadeStatus::Failed, None, Some((code, &message)))? {
                    tx.emit(EventKind::CascadeError {
                        cascade: id,
                        node,
                        action,
                        status: CascadeStatus::Failed,
                        failed_step: None,
                        code,
                        message,
                    });
                }
                Ok(())
            })
            .await;
        if let Err(e) = recorded {
            tracing::error!(cascade = %id, "cannot record the end of the cascade: {e}");
        }
    }

    /// Waits until the cascade has ended and returns its final record.
    pub async fn wait(&self, cascade: CascadeId) -> Result<CascadeRecord, EngineError> {
        let mut finished = self.inner.finished.subscribe();
        loop {
            let running = self.state().running.contains_key(&cascade);
            if !running {
                let record = self.inner.store.run(move |s| s.cascade(cascade)).await?;
                let record = record.ok_or_else(|| EngineError::NotFound { what: cascade.to_string() })?;
                if record.status.is_final() {
                    return Ok(record);
                }
            }
            if finished.changed().await.is_err() {
                return Err(EngineError::ShuttingDown);
            }
        }
    }

    /// Cancels a running cascade: no new step begins, steps in flight finish, and the cascade
    /// ends `cancelled`.
    pub fn cancel(&self, cascade: CascadeId) -> Result<(), EngineError> {
        let st = self.state();
        let running = st.running.get(&cascade).ok_or_else(|| {
            EngineError::from(Refusal::invalid(format!("{cascade} is not running (already finished, or unknown)")))
        })?;
        running.cancel.cancel();
        Ok(())
    }

    /// Cascades in flight.
    pub fn running(&self) -> Vec<CascadeId> {
        let mut v: Vec<CascadeId> = self.state().running.keys().copied().collect();
        v.sort();
        v
    }

    /// Stops accepting requests, cancels every running cascade and waits for them (steps in
    /// flight finish) up to the grace period; whatever is still unfinished then is marked
    /// `interrupted`. Afterwards no cascade is left `in_progress` in the store.
    pub async fn shutdown(&self) {
        if !self.is_leader() {
            // A follower ran nothing: it stops reading the journal, and its subscriptions end.
            self.stop_following();
            return self.inner.closed.cancel();
        }
        let mut finished = self.inner.finished.subscribe();
        {
            let mut st = self.state();
            st.shutting_down = true;
            for r in st.running.values() {
                r.cancel.cancel();
            }
        }
        let deadline = tokio::time::Instant::now() + self.inner.config.shutdown_grace;
        while !self.state().running.is_empty() {
            if tokio::time::timeout_at(deadline, finished.changed()).await.is_err() {
                break;
            }
        }
        if let Err(e) = self.record(|tx| tx.interrupt_unfinished()).await {
            tracing::error!("cannot mark unfinished cascades interrupted: {e}");
        }
        self.inner.closed.cancel();
    }

    /// The status of the cascade as last recorded (`None` if unknown).
    pub async fn cascade(&self, id: CascadeId) -> Result<Option<CascadeRecord>, EngineError> {
        Ok(self.inner.store.run(move |s| s.cascade(id)).await?)
    }
}
