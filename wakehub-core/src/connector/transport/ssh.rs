//! SSH command execution (russh) with the host key pinned: given in the node's
//! `ssh_host_key`, or learned on first contact through the node's context and pinned from
//! then on. Used by the wol-ssh connector and by the plugin host's SSH capability.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::ChannelMsg;
use russh::client::{self, Handler};
use russh::keys::PrivateKeyWithHashAlg;

use crate::connector::{ConnectorError, ErrorCode, Target};
use crate::secrets::SecretString;

fn invalid(target: &Target, m: &str) -> ConnectorError {
    ConnectorError::new(ErrorCode::InvalidConfig, format!("{}: wol-ssh: {m}", target.name))
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
    /// A private key (OpenSSH or PEM), with its passphrase if encrypted. (The plugin host's
    /// SSH capability logs in with a password only.)
    #[cfg_attr(not(feature = "wol-ssh"), allow(dead_code))]
    Key { key: SecretString, passphrase: Option<SecretString> },
}

/// Where and as whom a node's SSH session logs in: its table's `host`, `ssh_port` (22),
/// `ssh_user` (`root`), and `ssh_private_key` (with `ssh_passphrase`) or `ssh_password`.
#[cfg(feature = "wol-ssh")]
pub(crate) struct SshEndpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) auth: SshAuth,
}

#[cfg(feature = "wol-ssh")]
impl SshEndpoint {
    /// The node's own endpoint, or `INVALID_CONFIG` naming what is missing.
    pub(crate) fn of(target: &Target) -> Result<SshEndpoint, ConnectorError> {
        let c = &target.config;
        let host = c.str("host").ok_or_else(|| invalid(target, "`host` is required"))?.to_owned();
        let port = match c.int("ssh_port") {
            None => 22,
            Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| invalid(target, "bad `ssh_port`"))?,
        };
        let user = c.str("ssh_user").unwrap_or("root").to_owned();
        let auth = if let Some(key) = target.secret(c, "ssh_private_key")? {
            SshAuth::Key { key, passphrase: target.secret(c, "ssh_passphrase")? }
        } else if let Some(password) = target.secret(c, "ssh_password")? {
            SshAuth::Password(password)
        } else {
            return Err(invalid(target, "give `ssh_password` or `ssh_private_key`"));
        };
        Ok(SshEndpoint { host, port, user, auth })
    }
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
    let (code, output, _) = ssh_run(target, host, port, user, auth, command, 4096).await?;
    Ok((code, String::from_utf8_lossy(&output).into_owned()))
}

/// [`ssh_exec`] keeping up to `limit` bytes of output (stdout, then stderr as it comes);
/// the third value says whether more was dropped.
pub(crate) async fn ssh_run(
    target: &Target,
    host: &str,
    port: u16,
    user: &str,
    auth: SshAuth,
    command: &str,
    limit: usize,
) -> Result<(Option<u32>, Vec<u8>, bool), ConnectorError> {
    let (mut output, mut truncated) = (Vec::new(), false);
    let mut keep = |data: &[u8]| {
        let room = limit.saturating_sub(output.len());
        truncated |= data.len() > room;
        output.extend_from_slice(&data[..data.len().min(room)]);
    };
    let code = ssh_stream(target, host, port, user, auth, command, None, &mut keep).await?;
    Ok((code, output, truncated))
}

/// Runs `command` as [`ssh_exec`] does, writing `stdin` (then end of file) if given, and
/// handing every piece of output (stdout and stderr, as it comes) to `on_data`. Returns the
/// exit status (none if the connection dropped first). The session is kept alive with
/// keepalives every 10 s and given up after 3 unanswered ones.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn ssh_stream(
    target: &Target,
    host: &str,
    port: u16,
    user: &str,
    auth: SshAuth,
    command: &str,
    stdin: Option<&[u8]>,
    on_data: &mut (dyn FnMut(&[u8]) + Send),
) -> Result<Option<u32>, ConnectorError> {
    let endpoint = format!("{host}:{port}");
    let learned = target.context.as_ref().and_then(|c| c.0.host_key(target.node, &endpoint));
    let pinned = target.config.str("ssh_host_key").map(str::to_owned).or(learned.clone());
    let pinning = Arc::new(Pinning { expected: pinned.clone(), seen: Mutex::new(None) });
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(10)),
        keepalive_max: 3,
        ..Default::default()
    });
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
        && let (Some(c), Some(seen)) = (&target.context, pinning.seen.lock().unwrap_or_else(|e| e.into_inner()).clone())
        && let Err(e) = c.0.remember_host_key(target.node, &endpoint, &seen)
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
    if let Some(input) = stdin {
        channel.data(input).await.map_err(ssh_err)?;
        channel.eof().await.map_err(ssh_err)?;
    }
    let mut code = None;
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => on_data(&data),
            ChannelMsg::ExitStatus { exit_status } => code = Some(exit_status),
            _ => {}
        }
    }
    let _ = session.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    Ok(code)
}
