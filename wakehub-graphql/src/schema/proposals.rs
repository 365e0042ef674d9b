//! Shutdown proposals: the `Proposal` type and its status, the `proposals` query, and
//! `confirmProposal`, `dismissProposal`.

use async_graphql::{Context, Enum, ID, Object};
use wakehub_core::engine::Engine;
use wakehub_core::model::{ErrorCode, ProposalId};
use wakehub_core::store::{ProposalRecord, ProposalStatus};

use super::cascades::GqlCascade;
use super::error::{ApiResultExt, api_error};
use super::shared::{View, parse_id, time};

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

/// A proposal id (`proposal:N` or `N`), or `NOT_FOUND`.
fn proposal_id(id: &ID) -> async_graphql::Result<ProposalId> {
    parse_id(id, "proposal")
        .map(ProposalId::new)
        .ok_or_else(|| api_error(ErrorCode::NotFound, format!("proposal `{}` not found", id.0)))
}

/// Part of [`Query`](super::Query): `proposals`.
#[derive(Default)]
pub struct ProposalsQuery;

#[Object]
impl ProposalsQuery {
    /// Shutdown proposals, newest first: pending ones, or all with `all: true`.
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn proposals(&self, ctx: &Context<'_>, all: Option<bool>) -> async_graphql::Result<Vec<GqlProposal>> {
        let all = all.unwrap_or(false);
        let list = ctx.data::<Engine>()?.store().run(move |s| s.proposals(all)).await.api()?;
        let view = View::load(ctx).await?;
        Ok(list.into_iter().filter(|p| view.visible(p.node)).map(GqlProposal).collect())
    }
}

/// Part of [`Mutation`](super::Mutation): `confirmProposal`, `dismissProposal`.
#[derive(Default)]
pub struct ProposalsMutation;

#[Object]
impl ProposalsMutation {
    /// Confirms a shutdown proposal: checks the node is still unused, then stops it.
    async fn confirm_proposal(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlCascade> {
        let engine = ctx.data::<Engine>()?;
        let id = proposal_id(&id)?;
        let caller = authorize_proposal(ctx, id).await?;
        Ok(GqlCascade(engine.confirm_proposal_by(id, Some(&caller.name)).await.api()?))
    }

    /// Dismisses a shutdown proposal: the node stays on.
    async fn dismiss_proposal(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlProposal> {
        let engine = ctx.data::<Engine>()?;
        let id = proposal_id(&id)?;
        authorize_proposal(ctx, id).await?;
        Ok(GqlProposal(engine.dismiss_proposal(id).await.api()?))
    }
}

/// A proposal is decided by an operator whose scope holds its node (a confirmed proposal
/// is a stop of that node).
async fn authorize_proposal(ctx: &Context<'_>, id: ProposalId) -> async_graphql::Result<super::access::Caller> {
    let engine = ctx.data::<Engine>()?;
    let proposal = engine
        .store()
        .run(move |s| s.proposal(id))
        .await
        .api()?
        .ok_or_else(|| api_error(ErrorCode::NotFound, format!("{id} not found")))?;
    super::access::authorize_power(ctx, proposal.node, wakehub_core::model::Action::Stop).await
}
