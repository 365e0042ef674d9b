//! Journal events: the `Event` type, its `EventPayload` union (one object per event kind) and
//! the `events` query. The subscriptions (`subscription.rs`) stream the same `Event`.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object, SimpleObject, Union};
use wakehub_core::engine::Engine;
use wakehub_core::events::{self, EventKind};
use wakehub_core::model::{ErrorCode, EventId};
use wakehub_core::store::EventQuery;

use super::enums::{GqlAction, GqlCascadeStatus, GqlPowerState, GqlStepStatus};
use super::error::{ApiResultExt, api_error};
use super::shared::{View, page, parse_id, time};

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
    /// Start or stop.
    pub action: GqlAction,
}

/// One step of a plan.
#[derive(SimpleObject)]
pub struct PlannedStep {
    /// Its index in the plan.
    pub index: i32,
    /// The node.
    pub node: ID,
    /// Its name.
    pub name: String,
    /// Start or stop.
    pub action: GqlAction,
    /// The steps it waits for.
    pub after: Vec<i32>,
}

/// `cascade-planned`: the cascade began, with its plan.
#[derive(SimpleObject)]
pub struct CascadePlanned {
    /// The cascade.
    pub cascade: ID,
    /// Its target node.
    pub node: ID,
    /// Start or stop.
    pub action: GqlAction,
    /// How many steps.
    pub total_steps: i32,
    /// The steps, in plan order.
    pub steps: Vec<PlannedStep>,
}

