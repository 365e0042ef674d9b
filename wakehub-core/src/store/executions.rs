//! Actions on machines as recorded executions: the durable queue (one running execution per
//! machine, enforced by a unique index; a claim takes a lease that a heartbeat renews), the
//! record of each run (status, exit code, error kind, structured result, report), and the
//! raw logs as artifacts kept by retention policy. After a crash, [`Store::reclaim_executions`]
//! marks every execution whose lease ran out `interrupted`: nothing stays running, nothing
//! runs twice.

use super::db::{OptionalExtension, Transaction};
use rusqlite::params;
use sha2::Digest;

use super::journal::JournalTx;
use super::{Store, StoreError, db};
use crate::events::EventKind;
use crate::model::{NodeId, Refusal};

/// Where an execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExecutionStatus {
    /// Waiting its turn on its machine.
    Queued,
    /// Running (its lease renewed by a heartbeat).
    Running,
    /// Done.
    Succeeded,
    /// Done, and it failed (its `error_kind` says why).
    Failed,
    /// WakeHub stopped (or crashed) while it ran: it was not run again.
    Interrupted,
    /// Cancelled before it began.
    Cancelled,
}

impl ExecutionStatus {
    /// `queued`, `running`, `succeeded`, `failed`, `interrupted`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Queued => "queued",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Succeeded => "succeeded",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Interrupted => "interrupted",
            ExecutionStatus::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> ExecutionStatus {
        match s {
            "queued" => ExecutionStatus::Queued,
            "running" => ExecutionStatus::Running,
            "succeeded" => ExecutionStatus::Succeeded,
            "failed" => ExecutionStatus::Failed,
            "cancelled" => ExecutionStatus::Cancelled,
            _ => ExecutionStatus::Interrupted,
        }
    }

    /// Whether it has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, ExecutionStatus::Queued | ExecutionStatus::Running)
    }
}

/// One execution.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExecutionRecord {
    /// Its id.
    pub id: i64,
    /// The machine.
    pub node: NodeId,
    /// `upgrade`, `reboot`, `docker-prune`, `command:NAME`.
    pub action: String,
    /// `manual`, `scheduled` or `maintenance`.
    pub mode: String,
    /// Who asked.
    pub actor: String,
    /// Where it is.
    pub status: ExecutionStatus,
    /// When it was queued (ms since the epoch).
    pub queued_at: i64,
    /// When it began.
    pub started_at: Option<i64>,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// The script's exit status.
    pub exit_code: Option<i64>,
    /// Why it failed (`apt_locked`, `dpkg_error`, `connection_lost`, `timeout`…).
    pub error_kind: Option<String>,
    /// What failed, for people.
    pub error_message: Option<String>,
    /// The structured result (JSON: packages changed, failed packages, source errors…).
    pub result: Option<serde_json::Value>,
    /// The report a person reads (Markdown).
    pub report: Option<String>,
    /// Its raw log's artifact, if kept.
    pub artifact: Option<i64>,
}

/// A kept raw log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArtifactRecord {
    /// Its id.
    pub id: i64,
    /// The machine.
    pub node: NodeId,
    /// The execution it is the log of.
    pub execution: Option<i64>,
    /// `raw-log`.
    pub kind: String,
    /// Its size.
    pub bytes: i64,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// Secrets were removed from it.
    pub redacted: bool,
    /// `default` (30 days), `failed` (90 days), `short` (7 days) or `pinned` (kept).
    pub retention: String,
    /// When it was written.
    pub created_at: i64,
    /// When the sweep deletes it (none: pinned).
    pub expires_at: Option<i64>,
    /// When its content was deleted, and why.
    pub deleted: Option<(i64, String)>,
}

/// An artifact's record and its content (none once swept).
pub type Artifact = (ArtifactRecord, Option<Vec<u8>>);

/// How long each retention policy keeps a log.
pub fn retention_ms(policy: &str) -> Option<i64> {
    const DAY: i64 = 86_400_000;
    match policy {
        "short" => Some(7 * DAY),
        "default" => Some(30 * DAY),
        "failed" => Some(90 * DAY),
        _ => None,
    }
}

const COLUMNS: &str = "e.id, e.node_id, e.action, e.mode, e.actor, e.status, e.queued_at, e.started_at, e.finished_at,
     e.exit_code, e.error_kind, e.error_message, e.result, e.report,
     (SELECT a.id FROM machine_artifacts a WHERE a.execution_id = e.id ORDER BY a.id DESC LIMIT 1)";

