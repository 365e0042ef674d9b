//! Power schedules: cron expressions (in a time zone) that start, stop or keep on nodes
//! named or tagged, with when each last fired and what came of it.

use super::db::OptionalExtension;
use rusqlite::params;

use super::{Store, StoreError, db};

/// What a power schedule does when its time comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScheduleAction {
    /// Start its nodes (a start cascade each).
    Start,
    /// Stop its nodes (a stop cascade each).
    Stop,
    /// Start its nodes and keep them on for its duration: nothing stops them on its own
    /// (an idle rule) meanwhile.
    KeepOn,
}

impl ScheduleAction {
    /// `start`, `stop`, `keep-on`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleAction::Start => "start",
            ScheduleAction::Stop => "stop",
            ScheduleAction::KeepOn => "keep-on",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<ScheduleAction> {
        [ScheduleAction::Start, ScheduleAction::Stop, ScheduleAction::KeepOn].into_iter().find(|a| a.as_str() == s)
    }
}

/// A power schedule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PowerSchedule {
    /// Its name (unique).
    pub name: String,
    /// What it does.
    pub action: ScheduleAction,
    /// Nodes named.
    pub nodes: Vec<String>,
    /// Nodes carrying one of these tags.
    pub tags: Vec<String>,
    /// When (cron: minute hour day-of-month month day-of-week).
    pub schedule: String,
    /// The time zone it is read in (IANA); none: UTC.
    pub timezone: Option<String>,
    /// For `keep-on`: how long its nodes are kept on after each time (seconds).
    pub keep_for_secs: Option<i64>,
    /// Whether it fires.
    pub enabled: bool,
    /// Who wrote it last.
    pub updated_by: String,
    /// When (ms since the epoch).
    pub updated_at: i64,
    /// Its last firing (ms since the epoch), and what came of it.
    pub last_fired: Option<(i64, String)>,
}

impl PowerSchedule {
    /// A schedule doing `action` on `schedule` (cron, UTC) over `nodes` and `tags`.
    pub fn new(
        name: impl Into<String>,
        action: ScheduleAction,
        schedule: impl Into<String>,
        nodes: Vec<String>,
        tags: Vec<String>,
    ) -> PowerSchedule {
        PowerSchedule {
            name: name.into(),
            action,
            nodes,
            tags,
            schedule: schedule.into(),
            timezone: None,
            keep_for_secs: None,
            enabled: true,
            updated_by: String::new(),
            updated_at: 0,
            last_fired: None,
        }
    }

    /// The same, read in `timezone`.
    pub fn in_zone(mut self, timezone: Option<String>) -> PowerSchedule {
        self.timezone = timezone;
        self
    }

    /// The same, keeping its nodes on for `secs` after each time (`keep-on`).
    pub fn keeping_for(mut self, secs: Option<i64>) -> PowerSchedule {
        self.keep_for_secs = secs;
        self
    }

    /// The same, enabled or not.
    pub fn enabled(mut self, enabled: bool) -> PowerSchedule {
        self.enabled = enabled;
        self
    }
}

const COLUMNS: &str = "name, action, nodes, tags, schedule, timezone, keep_for_secs, enabled, updated_by, updated_at, last_fired_at, last_outcome";

fn row(r: &super::db::Row<'_>) -> super::db::Result<PowerSchedule> {
    let list = |s: String| serde_json::from_str::<Vec<String>>(&s).unwrap_or_default();
    let fired: Option<i64> = r.get(10)?;
    let outcome: Option<String> = r.get(11)?;
    Ok(PowerSchedule {
        name: r.get(0)?,
        action: ScheduleAction::parse(&r.get::<_, String>(1)?).unwrap_or(ScheduleAction::Start),
        nodes: list(r.get(2)?),
        tags: list(r.get(3)?),
        schedule: r.get(4)?,
        timezone: r.get(5)?,
        keep_for_secs: r.get(6)?,
        enabled: r.get(7)?,
        updated_by: r.get(8)?,
        updated_at: r.get(9)?,
        last_fired: fired.map(|at| (at, outcome.unwrap_or_default())),
    })
}

impl Store {
    /// Writes schedule `s` (replacing one of the same name), by `actor` at `now`; its last
    /// firing is kept when it existed, so saving it again does not fire it again.
    pub fn save_power_schedule(&self, s: &PowerSchedule, actor: &str, now: i64) -> Result<PowerSchedule, StoreError> {
        let nodes = serde_json::to_string(&s.nodes).unwrap_or_default();
        let tags = serde_json::to_string(&s.tags).unwrap_or_default();
        self.conn()
            .execute(
                "INSERT INTO power_schedules (name, action, nodes, tags, schedule, timezone, keep_for_secs, enabled,
                                              updated_by, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (name) DO UPDATE SET action = ?2, nodes = ?3, tags = ?4, schedule = ?5, timezone = ?6,
                        keep_for_secs = ?7, enabled = ?8, updated_by = ?9, updated_at = ?10",
                params![
                    s.name,
                    s.action.as_str(),
                    nodes,
                    tags,
                    s.schedule,
                    s.timezone,
                    s.keep_for_secs,
                    s.enabled,
                    actor,
                    now
                ],
            )
            .map_err(db)?;
        self.power_schedule(&s.name)?.ok_or_else(|| StoreError::NotFound { what: format!("schedule `{}`", s.name) })
    }

    /// Every schedule, by name.
    pub fn power_schedules(&self) -> Result<Vec<PowerSchedule>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM power_schedules ORDER BY name")).map_err(db)?;
        let rows = stmt.query_map((), row).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// Schedule `name`.
    pub fn power_schedule(&self, name: &str) -> Result<Option<PowerSchedule>, StoreError> {
        self.conn()
            .query_row(&format!("SELECT {COLUMNS} FROM power_schedules WHERE name = ?1"), [name], row)
            .optional()
            .map_err(db)
    }

    /// Deletes schedule `name`; whether it existed.
    pub fn delete_power_schedule(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.conn().execute("DELETE FROM power_schedules WHERE name = ?1", [name]).map_err(db)? == 1)
    }

    /// Records that schedule `name` fired at `at`, and what came of it.
    pub fn power_schedule_fired(&self, name: &str, at: i64, outcome: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE power_schedules SET last_fired_at = ?2, last_outcome = ?3 WHERE name = ?1",
                params![name, at, outcome],
            )
            .map_err(db)?;
        Ok(())
    }
}
