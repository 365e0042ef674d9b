//! A private Mosquitto broker (Debian's `mosquitto`) on a free loopback port: anonymous,
//! no persistence; killed on drop.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Peer, free_port, wait_for_port};

/// The running broker.
pub struct Mosquitto {
    _peer: Peer,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Mosquitto {
    /// Starts it (`apt-get install mosquitto`).
    pub fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (apt-get install mosquitto)");
        let peer = Peer::new(child, Some(dir));
        wait_for_port("mosquitto", port, Duration::from_secs(20), String::new);
        Mosquitto { _peer: peer, port }
    }
}
