//! The dry run: the `Plan` type (steps, and nodes skipped, kept or proposed for shutdown)
//! and the `plan` query. A plan reads; it never journals.

use async_graphql::{Context, ID, Object, SimpleObject};
use wakehub_core::engine::Engine;
use wakehub_core::model::Topology;

use super::enums::{GqlAction, GqlRole};
use super::error::ApiResultExt;
use super::shared::View;

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
    /// The plan `p`, with node names from `t`.
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

/// Part of [`Query`](super::Query): `plan`.
#[derive(Default)]
pub struct PlanQuery;

#[Object]
impl PlanQuery {
    /// The dry run: what starting or stopping a node would do now, and roughly how long.
    async fn plan(&self, ctx: &Context<'_>, node: ID, action: GqlAction) -> async_graphql::Result<GqlPlan> {
        let engine = ctx.data::<Engine>()?;
        let view = View::load(ctx).await?;
        let id = view.require(&node)?;
        let plan = engine.plan(id, action.into()).await.api()?;
        Ok(GqlPlan::new(&view.topology, &plan))
    }
}
