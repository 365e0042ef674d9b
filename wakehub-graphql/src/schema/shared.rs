//! Helpers every resource uses: the per-request [`View`] of the topology and observed
//! states, id parsing (`prefix:N`), RFC 3339 times and page sizes.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_graphql::Context;
use wakehub_core::connector::PowerState;
use wakehub_core::engine::{Engine, Observed};
use wakehub_core::model::{ErrorCode, NodeId, Role, Scope, Topology};

use super::Limits;
use super::error::{ApiResultExt, api_error};
use super::nodes::GqlNode;

/// Milliseconds since the epoch as RFC 3339.
pub(crate) fn time(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)).to_string()
}

/// Now, in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Parses `prefix:N` or `N`.
pub(crate) fn parse_id(id: &str, prefix: &str) -> Option<i64> {
    id.strip_prefix(prefix).and_then(|r| r.strip_prefix(':')).unwrap_or(id).parse().ok()
}

/// The page size asked for with `first`: 50 by default, at most [`Limits::max_page`].
pub(crate) fn page(ctx: &Context<'_>, first: Option<i32>) -> async_graphql::Result<usize> {
    let max = ctx.data::<Limits>()?.max_page;
    match first {
        None => Ok(max.min(50)),
        Some(n) if n < 0 => Err(api_error(ErrorCode::Validation, "`first` must not be negative")),
        Some(n) if n as usize > max => Err(api_error(ErrorCode::Validation, format!("`first` is at most {max}"))),
        Some(n) => Ok(n as usize),
    }
}

/// A consistent view for one request: the topology and the last observed states.
#[derive(Clone)]
pub(crate) struct View {
    /// The topology.
    pub topology: Arc<Topology>,
    /// What was last observed of each node (states, and when).
    pub observed: Arc<Observed>,
    /// When an observation becomes stale: its time plus the engine's `stale_after`, before
    /// this request.
    pub stale_before: SystemTime,
    /// What the caller may see: nodes outside it do not exist for this request.
    pub scope: Arc<Scope>,
    /// What the caller may do.
    pub role: Role,
}

impl View {
    /// The topology now and the states last observed, as the caller may see them.
    pub(crate) async fn load(ctx: &Context<'_>) -> async_graphql::Result<View> {
        let engine = ctx.data::<Engine>()?;
        // Loaded already (the usual case): no blocking hop.
        let topology = match engine.store().topology_cached() {
            Some(t) => t,
            None => engine.store().run(|s| s.topology_shared()).await.api()?,
        };
        let caller = super::access::caller(ctx);
        let now = SystemTime::now();
        Ok(View {
            topology,
            observed: engine.observed(),
            stale_before: now.checked_sub(engine.config().stale_after).unwrap_or(SystemTime::UNIX_EPOCH),
            scope: Arc::new(caller.scope),
            role: caller.role,
        })
    }

    /// Whether the caller may see node `id` (a caller of every node sees also the nodes
    /// created after this view was taken).
    pub(crate) fn visible(&self, id: NodeId) -> bool {
        self.scope.is_all() || self.topology.node(id).is_some_and(|n| self.scope.allows(n))
    }

    /// Whether the caller may see an event: it is about a node the caller sees. A
    /// maintenance run's own beginning and end (about no one node) are for callers of every
    /// node: a run's selection may reach outside a narrower scope.
    pub(crate) fn sees(&self, event: &wakehub_core::events::Event) -> bool {
        use wakehub_core::events::EventKind;
        match (&event.kind, event.kind.node()) {
            (EventKind::Maintenance { .. }, None) => self.scope.is_all(),
            (_, node) => node.is_none_or(|n| self.visible(n)),
        }
    }

    /// A node by id or name whether or not the caller may see it (for power checks,
    /// which answer `FORBIDDEN` rather than `NOT_FOUND`).
    pub(crate) fn resolve_any(&self, id_or_name: &str) -> async_graphql::Result<NodeId> {
        self.topology
            .resolve(id_or_name)
            .map(|n| n.id)
            .ok()
            .or_else(|| parse_id(id_or_name, "node").map(NodeId::new).filter(|id| self.topology.node(*id).is_some()))
            .ok_or_else(|| api_error(ErrorCode::NotFound, format!("node `{id_or_name}` not found")))
    }

    /// The node `id`, resolved in this view.
    pub(crate) fn node(&self, id: NodeId) -> GqlNode {
        GqlNode::new(self.clone(), id)
    }

    /// A node by id (`node:N`, `N`) or name, if the caller may see it.
    pub(crate) fn resolve(&self, id_or_name: &str) -> Option<NodeId> {
        self.resolve_any(id_or_name).ok().filter(|id| self.visible(*id))
    }

    /// [`View::resolve`], or `NOT_FOUND` (also for a node the caller may not see).
    pub(crate) fn require(&self, id_or_name: &str) -> async_graphql::Result<NodeId> {
        self.resolve(id_or_name).ok_or_else(|| api_error(ErrorCode::NotFound, format!("node `{id_or_name}` not found")))
    }

    /// When node `id` was last observed, and whether that is now stale.
    pub(crate) fn observed_at(&self, id: NodeId) -> Option<(SystemTime, bool)> {
        self.observed.at.get(&id).map(|at| (*at, *at < self.stale_before))
    }

    /// The power state last observed (`UNKNOWN` if never).
    pub(crate) fn state(&self, id: NodeId) -> PowerState {
        self.observed.states.get(&id).copied().unwrap_or(PowerState::Unknown)
    }
}
