//! The Proxmox connector against `fakepve` (PyPI), the Proxmox VE API emulator, run by the
//! test on loopback with its own self-signed certificate.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use wakehub_core::connector::PowerState;
use wakehub_core::engine::{Action, Engine};
use wakehub_core::events::CascadeStatus;

struct FakePve {
    child: Child,
    url: String,
    fingerprint: String,
    token_id: String,
    token_secret: String,
    _dir: tempfile::TempDir,
}

impl FakePve {
    fn start() -> FakePve {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = root.join(".venv/bin/python");
        assert!(python.exists(), "{} is missing: run scripts/test.sh (it installs fakepve)", python.display());
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakepve/serve.py"))
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start fakepve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
            panic!("fakepve did not start: {err}");
        }
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let s = |k: &str| v[k].as_str().unwrap().to_owned();
        FakePve {
            url: s("url"),
            fingerprint: s("fingerprint"),
            token_id: s("token_id"),
            token_secret: s("token_secret"),
            child,
            _dir: dir,
        }
    }

    /// The lab, with the host's connector keys given by `auth`.
    fn lab(&self, auth: &str) -> String {
        format!(
            r#"
[[node]]
name = "pve"
kind = "physical"
offers = ["proxmox"]
[node.connector]
type = "sim"
initially = "on"
proxmox_url = "{url}"
proxmox_node = "pve1"
{auth}

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
            url = self.url
        )
    }

    fn token_auth(&self, secret: &str, fingerprint: Option<&str>) -> String {
        let mut s = format!("proxmox_token_id = \"{}\"\nproxmox_token_secret = \"{secret}\"\n", self.token_id);
        if let Some(fp) = fingerprint {
            s.push_str(&format!("proxmox_fingerprint = \"{fp}\"\n"));
        }
        s
    }
}

impl Drop for FakePve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use crate::support::{engine_with_builtins as engine, run_to_end as run};

async fn state(engine: &Engine, name: &str) -> PowerState {
    let t = engine.store().topology().unwrap();
    engine.observe(&t).await[&t.by_name(name).unwrap().id]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_with_a_pinned_certificate_drives_vms_and_lxcs() {
    let pve = FakePve::start();
    let e = engine(&pve.lab(&pve.token_auth(&pve.token_secret.clone(), Some(&pve.fingerprint))));
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
    assert_eq!(r.error_code.as_deref(), Some("PLATFORM_ERROR"), "{r:?}");
    assert!(r.error_message.as_deref().unwrap().contains("QEMU exited with code 1"), "{r:?}");
    let r = run(&e, "ghost", Action::Start).await;
    assert_eq!(r.error_code.as_deref(), Some("NOT_FOUND"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_login_and_every_refusal_has_its_code() {
    let pve = FakePve::start();
    let ticket = format!(
        "proxmox_user = \"root@pam\"\nproxmox_password = \"secret\"\nproxmox_fingerprint = \"{}\"\n",
        pve.fingerprint
    );
    let e = engine(&pve.lab(&ticket));
    let r = run(&e, "vm-docker", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    let r = run(&e, "vm-docker", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "ticket + CSRF token on writes: {r:?}");

    let wrong_password = ticket.replace("\"secret\"", "\"hunter2\"");
    let r = run(&engine(&pve.lab(&wrong_password)), "vm-docker", Action::Start).await;
    assert_eq!(r.error_code.as_deref(), Some("AUTH_FAILED"), "{r:?}");
    assert!(!r.error_message.as_deref().unwrap().contains("hunter2"), "no secret in messages");

    let wrong_token = pve.token_auth("00000000-0000-0000-0000-000000000000", Some(&pve.fingerprint));
    let r = run(&engine(&pve.lab(&wrong_token)), "vm-docker", Action::Start).await;
    assert_eq!(r.error_code.as_deref(), Some("AUTH_FAILED"), "{r:?}");
    assert!(!r.error_message.as_deref().unwrap().contains(&pve.token_secret));

    let wrong_pin = pve.token_auth(&pve.token_secret, Some(&vec!["00"; 32].join(":")));
    let r = run(&engine(&pve.lab(&wrong_pin)), "vm-docker", Action::Start).await;
    assert_eq!(r.error_code.as_deref(), Some("TLS_PIN_MISMATCH"), "{r:?}");

    let unpinned = pve.token_auth(&pve.token_secret, None);
    let r = run(&engine(&pve.lab(&unpinned)), "vm-docker", Action::Start).await;
    assert_eq!(r.error_code.as_deref(), Some("UNREACHABLE"), "{r:?}");
    assert!(r.error_message.as_deref().unwrap().contains("not trusted"), "{r:?}");
}
