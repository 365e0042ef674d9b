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

/// The `[[node]]` table of `nas-plug`, the Home Assistant switch `switch.nas_plug` at `base`
/// driven by the `http-switch` plugin; `token` is its `token` key as written (a value, or
/// `env:VAR`), `node_keys` more node keys (`start_timeout = "10s"`).
pub fn nas_plug(base: &str, token: &str, node_keys: &str) -> String {
    format!(
        r#"
[[node]]
name = "nas-plug"
kind = "switch"
{node_keys}
[node.connector]
type = "plugin:http-switch"
on_url = "{base}/api/services/switch/turn_on"
on_body = '{{"entity_id": "switch.nas_plug"}}'
off_url = "{base}/api/services/switch/turn_off"
off_body = '{{"entity_id": "switch.nas_plug"}}'
status_url = "{base}/api/states/switch.nas_plug"
state_pointer = "/state"
token = "{token}"
"#
    )
}
