//! The GraphQL types. They own their shape and convert from the core's domain types (which
//! derive nothing).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use wakehub_core::model::ErrorCode;

use async_graphql::{Context, Enum, ID, Json, Object, SimpleObject, Union};
use wakehub_core::connector::PowerState;
use wakehub_core::engine::Engine;
use wakehub_core::events::{self, CascadeStatus, EventKind, StepStatus};
use wakehub_core::model::Action;
use wakehub_core::model::{ConfigValue, NodeId, NodeState, Readiness, Topology};
use wakehub_core::plan::Role;
use wakehub_core::store::{
    CascadeRecord, Disappeared, DiscoveredNode, DiscoveryRecord, DiscoveryReport, ProposalRecord, ProposalStatus,
    StepRecord,
};

use super::error::ApiResultExt;

/// Milliseconds since the epoch as RFC 3339.
pub(crate) fn time(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)).to_string()
}

/// Parses `prefix:N` or `N`.
pub(crate) fn parse_id(id: &str, prefix: &str) -> Option<i64> {
    id.strip_prefix(prefix).and_then(|r| r.strip_prefix(':')).unwrap_or(id).parse().ok()
}

/// Power state of a node.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "PowerState")]
pub enum GqlPowerState {
    /// Running.
    On,
    /// Not running.
    Off,
    /// Coming up.
    Starting,
    /// Going down.
    Stopping,
    /// Not known (unreachable, never observed).
    Unknown,
    /// The platform reports a fault.
    Error,
}

impl From<PowerState> for GqlPowerState {
    fn from(p: PowerState) -> Self {
        match p {
            PowerState::On => Self::On,
            PowerState::Off => Self::Off,
            PowerState::Starting => Self::Starting,
            PowerState::Stopping => Self::Stopping,
            PowerState::Error => Self::Error,
            _ => Self::Unknown,
        }
    }
}

/// Start or stop.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Action")]
pub enum GqlAction {
    /// Power on.
    Start,
    /// Power off.
    Stop,
}

impl From<Action> for GqlAction {
    fn from(a: Action) -> Self {
        match a {
            Action::Stop => Self::Stop,
            _ => Self::Start,
        }
    }
}

impl From<GqlAction> for Action {
    fn from(a: GqlAction) -> Self {
        match a {
            GqlAction::Start => Action::Start,
            GqlAction::Stop => Action::Stop,
        }
    }
}

/// Configured by the user, or only discovered on a host.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "NodeState")]
pub enum GqlNodeState {
    /// Configured: the engine may start and stop it.
    Configured,
    /// Discovered, waiting to be adopted.
    Discovered,
}

/// Where a cascade is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "CascadeStatus")]
pub enum GqlCascadeStatus {
    /// Accepted, not yet running.
    Pending,
    /// Running.
    InProgress,
    /// Every step done.
    Completed,
    /// A step failed.
    Failed,
    /// Cancelled.
    Cancelled,
    /// The server stopped while it ran.
    Interrupted,
}

impl From<CascadeStatus> for GqlCascadeStatus {
    fn from(s: CascadeStatus) -> Self {
        match s {
            CascadeStatus::Pending => Self::Pending,
            CascadeStatus::InProgress => Self::InProgress,
            CascadeStatus::Completed => Self::Completed,
            CascadeStatus::Failed => Self::Failed,
            CascadeStatus::Cancelled => Self::Cancelled,
            _ => Self::Interrupted,
        }
    }
}

impl From<GqlCascadeStatus> for CascadeStatus {
    fn from(s: GqlCascadeStatus) -> Self {
        match s {
            GqlCascadeStatus::Pending => Self::Pending,
            GqlCascadeStatus::InProgress => Self::InProgress,
            GqlCascadeStatus::Completed => Self::Completed,
            GqlCascadeStatus::Failed => Self::Failed,
            GqlCascadeStatus::Cancelled => Self::Cancelled,
            GqlCascadeStatus::Interrupted => Self::Interrupted,
        }
    }
}

/// Where a step is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "StepStatus")]
pub enum GqlStepStatus {
    /// Waiting for its prerequisites.
    Pending,
    /// In flight.
    Running,
    /// The node reached the desired state.
    Done,
    /// Nothing to do after all.
    Skipped,
    /// Joined another cascade's identical operation.
    Joined,
    /// Failed.
    Failed,
    /// Never begun.
    Cancelled,
    /// The server stopped while it ran.
    Interrupted,
}

