//! Actions on a machine, pure: which there are, the script each runs, and what its output
//! means — the packages it changed, why it failed (`apt_locked`, `dpkg_error`…), the report
//! a person reads. The engine runs them as recorded executions; nothing here does I/O.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// What can be run on a machine. Never free text: a command is one the operator named in
/// the machine's table (`NAME_command`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MachineAction {
    /// `apt-get update`, then `full-upgrade` (`dist-upgrade` on a Proxmox VE host), with the
    /// existing configuration files kept.
    Upgrade,
    /// Reboot (the node's `reboot_command`), then wait until the machine is back.
    Reboot,
    /// `docker system prune -f` (stopped containers, dangling images, unused networks,
    /// build cache; never volumes).
    DockerPrune,
    /// The command the operator wrote as `NAME_command` in the machine's table.
    Command(String),
}

/// Connector keys that are commands but not actions.
const NOT_ACTIONS: &[&str] = &["shutdown_command", "reboot_command"];

impl MachineAction {
    /// `upgrade`, `reboot`, `docker-prune`, `command:NAME`.
    pub fn name(&self) -> String {
        match self {
            MachineAction::Upgrade => "upgrade".into(),
            MachineAction::Reboot => "reboot".into(),
            MachineAction::DockerPrune => "docker-prune".into(),
            MachineAction::Command(n) => format!("command:{n}"),
        }
    }

    /// Parses [`name`](Self::name)'s form.
    pub fn parse(s: &str) -> Option<MachineAction> {
        match s {
            "upgrade" => Some(MachineAction::Upgrade),
            "reboot" => Some(MachineAction::Reboot),
            "docker-prune" => Some(MachineAction::DockerPrune),
            other => other
                .strip_prefix("command:")
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
                .map(|n| MachineAction::Command(n.to_owned())),
        }
    }

    /// The connector key a command action runs (`backup_command`).
    pub fn command_key(&self) -> Option<String> {
        match self {
            MachineAction::Command(n) => Some(format!("{n}_command")),
            _ => None,
        }
    }
}

/// The operator's commands a machine's table names (`backup_command` → `backup`).
pub fn operator_commands<'a>(keys: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    keys.into_iter()
        .filter(|k| k.ends_with("_command") && !NOT_ACTIONS.contains(&k.as_str()))
        .filter_map(|k| k.strip_suffix("_command"))
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// How the action's script gets root: it is root, `sudo -n`, or `sudo -S` with the node's
/// `sudo_password` on standard input (never on the command line, never in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// The SSH user is root.
    Root,
    /// Password-less sudo.
    SudoNoPassword,
    /// sudo with a password read from standard input.
    SudoPassword,
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn as_root(privilege: Privilege, script: &str) -> String {
    match privilege {
        Privilege::Root => format!("/bin/sh -c {}", shell_quote(script)),
        Privilege::SudoNoPassword => format!("sudo -n /bin/sh -c {}", shell_quote(script)),
        Privilege::SudoPassword => format!("sudo -S -p '' /bin/sh -c {}", shell_quote(script)),
    }
}

/// Where a reboot leaves its marker: `/run` is emptied by every boot, so a machine that
/// answers without the marker has rebooted — whatever its hypervisor says about its power
/// (a guest rebooting inside stays "running" for Proxmox).
pub const REBOOT_MARKER: &str = "/run/wakehub-rebooting";

/// The command line an action runs (for `Reboot`, the reboot itself; the wait is the
/// engine's). `command` is the operator's command for a `Command` action, `reboot` the
/// node's reboot command if it set one; `token` is written to [`REBOOT_MARKER`] before a
/// reboot.
pub fn script(
    action: &MachineAction,
    privilege: Privilege,
    command: Option<&str>,
    reboot: Option<&str>,
    token: &str,
) -> String {
    match action {
        MachineAction::Upgrade => as_root(
            privilege,
            "export DEBIAN_FRONTEND=noninteractive LC_ALL=C
             echo '@@ apt-get update'
             apt-get update -q -o DPkg::Lock::Timeout=120 || echo \"@@ update exited $?\"
             verb=full-upgrade; [ -x /usr/bin/pveversion ] && verb=dist-upgrade
             echo \"@@ apt-get $verb\"
             exec apt-get -y -q -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confdef \
                  -o Dpkg::Options::=--force-confold \"$verb\"",
        ),
        MachineAction::Reboot => as_root(
            privilege,
            &format!(
                "printf '%s\\n' {} > {REBOOT_MARKER} || exit 1\n{}",
                shell_quote(token),
                reboot.unwrap_or("shutdown -r now")
            ),
        ),
        MachineAction::DockerPrune => as_root(privilege, "LC_ALL=C exec docker system prune -f"),
        MachineAction::Command(_) => format!("/bin/sh -c {}", shell_quote(command.unwrap_or("false"))),
    }
}

