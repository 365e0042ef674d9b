//! A stand-in for Home Assistant's REST API (`tests/peers/homeassistant.py`): no Home
//! Assistant can run here, so it follows the published API (`/api/states/<entity>`,
//! `/api/services/switch/turn_on|turn_off`, bearer tokens) for the entities the tests use.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::{Peer, repo, venv};

/// The API on a free loopback port, accepting one long-lived access token.
#[derive(Debug)]
pub struct HomeAssistant {
    _peer: Peer,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl HomeAssistant {
    /// Starts it with `token` as the only valid access token.
    pub fn start(token: &str) -> HomeAssistant {
        let mut child = Command::new(venv("python"))
            .arg(repo().join("tests/peers/homeassistant.py"))
            .arg(token)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start the Home Assistant stand-in: {e}"));
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the Home Assistant stand-in did not start: {line:?}"));
        let url = v["url"].as_str().unwrap_or_else(|| panic!("no url in {line:?}")).to_owned();
        HomeAssistant { _peer: Peer::new(child, None), url }
    }
}
