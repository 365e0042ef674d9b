//! The probe's output, read: the frame (protocol 1, see `probe.sh`), then each section by
//! the documented format of the tool that wrote it. Never panics, whatever the input (fuzzed
//! by `fuzz/fuzz_targets/probe_output.rs`); a section that cannot be read is reported in the
//! snapshot's `unsupported`, never guessed.

use std::collections::{BTreeMap, BTreeSet};

use super::snapshot::*;
use super::version;

/// The probe protocol this parser reads.
pub const PROBE_PROTOCOL: u32 = 1;

/// Why an answer is not a probe's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The first line is not `WAKEHUB-PROBE N` (a login banner on stdout, a shell that is
    /// not POSIX…).
    #[error("the machine did not answer the probe (first line: {0:?})")]
    NotAProbe(String),
    /// A protocol this WakeHub does not read.
    #[error("probe protocol {0}: this WakeHub reads protocol {PROBE_PROTOCOL}")]
    Protocol(u32),
    /// The answer stopped before `@end` (the connection dropped, the probe was killed).
    #[error("the probe's answer is cut short (no `@end`)")]
    Truncated,
}

/// One section: its lines, its exit code, or why it did not run.
#[derive(Debug, Clone, Default)]
struct Section {
    lines: Vec<String>,
    exit: Option<i32>,
    missing: Option<String>,
}

impl Section {
    fn ok(&self) -> bool {
        self.exit == Some(0)
    }
    fn text(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }
}

/// Reads the frame: each section by name (the last one of a name wins).
fn sections(output: &str) -> Result<BTreeMap<String, Section>, ProbeError> {
    let mut lines = output.lines();
    let first = lines.find(|l| !l.trim().is_empty()).unwrap_or_default();
    let protocol =
        first.strip_prefix("WAKEHUB-PROBE ").ok_or_else(|| ProbeError::NotAProbe(first.chars().take(80).collect()))?;
    let protocol: u32 = protocol.trim().parse().map_err(|_| ProbeError::NotAProbe(first.chars().take(80).collect()))?;
    if protocol != PROBE_PROTOCOL {
        return Err(ProbeError::Protocol(protocol));
    }
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Section)> = None;
    for line in lines {
        if let Some(content) = line.strip_prefix('|') {
            if let Some((_, s)) = current.as_mut() {
                // Bounded: a runaway tool cannot make the snapshot unbounded.
                if s.lines.len() < 20_000 {
                    s.lines.push(content.chars().take(4000).collect());
                }
            }
        } else if let Some(name) = line.strip_prefix("@section ") {
            if let Some((n, s)) = current.take() {
                out.insert(n, s);
            }
            current = Some((name.trim().to_owned(), Section::default()));
        } else if let Some(code) = line.strip_prefix("@exit ") {
            if let Some((_, s)) = current.as_mut() {
                s.exit = code.trim().parse().ok();
            }
        } else if let Some(what) = line.strip_prefix("@missing ") {
            if let Some((_, s)) = current.as_mut() {
                s.missing = Some(what.trim().chars().take(200).collect());
            }
        } else if line == "@end" {
            if let Some((n, s)) = current.take() {
                out.insert(n, s);
            }
            return Ok(out);
        }
        // Anything else (a stray line from a profile script) is not the probe's: ignored.
    }
    Err(ProbeError::Truncated)
}

