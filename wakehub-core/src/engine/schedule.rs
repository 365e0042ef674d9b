//! Schedules (maintenance windows, power schedules): cron expressions (croner) read in an
//! IANA time zone (jiff), the rule for times missed while WakeHub was down, and selections
//! of nodes by name and tag.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{NodeId, Topology};

/// How late a scheduled window or power schedule may still fire after WakeHub was down at
/// its time: a time missed by less fires once when WakeHub is back (however many were
/// missed); an older one is skipped and said in the log.
pub const CATCH_UP: Duration = Duration::from_secs(3600);

/// Which nodes: those named, and those carrying one of the tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Node names.
    pub nodes: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
}

impl Selection {
    /// The nodes it names (by name or tag) that exist, and the names that do not.
    pub fn resolve(&self, topology: &Topology) -> (BTreeSet<NodeId>, Vec<String>) {
        let mut found = BTreeSet::new();
        let mut missing = Vec::new();
        for name in &self.nodes {
            match topology.by_name(name) {
                Some(n) => {
                    found.insert(n.id);
                }
                None => missing.push(name.clone()),
            }
        }
        found.extend(topology.nodes().filter(|n| n.spec.tags.iter().any(|t| self.tags.contains(t))).map(|n| n.id));
        (found, missing)
    }
}

/// Time zone `name` (IANA), or why not.
pub(crate) fn zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    jiff::tz::TimeZone::get(name).map_err(|_| format!("unknown time zone `{name}`"))
}

/// The first time `cron` (read in `timezone`, default UTC) fires after `after_ms`, in ms
/// since the epoch.
pub fn next_occurrence(cron: &str, timezone: Option<&str>, after_ms: i64) -> Result<i64, String> {
    if cron.len() > 200 {
        return Err("a schedule is at most 200 characters".into());
    }
    let parsed: croner::Cron = cron.parse().map_err(|e: croner::errors::CronError| e.to_string())?;
    let tz = match timezone {
        Some(name) => zone(name)?,
        None => jiff::tz::TimeZone::UTC,
    };
    let at = jiff::Timestamp::from_millisecond(after_ms).map_err(|e| e.to_string())?.to_zoned(tz);
    let next = parsed.find_next_occurrence(&at, false).map_err(|e| e.to_string())?;
    Ok(next.timestamp().as_millisecond())
}

/// What `cron` means, in English (`At 03:00 on Sunday`).
pub fn describe_schedule(cron: &str) -> Option<String> {
    cron.parse::<croner::Cron>().ok().map(|c| c.describe())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_read_in_their_time_zone_and_bad_ones_are_refused() {
        // 2026-12-01T00:00:00Z.
        let t0 = 1_796_083_200_000;
        let utc = next_occurrence("0 3 * * *", None, t0).unwrap();
        assert_eq!(utc - t0, 3 * 3600 * 1000);
        // 03:00 in Paris (UTC+1 in winter) is 02:00 UTC.
        let paris = next_occurrence("0 3 * * *", Some("Europe/Paris"), t0).unwrap();
        assert_eq!(paris - t0, 2 * 3600 * 1000);
        assert!(next_occurrence("61 * * * *", None, t0).is_err());
        assert!(next_occurrence("0 3 * * *", Some("Mars/Olympus"), t0).unwrap_err().contains("time zone"));
        assert!(next_occurrence("", None, t0).is_err());
        assert!(
            describe_schedule("0 3 * * SUN").is_some_and(|d| d.contains("03:00")),
            "{:?}",
            describe_schedule("0 3 * * SUN")
        );
    }
}
