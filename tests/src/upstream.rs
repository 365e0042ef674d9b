//! A service for WakeHub's proxy to front: `tests/peers/upstream.py` (aiohttp, a real HTTP/1.1
//! and WebSocket server) on a free loopback port; killed on drop.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Peer, free_port, repo, venv, wait_for_port};

/// The running service.
pub struct Upstream {
    _peer: Peer,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Upstream {
    /// Starts it (`GET /`, `POST /echo`, `GET /headers`, `GET /big?mb=N`, `GET /ws`).
    pub fn start() -> Upstream {
        Self::spawn(&[])
    }

    /// The same service over HTTPS, with the PEM certificate and key at `cert` and `key`
    /// (`https://127.0.0.1:PORT`).
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Upstream {
        Self::spawn(&[cert, key])
    }

    fn spawn(tls: &[&std::path::Path]) -> Upstream {
        let port = free_port();
        let child = Command::new(venv("python"))
            .arg(repo().join("tests/peers/upstream.py"))
            .arg(port.to_string())
            .args(tls)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/peers/upstream.py");
        let peer = Peer::new(child, None);
        wait_for_port("the upstream service", port, Duration::from_secs(20), String::new);
        Upstream { _peer: peer, port }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