/// Reads a probe's answer into a snapshot.
pub fn parse(output: &str) -> Result<Snapshot, ProbeError> {
    let sections = sections(output)?;
    let empty = Section::default();
    let get = |name: &str| sections.get(name).unwrap_or(&empty);
    let mut snap = Snapshot { schema: SNAPSHOT_SCHEMA, probe_protocol: PROBE_PROTOCOL, ..Snapshot::default() };
    // `root`, `sudo -n` or `none`.
    snap.privileged = get("privilege").text().next().is_some_and(|p| p.trim() != "none");
    for (name, s) in &sections {
        if let Some(what) = &s.missing {
            snap.unsupported.push(format!("{name}: {what}"));
        }
    }
    snap.os = os(get("os-release"), get("arch"));
    snap.kernel = kernel(get("kernel"), get("boot-kernels"));
    snap.uptime_secs = first_number(get("uptime")).map(|f| f as u64);
    snap.load = load(get("loadavg"), get("cpus"));
    snap.memory = memory(get("meminfo"));
    snap.filesystems = filesystems(get("df"));
    if get("apt").missing.is_none() && sections.contains_key("apt-full-upgrade") {
        snap.apt = Some(apt(&sections, &mut snap.messages));
    }
    snap.reboot = reboot(get("reboot-required"), snap.kernel.as_ref());
    snap.restarts = restarts(get("needrestart"));
    if let Some(r) = &snap.restarts
        && r.kernel_outdated
        && !snap.reboot.required
    {
        snap.reboot.required = true;
        snap.reboot.reasons.push("needrestart: the running kernel is outdated".into());
    }
    snap.docker = docker(&sections, &mut snap.messages);
    snap.hardware = hardware(&sections);
    thresholds(&mut snap);
    snap.messages.sort();
    snap.messages.dedup();
    Ok(snap)
}

fn first_number(s: &Section) -> Option<f64> {
    s.text().next()?.split_whitespace().next()?.parse().ok()
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v).to_owned()
}

fn os(release: &Section, arch: &Section) -> Option<Os> {
    if !release.ok() {
        return None;
    }
    let map: BTreeMap<&str, String> =
        release.text().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.trim(), unquote(v))).collect();
    Some(Os {
        id: map.get("ID").cloned().unwrap_or_else(|| "linux".into()),
        pretty_name: map.get("PRETTY_NAME").or(map.get("NAME")).cloned().unwrap_or_default(),
        version_id: map.get("VERSION_ID").cloned(),
        codename: map.get("VERSION_CODENAME").cloned().filter(|c| !c.is_empty()),
        arch: arch.ok().then(|| arch.text().next().map(|a| a.trim().to_owned())).flatten(),
    })
}

/// The flavour of a kernel release: its trailing `-`-separated parts that do not start
/// with a digit (`6.1.0-18-amd64` → `amd64`, `6.8.12-4-pve` → `pve`, `6.6.51+rpt-rpi-v8`
/// → `rpi-v8`).
pub(crate) fn flavour(release: &str) -> String {
    let parts: Vec<&str> = release.split('-').collect();
    let keep = parts.iter().rev().take_while(|p| !p.starts_with(|c: char| c.is_ascii_digit())).count();
    parts[parts.len().saturating_sub(keep).max(1).min(parts.len())..].join("-")
}

fn kernel(running: &Section, boot: &Section) -> Option<Kernel> {
    let running = running.ok().then(|| running.text().next().map(|r| r.trim().to_owned())).flatten()?;
    let mut installed: Vec<String> = boot
        .text()
        .filter_map(|l| l.trim().strip_prefix("vmlinuz-"))
        .filter(|r| !r.is_empty() && !r.ends_with(".old") && !r.ends_with(".bak"))
        .map(str::to_owned)
        .collect();
    installed.sort_by(|a, b| version::compare(a, b));
    installed.dedup();
    let mine = flavour(&running);
    let newest = installed.iter().filter(|r| flavour(r) == mine).max_by(|a, b| version::compare(a, b)).cloned();
    Some(Kernel { running, installed, newest })
}

fn load(loadavg: &Section, cpus: &Section) -> Option<Load> {
    let line = loadavg.text().next()?;
    let mut f = line.split_whitespace().map(|x| x.parse::<f64>().ok());
    let (one, five, fifteen) = (f.next()??, f.next()??, f.next()??);
    let cpus = cpus.text().next().and_then(|c| c.trim().parse().ok());
    Some(Load { one, five, fifteen, cpus })
}

fn memory(meminfo: &Section) -> Option<Memory> {
    let kb: BTreeMap<&str, u64> = meminfo
        .text()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim(), v.split_whitespace().next()?.parse::<u64>().ok()?.saturating_mul(1024)))
        })
        .collect();
    let total = *kb.get("MemTotal")?;
    // Before Linux 3.14 there is no MemAvailable: free + buffers + cache is the old estimate.
    let available = kb.get("MemAvailable").copied().unwrap_or_else(|| {
        ["MemFree", "Buffers", "Cached"].iter().filter_map(|k| kb.get(k)).fold(0u64, |a, b| a.saturating_add(*b))
    });
    let used = total.saturating_sub(available);
    let used_percent = if total == 0 { 0.0 } else { used as f64 * 100.0 / total as f64 };
    let swap_total = kb.get("SwapTotal").copied().unwrap_or(0);
    let swap_used = swap_total.saturating_sub(kb.get("SwapFree").copied().unwrap_or(swap_total));
    Some(Memory { total, available, used_percent, swap_total, swap_used })
}

