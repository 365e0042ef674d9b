//! A real Debian 12 machine (`tests/peers/debian.sh`): a `mmdebstrap` userland unpacked per
//! machine, its own `sshd` run chrooted in a private mount and PID namespace (its own
//! `/proc`, `/sys` read-only) on a loopback port, root logging in with a password, and a
//! local apt repository whose packages make every case a refresh must read. Powering it
//! off kills its sshd (and everything in its namespace); booting starts it again — as a
//! valid Wake-on-LAN packet for its MAC on its UDP port does. Its root is a tmpfs of its own
//! (2 GiB), so its disk is not this host's. Needs root.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{free_port, repo, wait_for_port};

/// Root's password on every Debian machine.
pub const ROOT_PASSWORD: &str = "wh-debian-Pa55";

/// The machine image, built once per content of `debian.sh` (about 20 s) into
/// `WAKEHUB_DEBIAN_CACHE` (default `target/debian`); `scripts/test.sh` builds it first.
pub fn image() -> PathBuf {
    let cache =
        std::env::var_os("WAKEHUB_DEBIAN_CACHE").map(PathBuf::from).unwrap_or_else(|| repo().join("target/debian"));
    let out = Command::new(repo().join("tests/peers/debian.sh"))
        .arg("image")
        .arg(&cache)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("tests/peers/debian.sh: {e}"));
    assert!(out.status.success(), "building the Debian machine image failed (see above)");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// One Debian machine.
#[derive(Debug)]
pub struct DebianMachine {
    dir: tempfile::TempDir,
    sshd: Arc<Mutex<Option<Child>>>,
    stop_watch: Arc<AtomicBool>,
    /// Its SSH port on 127.0.0.1.
    pub port: u16,
    /// The UDP port on 127.0.0.1 where a magic packet for [`mac`](Self::mac) boots it.
    pub wol_port: u16,
    /// Its MAC address (one per machine).
    pub mac: String,
}

/// `program` run inside the machine at `root`: a private mount and PID namespace where the
/// machine's root is a mount of its own, with `/proc`, a read-only `/sys` and its own
/// terminals (`/dev/pts`, for interactive SSH sessions), then `chroot`.
fn chrooted(root: &Path, program: &str, args: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--pid", "--fork", "--kill-child", "sh", "-c"])
        .arg(
            r#"root=$1; shift
               mount --rbind "$root" "$root" && mount -t proc proc "$root/proc" &&
               mount -t sysfs -o ro sysfs "$root/sys" &&
               mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" &&
               mount --bind "$root/dev/pts/ptmx" "$root/dev/ptmx" && exec chroot "$root" "$@""#,
        )
        .arg("sh")
        .arg(root)
        .arg(program)
        .args(args);
    c
}

