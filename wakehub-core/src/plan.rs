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

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::time::Duration;

pub use crate::model::Action;
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

    fn state(&self, n: NodeId) -> PowerState {
        self.states.get(&n).copied().unwrap_or(PowerState::Unknown)
    }
}

/// Plans `action` on `target`. Fails only if `target` is not in the topology.
pub fn plan(topology: &Topology, obs: Observations<'_>, target: NodeId, action: Action) -> Result<Plan, ModelError> {
    topology.get(target)?;
    let mut b = Builder { topology, obs, steps: Vec::new(), step_of: HashMap::new(), frontier: HashMap::new() };
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
        Action::Start => b.start(target, &mut plan),
        Action::Stop => b.stop(target, &mut plan),
    }
    plan.steps = b.steps;
    (plan.estimate, plan.worst_case) = critical_paths(topology, &obs, &plan.steps);
    Ok(plan)
}

struct Builder<'a> {
    topology: &'a Topology,
    obs: Observations<'a>,
    steps: Vec<Step>,
    step_of: HashMap<NodeId, usize>,
    /// Memo: the planned steps a node's step must wait for.
    frontier: HashMap<NodeId, BTreeSet<usize>>,
}

impl Builder<'_> {
    fn start(&mut self, target: NodeId, plan: &mut Plan) {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        self.start_order(target, &mut seen, &mut order);
        for n in order {
            // Up means on *and* ready: a node with a readiness probe gets a step (which finds
            // it on and waits for the probe), and so does one another cascade is operating.
            let probed = self.topology.node(n).is_some_and(|node| node.spec.readiness.is_some());
            if self.obs.state(n) == PowerState::On && !probed && !self.obs.busy.contains(&n) {
                plan.skipped.push(Decision { node: n, reason: "already on".into() });
                continue;
            }
            let after = self.wait_for(n, &|t, m| t.upstream(m));
            let role = if n == target { Role::Requested } else { Role::Required };
            self.push(n, Action::Start, after, role);
        }
    }

    /// Post-order: dependencies (sorted) first, then the hosting chain, then the node.
    fn start_order(&self, n: NodeId, seen: &mut BTreeSet<NodeId>, out: &mut Vec<NodeId>) {
        if !seen.insert(n) {
            return;
        }
        for d in self.topology.dependencies(n) {
            self.start_order(d, seen, out);
        }
        if let Some(p) = self.topology.parent(n) {
            self.start_order(p, seen, out);
        }
        out.push(n);
    }

    fn stop(&mut self, target: NodeId, plan: &mut Plan) {
        let t = self.topology;
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        self.stop_order(target, &mut seen, &mut order);
        let mut stopping: BTreeSet<NodeId> = order.iter().copied().collect();
        for &n in &order {
            if self.obs.state(n) == PowerState::Off && !self.obs.busy.contains(&n) {
                plan.skipped.push(Decision { node: n, reason: "already off".into() });
                continue;
            }
            let after = self.wait_for(n, &|t, m| t.downstream(m));
            let role = if n == target { Role::Requested } else { Role::Dependent };
            self.push(n, Action::Stop, after, role);
        }

        // Re-evaluation, users before what they use: the dependencies of everything stopped,
        // and the hosts a stop may leave empty.
        let rank = topo_rank(t);
        let mut queue: BinaryHeap<(usize, NodeId)> = BinaryHeap::new();
        let mut queued = BTreeSet::new();
        // Candidates reached as a dependency (re-evaluated as such), the others as hosts.
        let mut as_dependency = BTreeSet::new();
        let enqueue = |n: NodeId,
                       queue: &mut BinaryHeap<(usize, NodeId)>,
                       queued: &mut BTreeSet<NodeId>,
                       as_dependency: &mut BTreeSet<NodeId>| {
            for d in t.dependencies(n) {
                as_dependency.insert(d);
                if queued.insert(d) {
                    queue.push((rank[&d], d));
                }
            }
            if let Some(host) = t.parent(n)
                && queued.insert(host)
            {
                queue.push((rank[&host], host));
            }
        };
        for &n in &order {
            enqueue(n, &mut queue, &mut queued, &mut as_dependency);
        }
        while let Some((_, c)) = queue.pop() {
            if stopping.contains(&c) || self.obs.state(c) == PowerState::Off {
                continue;
            }
            let dependency = as_dependency.contains(&c);
            if let Some(cascade) = self.obs.held.get(&c) {
                if dependency {
                    plan.kept.push(Decision { node: c, reason: format!("needed by start {cascade} in progress") });
                }
                continue;
            }
            let users: Vec<NodeId> = t
                .users(c, |u| self.obs.state(u).may_be_running())
                .into_iter()
                .filter(|u| !stopping.contains(u))
                .collect();
            if !users.is_empty() {
                // A host that still runs guests or has users is not empty: nothing to say.
                if dependency {
                    let names: Vec<String> = users.iter().map(|u| t.name_of(*u)).collect();
                    plan.kept.push(Decision { node: c, reason: format!("used by {}", names.join(", ")) });
                }
                continue;
            }
            let Some(node) = t.node(c) else { continue };
            if dependency && node.spec.confirm_auto_shutdown {
                plan.proposed.push(Decision { node: c, reason: "no longer used; confirm_auto_shutdown is on".into() });
                continue;
            }
            if !dependency && !node.spec.stop_when_empty {
                // An emptied host is proposed, never stopped unless it opts in.
                plan.proposed.push(Decision {
                    node: c,
                    reason: "no running guest and no user left; stop_when_empty is off".into(),
                });
                continue;
            }
            stopping.insert(c);
            let after = self.wait_for(c, &|t, m| t.downstream(m));
            self.push(c, Action::Stop, after, Role::Unused);
            enqueue(c, &mut queue, &mut queued, &mut as_dependency);
        }
    }

    /// Post-order over "what needs n": dependents and children (sorted), then n.
    fn stop_order(&self, n: NodeId, seen: &mut BTreeSet<NodeId>, out: &mut Vec<NodeId>) {
        if !seen.insert(n) {
            return;
        }
        let mut next = self.topology.downstream(n);
        next.sort();
        for m in next {
            self.stop_order(m, seen, out);
        }
        out.push(n);
    }

    fn push(&mut self, node: NodeId, action: Action, after: BTreeSet<usize>, role: Role) {
        let id = self.steps.len();
        self.steps.push(Step { id, node, action, after: after.into_iter().collect(), role });
        self.step_of.insert(node, id);
    }

    /// The steps `n` waits for: for each neighbour along `edges`, its step if it has one,
    /// else (it was skipped or is out of scope) what that neighbour itself would wait for.
    fn wait_for(&mut self, n: NodeId, edges: &dyn Fn(&Topology, NodeId) -> Vec<NodeId>) -> BTreeSet<usize> {
        if let Some(f) = self.frontier.get(&n) {
            return f.clone();
        }
        let mut out = BTreeSet::new();
        for m in edges(self.topology, n) {
            match self.step_of.get(&m) {
                Some(&s) => {
                    out.insert(s);
                }
                None => out.extend(self.wait_for(m, edges)),
            }
        }
        self.frontier.insert(n, out.clone());
        out
    }
}

