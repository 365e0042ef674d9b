//! Machines: refreshing what a machine runs and needs, over one SSH session with its own
//! credentials (see [`crate::machine`]).

use crate::connector::probe_machine;
use crate::model::{ConnectorConfig, NodeRef, NodeState, PowerState, Refusal};
use crate::store::{RecordedRefresh, RefreshResult};

use super::{Engine, EngineError};

/// What a refresh asks for beyond the usual.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshOptions {
    /// Also probe the hardware (CPU, disks, network interfaces, GPUs).
    pub hardware: bool,
}

impl RefreshOptions {
    /// The same options, with the hardware probe or without.
    pub fn with_hardware(mut self, hardware: bool) -> Self {
        self.hardware = hardware;
        self
    }
}

/// The configured machine `node` names, or why it is none (`NOT_FOUND`, `VALIDATION`).
pub(super) fn machine_of<'a>(
    topology: &'a crate::model::Topology,
    node: &NodeRef,
) -> Result<&'a crate::model::Node, EngineError> {
    let node = topology.find(node)?;
    let name = &node.spec.name;
    if node.spec.state != NodeState::Configured {
        return Err(Refusal::invalid(format!("`{name}` is discovered but not configured; adopt it first")).into());
    }
    if !is_machine(&node.spec.connector) {
        return Err(Refusal::invalid(format!(
            "`{name}` is not a machine WakeHub can reach over SSH: its connector table needs `host` and \
             `ssh_password` or `ssh_private_key`"
        ))
        .into());
    }
    Ok(node)
}

/// Whether WakeHub can reach a node over SSH with its own table: a `host`, and an
/// `ssh_password` or `ssh_private_key`.
pub fn is_machine(connector: &ConnectorConfig) -> bool {
    connector.settings.contains_key("host")
        && (connector.settings.contains_key("ssh_password") || connector.settings.contains_key("ssh_private_key"))
}

impl Engine {
    /// Refreshes what machine `node` runs and needs: one SSH session (its table's `host`,
    /// `ssh_port`, `ssh_user` and credential, its host key pinned) runs the probe, whose
    /// answer is stored as a snapshot with the messages found in it, and the machine's
    /// state is derived again; a `machine-refreshed` event is journaled, whatever the
    /// outcome. A machine that is off is not asked: it is recorded `asleep`, and what is
    /// known stays "last known". A failure (unreachable, refused credentials, a changed
    /// host key, an answer that is not the probe's) is recorded too, with its code, and
    /// returned as the refresh's outcome, not as an error: only a request that cannot be
    /// made (no such node, not a machine, a power operation in flight) is an error.
    pub async fn refresh_machine(
        &self,
        node: impl Into<NodeRef>,
        options: RefreshOptions,
        actor: &str,
    ) -> Result<RecordedRefresh, EngineError> {
        self.must_lead()?;
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let node = machine_of(&topology, &node.into())?;
        let (id, name) = (node.id, node.spec.name.clone());
        if self.busy().contains(&id) {
            return Err(Refusal::conflict(format!(
                "`{name}` has a power operation in flight; refresh it once it is done"
            ))
            .into());
        }
        if self.executing(id) {
            let running = self.inner.store.running_execution(id)?;
            return Err(Refusal::conflict(format!(
                "`{name}` is running {}; refresh it once it is done (its state is refreshed then)",
                running.map_or_else(|| "an action".to_owned(), |e| format!("{} (execution:{})", e.action, e.id))
            ))
            .into());
        }
        if !self.state().refreshing.insert(id) {
            return Err(Refusal::conflict(format!("`{name}` is being refreshed already")).into());
        }
        let _refreshing = RefreshingGuard(self.clone(), id);
        self.refresh_now(&topology, id, options, actor).await
    }

    /// The refresh itself, with no check of what else runs on the machine (an execution
    /// refreshes its machine at its end this way).
    pub(super) async fn refresh_now(
        &self,
        topology: &crate::model::Topology,
        id: crate::model::NodeId,
        options: RefreshOptions,
        actor: &str,
    ) -> Result<RecordedRefresh, EngineError> {
        let node = topology.get(id)?;
        let name = node.spec.name.clone();
        let target = self.target(topology, id).ok_or_else(|| EngineError::NotFound { what: name.clone() })?;
        let started = crate::store::now_ms();
        // Off is not an error: nothing to ask, what is known stays as it was.
        let power = match self.inner.connectors.get(&node.spec.connector.type_name) {
            Some(c) => tokio::time::timeout(self.inner.config.status_timeout, c.status(&target))
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        };
        let result = if power == Some(PowerState::Off) {
            RefreshResult::Asleep
        } else {
            match probe_machine(&target, options.hardware).await {
                Ok(snapshot) => RefreshResult::Answered(Box::new(snapshot)),
                Err(e) => RefreshResult::Failed(e.code, e.message),
            }
        };
        let finished = crate::store::now_ms();
        let actor = actor.to_owned();
        self.record(move |tx| tx.record_refresh(id, &name, started, finished, result, &actor)).await
    }
}

/// Unmarks a machine as being refreshed, however the refresh ends.
struct RefreshingGuard(Engine, crate::model::NodeId);

impl Drop for RefreshingGuard {
    fn drop(&mut self) {
        self.0.state().refreshing.remove(&self.1);
    }
}
