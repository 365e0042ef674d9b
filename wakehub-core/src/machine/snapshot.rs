//! What one refresh learned about a machine: the snapshot, stored whole (JSON, versioned by
//! [`SNAPSHOT_SCHEMA`]) and never edited. Everything shown about a machine's state is
//! derived from snapshots (and executions); nothing here is a cache.

use serde::{Deserialize, Serialize};

/// The version of the snapshot's JSON shape; a reader meeting a newer one says so.
pub const SNAPSHOT_SCHEMA: u32 = 1;

/// A filesystem over this share of its size used is a warning.
pub const DISK_WARNING_PERCENT: f64 = 90.0;
/// Over this, critical.
pub const DISK_CRITICAL_PERCENT: f64 = 95.0;
/// Memory in use (total minus available) over this share is a warning.
pub const MEMORY_WARNING_PERCENT: f64 = 90.0;

/// One refresh's findings. A part the machine could not answer is `None` (or an empty
/// list) and its reason is in [`unsupported`](Self::unsupported).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Snapshot {
    /// [`SNAPSHOT_SCHEMA`] when it was written.
    pub schema: u32,
    /// The probe protocol the machine answered in.
    pub probe_protocol: u32,
    /// Whether the probe ran as root (or with password-less sudo).
    pub privileged: bool,
    /// `/etc/os-release`.
    pub os: Option<Os>,
    /// The running kernel and the images installed in `/boot`.
    pub kernel: Option<Kernel>,
    /// Seconds since boot.
    pub uptime_secs: Option<u64>,
    /// Load averages and CPU count.
    pub load: Option<Load>,
    /// Memory, from `/proc/meminfo`.
    pub memory: Option<Memory>,
    /// Real filesystems (not tmpfs, overlays, pseudo filesystems).
    pub filesystems: Vec<Filesystem>,
    /// Debian packages, when the machine has apt.
    pub apt: Option<Apt>,
    /// Whether a reboot is required, and why.
    pub reboot: Reboot,
    /// Services running old code (needrestart), when it is installed.
    pub restarts: Option<Restarts>,
    /// Docker, when installed.
    pub docker: Option<Docker>,
    /// The hardware, when asked for.
    pub hardware: Option<Hardware>,
    /// What needs a person's eye: disks and memory over thresholds, apt source errors,
    /// packages full-upgrade would remove…
    pub messages: Vec<Message>,
    /// What this machine could not answer, and why (`apt: apt-get (not a Debian-based
    /// system)`).
    pub unsupported: Vec<String>,
}

/// `/etc/os-release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Os {
    /// `ID` (`debian`, `ubuntu`, `alpine`).
    pub id: String,
    /// `PRETTY_NAME`.
    pub pretty_name: String,
    /// `VERSION_ID`.
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`.
    pub codename: Option<String>,
    /// `uname -m`.
    pub arch: Option<String>,
}

/// The running kernel against the installed images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Kernel {
    /// `uname -r`.
    pub running: String,
    /// The releases of the `vmlinuz-*` images in `/boot`, oldest first.
    pub installed: Vec<String>,
    /// The newest installed image of the running kernel's flavour (`amd64`, `pve`,
    /// `rpi-v8`), if any.
    pub newest: Option<String>,
}

/// Load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Load {
    /// 1-minute load average.
    pub one: f64,
    /// 5-minute load average.
    pub five: f64,
    /// 15-minute load average.
    pub fifteen: f64,
    /// Online CPUs.
    pub cpus: Option<u32>,
}

/// Memory in bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Memory {
    /// `MemTotal`.
    pub total: u64,
    /// `MemAvailable`.
    pub available: u64,
    /// Total minus available, as a percentage of total.
    pub used_percent: f64,
    /// `SwapTotal`.
    pub swap_total: u64,
    /// `SwapTotal - SwapFree`.
    pub swap_used: u64,
}

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Filesystem {
    /// Its device (`/dev/sda1`).
    pub source: String,
    /// Its type (`ext4`), when `df` says.
    pub fstype: Option<String>,
    /// Where it is mounted.
    pub mount: String,
    /// Size in bytes.
    pub size: u64,
    /// Used bytes.
    pub used: u64,
    /// Available bytes (to unprivileged users).
    pub available: u64,
    /// Used as `df` computes it (used / (used + available)).
    pub used_percent: f64,
}

/// Debian packages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Apt {
    /// Whether this refresh updated the package lists (`apt-get update` ran and held the
    /// lock; a source that failed is in `source_errors`); if not, what follows is as of the
    /// last update, and why is in the snapshot's `unsupported` or messages.
    pub lists_refreshed: bool,
    /// Sources that failed to update (`E: Failed to fetch …`, `W: …`).
    pub source_errors: Vec<String>,
    /// Whether another apt or dpkg held the lists' lock.
    pub locked: bool,
    /// Every package with a newer candidate, as `full-upgrade` would install it (held
    /// packages included, marked).
    pub upgrades: Vec<Upgrade>,
    /// Packages `full-upgrade` would install new (pulled in by an upgrade).
    pub new_packages: Vec<String>,
    /// Packages `full-upgrade` would remove.
    pub removals: Vec<String>,
    /// Packages on hold (`apt-mark showhold`).
    pub held: Vec<String>,
    /// Packages dpkg left half-done (`dpkg --audit`: unpacked but not configured, or
    /// half-installed), after an interrupted or failed upgrade.
    #[serde(default)]
    pub unfinished: Vec<String>,
}

/// One package with a newer candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Upgrade {
    /// Package name.
    pub name: String,
    /// Installed version.
    pub installed: String,
    /// Candidate version.
    pub candidate: String,
    /// Where the candidate comes from: `Label:Suite` per archive (`Debian-Security:12/stable-security`).
    pub archives: Vec<String>,
    /// From a security archive: a suite ending in `-security`, or a label that says
    /// `Security` — the archive, never a word in the line.
    pub security: bool,
    /// Kept back by `apt-get upgrade` (it needs a new package or a removal); installed by
    /// `full-upgrade` only.
    pub kept_back: bool,
    /// On hold: no upgrade installs it.
    pub held: bool,
}

/// Whether the machine must reboot to run what is installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Reboot {
    /// Required (any reason).
    pub required: bool,
    /// Each reason, for people (`/var/run/reboot-required: demo-kernel`, `running kernel
    /// 6.1.0-18-amd64, newest installed 6.1.0-21-amd64`).
    pub reasons: Vec<String>,
    /// The packages that asked (`/var/run/reboot-required.pkgs`).
    pub packages: Vec<String>,
}