/// `cascade-error`: the cascade ended without completing.
#[derive(SimpleObject)]
pub struct CascadeError {
    /// The cascade.
    pub cascade: ID,
    /// Its target node.
    pub node: ID,
    /// Start or stop.
    pub action: GqlAction,
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

/// `power-refused`: a caller asked for a power action its role or scope does not allow.
#[derive(SimpleObject)]
pub struct PowerRefused {
    /// The node asked for.
    pub node: ID,
    /// Its name.
    pub name: String,
    /// Start or stop.
    pub action: GqlAction,
    /// Who asked (an API token's name).
    pub actor: String,
    /// Why (`FORBIDDEN`).
    pub code: String,
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

/// `machine-refreshed`: a machine's state was refreshed (or it was found asleep, or could
/// not be asked).
#[derive(SimpleObject)]
pub struct MachineRefreshed {
    /// The machine.
    pub node: ID,
    /// Its name.
    pub name: String,
    /// `ok`, `asleep` or `failed`.
    pub outcome: String,
    /// Upgrades pending, as now known.
    pub updates: u32,
    /// Of which security updates.
    pub security_updates: u32,
    /// Whether a reboot is required.
    pub reboot_required: bool,
    /// Why it failed (`UNREACHABLE`, `AUTH_FAILED`…).
    pub code: Option<String>,
    /// One line for people.
    pub summary: String,
    /// Who asked.
    pub actor: String,
}

/// `machine-execution`: an action on a machine was queued, began or ended.
#[derive(SimpleObject)]
pub struct MachineExecution {
    /// The machine.
    pub node: ID,
    /// Its name.
    pub name: String,
    /// The execution (`execution:N`).
    pub execution: ID,
    /// `upgrade`, `reboot`, `docker-prune`, `command:NAME`.
    pub action: String,
    /// `queued`, `running`, `succeeded`, `failed`, `interrupted`, `cancelled`.
    pub status: String,
    /// Why it failed.
    pub error_kind: Option<String>,
    /// Who asked.
    pub actor: String,
}

/// `maintenance`: a step of a maintenance run.
#[derive(SimpleObject)]
pub struct MaintenanceProgress {
    /// The run (`maintenance-run:N`).
    pub run: ID,
    /// Its window (none: an ad-hoc selection).
    pub window: Option<String>,
    /// `plan`, `wake`, `refresh`, `upgrade`, `stop-guests`, `reboot`, `start-guests`,
    /// `verify`, `restore`, `done`.
    pub phase: String,
    /// The machine (or node) the step is about.
    pub node: Option<ID>,
    /// Its name.
    pub name: Option<String>,
    /// `running`, `done`, `skipped`, `failed`; for `done`, the run's status.
    pub status: String,
    /// What happened, for people.
    pub message: String,
}

/// `stack-command`: a stack command was queued, began or ended.
#[derive(SimpleObject)]
pub struct StackCommandProgress {
    /// The stack.
    pub node: ID,
    /// Its name.
    pub name: String,
    /// The command (`stack-command:N`).
    pub command: ID,
    /// `apply`, `rollback`, `stop`, `remove`, `refresh`.
    pub kind: String,
    /// The version it converges to.
    pub version: Option<i64>,
    /// `pending`, `running`, `done`, `failed`, `cancelled`.
    pub status: String,
    /// Its error code, when it failed.
    pub code: Option<String>,
    /// Who asked.
    pub actor: String,
}

/// An event of a kind this API version does not describe (a newer library).
#[derive(SimpleObject)]
pub struct OtherEvent {
    /// The event's kind.
    pub kind: String,
}

/// What an event says.
#[derive(Union)]
pub enum EventPayload {
    /// A status change.
    StatusChange(StatusChange),
    /// A cascade's plan, as it begins.
    CascadePlanned(CascadePlanned),
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
    /// A power action refused to its caller.
    PowerRefused(PowerRefused),
    /// A machine refreshed.
    MachineRefreshed(MachineRefreshed),
    /// An action on a machine queued, begun or ended.
    MachineExecution(MachineExecution),
    /// A step of a maintenance run.
    MaintenanceProgress(MaintenanceProgress),
    /// A stack command queued, begun or ended.
    StackCommandProgress(StackCommandProgress),
    /// A kind this API version does not describe.
    OtherEvent(OtherEvent),
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
    /// `status-change`, `cascade-planned`, `cascade-progress`, `cascade-complete`,
    /// `cascade-error`, `shutdown-proposed`, `node-kept`, `proposal-resolved`,
    /// `capability-denied`, `host-discovered`, `power-refused`, `machine-refreshed`,
    /// `machine-execution` or `maintenance`.
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
            EventKind::CascadePlanned { cascade, node, action, steps } => {
                EventPayload::CascadePlanned(CascadePlanned {
                    cascade: id(cascade),
                    node: id(node),
                    action: (*action).into(),
                    total_steps: steps.len() as i32,
                    steps: steps
                        .iter()
                        .enumerate()
                        .map(|(i, s)| PlannedStep {
                            index: i as i32,
                            node: id(s.node),
                            name: s.name.clone(),
                            action: s.action.into(),
                            after: s.after.iter().map(|a| *a as i32).collect(),
                        })
                        .collect(),
                })
            }
            EventKind::CascadeComplete { cascade, node, action } => EventPayload::CascadeComplete(CascadeComplete {
                cascade: id(cascade),
                node: id(node),
                action: (*action).into(),
            }),
            EventKind::CascadeError { cascade, node, action, status, failed_step, code, message } => {
                EventPayload::CascadeError(CascadeError {
                    cascade: id(cascade),
                    node: id(node),
                    action: (*action).into(),
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
            EventKind::PowerRefused { node, name, action, actor, code } => EventPayload::PowerRefused(PowerRefused {
                node: id(node),
                name: name.clone(),
                action: (*action).into(),
                actor: actor.clone(),
                code: code.as_str().to_owned(),
            }),
            EventKind::MachineRefreshed {
                node,
                name,
                outcome,
                updates,
                security_updates,
                reboot_required,
                code,
                summary,
                actor,
            } => EventPayload::MachineRefreshed(MachineRefreshed {
                node: id(node),
                name: name.clone(),
                outcome: outcome.clone(),
                updates: *updates,
                security_updates: *security_updates,
                reboot_required: *reboot_required,
                code: code.map(|c| c.as_str().to_owned()),
                summary: summary.clone(),
                actor: actor.clone(),
            }),
            EventKind::MachineExecution { node, name, execution, action, status, error_kind, actor } => {
                EventPayload::MachineExecution(MachineExecution {
                    node: id(node),
                    name: name.clone(),
                    execution: ID(format!("execution:{execution}")),
                    action: action.clone(),
                    status: status.clone(),
                    error_kind: error_kind.clone(),
                    actor: actor.clone(),
                })
            }
            EventKind::Maintenance { run, window, phase, node, name, status, message } => {
                EventPayload::MaintenanceProgress(MaintenanceProgress {
                    run: ID(format!("maintenance-run:{run}")),
                    window: window.clone(),
                    phase: phase.clone(),
                    node: node.map(id),
                    name: name.clone(),
                    status: status.clone(),
                    message: message.clone(),
                })
            }
            EventKind::StackCommand { node, name, command, kind, version, status, code, actor } => {
                EventPayload::StackCommandProgress(StackCommandProgress {
                    node: id(node),
                    name: name.clone(),
                    command: ID(format!("stack-command:{command}")),
                    kind: kind.clone(),
                    version: *version,
                    status: status.clone(),
                    code: code.clone(),
                    actor: actor.clone(),
                })
            }
            other => EventPayload::OtherEvent(OtherEvent { kind: other.name().to_owned() }),
        }
    }
}

/// Part of [`Query`](super::Query): `events`.
#[derive(Default)]
pub struct EventsQuery;

#[Object]
impl EventsQuery {
    /// Journal events, oldest first: those after `after` (an event id), optionally about
    /// one node, of some kinds, in a time range. With `newestFirst`, newest first: page
    /// back with `before` (the last id of the previous page).
    #[graphql(complexity = "first.unwrap_or(50).clamp(1, 500) as usize * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<ID>,
        node: Option<ID>,
        first: Option<i32>,
        #[graphql(desc = "Only events before this one (an event id).")] before: Option<ID>,
        #[graphql(desc = "Only these kinds (`status-change`, `cascade-error`…).")] kinds: Option<Vec<String>>,
        #[graphql(desc = "Only events at or after this time (RFC 3339).")] since: Option<String>,
        #[graphql(desc = "Only events before this time (RFC 3339).")] until: Option<String>,
        #[graphql(desc = "Newest first.")] newest_first: Option<bool>,
    ) -> async_graphql::Result<Connection<String, GqlEvent>> {
        let engine = ctx.data::<Engine>()?;
        let limit = page(ctx, first)?;
        let event_id = |a: Option<ID>| -> async_graphql::Result<Option<EventId>> {
            a.map(|a| {
                parse_id(&a, "event")
                    .map(EventId::new)
                    .ok_or_else(|| api_error(ErrorCode::Validation, format!("bad event id `{}`", a.0)))
            })
            .transpose()
        };
        let (after, before) = (event_id(after)?, event_id(before)?);
        let kinds = kinds.unwrap_or_default();
        if let Some(k) = kinds.iter().find(|k| !EventKind::NAMES.contains(&k.as_str())) {
            return Err(api_error(
                ErrorCode::Validation,
                format!("unknown event kind `{k}` (known: {})", EventKind::NAMES.join(", ")),
            ));
        }
        let instant = |t: Option<String>, what: &str| -> async_graphql::Result<Option<i64>> {
            t.map(|t| {
                humantime::parse_rfc3339_weak(&t)
                    .ok()
                    .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as i64)
                    .ok_or_else(|| api_error(ErrorCode::Validation, format!("`{what}`: `{t}` is not an RFC 3339 time")))
            })
            .transpose()
        };
        let (since_ms, until_ms) = (instant(since, "since")?, instant(until, "until")?);
        engine.store().run(move |s| s.check_replay(after)).await.api()?;
        let view = View::load(ctx).await?;
        let node = node.map(|n| view.require(&n)).transpose()?;
        let newest_first = newest_first.unwrap_or(false);
        let query = EventQuery { after, before, node, kinds, since_ms, until_ms, newest_first, limit: limit + 1 };
        let mut events = engine.store().run(move |s| s.find_events(&query)).await.api()?;
        let more = events.len() > limit;
        events.truncate(limit);
        events.retain(|e| view.sees(e));
        let mut conn = Connection::new(after.is_some() || before.is_some(), more);
        conn.edges.extend(events.into_iter().map(|e| Edge::new(e.id.to_string(), GqlEvent(e))));
        Ok(conn)
    }
}