fn row(r: &super::db::Row<'_>) -> super::db::Result<ExecutionRecord> {
    let result: Option<String> = r.get(12)?;
    Ok(ExecutionRecord {
        id: r.get(0)?,
        node: NodeId::new(r.get(1)?),
        action: r.get(2)?,
        mode: r.get(3)?,
        actor: r.get(4)?,
        status: ExecutionStatus::parse(&r.get::<_, String>(5)?),
        queued_at: r.get(6)?,
        started_at: r.get(7)?,
        finished_at: r.get(8)?,
        exit_code: r.get(9)?,
        error_kind: r.get(10)?,
        error_message: r.get(11)?,
        result: result.and_then(|j| serde_json::from_str(&j).ok()),
        report: r.get(13)?,
        artifact: r.get(14)?,
    })
}

pub(super) fn execution(tx: &Transaction<'_>, id: i64) -> Result<Option<ExecutionRecord>, StoreError> {
    tx.query_row(&format!("SELECT {COLUMNS} FROM machine_executions e WHERE e.id = ?1"), [id], row)
        .optional()
        .map_err(db)
}

/// What the machine state is derived from: the running execution and the latest ended
/// one (the rest cannot change it).
pub(super) fn state_inputs(tx: &Transaction<'_>, node: NodeId) -> Result<Vec<ExecutionRecord>, StoreError> {
    let mut stmt = tx
        .prepare(&format!(
            "SELECT {COLUMNS} FROM machine_executions e WHERE e.node_id = ?1 AND e.status = 'running'
             UNION ALL
             SELECT * FROM (SELECT {COLUMNS} FROM machine_executions e
                            WHERE e.node_id = ?1 AND e.status NOT IN ('queued', 'running', 'cancelled')
                            ORDER BY e.finished_at DESC, e.id DESC LIMIT 1) AS latest"
        ))
        .map_err(db)?;
    let rows = stmt.query_map([node.get()], row).map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

/// The execution running on `node`, if one is.
pub(super) fn running(tx: &Transaction<'_>, node: NodeId) -> Result<Option<ExecutionRecord>, StoreError> {
    tx.query_row(
        &format!("SELECT {COLUMNS} FROM machine_executions e WHERE e.node_id = ?1 AND e.status = 'running'"),
        [node.get()],
        row,
    )
    .optional()
    .map_err(db)
}

/// How an execution ended, to record.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Finished {
    /// Succeeded or failed (or interrupted).
    pub status: ExecutionStatus,
    /// The script's exit status.
    pub exit_code: Option<i64>,
    /// Why it failed.
    pub error: Option<(String, String)>,
    /// The structured result.
    pub result: serde_json::Value,
    /// The report.
    pub report: String,
    /// The raw log, already redacted.
    pub log: Vec<u8>,
}

impl Finished {
    /// An ending.
    pub fn new(status: ExecutionStatus, report: String) -> Finished {
        Finished { status, exit_code: None, error: None, result: serde_json::Value::Null, report, log: Vec::new() }
    }
}