/// needrestart's batch report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Restarts {
    /// Services running outdated binaries or libraries.
    pub services: Vec<String>,
    /// Containers to restart.
    pub containers: Vec<String>,
    /// Whether needrestart says the kernel is outdated (`NEEDRESTART-KSTA` 2 or 3).
    pub kernel_outdated: bool,
}

/// Docker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Docker {
    /// Server version, when the daemon answered.
    pub version: Option<String>,
    /// Containers (all states).
    pub containers: Vec<Container>,
    /// Images.
    pub images: u64,
    /// Bytes `docker system prune` could reclaim (images, containers, volumes, build cache).
    pub reclaimable_bytes: u64,
}

/// One container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Container {
    /// Its name.
    pub name: String,
    /// Its image.
    pub image: String,
    /// `running`, `exited`…
    pub state: String,
    /// Docker's status line (`Up 2 hours (healthy)`).
    pub status: String,
}

/// The hardware probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Hardware {
    /// CPU model.
    pub cpu_model: Option<String>,
    /// Logical CPUs.
    pub cpu_threads: u32,
    /// Physical cores (distinct physical id / core id pairs), when known.
    pub cpu_cores: Option<u32>,
    /// Whole disks.
    pub disks: Vec<Disk>,
    /// Network interfaces (not loopback).
    pub interfaces: Vec<Interface>,
    /// GPUs (`lspci` display controllers).
    pub gpus: Vec<String>,
}

/// A whole disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Disk {
    /// `sda`, `nvme0n1`.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Spinning.
    pub rotational: bool,
    /// Model, when known.
    pub model: Option<String>,
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Interface {
    /// `eth0`.
    pub name: String,
    /// MAC address.
    pub mac: Option<String>,
    /// `up`, `down`…
    pub state: String,
    /// Link speed in Mb/s, when known.
    pub speed_mbps: Option<u32>,
}

/// How much a message matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs attention.
    Warning,
    /// Something is broken.
    Error,
}

impl Severity {
    /// `info`, `warning`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Something a person should read, found in the machine's answers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Message {
    /// `apt`, `docker`, `disk`, `memory`, `kernel`, `ssh`.
    pub source: String,
    /// `error`, `warning`, `future-major-change`, `threshold`.
    pub category: String,
    /// How much it matters.
    pub severity: Severity,
    /// The package, filesystem or component it is about, if one.
    pub subject: Option<String>,
    /// The text, one line, bounded.
    pub text: String,
}

impl Message {
    pub(crate) fn new(
        source: &str,
        category: &str,
        severity: Severity,
        subject: Option<String>,
        text: impl Into<String>,
    ) -> Message {
        let text: String = text.into().split_whitespace().collect::<Vec<_>>().join(" ");
        let text = match text.char_indices().nth(500) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text,
        };
        Message { source: source.into(), category: category.into(), severity, subject, text }
    }
}

impl Snapshot {
    /// Packages with a newer candidate that an upgrade would install (not held).
    pub fn pending_upgrades(&self) -> impl Iterator<Item = &Upgrade> {
        self.apt.iter().flat_map(|a| a.upgrades.iter()).filter(|u| !u.held)
    }
}
