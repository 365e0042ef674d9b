//! Stacks: compose files as immutable numbered versions (`saveStackVersion`, `Stack.versions`,
//! `stackDiff`), their commands through the durable queue (`runStackCommand`,
//! `cancelStackCommand`, `Stack.commands`, `stackCommand`) and what their engine runs
//! (`Stack.services`, `Stack.drift`). The live side is in `subscription`: `stackCommandLog`
//! and `stackContainerEvents`.

use async_graphql::{Context, Enum, ID, Json, Object, SimpleObject};
use wakehub_core::connector::stack::{ServiceState, StackState};
use wakehub_core::connector::{ConnectorError, ErrorCode};
use wakehub_core::engine::{Engine, StackView};
use wakehub_core::model::{Kind, NodeId, Role};
use wakehub_core::stack::render;
use wakehub_core::store::{StackCommand, StackCommandKind, StackVersion};

use super::access::{RoleGuard, caller};
use super::error::{ApiResultExt, api_error};
use super::shared::{View, parse_id, time};

/// What a stack command does.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "StackCommandKind")]
pub enum GqlStackCommandKind {
    /// Converge to a version (the latest unless one is named), after a start cascade that
    /// wakes what it runs on.
    Apply,
    /// Converge back to an earlier version, with the image ids it ran with.
    Rollback,
    /// Stop the stack (a stop cascade: what uses it stops first); its containers are kept.
    Stop,
    /// Stop it and remove its containers and networks (its volumes are kept).
    Remove,
    /// Observe it: each service's state and health, drift from its version.
    Refresh,
}

impl From<GqlStackCommandKind> for StackCommandKind {
    fn from(k: GqlStackCommandKind) -> Self {
        match k {
            GqlStackCommandKind::Apply => StackCommandKind::Apply,
            GqlStackCommandKind::Rollback => StackCommandKind::Rollback,
            GqlStackCommandKind::Stop => StackCommandKind::Stop,
            GqlStackCommandKind::Remove => StackCommandKind::Remove,
            GqlStackCommandKind::Refresh => StackCommandKind::Refresh,
        }
    }
}

/// A service of a stack as its engine runs it.
#[derive(SimpleObject)]
pub struct StackService {
    /// The service.
    pub service: String,
    /// Its container (12 hex digits), if it has one.
    pub container: Option<String>,
    /// `running`, `exited`, `created`, `restarting`, `paused`, `dead`, or `missing`.
    pub state: String,
    /// `healthy`, `unhealthy`, `starting`; null without a health check.
    pub health: Option<String>,
    /// When it started (RFC 3339), while it runs: its uptime.
    pub started_at: Option<String>,
    /// How often the engine restarted it.
    pub restarts: i64,
    /// Its exit status, when it exited.
    pub exit_code: Option<i64>,
    /// The image reference it was written with.
    pub image: Option<String>,
    /// The version that created its container.
    pub version: Option<i64>,
}

impl From<ServiceState> for StackService {
    fn from(s: ServiceState) -> Self {
        StackService {
            service: s.service,
            container: s.container,
            state: s.state,
            health: s.health,
            started_at: s.started_at,
            restarts: s.restarts,
            exit_code: s.exit_code,
            image: s.image,
            version: s.version,
        }
    }
}