/// Filesystem types that hold no data of the machine's own.
const PSEUDO_FS: &[&str] = &[
    "tmpfs",
    "devtmpfs",
    "overlay",
    "squashfs",
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "autofs",
    "efivarfs",
    "ramfs",
    "fusectl",
    "configfs",
    "hugetlbfs",
    "nsfs",
    "binfmt_misc",
    "rpc_pipefs",
    "fuse.lxcfs",
    "none",
];

fn filesystems(df: &Section) -> Vec<Filesystem> {
    let mut lines = df.text();
    let Some(header) = lines.next() else { return Vec::new() };
    let typed = header.split_whitespace().nth(1) == Some("Type");
    let mut seen = BTreeSet::new();
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Source [Type] Blocks Used Available Capacity Mounted-on (the mount point may
            // hold spaces: it is the rest of the line).
            let (source, fstype, rest) =
                if typed { (f.first()?, Some(*f.get(1)?), f.get(2..)?) } else { (f.first()?, None, f.get(1..)?) };
            if rest.len() < 5 {
                return None;
            }
            let num = |s: &str| s.parse::<u64>().ok().map(|k| k.saturating_mul(1024));
            let (size, used, available) = (num(rest[0])?, num(rest[1])?, num(rest[2])?);
            let mount = rest[4..].join(" ");
            if fstype.is_some_and(|t| PSEUDO_FS.contains(&t)) || size == 0 || !seen.insert(mount.clone()) {
                return None;
            }
            let used_percent = rest[3].trim_end_matches('%').parse::<f64>().unwrap_or_else(|_| {
                if used + available == 0 { 0.0 } else { used as f64 * 100.0 / (used + available) as f64 }
            });
            Some(Filesystem {
                source: (*source).to_owned(),
                fstype: fstype.map(str::to_owned),
                mount,
                size,
                used,
                available,
                used_percent,
            })
        })
        .collect()
}

/// One `Inst`/`Remv` line of `apt-get -s`:
/// `Inst NAME [INSTALLED] (CANDIDATE LABEL:SUITE[, LABEL:SUITE…] [ARCH]) [] …`.
struct Inst {
    name: String,
    installed: Option<String>,
    candidate: String,
    archives: Vec<String>,
}

fn inst(line: &str) -> Option<Inst> {
    let rest = line.strip_prefix("Inst ")?;
    let (name, rest) = rest.split_once(' ')?;
    let rest = rest.trim_start();
    let (installed, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (v, r) = r.split_once(']')?;
            (Some(v.to_owned()), r.trim_start())
        }
        None => (None, rest),
    };
    let inner = rest.strip_prefix('(')?;
    let inner = &inner[..inner.find(')')?];
    let (candidate, archives) = inner.split_once(' ').unwrap_or((inner, ""));
    // The archives end with ` [arch]`.
    let archives = archives.rsplit_once(" [").map_or(archives, |(a, _)| a);
    let archives = archives.split(", ").map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect();
    Some(Inst { name: name.to_owned(), installed, candidate: candidate.to_owned(), archives })
}

/// Whether an archive (`Label:Version/Suite` or `Label:Suite`) is a security archive: its
/// suite ends in `-security` (Debian's `bookworm-security`, Ubuntu's `jammy-security`), or
/// its label names security (`Debian-Security`).
pub(crate) fn security_archive(archive: &str) -> bool {
    let (label, rest) = archive.split_once(':').unwrap_or(("", archive));
    let suite = rest.rsplit('/').next().unwrap_or(rest);
    suite.ends_with("-security") || label.to_ascii_lowercase().contains("security")
}

