//! Planner snapshots on small fixtures, including every example of seed 003.

use std::collections::BTreeMap;

use expect_test::{Expect, expect};
use wakehub_core::connector::PowerState;
use wakehub_core::model::Action;
use wakehub_core::model::{NodeId, Topology};
use wakehub_core::plan::{Observations, plan};

use crate::support::{homelab, parse};

/// `on` lists the nodes observed on; every other node is off.
fn check(t: &Topology, action: Action, target: &str, on: &[&str], expect: Expect) {
    let states: BTreeMap<NodeId, PowerState> =
        t.nodes().map(|n| (n.id, if on.contains(&n.name()) { PowerState::On } else { PowerState::Off })).collect();
    let held = BTreeMap::new();
    let durations = BTreeMap::new();
    let obs = Observations::new(&states, &held, &durations);
    let p = plan(t, obs, t.by_name(target).unwrap().id, action).unwrap();
    let mut out = String::new();
    for s in &p.steps {
        out.push_str(&format!("#{} {} {}", s.id, s.action, t.name_of(s.node)));
        if !s.after.is_empty() {
            out.push_str(&format!(" after {:?}", s.after));
        }
        out.push_str(&format!(" ({})\n", s.role.as_str()));
    }
    for (label, list) in [("skipped", &p.skipped), ("kept", &p.kept), ("proposed", &p.proposed)] {
        for d in list {
            out.push_str(&format!("{label} {}: {}\n", t.name_of(d.node), d.reason));
        }
    }
    expect.assert_eq(&out);
}

const ALL: &[&str] = &[
    "machine1",
    "vm-docker",
    "sandbox",
    "paperless",
    "postgres",
    "vm-ubuntu",
    "machine2",
    "vm-homeassistant",
    "lxc-jellyfin",
    "lxc-cloudflared",
    "nas",
];

