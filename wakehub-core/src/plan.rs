//! The planner: a pure function from the topology, the observed power states and a request
//! to a plan — a DAG of steps, plus the nodes skipped, kept and proposed for shutdown, each
//! with its reason. No I/O, no clock: exhaustively testable.
//!
//! **Start X.** The closure of X under "depends on" and "runs on" is brought up: for each
//! node, its dependencies first (deepest first), then its hosting chain top-down, then the
//! node. Nodes already `on` are skipped. A step waits for the nearest planned steps of
//! everything it needs (looking through skipped nodes).
//!
//! **Stop X.** Everything that cannot run without X (hosted descendants and dependents,
//! recursively) stops first, bottom-up, then X. Then the dependencies of everything stopped
//! are re-evaluated, users before what they use: a node still used by a running node outside
//! the cascade — through a dependency *or* because it runs on it — or needed by an in-flight
//! start is kept (with the reason); an unused node is stopped, or proposed for shutdown when
//! its `confirm_auto_shutdown` is on. Auto-stopped nodes' dependencies are re-evaluated too.
//! So are the hosts the stop leaves with no running guest and no user: proposed for
//! shutdown, or stopped when they opt in with `stop_when_empty`.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

pub use crate::model::Action;
use crate::model::index::{Index, NONE, Pos};
use crate::model::{CascadeId, ModelError, NodeId, PowerState, Topology};

/// Why a step is in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// The node the user asked for.
    Requested,
    /// Start: something the requested node needs (a dependency or a host).
    Required,
    /// Stop: something that cannot run without the requested node.
    Dependent,
    /// Stop: a dependency no longer used, stopped by re-evaluation.
    Unused,
}

impl Role {
    /// The lowercase name used in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Requested => "requested",
            Role::Required => "required",
            Role::Dependent => "dependent",
            Role::Unused => "unused",
        }
    }
    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Requested, Role::Required, Role::Dependent, Role::Unused].into_iter().find(|r| r.as_str() == s)
    }
}

/// One power operation of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Step {
    /// Index in [`Plan::steps`].
    pub id: usize,
    /// The node.
    pub node: NodeId,
    /// What to do.
    pub action: Action,
    /// Steps that must be done first.
    pub after: Vec<usize>,
    /// Why the step is there.
    pub role: Role,
}

/// A node the plan leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// The node.
    pub node: NodeId,
    /// Why (`already on`, `used by plex`, …).
    pub reason: String,
}

/// What a cascade will do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// The node asked for.
    pub target: NodeId,
    /// Start or stop.
    pub action: Action,
    /// The steps, in an order that respects `after` (deepest first).
    pub steps: Vec<Step>,
    /// Nodes in scope that need nothing (`already on`).
    pub skipped: Vec<Decision>,
    /// Dependencies kept on because something still uses them.
    pub kept: Vec<Decision>,
    /// Dependencies no longer used whose shutdown awaits confirmation.
    pub proposed: Vec<Decision>,
    /// Critical path using observed durations where known, timeouts otherwise.
    pub estimate: Duration,
    /// Critical path if every step took its full timeout.
    pub worst_case: Duration,
}

/// What the planner reads besides the topology.
#[derive(Debug, Clone, Copy)]
pub struct Observations<'a> {
    /// Observed power state per node; a missing node counts as `unknown`.
    pub states: &'a BTreeMap<NodeId, PowerState>,
    /// Nodes needed by start cascades in flight (never stopped by re-evaluation).
    pub held: &'a BTreeMap<NodeId, CascadeId>,
    /// Typical durations of past steps, for the estimate.
    pub durations: &'a BTreeMap<(NodeId, Action), Duration>,
    /// Nodes with a power operation in flight (in another cascade): never skipped, whatever
    /// their state says, so the plan joins or waits for that operation.
    pub busy: &'a BTreeSet<NodeId>,
}

static NOTHING_BUSY: BTreeSet<NodeId> = BTreeSet::new();

