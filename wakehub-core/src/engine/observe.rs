//! Observation: the engine asks every node's connector for its state, journals what
//! changed, remembers when each node was seen (for staleness), and keeps repeated
//! capability denials out of the journal while counting them.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::{FutureExt, StreamExt};

use super::{Engine, context};
use crate::connector::{PowerState, Target};
use crate::events::EventKind;
use crate::model::{NodeId, NodeState, Topology};

impl Engine {
    /// Asks every node's connector for its state (concurrently, each call bounded), records
    /// changes as `status-change` events, and returns the states (`unknown` where a call
    /// failed).
    pub async fn observe(&self, topology: &Topology) -> BTreeMap<NodeId, PowerState> {
        let results = self.poll(topology).await;
        self.note_states(topology, &results).await;
        // On a shared database, the instances that follow take these as fresh too.
        if self.is_leader() && self.inner.store.is_shared() {
            let at = crate::store::now_ms();
            if let Err(e) = self.inner.store.run(move |s| s.set_observed_round(at)).await {
                tracing::warn!("cannot record the observation round: {e}");
            }
        }
        results.into_iter().collect()
    }

    /// Asks every node's connector for its state, recording nothing.
    pub(super) async fn poll(&self, topology: &Topology) -> Vec<(NodeId, PowerState)> {
        let timeout = self.inner.config.status_timeout;
        // Discovered nodes are not called until they are adopted (their tables come from a
        // platform, not from the user).
        let targets: Vec<Target> = topology
            .nodes()
            .filter(|n| n.spec.state == NodeState::Configured)
            .filter_map(|n| self.target(topology, n.id))
            .collect();
        let results: Vec<(NodeId, PowerState)> = futures::stream::iter(targets)
            .map(|target| {
                let connector = self.inner.connectors.get(&target.config.type_name);
                async move {
                    let state = match connector {
                        None => PowerState::Unknown,
                        // Isolated: a connector that panics on one node makes that node
                        // `unknown`, nothing else.
                        Some(c) => {
                            match tokio::time::timeout(timeout, AssertUnwindSafe(c.status(&target)).catch_unwind())
                                .await
                            {
                                Ok(Ok(Ok(s))) => s,
                                Ok(Ok(Err(e))) => {
                                    tracing::debug!(node = %target.name, code = e.code.as_str(), "status failed: {e}");
                                    PowerState::Unknown
                                }
                                Ok(Err(_)) => {
                                    tracing::error!(node = %target.name, connector = %target.config.type_name,
                                                "the connector panicked while reading the status");
                                    PowerState::Unknown
                                }
                                Err(_) => PowerState::Unknown,
                            }
                        }
                    };
                    (target.node, state)
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        results
    }

    /// The connector target of `node`, with the engine as its context: the store resolves
    /// its secrets and host keys, the journal records its notices (published like any
    /// other event).
    pub fn target(&self, topology: &Topology, node: NodeId) -> Option<Target> {
        Target::of(topology, node).map(|t| t.with_context(Arc::new(context::EngineContext(self.clone()))))
    }

    /// Records a newly seen state (a `status-change` event if it differs from the last one).
    pub(super) async fn note_state(&self, topology: &Topology, node: NodeId, state: PowerState) {
        self.note_states(topology, &[(node, state)]).await;
    }

    /// Records newly seen states, journaling the changes in one transaction.
    pub(super) async fn note_states(&self, topology: &Topology, seen: &[(NodeId, PowerState)]) {
        let mut st = self.state();
        let now = std::time::SystemTime::now();
        let observed = Arc::make_mut(&mut st.observed);
        observed.at.extend(seen.iter().map(|(node, _)| (*node, now)));
        let events: Vec<EventKind> = seen
            .iter()
            .filter(|(node, state)| observed.states.insert(*node, *state) != Some(*state))
            .filter_map(|(node, state)| {
                let n = topology.node(*node)?;
                Some(EventKind::StatusChange {
                    node: *node,
                    name: n.spec.name.clone(),
                    kind: n.spec.kind.to_string(),
                    state: *state,
                })
            })
            .collect();
        for (node, state) in seen {
            if *state != PowerState::Unknown {
                st.denied.remove(node);
            }
        }
        // Queued while the state is locked: status changes are journaled in the order they
        // were seen. Nobody waits for them.
        if !events.is_empty() {
            self.emit_detached(events, "a status change");
        }
    }

    /// Capability denials connectors reported since the engine started (each one, whether
    /// or not it was journaled).
    pub fn capability_denials(&self) -> u64 {
        self.inner.denials.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a capability denial is news: not the one last journaled for its node. It is
    /// counted either way.
    pub(super) fn denial_is_news(&self, node: NodeId, what: &str) -> bool {
        self.inner.denials.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut st = self.state();
        if st.denied.get(&node).is_some_and(|w| w == what) {
            return false;
        }
        st.denied.insert(node, what.to_owned());
        true
    }

    /// The last state the engine saw for each node.
    pub fn last_seen(&self) -> HashMap<NodeId, PowerState> {
        self.state().observed.states.clone()
    }

    /// What the engine last observed of every node, as a shared snapshot (no copy).
    pub fn observed(&self) -> Arc<super::Observed> {
        self.state().observed.clone()
    }

    /// When the engine last observed each node (never observed: absent), with whether
    /// that observation is now stale (older than [`EngineConfig::stale_after`](super::EngineConfig::stale_after)).
    pub fn observed_at(&self) -> HashMap<NodeId, (std::time::SystemTime, bool)> {
        let stale_after = self.inner.config.stale_after;
        let now = std::time::SystemTime::now();
        self.observed()
            .at
            .iter()
            .map(|(n, at)| (*n, (*at, now.duration_since(*at).is_ok_and(|age| age > stale_after))))
            .collect()
    }
}
