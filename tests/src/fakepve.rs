//! `fakepve` (PyPI), the Proxmox VE API emulator, started on loopback with its own
//! self-signed certificate by `tests/peers/pve.py`; killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The emulator on a free loopback port: nodes `pve1` (guests 100 `vm-docker`, 101 an LXC,
/// 102 whose tasks fail) and `pve2`, an API token and a user with password.
#[derive(Debug)]
pub struct FakePve {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The SHA-256 fingerprint of its certificate.
    pub fingerprint: String,
    /// The API token's id (`user@realm!name`).
    pub token_id: String,
    /// The API token's secret.
    pub token_secret: String,
    /// Open while PVE node `pve2` is online (see serve.py).
    pub node_port: u16,
    /// Its self-signed certificate (the harness's own requests trust exactly it).
    cert: String,
    _dir: tempfile::TempDir,
}

impl FakePve {
    /// Starts it (tickets valid two hours, like PVE).
    pub fn start() -> FakePve {
        Self::start_with_ticket_ttl(None)
    }

    /// Tickets expire after `ttl` seconds instead of PVE's two hours.
    pub fn start_with_ticket_ttl(ttl: Option<u32>) -> FakePve {
        let python = crate::venv("python");
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(&python)
            .arg(crate::repo().join("tests/peers/pve.py"))
            .arg(dir.path())
            .env("FAKEPVE_TICKET_TTL", ttl.unwrap_or(7200).to_string())
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
            node_port: v["node_port"].as_u64().unwrap() as u16,
            cert: s("cert"),
            child,
            _dir: dir,
        }
    }

    /// The `[[node]]` table of a Proxmox host `pve` (a `sim` machine that is on) whose API
    /// is this emulator's node `pve1`, with `auth` (from [`token_auth`](Self::token_auth),
    /// or ticket keys) among its connector keys.
    pub fn host_node(&self, auth: &str) -> String {
        format!(
            "[[node]]\nname = \"pve\"\nkind = \"physical\"\noffers = [\"proxmox\"]\n[node.connector]\ntype = \"sim\"\n\
             initially = \"on\"\nproxmox_url = \"{}\"\nproxmox_node = \"pve1\"\n{auth}\n",
            self.url
        )
    }

    /// A host's connector keys for token auth with `secret`, pinned to `fingerprint`.
    pub fn token_auth(&self, secret: &str, fingerprint: Option<&str>) -> String {
        let mut s = format!("proxmox_token_id = \"{}\"\nproxmox_token_secret = \"{secret}\"\n", self.token_id);
        if let Some(fp) = fingerprint {
            s.push_str(&format!("proxmox_fingerprint = \"{fp}\"\n"));
        }
        s
    }
}

impl FakePve {
    /// A raw API call with the test token (to change the platform behind the connector's back).
    pub fn api(&self, method: &str, path: &str) -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-s", "--cacert", &self.cert, "-X", method, "-H"])
            .arg(format!("Authorization: PVEAPIToken={}={}", self.token_id, self.token_secret))
            .arg(format!("{}/api2/json{path}", self.url))
            .output()
            .expect("curl");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{method} {path}: {out:?}"))
    }
}

/// A guest of the emulator made real: while it lives, a Debian machine is on exactly when
/// the emulated guest is running and its host machine is on.
#[derive(Debug)]
pub struct Mirror {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakePve {
    /// Mirrors guest `vmid` of node `pve1` onto `guest` (a [`DebianMachine`](crate::DebianMachine)'s
    /// power), hosted by `host`: starting the guest through the API boots the machine, a
    /// shutdown powers it off, and so does powering its host off.
    pub fn mirror(&self, vmid: u32, guest: crate::Power, host: crate::Power) -> Mirror {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (url, cert, auth) = (
            self.url.clone(),
            self.cert.clone(),
            format!("Authorization: PVEAPIToken={}={}", self.token_id, self.token_secret),
        );
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let out = Command::new("curl")
                    .args(["-s", "--cacert", &cert, "-H", &auth])
                    .arg(format!("{url}/api2/json/nodes/pve1/qemu/{vmid}/status/current"))
                    .output();
                let running = out
                    .ok()
                    .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
                    .map(|v| v["data"]["status"] == "running");
                match running {
                    Some(true) if host.is_on() => guest.boot(),
                    Some(_) => guest.power_off(),
                    None => {}
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        Mirror { stop, thread: Some(thread) }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FakePve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