/// One package an action changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Changed {
    /// The package.
    pub name: String,
    /// The version before (none for a new package).
    pub from: Option<String>,
    /// The version after (none for a removal).
    pub to: Option<String>,
}

/// What an action's output says, structured.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActionResult {
    /// Packages upgraded, installed or removed, in the order dpkg did it.
    pub changed: Vec<Changed>,
    /// Packages dpkg failed on.
    pub failed_packages: Vec<String>,
    /// `apt-get update` failed for some source (the upgrade went on with the others).
    pub source_errors: Vec<String>,
    /// Bytes a Docker prune reclaimed.
    pub reclaimed_bytes: Option<u64>,
}

/// Why an action failed, stable (`apt_locked`, `apt_source_error`, `dpkg_error`,
/// `connection_lost`, `timeout`, `exit_status`, `reboot_timeout`, `interrupted`, and the
/// connection's own: `unreachable`, `auth_failed`, `host_key_mismatch`).
pub type ErrorKind = &'static str;

/// Reads an action's output (the raw log) and its exit status (none: the connection
/// dropped) into its result and, if it failed, why.
pub fn read_output(
    action: &MachineAction,
    log: &str,
    exit: Option<u32>,
) -> (ActionResult, Option<(ErrorKind, String)>) {
    let mut r = ActionResult::default();
    let mut unpacked: Vec<(String, Option<String>, String)> = Vec::new();
    for line in log.lines() {
        let line = line.trim_end();
        // `Unpacking demo-tool (1.1) over (1.0) ...` / `Unpacking demo-newdep (1.0) ...`
        if let Some(rest) = line.strip_prefix("Unpacking ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(to)) = (parts.next(), parts.next()) {
                let to = to.trim_matches(|c| c == '(' || c == ')').to_owned();
                let from = match (parts.next(), parts.next()) {
                    (Some("over"), Some(v)) => Some(v.trim_matches(|c| c == '(' || c == ')').to_owned()),
                    _ => None,
                };
                let name = name.split(':').next().unwrap_or(name).to_owned();
                unpacked.push((name, from, to));
            }
        } else if let Some(rest) = line.strip_prefix("Removing ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(v)) = (parts.next(), parts.next()) {
                r.changed.push(Changed {
                    name: name.split(':').next().unwrap_or(name).to_owned(),
                    from: Some(v.trim_matches(|c| c == '(' || c == ')').to_owned()),
                    to: None,
                });
            }
        } else if let Some(rest) = line.strip_prefix("dpkg: error processing ") {
            // `archive /var/cache/apt/archives/demo-broken_1.1_all.deb (--unpack):` or
            // `package demo-x (--configure):`
            let what = rest.split_whitespace().nth(1).unwrap_or_default();
            let file = what.rsplit('/').next().unwrap_or(what);
            // apt hands dpkg its archives as `/tmp/apt-dpkg-install-XXXX/2-NAME_VER_ARCH.deb`.
            let file = match file.split_once('-') {
                Some((n, rest)) if what.contains("apt-dpkg-install") && n.bytes().all(|b| b.is_ascii_digit()) => rest,
                _ => file,
            };
            let name = file.split('_').next().unwrap_or(file).split(':').next().unwrap_or(file).to_owned();
            if !name.is_empty() && !r.failed_packages.contains(&name) {
                r.failed_packages.push(name);
            }
        } else if let Some(t) = line.strip_prefix("E: ").or_else(|| line.strip_prefix("W: "))
            && (t.starts_with("Failed to fetch") || t.contains("is not signed"))
        {
            r.source_errors.push(t.to_owned());
        } else if let Some(t) = line.strip_prefix("Total reclaimed space: ") {
            r.reclaimed_bytes = super::parse::docker_size(t);
        }
    }
    r.changed.extend(
        unpacked.into_iter().filter(|(name, _, _)| !r.failed_packages.contains(name)).map(|(name, from, to)| Changed {
            name,
            from,
            to: Some(to),
        }),
    );
    let failure = match exit {
        Some(0) => None,
        None => Some(("connection_lost", "the connection dropped before the action finished".to_owned())),
        Some(code) => {
            // apt says "Waiting for cache lock: Could not get lock…" while it waits; only an
            // `E:` line means it gave up.
            let locked = log.lines().any(|l| {
                l.starts_with("E: ")
                    && (l.contains("Could not get lock") || l.contains("Unable to acquire the dpkg frontend lock"))
            });
            Some(if locked && matches!(action, MachineAction::Upgrade) {
                ("apt_locked", "another apt or dpkg held the lock for 2 minutes".to_owned())
            } else if !r.failed_packages.is_empty() {
                ("dpkg_error", format!("dpkg failed on {}", r.failed_packages.join(", ")))
            } else if log
                .lines()
                .any(|l| l.starts_with("sudo: ") && (l.contains("password") || l.contains("incorrect")))
            {
                (
                    "sudo_refused",
                    "sudo refused: give the node a `sudo_password`, or allow password-less sudo".to_owned(),
                )
            } else {
                let last = log.lines().rev().find(|l| l.starts_with("E: ") || !l.trim().is_empty()).unwrap_or("");
                ("exit_status", format!("exited with {code}: {}", last.trim().chars().take(300).collect::<String>()))
            })
        }
    };
    (r, failure)
}

