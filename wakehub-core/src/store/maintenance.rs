//! Maintenance windows and their runs: a window names machines (by name or tag), with an
//! optional cron schedule; a run records its plan, every step it took (each also journaled
//! as a `maintenance` event, the live stream) and its report. A run WakeHub stopped in the
//! middle of is marked `interrupted` at the next start, never run again, and the queued
//! actions it left are cancelled.

use super::db::{OptionalExtension, Transaction};
use rusqlite::params;

use super::journal::JournalTx;
use super::{Store, StoreError, db};
use crate::events::EventKind;
use crate::model::{NodeId, Refusal};

/// A maintenance window as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaintenanceWindow {
    /// Its name (unique).
    pub name: String,
    /// Machines named.
    pub nodes: Vec<String>,
    /// Machines carrying one of these tags.
    pub tags: Vec<String>,
    /// When it runs by itself (cron: minute hour day-of-month month day-of-week); none: on
    /// request only.
    pub schedule: Option<String>,
    /// The time zone the schedule is read in (IANA name); none: UTC.
    pub timezone: Option<String>,
    /// Whether its schedule fires.
    pub enabled: bool,
    /// Who wrote it last.
    pub updated_by: String,
    /// When (ms since the epoch).
    pub updated_at: i64,
    /// The schedule's last firing (ms since the epoch).
    pub last_fired_at: Option<i64>,
}

impl MaintenanceWindow {
    /// A window over `nodes` and `tags`, on request only.
    pub fn new(name: impl Into<String>, nodes: Vec<String>, tags: Vec<String>) -> MaintenanceWindow {
        MaintenanceWindow {
            name: name.into(),
            nodes,
            tags,
            schedule: None,
            timezone: None,
            enabled: true,
            updated_by: String::new(),
            updated_at: 0,
            last_fired_at: None,
        }
    }

    /// The same window, run on `schedule` (cron) read in `timezone` (none: UTC).
    pub fn with_schedule(mut self, schedule: Option<String>, timezone: Option<String>) -> MaintenanceWindow {
        self.schedule = schedule;
        self.timezone = timezone;
        self
    }
}

/// Where a maintenance run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunStatus {
    /// Under way.
    Running,
    /// Every machine up to date, none needing a reboot, every power state put back.
    Succeeded,
    /// It ran to its end, and something needs a person (an upgrade failed, a reboot is
    /// still required, a machine could not be woken or put back).
    Attention,
    /// WakeHub stopped while it ran: it was not run again.
    Interrupted,
}

impl RunStatus {
    /// `running`, `succeeded`, `attention`, `interrupted`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Attention => "attention",
            RunStatus::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> RunStatus {
        match s {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "attention" => RunStatus::Attention,
            _ => RunStatus::Interrupted,
        }
    }
}

/// One maintenance run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MaintenanceRunRecord {
    /// Its id.
    pub id: i64,
    /// The window it ran (none: machines chosen for this run only).
    pub window: Option<String>,
    /// `manual` or `scheduled`.
    pub mode: String,
    /// Who asked (`schedule` for a scheduled run).
    pub actor: String,
    /// Where it is.
    pub status: RunStatus,
    /// When it began (ms since the epoch).
    pub started_at: i64,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// The plan it followed (JSON).
    pub plan: serde_json::Value,
    /// The report a person reads (Markdown), once it ended.
    pub report: Option<String>,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaintenanceStep {
    /// Its rank in the run.
    pub seq: i64,
    /// When (ms since the epoch).
    pub at: i64,
    /// `wake`, `refresh`, `upgrade`, `stop-guests`, `reboot`, `start-guests`, `verify`,
    /// `restore`, `done`.
    pub phase: String,
    /// The machine (or node) it is about.
    pub node: Option<String>,
    /// `running`, `done`, `skipped`, `failed`.
    pub status: String,
    /// What happened, for people.
    pub message: String,
}

