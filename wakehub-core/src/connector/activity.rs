//! What the inactivity rules measure on a node: its load (CPU, network, whether it is in
//! use, the power it draws) from its platform
//! through [`Connector::load`](super::Connector::load), and, over one SSH session, TCP
//! connections to given ports, interactive SSH sessions and a veto command.

use std::time::Duration;

use super::{ConnectorError, ErrorCode, Target};

/// A platform's load figures for one node at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Load {
    /// CPU: busy seconds so far (a counter, compared between two samples), or a percentage
    /// of one core the platform already averaged.
    pub cpu: Option<Cpu>,
    /// Bytes received plus sent so far (a counter).
    pub net_bytes: Option<u64>,
    /// Whether the platform says the node is in use (a plugin's `readings`).
    pub in_use: Option<bool>,
    /// The power drawn now, in watts (a smart plug's or a BMC's meter).
    pub watts: Option<f64>,
}

/// How a platform reports CPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cpu {
    /// Busy CPU time so far, in seconds (Docker's `total_usage`).
    BusySeconds(f64),
    /// The current use, in percent of one core (Proxmox's `cpu` × `cpus`).
    Percent(f64),
}

/// What one SSH session on the node found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShellActivity {
    /// Established TCP connections to the asked ports.
    pub tcp_connections: Option<u32>,
    /// Interactive SSH sessions (with a terminal).
    pub ssh_sessions: Option<u32>,
    /// Whether the veto command exited 0.
    pub veto: Option<bool>,
}

/// The longest the SSH measurement may take.
pub const SHELL_TIMEOUT: Duration = Duration::from_secs(30);