/// The report a person reads: what changed, what needs attention.
pub fn report(
    node: &str,
    action: &MachineAction,
    ok: bool,
    took_secs: u64,
    result: &ActionResult,
    failure: Option<&(String, String)>,
    after: Option<&str>,
) -> String {
    let mut out =
        format!("# {} on {node}: {} in {took_secs} s\n", action.name(), if ok { "succeeded" } else { "failed" });
    if let Some((kind, message)) = failure {
        let _ = writeln!(out, "\nFailed ({kind}): {message}");
    }
    let upgraded: Vec<&Changed> = result.changed.iter().filter(|c| c.from.is_some() && c.to.is_some()).collect();
    let installed: Vec<&Changed> = result.changed.iter().filter(|c| c.from.is_none()).collect();
    let removed: Vec<&Changed> = result.changed.iter().filter(|c| c.to.is_none()).collect();
    if !upgraded.is_empty() {
        let _ = writeln!(out, "\nUpgraded ({}):", upgraded.len());
        for c in upgraded {
            let _ =
                writeln!(out, "- {} {} → {}", c.name, c.from.as_deref().unwrap_or("?"), c.to.as_deref().unwrap_or("?"));
        }
    }
    if !installed.is_empty() {
        let _ = writeln!(out, "\nInstalled ({}):", installed.len());
        for c in installed {
            let _ = writeln!(out, "- {} {}", c.name, c.to.as_deref().unwrap_or("?"));
        }
    }
    if !removed.is_empty() {
        let _ = writeln!(out, "\nRemoved ({}):", removed.len());
        for c in removed {
            let _ = writeln!(out, "- {} {}", c.name, c.from.as_deref().unwrap_or("?"));
        }
    }
    if let Some(b) = result.reclaimed_bytes {
        let _ = writeln!(out, "\nReclaimed {}.", super::parse::bytes(b));
    }
    let mut attention = Vec::new();
    for p in &result.failed_packages {
        attention.push(format!("dpkg failed on {p}"));
    }
    for e in &result.source_errors {
        attention.push(format!("a source failed to update: {e}"));
    }
    if let Some(after) = after {
        attention.push(format!("afterwards: {after}"));
    }
    if !attention.is_empty() {
        let _ = writeln!(out, "\nNeeds attention:");
        for a in attention {
            let _ = writeln!(out, "- {a}");
        }
    }
    out
}

