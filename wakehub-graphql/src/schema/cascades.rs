//! Cascades: the `Cascade` and `Step` types, the `cascade`, `cascades` (a cursor connection)
//! and `runningCascades` queries, and the mutations that start, stop, cancel or re-run one.
//! Mutations that power things return at once (`PENDING`); the work runs in the engine.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object};
use wakehub_core::engine::Engine;
use wakehub_core::model::{Action, CascadeId, ErrorCode};
use wakehub_core::store::{CascadeFilter, CascadeRecord, StepRecord};

use super::access::authorize_power;
use super::enums::{GqlAction, GqlCascadeStatus, GqlRole, GqlStepStatus};
use super::error::{ApiResultExt, api_error};
use super::nodes::GqlNode;
use super::shared::{View, page, parse_id, time};

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
        let view = View::load(ctx).await?;
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
    /// Who asked for it (an API token's name), when it came through the API.
    async fn requested_by(&self) -> Option<&str> {
        self.0.requested_by.as_deref()
    }
    /// Its steps, in plan order.
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
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

/// A cascade id (`cascade:N` or `N`), or `NOT_FOUND`.
fn cascade_id(id: &ID) -> async_graphql::Result<CascadeId> {
    parse_id(id, "cascade")
        .map(CascadeId::new)
        .ok_or_else(|| api_error(ErrorCode::NotFound, format!("cascade `{}` not found", id.0)))
}

/// Part of [`Query`](super::Query): `cascade`, `cascades` (`runningCascades` is in [`RunningQuery`], merged last).
#[derive(Default)]
pub struct CascadesQuery;

#[Object]
impl CascadesQuery {
    /// A cascade by id.
    async fn cascade(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<GqlCascade>> {
        let Some(n) = parse_id(&id, "cascade") else { return Ok(None) };
        let record = ctx.data::<Engine>()?.cascade(CascadeId::new(n)).await.api()?;
        let view = View::load(ctx).await?;
        Ok(record.filter(|r| view.visible(r.node)).map(GqlCascade))
    }

    /// Cascades, newest first, with cursor pagination (`after` is an `endCursor`).
    #[graphql(complexity = "first.unwrap_or(50).clamp(1, 500) as usize * child_complexity")]
    async fn cascades(
        &self,
        ctx: &Context<'_>,
        node: Option<ID>,
        status: Option<GqlCascadeStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, GqlCascade>> {
        let engine = ctx.data::<Engine>()?;
        let limit = page(ctx, first)?;
        let node = match node {
            Some(n) => Some(View::load(ctx).await?.require(&n)?),
            None => None,
        };
        let before = match after {
            Some(c) => Some(CascadeId::new(
                parse_id(&c, "cascade").ok_or_else(|| api_error(ErrorCode::Validation, format!("bad cursor `{c}`")))?,
            )),
            None => None,
        };
        let filter = CascadeFilter { node, status: status.map(Into::into), before, limit: Some(limit + 1) };
        let mut records = engine.store().run(move |s| s.cascades(&filter)).await.api()?;
        let more = records.len() > limit;
        let view = View::load(ctx).await?;
        // What the caller may not see is left out of the page.
        records.retain(|r| view.visible(r.node));
        records.truncate(limit);
        let mut conn = Connection::new(before.is_some(), more);
        conn.edges.extend(records.into_iter().map(|r| Edge::new(r.id.to_string(), GqlCascade(r))));
        Ok(conn)
    }
}

/// Part of [`Query`](super::Query): `runningCascades`, an object of its own so that it comes last in the SDL.
#[derive(Default)]
pub struct RunningQuery;

#[Object]
impl RunningQuery {
    /// Cascades running now (on an instance that follows another: the leader's, as its
    /// journal says).
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn running_cascades(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GqlCascade>> {
        let engine = ctx.data::<Engine>()?;
        let view = View::load(ctx).await?;
        let mut out = Vec::new();
        for id in engine.running_now().await.api()? {
            if let Some(r) = engine.cascade(id).await.api()?.filter(|r| view.visible(r.node)) {
                out.push(GqlCascade(r));
            }
        }
        Ok(out)
    }
}

/// Part of [`Mutation`](super::Mutation): `startNode`, `stopNode`, `cancelCascade`, `rerunCascade`.
#[derive(Default)]
pub struct CascadesMutation;

#[Object]
impl CascadesMutation {
    /// Starts a node and everything it needs. Returns the cascade at once (`PENDING`); follow
    /// it with the `cascadeProgress` subscription.
    async fn start_node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlCascade> {
        let engine = ctx.data::<Engine>()?;
        let node = View::load(ctx).await?.resolve_any(&id)?;
        let caller = authorize_power(ctx, node, Action::Start).await?;
        Ok(GqlCascade(engine.request_by(node, Action::Start, &caller.name).await.api()?))
    }

    /// Stops a node and everything that cannot run without it, then re-evaluates its
    /// dependencies. Returns the cascade at once (`PENDING`).
    async fn stop_node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlCascade> {
        let engine = ctx.data::<Engine>()?;
        let node = View::load(ctx).await?.resolve_any(&id)?;
        let caller = authorize_power(ctx, node, Action::Stop).await?;
        Ok(GqlCascade(engine.request_by(node, Action::Stop, &caller.name).await.api()?))
    }

    /// Cancels a running cascade: no new step begins; steps in flight finish.
    async fn cancel_cascade(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlCascade> {
        let engine = ctx.data::<Engine>()?;
        let cascade = cascade_id(&id)?;
        let target = engine.cascade(cascade).await.api()?;
        if let Some(t) = &target {
            authorize_power(ctx, t.node, t.action).await?;
        }
        engine.cancel(cascade).api()?;
        let record = engine.cascade(cascade).await.api()?;
        record.map(GqlCascade).ok_or_else(|| api_error(ErrorCode::NotFound, format!("cascade `{}` not found", id.0)))
    }

    /// Runs an ended cascade (interrupted, failed, cancelled…) again, as a new cascade.
    async fn rerun_cascade(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlCascade> {
        let engine = ctx.data::<Engine>()?;
        let cascade = cascade_id(&id)?;
        let caller = match engine.cascade(cascade).await.api()? {
            Some(t) => authorize_power(ctx, t.node, t.action).await?,
            None => return Err(api_error(ErrorCode::NotFound, format!("cascade `{}` not found", id.0))),
        };
        Ok(GqlCascade(engine.rerun_by(cascade, Some(&caller.name)).await.api()?))
    }
}
