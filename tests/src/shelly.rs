//! A stand-in for a Shelly Gen2 device, a Shelly Plus Plug S (`tests/peers/shelly.py`): no
//! Shelly can run here, so it follows Shelly's published Gen2 RPC API (`GET /rpc/Switch.Set?
//! id=0&on=true`, `POST /rpc` JSON-RPC frames, `Shelly.GetDeviceInfo`, `Switch.GetStatus`,
//! `Switch.Toggle`) and its authentication (HTTP Digest, SHA-256, user `admin`, realm = the
//! device id), plus test controls under `/_test/` that are no part of that API.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Peer, repo, venv};

/// The device on a free loopback port, its one switch (`id` 0) off.
#[derive(Debug)]
pub struct Shelly {
    _peer: Peer,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `shellyplusplugs-a8032ab12345`, also the Digest realm.
    pub device_id: String,
}

impl Shelly {
    /// Starts it with authentication enabled for user `admin` and `password`, or disabled
    /// (`None`).
    pub fn start(password: Option<&str>) -> Shelly {
        let mut child = Command::new(venv("python"))
            .arg(repo().join("tests/peers/shelly.py"))
            .arg(password.unwrap_or("-"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start the Shelly stand-in: {e}"));
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("the Shelly stand-in did not start: {line:?}"));
        let field = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("no {k} in {line:?}")).to_owned();
        let (url, device_id) = (field("url"), field("device_id"));
        Shelly { _peer: Peer::new(child, None), url, device_id }
    }

    /// `GET /_test/state` (a test control): `{"output": bool, "calls": N, "auth_failures": N,
    /// "challenges": N, "executed": ["Switch.Set", …]}`; `calls` counts every request to
    /// `/rpc…`, `auth_failures` those whose credentials were rejected, `challenges` the 401s
    /// to requests without credentials, `executed` the methods that ran.
    pub fn state(&self) -> serde_json::Value {
        let body = self.request("GET", "/_test/state");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/_test/state is not JSON ({e}): {body:?}"))
    }

    /// Makes the next `count` requests to `/rpc…` answer HTTP `status` with a plain-text body,
    /// before any authentication (a test control).
    pub fn fail_next(&self, count: u32, status: u16) {
        self.request("POST", &format!("/_test/fail?count={count}&status={status}"));
    }

    /// Expires every Digest nonce issued so far, so that the next request using one gets a
    /// 401 with `stale=true` (a test control).
    pub fn expire_nonces(&self) {
        self.request("POST", "/_test/expire_nonces");
    }

    /// Sets what the appliance plugged in draws while the switch is on (a test control; the
    /// meter's `apower` reads it).
    pub fn set_load(&self, watts: f64) {
        self.request("POST", &format!("/_test/load?watts={watts}"));
    }

    /// A bodiless HTTP/1.0 request to the stand-in; its body, or a panic unless it is a 200.
    fn request(&self, method: &str, path: &str) -> String {
        let addr = self.url.trim_start_matches("http://");
        let mut stream =
            TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to the Shelly stand-in at {addr}: {e}"));
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        write!(stream, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n")
            .unwrap_or_else(|e| panic!("{method} {path} to the Shelly stand-in: {e}"));
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap_or_else(|e| panic!("{method} {path} to the Shelly stand-in: {e}"));
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response.as_str(), ""));
        let status = head.split_whitespace().nth(1).unwrap_or_default();
        assert_eq!(status, "200", "{method} {path} to the Shelly stand-in: {response}");
        body.to_owned()
    }
}