/// What an action's output says that a person should read: apt's errors, warnings and
/// announced major changes, dpkg's failures, Docker's warnings.
pub fn messages(log: &str) -> Vec<super::Message> {
    use super::snapshot::{Message, Severity};
    let mut out: Vec<Message> = log
        .lines()
        .filter(|l| !l.contains("Could not get lock"))
        .filter_map(|l| {
            super::parse::apt_message(l).or_else(|| {
                let t = l.trim();
                t.strip_prefix("WARNING: ")
                    .map(|w| Message::new("docker", "warning", Severity::Warning, None, w))
                    .or_else(|| {
                        t.starts_with("dpkg: error processing ")
                            .then(|| Message::new("apt", "error", Severity::Error, None, t))
                    })
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `log` without any occurrence of the `secrets` (replaced by `[redacted]`).
pub fn redact(log: &str, secrets: &[&str]) -> String {
    let mut out = log.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(s, "[redacted]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_and_name_themselves() {
        for a in ["upgrade", "reboot", "docker-prune", "command:backup", "command:restart-nginx"] {
            assert_eq!(MachineAction::parse(a).map(|x| x.name()), Some(a.to_owned()));
        }
        for bad in ["", "command:", "command:rm -rf /", "command:a;b", "upgrade ", "Upgrade"] {
            assert_eq!(MachineAction::parse(bad), None, "{bad}");
        }
        let keys: Vec<String> =
            ["shutdown_command", "reboot_command", "backup_command", "host", "_command"].map(String::from).to_vec();
        assert_eq!(operator_commands(&keys), ["backup"]);
    }

    #[test]
    fn scripts_get_root_the_way_the_node_allows_and_quote_what_they_run() {
        let s = script(&MachineAction::Upgrade, Privilege::SudoPassword, None, None, "t");
        assert!(s.starts_with("sudo -S -p '' /bin/sh -c '"), "{s}");
        assert!(s.contains("full-upgrade") && s.contains("--force-confold"));
        let s = script(&MachineAction::Command("x".into()), Privilege::Root, Some("echo 'hi'; date"), None, "t");
        assert_eq!(s, r"/bin/sh -c 'echo '\''hi'\''; date'");
        // A reboot leaves its marker (as root), then runs the node's reboot command.
        let s = script(&MachineAction::Reboot, Privilege::SudoNoPassword, None, Some("/sbin/reboot"), "execution-7");
        assert_eq!(
            s,
            r"sudo -n /bin/sh -c 'printf '\''%s\n'\'' '\''execution-7'\'' > /run/wakehub-rebooting || exit 1
/sbin/reboot'"
        );
        let s = script(&MachineAction::Reboot, Privilege::Root, None, None, "x");
        assert!(s.ends_with("shutdown -r now'"), "{s}");
    }

    #[test]
    fn an_upgrade_log_says_what_changed_and_why_it_failed() {
        let log = "\
@@ apt-get update
Get:1 file:/srv/repo/main ./ Release [894 B]
E: Failed to fetch file:/srv/missing/./Packages  File not found
@@ update exited 100
@@ apt-get full-upgrade
Unpacking demo-newdep (1.0) ...
Preparing to unpack .../demo-app_2.0_all.deb ...
Unpacking demo-app (2.0) over (1.0) ...
Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 7 (perl)
Preparing to unpack .../demo-broken_1.1_all.deb ...
demo-broken: preinst refuses to upgrade
dpkg: error processing archive /tmp/apt-dpkg-install-Ab12Cd/2-demo-broken_1.1_all.deb (--unpack):
 new demo-broken package pre-installation script subprocess returned error exit status 1
Unpacking demo-broken (1.1) over (1.0) ...
Removing old-thing (0.9) ...
Errors were encountered while processing:
 /var/cache/apt/archives/demo-broken_1.1_all.deb
E: Sub-process /usr/bin/dpkg returned an error code (1)
";
        let (r, failure) = read_output(&MachineAction::Upgrade, log, Some(100));
        assert_eq!(failure.map(|f| f.0), Some("dpkg_error"));
        assert_eq!(r.failed_packages, ["demo-broken"]);
        let names: Vec<(&str, Option<&str>, Option<&str>)> =
            r.changed.iter().map(|c| (c.name.as_str(), c.from.as_deref(), c.to.as_deref())).collect();
        assert_eq!(
            names,
            [
                ("old-thing", Some("0.9"), None),
                ("demo-newdep", None, Some("1.0")),
                ("demo-app", Some("1.0"), Some("2.0"))
            ]
        );
        assert_eq!(r.source_errors.len(), 1);

        let locked = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 42 (apt-get)\n";
        assert_eq!(read_output(&MachineAction::Upgrade, locked, Some(100)).1.map(|f| f.0), Some("apt_locked"));
        assert_eq!(
            read_output(&MachineAction::Upgrade, "Unpacking a (1) over (0) ...\n", None).1.map(|f| f.0),
            Some("connection_lost")
        );
        let found = messages(log);
        assert!(found.iter().any(|m| m.text.starts_with("dpkg: error processing archive")), "{found:?}");
        assert!(found.iter().any(|m| m.text.starts_with("Failed to fetch file:/srv/missing")), "{found:?}");
        assert!(!found.iter().any(|m| m.text.contains("Could not get lock")), "a wait is not a failure: {found:?}");
        let prune = "Deleted Images:\nuntagged: x\n\nTotal reclaimed space: 1.5GB\n";
        assert_eq!(read_output(&MachineAction::DockerPrune, prune, Some(0)).0.reclaimed_bytes, Some(1_500_000_000));
    }

    #[test]
    fn a_secret_never_stays_in_a_log() {
        assert_eq!(
            redact("sudo password: hunter2\nok hunter2", &["hunter2"]),
            "sudo password: [redacted]\nok [redacted]"
        );
    }
}
