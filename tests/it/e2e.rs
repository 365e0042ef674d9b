//! The whole story on one machine, against real peers only: the seed's "start Jellyfin".
//!
//! `nas` and `machine2` are machines that really wake: each is a network namespace on its
//! own veth link whose listener (`tests/machine/listener.py`) starts the machine's `sshd`
//! when a valid magic packet for its MAC arrives, and kills it when the SSH shutdown
//! wrapper is asked to shut down. `lxc-jellyfin` is an LXC on `fakepve`, `sandbox` a real
//! Docker container. Starting Jellyfin wakes the NAS, wakes machine2, starts the LXC;
//! stopping machine2 stops what runs on it and what depends on that, then re-evaluates the
//! NAS, which nobody uses any more: a physical machine, so its shutdown is proposed, and
//! confirming it powers the NAS off over SSH.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use wakehub_core::connector::PowerState;
use wakehub_core::engine::Engine;
use wakehub_core::events::{CascadeStatus, StepStatus};
use wakehub_core::model::Action;
use wakehub_core::store::ProposalStatus;

use crate::lab::{engine_with_builtins as engine, run_to_end as run};
use wakehub_tests::{Dockerd, FakePve, Machine, ensure_test_user};

fn lab(nas: &Machine, machine2: &Machine, pve: &FakePve, docker_socket: &Path) -> String {
    format!(
        r#"
[[node]]
name = "nas"
kind = "physical"
start_timeout = "30s"
stop_timeout = "30s"
[node.connector]
{nas}
[[node]]
name = "machine2"
kind = "physical"
offers = ["proxmox"]
start_timeout = "30s"
stop_timeout = "30s"
[node.connector]
{machine2}proxmox_url = "{url}"
proxmox_node = "pve1"
{auth}
[[node]]
name = "lxc-jellyfin"
kind = "lxc"
parent = "machine2"
depends_on = ["nas"]
[node.connector]
type = "proxmox"
vmid = 101

[[node]]
name = "machine1"
kind = "physical"
offers = ["docker"]
[node.connector]
type = "sim"
initially = "on"
docker_host = "unix://{docker}"

[[node]]
name = "sandbox"
kind = "container"
parent = "machine1"
depends_on = ["lxc-jellyfin"]
[node.connector]
type = "docker"
container = "sandbox"
stop_grace_secs = 1
"#,
        nas = nas.connector(),
        machine2 = machine2.connector(),
        url = pve.url,
        auth = pve.token_auth(&pve.token_secret, Some(&pve.fingerprint)),
        docker = docker_socket.display(),
    )
}

/// The steps of a cascade that did something, in the order they finished.
fn done(e: &Engine, cascade: wakehub_core::model::CascadeId) -> Vec<String> {
    let mut steps: Vec<_> =
        e.store().steps(cascade).unwrap().into_iter().filter(|s| s.status == StepStatus::Done).collect();
    steps.sort_by_key(|s| s.completed_at_ms);
    steps.into_iter().map(|s| format!("{} {}", s.action.as_str(), s.node_name)).collect()
}

/// Checks that both machines were woken first (in either order: nothing orders them, so
/// they boot in parallel) and returns the steps after them.
fn wakes_then(steps: &[String]) -> Vec<String> {
    let mut first: Vec<&str> = steps.iter().take(2).map(String::as_str).collect();
    first.sort();
    assert_eq!(first, ["start machine2", "start nas"], "{steps:?}");
    steps[2..].to_vec()
}

async fn state(e: &Engine, name: &str) -> PowerState {
    let t = e.store().topology().unwrap();
    e.observe(&t).await[&t.by_name(name).unwrap().id]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_jellyfin_then_stop_machine2_with_the_nas_re_evaluated() {
    assert!(
        Command::new("id").arg("-u").output().unwrap().stdout.starts_with(b"0"),
        "the end-to-end test creates network namespaces: run it as root (CI does)"
    );
    ensure_test_user();
    let nas = Machine::start(41, "52:54:00:00:41:01");
    let machine2 = Machine::start(42, "52:54:00:00:42:02");
    let pve = FakePve::start();
    let docker = Dockerd::start();
    docker.create("sandbox", &[], &["sleep", "3600"]);
    let e = engine(&lab(&nas, &machine2, &pve, &docker.socket));

    // Everything is off: the machines do not answer, the LXC and the container are stopped.
    for name in ["nas", "machine2", "lxc-jellyfin", "sandbox"] {
        assert_eq!(state(&e, name).await, PowerState::Off, "{name}");
    }

    // Start Jellyfin: its dependency first, then its hosting chain, each waited for.
    let r = run(&e, "lxc-jellyfin", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(wakes_then(&done(&e, r.id)), ["start lxc-jellyfin"]);
    assert!(nas.is_up() && machine2.is_up(), "both machines booted");
    assert!(nas.events().contains(&"booted".to_owned()), "{:?}", nas.events());
    assert!(!machine2.events().contains(&"packet invalid".to_owned()), "only its own MAC's packets are valid");
    assert_eq!(state(&e, "lxc-jellyfin").await, PowerState::On);

    // The sandbox container needs Jellyfin, which already runs: only it starts.
    let r = run(&e, "sandbox", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(done(&e, r.id), ["start sandbox"]);
    assert!(docker.running("sandbox"));

    // Stop machine2: what depends on what runs on it first, then the LXC, then the machine
    // over SSH (its host key learned now). The NAS is no longer used by anything running,
    // but it is a physical machine: its shutdown is proposed, not done.
    let r = run(&e, "machine2", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(done(&e, r.id), ["stop sandbox", "stop lxc-jellyfin", "stop machine2"]);
    assert!(!docker.running("sandbox"));
    assert!(!machine2.is_up(), "machine2 powered off");
    assert_eq!(machine2.commands().trim(), "sudo -n shutdown -h now");
    assert!(nas.is_up(), "the NAS stays up until the proposal is confirmed");
    // The NAS is no longer used; the sandbox's Docker host machine1 now runs nothing.
    let proposals = e.store().proposals(false).unwrap();
    let mut proposed: Vec<(&str, ProposalStatus)> =
        proposals.iter().map(|p| (p.node_name.as_str(), p.status)).collect();
    proposed.sort_by_key(|(name, _)| *name);
    assert_eq!(proposed, [("machine1", ProposalStatus::Pending), ("nas", ProposalStatus::Pending)], "{proposals:?}");
    let nas_proposal = proposals.iter().find(|p| p.node_name == "nas").unwrap();

    // Confirming it powers the NAS off.
    let c = e.confirm_proposal(nas_proposal.id).await.unwrap();
    let c = tokio::time::timeout(Duration::from_secs(60), e.wait(c.id)).await.unwrap().unwrap();
    assert_eq!(c.status, CascadeStatus::Completed, "{c:?}");
    assert!(!nas.is_up(), "the NAS powered off");
    assert_eq!(nas.wait_for_event("powered off", Duration::from_secs(5)), 1, "{:?}", nas.events());

    // And the morning after: one request wakes everything again (host keys now pinned).
    let r = run(&e, "sandbox", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(wakes_then(&done(&e, r.id)), ["start lxc-jellyfin", "start sandbox"]);
}
