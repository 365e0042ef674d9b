//! A maintenance window over a Proxmox host and its guest, both real Debian machines: the
//! host wakes by Wake-on-LAN, the guest starts through `fakepve`'s API (whose VM 100 the
//! harness mirrors onto the guest machine), both are refreshed, upgraded (guest first) and
//! rebooted because their upgrades asked for it (the guest stopped cleanly for its host's
//! reboot and brought back), verified, and put back to sleep as they were.

use std::time::Duration;

use wakehub_core::connector::PowerState;
use wakehub_core::engine::{Engine, RefreshOptions, Selection};
use wakehub_core::events::CascadeStatus;
use wakehub_core::model::Action;
use wakehub_core::store::{ExecutionStatus, MaintenanceRunRecord, RunStatus};
use wakehub_tests::{DebianMachine, FakePve};

use crate::lab::{engine_with_builtins as engine, run_to_end as run};

/// The lab: host `pve` (a Debian machine that wakes by Wake-on-LAN and offers fakepve's
/// node `pve1`) and its VM `vm1` (fakepve's guest 100, reached over SSH on `guest`).
fn lab(pve: &FakePve, host: &DebianMachine, guest: &DebianMachine) -> String {
    let host_node = host
        .node(
            "pve",
            &format!(
                "proxmox_url = \"{}\"\nproxmox_node = \"pve1\"\n{}",
                pve.url,
                pve.token_auth(&pve.token_secret, Some(&pve.fingerprint))
            ),
        )
        .replacen("kind = \"physical\"\n", "kind = \"physical\"\noffers = [\"proxmox\"]\ntags = [\"patch\"]\n", 1);
    format!(
        "{host_node}\n[[node]]\nname = \"vm1\"\nkind = \"vm\"\nparent = \"pve\"\ntags = [\"patch\"]\n\
         readiness = {{ tcp = \"127.0.0.1:{}\" }}\n[node.connector]\ntype = \"proxmox\"\nvmid = 100\n{}",
        guest.port,
        guest.ssh_keys()
    )
}

async fn power(e: &Engine, name: &str) -> PowerState {
    let t = e.store().topology().unwrap();
    e.observe(&t).await[&t.by_name(name).unwrap().id]
}