/// A change of one of a stack's containers, as its engine reported it.
#[derive(SimpleObject)]
pub struct StackContainerEvent {
    /// The service.
    pub service: String,
    /// The container (12 hex digits).
    pub container: String,
    /// `create`, `start`, `die`, `stop`, `kill`, `destroy`, `restart`, `oom`, `healthy`,
    /// `unhealthy`…
    pub action: String,
    /// The exit code of a `die`.
    pub exit_code: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

impl From<wakehub_core::connector::stack::ContainerEvent> for StackContainerEvent {
    fn from(e: wakehub_core::connector::stack::ContainerEvent) -> Self {
        StackContainerEvent {
            service: e.service,
            container: e.container,
            action: e.action,
            exit_code: e.exit_code,
            at: time(e.time.saturating_mul(1000)),
        }
    }
}

/// A service's image as a version ran it.
#[derive(SimpleObject)]
pub struct StackImage {
    /// The service.
    pub service: String,
    /// The image id (`sha256:…`).
    pub id: String,
}

/// One immutable version of a stack.
pub struct GqlStackVersion(pub StackVersion);

#[Object(name = "StackVersion")]
impl GqlStackVersion {
    /// Its number (1, 2, …).
    async fn number(&self) -> i64 {
        self.0.number
    }
    /// Its identity (two versions with the same digest mean the same).
    async fn digest(&self) -> &str {
        &self.0.digest
    }
    /// The compose file, in WakeHub's canonical form (secret values shown as `********`).
    async fn compose(&self) -> String {
        render(&self.0.compose)
    }
    /// Its services' names.
    async fn services(&self) -> Vec<String> {
        self.0.compose.services.keys().cloned().collect()
    }
    /// The environment values sealed as secrets (`service.VARIABLE`).
    async fn secrets(&self) -> &[String] {
        &self.0.secrets
    }
    /// The image ids it ran with (empty until its first successful apply).
    async fn images(&self) -> Vec<StackImage> {
        self.0
            .images
            .iter()
            .flatten()
            .map(|(service, id)| StackImage { service: service.clone(), id: id.clone() })
            .collect()
    }
    /// Who wrote it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// When (RFC 3339).
    async fn created_at(&self) -> String {
        time(self.0.created_at)
    }
    /// The note given with it.
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
}

/// A command of a stack's queue.
pub struct GqlStackCommand(pub StackCommand);

#[Object(name = "StackCommand")]
impl GqlStackCommand {
    /// `stack-command:N`.
    async fn id(&self) -> ID {
        ID(format!("stack-command:{}", self.0.id))
    }
    /// The stack.
    async fn stack(&self) -> ID {
        ID(self.0.stack.to_string())
    }
    /// What it does.
    async fn kind(&self) -> &'static str {
        self.0.kind.as_str()
    }
    /// The version it converges to (apply, rollback).
    async fn version(&self) -> Option<i64> {
        self.0.version
    }
    /// `pending`, `running`, `done`, `failed` or `cancelled`.
    async fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    /// Who asked.
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    /// Why it waits, while pending (`waiting for `upgrade` (execution 4) on `nas``).
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// When it was queued (RFC 3339).
    async fn queued_at(&self) -> String {
        time(self.0.queued_at)
    }
    /// When it began.
    async fn started_at(&self) -> Option<String> {
        self.0.started_at.map(time)
    }
    /// When it ended.
    async fn finished_at(&self) -> Option<String> {
        self.0.finished_at.map(time)
    }
    /// Its stable error code (`UNHEALTHY`, `ONE_SHOT_FAILED`, `TIMEOUT`, `UNREACHABLE`,
    /// `INTERRUPTED`…).
    async fn error_code(&self) -> Option<&str> {
        self.0.error_code.as_deref()
    }
    /// What failed, for people (with the tail of the container's log).
    async fn error_message(&self) -> Option<&str> {
        self.0.error_message.as_deref()
    }
    /// What it did (JSON: `created`, `kept`, `removed` services, `containers`, `images`;
    /// a refresh's services and drift; a failed apply's `restored`).
    async fn result(&self) -> Option<Json<serde_json::Value>> {
        self.0.result.clone().map(Json)
    }
    /// Its log so far (follow it live with `stackCommandLog`).
    async fn log(&self) -> &str {
        &self.0.log
    }
}

/// Why a stack's engine could not be read.
#[derive(SimpleObject)]
pub struct StackEngineError {
    /// The stable code (`UNREACHABLE` while its machine sleeps, `TIMEOUT`…).
    pub code: String,
    /// For people.
    pub message: String,
}

/// A stack node: its versions, its queue, what its engine runs.
pub struct GqlStack {
    view: StackView,
}