/// Counts established TCP connections whose local port is one of `ports` (` 445 22 `) in
/// the kernel's tables, leaving out the connection of this very session (its client port,
/// from `$SSH_CLIENT`): plain `awk` (mawk too, no `strtonum`), no `ss` needed.
const COUNT_TCP: &str = r#"set -- $SSH_CLIENT
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v ports="$PORTS" -v own="${2:-0}" '
function hex(s,  i, n) { n = 0; for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", toupper(substr(s, i, 1))) - 1; return n }
$4 == "01" { n = split($2, l, ":"); m = split($3, r, ":"); if (index(ports, " " hex(l[n]) " ") && hex(r[m]) != own) c++ }
END { print "tcp " c + 0 }'"#;

/// The script run over SSH: one `key value` line per asked figure. Ports are numbers, so
/// nothing of the rule but the veto command (the operator's own) reaches the shell.
pub fn shell_script(tcp_ports: &[u16], ssh_sessions: bool, veto_command: Option<&str>) -> String {
    let mut lines = Vec::new();
    if !tcp_ports.is_empty() {
        let ports: String = tcp_ports.iter().map(|p| format!(" {p}")).collect();
        lines.push(format!("PORTS='{ports} '\n{COUNT_TCP}"));
    }
    if ssh_sessions {
        // sshd names a session's process `sshd: USER@pts/N` (`sshd-session:` from OpenSSH 9.8).
        lines.push("printf 'ssh %s\\n' \"$(ps -eo args= | grep -cE '^sshd(-session)?: [^ ]+@pts/')\"".to_owned());
    }
    if let Some(command) = veto_command {
        lines.push(format!(
            "( {command}\n) >/dev/null 2>&1 </dev/null; printf 'veto %s\\n' \"$?\"",
            command = command.trim()
        ));
    }
    lines.join("\n")
}

/// Reads [`shell_script`]'s answer.
pub fn parse_shell(output: &str) -> Result<ShellActivity, String> {
    let mut out = ShellActivity::default();
    for line in output.lines() {
        let Some((key, value)) = line.trim().split_once(' ') else { continue };
        let number = || value.trim().parse::<u32>().map_err(|_| format!("`{line}` is not a count"));
        match key {
            "tcp" => out.tcp_connections = Some(number()?),
            "ssh" => out.ssh_sessions = Some(number()?),
            "veto" => out.veto = Some(number()? == 0),
            _ => {}
        }
    }
    Ok(out)
}

/// Runs [`shell_script`] on `target` over SSH (its table's `host`, `ssh_port`, `ssh_user`
/// and credential, the host key pinned).
#[cfg(feature = "wol-ssh")]
pub async fn shell_activity(
    target: &Target,
    tcp_ports: &[u16],
    ssh_sessions: bool,
    veto_command: Option<&str>,
) -> Result<ShellActivity, ConnectorError> {
    use super::transport::ssh::{SshEndpoint, ssh_run};
    let SshEndpoint { host, port, user, auth } = SshEndpoint::of(target)?;
    let script = shell_script(tcp_ports, ssh_sessions, veto_command);
    let run = ssh_run(target, &host, port, &user, auth, &script, 4096);
    let (code, output, _) = tokio::time::timeout(SHELL_TIMEOUT, run).await.map_err(|_| {
        ConnectorError::new(ErrorCode::Timeout, format!("{}: no answer in {SHELL_TIMEOUT:?}", target.name))
    })??;
    let text = String::from_utf8_lossy(&output);
    let found = parse_shell(&text)
        .map_err(|e| ConnectorError::new(ErrorCode::PlatformError, format!("{}: {e}", target.name)))?;
    let complete = (tcp_ports.is_empty() || found.tcp_connections.is_some())
        && (!ssh_sessions || found.ssh_sessions.is_some())
        && (veto_command.is_none() || found.veto.is_some());
    if code.is_none() || !complete {
        return Err(ConnectorError::new(
            ErrorCode::PlatformError,
            format!("{}: the activity check did not answer (`awk` and `ps` are needed): {}", target.name, text.trim()),
        ));
    }
    Ok(found)
}

/// Without SSH support built in, the shell signals cannot be measured.
#[cfg(not(feature = "wol-ssh"))]
pub async fn shell_activity(
    target: &Target,
    _tcp_ports: &[u16],
    _ssh_sessions: bool,
    _veto_command: Option<&str>,
) -> Result<ShellActivity, ConnectorError> {
    Err(ConnectorError::new(
        ErrorCode::Unsupported,
        format!("{}: this build of WakeHub has no SSH (feature `wol-ssh`)", target.name),
    ))
}

/// The most of an HTTP check's answer read.
const HTTP_CHECK_LIMIT: usize = 1 << 20;

/// Asks an HTTP check (`GET`, JSON preferred, no redirect followed): whether it reports
/// something (see [`reports_something`](crate::model::reports_something)). Any answer but a
/// 2xx, or no answer within `timeout`, is an error.
pub async fn http_check(check: &crate::model::HttpCheck, timeout: Duration) -> Result<bool, ConnectorError> {
    let failed = |m: String| ConnectorError::new(ErrorCode::Unreachable, format!("GET {}: {m}", check.url));
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let mut resp = client
        .get(&check.url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| failed(super::transport::cause_chain(&e)))?;
    if !resp.status().is_success() {
        return Err(ConnectorError::new(
            ErrorCode::PlatformError,
            format!("GET {} answered {}", check.url, resp.status().as_u16()),
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(super::transport::cause_chain(&e)))? {
        body.extend_from_slice(&chunk[..chunk.len().min(HTTP_CHECK_LIMIT - body.len())]);
        if body.len() >= HTTP_CHECK_LIMIT {
            break;
        }
    }
    Ok(crate::model::reports_something(&String::from_utf8_lossy(&body), check.pointer.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_asks_what_the_rule_needs_and_its_answer_reads_back() {
        let s = shell_script(&[445, 22], true, Some("pgrep -x rsync"));
        assert!(s.starts_with("PORTS=' 445 22 '\nset -- $SSH_CLIENT"), "{s}");
        assert!(s.contains("@pts/"), "{s}");
        assert!(s.contains("( pgrep -x rsync\n)"), "{s}");
        assert_eq!(shell_script(&[], false, None), "");
        let found = parse_shell("tcp 2\nssh 0\nveto 1\n").unwrap();
        assert_eq!(found, ShellActivity { tcp_connections: Some(2), ssh_sessions: Some(0), veto: Some(false) });
        assert!(parse_shell("tcp lots\n").is_err());
    }
}
