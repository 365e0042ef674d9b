//! The enums several resources share: power states, actions, node states, cascade and step
//! statuses, step roles. Each converts from (and where the API takes it as input, to) the
//! core's type.

use async_graphql::Enum;
use wakehub_core::connector::PowerState;
use wakehub_core::events::{CascadeStatus, StepStatus};
use wakehub_core::model::Action;
use wakehub_core::plan::Role;

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
