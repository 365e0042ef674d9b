//! Where notifications land: `tests/peers/sinks.py` (an ntfy stand-in following ntfy's
//! publish API, and a webhook receiver checking the HMAC signature) and a real SMTP server,
//! aiosmtpd, writing what it receives to a Maildir. Killed on drop.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Peer, free_port, repo, venv, wait_for_port};

/// The ntfy stand-in and the webhook receiver.
pub struct Sinks {
    _peer: Peer,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Sinks {
    /// Starts them: webhooks are checked against `secret`, ntfy wants `token`.
    pub fn start(secret: &str, token: &str) -> Sinks {
        let port = free_port();
        let child = Command::new(venv("python"))
            .arg(repo().join("tests/peers/sinks.py"))
            .args([&port.to_string(), secret, token])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/peers/sinks.py");
        let peer = Peer::new(child, None);
        wait_for_port("the notification sinks", port, Duration::from_secs(20), String::new);
        Sinks { _peer: peer, url: format!("http://127.0.0.1:{port}") }
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<serde_json::Value> {
        let out = Command::new("curl").args(["-s", &format!("{}/received", self.url)]).output().expect("curl");
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }

    /// The next `n` notifications are refused (503).
    pub fn fail_next(&self, n: u32) {
        let out = Command::new("curl").args(["-s", "-X", "POST", &format!("{}/fail?n={n}", self.url)]).output();
        assert!(out.is_ok_and(|o| o.status.success()));
    }
}

/// aiosmtpd on a free port, storing mail in a Maildir.
pub struct SmtpSink {
    _peer: Peer,
    /// Its port on 127.0.0.1.
    pub port: u16,
    maildir: PathBuf,
}

impl SmtpSink {
    /// Starts it.
    pub fn start() -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("mail");
        let port = free_port();
        let child = Command::new(venv("python"))
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start aiosmtpd (pip install aiosmtpd)");
        let peer = Peer::new(child, Some(dir));
        wait_for_port("aiosmtpd", port, Duration::from_secs(20), String::new);
        SmtpSink { _peer: peer, port, maildir }
    }

    /// Every message received, as raw text.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in entries.flatten() {
                    out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }
}
