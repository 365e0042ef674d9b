//! A dense index of a topology for the planner: nodes numbered `0..n` in id order, their
//! links as slices of those numbers, and what the planner reads of each node's spec. Built
//! once per topology version (a [`Topology`] caches it until its next change), so a plan
//! walks arrays instead of maps.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::ids::NodeId;
use super::topology::Topology;

/// A node's position in the index.
pub(crate) type Pos = u32;

/// No position (no parent, no step).
pub(crate) const NONE: Pos = Pos::MAX;

/// The dense index (see the module docs).
#[derive(Debug)]
pub(crate) struct Index {
    /// Position → id, in increasing id order.
    pub ids: Vec<NodeId>,
    /// What each node depends on, sorted by id.
    pub deps: Vec<Box<[Pos]>>,
    /// Who depends on each node, sorted by id.
    pub rdeps: Vec<Box<[Pos]>>,
    /// Nodes hosted on each node, sorted by id.
    pub children: Vec<Box<[Pos]>>,
    /// Each node's parent, or [`NONE`].
    pub parent: Vec<Pos>,
    /// What each node needs directly: its dependencies, then its parent.
    pub up: Vec<Box<[Pos]>>,
    /// What needs each node directly: its dependents, then its children.
    pub down: Vec<Box<[Pos]>>,
    /// The same, sorted by id.
    pub down_sorted: Vec<Box<[Pos]>>,
    /// A rank such that everything a node needs ranks lower (the stop's re-evaluation order).
    pub rank: Vec<u32>,
    /// Whether the node has a readiness probe.
    pub probed: Vec<bool>,
    /// Whether an unused node's stop needs confirmation.
    pub confirm_auto_shutdown: Vec<bool>,
    /// Whether the host stops once it has no running guest and no user.
    pub stop_when_empty: Vec<bool>,
    /// Start and stop timeouts.
    pub timeouts: Vec<(Duration, Duration)>,
}

impl Index {
    fn build(t: &Topology) -> Index {
        let ids: Vec<NodeId> = t.nodes().map(|n| n.id).collect();
        let pos = |id: NodeId| ids.binary_search(&id).map_or(NONE, |p| p as Pos);
        let list = |v: Vec<NodeId>| v.into_iter().map(pos).filter(|p| *p != NONE).collect::<Box<[Pos]>>();
        let nodes: Vec<_> = t.nodes().collect();
        let mut index = Index {
            deps: ids.iter().map(|id| list(t.dependencies(*id))).collect(),
            rdeps: ids.iter().map(|id| list(t.dependents(*id))).collect(),
            children: ids.iter().map(|id| list(t.children(*id))).collect(),
            parent: nodes.iter().map(|n| n.parent.map_or(NONE, pos)).collect(),
            up: Vec::new(),
            down: Vec::new(),
            down_sorted: Vec::new(),
            rank: Vec::new(),
            probed: nodes.iter().map(|n| n.spec.readiness.is_some()).collect(),
            confirm_auto_shutdown: nodes.iter().map(|n| n.spec.confirm_auto_shutdown).collect(),
            stop_when_empty: nodes.iter().map(|n| n.spec.stop_when_empty).collect(),
            timeouts: nodes.iter().map(|n| (n.spec.timeouts.start, n.spec.timeouts.stop)).collect(),
            ids,
        };
        let n = index.ids.len();
        index.up = (0..n)
            .map(|p| {
                let parent = index.parent[p];
                index.deps[p].iter().copied().chain((parent != NONE).then_some(parent)).collect()
            })
            .collect();
        index.down = (0..n).map(|p| index.rdeps[p].iter().chain(index.children[p].iter()).copied().collect()).collect();
        index.down_sorted = index
            .down
            .iter()
            .map(|d| {
                let mut d = d.to_vec();
                d.sort_unstable();
                d.into_boxed_slice()
            })
            .collect();
        index.rank = index.topo_rank();
        index
    }

    /// The position of `id`, if it is a node.
    pub fn pos(&self, id: NodeId) -> Option<Pos> {
        self.ids.binary_search(&id).ok().map(|p| p as Pos)
    }

    /// Depth-first over upstream links from every node in id order: a node ranks after
    /// everything it needs.
    fn topo_rank(&self) -> Vec<u32> {
        let n = self.ids.len();
        let mut rank = vec![u32::MAX; n];
        let mut next = 0;
        let mut visiting = vec![false; n];
        let mut stack: Vec<(Pos, bool)> = (0..n as Pos).rev().map(|p| (p, false)).collect();
        while let Some((p, expanded)) = stack.pop() {
            if rank[p as usize] != u32::MAX {
                continue;
            }
            if expanded {
                rank[p as usize] = next;
                next += 1;
                continue;
            }
            if std::mem::replace(&mut visiting[p as usize], true) {
                continue;
            }
            stack.push((p, true));
            stack.extend(self.up[p as usize].iter().filter(|m| rank[**m as usize] == u32::MAX).map(|m| (*m, false)));
        }
        rank
    }
}

/// A topology's cached index: built on first use, dropped by any change.
#[derive(Clone, Default)]
pub(crate) struct IndexCache(OnceLock<Arc<Index>>);

impl IndexCache {
    pub fn get(&self, t: &Topology) -> Arc<Index> {
        self.0.get_or_init(|| Arc::new(Index::build(t))).clone()
    }

    pub fn clear(&mut self) {
        self.0.take();
    }
}

impl std::fmt::Debug for IndexCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "IndexCache(built)" } else { "IndexCache(empty)" })
    }
}
