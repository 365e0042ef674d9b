//! A private Mosquitto broker (Debian's `mosquitto`) on a free loopback port: anonymous,
//! no persistence, and optionally a second listener over TLS; killed on drop.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Peer, free_port, wait_for_port};

/// The running broker.
pub struct Mosquitto {
    _peer: Peer,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its TLS port, when started with a certificate.
    pub tls_port: Option<u16>,
}

impl Mosquitto {
    /// Starts it (`apt-get install mosquitto`).
    pub fn start() -> Mosquitto {
        Self::spawn(None)
    }

    /// Starts it with a second listener over TLS, with the PEM certificate and key at
    /// `cert` and `key` (`tls_port`).
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Mosquitto {
        Self::spawn(Some((cert, key)))
    }

    fn spawn(tls: Option<(&std::path::Path, &std::path::Path)>) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        // Listener options apply to every listener (mosquitto 2: `per_listener_settings false`).
        let mut text = format!("allow_anonymous true\npersistence false\nlistener {port} 127.0.0.1\n");
        let tls_port = tls.map(|(cert, key)| {
            // Run as root, mosquitto drops to its own user before reading them: copies it may read.
            use std::os::unix::fs::PermissionsExt;
            let readable = |from: &std::path::Path, name: &str| {
                let to = dir.path().join(name);
                std::fs::copy(from, &to).unwrap();
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
                to
            };
            let (cert, key) = (readable(cert, "cert.pem"), readable(key, "key.pem"));
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let tls_port = free_port();
            text += &format!("listener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}\n", cert.display(), key.display());
            tls_port
        });
        std::fs::write(&conf, text).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (apt-get install mosquitto)");
        let peer = Peer::new(child, Some(dir));
        wait_for_port("mosquitto", port, Duration::from_secs(20), String::new);
        if let Some(p) = tls_port {
            wait_for_port("mosquitto over TLS", p, Duration::from_secs(20), String::new);
        }
        Mosquitto { _peer: peer, port, tls_port }
    }
}
