//! A private Docker Engine (Debian's `dockerd`) in a temp dir, with flags that leave the
//! host's network untouched, and a busybox image imported locally (nothing is pulled).
//! Optionally also listening with mutual TLS (certificates made by `openssl`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The image every test container runs: busybox, imported from Debian's `busybox-static`.
pub const IMAGE: &str = "wakehub-test/busybox:local";

/// A private `dockerd` in a temp dir; containers removed and the daemon stopped on drop.
pub struct Dockerd {
    dir: tempfile::TempDir,
    child: Child,
    /// Its unix socket (`docker_host = "unix://…"`).
    pub socket: PathBuf,
    /// With [`Dockerd::start_with_tls`]: the mutual-TLS TCP endpoint and the client's files.
    pub tls: Option<Tls>,
}

/// The mutual-TLS endpoint of a [`Dockerd::start_with_tls`] daemon and a client's files.
#[derive(Debug)]
pub struct Tls {
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// The CA both certificates chain to.
    pub ca: PathBuf,
    /// A client certificate.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with `openssl`.
fn make_certs(dir: &Path) -> Tls {
    let sh = |script: &str| {
        let out = Command::new("sh").arg("-ec").arg(script).current_dir(dir).output().expect("sh");
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    };
    sh("EC='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'
        openssl req -x509 $EC -keyout ca-key.pem -out ca.pem -days 2 -subj /CN=wakehub-test-ca 2>/dev/null
        openssl req $EC -keyout server-key.pem -out server.csr -subj /CN=127.0.0.1 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server.pem -days 2 \
          -extfile server.ext 2>/dev/null
        openssl req $EC -keyout key.pem -out client.csr -subj /CN=wakehub 2>/dev/null
        printf 'extendedKeyUsage=clientAuth\n' > client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out cert.pem -days 2 \
          -extfile client.ext 2>/dev/null
        openssl req -x509 $EC -keyout other-key.pem -out other-ca.pem -days 2 -subj /CN=other-ca 2>/dev/null");
    Tls { port: crate::free_port(), ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") }
}

impl Dockerd {
    /// Starts a daemon on a unix socket only.
    pub fn start() -> Dockerd {
        Self::launch(false)
    }

    /// Also listening on 127.0.0.1 over TCP with mutual TLS (`--tlsverify`).
    pub fn start_with_tls() -> Dockerd {
        Self::launch(true)
    }

    fn launch(with_tls: bool) -> Dockerd {
        assert!(
            Path::new("/usr/sbin/dockerd").exists(),
            "dockerd is missing: `apt-get install -y docker.io busybox-static` (scripts/test.sh does it)"
        );
        // Short path: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new().prefix("whd").tempdir_in("/tmp").unwrap();
        let d = dir.path();
        let socket = d.join("docker.sock");
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let tls = with_tls.then(|| make_certs(d));
        let mut tls_args: Vec<String> = Vec::new();
        if let Some(t) = &tls {
            tls_args.extend(["--tlsverify".into(), "--tlscacert".into(), t.ca.display().to_string()]);
            tls_args.extend(["--tlscert".into(), d.join("server.pem").display().to_string()]);
            tls_args.extend(["--tlskey".into(), d.join("server-key.pem").display().to_string()]);
            tls_args.extend(["-H".into(), format!("tcp://127.0.0.1:{}", t.port)]);
        }
        let child = Command::new("/usr/sbin/dockerd")
            .args(&tls_args)
            .args(["--data-root", &d.join("data").display().to_string()])
            .args(["--exec-root", &d.join("exec").display().to_string()])
            .args(["--pidfile", &d.join("dockerd.pid").display().to_string()])
            .args(["-H", &format!("unix://{}", socket.display())])
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false"])
            // Its own pool of small networks, so daemons side by side (and bridges a killed
            // one left) do not exhaust Docker's default pools.
            .arg(format!("--default-address-pool=base=10.{}.0.0/16,size=24", 100 + crate::free_port() % 150))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let dockerd = Dockerd { dir, child, socket, tls };
        let deadline = Instant::now() + Duration::from_secs(40);
        while dockerd.cli(&["version", "--format", "{{.Server.Version}}"]).status.code() != Some(0) {
            assert!(Instant::now() < deadline, "dockerd did not answer:\n{}", dockerd.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        dockerd.import_busybox();
        dockerd
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Runs the `docker` CLI against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .output()
            .expect("run the docker CLI")
    }

    /// Runs the `docker` CLI and returns its output, panicking if it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A rootfs with busybox and a few applets, imported as an image.
    fn import_busybox(&self) {
        self.import_image(IMAGE, None);
    }

    /// Imports the busybox rootfs as image `tag`, with file `/variant` holding `marker` when
    /// given (two variants under one tag are two images); returns the image's id.
    pub fn import_image(&self, tag: &str, marker: Option<&str>) -> String {
        import_busybox(&self.socket, tag, marker)
    }

    /// Creates (does not start) container `name` from [`IMAGE`] with no network.
    pub fn create(&self, name: &str, extra: &[&str], cmd: &[&str]) {
        let mut args = vec!["create", "--name", name, "--network", "none"];
        args.extend(extra);
        args.push(IMAGE);
        args.extend(cmd);
        self.ok(&args);
    }

    /// Whether container `name` runs, as the CLI sees it.
    pub fn running(&self, name: &str) -> bool {
        self.ok(&["inspect", "--format", "{{.State.Running}}", name]) == "true"
    }
}

/// Imports a busybox rootfs (a few applets; file `/variant` holding `marker` when given, so
/// two variants under one tag are two images) as image `tag` into the engine listening on
/// unix socket `socket`; returns the image's id.
pub fn import_busybox(socket: &Path, tag: &str, marker: Option<&str>) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is missing");
    for applet in ["sh", "sleep", "touch", "test", "true", "false"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    if let Some(marker) = marker {
        std::fs::write(root.join("variant"), marker).unwrap();
    }
    let tar = scratch.path().join("rootfs.tar");
    let status = Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status().unwrap();
    assert!(status.success());
    let out = Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(["import", &tar.display().to_string(), tag])
        .output()
        .expect("run the docker CLI");
    assert!(out.status.success(), "docker import: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = self.cli(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.cli(&["rm", "-f", id]);
        }
        // Its networks' bridges live in the machine's namespace: remove them with it.
        let _ = self.cli(&["network", "prune", "-f"]);
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