impl JournalTx<'_> {
    /// Creates or replaces window `w` (by name), written by `actor`.
    pub fn save_maintenance_window(&mut self, w: &MaintenanceWindow, actor: &str, now: i64) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO maintenance_windows (name, nodes, tags, schedule, timezone, enabled, updated_by, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (name) DO UPDATE SET nodes = ?2, tags = ?3, schedule = ?4, timezone = ?5, enabled = ?6,
                   updated_by = ?7, updated_at = ?8,
                   last_fired_at = CASE WHEN maintenance_windows.schedule IS NOT DISTINCT FROM ?4
                        AND maintenance_windows.timezone IS NOT DISTINCT FROM ?5 THEN maintenance_windows.last_fired_at END",
                params![
                    w.name,
                    serde_json::to_string(&w.nodes).unwrap_or_default(),
                    serde_json::to_string(&w.tags).unwrap_or_default(),
                    w.schedule,
                    w.timezone,
                    w.enabled,
                    actor,
                    now
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    /// Deletes window `name`; whether it existed. Its past runs stay.
    pub fn delete_maintenance_window(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(self.tx.execute("DELETE FROM maintenance_windows WHERE name = ?1", [name]).map_err(db)? > 0)
    }

    /// Records that window `name`'s schedule fired at `at`.
    pub fn window_fired(&mut self, name: &str, at: i64) -> Result<(), StoreError> {
        self.tx
            .execute("UPDATE maintenance_windows SET last_fired_at = ?2 WHERE name = ?1", params![name, at])
            .map_err(db)?;
        Ok(())
    }

    /// Begins a run of `window` (none: an ad-hoc selection) following `plan`.
    pub fn begin_maintenance_run(
        &mut self,
        window: Option<&str>,
        mode: &str,
        actor: &str,
        plan: &serde_json::Value,
        now: i64,
    ) -> Result<MaintenanceRunRecord, StoreError> {
        self.tx
            .execute(
                "INSERT INTO maintenance_runs (window_name, mode, actor, status, started_at, plan)
                 VALUES (?1, ?2, ?3, 'running', ?4, ?5)",
                params![window, mode, actor, now, plan.to_string()],
            )
            .map_err(db)?;
        let id = self.tx.last_insert_rowid();
        let run = run(self.tx, id)?.ok_or_else(|| StoreError::NotFound { what: format!("maintenance run {id}") })?;
        self.emit(EventKind::Maintenance {
            run: id,
            window: window.map(str::to_owned),
            phase: "plan".into(),
            node: None,
            name: None,
            status: "running".into(),
            message: format!("maintenance run {id} began ({mode}, by {actor})"),
        });
        Ok(run)
    }

    /// Records a step of run `run` (journaled as a `maintenance` event).
    #[allow(clippy::too_many_arguments)]
    pub fn maintenance_step(
        &mut self,
        run_id: i64,
        phase: &str,
        node: Option<(NodeId, &str)>,
        status: &str,
        message: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let window: Option<String> = self
            .tx
            .query_row("SELECT window_name FROM maintenance_runs WHERE id = ?1", [run_id], |r| r.get(0))
            .optional()
            .map_err(db)?
            .ok_or_else(|| StoreError::NotFound { what: format!("maintenance run {run_id}") })?;
        self.tx
            .execute(
                "INSERT INTO maintenance_steps (run_id, seq, at, phase, node, status, message)
                 VALUES (?1, (SELECT COUNT(*) FROM maintenance_steps WHERE run_id = ?1), ?2, ?3, ?4, ?5, ?6)",
                params![run_id, now, phase, node.map(|(_, n)| n), status, message],
            )
            .map_err(db)?;
        self.emit(EventKind::Maintenance {
            run: run_id,
            window,
            phase: phase.to_owned(),
            node: node.map(|(id, _)| id),
            name: node.map(|(_, n)| n.to_owned()),
            status: status.to_owned(),
            message: message.to_owned(),
        });
        Ok(())
    }

    /// Ends run `run` with `status` and `report`.
    pub fn finish_maintenance_run(
        &mut self,
        run_id: i64,
        status: RunStatus,
        report: &str,
        now: i64,
    ) -> Result<MaintenanceRunRecord, StoreError> {
        self.tx
            .execute(
                "UPDATE maintenance_runs SET status = ?2, finished_at = ?3, report = ?4 WHERE id = ?1 AND status = 'running'",
                params![run_id, status.as_str(), now, report],
            )
            .map_err(db)?;
        let record =
            run(self.tx, run_id)?.ok_or_else(|| StoreError::NotFound { what: format!("maintenance run {run_id}") })?;
        self.emit(EventKind::Maintenance {
            run: run_id,
            window: record.window.clone(),
            phase: "done".into(),
            node: None,
            name: None,
            status: record.status.as_str().into(),
            message: report.lines().find(|l| !l.trim().is_empty() && !l.starts_with('#')).unwrap_or("").to_owned(),
        });
        Ok(record)
    }

    /// Marks every run left `running` by a previous WakeHub `interrupted` (it is never run
    /// again), and cancels the actions it had queued. Call at start, before anything runs.
    pub fn reclaim_maintenance_runs(&mut self, now: i64) -> Result<Vec<MaintenanceRunRecord>, StoreError> {
        let ids: Vec<i64> = {
            let mut stmt = self.tx.prepare("SELECT id FROM maintenance_runs WHERE status = 'running'").map_err(db)?;
            stmt.query_map((), |r| r.get(0)).map_err(db)?.collect::<Result<_, _>>().map_err(db)?
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let queued: Vec<(i64, String)> = {
            let mut stmt = self
                .tx
                .prepare(
                    "SELECT e.id, n.name FROM machine_executions e JOIN nodes n ON n.id = e.node_id
                     WHERE e.status = 'queued' AND e.mode = 'maintenance'",
                )
                .map_err(db)?;
            stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?))).map_err(db)?.collect::<Result<_, _>>().map_err(db)?
        };
        for (e, name) in queued {
            self.cancel_execution(e, &name, now)?;
        }
        let mut out = Vec::new();
        for id in ids {
            let plan = run(self.tx, id)?.map(|r| r.plan).unwrap_or_default();
            let woken: Vec<String> = plan["machines"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["power_before"] == "off")
                .filter_map(|m| m["name"].as_str().map(|n| format!("`{n}`")))
                .collect();
            let mut report = format!(
                "# Maintenance run {id}: interrupted\n\nWakeHub stopped while it ran; it was not run again, and its \
                 queued actions were cancelled. Refresh the machines to see where they stand.\n"
            );
            if !woken.is_empty() {
                report.push_str(&format!(
                    "\nWere off before it began, and may have been left on: {}.\n",
                    woken.join(", ")
                ));
            }
            out.push(self.finish_maintenance_run(id, RunStatus::Interrupted, &report, now)?);
        }
        Ok(out)
    }
}

