//! The journal's events: what happened, in the order it happened. Every event is written to
//! the store (which gives it its monotonic [`EventId`]) before it is published on the bus.

use crate::model::{Action, CascadeId, ErrorCode, EventId, NodeId, PowerState, ProposalId};

/// A journal event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// Monotonic id: "everything after N" is exactly the events that happened after N.
    pub id: EventId,
    /// When it was recorded, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// What happened.
    pub kind: EventKind,
}

/// The status of a cascade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CascadeStatus {
    /// Accepted, not yet running.
    Pending,
    /// Running.
    InProgress,
    /// Every step done.
    Completed,
    /// A step failed.
    Failed,
    /// Cancelled by a user.
    Cancelled,
    /// The process stopped while it ran (found at the next start-up).
    Interrupted,
}

impl CascadeStatus {
    /// The snake_case name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CascadeStatus::Pending => "pending",
            CascadeStatus::InProgress => "in_progress",
            CascadeStatus::Completed => "completed",
            CascadeStatus::Failed => "failed",
            CascadeStatus::Cancelled => "cancelled",
            CascadeStatus::Interrupted => "interrupted",
        }
    }
    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        use CascadeStatus::*;
        [Pending, InProgress, Completed, Failed, Cancelled, Interrupted].into_iter().find(|c| c.as_str() == s)
    }
    /// Whether the cascade is over.
    pub fn is_final(self) -> bool {
        !matches!(self, CascadeStatus::Pending | CascadeStatus::InProgress)
    }
}

/// The status of one step of a cascade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StepStatus {
    /// Waiting for its prerequisites.
    Pending,
    /// Its power operation is in flight.
    Running,
    /// The node reached the desired state.
    Done,
    /// Nothing to do after all (already in the desired state, or kept because it is used).
    Skipped,
    /// Another cascade's identical operation was joined instead of issuing a second one.
    Joined,
    /// The operation failed or timed out.
    Failed,
    /// Never begun: the cascade failed or was cancelled first.
    Cancelled,
    /// The process stopped while it ran.
    Interrupted,
}

impl StepStatus {
    /// The snake_case name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Done => "done",
            StepStatus::Skipped => "skipped",
            StepStatus::Joined => "joined",
            StepStatus::Failed => "failed",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Interrupted => "interrupted",
        }
    }
    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        use StepStatus::*;
        [Pending, Running, Done, Skipped, Joined, Failed, Cancelled, Interrupted].into_iter().find(|c| c.as_str() == s)
    }
}

/// The node a progress event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CurrentNode {
    /// Its id.
    pub node: NodeId,
    /// Its name.
    pub name: String,
    /// Start or stop.
    pub action: Action,
    /// Its power state as last seen (`starting`, then `on`…).
    pub state: PowerState,
    /// The step's status.
    pub step_status: StepStatus,
}

/// One step of a plan, as a `cascade-planned` event carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlannedStep {
    /// The node.
    pub node: NodeId,
    /// Its name.
    pub name: String,
    /// Start or stop.
    pub action: Action,
    /// The steps (indexes) it waits for.
    pub after: Vec<usize>,
}

