//! Property tests: random sequences of node and link operations never leave a cycle in the
//! union of both layers, a link is refused exactly when it would close one, and every query
//! agrees with a naive reference implementation.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use wakehub_core::model::{Capability, Kind, NodeId, Topology};

use crate::support::spec;

#[derive(Debug, Clone)]
enum Op {
    Add { kind: u8, parent: Option<usize> },
    Link { from: usize, to: usize },
    Unlink { from: usize, to: usize },
    Move { node: usize, parent: Option<usize> },
    Remove { node: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..4, proptest::option::of(0usize..64)).prop_map(|(kind, parent)| Op::Add { kind, parent }),
        4 => (0usize..64, 0usize..64).prop_map(|(from, to)| Op::Link { from, to }),
        1 => (0usize..64, 0usize..64).prop_map(|(from, to)| Op::Unlink { from, to }),
        1 => (0usize..64, proptest::option::of(0usize..64)).prop_map(|(node, parent)| Op::Move { node, parent }),
        1 => (0usize..64).prop_map(|node| Op::Remove { node }),
    ]
}

/// The naive reference: plain edge sets, recomputed by brute force.
#[derive(Default)]
struct Reference {
    parent: BTreeMap<NodeId, Option<NodeId>>,
    deps: BTreeSet<(NodeId, NodeId)>,
}

impl Reference {
    fn up(&self, n: NodeId) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.deps.iter().filter(|(f, _)| *f == n).map(|(_, t)| *t).collect();
        v.extend(self.parent.get(&n).copied().flatten());
        v
    }
    fn down(&self, n: NodeId) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.deps.iter().filter(|(_, t)| *t == n).map(|(f, _)| *f).collect();
        v.extend(self.parent.iter().filter(|(_, p)| **p == Some(n)).map(|(c, _)| *c));
        v
    }
    fn reach(&self, from: NodeId, next: &dyn Fn(NodeId) -> Vec<NodeId>) -> BTreeSet<NodeId> {
        let mut seen = BTreeSet::new();
        let mut stack = next(from);
        while let Some(n) = stack.pop() {
            if seen.insert(n) {
                stack.extend(next(n));
            }
        }
        seen.remove(&from);
        seen
    }
    fn acyclic(&self) -> bool {
        self.parent.keys().all(|n| !self.reach(*n, &|m| self.up(m)).contains(n) && !self.up(*n).contains(n))
    }
}

fn kind_of(k: u8) -> (Kind, Vec<Capability>) {
    match k {
        0 => (Kind::Physical, vec![Capability::Proxmox, Capability::Docker]),
        1 => (Kind::Vm, vec![Capability::Docker]),
        2 => (Kind::Container, vec![]),
        _ => (Kind::Plugin("box".into()), vec![Capability::Proxmox, Capability::Docker]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_union_acyclic_and_queries_agree(ops in proptest::collection::vec(op(), 1..80)) {
        let mut t = Topology::new();
        let mut r = Reference::default();
        let mut counter = 0;
        for op in ops {
            let ids: Vec<NodeId> = t.nodes().map(|n| n.id).collect();
            let pick = |i: usize| (!ids.is_empty()).then(|| ids[i % ids.len()]);
            match op {
                Op::Add { kind, parent } => {
                    let (kind, offers) = kind_of(kind);
                    counter += 1;
                    let parent = parent.and_then(pick);
                    if let Ok(id) = t.add_node(spec(&format!("n{counter}"), kind, &offers), parent) {
                        r.parent.insert(id, parent);
                    }
                }
                Op::Link { from, to } => {
                    let (Some(f), Some(to)) = (pick(from), pick(to)) else { continue };
                    let would_cycle = f == to || r.reach(to, &|m| r.up(m)).contains(&f);
                    let duplicate = r.deps.contains(&(f, to));
                    let accepted = t.add_dependency(f, to).is_ok();
                    prop_assert_eq!(accepted, !would_cycle && !duplicate, "link {:?}->{:?}", f, to);
                    if accepted { r.deps.insert((f, to)); }
                }
                Op::Unlink { from, to } => {
                    let (Some(f), Some(to)) = (pick(from), pick(to)) else { continue };
                    let accepted = t.remove_dependency(f, to).is_ok();
                    prop_assert_eq!(accepted, r.deps.remove(&(f, to)));
                }
                Op::Move { node, parent } => {
                    let Some(n) = pick(node) else { continue };
                    let p = parent.and_then(pick);
                    if t.set_parent(n, p).is_ok() {
                        r.parent.insert(n, p);
                    }
                }
                Op::Remove { node } => {
                    let Some(n) = pick(node) else { continue };
                    let hosts = r.parent.values().any(|p| *p == Some(n));
                    let accepted = t.remove_node(n).is_ok();
                    prop_assert_eq!(accepted, !hosts);
                    if accepted {
                        r.parent.remove(&n);
                        r.deps.retain(|(f, to)| *f != n && *to != n);
                    }
                }
            }
            prop_assert!(r.acyclic(), "the union of both layers has a cycle");
            for node in t.nodes() {
                let n = node.id;
                prop_assert_eq!(node.parent, r.parent[&n]);
                prop_assert_eq!(t.upstream_closure(n), r.reach(n, &|m| r.up(m)));
                prop_assert_eq!(t.downstream_closure(n), r.reach(n, &|m| r.down(m)));
                let hosted = r.reach(n, &|m| r.parent.iter().filter(|(_, p)| **p == Some(m)).map(|(c, _)| *c).collect());
                prop_assert_eq!(t.hosted_descendants(n).into_iter().collect::<BTreeSet<_>>(), hosted);
                let dependents = r.reach(n, &|m| r.deps.iter().filter(|(_, to)| *to == m).map(|(f, _)| *f).collect());
                prop_assert_eq!(t.transitive_dependents(n).into_iter().collect::<BTreeSet<_>>(), dependents);
                let running = |x: NodeId| x.get() % 2 == 0;
                let users: Vec<NodeId> = r.down(n).into_iter().filter(|x| running(*x)).collect::<BTreeSet<_>>().into_iter().collect();
                prop_assert_eq!(t.users(n, running), users);
                let mut chain = Vec::new();
                let mut cur = r.parent[&n];
                while let Some(p) = cur { chain.insert(0, p); cur = r.parent[&p]; }
                prop_assert_eq!(t.hosting_chain(n), chain);
            }
            prop_assert_eq!(t.links().collect::<BTreeSet<_>>(), r.deps.clone());
        }
    }
}