#[test]
fn seed_start_jellyfin_from_cold() {
    // Seed 003: NAS first (dependency), then machine2, then the LXC.
    check(
        &homelab(),
        Action::Start,
        "lxc-jellyfin",
        &[],
        expect![[r#"
        #0 start nas (required)
        #1 start machine2 (required)
        #2 start lxc-jellyfin after [0, 1] (requested)
    "#]],
    );
}

#[test]
fn start_skips_what_is_up_and_waits_through_it() {
    check(
        &homelab(),
        Action::Start,
        "sandbox",
        &["machine2", "nas"],
        expect![[r#"
        #0 start lxc-jellyfin (required)
        #1 start machine1 (required)
        #2 start vm-docker after [1] (required)
        #3 start sandbox after [0, 2] (requested)
        skipped nas: already on
        skipped machine2: already on
    "#]],
    );
    check(
        &homelab(),
        Action::Start,
        "sandbox",
        ALL,
        expect![[r#"
        skipped nas: already on
        skipped machine2: already on
        skipped lxc-jellyfin: already on
        skipped machine1: already on
        skipped vm-docker: already on
        skipped sandbox: already on
    "#]],
    );
}

#[test]
fn a_host_depending_on_something_brings_it_up_before_its_guests() {
    // The closure runs through both relations: starting a container whose VM depends on
    // the NAS brings the NAS up before the VM.
    let t = parse(
        &(include_str!("../../../examples/homelab.toml").replace(
            "name = \"vm-ubuntu\"\nkind = \"vm\"",
            "name = \"vm-ubuntu\"\nkind = \"vm\"\ndepends_on = [\"nas\"]\noffers = [\"docker\"]",
        ) + "\n[[node]]\nname = \"web\"\nkind = \"container\"\nparent = \"vm-ubuntu\"\n[node.connector]\ntype = \"sim\"\n"),
    );
    check(
        &t,
        Action::Start,
        "web",
        &[],
        expect![[r#"
        #0 start nas (required)
        #1 start machine1 (required)
        #2 start vm-ubuntu after [0, 1] (required)
        #3 start web after [2] (requested)
    "#]],
    );
}

#[test]
fn seed_stop_machine1_then_reevaluate_the_nas() {
    // Seed 003: containers, then vm-docker, then vm-ubuntu, then machine1; then
    // re-evaluation. sandbox was the only user of lxc-jellyfin, so it stops too (an LXC needs
    // no confirmation); then the NAS is unused and, being physical, is proposed.
    check(
        &homelab(),
        Action::Stop,
        "machine1",
        ALL,
        expect![[r#"
        #0 stop sandbox (dependent)
        #1 stop paperless (dependent)
        #2 stop postgres after [1] (dependent)
        #3 stop vm-docker after [0, 1, 2] (dependent)
        #4 stop vm-ubuntu (dependent)
        #5 stop machine1 after [3, 4] (requested)
        #6 stop lxc-jellyfin after [0] (unused)
        proposed nas: no longer used; confirm_auto_shutdown is on
    "#]],
    );
}

#[test]
fn shared_dependencies_stay_on_while_used() {
    let t = parse(
        &(include_str!("../../../examples/homelab.toml").to_owned()
            + "\n[[node]]\nname = \"plex\"\nkind = \"lxc\"\nparent = \"machine2\"\ndepends_on = [\"nas\"]\n[node.connector]\ntype = \"sim\"\n"),
    );
    // Plex is running: the NAS is kept, naming its user. lxc-jellyfin's host is not a
    // dependency, so machine2 is not re-evaluated.
    check(
        &t,
        Action::Stop,
        "lxc-jellyfin",
        &["machine2", "lxc-jellyfin", "nas", "plex"],
        expect![[r#"
        #0 stop lxc-jellyfin (requested)
        skipped sandbox: already off
        kept nas: used by plex
    "#]],
    );
    // Plex is off: nothing uses the NAS any more.
    check(
        &t,
        Action::Stop,
        "lxc-jellyfin",
        &["machine2", "lxc-jellyfin", "nas"],
        expect![[r#"
            #0 stop lxc-jellyfin (requested)
            skipped sandbox: already off
            proposed nas: no longer used; confirm_auto_shutdown is on
            proposed machine2: no running guest and no user left; stop_when_empty is off
        "#]],
    );
}

#[test]
fn reevaluation_never_stops_a_host_under_a_running_guest() {
    // nas hosts nothing here, so make a dependency that hosts: vm-docker is a dependency of
    // vm-homeassistant. Stopping vm-homeassistant re-evaluates vm-docker, which still hosts
    // a running container nobody asked to stop.
    let t = parse(&include_str!("../../../examples/homelab.toml").replace(
        "name = \"vm-homeassistant\"\nkind = \"vm\"\nparent = \"machine2\"",
        "name = \"vm-homeassistant\"\nkind = \"vm\"\nparent = \"machine2\"\ndepends_on = [\"vm-docker\"]",
    ));
    check(
        &t,
        Action::Stop,
        "vm-homeassistant",
        &["machine1", "vm-docker", "postgres", "machine2", "vm-homeassistant"],
        expect![[r#"
            #0 stop vm-homeassistant (requested)
            kept vm-docker: used by postgres
            proposed machine2: no running guest and no user left; stop_when_empty is off
        "#]],
    );
    check(
        &t,
        Action::Stop,
        "vm-homeassistant",
        &["machine1", "vm-docker", "machine2", "vm-homeassistant"],
        expect![[r#"
            #0 stop vm-homeassistant (requested)
            #1 stop vm-docker after [0] (unused)
            proposed machine2: no running guest and no user left; stop_when_empty is off
            proposed machine1: no running guest and no user left; stop_when_empty is off
        "#]],
    );
}

#[test]
fn stop_of_something_already_off_still_reevaluates() {
    check(
        &homelab(),
        Action::Stop,
        "paperless",
        &["machine1", "vm-docker", "postgres"],
        expect![[r#"
            #0 stop postgres (unused)
            skipped paperless: already off
            proposed vm-docker: no running guest and no user left; stop_when_empty is off
        "#]],
    );
}

#[test]
fn nodes_an_in_flight_start_needs_are_kept() {
    let t = homelab();
    let mut states: BTreeMap<NodeId, PowerState> = t.nodes().map(|n| (n.id, PowerState::On)).collect();
    states.insert(t.by_name("vm-homeassistant").unwrap().id, PowerState::Off);
    let nas = t.by_name("nas").unwrap().id;
    let held = BTreeMap::from([(nas, wakehub_core::model::CascadeId::new(7))]);
    let durations = BTreeMap::new();
    let obs = Observations::new(&states, &held, &durations);
    let p = plan(&t, obs, t.by_name("sandbox").unwrap().id, Action::Stop).unwrap();
    let names: Vec<String> = p.steps.iter().map(|s| t.name_of(s.node)).collect();
    assert_eq!(names, ["sandbox", "lxc-jellyfin"]);
    let kept: Vec<(String, String)> = p.kept.iter().map(|d| (t.name_of(d.node), d.reason.clone())).collect();
    assert_eq!(kept, [("nas".to_owned(), "needed by start cascade:7 in progress".to_owned())]);
    assert!(p.proposed.is_empty());
}