/// Starts the machine's sshd and waits until it answers.
fn boot_sshd(dir: &Path, port: u16) -> Child {
    let log_path = dir.join("sshd.log");
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
    let child = chrooted(&dir.join("root"), "/usr/sbin/sshd", &["-D", "-e", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start the machine's sshd: {e}"));
    wait_for_port("the Debian machine's sshd", port, Duration::from_secs(20), || {
        std::fs::read_to_string(&log_path).unwrap_or_default()
    });
    child
}

/// A machine's power button (see [`DebianMachine::power`]).
#[derive(Debug, Clone)]
pub struct Power {
    sshd: Arc<Mutex<Option<Child>>>,
    dir: PathBuf,
    port: u16,
}

impl Power {
    /// Boots the machine unless it is on.
    pub fn boot(&self) {
        boot_if_off(&self.sshd, &self.dir, self.port);
    }

    /// Powers it off (and empties its `/run`, as the next boot would).
    pub fn power_off(&self) {
        if self.is_on() {
            kill(&self.sshd, self.port);
            empty_run(&self.dir.join("root/run"));
        }
    }

    /// Whether it is on.
    pub fn is_on(&self) -> bool {
        self.sshd.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }
}

/// Boots the machine at `dir` unless it is on.
fn boot_if_off(sshd: &Mutex<Option<Child>>, dir: &Path, port: u16) {
    let mut sshd = sshd.lock().unwrap_or_else(|e| e.into_inner());
    if sshd.is_none() {
        *sshd = Some(boot_sshd(dir, port));
    }
}

/// Empties a machine's `/run` as a boot does, keeping `/run/sshd`.
fn empty_run(run: &Path) {
    for entry in std::fs::read_dir(run).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_name() == "sshd" {
            continue;
        }
        let _ = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

fn kill(sshd: &Mutex<Option<Child>>, port: u16) {
    if let Some(mut c) = sshd.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = c.kill();
        let _ = c.wait();
    }
    // The port stops answering at once: the namespace's init was the sshd.
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The machine's reboot command (its `reboot_command`): it asks the harness, which powers
/// the machine off, clears `/run` as a boot does, and boots it again a second later.
pub const REBOOT_COMMAND: &str = "/usr/local/sbin/wakehub-test-reboot";
/// The machine's power-off command (its `shutdown_command`): the harness powers it off.
pub const SHUTDOWN_COMMAND: &str = "/usr/local/sbin/wakehub-test-poweroff";

/// Whether `packet` is a magic packet for `mac`: six 0xff, then the MAC sixteen times (a
/// SecureOn password may follow).
fn is_magic_packet(packet: &[u8], mac: &[u8; 6]) -> bool {
    packet.len() >= 102 && packet[..6] == [0xff; 6] && packet[6..102].chunks(6).all(|c| c == mac)
}

impl DebianMachine {
    /// Unpacks a fresh machine with a new host key, and boots it (its sshd answers). Its
    /// [`REBOOT_COMMAND`] reboots it.
    pub fn start() -> DebianMachine {
        let image = image();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        // Its own disk: a tmpfs, so what the machine reports of `/` (its usage, a warning
        // past 90 %) is the machine's, not this host's.
        let out =
            Command::new("mount").args(["-t", "tmpfs", "-o", "size=2g,mode=755", "wakehub-debian"]).arg(&root).output();
        assert!(
            out.as_ref().is_ok_and(|o| o.status.success()),
            "a tmpfs for the machine's root (root needed): {out:?}"
        );
        let out = Command::new("tar").arg("-C").arg(&root).arg("-xf").arg(&image).output().unwrap();
        assert!(out.status.success(), "unpack {}: {}", image.display(), String::from_utf8_lossy(&out.stderr));
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let port = free_port();
        let mac_bytes = [0x02, 0, 0, 0, (port >> 8) as u8, port as u8];
        let m = DebianMachine {
            dir,
            sshd: Arc::new(Mutex::new(None)),
            stop_watch: Arc::new(AtomicBool::new(false)),
            port,
            wol_port: udp.local_addr().unwrap().port(),
            mac: mac_bytes.map(|b| format!("{b:02x}")).join(":"),
        };
        m.run_ok(&format!(
            "ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && echo 'root:{ROOT_PASSWORD}' | chpasswd && \
             printf '#!/bin/sh\\necho rebooting\\ntouch /run/wakehub-reboot\\n' > {REBOOT_COMMAND} && chmod 755 {REBOOT_COMMAND} && \
             printf '#!/bin/sh\\necho powering off\\ntouch /run/wakehub-poweroff\\n' > {SHUTDOWN_COMMAND} && chmod 755 {SHUTDOWN_COMMAND}"
        ));
        let mut m = m;
        m.boot();
        // The power watcher: the reboot and power-off commands' markers.
        let (dir, sshd, stop) = (m.dir.path().to_owned(), m.sshd.clone(), m.stop_watch.clone());
        std::thread::spawn(move || {
            let (reboot, poweroff) = (dir.join("root/run/wakehub-reboot"), dir.join("root/run/wakehub-poweroff"));
            while !stop.load(Ordering::Relaxed) {
                let rebooting = reboot.exists();
                if rebooting || poweroff.exists() {
                    std::thread::sleep(Duration::from_millis(200));
                    kill(&sshd, port);
                    // A boot empties /run (sshd's privilege separation directory aside,
                    // which its package makes again at boot).
                    empty_run(&dir.join("root/run"));
                    if rebooting {
                        std::thread::sleep(Duration::from_secs(1));
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        boot_if_off(&sshd, &dir, port);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        // Its network card: a magic packet for its MAC boots it.
        let (dir, sshd, stop) = (m.dir.path().to_owned(), m.sshd.clone(), m.stop_watch.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, _)) = udp.recv_from(&mut buf)
                    && is_magic_packet(&buf[..n], &mac_bytes)
                {
                    boot_if_off(&sshd, &dir, port);
                }
            }
        });
        m
    }

    /// Its root directory, as seen from this machine.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `program` run inside the machine, as root.
    pub fn chrooted_command(&self, program: &str, args: &[&str]) -> Command {
        chrooted(&self.root(), program, args)
    }

    /// Runs `command` (sh) inside the machine, as root.
    pub fn run(&self, command: &str) -> Output {
        self.chrooted_command("/bin/sh", &["-c", command]).output().unwrap()
    }

    /// [`run`](Self::run), which must succeed; its stdout.
    pub fn run_ok(&self, command: &str) -> String {
        let out = self.run(command);
        assert!(out.status.success(), "`{command}` in the machine: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Boots it: its sshd listens on [`port`](Self::port) again.
    pub fn boot(&mut self) {
        self.power().boot();
    }

    /// Powers it off: its sshd and everything it started are killed.
    pub fn power_off(&mut self) {
        self.power().power_off();
    }

    /// Whether it is on.
    pub fn is_on(&self) -> bool {
        self.power().is_on()
    }

    /// Its power button, for another thread (a hypervisor emulator's guest, say).
    pub fn power(&self) -> Power {
        Power { sshd: self.sshd.clone(), dir: self.dir.path().to_owned(), port: self.port }
    }

    /// A file of the machine (a path inside it).
    pub fn file(&self, path: &str) -> PathBuf {
        self.root().join(path.trim_start_matches('/'))
    }

    /// The `[[node]]` table of this machine as a `wol-ssh` physical machine named `name`:
    /// its MAC and Wake-on-LAN port, root's password, its SSH port, its [`REBOOT_COMMAND`]
    /// and [`SHUTDOWN_COMMAND`]; `extra` adds keys to its connector table.
    pub fn node(&self, name: &str, extra: &str) -> String {
        format!(
            "[[node]]\nname = \"{name}\"\nkind = \"physical\"\nstart_timeout = \"60s\"\n[node.connector]\n\
             type = \"wol-ssh\"\nmac = \"{}\"\nbroadcast = \"127.0.0.1\"\nwol_port = {}\n{}{extra}\n",
            self.mac,
            self.wol_port,
            self.ssh_keys()
        )
    }

    /// The connector keys that reach this machine over SSH (for a node of any kind):
    /// `host`, `ssh_port`, root's password, its [`REBOOT_COMMAND`] and [`SHUTDOWN_COMMAND`].
    pub fn ssh_keys(&self) -> String {
        format!(
            "host = \"127.0.0.1\"\nssh_port = {}\nssh_user = \"root\"\nssh_password = \"{ROOT_PASSWORD}\"\n\
             reboot_command = \"{REBOOT_COMMAND}\"\nshutdown_command = \"{SHUTDOWN_COMMAND}\"\n",
            self.port
        )
    }
}

impl Drop for DebianMachine {
    fn drop(&mut self) {
        self.stop_watch.store(true, Ordering::Relaxed);
        self.power_off();
        let _ = Command::new("umount").arg("-l").arg(self.root()).output();
    }
}
