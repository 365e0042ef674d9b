//! The Docker connector against a real Docker Engine (Debian's `dockerd`, started by the
//! test with flags that leave the host's network untouched, and a locally imported busybox
//! image — nothing is pulled).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use wakehub_core::connector::PowerState;
use wakehub_core::engine::{Action, Engine};
use wakehub_core::events::{CascadeStatus, EventKind};

const IMAGE: &str = "wakehub-test/busybox:local";

/// A private `dockerd` in a temp dir; containers removed and the daemon stopped on drop.
struct Dockerd {
    dir: tempfile::TempDir,
    child: Child,
    socket: PathBuf,
}

impl Dockerd {
    fn start() -> Dockerd {
        assert!(
            Path::new("/usr/sbin/dockerd").exists(),
            "dockerd is missing: `apt-get install -y docker.io busybox-static` (scripts/test.sh does it)"
        );
        // Short path: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new().prefix("whd").tempdir_in("/tmp").unwrap();
        let d = dir.path();
        let socket = d.join("docker.sock");
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new("/usr/sbin/dockerd")
            .args(["--data-root", &d.join("data").display().to_string()])
            .args(["--exec-root", &d.join("exec").display().to_string()])
            .args(["--pidfile", &d.join("dockerd.pid").display().to_string()])
            .args(["-H", &format!("unix://{}", socket.display())])
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let dockerd = Dockerd { dir, child, socket };
        let deadline = Instant::now() + Duration::from_secs(40);
        while dockerd.cli(&["version", "--format", "{{.Server.Version}}"]).status.code() != Some(0) {
            assert!(Instant::now() < deadline, "dockerd did not answer:\n{}", dockerd.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        dockerd.import_busybox();
        dockerd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .output()
            .expect("run the docker CLI")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A rootfs with busybox and a few applets, imported as an image.
    fn import_busybox(&self) {
        let root = self.dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is missing");
        for applet in ["sh", "sleep", "touch", "test", "true", "false"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        let tar = self.dir.path().join("rootfs.tar");
        let status = Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status().unwrap();
        assert!(status.success());
        self.ok(&["import", &tar.display().to_string(), IMAGE]);
    }

    fn create(&self, name: &str, extra: &[&str], cmd: &[&str]) {
        let mut args = vec!["create", "--name", name, "--network", "none"];
        args.extend(extra);
        args.push(IMAGE);
        args.extend(cmd);
        self.ok(&args);
    }

    fn running(&self, name: &str) -> bool {
        self.ok(&["inspect", "--format", "{{.State.Running}}", name]) == "true"
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = self.cli(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.cli(&["rm", "-f", id]);
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Leave no mount behind in the temp dir.
        let prefix = self.dir.path().display().to_string();
        if let Ok(mounts) = std::fs::read_to_string("/proc/mounts") {
            for m in mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|m| m.starts_with(&prefix)) {
                let _ = Command::new("umount").args(["-l", m]).status();
            }
        }
    }
}

fn lab(d: &Dockerd, extra: &str) -> String {
    format!(
        r#"
[[node]]
name = "dock"
kind = "physical"
offers = ["docker"]
[node.connector]
type = "sim"
initially = "on"
docker_host = "unix://{sock}"

[[node]]
name = "plain"
kind = "container"
parent = "dock"
[node.connector]
type = "docker"
container = "plain"

[[node]]
name = "healthy"
kind = "container"
parent = "dock"
[node.connector]
type = "docker"
container = "healthy"
stop_grace_secs = 1

[[node]]
name = "sick"
kind = "container"
parent = "dock"
[node.connector]
type = "docker"
container = "sick"

[[node]]
name = "ghost"
kind = "container"
parent = "dock"
[node.connector]
type = "docker"
container = "no-such-container"
{extra}"#,
        sock = d.socket.display()
    )
}

use crate::support::engine_with_builtins as engine;

async fn run(engine: &Engine, name: &str, action: Action) -> (wakehub_core::store::CascadeRecord, Vec<EventKind>) {
    let id = engine.store().topology().unwrap().by_name(name).unwrap().id;
    let after = engine.store().last_event_id().unwrap();
    let record = engine.request(id, action).await.unwrap();
    let record =
        tokio::time::timeout(Duration::from_secs(60), engine.wait(record.id)).await.expect("cascade ends").unwrap();
    let events = engine.store().events_after(after, None, 10_000).unwrap().into_iter().map(|e| e.kind).collect();
    (record, events)
}

fn states_of(events: &[EventKind], node: &str) -> Vec<PowerState> {
    events
        .iter()
        .filter_map(|e| match e {
            EventKind::StatusChange { name, state, .. } if name == node => Some(*state),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_containers_start_stop_and_gate_on_their_healthcheck() {
    let d = Dockerd::start();
    d.create("plain", &[], &["sleep", "3600"]);
    d.create(
        "healthy",
        &["--health-cmd", "test -f /tmp/ok", "--health-interval", "300ms", "--health-retries", "50"],
        &["sh", "-c", "sleep 1; touch /tmp/ok; exec sleep 3600"],
    );
    d.create(
        "sick",
        &["--health-cmd", "false", "--health-interval", "200ms", "--health-retries", "2"],
        &["sleep", "3600"],
    );
    let e = engine(&lab(&d, ""));

    let (r, events) = run(&e, "plain", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert!(d.running("plain"));
    assert_eq!(states_of(&events, "plain").last(), Some(&PowerState::On));

    // Up only once healthy: Docker reports `starting` first, and the step waits for it.
    let (r, events) = run(&e, "healthy", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    let states = states_of(&events, "healthy");
    assert!(states.contains(&PowerState::Starting) && states.last() == Some(&PowerState::On), "{states:?}");
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.Health.Status}}", "healthy"]), "healthy");

    let (r, _) = run(&e, "healthy", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert!(!d.running("healthy"));

    // An unhealthy container fails its start.
    let (r, _) = run(&e, "sick", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Failed);
    assert_eq!(r.error_code.as_deref(), Some("PLATFORM_ERROR"), "{r:?}");

    // An unknown container.
    let (r, _) = run(&e, "ghost", Action::Start).await;
    assert_eq!(r.error_code.as_deref(), Some("NOT_FOUND"), "{r:?}");
    assert!(r.error_message.as_deref().unwrap().contains("ghost: docker"), "{r:?}");

    // Stop of everything on the host, bottom-up, through the engine.
    let (r, _) = run(&e, "plain", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed);
    assert!(!d.running("plain"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_engines_and_slow_health_are_reported() {
    let d = Dockerd::start();
    d.create("slow", &["--health-cmd", "test -f /tmp/never", "--health-interval", "30s"], &["sleep", "3600"]);
    let extra = r#"
[[node]]
name = "slow"
kind = "container"
parent = "dock"
start_timeout = "1500ms"
[node.connector]
type = "docker"
container = "slow"

[[node]]
name = "elsewhere"
kind = "container"
parent = "dock"
[node.connector]
type = "docker"
container = "x"
docker_host = "unix:///tmp/wakehub-no-such-docker.sock"
"#;
    let e = engine(&lab(&d, extra));
    let (r, _) = run(&e, "slow", Action::Start).await;
    assert_eq!(r.error_code.as_deref(), Some("TIMEOUT"), "{r:?}");
    assert!(r.error_message.as_deref().unwrap().contains("last seen starting"), "{r:?}");
    let (r, _) = run(&e, "elsewhere", Action::Start).await;
    assert_eq!(r.error_code.as_deref(), Some("UNREACHABLE"), "{r:?}");
}