impl From<StepStatus> for GqlStepStatus {
    fn from(s: StepStatus) -> Self {
        match s {
            StepStatus::Pending => Self::Pending,
            StepStatus::Running => Self::Running,
            StepStatus::Done => Self::Done,
            StepStatus::Skipped => Self::Skipped,
            StepStatus::Joined => Self::Joined,
            StepStatus::Failed => Self::Failed,
            StepStatus::Cancelled => Self::Cancelled,
            _ => Self::Interrupted,
        }
    }
}

/// Why a step is in a plan.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "StepRole")]
pub enum GqlRole {
    /// The node asked for.
    Requested,
    /// Needed by it (start).
    Required,
    /// Cannot run without it (stop).
    Dependent,
    /// No longer used (stopped by re-evaluation).
    Unused,
}

impl From<Role> for GqlRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Requested => Self::Requested,
            Role::Required => Self::Required,
            Role::Dependent => Self::Dependent,
            _ => Self::Unused,
        }
    }
}

/// Decision on a shutdown proposal.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ProposalStatus")]
pub enum GqlProposalStatus {
    /// Awaiting a decision.
    Pending,
    /// Confirmed.
    Confirmed,
    /// Dismissed.
    Dismissed,
}

impl From<ProposalStatus> for GqlProposalStatus {
    fn from(s: ProposalStatus) -> Self {
        match s {
            ProposalStatus::Pending => Self::Pending,
            ProposalStatus::Confirmed => Self::Confirmed,
            _ => Self::Dismissed,
        }
    }
}

/// A consistent view for one request: the topology and the last observed states.
#[derive(Clone)]
pub(crate) struct View {
    pub topology: Arc<Topology>,
    pub seen: Arc<HashMap<NodeId, PowerState>>,
}

impl View {
    pub(crate) async fn load(engine: &Engine) -> async_graphql::Result<View> {
        let topology = engine.store().run(|s| s.topology_shared()).await.api()?;
        Ok(View { topology, seen: Arc::new(engine.last_seen()) })
    }

    pub(crate) fn node(&self, id: NodeId) -> GqlNode {
        GqlNode { view: self.clone(), id }
    }

    /// A node by id (`node:N`, `N`) or name.
    pub(crate) fn resolve(&self, id_or_name: &str) -> Option<NodeId> {
        self.topology
            .resolve(id_or_name)
            .map(|n| n.id)
            .ok()
            .or_else(|| parse_id(id_or_name, "node").map(NodeId::new).filter(|id| self.topology.node(*id).is_some()))
    }

    pub(crate) fn require(&self, id_or_name: &str) -> async_graphql::Result<NodeId> {
        self.resolve(id_or_name)
            .ok_or_else(|| super::error::api_error(ErrorCode::NotFound, format!("node `{id_or_name}` not found")))
    }

    fn state(&self, id: NodeId) -> PowerState {
        self.seen.get(&id).copied().unwrap_or(PowerState::Unknown)
    }
}

/// A readiness probe.
#[derive(SimpleObject)]
pub struct GqlReadiness {
    /// `tcp` or `http`.
    pub kind: String,
    /// `host:port` or the URL.
    pub target: String,
    /// The expected HTTP status (http probes).
    pub status: Option<i32>,
}

/// A node's connector: its type and its keys. Secrets appear only as references
/// (`{"secret": "env:VAR"}`, `{"secret": "credential:3"}`), never as values.
#[derive(SimpleObject)]
pub struct GqlConnector {
    /// The connector type (`sim`, `proxmox`…).
    #[graphql(name = "type")]
    pub type_name: String,
    /// Its keys.
    pub settings: Json<serde_json::Value>,
}

fn settings_json(v: &ConfigValue) -> serde_json::Value {
    match v {
        ConfigValue::String(s) => s.clone().into(),
        ConfigValue::Integer(i) => (*i).into(),
        ConfigValue::Float(f) => (*f).into(),
        ConfigValue::Bool(b) => (*b).into(),
        ConfigValue::Array(a) => a.iter().map(settings_json).collect(),
        ConfigValue::Table(t) => t.iter().map(|(k, v)| (k.clone(), settings_json(v))).collect(),
        ConfigValue::Secret(s) => {
            serde_json::json!({ "secret": s.to_reference().unwrap_or_else(|| "<inline>".into()) })
        }
        _ => serde_json::Value::Null,
    }
}