impl<'a> Observations<'a> {
    /// Observations with no operation in flight.
    pub fn new(
        states: &'a BTreeMap<NodeId, PowerState>,
        held: &'a BTreeMap<NodeId, CascadeId>,
        durations: &'a BTreeMap<(NodeId, Action), Duration>,
    ) -> Self {
        Observations { states, held, durations, busy: &NOTHING_BUSY }
    }

    /// The same observations with these nodes' operations in flight.
    pub fn with_busy(self, busy: &'a BTreeSet<NodeId>) -> Self {
        Observations { busy, ..self }
    }
}

/// Plans `action` on `target`. Fails only if `target` is not in the topology.
///
/// The plan walks the topology's dense index ([`Topology`] builds it once per version), so
/// planning on a large lab costs arrays, not maps.
pub fn plan(topology: &Topology, obs: Observations<'_>, target: NodeId, action: Action) -> Result<Plan, ModelError> {
    topology.get(target)?;
    let ix = topology.index();
    let target_pos = ix.pos(target).ok_or_else(|| ModelError::UnknownNode { node: target.to_string() })?;
    let n = ix.ids.len();
    let mut b = Builder {
        topology,
        ix: &ix,
        obs,
        state: dense_states(&ix, obs.states),
        steps: Vec::new(),
        step_of: vec![NONE; n],
        frontier: vec![None; n],
    };
    let mut plan = Plan {
        target,
        action,
        steps: Vec::new(),
        skipped: Vec::new(),
        kept: Vec::new(),
        proposed: Vec::new(),
        estimate: Duration::ZERO,
        worst_case: Duration::ZERO,
    };
    match action {
        Action::Start => b.start(target_pos, &mut plan),
        Action::Stop => b.stop(target_pos, &mut plan),
    }
    plan.steps = b.steps;
    (plan.estimate, plan.worst_case) = critical_paths(&ix, &obs, &plan.steps);
    Ok(plan)
}

/// The observed state of each node of the index (`unknown` when not observed): one walk
/// over both, which are sorted by id, instead of a lookup per node.
fn dense_states(ix: &Index, states: &BTreeMap<NodeId, PowerState>) -> Vec<PowerState> {
    let mut dense = vec![PowerState::Unknown; ix.ids.len()];
    let mut observed = states.iter().peekable();
    for (p, id) in ix.ids.iter().enumerate() {
        while observed.next_if(|(o, _)| *o < id).is_some() {}
        if let Some((_, s)) = observed.next_if(|(o, _)| *o == id) {
            dense[p] = *s;
        }
    }
    dense
}

/// The edges a step's wait follows: upstream for a start, downstream for a stop.
#[derive(Clone, Copy)]
enum Edges {
    Up,
    Down,
}

struct Builder<'a> {
    topology: &'a Topology,
    ix: &'a Index,
    obs: Observations<'a>,
    /// The observed state of each node.
    state: Vec<PowerState>,
    steps: Vec<Step>,
    /// The step of each node, or [`NONE`].
    step_of: Vec<Pos>,
    /// Memo: the planned steps a node's step must wait for (sorted).
    frontier: Vec<Option<Vec<usize>>>,
}

