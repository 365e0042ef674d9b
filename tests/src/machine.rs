//! Machines that really wake: each is a network namespace on its own veth link whose
//! listener (`tests/peers/machine.py`) starts the machine's `sshd` when a valid magic
//! packet for its MAC arrives, and kills it when the SSH shutdown wrapper is asked to shut
//! down. Needs root (namespaces). Torn down on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sshd::{PASSWORD, USER};

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("`ip` is missing: apt-get install -y iproute2");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A machine in its own network namespace, reachable at 10.231.N.2 through a veth link
/// (10.231.N.1 on this side); off until a magic packet for its MAC arrives.
#[derive(Debug)]
pub struct Machine {
    ns: String,
    veth: String,
    dir: tempfile::TempDir,
    listener: Child,
    events: Arc<Mutex<Vec<String>>>,
    net: u8,
    mac: String,
}

impl Machine {
    /// Creates machine number `net` (10.231.`net`.0/24) answering to `mac`, powered off.
    pub fn start(net: u8, mac: &str) -> Machine {
        Self::start_with(net, mac, None)
    }

    /// A machine whose Docker Engine runs while it is on: a `dockerd` started in its
    /// namespace when it boots (listening on `tcp://10.231.NET.2:2375`, and on
    /// [`docker_socket`](Self::docker_socket) for the test's own CLI), its data kept across
    /// power cycles like a disk, stopped — its containers with it — when it powers off.
    pub fn with_docker(net: u8, mac: &str) -> Machine {
        let pool = 30 + net % 50;
        // `ip netns exec` gives the machine a fresh /sys: its cgroup hierarchies are mounted
        // again there (as this host has them), as a booting machine mounts its own.
        let cgroups: Vec<String> = std::fs::read_to_string("/proc/self/mounts")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (source, path, kind, options) = (*f.first()?, *f.get(1)?, *f.get(2)?, *f.get(3)?);
                (path.starts_with("/sys/fs/cgroup") && matches!(kind, "tmpfs" | "cgroup" | "cgroup2"))
                    .then(|| format!("mkdir -p {path} && mount -t {kind} -o {options} {source} {path}"))
            })
            .collect();
        let boot = move |dir: &std::path::Path| {
            let d = dir.display();
            [
                cgroups.iter().map(|c| format!("{c};")).collect::<Vec<_>>().join(" "),
                format!("exec /usr/sbin/dockerd --data-root {d}/docker --exec-root {d}/docker-exec"),
                format!("--pidfile {d}/dockerd.pid --tls=false -H tcp://10.231.{net}.2:2375 -H unix://{d}/docker.sock"),
                "--bridge=none --iptables=false --ip6tables=false --ip-masq=false".to_owned(),
                format!("--default-address-pool=base=10.{pool}.0.0/16,size=24"),
            ]
            .join(" ")
        };
        Self::start_with(net, mac, Some(&boot))
    }

    /// The unix socket of the Docker Engine of a [`with_docker`](Self::with_docker) machine.
    pub fn docker_socket(&self) -> std::path::PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// Runs the `docker` CLI against this machine's engine (through its unix socket).
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.docker_socket().display()))
            .args(args)
            .output()
            .expect("run the docker CLI")
    }

    /// What its services (sshd, and the boot command's) wrote.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd_config.log")).unwrap_or_default()
    }

    /// Sends it a magic packet (as any machine on its link would).
    pub fn wake(&self) {
        let mac: Vec<u8> = self.mac.split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
        let mut packet = vec![0xffu8; 6];
        for _ in 0..16 {
            packet.extend_from_slice(&mac);
        }
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.set_broadcast(true).unwrap();
        socket.send_to(&packet, format!("10.231.{}.255:9", self.net)).unwrap();
    }

    /// Powers it off as its shutdown command would, and waits until it is down.
    pub fn shut_down(&self) {
        std::fs::write(self.dir.path().join("out/power-off"), b"").unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        while self.is_up() || std::path::Path::new(&self.dir.path().join("out/power-off")).exists() {
            assert!(Instant::now() < deadline, "the machine did not power off");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn start_with(net: u8, mac: &str, boot: Option<&dyn Fn(&std::path::Path) -> String>) -> Machine {
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
        let script = crate::repo().join("tests/peers/machine.py");
        let mut listener = Command::new("ip")
            .args(["netns", "exec", &ns, "python3"])
            .arg(script)
            .arg(mac)
            .arg(&config)
            .arg(out.join("power-off"))
            .args(boot.map(|b| b(d)))
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

    /// Its address.
    pub fn addr(&self) -> String {
        format!("10.231.{}.2", self.net)
    }

    /// Whether its sshd answers (it is powered on).
    pub fn is_up(&self) -> bool {
        std::net::TcpStream::connect_timeout(&format!("{}:22", self.addr()).parse().unwrap(), Duration::from_secs(1))
            .is_ok()
    }

    /// What its listener reported so far (`woke`, `powered off`…).
    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    /// Waits (at most `within`) until its listener reported `event` (it reports a power-off
    /// just after its ports go silent); how many times it did.
    pub fn wait_for_event(&self, event: &str, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let n = self.events().iter().filter(|l| *l == event).count();
            if n > 0 || Instant::now() >= deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The commands run over SSH so far.
    pub fn commands(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("out/commands.log")).unwrap_or_default()
    }

    /// Its `[[node]]` connector keys.
    pub fn connector(&self) -> String {
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
