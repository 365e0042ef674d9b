//! The machine probe over SSH (see [`crate::machine`]): the one place a machine's state is
//! asked for, on the connector floor with every other network I/O.

use std::time::Duration;

use super::transport::ssh::{SshEndpoint, ssh_run};
use super::{ConnectorError, ErrorCode, Target};
use crate::machine::{Snapshot, parse, probe_command};

/// The longest a probe may take (it refreshes apt's lists, which may be slow).
const PROBE_TIMEOUT: Duration = Duration::from_secs(180);
/// The most of a probe's answer kept (a machine with thousands of upgrades stays well under).
const PROBE_OUTPUT_LIMIT: usize = 8 << 20;

/// Runs the machine probe on `target` over one SSH session (its table's `host`,
/// `ssh_port`, `ssh_user` and credential, the host key pinned) and reads its answer; with
/// `hardware`, the hardware sections too.
pub async fn probe_machine(target: &Target, hardware: bool) -> Result<Snapshot, ConnectorError> {
    let SshEndpoint { host, port, user, auth } = SshEndpoint::of(target)?;
    let command = probe_command(hardware);
    let run = ssh_run(target, &host, port, &user, auth, &command, PROBE_OUTPUT_LIMIT);
    let (code, output, truncated) = tokio::time::timeout(PROBE_TIMEOUT, run).await.map_err(|_| {
        ConnectorError::new(
            ErrorCode::Timeout,
            format!("{}: the probe did not finish in {PROBE_TIMEOUT:?}", target.name),
        )
    })??;
    let text = String::from_utf8_lossy(&output);
    match parse(&text) {
        Ok(snapshot) => Ok(snapshot),
        Err(e) => {
            let why = if truncated {
                format!("its answer is longer than {} MiB", PROBE_OUTPUT_LIMIT >> 20)
            } else if code.is_none() {
                "the connection dropped before the probe finished".to_owned()
            } else {
                e.to_string()
            };
            Err(ConnectorError::new(ErrorCode::PlatformError, format!("{}: refresh: {why}", target.name)))
        }
    }
}

/// Whether `target` rebooted since a reboot left `token` in
/// [`REBOOT_MARKER`](crate::machine::actions::REBOOT_MARKER): it answers over SSH and the
/// marker is gone (every boot empties `/run`). An error while it is down.
pub async fn rebooted_since(target: &Target, token: &str) -> Result<bool, ConnectorError> {
    let SshEndpoint { host, port, user, auth } = SshEndpoint::of(target)?;
    let command = format!("cat {} 2>/dev/null; true", crate::machine::actions::REBOOT_MARKER);
    let run = ssh_run(target, &host, port, &user, auth, &command, 4096);
    let (code, output, _) = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .map_err(|_| ConnectorError::new(ErrorCode::Timeout, format!("{}: no answer", target.name)))??;
    if code != Some(0) {
        return Err(ConnectorError::new(ErrorCode::Unreachable, format!("{}: the session dropped", target.name)));
    }
    Ok(String::from_utf8_lossy(&output).trim() != token)
}
