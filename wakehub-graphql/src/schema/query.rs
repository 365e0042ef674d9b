//! Queries: reads over the store and the engine.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object};
use wakehub_core::engine::Engine;
use wakehub_core::model::ErrorCode;
use wakehub_core::model::{CascadeId, EventId, NodeState};
use wakehub_core::store::CascadeFilter;

use super::Limits;
use super::error::{ApiResultExt, api_error};
#[cfg(feature = "plugins")]
use super::types::GqlPlugin;
use super::types::{
    GqlAction, GqlCascade, GqlCascadeStatus, GqlEvent, GqlNode, GqlNodeState, GqlPlan, GqlPowerState, GqlProposal,
    View, parse_id,
};

/// The query root.
pub struct Query;

fn page(ctx: &Context<'_>, first: Option<i32>) -> async_graphql::Result<usize> {
    let max = ctx.data::<Limits>()?.max_page;
    match first {
        None => Ok(max.min(50)),
        Some(n) if n < 0 => Err(api_error(ErrorCode::Validation, "`first` must not be negative")),
        Some(n) if n as usize > max => Err(api_error(ErrorCode::Validation, format!("`first` is at most {max}"))),
        Some(n) => Ok(n as usize),
    }
}

#[Object]
impl Query {
    /// A node by id (`node:N`) or by name.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<GqlNode>> {
        let view = View::load(ctx.data::<Engine>()?).await?;
        Ok(view.resolve(&id).map(|n| view.node(n)))
    }

    /// Nodes, configured and discovered, optionally filtered. Hosts come before what they host.
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        kind: Option<String>,
        parent: Option<ID>,
        pinned: Option<bool>,
        state: Option<GqlNodeState>,
        status: Option<GqlPowerState>,
    ) -> async_graphql::Result<Vec<GqlNode>> {
        let view = View::load(ctx.data::<Engine>()?).await?;
        let parent = parent.map(|p| view.require(&p)).transpose()?;
        let mut roots: Vec<_> = view.topology.nodes().filter(|n| n.parent.is_none()).map(|n| n.id).collect();
        roots.sort_by_key(|r| view.topology.name_of(*r));
        let order = roots.into_iter().flat_map(|r| std::iter::once(r).chain(view.topology.hosted_descendants(r)));
        let mut out = Vec::new();
        for id in order {
            let Some(n) = view.topology.node(id) else { continue };
            let node_state = match n.spec.state {
                NodeState::Discovered => GqlNodeState::Discovered,
                _ => GqlNodeState::Configured,
            };
            let node_status: GqlPowerState =
                view.seen.get(&id).copied().unwrap_or(wakehub_core::connector::PowerState::Unknown).into();
            if kind.as_ref().is_some_and(|k| *k != n.spec.kind.as_str())
                || parent.is_some_and(|p| n.parent != Some(p))
                || pinned.is_some_and(|p| p != n.spec.pinned)
                || state.is_some_and(|s| s != node_state)
                || status.is_some_and(|s| s != node_status)
            {
                continue;
            }
            out.push(view.node(id));
        }
        Ok(out)
    }

    /// A cascade by id.
    async fn cascade(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<GqlCascade>> {
        let Some(n) = parse_id(&id, "cascade") else { return Ok(None) };
        let record = ctx.data::<Engine>()?.cascade(CascadeId::new(n)).await.api()?;
        Ok(record.map(GqlCascade))
    }

    /// Cascades, newest first, with cursor pagination (`after` is an `endCursor`).
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
            Some(n) => Some(View::load(engine).await?.require(&n)?),
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
        records.truncate(limit);
        let mut conn = Connection::new(before.is_some(), more);
        conn.edges.extend(records.into_iter().map(|r| Edge::new(r.id.to_string(), GqlCascade(r))));
        Ok(conn)
    }

    /// Journal events after `after` (an event id), oldest first, optionally about one node.
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<ID>,
        node: Option<ID>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<String, GqlEvent>> {
        let engine = ctx.data::<Engine>()?;
        let limit = page(ctx, first)?;
        let after = match after {
            Some(a) => Some(EventId::new(
                parse_id(&a, "event")
                    .ok_or_else(|| api_error(ErrorCode::Validation, format!("bad event id `{}`", a.0)))?,
            )),
            None => None,
        };
        let node = match node {
            Some(n) => Some(View::load(engine).await?.require(&n)?),
            None => None,
        };
        let mut events = engine.store().run(move |s| s.events_after(after, node, limit + 1)).await.api()?;
        let more = events.len() > limit;
        events.truncate(limit);
        let mut conn = Connection::new(after.is_some(), more);
        conn.edges.extend(events.into_iter().map(|e| Edge::new(e.id.to_string(), GqlEvent(e))));
        Ok(conn)
    }

    /// The dry run: what starting or stopping a node would do now, and roughly how long.
    async fn plan(&self, ctx: &Context<'_>, node: ID, action: GqlAction) -> async_graphql::Result<GqlPlan> {
        let engine = ctx.data::<Engine>()?;
        let view = View::load(engine).await?;
        let id = view.require(&node)?;
        let plan = engine.plan(id, action.into()).await.api()?;
        Ok(GqlPlan::new(&view.topology, &plan))
    }

    /// Shutdown proposals, newest first: pending ones, or all with `all: true`.
    async fn proposals(&self, ctx: &Context<'_>, all: Option<bool>) -> async_graphql::Result<Vec<GqlProposal>> {
        let all = all.unwrap_or(false);
        let list = ctx.data::<Engine>()?.store().run(move |s| s.proposals(all)).await.api()?;
        Ok(list.into_iter().map(GqlProposal).collect())
    }

    /// The connector plugins loaded (empty when the server loads none).
    #[cfg(feature = "plugins")]
    async fn plugins(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GqlPlugin>> {
        let host = &ctx.data::<super::Plugins>()?.0;
        Ok(host.as_ref().map(|h| h.plugins().into_iter().map(GqlPlugin).collect()).unwrap_or_default())
    }

    /// Cascades running now.
    async fn running_cascades(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GqlCascade>> {
        let engine = ctx.data::<Engine>()?;
        let mut out = Vec::new();
        for id in engine.running() {
            if let Some(r) = engine.cascade(id).await.api()? {
                out.push(GqlCascade(r));
            }
        }
        Ok(out)
    }
}
