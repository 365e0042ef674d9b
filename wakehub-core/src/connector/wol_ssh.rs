//! The physical-machine connector (`type = "wol-ssh"`): powered on by Wake-on-LAN, off over
//! SSH (russh), status by a TCP probe.
//!
//! Keys: `mac` (required), `broadcast` (default `255.255.255.255`), `wol_port` (default 9),
//! `secureon_password` (4 or 6 bytes as hex, optional), `repeats` (default 3); `host`
//! (required), `ssh_port` (22), `ssh_user` (`root`), `ssh_password` or `ssh_private_key`
//! (PEM; `ssh_passphrase` if encrypted), `shutdown_command` (default `shutdown -h now`, with
//! `sudo -n` for a user other than root), `probe_port` (default `ssh_port`: the machine is
//! up when it answers), and `ssh_host_key` (`ssh-ed25519 AAAA…`) to pin the host key up
//! front. Without it the key seen on first contact is stored and pinned from then on; a
//! changed key is refused with `HOST_KEY_MISMATCH`.
//!
//! A Proxmox host may be shut down through its API instead of SSH: `shutdown_via =
//! "proxmox"` posts `command=shutdown` to `/nodes/{proxmox_node}/status` with the machine's
//! own `proxmox_*` keys (the ones it offers its guests).

use std::time::Duration;

use super::transport::config_port as port;
use super::transport::ssh::{SshEndpoint, ssh_exec};
use super::transport::wol::{self, mac_of};
use super::{ConfigError, Connector, ConnectorError, ErrorCode, PowerState, Target};
use crate::model::ConnectorConfig;

/// The physical-machine connector.
#[derive(Default)]
pub struct WolSshConnector {
    /// Shuts Proxmox hosts down through their API (`shutdown_via = "proxmox"`).
    #[cfg(feature = "proxmox")]
    proxmox: super::proxmox::ProxmoxConnector,
}

impl WolSshConnector {
    /// The connector.
    pub fn new() -> Self {
        Self::default()
    }
}

fn invalid(target: &Target, m: &str) -> ConnectorError {
    ConnectorError::new(ErrorCode::InvalidConfig, format!("{}: wol-ssh: {m}", target.name))
}

#[async_trait::async_trait]
impl Connector for WolSshConnector {
    async fn status(&self, target: &Target) -> Result<PowerState, ConnectorError> {
        let host = target.config.str("host").ok_or_else(|| invalid(target, "`host` is required"))?;
        let ssh_port = port(&target.config, "ssh_port", 22).map_err(|e| invalid(target, &e))?;
        let probe = port(&target.config, "probe_port", ssh_port).map_err(|e| invalid(target, &e))?;
        match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect((host, probe))).await {
            Ok(Ok(_)) => Ok(PowerState::On),
            // Refused or silent: a machine that does not answer is off.
            _ => Ok(PowerState::Off),
        }
    }

    async fn start(&self, target: &Target) -> Result<(), ConnectorError> {
        wol::wake(target).await
    }

    async fn stop(&self, target: &Target) -> Result<(), ConnectorError> {
        if target.config.str("shutdown_via") == Some("proxmox") {
            #[cfg(feature = "proxmox")]
            return self.proxmox.shutdown_host(target).await;
            #[cfg(not(feature = "proxmox"))]
            return Err(invalid(target, "`shutdown_via = \"proxmox\"` needs a build with the `proxmox` feature"));
        }
        let SshEndpoint { host, port, user, auth } = SshEndpoint::of(target)?;
        let command = target.config.str("shutdown_command").map(str::to_owned).unwrap_or_else(|| {
            if user == "root" { "shutdown -h now".to_owned() } else { "sudo -n shutdown -h now".to_owned() }
        });
        let (code, output) = ssh_exec(target, &host, port, &user, auth, &command).await?;
        match code {
            // A machine going down may drop the connection before reporting a status.
            Some(0) | None => Ok(()),
            Some(n) => {
                // The output stays in WakeHub's log; the step's error says only what failed.
                tracing::warn!(node = %target.name, exit = n, "`{command}` failed: {}", output.trim());
                Err(ConnectorError::new(
                    ErrorCode::PlatformError,
                    format!("{}: wol-ssh: `{command}` exited with {n} (its output is in WakeHub's log)", target.name),
                ))
            }
        }
    }

    fn validate(&self, config: &ConnectorConfig) -> Result<(), ConfigError> {
        validate(config).map_err(ConfigError::new)
    }
}

fn validate(config: &ConnectorConfig) -> Result<(), String> {
    /// The machine's own keys; the keys that reach it over SSH (`host`, `ssh_…`,
    /// `sudo_password`, `NAME_command`) are the shared [`SSH_ACCESS_KEYS`](super::SSH_ACCESS_KEYS).
    const KEYS: [&str; 7] =
        ["shutdown_via", "mac", "broadcast", "wol_port", "secureon_password", "repeats", "probe_port"];
    for key in config.settings.keys() {
        // `docker_…`/`proxmox_…` keys describe endpoints this machine offers its guests.
        if key.starts_with("docker_") || key.starts_with("proxmox_") || KEYS.contains(&key.as_str()) {
            continue;
        }
        match super::check_ssh_access_key(config, key) {
            Some(checked) => checked.map_err(|e| format!("wol-ssh: {e}"))?,
            None => {
                return Err(format!(
                    "wol-ssh: unknown key `{key}` (expected {}, {}, or a command `NAME_command`)",
                    KEYS.join(", "),
                    super::SSH_ACCESS_KEYS.join(", ")
                ));
            }
        }
    }
    match config.str("shutdown_via") {
        None | Some("ssh") => {}
        Some("proxmox") if config.str("proxmox_url").is_none() => {
            return Err("wol-ssh: `shutdown_via = \"proxmox\"` needs the machine's `proxmox_url`".into());
        }
        Some("proxmox") => {}
        Some(other) => return Err(format!("wol-ssh: `shutdown_via` is \"ssh\" or \"proxmox\", not \"{other}\"")),
    }
    mac_of(config)?;
    if config.str("host").is_none_or(str::is_empty) {
        return Err("wol-ssh: `host` is required".into());
    }
    for (key, default) in [("wol_port", 9), ("ssh_port", 22), ("probe_port", 22)] {
        port(config, key, default)?;
    }
    Ok(())
}