impl PlannedStep {
    /// A planned step.
    pub fn new(node: NodeId, name: String, action: Action, after: Vec<usize>) -> Self {
        PlannedStep { node, name, action, after }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// `status-change`: a node's observed power state changed.
    StatusChange {
        /// The node.
        node: NodeId,
        /// Its name.
        name: String,
        /// Its kind.
        kind: String,
        /// The new state.
        state: PowerState,
    },
    /// `cascade-progress`: a step began or ended.
    CascadeProgress {
        /// The cascade.
        cascade: CascadeId,
        /// The cascade's target node.
        node: NodeId,
        /// Steps finished so far.
        step: usize,
        /// Steps in the plan.
        total_steps: usize,
        /// The step's node.
        current: CurrentNode,
    },
    /// `cascade-planned`: the cascade began, with its plan.
    CascadePlanned {
        /// The cascade.
        cascade: CascadeId,
        /// Its target node.
        node: NodeId,
        /// Start or stop.
        action: Action,
        /// Its steps, in plan order.
        steps: Vec<PlannedStep>,
    },
    /// `cascade-complete`: every step done.
    CascadeComplete {
        /// The cascade.
        cascade: CascadeId,
        /// Its target node.
        node: NodeId,
        /// Start or stop.
        action: Action,
    },
    /// `cascade-error`: the cascade ended without completing (failed, cancelled,
    /// interrupted).
    CascadeError {
        /// The cascade.
        cascade: CascadeId,
        /// Its target node.
        node: NodeId,
        /// Start or stop.
        action: Action,
        /// How it ended.
        status: CascadeStatus,
        /// The step that failed, if one did.
        failed_step: Option<usize>,
        /// Stable error code (`TIMEOUT`, `CANCELLED`, `INTERRUPTED`, …).
        code: ErrorCode,
        /// Human message.
        message: String,
    },
    /// `shutdown-proposed`: a dependency is no longer used and waits for confirmation.
    ShutdownProposed {
        /// The proposal.
        proposal: ProposalId,
        /// The cascade whose re-evaluation proposed it.
        cascade: CascadeId,
        /// The node.
        node: NodeId,
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
    /// `node-kept`: a node was left on (with the reason, e.g. "used by plex").
    NodeKept {
        /// The cascade.
        cascade: CascadeId,
        /// The node.
        node: NodeId,
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
    /// `proposal-resolved`: a shutdown proposal was confirmed or dismissed.
    ProposalResolved {
        /// The proposal.
        proposal: ProposalId,
        /// Its node.
        node: NodeId,
        /// Confirmed (a stop cascade follows) or dismissed.
        confirmed: bool,
    },
    /// `host-discovered`: a discovery run of a host found new guests or lost some.
    HostDiscovered {
        /// The host.
        node: NodeId,
        /// Its name.
        name: String,
        /// Node names of the guests seen for the first time.
        added: Vec<String>,
        /// Node names of the guests no longer listed.
        disappeared: Vec<String>,
    },
    /// `power-refused`: a caller asked for a power action its role or scope does not allow.
    PowerRefused {
        /// The node asked for.
        node: NodeId,
        /// Its name.
        name: String,
        /// Start or stop (a confirmed proposal is a stop).
        action: Action,
        /// Who asked (a token's or user's name).
        actor: String,
        /// Why (`FORBIDDEN`…).
        code: ErrorCode,
    },
    /// `capability-denied`: a connector plugin asked for something its node's configuration
    /// does not grant (a host, a credential).
    CapabilityDenied {
        /// The node the call was about.
        node: NodeId,
        /// Its name.
        name: String,
        /// The plugin's connector type (`plugin:<name>`).
        plugin: String,
        /// What it asked for.
        what: String,
    },
    /// `machine-refreshed`: a machine's state was refreshed over SSH (or found asleep, or
    /// could not be).
    MachineRefreshed {
        /// The machine.
        node: NodeId,
        /// Its name.
        name: String,
        /// `ok`, `asleep` or `failed`.
        outcome: String,
        /// Upgrades pending (not held), as now known.
        updates: u32,
        /// Of which security updates.
        security_updates: u32,
        /// Whether a reboot is required.
        reboot_required: bool,
        /// Why it failed (`UNREACHABLE`, `AUTH_FAILED`…).
        code: Option<ErrorCode>,
        /// One line for people (`4 updates (1 security), reboot required`).
        summary: String,
        /// Who asked.
        actor: String,
    },
    /// `machine-execution`: an action on a machine was queued, began or ended.
    MachineExecution {
        /// The machine.
        node: NodeId,
        /// Its name.
        name: String,
        /// The execution's id.
        execution: i64,
        /// `upgrade`, `reboot`, `docker-prune`, `command:NAME`.
        action: String,
        /// `queued`, `running`, `succeeded`, `failed`, `interrupted`, `cancelled`.
        status: String,
        /// Why it failed.
        error_kind: Option<String>,
        /// Who asked.
        actor: String,
    },
    /// `maintenance`: a step of a maintenance run (its beginning, a machine woken,
    /// upgraded, rebooted, put back…, its end).
    Maintenance {
        /// The run.
        run: i64,
        /// Its window (none: an ad-hoc selection).
        window: Option<String>,
        /// `plan`, `wake`, `refresh`, `upgrade`, `stop-guests`, `reboot`, `start-guests`,
        /// `verify`, `restore`, `done`.
        phase: String,
        /// The machine (or node) the step is about.
        node: Option<NodeId>,
        /// Its name.
        name: Option<String>,
        /// `running`, `done`, `skipped`, `failed`; for `done`, the run's status.
        status: String,
        /// What happened, for people.
        message: String,
    },
    /// `stack-command`: a stack command was queued, began or ended.
    StackCommand {
        /// The stack.
        node: NodeId,
        /// Its name.
        name: String,
        /// The command's id.
        command: i64,
        /// `apply`, `rollback`, `stop`, `remove`, `refresh`.
        kind: String,
        /// The version it converges to.
        version: Option<i64>,
        /// `pending`, `running`, `done`, `failed`, `cancelled`.
        status: String,
        /// Its error code, when it failed.
        code: Option<String>,
        /// Who asked.
        actor: String,
    },
}

impl EventKind {
    /// Every kind's name, as [`EventKind::name`] gives it.
    pub const NAMES: [&'static str; 15] = [
        "status-change",
        "cascade-planned",
        "cascade-progress",
        "cascade-complete",
        "cascade-error",
        "shutdown-proposed",
        "node-kept",
        "proposal-resolved",
        "capability-denied",
        "host-discovered",
        "power-refused",
        "machine-refreshed",
        "machine-execution",
        "maintenance",
        "stack-command",
    ];

    /// The kebab-case name (`status-change`, `cascade-progress`, …).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::StatusChange { .. } => "status-change",
            EventKind::CascadePlanned { .. } => "cascade-planned",
            EventKind::CascadeProgress { .. } => "cascade-progress",
            EventKind::CascadeComplete { .. } => "cascade-complete",
            EventKind::CascadeError { .. } => "cascade-error",
            EventKind::ShutdownProposed { .. } => "shutdown-proposed",
            EventKind::NodeKept { .. } => "node-kept",
            EventKind::ProposalResolved { .. } => "proposal-resolved",
            EventKind::CapabilityDenied { .. } => "capability-denied",
            EventKind::HostDiscovered { .. } => "host-discovered",
            EventKind::PowerRefused { .. } => "power-refused",
            EventKind::MachineRefreshed { .. } => "machine-refreshed",
            EventKind::MachineExecution { .. } => "machine-execution",
            EventKind::Maintenance { .. } => "maintenance",
            EventKind::StackCommand { .. } => "stack-command",
        }
    }

    /// The cascade it belongs to, if any.
    pub fn cascade(&self) -> Option<CascadeId> {
        match self {
            EventKind::CascadeProgress { cascade, .. }
            | EventKind::CascadePlanned { cascade, .. }
            | EventKind::CascadeComplete { cascade, .. }
            | EventKind::CascadeError { cascade, .. }
            | EventKind::ShutdownProposed { cascade, .. }
            | EventKind::NodeKept { cascade, .. } => Some(*cascade),
            EventKind::StatusChange { .. }
            | EventKind::ProposalResolved { .. }
            | EventKind::CapabilityDenied { .. }
            | EventKind::PowerRefused { .. }
            | EventKind::MachineRefreshed { .. }
            | EventKind::MachineExecution { .. }
            | EventKind::Maintenance { .. }
            | EventKind::StackCommand { .. }
            | EventKind::HostDiscovered { .. } => None,
        }
    }

    /// The node it is about: the changed node, or the node of the step for progress events.
    pub fn node(&self) -> Option<NodeId> {
        match self {
            EventKind::CascadeProgress { current, .. } => Some(current.node),
            EventKind::StatusChange { node, .. }
            | EventKind::CascadePlanned { node, .. }
            | EventKind::CascadeComplete { node, .. }
            | EventKind::CascadeError { node, .. }
            | EventKind::ShutdownProposed { node, .. }
            | EventKind::NodeKept { node, .. }
            | EventKind::ProposalResolved { node, .. }
            | EventKind::CapabilityDenied { node, .. }
            | EventKind::PowerRefused { node, .. }
            | EventKind::MachineRefreshed { node, .. }
            | EventKind::MachineExecution { node, .. }
            | EventKind::StackCommand { node, .. }
            | EventKind::HostDiscovered { node, .. } => Some(*node),
            EventKind::Maintenance { node, .. } => *node,
        }
    }
}
