//! `sushy-tools` (PyPI), the Redfish BMC emulator of OpenStack Ironic, with its fake
//! driver, HTTP Basic auth and TLS.

use std::process::Command;
use std::time::Duration;

use crate::{Peer, venv};

/// The emulator on a free loopback port: user `root`, password `calvin`, TLS with a fresh
/// self-signed certificate; systems `node-a` (off) and `node-b` (on).
#[derive(Debug)]
pub struct Sushy {
    _peer: Peer,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The SHA-256 fingerprint of its certificate (`AB:CD:…`).
    pub fingerprint: String,
}

impl Sushy {
    /// Starts it.
    pub fn start() -> Sushy {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let sh = |script: &str| {
            let out = Command::new("sh").arg("-ec").arg(script).current_dir(d).output().unwrap();
            assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem -out cert.pem \
        -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null; mkdir state");
        let fingerprint = sh("openssl x509 -in cert.pem -noout -fingerprint -sha256");
        let fingerprint = fingerprint.split('=').nth(1).unwrap().to_owned();
        let hash = Command::new(venv("python"))
            .args(["-c", "import bcrypt; print(bcrypt.hashpw(b'calvin', bcrypt.gensalt(rounds=4)).decode())"])
            .output()
            .unwrap();
        std::fs::write(d.join("htpasswd"), format!("root:{}", String::from_utf8_lossy(&hash.stdout))).unwrap();
        let port = crate::free_port();
        std::fs::write(
        d.join("conf.py"),
        format!(
            "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {port}\nSUSHY_EMULATOR_FAKE_DRIVER = True\n\
             SUSHY_EMULATOR_STATE_DIR = '{d}/state'\nSUSHY_EMULATOR_AUTH_FILE = '{d}/htpasswd'\n\
             SUSHY_EMULATOR_SSL_CERT = '{d}/cert.pem'\nSUSHY_EMULATOR_SSL_KEY = '{d}/key.pem'\n\
             SUSHY_EMULATOR_FAKE_SYSTEMS = [\n\
               {{'uuid': '27946b59-9e44-4fa7-8e91-f3527a1ef094', 'name': 'node-a', 'power_state': 'Off', 'external_notifier': False, 'nics': [{{'mac': '00:5c:52:31:3a:9c', 'ip': '172.22.0.100'}}]}},\n\
               {{'uuid': '48295c3a-5c47-4d0c-97c0-c8e7b1e0d4a1', 'name': 'node-b', 'power_state': 'On', 'external_notifier': False, 'nics': [{{'mac': '00:5c:52:31:3a:9d', 'ip': '172.22.0.101'}}]}},\n\
             ]\n",
            d = d.display()
        ),
    )
    .unwrap();
        let child = Command::new(venv("sushy-emulator"))
            .arg("--config")
            .arg(d.join("conf.py"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(d.join("sushy.log")).unwrap())
            .spawn()
            .unwrap();
        crate::wait_for_port("sushy-emulator", port, Duration::from_secs(20), || {
            std::fs::read_to_string(d.join("sushy.log")).unwrap_or_default()
        });
        Sushy { _peer: Peer::new(child, Some(dir)), url: format!("https://127.0.0.1:{port}"), fingerprint }
    }
}
