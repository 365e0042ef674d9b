//! Machines as well as power: what a machine reachable over SSH is running and what it
//! needs — its OS and kernel, load, memory and disks, pending apt upgrades (security ones by
//! the archive they come from, kept back ones, held ones, source errors), whether it must
//! reboot and why, services to restart, Docker, and its hardware on request.
//!
//! A refresh runs [`PROBE_SCRIPT`] in one SSH session (the node's own credentials, its host
//! key pinned as every SSH connection of WakeHub) and [`parse`]s its answer — a versioned
//! line protocol, each section the documented output of one tool — into a [`Snapshot`].
//! Snapshots are stored whole and never edited; the machine's state shown anywhere is
//! derived from them.

pub mod actions;
mod parse;
mod snapshot;
pub mod version;

pub use actions::{ActionResult, Changed, MachineAction, Privilege};
pub use parse::{PROBE_PROTOCOL, ProbeError, parse};
pub use snapshot::*;

/// The probe a refresh runs on the machine (POSIX `sh`; see the file for its protocol).
pub const PROBE_SCRIPT: &str = include_str!("probe.sh");

/// The probe's command line: the script run by `/bin/sh` whatever the user's login shell,
/// with the hardware sections when `hardware` is set.
pub fn probe_command(hardware: bool) -> String {
    let quoted = PROBE_SCRIPT.replace('\'', r"'\''");
    format!("env WAKEHUB_PROBE_HARDWARE={} /bin/sh -c '{quoted}'", u8::from(hardware))
}
