//! A private OpenSSH server on loopback whose only user's commands go through a wrapper:
//! it logs them and acknowledges `shutdown` instead of running it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The local user the private `sshd`s let in.
pub const USER: &str = "wakehub-test";
/// Its password.
pub const PASSWORD: &str = "wh-test-Pa55";

/// The local user the private `sshd`s let in (created once, password reset each time).
pub fn ensure_test_user() {
    if !Command::new("id").arg(USER).output().unwrap().status.success() {
        let out = Command::new("useradd").args(["-m", "-s", "/bin/sh", USER]).output().unwrap();
        assert!(out.status.success() || String::from_utf8_lossy(&out.stderr).contains("already exists"), "{out:?}");
    }
    let mut chpasswd = Command::new("chpasswd").stdin(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(chpasswd.stdin.as_mut().unwrap(), format!("{USER}:{PASSWORD}\n").as_bytes()).unwrap();
    assert!(chpasswd.wait().unwrap().success());
    std::fs::create_dir_all("/run/sshd").unwrap();
}

/// A private `sshd` on loopback; the test user's commands go through a wrapper that logs
/// them and answers `shutdown` without running it.
#[derive(Debug)]
pub struct Sshd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Sshd {
    /// Starts it with a fresh ed25519 host key.
    pub fn start() -> Sshd {
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "sshd is missing: `apt-get install -y openssh-server` (scripts/test.sh does it)"
        );
        ensure_test_user();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
        let wrapper = dir.path().join("wrapper.sh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$SSH_ORIGINAL_COMMAND\" >> {out}/commands.log\ncase \"$SSH_ORIGINAL_COMMAND\" in\n  *shutdown*|*poweroff*) echo 'shutdown acknowledged (test wrapper)'; touch {out}/shutdown-requested; exit 0;;\n  *) exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\";;\nesac\n",
                out = out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut sshd = Sshd { dir, child: None, port: crate::free_port() };
        sshd.new_host_key();
        sshd.spawn();
        sshd
    }

    /// Replaces its host key (takes effect at the next [`spawn`](Self::spawn)).
    pub fn new_host_key(&self) {
        let key = self.dir.path().join("host_key");
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(key.with_extension("pub"));
        let ok = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status().unwrap();
        assert!(ok.success());
    }

    /// (Re)starts the daemon and waits until it listens.
    pub fn spawn(&mut self) {
        let d = self.dir.path();
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\nPasswordAuthentication yes\nPubkeyAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM yes\nAllowUsers {USER}\nMatch User {USER}\n  ForceCommand {d}/wrapper.sh\n",
                port = self.port,
                d = d.display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start: {}",
                std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the daemon (the port then refuses connections).
    pub fn stop_daemon(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The public half of its current host key (`host_key.pub`).
    pub fn host_key_file(&self) -> PathBuf {
        self.dir.path().join("host_key.pub")
    }

    /// A file the wrapper writes (`commands.log`, `shutdown-requested`).
    pub fn out(&self, file: &str) -> PathBuf {
        self.dir.path().join("out").join(file)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop_daemon();
    }
}
