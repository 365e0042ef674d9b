//! Shutdown proposals: confirmed (a stop cascade) or dismissed, once.

use crate::events::EventKind;
use crate::model::{Action, ProposalId, Refusal};
use crate::store::{CascadeRecord, ProposalRecord, ProposalStatus};

use super::{Engine, EngineError};

impl Engine {
    /// Confirms a pending shutdown proposal: checks again that nothing uses the node, then
    /// starts a stop cascade for it.
    pub async fn confirm_proposal(&self, id: ProposalId) -> Result<CascadeRecord, EngineError> {
        self.confirm_proposal_by(id, None).await
    }

    /// [`confirm_proposal`](Self::confirm_proposal) on behalf of `actor`, if given.
    pub async fn confirm_proposal_by(&self, id: ProposalId, actor: Option<&str>) -> Result<CascadeRecord, EngineError> {
        let _decision = self.inner.decisions.lock().await;
        let proposal = self.pending_proposal(id).await?;
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        topology.get(proposal.node)?;
        let states = self.observe(&topology).await;
        let users = topology.users(proposal.node, |u| states.get(&u).is_none_or(|s| s.may_be_running()));
        if !users.is_empty() || self.held(None).contains_key(&proposal.node) {
            let names: Vec<String> = users.iter().map(|u| topology.name_of(*u)).collect();
            return Err(EngineError::from(Refusal::conflict(format!(
                "`{}` is in use again{}; dismiss the proposal or stop its users first",
                proposal.node_name,
                if names.is_empty() { String::new() } else { format!(" (by {})", names.join(", ")) }
            ))));
        }
        let cascade = self.admit(proposal.node.into(), Action::Stop, None, actor.map(str::to_owned)).await?;
        let node = proposal.node;
        self.record(move |tx| {
            if tx.resolve_proposal(id, ProposalStatus::Confirmed)? {
                tx.emit(EventKind::ProposalResolved { proposal: id, node, confirmed: true });
            }
            Ok(())
        })
        .await?;
        Ok(cascade)
    }

    /// Dismisses a pending shutdown proposal: the node stays on.
    pub async fn dismiss_proposal(&self, id: ProposalId) -> Result<ProposalRecord, EngineError> {
        let _decision = self.inner.decisions.lock().await;
        let proposal = self.pending_proposal(id).await?;
        let node = proposal.node;
        let dismissed = self
            .record(move |tx| {
                let dismissed = tx.resolve_proposal(id, ProposalStatus::Dismissed)?;
                if dismissed {
                    tx.emit(EventKind::ProposalResolved { proposal: id, node, confirmed: false });
                }
                Ok(dismissed)
            })
            .await?;
        if !dismissed {
            return Err(Refusal::invalid(format!("{id} was decided meanwhile")).into());
        }
        self.inner
            .store
            .run(move |s| s.proposal(id))
            .await?
            .ok_or_else(|| EngineError::NotFound { what: id.to_string() })
    }

    async fn pending_proposal(&self, id: ProposalId) -> Result<ProposalRecord, EngineError> {
        let p = self.inner.store.run(move |s| s.proposal(id)).await?;
        let p = p.ok_or_else(|| EngineError::NotFound { what: id.to_string() })?;
        if p.status != ProposalStatus::Pending {
            return Err(EngineError::from(Refusal::invalid(format!("{id} is already {}", p.status.as_str()))));
        }
        Ok(p)
    }
}
