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

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::ChannelMsg;
use russh::client::{self, Handler};
use russh::keys::PrivateKeyWithHashAlg;
use tokio::net::UdpSocket;

use super::{Connector, ConnectorError, ErrorCode, PowerState, Target};
use crate::model::{ConfigValue, ConnectorConfig};
use crate::secrets::SecretString;

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

fn parse_hex_bytes(s: &str) -> Option<Vec<u8>> {
    let hex: String = s.chars().filter(|c| *c != ':' && *c != '-').collect();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect()
}

fn mac_of(config: &ConnectorConfig) -> Result<[u8; 6], String> {
    let mac = config.str("mac").ok_or("wol-ssh: `mac` (aa:bb:cc:dd:ee:ff) is required")?;
    parse_hex_bytes(mac)
        .and_then(|b| <[u8; 6]>::try_from(b).ok())
        .ok_or_else(|| format!("wol-ssh: `mac` `{mac}` is not six hex bytes"))
}

/// The magic packet: 6 × 0xFF then the MAC 16 times (102 bytes), plus the SecureOn password.
pub fn magic_packet(mac: [u8; 6], secureon: Option<&[u8]>) -> Vec<u8> {
    let mut packet = wake_on_lan::MagicPacket::new(&mac).magic_bytes().to_vec();
    if let Some(p) = secureon {
        packet.extend_from_slice(p);
    }
    packet
}

fn port(config: &ConnectorConfig, key: &str, default: u16) -> Result<u16, String> {
    match config.settings.get(key) {
        None => Ok(default),
        Some(ConfigValue::Integer(p)) if (1..=65535).contains(p) => Ok(*p as u16),
        Some(_) => Err(format!("wol-ssh: `{key}` must be a port (1-65535)")),
    }
}

struct Pinning {
    expected: Option<String>,
    seen: Mutex<Option<String>>,
}

/// Accepts the server key only if it matches the pinned one (or, with none pinned yet,
/// records it to be learned).
struct Client(Arc<Pinning>);

/// `type base64`, without the comment.
fn key_id(openssh: &str) -> String {
    openssh.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

impl Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let seen = match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.to_openssh().map(|k| key_id(&k)).unwrap_or_default()
            }
            // Host certificates are not supported: no key to compare, so it is refused.
            _ => String::new(),
        };
        let ok = !seen.is_empty() && self.0.expected.as_ref().is_none_or(|e| key_id(e) == seen);
        *self.0.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(seen);
        Ok(ok)
    }
}

/// How an SSH session logs in.
pub(crate) enum SshAuth {
    /// A password.
    Password(SecretString),
    /// A private key (OpenSSH or PEM), with its passphrase if encrypted.
    Key { key: SecretString, passphrase: Option<SecretString> },
}