/// What one line apt printed means for a person, if anything: an `E:` or `W:` line (an
/// error or a warning), or an `N:` notice that a release changes its suite or codename
/// (`stable` → `oldstable`: a major upgrade announced).
pub(crate) fn apt_message(line: &str) -> Option<Message> {
    let line = line.trim();
    let (severity, text) = match line.split_once(": ") {
        Some(("E", t)) => (Severity::Error, t),
        Some(("W", t)) => (Severity::Warning, t),
        Some(("N", t)) => (Severity::Info, t),
        _ => return None,
    };
    if text.starts_with("Some index files failed to download") {
        return None;
    }
    let future = text.contains("changed its 'Suite' value") || text.contains("changed its 'Codename' value");
    let category = if future {
        "future-major-change"
    } else if severity == Severity::Error {
        "error"
    } else {
        "warning"
    };
    (severity != Severity::Info || future)
        .then(|| Message::new("apt", category, severity.max(Severity::Warning), None, text))
}

fn apt(sections: &BTreeMap<String, Section>, messages: &mut Vec<Message>) -> Apt {
    let empty = Section::default();
    let get = |name: &str| sections.get(name).unwrap_or(&empty);
    let update = get("apt-update");
    // The update ran: every readable source is fresh, even if another failed (its error is
    // in `source_errors`); not when it could not run or another apt held the lock.
    let mut a = Apt { lists_refreshed: update.exit.is_some(), ..Apt::default() };
    for line in update.text() {
        let line = line.trim();
        if line.contains("Could not get lock") || line.contains("Unable to lock") {
            a.locked = true;
        }
        if let Some(m) = apt_message(line) {
            if m.category != "future-major-change" {
                a.source_errors.push(line.split_once(": ").map_or(line, |(_, t)| t).to_owned());
            }
            messages.push(m);
        }
    }
    if a.locked {
        a.lists_refreshed = false;
        messages.push(Message::new(
            "apt",
            "warning",
            Severity::Warning,
            None,
            "another apt or dpkg holds the lock: the package lists were not refreshed",
        ));
    }
    let full = get("apt-full-upgrade");
    let upgrade = get("apt-upgrade");
    if !full.ok() {
        let said: Vec<&str> = full.text().filter(|l| l.starts_with("E: ")).collect();
        messages.push(Message::new(
            "apt",
            "error",
            Severity::Error,
            None,
            format!("apt-get -s full-upgrade failed: {}", said.join(" ")),
        ));
    }
    let by_upgrade: BTreeSet<String> = upgrade.text().filter_map(inst).map(|i| i.name).collect();
    a.held = get("apt-holds").text().map(str::trim).filter(|h| !h.is_empty()).map(str::to_owned).collect();
    // `dpkg --audit`: each package on a line of its own, indented by one space.
    a.unfinished = get("dpkg-audit")
        .text()
        .filter(|l| l.starts_with(' ') && !l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    if !a.unfinished.is_empty() {
        messages.push(Message::new(
            "apt",
            "error",
            Severity::Error,
            None,
            format!(
                "dpkg left {} unfinished ({}): run `dpkg --configure -a`",
                if a.unfinished.len() == 1 {
                    "a package".to_owned()
                } else {
                    format!("{} packages", a.unfinished.len())
                },
                a.unfinished.join(", ")
            ),
        ));
    }
    for i in full.text().filter_map(inst) {
        match i.installed {
            Some(installed) => a.upgrades.push(Upgrade {
                security: i.archives.iter().any(|x| security_archive(x)),
                kept_back: upgrade.ok() && !by_upgrade.contains(&i.name),
                held: false,
                name: i.name,
                installed,
                candidate: i.candidate,
                archives: i.archives,
            }),
            None => a.new_packages.push(i.name),
        }
    }
    a.removals = full
        .text()
        .filter_map(|l| l.strip_prefix("Remv "))
        .filter_map(|r| r.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    for name in &a.removals {
        messages.push(Message::new(
            "apt",
            "warning",
            Severity::Warning,
            Some(name.clone()),
            format!("full-upgrade would remove {name}"),
        ));
    }
    // Held packages with a newer candidate: `apt-cache policy` says both versions.
    let mut policy: Option<(String, Option<String>, Option<String>)> = None;
    let mut held_upgrades = Vec::new();
    let flush = |p: Option<(String, Option<String>, Option<String>)>, out: &mut Vec<Upgrade>| {
        if let Some((name, Some(installed), Some(candidate))) = p
            && candidate != "(none)"
            && installed != "(none)"
            && version::compare(&candidate, &installed).is_gt()
        {
            out.push(Upgrade { name, installed, candidate, held: true, ..Upgrade::default() });
        }
    };
    for line in get("apt-held-policy").text() {
        if !line.starts_with(' ') && line.ends_with(':') {
            flush(policy.take(), &mut held_upgrades);
            policy = Some((line.trim_end_matches(':').to_owned(), None, None));
        } else if let Some((_, installed, candidate)) = policy.as_mut() {
            let l = line.trim();
            if let Some(v) = l.strip_prefix("Installed: ") {
                *installed = Some(v.to_owned());
            } else if let Some(v) = l.strip_prefix("Candidate: ") {
                *candidate = Some(v.to_owned());
            }
        }
    }
    flush(policy.take(), &mut held_upgrades);
    for h in held_upgrades {
        if a.held.contains(&h.name) && !a.upgrades.iter().any(|u| u.name == h.name) {
            a.upgrades.push(h);
        }
    }
    for u in &mut a.upgrades {
        u.held |= a.held.contains(&u.name);
    }
    a.upgrades.sort_by(|x, y| y.security.cmp(&x.security).then_with(|| x.name.cmp(&y.name)));
    a
}

fn reboot(flag: &Section, kernel: Option<&Kernel>) -> Reboot {
    let mut r = Reboot::default();
    // The section exits 0 only when `/var/run/reboot-required` exists.
    if flag.ok() {
        r.required = true;
        r.packages = flag.text().map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
        r.packages.sort();
        r.packages.dedup();
        r.reasons.push(if r.packages.is_empty() {
            "/var/run/reboot-required".to_owned()
        } else {
            format!("/var/run/reboot-required: {}", r.packages.join(", "))
        });
    }
    // Compared by release name as `/boot` writes it — the same string `uname -r` gives — so
    // package naming (`proxmox-kernel-6.8.12-4-pve-signed`) cannot make a false positive.
    if let Some(k) = kernel
        && let Some(newest) = &k.newest
        && version::compare(newest, &k.running).is_gt()
    {
        r.required = true;
        r.reasons.push(format!("running kernel {}, newest installed {newest}", k.running));
    }
    r
}

fn restarts(s: &Section) -> Option<Restarts> {
    if !s.ok() {
        return None;
    }
    let mut r = Restarts::default();
    for line in s.text() {
        let Some((key, value)) = line.split_once(": ") else { continue };
        let value = value.trim();
        match key.trim() {
            "NEEDRESTART-KSTA" => r.kernel_outdated = matches!(value, "2" | "3"),
            "NEEDRESTART-SVC" => r.services.push(value.to_owned()),
            "NEEDRESTART-CONT" => r.containers.push(value.to_owned()),
            _ => {}
        }
    }
    Some(r)
}

/// Docker's human sizes (`1.234GB`, `512MB`, `0B`, `12.3kB`), in bytes (decimal units, as
/// Docker writes them).
pub(crate) fn docker_size(s: &str) -> Option<u64> {
    let s = s.split_whitespace().next()?.trim();
    let at = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = s.split_at(at);
    let n: f64 = n.parse().ok()?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return None,
    };
    Some((n * mult) as u64)
}

fn docker(sections: &BTreeMap<String, Section>, messages: &mut Vec<Message>) -> Option<Docker> {
    let version = sections.get("docker-version")?;
    let mut d = Docker::default();
    if version.ok() {
        d.version = version.text().next().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    } else {
        let said: String = version.text().collect::<Vec<_>>().join(" ");
        messages.push(Message::new("docker", "error", Severity::Error, None, format!("docker: {said}")));
    }
    if let Some(ps) = sections.get("docker-ps").filter(|s| s.ok()) {
        d.containers = ps
            .text()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                Some(Container {
                    name: (*f.first()?).to_owned(),
                    image: (*f.get(1)?).to_owned(),
                    state: (*f.get(2)?).to_owned(),
                    status: f.get(3).copied().unwrap_or_default().to_owned(),
                })
            })
            .collect();
    }
    if let Some(df) = sections.get("docker-df").filter(|s| s.ok()) {
        for l in df.text() {
            let f: Vec<&str> = l.split('\t').collect();
            if f.first() == Some(&"Images") {
                d.images = f.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
            }
            d.reclaimable_bytes =
                d.reclaimable_bytes.saturating_add(f.get(4).and_then(|r| docker_size(r)).unwrap_or(0));
        }
    }
    for c in &d.containers {
        if c.status.contains("(unhealthy)") {
            messages.push(Message::new(
                "docker",
                "warning",
                Severity::Warning,
                Some(c.name.clone()),
                format!("container {} is unhealthy", c.name),
            ));
        }
    }
    Some(d)
}