impl Builder<'_> {
    fn id(&self, p: Pos) -> NodeId {
        self.ix.ids[p as usize]
    }

    fn state(&self, p: Pos) -> PowerState {
        self.state[p as usize]
    }

    fn busy(&self, p: Pos) -> bool {
        !self.obs.busy.is_empty() && self.obs.busy.contains(&self.id(p))
    }

    fn start(&mut self, target: Pos, plan: &mut Plan) {
        for n in self.start_order(target) {
            // Up means on *and* ready: a node with a readiness probe gets a step (which finds
            // it on and waits for the probe), and so does one another cascade is operating.
            if self.state(n) == PowerState::On && !self.ix.probed[n as usize] && !self.busy(n) {
                plan.skipped.push(Decision { node: self.id(n), reason: "already on".into() });
                continue;
            }
            let after = self.wait_for(n, Edges::Up);
            let role = if n == target { Role::Requested } else { Role::Required };
            self.push(n, Action::Start, after, role);
        }
    }

    /// Post-order: dependencies (sorted) first, then the hosting chain, then the node.
    fn start_order(&self, target: Pos) -> Vec<Pos> {
        self.post_order(target, &self.ix.up)
    }

    /// Post-order over "what needs n": dependents and children (sorted), then n.
    fn stop_order(&self, target: Pos) -> Vec<Pos> {
        self.post_order(target, &self.ix.down_sorted)
    }

    /// Depth-first post-order from `root`, visiting each node's `next` in order (iterative:
    /// a deep chain cannot overflow the stack).
    fn post_order(&self, root: Pos, next: &[Box<[Pos]>]) -> Vec<Pos> {
        let mut seen = vec![false; self.ix.ids.len()];
        let mut out = Vec::new();
        seen[root as usize] = true;
        let mut stack = vec![(root, 0usize)];
        while let Some((n, i)) = stack.last_mut() {
            if let Some(&m) = next[*n as usize].get(*i) {
                *i += 1;
                if !std::mem::replace(&mut seen[m as usize], true) {
                    stack.push((m, 0));
                }
            } else {
                out.push(*n);
                stack.pop();
            }
        }
        out
    }

    fn stop(&mut self, target: Pos, plan: &mut Plan) {
        let (t, ix) = (self.topology, self.ix);
        let order = self.stop_order(target);
        let mut stopping = vec![false; ix.ids.len()];
        order.iter().for_each(|n| stopping[*n as usize] = true);
        for &n in &order {
            if self.state(n) == PowerState::Off && !self.busy(n) {
                plan.skipped.push(Decision { node: self.id(n), reason: "already off".into() });
                continue;
            }
            let after = self.wait_for(n, Edges::Down);
            let role = if n == target { Role::Requested } else { Role::Dependent };
            self.push(n, Action::Stop, after, role);
        }

        // Re-evaluation, users before what they use: the dependencies of everything stopped,
        // and the hosts a stop may leave empty.
        let mut queue: BinaryHeap<(u32, NodeId, Pos)> = BinaryHeap::new();
        let mut queued = vec![false; ix.ids.len()];
        // Candidates reached as a dependency (re-evaluated as such), the others as hosts.
        let mut as_dependency = vec![false; ix.ids.len()];
        // A node already stopping is never re-evaluated: it is not queued.
        let enqueue = |n: Pos,
                       queue: &mut BinaryHeap<(u32, NodeId, Pos)>,
                       queued: &mut [bool],
                       as_dep: &mut [bool],
                       stopping: &[bool]| {
            for &d in ix.deps[n as usize].iter().filter(|d| !stopping[**d as usize]) {
                as_dep[d as usize] = true;
                if !std::mem::replace(&mut queued[d as usize], true) {
                    queue.push((ix.rank[d as usize], ix.ids[d as usize], d));
                }
            }
            let host = ix.parent[n as usize];
            if host != NONE && !stopping[host as usize] && !std::mem::replace(&mut queued[host as usize], true) {
                queue.push((ix.rank[host as usize], ix.ids[host as usize], host));
            }
        };
        for &n in &order {
            enqueue(n, &mut queue, &mut queued, &mut as_dependency, &stopping);
        }
        while let Some((_, id, c)) = queue.pop() {
            if stopping[c as usize] || self.state(c) == PowerState::Off {
                continue;
            }
            let dependency = as_dependency[c as usize];
            if let Some(cascade) = self.obs.held.get(&id) {
                if dependency {
                    plan.kept.push(Decision { node: id, reason: format!("needed by start {cascade} in progress") });
                }
                continue;
            }
            let mut users: Vec<Pos> = ix.down[c as usize].iter().copied().filter(|u| !stopping[*u as usize]).collect();
            users.retain(|u| self.state(*u).may_be_running());
            users.sort_unstable();
            users.dedup();
            if !users.is_empty() {
                // A host that still runs guests or has users is not empty: nothing to say.
                if dependency {
                    let names: Vec<String> = users.iter().map(|u| t.name_of(self.id(*u))).collect();
                    plan.kept.push(Decision { node: id, reason: format!("used by {}", names.join(", ")) });
                }
                continue;
            }
            if dependency && ix.confirm_auto_shutdown[c as usize] {
                plan.proposed.push(Decision { node: id, reason: "no longer used; confirm_auto_shutdown is on".into() });
                continue;
            }
            if !dependency && !ix.stop_when_empty[c as usize] {
                // An emptied host is proposed, never stopped unless it opts in.
                plan.proposed.push(Decision {
                    node: id,
                    reason: "no running guest and no user left; stop_when_empty is off".into(),
                });
                continue;
            }
            stopping[c as usize] = true;
            let after = self.wait_for(c, Edges::Down);
            self.push(c, Action::Stop, after, Role::Unused);
            enqueue(c, &mut queue, &mut queued, &mut as_dependency, &stopping);
        }
    }

    fn push(&mut self, n: Pos, action: Action, after: Vec<usize>, role: Role) {
        let id = self.steps.len();
        self.steps.push(Step { id, node: self.id(n), action, after, role });
        self.step_of[n as usize] = id as Pos;
    }

    /// The steps `n` waits for (sorted): for each neighbour along `edges`, its step if it
    /// has one, else (it was skipped or is out of scope) what that neighbour itself would
    /// wait for (memoized). Iterative (a long run of skipped nodes cannot overflow the
    /// stack); the links are acyclic, so a node's neighbours are settled before it.
    fn wait_for(&mut self, n: Pos, edges: Edges) -> Vec<usize> {
        let ix = self.ix;
        let next = match edges {
            Edges::Up => &ix.up,
            Edges::Down => &ix.down,
        };
        let mut out = Vec::with_capacity(next[n as usize].len());
        for &k in next[n as usize].iter() {
            match self.step_of[k as usize] {
                NONE => {
                    self.settle_frontier(k, next);
                    out.extend(self.frontier[k as usize].iter().flatten().copied());
                }
                s => out.push(s as usize),
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Computes the memo of `k`, a node with no step, and of the stepless nodes it looks
    /// through.
    fn settle_frontier(&mut self, k: Pos, next: &[Box<[Pos]>]) {
        let mut stack = vec![(k, false)];
        while let Some((m, expanded)) = stack.pop() {
            if self.frontier[m as usize].is_some() {
                continue;
            }
            let neighbours = &next[m as usize];
            if !expanded {
                stack.push((m, true));
                stack.extend(
                    neighbours
                        .iter()
                        .filter(|j| self.step_of[**j as usize] == NONE && self.frontier[**j as usize].is_none())
                        .map(|j| (*j, false)),
                );
                continue;
            }
            let mut out = Vec::new();
            for &j in neighbours.iter() {
                match self.step_of[j as usize] {
                    NONE => out.extend(self.frontier[j as usize].iter().flatten().copied()),
                    s => out.push(s as usize),
                }
            }
            out.sort_unstable();
            out.dedup();
            self.frontier[m as usize] = Some(out);
        }
    }
}

fn critical_paths(ix: &Index, obs: &Observations<'_>, steps: &[Step]) -> (Duration, Duration) {
    let mut est = vec![Duration::ZERO; steps.len()];
    let mut worst = vec![Duration::ZERO; steps.len()];
    for s in steps {
        let timeout = ix.pos(s.node).map_or(Duration::ZERO, |p| {
            let (start, stop) = ix.timeouts[p as usize];
            match s.action {
                Action::Start => start,
                Action::Stop => stop,
            }
        });
        let typical = if obs.durations.is_empty() {
            timeout
        } else {
            obs.durations.get(&(s.node, s.action)).copied().unwrap_or(timeout)
        };
        let before_est = s.after.iter().map(|a| est[*a]).max().unwrap_or_default();
        let before_worst = s.after.iter().map(|a| worst[*a]).max().unwrap_or_default();
        est[s.id] = before_est + typical;
        worst[s.id] = before_worst + timeout;
    }
    (est.into_iter().max().unwrap_or_default(), worst.into_iter().max().unwrap_or_default())
}
