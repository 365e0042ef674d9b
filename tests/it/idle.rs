//! Inactivity signals measured on real peers: TCP connections, interactive SSH sessions
//! (a real OpenSSH client with a terminal) and a veto command on a real Debian machine over
//! SSH, then its stop by the rule; a container's CPU from a real Docker Engine's stats; a
//! Proxmox guest's CPU and traffic from the PVE API (fakepve). The clock is the test's.

use std::process::{Command, Stdio};
use std::time::Duration;

use wakehub_core::connector::PowerState;
use wakehub_core::engine::{Engine, IdleStatus};
use wakehub_tests::{DebianMachine, Dockerd, FakePve};

use crate::lab::engine_with_builtins as engine;

pub(crate) const MIN: i64 = 60_000;

/// The real time (ms since the epoch), where the tests' controlled clocks start.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// `name`'s idle status among `all`.
pub(crate) fn status<'a>(all: &'a [IdleStatus], e: &Engine, name: &str) -> &'a IdleStatus {
    let node = e.store().topology().unwrap().by_name(name).unwrap().id;
    all.iter().find(|s| s.node == node).unwrap_or_else(|| panic!("{name} is not tracked: {all:?}"))
}

/// A signal's reading (measured without error) and whether it counts as activity.
pub(crate) fn value(s: &IdleStatus, signal: &str) -> (String, bool) {
    let r = s.readings.iter().find(|r| r.signal == signal).unwrap_or_else(|| panic!("no {signal}: {s:?}"));
    assert_eq!(r.error, None, "{r:?}");
    (r.value.clone(), r.active)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debian_machine_in_use_is_kept_and_stopped_once_idle() {
    let machine = DebianMachine::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let idle = format!(
        "[node.idle]\nafter = \"10m\"\ntcp_ports = [{port}, {}]\nssh_sessions = true\nveto_command = \"test -e /run/backup\"\n",
        machine.port
    );
    let e = engine(&machine.node("deb", "").replace("[node.connector]", &format!("{idle}[node.connector]")));
    let t0 = now();
    // Nothing uses it: WakeHub's own SSH session to it is not counted.
    let all = e.check_idle_at(t0).await.unwrap();
    let s = status(&all, &e, "deb");
    assert_eq!(value(s, "tcp_ports"), (format!("0 connection(s) on {port}, {}", machine.port), false));
    assert_eq!(value(s, "ssh_sessions"), ("0 session(s)".into(), false));
    assert_eq!(value(s, "veto_command"), ("exit ≠ 0".into(), false));

    // A client connected to one of its ports (the machine shares this loopback).
    let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_server_side, _) = listener.accept().unwrap();
    let all = e.check_idle_at(t0 + 5 * MIN).await.unwrap();
    let s = status(&all, &e, "deb");
    assert_eq!(value(s, "tcp_ports"), (format!("1 connection(s) on {port}, {}", machine.port), true));
    assert_eq!(s.last_activity_at, t0 + 5 * MIN);
    drop(client);

    // Someone logged in with a terminal (a real OpenSSH client, with a key).
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let out = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    machine.run_ok(&format!("mkdir -p /root/.ssh && echo '{}' >> /root/.ssh/authorized_keys", public.trim()));
    let mut session = Command::new("ssh")
        .args(["-tt", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"])
        .arg("-i")
        .arg(&key)
        .args(["-p", &machine.port.to_string(), "root@127.0.0.1", "sleep 120"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    for i in 0..100 {
        let all = e.check_idle_at(t0 + 6 * MIN + i).await.unwrap();
        seen = value(status(&all, &e, "deb"), "ssh_sessions").0;
        if seen == "1 session(s)" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, "1 session(s)", "{}", machine.run_ok("ps -eo args="));
    // Its TCP connection to sshd counts too (the port is in the rule).
    let all = e.check_idle_at(t0 + 7 * MIN).await.unwrap();
    assert_eq!(value(status(&all, &e, "deb"), "tcp_ports").0, format!("1 connection(s) on {port}, {}", machine.port));
    let _ = session.kill();
    let _ = session.wait();

    // Idle for ten minutes, but its veto command says a backup runs: kept.
    machine.run_ok("touch /run/backup");
    let mut all = Vec::new();
    for i in 0..50 {
        all = e.check_idle_at(t0 + 18 * MIN + i).await.unwrap();
        if value(status(&all, &e, "deb"), "ssh_sessions").0 == "0 session(s)" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = status(&all, &e, "deb");
    assert_eq!(value(s, "veto_command"), ("exit 0".into(), true));
    assert_eq!(s.kept.as_deref(), Some("`deb`: its veto command says keep on"));
    assert!(machine.is_on());

    // The backup is over: its stop is requested, and its shutdown command runs.
    machine.run_ok("rm /run/backup");
    let all = e.check_idle_at(t0 + 19 * MIN).await.unwrap();
    let cascade = status(&all, &e, "deb").stop_requested.expect("stop requested");
    let record = tokio::time::timeout(Duration::from_secs(60), e.wait(cascade)).await.unwrap().unwrap();
    assert_eq!(record.requested_by.as_deref(), Some("idle"));
    assert!(!machine.is_on(), "the machine powered off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_container_is_active_and_a_quiet_one_idle() {
    let d = Dockerd::start();
    d.create("busy", &[], &["sh", "-c", "while :; do :; done"]);
    d.create("quiet", &[], &["sleep", "3600"]);
    d.ok(&["start", "busy", "quiet"]);
    let container = |name: &str| {
        format!(
            "[[node]]\nname = \"{name}\"\nkind = \"container\"\nparent = \"dock\"\n\
             idle = {{ after = \"5m\", cpu_percent = 20.0, net_kbps = 1.0 }}\n[node.connector]\ntype = \"docker\"\ncontainer = \"{name}\"\nstop_grace_secs = 1\n"
        )
    };
    let lab = format!(
        "[[node]]\nname = \"dock\"\nkind = \"physical\"\noffers = [\"docker\"]\n[node.connector]\ntype = \"sim\"\n\
         initially = \"on\"\ndocker_host = \"unix://{}\"\n{}{}",
        d.socket.display(),
        container("busy"),
        container("quiet")
    );
    let e = engine(&lab);
    let t0 = now();
    let all = e.check_idle_at(t0).await.unwrap();
    assert_eq!(value(status(&all, &e, "busy"), "cpu_percent"), ("first sample".into(), false));
    // Two real samples two seconds apart, read against the test's clock.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = e.check_idle_at(t0 + 2_000).await.unwrap();
    let (busy, active) = value(status(&all, &e, "busy"), "cpu_percent");
    let percent: f64 = busy.trim_end_matches(" %").parse().unwrap();
    assert!(active && percent > 40.0, "a spinning shell uses most of a core: {busy}");
    let (quiet, active) = value(status(&all, &e, "quiet"), "cpu_percent");
    assert!(!active && quiet.trim_end_matches(" %").parse::<f64>().unwrap() < 5.0, "{quiet}");
    // No network (`--network none`): no traffic either.
    assert_eq!(value(status(&all, &e, "quiet"), "net_kbps"), ("0.0 kB/s".into(), false));

    // Three minutes later by the clock, two samples a real second apart: still spinning.
    e.check_idle_at(t0 + 3 * MIN).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = e.check_idle_at(t0 + 3 * MIN + 1_000).await.unwrap();
    assert_eq!(status(&all, &e, "busy").last_activity_at, t0 + 3 * MIN + 1_000);
    // Six minutes: the quiet one is idle and stopped; the busy one was active 3 minutes ago.
    let all = e.check_idle_at(t0 + 6 * MIN).await.unwrap();
    assert!(status(&all, &e, "busy").stop_requested.is_none());
    let cascade = status(&all, &e, "quiet").stop_requested.expect("the quiet one is idle");
    tokio::time::timeout(Duration::from_secs(60), e.wait(cascade)).await.unwrap().unwrap();
    assert!(!d.running("quiet") && d.running("busy"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxmox_guest_reports_its_load_through_the_api() {
    let pve = FakePve::start();
    pve.api("POST", "/nodes/pve1/qemu/100/status/start");
    let lab = format!(
        "{}[[node]]\nname = \"vm-docker\"\nkind = \"vm\"\nparent = \"pve\"\n\
         idle = {{ after = \"5m\", cpu_percent = 50.0, net_kbps = 1.0 }}\n[node.connector]\ntype = \"proxmox\"\nvmid = 100\n",
        pve.host_node(&pve.token_auth(&pve.token_secret, Some(&pve.fingerprint)))
    );
    let e = engine(&lab);
    let t0 = now();
    let mut all = Vec::new();
    for i in 0..50 {
        all = e.check_idle_at(t0 + i).await.unwrap();
        if !all.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let current = pve.api("GET", "/nodes/pve1/qemu/100/status/current");
    let expected = current["data"]["cpu"].as_f64().unwrap() * current["data"]["cpus"].as_f64().unwrap() * 100.0;
    let s = status(&all, &e, "vm-docker");
    assert_eq!(value(s, "cpu_percent"), (format!("{expected:.1} %"), false), "{current}");
    assert_eq!(value(s, "net_kbps"), ("first sample".into(), false));
    let all = e.check_idle_at(t0 + 6 * MIN).await.unwrap();
    let s = status(&all, &e, "vm-docker");
    assert_eq!(value(s, "net_kbps"), ("0.0 kB/s".into(), false));
    let cascade = s.stop_requested.expect("idle");
    tokio::time::timeout(Duration::from_secs(60), e.wait(cascade)).await.unwrap().unwrap();
    let t = e.store().topology().unwrap();
    assert_eq!(e.observe(&t).await[&t.by_name("vm-docker").unwrap().id], PowerState::Off);
}