#[Object(name = "Stack")]
impl GqlStack {
    /// The stack node.
    async fn node(&self) -> ID {
        ID(self.view.node.to_string())
    }
    /// Its name.
    async fn name(&self) -> &str {
        &self.view.name
    }
    /// The Docker project name (containers are `PROJECT-SERVICE`).
    async fn project(&self) -> &str {
        &self.view.project
    }
    /// The version it is on (its last successful apply or rollback); null if none.
    async fn current_version(&self) -> Option<i64> {
        self.view.current.map(|c| c.0)
    }
    /// Since when (RFC 3339).
    async fn applied_at(&self) -> Option<String> {
        self.view.current.map(|c| time(c.1))
    }
    /// Its latest version.
    async fn latest_version(&self) -> Option<i64> {
        self.view.latest
    }
    /// Each service as the engine runs it now (empty when its engine cannot be read).
    async fn services(&self) -> Vec<StackService> {
        self.view
            .state
            .as_ref()
            .map(|s| s.services.iter().cloned().map(StackService::from).collect())
            .unwrap_or_default()
    }
    /// What differs from the version it is on (a container stopped or removed by hand, a
    /// changed configuration, a container of no service); the next apply fixes it.
    async fn drift(&self) -> Vec<String> {
        self.view.state.as_ref().map(|s: &StackState| s.drift.clone()).unwrap_or_default()
    }
    /// Why its engine could not be read, if it could not.
    async fn engine_error(&self) -> Option<StackEngineError> {
        self.view
            .state
            .as_ref()
            .err()
            .map(|e: &ConnectorError| StackEngineError { code: e.code.as_str().to_owned(), message: e.message.clone() })
    }
    /// The last lines of a service's output (stdout and stderr; `lines` from 1 to 1,000,
    /// default 100).
    async fn service_log(
        &self,
        ctx: &Context<'_>,
        service: String,
        lines: Option<i32>,
    ) -> async_graphql::Result<String> {
        let lines = usize::try_from(lines.unwrap_or(100).clamp(1, 1000)).unwrap_or(100);
        ctx.data::<Engine>()?.stack_service_log(self.view.node, &service, lines).await.api()
    }
    /// Its versions, newest first.
    async fn versions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GqlStackVersion>> {
        let list = ctx.data::<Engine>()?.stack_versions(self.view.node).await.api()?;
        Ok(list.into_iter().map(GqlStackVersion).collect())
    }
    /// Its latest commands, newest first (`first`, default 20).
    async fn commands(&self, ctx: &Context<'_>, first: Option<i32>) -> async_graphql::Result<Vec<GqlStackCommand>> {
        let limit = super::shared::page(ctx, first.or(Some(20)))?;
        let node = self.view.node;
        let list = ctx.data::<Engine>()?.store().run(move |s| s.stack_commands(Some(node), limit)).await.api()?;
        Ok(list.into_iter().map(GqlStackCommand).collect())
    }
}

/// The stack node `id` (id or name), if the caller sees it and it is a stack.
async fn stack_node(ctx: &Context<'_>, id: &str) -> async_graphql::Result<NodeId> {
    let view = View::load(ctx).await?;
    let node = view.require(id)?;
    let spec = &view.topology.get(node).api()?.spec;
    if spec.kind != Kind::Stack {
        return Err(api_error(ErrorCode::Validation, format!("`{}` is a {}, not a stack", spec.name, spec.kind)));
    }
    Ok(node)
}

/// Stack command `id`, if the caller sees its stack.
pub(crate) async fn visible_stack_command(ctx: &Context<'_>, id: &str) -> async_graphql::Result<StackCommand> {
    let n = parse_id(id, "stack-command")
        .ok_or_else(|| api_error(ErrorCode::NotFound, format!("stack command `{id}` not found")))?;
    let view = View::load(ctx).await?;
    let c = ctx.data::<Engine>()?.store().run(move |s| s.stack_command(n)).await.api()?;
    c.filter(|c| view.visible(c.stack))
        .ok_or_else(|| api_error(ErrorCode::NotFound, format!("stack command `{id}` not found")))
}

