//! The Proxmox connector against `fakepve` (PyPI), the Proxmox VE API emulator, run by the
//! test on loopback with its own self-signed certificate.

use crate::support::StoreToml as _;

use wakehub_core::connector::PowerState;
use wakehub_core::engine::Engine;
use wakehub_core::events::CascadeStatus;
use wakehub_core::model::Action;

use crate::lab::{engine_with_builtins as engine, run_to_end as run};
use wakehub_tests::FakePve;

/// The lab, with the host's connector keys given by `auth`.
fn lab(pve: &FakePve, auth: &str) -> String {
    format!(
        r#"{host}
[[node]]
name = "vm-docker"
kind = "vm"
parent = "pve"
[node.connector]
type = "proxmox"
vmid = 100
shutdown_timeout_secs = 20

[[node]]
name = "lxc-jellyfin"
kind = "lxc"
parent = "pve"
[node.connector]
type = "proxmox"
vmid = 101
stop = "stop"

[[node]]
name = "broken"
kind = "vm"
parent = "pve"
[node.connector]
type = "proxmox"
vmid = 102

[[node]]
name = "ghost"
kind = "vm"
parent = "pve"
[node.connector]
type = "proxmox"
vmid = 999
"#,
        host = pve.host_node(auth)
    )
}

async fn state(engine: &Engine, name: &str) -> PowerState {
    let t = engine.store().topology().unwrap();
    engine.observe(&t).await[&t.by_name(name).unwrap().id]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_with_a_pinned_certificate_drives_vms_and_lxcs() {
    let pve = FakePve::start();
    let e = engine(&lab(&pve, &pve.token_auth(&pve.token_secret.clone(), Some(&pve.fingerprint))));
    // The token secret was given inline: it is stored encrypted, never exported.
    assert!(!e.store().export_toml().unwrap().contains(&pve.token_secret));

    let r = run(&e, "vm-docker", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(state(&e, "vm-docker").await, PowerState::On);
    let r = run(&e, "lxc-jellyfin", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(state(&e, "lxc-jellyfin").await, PowerState::On);

    // Graceful shutdown of the VM, hard stop of the LXC; both tasks followed to their end.
    let r = run(&e, "vm-docker", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(state(&e, "vm-docker").await, PowerState::Off);
    let r = run(&e, "lxc-jellyfin", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(state(&e, "lxc-jellyfin").await, PowerState::Off);

    // A failing task reports its exit status; an unknown vmid is NOT_FOUND.
    let r = run(&e, "broken", Action::Start).await;
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("PLATFORM_ERROR"), "{r:?}");
    assert!(r.error_message.as_deref().unwrap().contains("QEMU exited with code 1"), "{r:?}");
    let r = run(&e, "ghost", Action::Start).await;
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("NOT_FOUND"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_login_and_every_refusal_has_its_code() {
    // Tickets that expire after 3 s: the connector must log in again, not fail.
    let pve = FakePve::start_with_ticket_ttl(Some(3));
    let ticket = format!(
        "proxmox_user = \"root@pam\"\nproxmox_password = \"secret\"\nproxmox_fingerprint = \"{}\"\n",
        pve.fingerprint
    );
    let e = engine(&lab(&pve, &ticket));
    let r = run(&e, "vm-docker", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let r = run(&e, "vm-docker", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "expired ticket renewed, CSRF token on writes: {r:?}");

    let wrong_password = ticket.replace("\"secret\"", "\"hunter2\"");
    let r = run(&engine(&lab(&pve, &wrong_password)), "vm-docker", Action::Start).await;
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("AUTH_FAILED"), "{r:?}");
    assert!(!r.error_message.as_deref().unwrap().contains("hunter2"), "no secret in messages");

    let wrong_token = pve.token_auth("00000000-0000-0000-0000-000000000000", Some(&pve.fingerprint));
    let r = run(&engine(&lab(&pve, &wrong_token)), "vm-docker", Action::Start).await;
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("AUTH_FAILED"), "{r:?}");
    assert!(!r.error_message.as_deref().unwrap().contains(&pve.token_secret));

    let wrong_pin = pve.token_auth(&pve.token_secret, Some(&vec!["00"; 32].join(":")));
    let r = run(&engine(&lab(&pve, &wrong_pin)), "vm-docker", Action::Start).await;
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("TLS_PIN_MISMATCH"), "{r:?}");

    let unpinned = pve.token_auth(&pve.token_secret, None);
    let r = run(&engine(&lab(&pve, &unpinned)), "vm-docker", Action::Start).await;
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("UNREACHABLE"), "{r:?}");
    assert!(r.error_message.as_deref().unwrap().contains("not trusted"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_guests_links_configured_ones_and_reports_what_disappeared() {
    use wakehub_core::model::NodeState;
    let pve = FakePve::start();
    let e = engine(&lab(&pve, &pve.token_auth(&pve.token_secret.clone(), Some(&pve.fingerprint))));
    let host = e.store().topology().unwrap().by_name("pve").unwrap().id;
    let before = e.store().topology().unwrap().len();

    let report = e.discover(host).await.unwrap();
    let keys = |v: &[wakehub_core::store::DiscoveredNode]| v.iter().map(|g| g.key.clone()).collect::<Vec<_>>();
    // The configured guests are linked (same vmid), not duplicated; the template is left out.
    assert_eq!(keys(&report.updated), ["lxc/101", "qemu/100", "qemu/102"], "{report:?}");
    assert!(report.updated.iter().all(|g| g.state == NodeState::Configured));
    assert_eq!(keys(&report.added), ["lxc/104"], "{report:?}");
    assert!(report.disappeared.is_empty());
    let media = &report.added[0];
    assert_eq!((media.name.as_str(), media.status), ("media-server", PowerState::Off));

    let t = e.store().topology().unwrap();
    assert_eq!(t.len(), before + 1);
    let node = t.node(media.node).unwrap();
    assert_eq!(node.spec.state, NodeState::Discovered);
    assert_eq!(node.parent, Some(host));
    assert_eq!(node.spec.kind.as_str(), "lxc");
    assert_eq!((node.spec.connector.type_name.as_str(), node.spec.connector.int("vmid")), ("proxmox", Some(104)));
    let record = e.store().discovery(media.node).unwrap().unwrap();
    assert_eq!(record.details["tags"], serde_json::json!(["media", "nas"]), "{record:?}");
    assert_eq!(record.details["name"], "Media-Server");
    assert_eq!(e.last_seen()[&media.node], PowerState::Off);
    // A discovered node is not driven until adopted.
    let refused = e.request(media.node, Action::Start).await.unwrap_err();
    assert_eq!(refused.code().as_str(), "VALIDATION");

    // Again: the same nodes, refreshed; nothing added.
    let again = e.discover(host).await.unwrap();
    assert!(again.added.is_empty(), "{again:?}");
    assert_eq!(keys(&again.updated), ["lxc/101", "lxc/104", "qemu/100", "qemu/102"]);
    assert_eq!(e.store().topology().unwrap().len(), before + 1);

    // Adopted, it is configured and can be started.
    e.store().adopt_node(media.node, None, wakehub_core::model::Origin::Api).unwrap();
    assert!(
        e.store().adopt_node(media.node, None, wakehub_core::model::Origin::Api).is_err(),
        "adopting twice is refused"
    );
    let r = run(&e, "media-server", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    let r = run(&e, "media-server", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");

    // Destroyed on the platform: reported; the adopted node stays, marked gone.
    pve.api("DELETE", "/nodes/pve1/lxc/104");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pve.api("GET", "/nodes/pve1/lxc")["data"].as_array().unwrap().iter().any(|c| c["vmid"] == 104) {
        assert!(std::time::Instant::now() < deadline, "fakepve did not destroy CT 104");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let gone = e.discover(host).await.unwrap();
    assert_eq!(gone.disappeared.len(), 1, "{gone:?}");
    assert_eq!((gone.disappeared[0].name.as_str(), gone.disappeared[0].kept), ("media-server", Some(media.node)));
    assert!(e.store().discovery(media.node).unwrap().unwrap().gone_at_ms.is_some());

    // A host that offers nothing cannot be discovered; an unreachable API has its code.
    let vm = e.store().topology().unwrap().by_name("vm-docker").unwrap().id;
    assert_eq!(e.discover(vm).await.unwrap_err().code().as_str(), "VALIDATION");
    let wrong_pin = engine(&lab(&pve, &pve.token_auth(&pve.token_secret, Some(&vec!["00"; 32].join(":")))));
    let host = wrong_pin.store().topology().unwrap().by_name("pve").unwrap().id;
    assert_eq!(wrong_pin.discover(host).await.unwrap_err().code().as_str(), "TLS_PIN_MISMATCH");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxmox_host_shuts_down_through_its_api() {
    let pve = FakePve::start();
    let lab = format!(
        r#"
[[node]]
name = "pve2"
kind = "physical"
offers = ["proxmox"]
[node.connector]
type = "wol-ssh"
mac = "aa:bb:cc:dd:ee:02"
host = "127.0.0.1"
probe_port = {port}
shutdown_via = "proxmox"
proxmox_url = "{url}"
proxmox_node = "pve2"
{auth}
"#,
        port = pve.node_port,
        url = pve.url,
        auth = pve.token_auth(&pve.token_secret, Some(&pve.fingerprint)),
    );
    let e = engine(&lab);
    assert_eq!(state(&e, "pve2").await, PowerState::On);
    let r = run(&e, "pve2", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(state(&e, "pve2").await, PowerState::Off);

    // `shutdown_via = "proxmox"` without a Proxmox endpoint is refused by `check`.
    let bad = wakehub_core::topology_file::parse(
        "[[node]]\nname = \"m\"\nkind = \"physical\"\n[node.connector]\ntype = \"wol-ssh\"\nmac = \"aa:bb:cc:dd:ee:02\"\nhost = \"h\"\nshutdown_via = \"proxmox\"\n",
        &Default::default(),
    )
    .unwrap();
    let problems = wakehub_core::connector::Registry::builtin().validate(&bad);
    assert!(problems[0].1.contains("proxmox_url"), "{problems:?}");
}