/// Runs `command` on `host:port` as `user`, the host key pinned for the node (given as
/// `ssh_host_key`, or learned on first contact). Returns the exit status (none if the
/// connection dropped first, as a machine going down does) and the first 4 KiB of output.
pub(crate) async fn ssh_exec(
    target: &Target,
    host: &str,
    port: u16,
    user: &str,
    auth: SshAuth,
    command: &str,
) -> Result<(Option<u32>, String), ConnectorError> {
    let endpoint = format!("{host}:{port}");
    let learned = match &target.secrets {
        Some(s) => s.0.host_key(target.node, &endpoint),
        None => None,
    };
    let pinned = target.config.str("ssh_host_key").map(str::to_owned).or(learned.clone());
    let pinning = Arc::new(Pinning { expected: pinned.clone(), seen: Mutex::new(None) });
    let config = Arc::new(client::Config { inactivity_timeout: Some(Duration::from_secs(30)), ..Default::default() });
    let connect = client::connect(config, (host, port), Client(pinning.clone()));
    let session = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let seen = pinning.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let (Some(expected), Some(seen)) = (&pinned, &seen)
                && key_id(expected) != *seen
            {
                return Err(ConnectorError::new(
                    ErrorCode::HostKeyMismatch,
                    format!(
                        "{}: wol-ssh: the host key of {endpoint} changed (pinned {}, offered {}); refusing to connect",
                        target.name,
                        key_id(expected),
                        seen
                    ),
                ));
            }
            return Err(ConnectorError::new(
                ErrorCode::Unreachable,
                format!("{}: wol-ssh: cannot connect to {endpoint}: {e}", target.name),
            ));
        }
        Err(_) => {
            return Err(ConnectorError::new(
                ErrorCode::Unreachable,
                format!("{}: wol-ssh: {endpoint} does not answer", target.name),
            ));
        }
    };
    // First contact: remember the key and pin it from now on.
    if pinned.is_none()
        && let (Some(s), Some(seen)) = (&target.secrets, pinning.seen.lock().unwrap_or_else(|e| e.into_inner()).clone())
        && let Err(e) = s.0.remember_host_key(target.node, &endpoint, &seen)
    {
        tracing::warn!(node = %target.name, "cannot store the learned host key: {e}");
    }
    let mut session = session;
    let authenticated = match auth {
        SshAuth::Key { key, passphrase } => {
            let key = russh::keys::decode_secret_key(key.expose(), passphrase.as_ref().map(|p| p.expose()))
                .map_err(|e| invalid(target, &format!("the SSH private key cannot be read: {e}")))?;
            let hash = session.best_supported_rsa_hash().await.ok().flatten().flatten();
            session.authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash)).await
        }
        SshAuth::Password(password) => session.authenticate_password(user, password.expose()).await,
    };
    match authenticated {
        Ok(r) if r.success() => {}
        Ok(_) => {
            return Err(ConnectorError::new(
                ErrorCode::AuthFailed,
                format!("{}: wol-ssh: {endpoint} refused the credentials of `{user}`", target.name),
            ));
        }
        Err(e) => {
            return Err(ConnectorError::new(
                ErrorCode::Unreachable,
                format!("{}: wol-ssh: {endpoint}: {e}", target.name),
            ));
        }
    }
    let ssh_err =
        |e: russh::Error| ConnectorError::new(ErrorCode::PlatformError, format!("{}: wol-ssh: {e}", target.name));
    let mut channel = session.channel_open_session().await.map_err(ssh_err)?;
    channel.exec(true, command).await.map_err(ssh_err)?;
    let (mut code, mut output) = (None, Vec::new());
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } if output.len() < 4096 => {
                output.extend_from_slice(&data);
            }
            ChannelMsg::ExitStatus { exit_status } => code = Some(exit_status),
            _ => {}
        }
    }
    let _ = session.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    Ok((code, String::from_utf8_lossy(&output).into_owned()))
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
        let mac = mac_of(&target.config).map_err(|e| invalid(target, &e))?;
        let secureon = target.secret(&target.config, "secureon_password")?;
        let secureon = match &secureon {
            Some(s) => Some(
                parse_hex_bytes(s.expose())
                    .filter(|b| b.len() == 4 || b.len() == 6)
                    .ok_or_else(|| invalid(target, "`secureon_password` must be 4 or 6 hex bytes"))?,
            ),
            None => None,
        };
        let broadcast = target.config.str("broadcast").unwrap_or("255.255.255.255");
        let wol_port = port(&target.config, "wol_port", 9).map_err(|e| invalid(target, &e))?;
        let addr: SocketAddr = format!("{broadcast}:{wol_port}")
            .parse()
            .map_err(|_| invalid(target, &format!("`broadcast` `{broadcast}` is not an IP address")))?;
        let repeats = target.config.int("repeats").unwrap_or(3).clamp(1, 10);
        let packet = magic_packet(mac, secureon.as_deref());
        let bind = if addr.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(|e| ConnectorError::new(ErrorCode::PlatformError, format!("{}: wol-ssh: {e}", target.name)))?;
        socket
            .set_broadcast(true)
            .map_err(|e| ConnectorError::new(ErrorCode::PlatformError, format!("{}: wol-ssh: {e}", target.name)))?;
        for i in 0..repeats {
            socket.send_to(&packet, addr).await.map_err(|e| {
                ConnectorError::new(
                    ErrorCode::Unreachable,
                    format!("{}: wol-ssh: cannot send the magic packet to {addr}: {e}", target.name),
                )
            })?;
            if i + 1 < repeats {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    async fn stop(&self, target: &Target) -> Result<(), ConnectorError> {
        if target.config.str("shutdown_via") == Some("proxmox") {
            #[cfg(feature = "proxmox")]
            return self.proxmox.shutdown_host(target).await;
            #[cfg(not(feature = "proxmox"))]
            return Err(invalid(target, "`shutdown_via = \"proxmox\"` needs a build with the `proxmox` feature"));
        }
        let c = &target.config;
        let host = c.str("host").ok_or_else(|| invalid(target, "`host` is required"))?.to_owned();
        let ssh_port = port(c, "ssh_port", 22).map_err(|e| invalid(target, &e))?;
        let user = c.str("ssh_user").unwrap_or("root").to_owned();
        let command = c.str("shutdown_command").map(str::to_owned).unwrap_or_else(|| {
            if user == "root" { "shutdown -h now".to_owned() } else { "sudo -n shutdown -h now".to_owned() }
        });
        let auth = if let Some(key) = target.secret(c, "ssh_private_key")? {
            SshAuth::Key { key, passphrase: target.secret(c, "ssh_passphrase")? }
        } else if let Some(password) = target.secret(c, "ssh_password")? {
            SshAuth::Password(password)
        } else {
            return Err(invalid(target, "give `ssh_password` or `ssh_private_key`"));
        };
        let (code, output) = ssh_exec(target, &host, ssh_port, &user, auth, &command).await?;
        match code {
            // A machine going down may drop the connection before reporting a status.
            Some(0) | None => Ok(()),
            Some(n) => Err(ConnectorError::new(
                ErrorCode::PlatformError,
                format!("{}: wol-ssh: `{command}` exited with {n}: {}", target.name, output.trim()),
            )),
        }
    }

    fn validate(&self, config: &ConnectorConfig) -> Result<(), String> {
        const KEYS: [&str; 15] = [
            "shutdown_via",
            "mac",
            "broadcast",
            "wol_port",
            "secureon_password",
            "repeats",
            "host",
            "ssh_port",
            "ssh_user",
            "ssh_password",
            "ssh_private_key",
            "ssh_passphrase",
            "shutdown_command",
            "probe_port",
            "ssh_host_key",
        ];
        for key in config.settings.keys() {
            // `docker_…`/`proxmox_…` keys describe endpoints this machine offers its guests.
            if !KEYS.contains(&key.as_str()) && !key.starts_with("docker_") && !key.starts_with("proxmox_") {
                return Err(format!("wol-ssh: unknown key `{key}` (expected {})", KEYS.join(", ")));
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_packets_have_the_standard_layout() {
        let mac = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01];
        let p = magic_packet(mac, None);
        assert_eq!(p.len(), 102);
        assert!(p[..6].iter().all(|b| *b == 0xff));
        assert!(p[6..].chunks(6).all(|c| c == mac));
        assert_eq!(magic_packet(mac, Some(&[1, 2, 3, 4, 5, 6])).len(), 108);
        assert_eq!(parse_hex_bytes("aa:bb:cc:dd:ee:01").unwrap(), mac);
    }
}
