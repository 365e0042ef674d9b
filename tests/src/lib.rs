//! # wakehub-tests
//!
//! The one harness every WakeHub test and benchmark uses to run against real peers, and
//! (in `it/`) the tests that need them. A type per peer starts it on a free port in a temp
//! dir, waits for it with a deadline, fails loudly with the peer's log when it cannot, and
//! tears it down on drop:
//!
//! | peer | type | what it is |
//! | --- | --- | --- |
//! | Docker Engine | [`Dockerd`] | Debian's `dockerd`, private data root, no bridge or iptables, a busybox image imported locally; optionally mutual TLS |
//! | OpenSSH server | [`Sshd`] | a private `sshd` on loopback; its user's `shutdown` is acknowledged by a wrapper, never run |
//! | Proxmox VE API | [`FakePve`] | `fakepve` (PyPI), self-signed TLS, token and ticket auth |
//! | Redfish BMC | [`Sushy`] | `sushy-tools` (PyPI) with its fake driver, Basic auth, TLS |
//! | Home Assistant API | [`HomeAssistant`] | a stand-in following Home Assistant's published REST API (none can run here) |
//! | a physical machine | [`Machine`] | a network namespace that wakes on a magic packet (needs root) |
//! | a Debian machine | [`DebianMachine`] | a real Debian 12 userland (`mmdebstrap`) with its own sshd and a local apt repository, chrooted in private namespaces (needs root) |
//! | connector plugins | [`plugins`] | `plugins/` built once for `wasm32-wasip2` by this crate's build script |
//!
//! The Python peers run from the repository's `.venv`, which `scripts/test.sh` creates.

mod debian;
mod dockerd;
mod fakepve;
pub mod homeassistant;
mod machine;
mod mosquitto;
mod nginx;
pub mod plugins;
pub mod shelly;
mod sinks;
mod sshd;
mod sushy;
mod upstream;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use debian::{DebianMachine, Power, REBOOT_COMMAND, ROOT_PASSWORD, SHUTDOWN_COMMAND};
pub use dockerd::{Dockerd, IMAGE, import_busybox};
pub use fakepve::{FakePve, Mirror};
pub use homeassistant::HomeAssistant;
pub use machine::Machine;
pub use mosquitto::Mosquitto;
pub use nginx::Nginx;
pub use shelly::Shelly;
pub use sinks::{Sinks, SmtpSink};
pub use sshd::{PASSWORD, Sshd, USER, ensure_test_user};
pub use sushy::Sushy;
pub use upstream::Upstream;

/// The repository's root (the workspace).
pub fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// A loopback TCP port free at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// A program of the repository's Python venv (`python`, `sushy-emulator`…), or a panic
/// saying how to get it.
pub fn venv(bin: &str) -> PathBuf {
    let path = repo().join(".venv/bin").join(bin);
    assert!(path.exists(), "{} is missing: run scripts/test.sh (it creates the venv)", path.display());
    path
}

/// Waits until `127.0.0.1:port` accepts connections, or panics with `log()` (the peer's
/// log) after `deadline`.
pub fn wait_for_port(what: &str, port: u16, deadline: Duration, log: impl Fn() -> String) {
    let until = Instant::now() + deadline;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "{what} did not start within {deadline:?}:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed (and reaped) on drop, with the temp dir it runs in.
#[derive(Debug)]
pub struct Peer {
    child: std::process::Child,
    _dir: Option<tempfile::TempDir>,
}

impl Peer {
    /// Owns `child` (and `dir`, removed after the child is gone).
    pub fn new(child: std::process::Child, dir: Option<tempfile::TempDir>) -> Peer {
        Peer { child, _dir: dir }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for `name` (P-256, two days) in `dir`: its PEM files and its
/// SHA-256 fingerprint (`AB:CD:…`, as `openssl x509 -fingerprint` writes it).
pub fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={name}"), "-addext", &format!("subjectAltName=DNS:{name}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let fp = text.trim().rsplit('=').next().unwrap().to_owned();
    assert_eq!(fp.len(), 95, "{text}");
    (cert, key, fp)
}