const RUN_COLUMNS: &str = "id, window_name, mode, actor, status, started_at, finished_at, plan, report";

fn run_row(r: &super::db::Row<'_>) -> super::db::Result<MaintenanceRunRecord> {
    let plan: String = r.get(7)?;
    Ok(MaintenanceRunRecord {
        id: r.get(0)?,
        window: r.get(1)?,
        mode: r.get(2)?,
        actor: r.get(3)?,
        status: RunStatus::parse(&r.get::<_, String>(4)?),
        started_at: r.get(5)?,
        finished_at: r.get(6)?,
        plan: serde_json::from_str(&plan).unwrap_or_default(),
        report: r.get(8)?,
    })
}

fn run(tx: &Transaction<'_>, id: i64) -> Result<Option<MaintenanceRunRecord>, StoreError> {
    tx.query_row(&format!("SELECT {RUN_COLUMNS} FROM maintenance_runs WHERE id = ?1"), [id], run_row)
        .optional()
        .map_err(db)
}

fn window_row(r: &super::db::Row<'_>) -> super::db::Result<MaintenanceWindow> {
    let list = |s: String| serde_json::from_str::<Vec<String>>(&s).unwrap_or_default();
    Ok(MaintenanceWindow {
        name: r.get(0)?,
        nodes: list(r.get(1)?),
        tags: list(r.get(2)?),
        schedule: r.get(3)?,
        timezone: r.get(4)?,
        enabled: r.get(5)?,
        updated_by: r.get(6)?,
        updated_at: r.get(7)?,
        last_fired_at: r.get(8)?,
    })
}