impl JournalTx<'_> {
    /// Queues `action` on `node` (named `name`); journaled as a `machine-execution` event.
    pub fn queue_execution(
        &mut self,
        node: NodeId,
        name: &str,
        action: &str,
        mode: &str,
        actor: &str,
        now: i64,
    ) -> Result<ExecutionRecord, StoreError> {
        self.tx
            .execute(
                "INSERT INTO machine_executions (node_id, action, mode, actor, status, queued_at)
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5)",
                params![node.get(), action, mode, actor, now],
            )
            .map_err(db)?;
        let id = self.tx.last_insert_rowid();
        let record = execution(self.tx, id)?.ok_or_else(|| StoreError::NotFound { what: format!("execution:{id}") })?;
        self.emit_execution(&record, name, "queued");
        Ok(record)
    }

    /// Claims the oldest queued execution of `node` if none runs there: it becomes running
    /// with a lease until `lease_until`.
    pub fn claim_execution(
        &mut self,
        node: NodeId,
        name: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        if running(self.tx, node)?.is_some() {
            return Ok(None);
        }
        let next: Option<i64> = self
            .tx
            .query_row(
                "SELECT id FROM machine_executions WHERE node_id = ?1 AND status = 'queued' ORDER BY id LIMIT 1",
                [node.get()],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        let Some(id) = next else { return Ok(None) };
        self.tx
            .execute(
                "UPDATE machine_executions SET status = 'running', started_at = ?2, lease_until = ?3 WHERE id = ?1",
                params![id, now, lease_until],
            )
            .map_err(db)?;
        let record = execution(self.tx, id)?.ok_or_else(|| StoreError::NotFound { what: format!("execution:{id}") })?;
        super::machines::update_state(self.tx, node, now)?;
        self.emit_execution(&record, name, "running");
        Ok(Some(record))
    }

    /// Records how execution `id` ended, with its log as an artifact (retention `failed`
    /// for a failure, `default` otherwise).
    pub fn finish_execution(
        &mut self,
        id: i64,
        name: &str,
        now: i64,
        finished: Finished,
    ) -> Result<ExecutionRecord, StoreError> {
        let current =
            execution(self.tx, id)?.ok_or_else(|| StoreError::NotFound { what: format!("execution:{id}") })?;
        if current.status.is_final() {
            // A reclaim got there first (the lease ran out): what it recorded stands.
            return Ok(current);
        }
        let (kind, message) = finished.error.clone().unzip();
        self.tx
            .execute(
                "UPDATE machine_executions SET status = ?2, finished_at = ?3, lease_until = NULL, exit_code = ?4,
                        error_kind = ?5, error_message = ?6, result = ?7, report = ?8
                 WHERE id = ?1",
                params![
                    id,
                    finished.status.as_str(),
                    now,
                    finished.exit_code,
                    kind,
                    message,
                    finished.result.to_string(),
                    finished.report
                ],
            )
            .map_err(db)?;
        if !finished.log.is_empty() || finished.status != ExecutionStatus::Cancelled {
            let policy = if finished.status == ExecutionStatus::Succeeded { "default" } else { "failed" };
            let sha: String = sha2::Sha256::digest(&finished.log).iter().map(|b| format!("{b:02x}")).collect();
            self.tx
                .execute(
                    "INSERT INTO machine_artifacts (node_id, execution_id, kind, bytes, sha256, content, redacted,
                                                    retention, created_at, expires_at)
                     VALUES (?1, ?2, 'raw-log', ?3, ?4, ?5, 1, ?6, ?7, ?8)",
                    params![
                        current.node.get(),
                        id,
                        finished.log.len() as i64,
                        sha,
                        finished.log,
                        policy,
                        now,
                        retention_ms(policy).map(|ms| now + ms)
                    ],
                )
                .map_err(db)?;
        }
        let record = execution(self.tx, id)?.ok_or_else(|| StoreError::NotFound { what: format!("execution:{id}") })?;
        super::machines::update_state(self.tx, current.node, now)?;
        self.emit_execution(&record, name, record.status.as_str());
        Ok(record)
    }

    /// Renews the lease of running execution `id`.
    pub fn renew_lease(&mut self, id: i64, lease_until: i64) -> Result<bool, StoreError> {
        let n = self
            .tx
            .execute(
                "UPDATE machine_executions SET lease_until = ?2 WHERE id = ?1 AND status = 'running'",
                params![id, lease_until],
            )
            .map_err(db)?;
        Ok(n > 0)
    }

    /// Cancels queued execution `id` (one that already began is not cancelled: it is on the
    /// machine).
    pub fn cancel_execution(&mut self, id: i64, name: &str, now: i64) -> Result<ExecutionRecord, StoreError> {
        let current =
            execution(self.tx, id)?.ok_or_else(|| StoreError::NotFound { what: format!("execution:{id}") })?;
        if current.status != ExecutionStatus::Queued {
            return Err(Refusal::conflict(format!(
                "execution:{id} is {}; only a queued execution can be cancelled",
                current.status.as_str()
            ))
            .into());
        }
        self.finish_execution(
            id,
            name,
            now,
            Finished::new(ExecutionStatus::Cancelled, "Cancelled before it began.".into()),
        )
    }

    /// Marks every running execution whose lease ended before `now` (all of them, with
    /// `now = i64::MAX`, at start) `interrupted`: it was on the machine when WakeHub
    /// stopped, so it is reported, never run again.
    pub fn reclaim_executions(&mut self, now: i64) -> Result<Vec<ExecutionRecord>, StoreError> {
        let mut stmt = self
            .tx
            .prepare(&format!(
                "SELECT {COLUMNS} FROM machine_executions e WHERE e.status = 'running' AND e.lease_until < ?1"
            ))
            .map_err(db)?;
        let stale: Vec<ExecutionRecord> =
            stmt.query_map([now], row).map_err(db)?.collect::<Result<_, _>>().map_err(db)?;
        drop(stmt);
        let finished_at = super::now_ms();
        let mut out = Vec::new();
        for e in stale {
            let name: String =
                self.tx.query_row("SELECT name FROM nodes WHERE id = ?1", [e.node.get()], |r| r.get(0)).map_err(db)?;
            let mut f = Finished::new(
                ExecutionStatus::Interrupted,
                format!(
                    "# {} on {name}: interrupted\n\nWakeHub stopped while it ran; it was not run again. Refresh the \
                     machine to see where it stands.\n",
                    e.action
                ),
            );
            f.error = Some(("interrupted".into(), "WakeHub stopped while it ran; it was not run again".into()));
            out.push(self.finish_execution(e.id, &name, finished_at, f)?);
        }
        Ok(out)
    }

    fn emit_execution(&mut self, e: &ExecutionRecord, name: &str, status: &str) {
        self.emit(EventKind::MachineExecution {
            node: e.node,
            name: name.to_owned(),
            execution: e.id,
            action: e.action.clone(),
            status: status.to_owned(),
            error_kind: e.error_kind.clone(),
            actor: e.actor.clone(),
        });
    }
}