/// A node: a machine, VM, LXC, container, or a plugin-defined thing.
pub struct GqlNode {
    view: View,
    id: NodeId,
}

#[Object(name = "Node")]
impl GqlNode {
    /// Stable id (`node:N`).
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    /// Unique name.
    async fn name(&self) -> String {
        self.view.topology.name_of(self.id)
    }
    /// `physical`, `vm`, `lxc`, `container`, or a plugin kind.
    async fn kind(&self) -> String {
        self.view.topology.node(self.id).map(|n| n.spec.kind.to_string()).unwrap_or_default()
    }
    /// Configured or discovered.
    async fn state(&self) -> GqlNodeState {
        match self.view.topology.node(self.id).map(|n| n.spec.state) {
            Some(NodeState::Discovered) => GqlNodeState::Discovered,
            _ => GqlNodeState::Configured,
        }
    }
    /// The power state last observed.
    async fn status(&self) -> GqlPowerState {
        self.view.state(self.id).into()
    }
    /// Shown on the dashboard.
    async fn pinned(&self) -> bool {
        self.view.topology.node(self.id).is_some_and(|n| n.spec.pinned)
    }
    /// Re-evaluation proposes its shutdown instead of doing it.
    async fn confirm_auto_shutdown(&self) -> bool {
        self.view.topology.node(self.id).is_some_and(|n| n.spec.confirm_auto_shutdown)
    }
    /// Start timeout (`"5m"`).
    async fn start_timeout(&self) -> String {
        self.view
            .topology
            .node(self.id)
            .map(|n| humantime::format_duration(n.spec.timeouts.start).to_string())
            .unwrap_or_default()
    }
    /// Stop timeout.
    async fn stop_timeout(&self) -> String {
        self.view
            .topology
            .node(self.id)
            .map(|n| humantime::format_duration(n.spec.timeouts.stop).to_string())
            .unwrap_or_default()
    }
    /// The readiness probe, if any.
    async fn readiness(&self) -> Option<GqlReadiness> {
        match self.view.topology.node(self.id)?.spec.readiness.as_ref()? {
            Readiness::Tcp { host, port } => {
                Some(GqlReadiness { kind: "tcp".into(), target: format!("{host}:{port}"), status: None })
            }
            Readiness::Http { url, status } => {
                Some(GqlReadiness { kind: "http".into(), target: url.clone(), status: Some(i32::from(*status)) })
            }
            _ => None,
        }
    }
    /// Capabilities offered to hosted nodes.
    async fn offers(&self) -> Vec<String> {
        self.view
            .topology
            .node(self.id)
            .map(|n| n.spec.offers.iter().map(|c| c.to_string()).collect())
            .unwrap_or_default()
    }
    /// Its connector (secrets as references only).
    async fn connector(&self) -> Option<GqlConnector> {
        let c = &self.view.topology.node(self.id)?.spec.connector;
        let settings = c.settings.iter().map(|(k, v)| (k.clone(), settings_json(v))).collect();
        Some(GqlConnector { type_name: c.type_name.clone(), settings: Json(settings) })
    }
    /// The host it runs on.
    async fn parent(&self) -> Option<GqlNode> {
        self.view.topology.parent(self.id).map(|p| self.view.node(p))
    }
    /// What runs on it.
    async fn children(&self) -> Vec<GqlNode> {
        self.view.topology.children(self.id).into_iter().map(|c| self.view.node(c)).collect()
    }
    /// What it depends on.
    async fn depends_on(&self) -> Vec<GqlNode> {
        self.view.topology.dependencies(self.id).into_iter().map(|c| self.view.node(c)).collect()
    }
    /// Who depends on it.
    async fn dependents(&self) -> Vec<GqlNode> {
        self.view.topology.dependents(self.id).into_iter().map(|c| self.view.node(c)).collect()
    }
    /// What discovery knows about it (null if it was never listed by its host's platform).
    async fn discovery(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GqlDiscovery>> {
        let id = self.id;
        let record = ctx.data::<Engine>()?.store().run(move |s| s.discovery(id)).await.api()?;
        Ok(record.map(GqlDiscovery))
    }
    /// Who currently holds it up: nodes that depend on it or run on it and may be running.
    async fn held_by(&self) -> Vec<GqlNode> {
        let seen = &self.view.seen;
        self.view
            .topology
            .users(self.id, |u| seen.get(&u).is_none_or(|s| s.may_be_running()))
            .into_iter()
            .map(|c| self.view.node(c))
            .collect()
    }
}

/// A cascade: one start or stop request and its steps.
pub struct GqlCascade(pub CascadeRecord);

#[Object(name = "Cascade")]
impl GqlCascade {
    /// Its id (`cascade:N`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The node asked for (null if it was deleted since).
    async fn node(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GqlNode>> {
        let view = View::load(ctx.data::<Engine>()?).await?;
        Ok(view.topology.node(self.0.node).is_some().then(|| view.node(self.0.node)))
    }
    /// The node's name when the cascade was requested.
    async fn node_name(&self) -> &str {
        &self.0.node_name
    }
    /// Start or stop.
    async fn action(&self) -> GqlAction {
        self.0.action.into()
    }
    /// Where it is.
    async fn status(&self) -> GqlCascadeStatus {
        self.0.status.into()
    }
    /// Steps finished.
    async fn current_step(&self) -> i32 {
        self.0.current_step as i32
    }
    /// Steps planned.
    async fn total_steps(&self) -> i32 {
        self.0.total_steps as i32
    }
    /// The step that failed.
    async fn failed_step(&self) -> Option<i32> {
        self.0.failed_step.map(|s| s as i32)
    }
    /// Stable error code when it did not complete.
    async fn error_code(&self) -> Option<&str> {
        self.0.error_code.map(|c| c.as_str())
    }
    /// Human error message.
    async fn error_message(&self) -> Option<&str> {
        self.0.error_message.as_deref()
    }
    /// The cascade this one re-runs.
    async fn rerun_of(&self) -> Option<ID> {
        self.0.rerun_of.map(|c| ID(c.to_string()))
    }
    /// Accepted at (RFC 3339).
    async fn created_at(&self) -> String {
        time(self.0.created_at_ms)
    }
    /// Began at.
    async fn started_at(&self) -> Option<String> {
        self.0.started_at_ms.map(time)
    }
    /// Ended at.
    async fn completed_at(&self) -> Option<String> {
        self.0.completed_at_ms.map(time)
    }
    /// Its steps, in plan order.
    async fn steps(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GqlStep>> {
        let id = self.0.id;
        let steps = ctx.data::<Engine>()?.store().run(move |s| s.steps(id)).await.api()?;
        Ok(steps.into_iter().map(GqlStep).collect())
    }
}

/// One step of a cascade.
pub struct GqlStep(pub StepRecord);

#[Object(name = "Step")]
impl GqlStep {
    /// Index in the plan.
    async fn index(&self) -> i32 {
        self.0.index as i32
    }
    /// The node.
    async fn node(&self) -> ID {
        ID(self.0.node.to_string())
    }
    /// Its name.
    async fn node_name(&self) -> &str {
        &self.0.node_name
    }
    /// Start or stop.
    async fn action(&self) -> GqlAction {
        self.0.action.into()
    }
    /// Why it is in the plan.
    async fn role(&self) -> GqlRole {
        self.0.role.into()
    }
    /// Steps it waited for.
    async fn after(&self) -> Vec<i32> {
        self.0.after.iter().map(|a| *a as i32).collect()
    }
    /// Where it is.
    async fn status(&self) -> GqlStepStatus {
        self.0.status.into()
    }
    /// Why it was skipped or joined.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// Error code if it failed.
    async fn error_code(&self) -> Option<&str> {
        self.0.error_code.map(|c| c.as_str())
    }
    /// Error message if it failed.
    async fn error_message(&self) -> Option<&str> {
        self.0.error_message.as_deref()
    }
    /// Began at.
    async fn started_at(&self) -> Option<String> {
        self.0.started_at_ms.map(time)
    }
    /// Ended at.
    async fn completed_at(&self) -> Option<String> {
        self.0.completed_at_ms.map(time)
    }
}

/// A shutdown proposal: a dependency nobody uses any more, whose shutdown awaits a decision.
pub struct GqlProposal(pub ProposalRecord);

#[Object(name = "Proposal")]
impl GqlProposal {
    /// Its id (`proposal:N`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The node.
    async fn node(&self) -> ID {
        ID(self.0.node.to_string())
    }
    /// Its name.
    async fn node_name(&self) -> &str {
        &self.0.node_name
    }
    /// The cascade whose re-evaluation proposed it.
    async fn cascade(&self) -> Option<ID> {
        self.0.cascade.map(|c| ID(c.to_string()))
    }
    /// Why.
    async fn reason(&self) -> &str {
        &self.0.reason
    }
    /// Decision.
    async fn status(&self) -> GqlProposalStatus {
        self.0.status.into()
    }
    /// Proposed at.
    async fn created_at(&self) -> String {
        time(self.0.created_at_ms)
    }
    /// Decided at.
    async fn resolved_at(&self) -> Option<String> {
        self.0.resolved_at_ms.map(time)
    }
}

/// One step of a plan.
#[derive(SimpleObject)]
#[graphql(name = "PlanStep")]
pub struct GqlPlanStep {
    /// Index in the plan.
    pub id: i32,
    /// The node.
    pub node: ID,
    /// Its name.
    pub node_name: String,
    /// Start or stop.
    pub action: GqlAction,
    /// Steps that must be done first.
    pub after: Vec<i32>,
    /// Why it is there.
    pub role: GqlRole,
}

/// A node a plan leaves alone, and why.
#[derive(SimpleObject)]
#[graphql(name = "Decision")]
pub struct GqlDecision {
    /// The node.
    pub node: ID,
    /// Its name.
    pub node_name: String,
    /// Why.
    pub reason: String,
}

/// The dry run of a cascade.
#[derive(SimpleObject)]
#[graphql(name = "Plan")]
pub struct GqlPlan {
    /// The node asked for.
    pub target: ID,
    /// Its name.
    pub target_name: String,
    /// Start or stop.
    pub action: GqlAction,
    /// The steps, deepest first.
    pub steps: Vec<GqlPlanStep>,
    /// Nodes that need nothing.
    pub skipped: Vec<GqlDecision>,
    /// Dependencies kept on, with the user.
    pub kept: Vec<GqlDecision>,
    /// Dependencies whose shutdown would be proposed.
    pub proposed: Vec<GqlDecision>,
    /// Roughly how long (ms): observed durations where known, timeouts otherwise.
    pub estimate_ms: f64,
    /// At most how long (ms) if every step took its full timeout.
    pub worst_case_ms: f64,
}

impl GqlPlan {
    pub(crate) fn new(t: &Topology, p: &wakehub_core::plan::Plan) -> Self {
        let decisions = |list: &[wakehub_core::plan::Decision]| {
            list.iter()
                .map(|d| GqlDecision {
                    node: ID(d.node.to_string()),
                    node_name: t.name_of(d.node),
                    reason: d.reason.clone(),
                })
                .collect()
        };
        GqlPlan {
            target: ID(p.target.to_string()),
            target_name: t.name_of(p.target),
            action: p.action.into(),
            steps: p
                .steps
                .iter()
                .map(|s| GqlPlanStep {
                    id: s.id as i32,
                    node: ID(s.node.to_string()),
                    node_name: t.name_of(s.node),
                    action: s.action.into(),
                    after: s.after.iter().map(|a| *a as i32).collect(),
                    role: s.role.into(),
                })
                .collect(),
            skipped: decisions(&p.skipped),
            kept: decisions(&p.kept),
            proposed: decisions(&p.proposed),
            estimate_ms: p.estimate.as_millis() as f64,
            worst_case_ms: p.worst_case.as_millis() as f64,
        }
    }
}

/// What an import changed, by node name.
#[derive(SimpleObject)]
#[graphql(name = "ImportSummary")]
pub struct GqlImportSummary {
    /// Created.
    pub added: Vec<String>,
    /// Changed.
    pub updated: Vec<String>,
    /// Deleted (no longer in the file).
    pub removed: Vec<String>,
    /// Left as they were.
    pub unchanged: Vec<String>,
}

/// `status-change`: a node's observed power state changed.
#[derive(SimpleObject)]
pub struct StatusChange {
    /// The node.
    pub node: ID,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// The new state.
    pub state: GqlPowerState,
}

/// The node a progress event is about.
#[derive(SimpleObject)]
pub struct StepProgress {
    /// The node.
    pub node: ID,
    /// Its name.
    pub name: String,
    /// Start or stop.
    pub action: GqlAction,
    /// Its power state as last seen.
    pub state: GqlPowerState,
    /// The step's status.
    pub step_status: GqlStepStatus,
}

/// `cascade-progress`: a step began or ended.
#[derive(SimpleObject)]
pub struct CascadeProgress {
    /// The cascade.
    pub cascade: ID,
    /// Its target node.
    pub node: ID,
    /// Steps finished so far.
    pub step: i32,
    /// Steps planned.
    pub total_steps: i32,
    /// The step's node.
    pub current: StepProgress,
}

/// `cascade-complete`: every step done.
#[derive(SimpleObject)]
pub struct CascadeComplete {
    /// The cascade.
    pub cascade: ID,
    /// Its target node.
    pub node: ID,
}

/// `cascade-error`: the cascade ended without completing.
#[derive(SimpleObject)]
pub struct CascadeError {
    /// The cascade.
    pub cascade: ID,
    /// Its target node.
    pub node: ID,
    /// `FAILED`, `CANCELLED` or `INTERRUPTED`.
    pub status: GqlCascadeStatus,
    /// The step that failed.
    pub failed_step: Option<i32>,
    /// Stable error code.
    pub code: String,
    /// Human message.
    pub message: String,
}

/// `shutdown-proposed`: a dependency is no longer used and awaits confirmation.
#[derive(SimpleObject)]
pub struct ShutdownProposed {
    /// The proposal.
    pub proposal: ID,
    /// The cascade that proposed it.
    pub cascade: ID,
    /// The node.
    pub node: ID,
    /// Its name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// `node-kept`: a dependency stays on, and why.
#[derive(SimpleObject)]
pub struct NodeKept {
    /// The cascade.
    pub cascade: ID,
    /// The node.
    pub node: ID,
    /// Its name.
    pub name: String,
    /// Why ("used by plex").
    pub reason: String,
}

/// `proposal-resolved`: a proposal was confirmed or dismissed.
#[derive(SimpleObject)]
pub struct ProposalResolved {
    /// The proposal.
    pub proposal: ID,
    /// Its node.
    pub node: ID,
    /// Confirmed (a stop cascade follows) or dismissed.
    pub confirmed: bool,
}

/// `capability-denied`: a connector plugin asked for something its node's configuration
/// does not grant.
#[derive(SimpleObject)]
pub struct CapabilityDenied {
    /// The node.
    pub node: ID,
    /// Its name.
    pub name: String,
    /// The plugin's connector type (`plugin:<name>`).
    pub plugin: String,
    /// What it asked for.
    pub what: String,
}

/// `host-discovered`: a discovery run found new guests on a host or lost some.
#[derive(SimpleObject)]
pub struct HostDiscovered {
    /// The host.
    pub node: ID,
    /// Its name.
    pub name: String,
    /// Node names of the guests seen for the first time.
    pub added: Vec<String>,
    /// Node names of the guests no longer listed.
    pub disappeared: Vec<String>,
}

/// What an event says.
#[derive(Union)]
pub enum EventPayload {
    /// A status change.
    StatusChange(StatusChange),
    /// Progress of a cascade.
    CascadeProgress(CascadeProgress),
    /// A cascade completed.
    CascadeComplete(CascadeComplete),
    /// A cascade ended without completing.
    CascadeError(CascadeError),
    /// A shutdown proposal.
    ShutdownProposed(ShutdownProposed),
    /// A dependency kept on.
    NodeKept(NodeKept),
    /// A proposal decided.
    ProposalResolved(ProposalResolved),
    /// A plugin's request refused.
    CapabilityDenied(CapabilityDenied),
    /// Guests found or lost on a host.
    HostDiscovered(HostDiscovered),
}

fn id<T: std::fmt::Display>(v: T) -> ID {
    ID(v.to_string())
}

/// A journal event.
pub struct GqlEvent(pub events::Event);

#[Object(name = "Event")]
impl GqlEvent {
    /// Monotonic id (`event:N`): subscribe with `after` to resume after it.
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// When it happened (RFC 3339).
    async fn at(&self) -> String {
        time(self.0.at_ms)
    }
    /// `status-change`, `cascade-progress`, `cascade-complete`, `cascade-error`,
    /// `shutdown-proposed`, `node-kept`, `proposal-resolved`, `capability-denied` or
    /// `host-discovered`.
    async fn kind(&self) -> &'static str {
        self.0.kind.name()
    }
    /// The cascade it belongs to.
    async fn cascade(&self) -> Option<ID> {
        self.0.kind.cascade().map(id)
    }
    /// The node it is about.
    async fn node(&self) -> Option<ID> {
        self.0.kind.node().map(id)
    }
    /// The details.
    async fn payload(&self) -> EventPayload {
        match &self.0.kind {
            EventKind::StatusChange { node, name, kind, state } => EventPayload::StatusChange(StatusChange {
                node: id(node),
                name: name.clone(),
                kind: kind.clone(),
                state: (*state).into(),
            }),
            EventKind::CascadeProgress { cascade, node, step, total_steps, current } => {
                EventPayload::CascadeProgress(CascadeProgress {
                    cascade: id(cascade),
                    node: id(node),
                    step: *step as i32,
                    total_steps: *total_steps as i32,
                    current: StepProgress {
                        node: id(current.node),
                        name: current.name.clone(),
                        action: current.action.into(),
                        state: current.state.into(),
                        step_status: current.step_status.into(),
                    },
                })
            }
            EventKind::CascadeComplete { cascade, node } => {
                EventPayload::CascadeComplete(CascadeComplete { cascade: id(cascade), node: id(node) })
            }
            EventKind::CascadeError { cascade, node, status, failed_step, code, message } => {
                EventPayload::CascadeError(CascadeError {
                    cascade: id(cascade),
                    node: id(node),
                    status: (*status).into(),
                    failed_step: failed_step.map(|s| s as i32),
                    code: code.as_str().to_owned(),
                    message: message.clone(),
                })
            }
            EventKind::ShutdownProposed { proposal, cascade, node, name, reason } => {
                EventPayload::ShutdownProposed(ShutdownProposed {
                    proposal: id(proposal),
                    cascade: id(cascade),
                    node: id(node),
                    name: name.clone(),
                    reason: reason.clone(),
                })
            }
            EventKind::NodeKept { cascade, node, name, reason } => EventPayload::NodeKept(NodeKept {
                cascade: id(cascade),
                node: id(node),
                name: name.clone(),
                reason: reason.clone(),
            }),
            EventKind::ProposalResolved { proposal, node, confirmed } => {
                EventPayload::ProposalResolved(ProposalResolved {
                    proposal: id(proposal),
                    node: id(node),
                    confirmed: *confirmed,
                })
            }
            EventKind::CapabilityDenied { node, name, plugin, what } => {
                EventPayload::CapabilityDenied(CapabilityDenied {
                    node: id(node),
                    name: name.clone(),
                    plugin: plugin.clone(),
                    what: what.clone(),
                })
            }
            EventKind::HostDiscovered { node, name, added, disappeared } => {
                EventPayload::HostDiscovered(HostDiscovered {
                    node: id(node),
                    name: name.clone(),
                    added: added.clone(),
                    disappeared: disappeared.clone(),
                })
            }
            _ => EventPayload::CascadeComplete(CascadeComplete { cascade: id("unknown"), node: id("unknown") }),
        }
    }
}

/// What a host's platform reported about a guest.
pub struct GqlDiscovery(pub DiscoveryRecord);

#[Object(name = "Discovery")]
impl GqlDiscovery {
    /// The connector that listed it (`proxmox`, `docker`).
    async fn source(&self) -> &str {
        &self.0.source
    }
    /// Its identity on the host (`qemu/100`, `lxc/101`, `container/paperless`).
    async fn key(&self) -> &str {
        &self.0.key
    }
    /// Everything the API said: vmid or container id, type, status, image, ports, tags or
    /// labels.
    async fn details(&self) -> Json<serde_json::Value> {
        Json(self.0.details.clone())
    }
    /// The power state the platform reported then.
    async fn status(&self) -> GqlPowerState {
        self.0.status.into()
    }
    /// First listed.
    async fn first_seen(&self) -> String {
        time(self.0.first_seen_ms)
    }
    /// Last listed.
    async fn last_seen(&self) -> String {
        time(self.0.last_seen_ms)
    }
    /// When the platform stopped listing it (null while it is listed).
    async fn gone_at(&self) -> Option<String> {
        self.0.gone_at_ms.map(time)
    }
}

/// A guest one discovery run found.
pub struct GqlDiscoveredGuest {
    view: View,
    guest: DiscoveredNode,
}

#[Object(name = "DiscoveredGuest")]
impl GqlDiscoveredGuest {
    /// The node that stands for it (discovered, or configured and linked).
    async fn node(&self) -> Option<GqlNode> {
        self.view.topology.node(self.guest.node).is_some().then(|| self.view.node(self.guest.node))
    }
    /// Its identity on the host.
    async fn key(&self) -> &str {
        &self.guest.key
    }
    /// Configured (adopted or written by hand) or only discovered.
    async fn state(&self) -> GqlNodeState {
        match self.guest.state {
            NodeState::Discovered => GqlNodeState::Discovered,
            _ => GqlNodeState::Configured,
        }
    }
    /// The power state the platform reported.
    async fn status(&self) -> GqlPowerState {
        self.guest.status.into()
    }
}

/// A guest the platform listed before and no longer does.
pub struct GqlDisappeared {
    view: View,
    gone: Disappeared,
}

#[Object(name = "DisappearedGuest")]
impl GqlDisappeared {
    /// Its node name.
    async fn name(&self) -> &str {
        &self.gone.name
    }
    /// Its identity on the host.
    async fn key(&self) -> &str {
        &self.gone.key
    }
    /// The node, when it stays (configured, or still used); null when the discovered node
    /// was removed.
    async fn kept(&self) -> Option<GqlNode> {
        self.gone.kept.filter(|k| self.view.topology.node(*k).is_some()).map(|k| self.view.node(k))
    }
}

/// What one discovery run changed.
#[derive(SimpleObject)]
#[graphql(name = "DiscoveryReport")]
pub struct GqlDiscoveryReport {
    /// Guests seen for the first time, now discovered nodes (adopt them with `adoptNode`).
    pub added: Vec<GqlDiscoveredGuest>,
    /// Guests already known, refreshed.
    pub updated: Vec<GqlDiscoveredGuest>,
    /// Guests no longer listed.
    pub disappeared: Vec<GqlDisappeared>,
}

impl GqlDiscoveryReport {
    pub(crate) fn new(view: &View, report: DiscoveryReport) -> Self {
        let guests = |v: Vec<DiscoveredNode>| {
            v.into_iter().map(|guest| GqlDiscoveredGuest { view: view.clone(), guest }).collect()
        };
        GqlDiscoveryReport {
            added: guests(report.added),
            updated: guests(report.updated),
            disappeared: report
                .disappeared
                .into_iter()
                .map(|gone| GqlDisappeared { view: view.clone(), gone })
                .collect(),
        }
    }
}

/// A loaded connector plugin.
#[cfg(feature = "plugins")]
pub struct GqlPlugin(pub wakehub_core::plugin::PluginInfo);

#[cfg(feature = "plugins")]
#[Object(name = "Plugin")]
impl GqlPlugin {
    /// Its name: nodes use it as connector type `plugin:<name>`.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Its version.
    async fn version(&self) -> &str {
        &self.0.version
    }
    /// The WIT version it targets.
    async fn wit_version(&self) -> &str {
        &self.0.wit_version
    }
    /// The node kinds it defines.
    async fn kinds(&self) -> &[String] {
        &self.0.kinds
    }
    /// The capabilities it imports (`http`, `ssh`, `wol`, `tcp`, `log`, `clock`).
    async fn capabilities(&self) -> &[String] {
        &self.0.capabilities
    }
    /// The JSON Schema of its configuration.
    async fn config_schema(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.config_schema).unwrap_or(serde_json::Value::Null))
    }
    /// `READY`, or `QUARANTINED` after repeated faults.
    async fn status(&self) -> &'static str {
        if self.0.quarantined { "QUARANTINED" } else { "READY" }
    }
    /// Faults (traps, timeouts, memory) since it was loaded.
    async fn faults(&self) -> u32 {
        self.0.faults
    }
}