async fn run_ends(e: &Engine, id: i64) -> MaintenanceRunRecord {
    let until = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let r = e.store().maintenance_run(id).unwrap().unwrap();
        if r.status != RunStatus::Running {
            return r;
        }
        assert!(std::time::Instant::now() < until, "the run did not end: {:?}", e.store().maintenance_steps(id));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_wakes_patches_and_reboots_a_host_and_its_guest_then_puts_both_back_to_sleep() {
    let pve = FakePve::start();
    let host = DebianMachine::start();
    let guest = DebianMachine::start();
    for m in [&host, &guest] {
        // The broken package is held: this run is about the rest.
        m.run_ok("apt-mark hold demo-broken >/dev/null");
    }
    let _mirror = pve.mirror(100, guest.power(), host.power());
    let e = engine(&lab(&pve, &host, &guest));

    // Known once while up, then both put to sleep.
    assert_eq!(run(&e, "vm1", Action::Start).await.status, CascadeStatus::Completed);
    for name in ["pve", "vm1"] {
        let r = e.refresh_machine(name, RefreshOptions::default(), "alice").await.unwrap();
        assert_eq!((r.state.updates, r.state.held), (4, 2), "{name}: {:?}", r.state);
    }
    assert_eq!(run(&e, "pve", Action::Stop).await.status, CascadeStatus::Completed);
    assert!(!host.is_on() && !guest.is_on());

    // The plan: wake the host, then its guest; guest first for the upgrades; the kernel
    // package makes a reboot likely; an estimate from the defaults (no past runs).
    let selection = Selection { nodes: vec![], tags: vec!["patch".into()] };
    let plan = e.plan_maintenance(&selection).await.unwrap();
    assert_eq!(plan.wake, ["pve", "vm1"]);
    let order: Vec<(&str, usize, &str)> =
        plan.machines.iter().map(|m| (m.name.as_str(), m.level, m.power_before.as_str())).collect();
    assert_eq!(order, [("vm1", 0, "off"), ("pve", 1, "off")]);
    let vm1 = &plan.machines[0];
    assert_eq!(vm1.host.as_deref(), Some("pve"));
    assert_eq!((vm1.updates, vm1.security_updates, vm1.reboot.as_str()), (4, 1, "likely"));
    assert_eq!(vm1.packages[0].name, "demo-libssl", "security first");
    assert_eq!(vm1.held, ["demo-broken", "demo-held"]);
    assert!(plan.estimate_secs > 0 && vm1.estimate_basis.contains("default"), "{plan:?}");

    // The run.
    let record = e.run_maintenance(selection.clone(), None, "manual", "alice").await.unwrap();
    // One run at a time per machine.
    let again = e.run_maintenance(selection, None, "manual", "bob").await.unwrap_err();
    assert_eq!(again.code().as_str(), "CONFLICT", "{again}");
    let record = run_ends(&e, record.id).await;
    let steps = e.store().maintenance_steps(record.id).unwrap();
    let trail: Vec<String> = steps
        .iter()
        .filter(|s| s.status == "done")
        .map(|s| format!("{} {}", s.phase, s.node.as_deref().unwrap_or("-")))
        .collect();
    assert_eq!(
        record.status,
        RunStatus::Succeeded,
        "{}\n{trail:#?}\n{steps:#?}",
        record.report.as_deref().unwrap_or("")
    );
    let at = |step: &str| trail.iter().position(|s| s == step).unwrap_or_else(|| panic!("no `{step}` in {trail:#?}"));
    // Woken host first; the guest upgraded and rebooted before its host is touched; the
    // guest stopped for the host's reboot and brought back; then both put back to sleep,
    // the guest first.
    assert!(at("wake pve") < at("wake vm1"));
    assert!(at("upgrade vm1") < at("reboot vm1"));
    assert!(at("reboot vm1") < at("upgrade pve"));
    assert!(at("upgrade pve") < at("stop-guests vm1"));
    assert!(at("stop-guests vm1") < at("reboot pve"));
    assert!(at("reboot pve") < at("start-guests vm1"));
    assert!(at("start-guests vm1") < at("verify vm1") && at("verify pve") < at("restore vm1"));
    assert!(at("restore vm1") < at("restore pve"));
    let report = record.report.unwrap();
    assert!(report.starts_with(&format!("# Maintenance run {}: succeeded", record.id)), "{report}");
    assert!(report.contains("Put back to sleep: vm1, pve."), "{report}");
    assert!(
        report.contains("- vm1 (was off): woken; upgraded demo-newdep 1.0, demo-app 2.0, demo-kernel 1.1, "),
        "{report}"
    );

    // Both back to how they were: off.
    assert!(!host.is_on() && !guest.is_on());
    assert_eq!(power(&e, "pve").await, PowerState::Off);
    assert_eq!(power(&e, "vm1").await, PowerState::Off);
    // Up to date, no reboot pending; every action an ordinary execution in mode
    // `maintenance`, its actor the run.
    for name in ["pve", "vm1"] {
        let id = e.store().topology().unwrap().by_name(name).unwrap().id;
        let state = e.store().machine_state(id).unwrap().unwrap();
        assert_eq!((state.updates, state.reboot_required), (0, false), "{name}: {state:?}");
        let executions = e.store().executions(Some(id), 10).unwrap();
        let done: Vec<(&str, &str, ExecutionStatus)> =
            executions.iter().map(|x| (x.action.as_str(), x.mode.as_str(), x.status)).collect();
        assert_eq!(
            done,
            [
                ("reboot", "maintenance", ExecutionStatus::Succeeded),
                ("upgrade", "maintenance", ExecutionStatus::Succeeded)
            ],
            "{name}"
        );
        assert!(executions.iter().all(|x| x.actor == format!("maintenance-run:{}", record.id)));
    }
    // A second plan learned from this run.
    let plan = e.plan_maintenance(&Selection { nodes: vec!["vm1".into()], tags: vec![] }).await.unwrap();
    assert!(plan.machines[0].estimate_basis.contains("past runs"), "{plan:?}");
}