/// A rank per node such that everything a node needs ranks lower.
fn topo_rank(t: &Topology) -> HashMap<NodeId, usize> {
    let mut rank = HashMap::new();
    let mut stack: Vec<(NodeId, bool)> = t.nodes().map(|n| (n.id, false)).collect();
    stack.reverse();
    let mut visiting = BTreeSet::new();
    while let Some((n, expanded)) = stack.pop() {
        if rank.contains_key(&n) {
            continue;
        }
        if expanded {
            let r = rank.len();
            rank.insert(n, r);
            continue;
        }
        if !visiting.insert(n) {
            continue;
        }
        stack.push((n, true));
        for m in t.upstream(n) {
            if !rank.contains_key(&m) {
                stack.push((m, false));
            }
        }
    }
    rank
}

fn critical_paths(t: &Topology, obs: &Observations<'_>, steps: &[Step]) -> (Duration, Duration) {
    let mut est = vec![Duration::ZERO; steps.len()];
    let mut worst = vec![Duration::ZERO; steps.len()];
    for s in steps {
        let timeout = t.node(s.node).map_or(Duration::ZERO, |n| match s.action {
            Action::Start => n.spec.timeouts.start,
            Action::Stop => n.spec.timeouts.stop,
        });
        let typical = obs.durations.get(&(s.node, s.action)).copied().unwrap_or(timeout);
        let before_est = s.after.iter().map(|a| est[*a]).max().unwrap_or_default();
        let before_worst = s.after.iter().map(|a| worst[*a]).max().unwrap_or_default();
        est[s.id] = before_est + typical;
        worst[s.id] = before_worst + timeout;
    }
    (est.into_iter().max().unwrap_or_default(), worst.into_iter().max().unwrap_or_default())
}
