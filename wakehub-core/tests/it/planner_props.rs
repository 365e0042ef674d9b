//! Planner invariants on random topologies and random observed states.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use wakehub_core::connector::PowerState;
use wakehub_core::model::Action;
use wakehub_core::model::{Capability, Kind, NodeId, Topology};
use wakehub_core::plan::{Observations, Plan, plan};

use crate::support::spec;

/// A random valid topology: nodes added with random kinds and parents, then random links
/// (the model refuses the invalid ones).
fn topology() -> impl Strategy<Value = (Topology, Vec<u8>)> {
    let nodes = proptest::collection::vec((0u8..4, any::<prop::sample::Index>()), 1..25);
    let links = proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..40);
    let states = proptest::collection::vec(0u8..6, 25);
    (nodes, links, states).prop_map(|(nodes, links, states)| {
        let mut t = Topology::new();
        let mut ids: Vec<NodeId> = Vec::new();
        for (i, (k, parent)) in nodes.into_iter().enumerate() {
            let (kind, offers) = match k {
                0 => (Kind::Physical, vec![Capability::Proxmox, Capability::Docker]),
                1 => (Kind::Vm, vec![Capability::Docker]),
                2 => (Kind::Container, vec![]),
                _ => (Kind::Lxc, vec![Capability::Docker]),
            };
            let parent = (!ids.is_empty()).then(|| ids[parent.index(ids.len())]);
            let s = spec(&format!("n{i}"), kind.clone(), &offers);
            let id = t
                .add_node(s.clone(), parent)
                .or_else(|_| t.add_node(spec(&format!("n{i}"), Kind::Physical, &offers), None));
            if let Ok(id) = id {
                ids.push(id);
            }
        }
        for (a, b) in links {
            let _ = t.add_dependency(ids[a.index(ids.len())], ids[b.index(ids.len())]);
        }
        (t, states)
    })
}

fn state_of(code: u8) -> PowerState {
    [PowerState::On, PowerState::Off, PowerState::Off, PowerState::On, PowerState::Unknown, PowerState::Starting]
        [code as usize % 6]
}

/// Every step that `s` (transitively) waits for.
fn before(p: &Plan, s: usize) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut stack = p.steps[s].after.clone();
    while let Some(a) = stack.pop() {
        if seen.insert(a) {
            stack.extend(p.steps[a].after.iter().copied());
        }
    }
    seen
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn start_plans_respect_parents_and_dependencies((t, codes) in topology(), pick in any::<prop::sample::Index>()) {
        let ids: Vec<NodeId> = t.nodes().map(|n| n.id).collect();
        let states: BTreeMap<NodeId, PowerState> = ids.iter().enumerate().map(|(i, id)| (*id, state_of(codes[i % codes.len()]))).collect();
        let target = ids[pick.index(ids.len())];
        let (held, durations) = (BTreeMap::new(), BTreeMap::new());
        let p = plan(&t, Observations::new(&states, &held, &durations), target, Action::Start).unwrap();
        let step_of: BTreeMap<NodeId, usize> = p.steps.iter().map(|s| (s.node, s.id)).collect();
        // Every node is started at most once, and only nodes of the closure.
        prop_assert_eq!(step_of.len(), p.steps.len());
        let closure: BTreeSet<NodeId> = t.upstream_closure(target).into_iter().chain([target]).collect();
        for s in &p.steps {
            prop_assert!(closure.contains(&s.node));
            prop_assert!(s.after.iter().all(|a| *a < s.id), "steps are listed in a valid order");
            // Nothing starts before its parent or its dependencies (when they need starting).
            let earlier = before(&p, s.id);
            for u in t.upstream_closure(s.node) {
                if let Some(us) = step_of.get(&u) {
                    prop_assert!(earlier.contains(us), "{} starts before {} it needs", t.name_of(s.node), t.name_of(u));
                }
            }
        }
        // Everything in the closure that is not on gets a step; what is on is skipped.
        for n in &closure {
            prop_assert_eq!(step_of.contains_key(n), states[n] != PowerState::On);
        }
        // Starting what is already up plans nothing.
        let all_on: BTreeMap<NodeId, PowerState> = ids.iter().map(|id| (*id, PowerState::On)).collect();
        let p = plan(&t, Observations::new(&all_on, &held, &durations), target, Action::Start).unwrap();
        prop_assert!(p.steps.is_empty());
    }

    #[test]
    fn stop_plans_never_stop_something_still_used((t, codes) in topology(), pick in any::<prop::sample::Index>(), held_pick in proptest::option::of(any::<prop::sample::Index>())) {
        let ids: Vec<NodeId> = t.nodes().map(|n| n.id).collect();
        let states: BTreeMap<NodeId, PowerState> = ids.iter().enumerate().map(|(i, id)| (*id, state_of(codes[i % codes.len()]))).collect();
        let target = ids[pick.index(ids.len())];
        let held: BTreeMap<NodeId, wakehub_core::model::CascadeId> = held_pick
            .map(|h| ids[h.index(ids.len())])
            .filter(|h| *h != target && !t.downstream_closure(target).contains(h))
            .map(|h| (h, wakehub_core::model::CascadeId::new(1)))
            .into_iter()
            .collect();
        let durations = BTreeMap::new();
        let p = plan(&t, Observations::new(&states, &held, &durations), target, Action::Stop).unwrap();
        let step_of: BTreeMap<NodeId, usize> = p.steps.iter().map(|s| (s.node, s.id)).collect();
        prop_assert_eq!(step_of.len(), p.steps.len());
        let scope: BTreeSet<NodeId> = t.downstream_closure(target).into_iter().chain([target]).collect();
        for s in &p.steps {
            prop_assert!(s.after.iter().all(|a| *a < s.id));
            let earlier = before(&p, s.id);
            // Whatever needs a stopped node and may be running is stopped first, in this plan.
            for m in t.downstream(s.node) {
                if states[&m].may_be_running() {
                    let ms = step_of.get(&m);
                    prop_assert!(ms.is_some(), "{} stops while {} still uses it", t.name_of(s.node), t.name_of(m));
                    prop_assert!(earlier.contains(ms.unwrap()));
                }
            }
            // Re-evaluation never stops what an in-flight start needs, nor what asks for
            // confirmation (unless it is an emptied host that opted in).
            if !scope.contains(&s.node) {
                prop_assert!(!held.contains_key(&s.node));
                let spec = &t.node(s.node).unwrap().spec;
                prop_assert!(!spec.confirm_auto_shutdown || spec.stop_when_empty);
            }
        }
        // Kept nodes have a reason; proposed ones need confirmation (or are emptied hosts that
        // did not opt in to being stopped) and are not stopped.
        for d in &p.proposed {
            let spec = &t.node(d.node).unwrap().spec;
            prop_assert!(spec.confirm_auto_shutdown || !spec.stop_when_empty);
            prop_assert!(!step_of.contains_key(&d.node));
            prop_assert!(t.users(d.node, |u| states[&u].may_be_running() && !step_of.contains_key(&u) && !scope.contains(&u)).is_empty());
        }
        for d in &p.kept {
            prop_assert!(!step_of.contains_key(&d.node));
        }
    }
}