const WINDOW_COLUMNS: &str = "name, nodes, tags, schedule, timezone, enabled, updated_by, updated_at, last_fired_at";

impl Store {
    /// Every maintenance window, by name.
    pub fn maintenance_windows(&self) -> Result<Vec<MaintenanceWindow>, StoreError> {
        self.transaction(|tx| {
            let mut stmt =
                tx.prepare(&format!("SELECT {WINDOW_COLUMNS} FROM maintenance_windows ORDER BY name")).map_err(db)?;
            let rows = stmt.query_map((), window_row).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    /// Window `name`.
    pub fn maintenance_window(&self, name: &str) -> Result<Option<MaintenanceWindow>, StoreError> {
        self.transaction(|tx| {
            tx.query_row(
                &format!("SELECT {WINDOW_COLUMNS} FROM maintenance_windows WHERE name = ?1"),
                [name],
                window_row,
            )
            .optional()
            .map_err(db)
        })
    }

    /// Run `id`.
    pub fn maintenance_run(&self, id: i64) -> Result<Option<MaintenanceRunRecord>, StoreError> {
        self.transaction(|tx| run(tx, id))
    }

    /// Runs, newest first (`window` none: every run).
    pub fn maintenance_runs(
        &self,
        window: Option<&str>,
        limit: usize,
    ) -> Result<Vec<MaintenanceRunRecord>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {RUN_COLUMNS} FROM maintenance_runs WHERE CAST(?1 AS TEXT) IS NULL OR window_name = ?1
                     ORDER BY id DESC LIMIT ?2"
                ))
                .map_err(db)?;
            let rows = stmt.query_map(params![window, limit as i64], run_row).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    /// The steps of run `id`, in order.
    pub fn maintenance_steps(&self, id: i64) -> Result<Vec<MaintenanceStep>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT seq, at, phase, node, status, message FROM maintenance_steps WHERE run_id = ?1 ORDER BY seq",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([id], |r| {
                    Ok(MaintenanceStep {
                        seq: r.get(0)?,
                        at: r.get(1)?,
                        phase: r.get(2)?,
                        node: r.get(3)?,
                        status: r.get(4)?,
                        message: r.get(5)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    /// How long past actions `action` on `node` that succeeded took (ms), newest first.
    pub fn action_durations(&self, node: NodeId, action: &str, limit: usize) -> Result<Vec<i64>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT finished_at - started_at FROM machine_executions
                     WHERE node_id = ?1 AND action = ?2 AND status = 'succeeded' AND started_at IS NOT NULL
                     ORDER BY id DESC LIMIT ?3",
                )
                .map_err(db)?;
            let rows = stmt.query_map(params![node.get(), action, limit as i64], |r| r.get(0)).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }
}

impl Store {
    /// How long past start cascades of `node` that completed took (ms), newest first.
    pub fn start_durations(&self, node: NodeId, limit: usize) -> Result<Vec<i64>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT completed_at - started_at FROM cascades
                     WHERE node_id = ?1 AND action = 'start' AND status = 'completed' AND started_at IS NOT NULL
                       AND completed_at IS NOT NULL
                     ORDER BY id DESC LIMIT ?2",
                )
                .map_err(db)?;
            let rows = stmt.query_map(params![node.get(), limit as i64], |r| r.get(0)).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }
}

/// Refuses a window name that is empty, too long, or not `[A-Za-z0-9._-]`.
pub fn check_window_name(name: &str) -> Result<(), Refusal> {
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(Refusal::invalid(format!(
            "a window's name is 1 to 64 letters, digits, `.`, `_` or `-` (got `{}`)",
            name.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}