fn artifact_row(r: &super::db::Row<'_>) -> super::db::Result<ArtifactRecord> {
    let deleted_at: Option<i64> = r.get(10)?;
    let reason: Option<String> = r.get(11)?;
    Ok(ArtifactRecord {
        id: r.get(0)?,
        node: NodeId::new(r.get(1)?),
        execution: r.get(2)?,
        kind: r.get(3)?,
        bytes: r.get(4)?,
        sha256: r.get(5)?,
        redacted: r.get::<_, i64>(6)? != 0,
        retention: r.get(7)?,
        created_at: r.get(8)?,
        expires_at: r.get(9)?,
        deleted: deleted_at.zip(reason),
    })
}

const ARTIFACT_COLUMNS: &str = "id, node_id, execution_id, kind, bytes, sha256, redacted, retention, created_at, \
                                expires_at, deleted_at, delete_reason";

impl Store {
    /// An execution by id.
    pub fn execution(&self, id: i64) -> Result<Option<ExecutionRecord>, StoreError> {
        self.transaction(|tx| execution(tx, id))
    }

    /// A machine's executions, newest first (`node` none: every machine's).
    pub fn executions(&self, node: Option<NodeId>, limit: usize) -> Result<Vec<ExecutionRecord>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM machine_executions e WHERE CAST(?1 AS BIGINT) IS NULL OR e.node_id = ?1
                     ORDER BY e.id DESC LIMIT ?2"
                ))
                .map_err(db)?;
            let rows = stmt.query_map(params![node.map(NodeId::get), limit as i64], row).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    /// The machines with queued executions.
    pub fn nodes_with_queued_executions(&self) -> Result<Vec<NodeId>, StoreError> {
        self.transaction(|tx| {
            let mut stmt =
                tx.prepare("SELECT DISTINCT node_id FROM machine_executions WHERE status = 'queued'").map_err(db)?;
            let rows = stmt.query_map((), |r| r.get::<_, i64>(0)).map_err(db)?;
            rows.map(|r| r.map(NodeId::new)).collect::<Result<_, _>>().map_err(db)
        })
    }

    /// The execution running on `node`, if one is.
    pub fn running_execution(&self, node: NodeId) -> Result<Option<ExecutionRecord>, StoreError> {
        self.transaction(|tx| running(tx, node))
    }

    /// An artifact's record and, unless it was swept, its content.
    pub fn artifact(&self, id: i64) -> Result<Option<Artifact>, StoreError> {
        self.transaction(|tx| {
            tx.query_row(
                &format!("SELECT {ARTIFACT_COLUMNS}, content FROM machine_artifacts WHERE id = ?1"),
                [id],
                |r| Ok((artifact_row(r)?, r.get::<_, Option<Vec<u8>>>(12)?)),
            )
            .optional()
            .map_err(db)
        })
    }

    /// Sets an artifact's retention policy (`pinned` keeps it; another policy counts from
    /// its creation).
    pub fn set_artifact_retention(&self, id: i64, policy: &str) -> Result<bool, StoreError> {
        if !matches!(policy, "default" | "failed" | "short" | "pinned") {
            return Err(Refusal::invalid(format!("retention `{policy}` is default, failed, short or pinned")).into());
        }
        self.transaction(|tx| {
            let n = tx
                .execute(
                    "UPDATE machine_artifacts SET retention = ?2, expires_at = created_at + ?3
                     WHERE id = ?1 AND deleted_at IS NULL",
                    params![id, policy, retention_ms(policy)],
                )
                .map_err(db)?;
            Ok(n > 0)
        })
    }

    /// Deletes the content of every artifact expired at `now` (its record stays, with the
    /// reason); returns how many.
    pub fn sweep_artifacts(&self, now: i64) -> Result<usize, StoreError> {
        self.transaction(|tx| {
            tx.execute(
                "UPDATE machine_artifacts SET content = NULL, deleted_at = ?1, delete_reason = 'expired (' || retention || ')'
                 WHERE deleted_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ?1",
                [now],
            )
            .map_err(db)
        })
    }
}