fn hardware(sections: &BTreeMap<String, Section>) -> Option<Hardware> {
    let cpuinfo = sections.get("cpuinfo")?;
    let mut h = Hardware::default();
    let mut cores = BTreeSet::new();
    let mut physical = None;
    for line in cpuinfo.text() {
        let Some((k, v)) = line.split_once(':') else { continue };
        let v = v.trim();
        match k.trim() {
            "processor" => h.cpu_threads += 1,
            "model name" if h.cpu_model.is_none() => h.cpu_model = Some(v.to_owned()),
            "physical id" => physical = Some(v.to_owned()),
            "core id" => {
                cores.insert((physical.clone(), v.to_owned()));
            }
            _ => {}
        }
    }
    h.cpu_cores = (!cores.is_empty()).then_some(cores.len() as u32);
    if let Some(disks) = sections.get("disks").filter(|s| s.ok()) {
        // `lsblk -P`: KEY="value" pairs.
        for line in disks.text() {
            let mut kv = BTreeMap::new();
            let mut rest = line;
            while let Some((k, r)) = rest.split_once("=\"") {
                let Some((v, r)) = r.split_once('"') else { break };
                kv.insert(k.trim().to_owned(), v.to_owned());
                rest = r;
            }
            let size = kv.get("SIZE").and_then(|s| s.parse().ok()).unwrap_or(0);
            if kv.get("TYPE").map(String::as_str) != Some("disk") || size == 0 {
                continue;
            }
            h.disks.push(Disk {
                name: kv.get("NAME").cloned().unwrap_or_default(),
                size,
                rotational: kv.get("ROTA").map(String::as_str) == Some("1"),
                model: kv.get("MODEL").map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()),
            });
        }
    }
    if let Some(net) = sections.get("net").filter(|s| s.ok()) {
        for line in net.text() {
            let f: Vec<&str> = line.split('\t').collect();
            let Some(name) = f.first().filter(|n| !n.is_empty() && **n != "lo") else { continue };
            h.interfaces.push(Interface {
                name: (*name).to_owned(),
                mac: f.get(1).map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()),
                state: f.get(2).map(|s| s.trim().to_owned()).unwrap_or_default(),
                speed_mbps: f.get(3).and_then(|s| s.trim().parse::<i64>().ok()).and_then(|s| u32::try_from(s).ok()),
            });
        }
    }
    if let Some(gpus) = sections.get("gpus").filter(|s| s.ok()) {
        // `lspci -mm`: SLOT "CLASS" "VENDOR" "DEVICE" …
        h.gpus = gpus
            .text()
            .filter_map(|l| {
                let q: Vec<&str> = l.split('"').collect();
                Some(format!("{} {}", q.get(3)?, q.get(5)?))
            })
            .collect();
    }
    Some(h)
}

fn thresholds(snap: &mut Snapshot) {
    for fs in &snap.filesystems {
        if fs.used_percent >= DISK_WARNING_PERCENT {
            let severity = if fs.used_percent >= DISK_CRITICAL_PERCENT { Severity::Error } else { Severity::Warning };
            snap.messages.push(Message::new(
                "disk",
                "threshold",
                severity,
                Some(fs.mount.clone()),
                format!("{} is {:.0}% full ({} free)", fs.mount, fs.used_percent, bytes(fs.available)),
            ));
        }
    }
    if let Some(m) = &snap.memory
        && m.used_percent >= MEMORY_WARNING_PERCENT
    {
        snap.messages.push(Message::new(
            "memory",
            "threshold",
            Severity::Warning,
            None,
            format!("memory is {:.0}% in use ({} available)", m.used_percent, bytes(m.available)),
        ));
    }
}

/// Bytes for people (`3.9 GiB`).
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}