/// Part of [`Query`](super::Query): `stack`, `stacks`, `stackCommand`, `stackDiff`.
#[derive(Default)]
pub struct StacksQuery;

#[Object]
impl StacksQuery {
    /// One stack (id or name): its versions, queue, and what its engine runs now.
    async fn stack(&self, ctx: &Context<'_>, node: ID) -> async_graphql::Result<GqlStack> {
        let node = stack_node(ctx, &node).await?;
        Ok(GqlStack { view: ctx.data::<Engine>()?.stack_view(node).await.api()? })
    }

    /// Every stack the caller sees.
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn stacks(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GqlStack>> {
        let view = View::load(ctx).await?;
        let engine = ctx.data::<Engine>()?;
        let ids: Vec<NodeId> =
            view.topology.nodes().filter(|n| n.spec.kind == Kind::Stack && view.visible(n.id)).map(|n| n.id).collect();
        let views = futures::future::join_all(ids.into_iter().map(|id| engine.stack_view(id))).await;
        views.into_iter().map(|v| v.api().map(|view| GqlStack { view })).collect()
    }

    /// One stack command.
    async fn stack_command(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlStackCommand> {
        Ok(GqlStackCommand(visible_stack_command(ctx, &id).await?))
    }

    /// A unified diff from version `from` to version `to` of a stack (canonical forms;
    /// secret values are `********` on both sides).
    async fn stack_diff(&self, ctx: &Context<'_>, stack: ID, from: i64, to: i64) -> async_graphql::Result<String> {
        let node = stack_node(ctx, &stack).await?;
        ctx.data::<Engine>()?.stack_diff(node, from, to).await.api()
    }
}

/// What `saveStackVersion` answers.
#[derive(SimpleObject)]
pub struct SavedStackVersion {
    /// The version (the latest one, when the file meant the same).
    pub version: GqlStackVersion,
    /// Whether it is new (false: identical to the latest, nothing written).
    pub created: bool,
}

/// Part of [`Mutation`](super::Mutation): `saveStackVersion`, `runStackCommand`,
/// `cancelStackCommand`.
#[derive(Default)]
pub struct StacksMutation;

#[Object]
impl StacksMutation {
    /// Writes a compose file as the stack's next version (`COMPOSE_INVALID` with the key and
    /// line when it is outside the accepted subset; nothing new when it means the same as the
    /// latest). It is not applied: run an `APPLY` command.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn save_stack_version(
        &self,
        ctx: &Context<'_>,
        stack: ID,
        compose: String,
        note: Option<String>,
    ) -> async_graphql::Result<SavedStackVersion> {
        let node = stack_node(ctx, &stack).await?;
        let who = caller(ctx).name;
        let (version, created) =
            ctx.data::<Engine>()?.save_stack_version(node, &compose, &who, note.as_deref()).await.api()?;
        Ok(SavedStackVersion { version: GqlStackVersion(version), created })
    }

    /// Queues a command on a stack and answers at once with it, `pending` (persisted first);
    /// commands of a stack run one at a time, in order, after what its machine runs.
    /// `version`: for `APPLY` the version (default: the latest), for `ROLLBACK` the one to go
    /// back to (required).
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn run_stack_command(
        &self,
        ctx: &Context<'_>,
        stack: ID,
        kind: GqlStackCommandKind,
        version: Option<i64>,
    ) -> async_graphql::Result<GqlStackCommand> {
        let node = stack_node(ctx, &stack).await?;
        let who = caller(ctx).name;
        let c = ctx.data::<Engine>()?.stack_command(node, kind.into(), version, &who).await.api()?;
        Ok(GqlStackCommand(c))
    }

    /// Cancels a pending command (`COMMAND_RUNNING` once it runs: it runs to its end).
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn cancel_stack_command(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlStackCommand> {
        let c = visible_stack_command(ctx, &id).await?;
        Ok(GqlStackCommand(ctx.data::<Engine>()?.cancel_stack_command(c.id).await.api()?))
    }
}
