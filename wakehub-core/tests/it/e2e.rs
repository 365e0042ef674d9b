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

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wakehub_core::connector::PowerState;
use wakehub_core::engine::Engine;
use wakehub_core::events::{CascadeStatus, StepStatus};
use wakehub_core::model::Action;
use wakehub_core::store::ProposalStatus;

use crate::docker::Dockerd;
use crate::proxmox::FakePve;
use crate::support::{engine_with_builtins as engine, run_to_end as run};
use crate::wol_ssh::{PASSWORD, USER, ensure_test_user};

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("`ip` is missing: apt-get install -y iproute2");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A machine in its own network namespace, reachable at 10.231.N.2 through a veth link
/// (10.231.N.1 on this side); off until a magic packet for its MAC arrives.
struct Machine {
    ns: String,
    veth: String,
    dir: tempfile::TempDir,
    listener: Child,
    events: Arc<Mutex<Vec<String>>>,
    net: u8,
    mac: String,
}

impl Machine {
    fn start(net: u8, mac: &str) -> Machine {
        let pid = std::process::id();
        let (ns, veth, peer) = (format!("wh{net}-{pid}"), format!("wh{net}a{pid}"), format!("wh{net}b{pid}"));
        // Leftovers of an interrupted run would shadow the route to the subnet.
        if let Ok(out) = Command::new("ip").args(["-o", "-4", "addr"]).output() {
            let subnet = format!(" 10.231.{net}.1/24");
            for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains(&subnet)) {
                if let Some(name) = line.split_whitespace().nth(1) {
                    let _ = Command::new("ip").args(["link", "del", name.split('@').next().unwrap()]).status();
                }
            }
        }
        ip(&["netns", "add", &ns]);
        ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        ip(&["link", "add", &veth, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &ns]);
        ip(&["addr", "add", &format!("10.231.{net}.1/24"), "dev", &veth]);
        ip(&["link", "set", &veth, "up"]);
        ip(&["netns", "exec", &ns, "ip", "addr", "add", &format!("10.231.{net}.2/24"), "dev", &peer]);
        ip(&["netns", "exec", &ns, "ip", "link", "set", &peer, "up"]);

        // Its sshd: only the test user, whose commands go through a wrapper that turns
        // `shutdown` into the marker the listener powers off on.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = d.join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
        let key = d.join("host_key");
        assert!(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&key)
                .status()
                .unwrap()
                .success()
        );
        std::fs::write(
            d.join("wrapper.sh"),
            format!(
                "#!/bin/sh\necho \"$SSH_ORIGINAL_COMMAND\" >> {out}/commands.log\ncase \"$SSH_ORIGINAL_COMMAND\" in\n  *shutdown*|*poweroff*) echo 'going down'; touch {out}/power-off; exit 0;;\n  *) echo 'this machine only shuts down' >&2; exit 1;;\nesac\n",
                out = out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(d.join("wrapper.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port 22\nListenAddress 10.231.{net}.2\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM yes\nAllowUsers {USER}\nMatch User {USER}\n  ForceCommand {d}/wrapper.sh\n",
                d = d.display()
            ),
        )
        .unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/machine/listener.py");
        let mut listener = Command::new("ip")
            .args(["netns", "exec", &ns, "python3"])
            .arg(script)
            .arg(mac)
            .arg(&config)
            .arg(out.join("power-off"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the machine's listener");
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"), "the listener did not start");
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Machine { ns, veth, dir, listener, events, net, mac: mac.to_owned() }
    }

    fn addr(&self) -> String {
        format!("10.231.{}.2", self.net)
    }

    fn is_up(&self) -> bool {
        std::net::TcpStream::connect_timeout(&format!("{}:22", self.addr()).parse().unwrap(), Duration::from_secs(1))
            .is_ok()
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    fn commands(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("out/commands.log")).unwrap_or_default()
    }

    /// Its `[[node]]` connector keys.
    fn connector(&self) -> String {
        format!(
            "type = \"wol-ssh\"\nmac = \"{mac}\"\nbroadcast = \"10.231.{net}.255\"\nhost = \"{addr}\"\nssh_user = \"{USER}\"\nssh_password = \"{PASSWORD}\"\n",
            mac = self.mac,
            net = self.net,
            addr = self.addr()
        )
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.listener.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.listener.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.listener.kill();
        let _ = self.listener.wait();
        let _ = Command::new("ip").args(["link", "del", &self.veth]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

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
    let proposals = e.store().proposals(false).unwrap();
    assert_eq!(proposals.len(), 1, "{proposals:?}");
    assert_eq!((proposals[0].node_name.as_str(), proposals[0].status), ("nas", ProposalStatus::Pending));

    // Confirming it powers the NAS off.
    let c = e.confirm_proposal(proposals[0].id).await.unwrap();
    let c = tokio::time::timeout(Duration::from_secs(60), e.wait(c.id)).await.unwrap().unwrap();
    assert_eq!(c.status, CascadeStatus::Completed, "{c:?}");
    assert!(!nas.is_up(), "the NAS powered off");
    assert_eq!(nas.events().iter().filter(|l| *l == "powered off").count(), 1);

    // And the morning after: one request wakes everything again (host keys now pinned).
    let r = run(&e, "sandbox", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(wakes_then(&done(&e, r.id)), ["start lxc-jellyfin", "start sandbox"]);
}
