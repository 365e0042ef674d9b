//! Machines: refresh attempts, their snapshots (the source of truth, never edited), the
//! messages found in them (merged across refreshes, acknowledged by people), and the
//! machine-state cache derived from refreshes and snapshots — [`MachineState::derive`] is
//! the one rule, applied when a refresh is recorded and by [`Store::rebuild_machine_state`],
//! which gives the same answer from the tables alone (a property test holds them equal).

use super::db::{OptionalExtension, Transaction};
use rusqlite::params;

use super::journal::JournalTx;
use super::{Store, StoreError, db};
use crate::events::EventKind;
use crate::machine::{Message, Severity, Snapshot};
use crate::model::{ErrorCode, NodeId};

/// A node id in the cached state's JSON: its number (the model derives nothing).
mod node_id {
    use crate::model::NodeId;

    pub(super) fn serialize<S: serde::Serializer>(id: &NodeId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(id.get())
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NodeId, D::Error> {
        <i64 as serde::Deserialize>::deserialize(d).map(NodeId::new)
    }
}

/// How a refresh ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RefreshOutcome {
    /// The machine answered: a snapshot was taken.
    Ok,
    /// The machine is off: nothing was asked, what is known stays as it was.
    Asleep,
    /// It could not be asked, or its answer could not be read.
    Failed,
}

impl RefreshOutcome {
    /// `ok`, `asleep`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshOutcome::Ok => "ok",
            RefreshOutcome::Asleep => "asleep",
            RefreshOutcome::Failed => "failed",
        }
    }

    fn parse(s: &str) -> RefreshOutcome {
        match s {
            "ok" => RefreshOutcome::Ok,
            "asleep" => RefreshOutcome::Asleep,
            _ => RefreshOutcome::Failed,
        }
    }
}

/// One refresh attempt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct RefreshRecord {
    /// Its id.
    pub id: i64,
    /// The machine.
    #[serde(with = "node_id")]
    pub node: NodeId,
    /// When it began (ms since the epoch).
    pub started_at: i64,
    /// When it ended.
    pub finished_at: i64,
    /// How it ended.
    pub outcome: RefreshOutcome,
    /// Why it failed (`UNREACHABLE`, `AUTH_FAILED`, `HOST_KEY_MISMATCH`, `TIMEOUT`…).
    pub error_code: Option<String>,
    /// What failed, for people.
    pub error_message: Option<String>,
    /// Who asked (a user's or token's name, `schedule`, `cli`).
    pub actor: String,
}

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SnapshotRecord {
    /// Its id.
    pub id: i64,
    /// The refresh that took it.
    pub refresh: i64,
    /// The machine.
    pub node: NodeId,
    /// When (ms since the epoch).
    pub taken_at: i64,
    /// What it holds.
    pub snapshot: Snapshot,
}

/// A machine's state now, derived from its latest refresh and its latest snapshot: what
/// the dashboard's badges and the machine page show. A cache — never the source of truth.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct MachineState {
    /// The latest refresh attempt, whatever its outcome.
    pub last_refresh: Option<RefreshRecord>,
    /// The latest snapshot's id and time.
    pub snapshot: Option<(i64, i64)>,
    /// The latest refresh found the machine off: what follows is "last known at
    /// `snapshot`'s time".
    pub asleep: bool,
    /// `PRETTY_NAME`.
    pub os: Option<String>,
    /// The running kernel.
    pub kernel: Option<String>,
    /// Upgrades an upgrade would install (not held).
    pub updates: u32,
    /// Of which from a security archive.
    pub security_updates: u32,
    /// Of which kept back by `upgrade` (installed by `full-upgrade` only).
    pub kept_back: u32,
    /// Held packages with a newer candidate.
    pub held: u32,
    /// Whether apt's lists could not be refreshed (source errors, a lock).
    pub apt_problems: bool,
    /// A reboot is required.
    pub reboot_required: bool,
    /// Why.
    pub reboot_reasons: Vec<String>,
    /// Services running outdated code.
    pub restarts: u32,
    /// Filesystems over the warning threshold.
    pub disk_warnings: u32,
    /// The fullest filesystem's use, percent.
    pub fullest_disk_percent: Option<f64>,
    /// Memory in use, percent.
    pub memory_percent: Option<f64>,
    /// Load average over 1 minute.
    pub load1: Option<f64>,
    /// Docker: installed, containers, running ones, reclaimable bytes.
    pub docker: Option<(u32, u32, u64)>,
    /// The action running on it now: execution id and action.
    #[serde(default)]
    pub running: Option<(i64, String)>,
    /// The latest action that ended: execution id, action, status, error kind.
    #[serde(default)]
    pub last_action: Option<(i64, String, String, Option<String>)>,
}

impl MachineState {
    /// The one derivation rule: the latest attempt says whether the machine answered; the
    /// latest snapshot (of any earlier attempt) says what it runs; the executions say what
    /// runs on it and how the last action ended.
    pub fn derive(
        last: Option<&RefreshRecord>,
        snapshot: Option<(i64, i64, &Snapshot)>,
        executions: &[super::ExecutionRecord],
    ) -> MachineState {
        use super::ExecutionStatus as X;
        let mut s = MachineState {
            last_refresh: last.cloned(),
            asleep: last.is_some_and(|r| r.outcome == RefreshOutcome::Asleep),
            running: executions.iter().find(|e| e.status == X::Running).map(|e| (e.id, e.action.clone())),
            last_action: executions
                .iter()
                .filter(|e| e.status.is_final() && e.status != X::Cancelled)
                .max_by_key(|e| (e.finished_at, e.id))
                .map(|e| (e.id, e.action.clone(), e.status.as_str().to_owned(), e.error_kind.clone())),
            ..MachineState::default()
        };
        let Some((id, at, snap)) = snapshot else { return s };
        s.snapshot = Some((id, at));
        s.os = snap.os.as_ref().map(|o| o.pretty_name.clone());
        s.kernel = snap.kernel.as_ref().map(|k| k.running.clone());
        let count =
            |f: &dyn Fn(&crate::machine::Upgrade) -> bool| snap.pending_upgrades().filter(|u| f(u)).count() as u32;
        s.updates = count(&|_| true);
        s.security_updates = count(&|u| u.security);
        s.kept_back = count(&|u| u.kept_back);
        s.held = snap.apt.as_ref().map_or(0, |a| a.upgrades.iter().filter(|u| u.held).count() as u32);
        s.apt_problems = snap
            .apt
            .as_ref()
            .is_some_and(|a| !a.lists_refreshed || !a.source_errors.is_empty() || !a.unfinished.is_empty());
        s.reboot_required = snap.reboot.required;
        s.reboot_reasons = snap.reboot.reasons.clone();
        s.restarts = snap.restarts.as_ref().map_or(0, |r| r.services.len() as u32);
        s.disk_warnings = snap.messages.iter().filter(|m| m.source == "disk").count() as u32;
        s.fullest_disk_percent = snap.filesystems.iter().map(|f| f.used_percent).reduce(f64::max);
        s.memory_percent = snap.memory.as_ref().map(|m| m.used_percent);
        s.load1 = snap.load.as_ref().map(|l| l.one);
        s.docker = snap.docker.as_ref().map(|d| {
            let running = d.containers.iter().filter(|c| c.state == "running").count() as u32;
            (d.containers.len() as u32, running, d.reclaimable_bytes)
        });
        s
    }

    /// One line for the journal and the CLI.
    pub fn summary(&self) -> String {
        let Some(last) = &self.last_refresh else { return "never refreshed".into() };
        match last.outcome {
            RefreshOutcome::Failed => {
                format!("refresh failed: {}", last.error_message.as_deref().unwrap_or("unknown error"))
            }
            RefreshOutcome::Asleep if self.snapshot.is_none() => "asleep, never refreshed while awake".into(),
            _ => {
                let mut parts = vec![match (self.updates, self.security_updates) {
                    (0, _) => "up to date".to_owned(),
                    (n, 0) => format!("{n} update{}", if n == 1 { "" } else { "s" }),
                    (n, s) => format!("{n} update{} ({s} security)", if n == 1 { "" } else { "s" }),
                }];
                if self.reboot_required {
                    parts.push("reboot required".into());
                }
                if self.disk_warnings > 0 {
                    parts.push(format!(
                        "{} disk warning{}",
                        self.disk_warnings,
                        if self.disk_warnings == 1 { "" } else { "s" }
                    ));
                }
                if self.asleep {
                    parts.insert(0, "asleep; last known".into());
                }
                parts.join(", ")
            }
        }
    }
}

/// A message kept for a machine, merged across refreshes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageRecord {
    /// Its id.
    pub id: i64,
    /// The machine.
    pub node: NodeId,
    /// What was found.
    pub message: Message,
    /// When it was first seen (ms).
    pub first_seen: i64,
    /// When it was last seen.
    pub last_seen: i64,
    /// In how many refreshes.
    pub times_seen: i64,
    /// When and by whom it was acknowledged.
    pub acknowledged: Option<(i64, String)>,
}

/// What recording a refresh wrote.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedRefresh {
    /// The attempt.
    pub refresh: RefreshRecord,
    /// The snapshot it took, if the machine answered.
    pub snapshot: Option<i64>,
    /// The machine's state now.
    pub state: MachineState,
    /// Messages seen for the first time (or again after being acknowledged).
    pub new_messages: usize,
}

/// What a refresh brought back, to record.
#[derive(Debug, Clone)]
pub enum RefreshResult {
    /// A snapshot.
    Answered(Box<Snapshot>),
    /// The machine is off.
    Asleep,
    /// A failure: its code and message.
    Failed(ErrorCode, String),
}

fn refresh_row(r: &super::db::Row<'_>) -> super::db::Result<RefreshRecord> {
    Ok(RefreshRecord {
        id: r.get(0)?,
        node: NodeId::new(r.get(1)?),
        started_at: r.get(2)?,
        finished_at: r.get(3)?,
        outcome: RefreshOutcome::parse(&r.get::<_, String>(4)?),
        error_code: r.get(5)?,
        error_message: r.get(6)?,
        actor: r.get(7)?,
    })
}

const REFRESH_COLUMNS: &str = "id, node_id, started_at, finished_at, outcome, error_code, error_message, actor";

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { message: format!("{what}: {e}") }
}

fn latest_refresh(tx: &Transaction<'_>, node: NodeId) -> Result<Option<RefreshRecord>, StoreError> {
    tx.query_row(
        &format!("SELECT {REFRESH_COLUMNS} FROM machine_refreshes WHERE node_id = ?1 ORDER BY id DESC LIMIT 1"),
        [node.get()],
        refresh_row,
    )
    .optional()
    .map_err(db)
}

fn latest_snapshot(tx: &Transaction<'_>, node: NodeId) -> Result<Option<SnapshotRecord>, StoreError> {
    let row = tx
        .query_row(
            "SELECT id, refresh_id, taken_at, payload FROM machine_snapshots WHERE node_id = ?1 ORDER BY id DESC LIMIT 1",
            [node.get()],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?)),
        )
        .optional()
        .map_err(db)?;
    row.map(|(id, refresh, taken_at, payload)| {
        let snapshot = serde_json::from_str(&payload).map_err(|e| corrupt("machine snapshot", e))?;
        Ok(SnapshotRecord { id, refresh, node, taken_at, snapshot })
    })
    .transpose()
}

/// The derived state from the tables alone.
pub(super) fn derive_from_tables(tx: &Transaction<'_>, node: NodeId) -> Result<MachineState, StoreError> {
    let last = latest_refresh(tx, node)?;
    let snap = latest_snapshot(tx, node)?;
    let executions = super::executions::state_inputs(tx, node)?;
    Ok(MachineState::derive(last.as_ref(), snap.as_ref().map(|s| (s.id, s.taken_at, &s.snapshot)), &executions))
}

/// Derives `node`'s state again and writes the cache.
pub(super) fn update_state(tx: &Transaction<'_>, node: NodeId, now: i64) -> Result<MachineState, StoreError> {
    let state = derive_from_tables(tx, node)?;
    write_state(tx, node, &state, now)?;
    Ok(state)
}

fn write_state(tx: &Transaction<'_>, node: NodeId, state: &MachineState, now: i64) -> Result<(), StoreError> {
    let payload = serde_json::to_string(state).map_err(|e| corrupt("machine state", e))?;
    tx.execute(
        "INSERT INTO machine_state (node_id, payload, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (node_id) DO UPDATE SET payload = excluded.payload, updated_at = excluded.updated_at",
        params![node.get(), payload, now],
    )
    .map_err(db)?;
    Ok(())
}

impl JournalTx<'_> {
    /// Records a refresh of `node` (named `name`) and what it brought back: the attempt,
    /// the snapshot, the messages merged, the state cache, and a `machine-refreshed`
    /// event — one transaction.
    pub fn record_refresh(
        &mut self,
        node: NodeId,
        name: &str,
        started_at: i64,
        finished_at: i64,
        result: RefreshResult,
        actor: &str,
    ) -> Result<RecordedRefresh, StoreError> {
        let tx = self.tx;
        let (outcome, code, message) = match &result {
            RefreshResult::Answered(_) => (RefreshOutcome::Ok, None, None),
            RefreshResult::Asleep => (RefreshOutcome::Asleep, None, None),
            RefreshResult::Failed(code, m) => (RefreshOutcome::Failed, Some(code.as_str()), Some(m.as_str())),
        };
        tx.execute(
            "INSERT INTO machine_refreshes (node_id, started_at, finished_at, outcome, error_code, error_message, actor)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![node.get(), started_at, finished_at, outcome.as_str(), code, message, actor],
        )
        .map_err(db)?;
        let refresh_id = tx.last_insert_rowid();
        let mut snapshot_id = None;
        let mut new_messages = 0;
        if let RefreshResult::Answered(snap) = &result {
            let payload = serde_json::to_string(snap).map_err(|e| corrupt("machine snapshot", e))?;
            tx.execute(
                "INSERT INTO machine_snapshots (refresh_id, node_id, taken_at, schema, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![refresh_id, node.get(), finished_at, snap.schema, payload],
            )
            .map_err(db)?;
            snapshot_id = Some(tx.last_insert_rowid());
            for m in &snap.messages {
                new_messages += merge_message(tx, node, m, finished_at)?;
            }
        }
        let state = update_state(tx, node, finished_at)?;
        let refresh = latest_refresh(tx, node)?.ok_or_else(|| corrupt("machine refresh", "not written"))?;
        self.emit(EventKind::MachineRefreshed {
            node,
            name: name.to_owned(),
            outcome: outcome.as_str().to_owned(),
            updates: state.updates,
            security_updates: state.security_updates,
            reboot_required: state.reboot_required,
            code: code.and_then(ErrorCode::parse),
            summary: state.summary(),
            actor: actor.to_owned(),
        });
        Ok(RecordedRefresh { refresh, snapshot: snapshot_id, state, new_messages })
    }
}

/// Merges one message: first seen now, or seen again (an acknowledged one seen again
/// stays acknowledged: it is the same message). Returns 1 when it is new.
fn merge_message(tx: &Transaction<'_>, node: NodeId, m: &Message, now: i64) -> Result<usize, StoreError> {
    let subject = m.subject.clone().unwrap_or_default();
    let updated = tx
        .execute(
            "UPDATE machine_messages SET last_seen = ?5, times_seen = times_seen + 1, severity = ?6, category = ?7
             WHERE node_id = ?1 AND source = ?2 AND subject = ?3 AND text = ?4",
            params![node.get(), m.source, subject, m.text, now, m.severity.as_str(), m.category],
        )
        .map_err(db)?;
    if updated > 0 {
        return Ok(0);
    }
    tx.execute(
        "INSERT INTO machine_messages (node_id, source, category, severity, subject, text, first_seen, last_seen, times_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 1)",
        params![node.get(), m.source, m.category, m.severity.as_str(), subject, m.text, now],
    )
    .map_err(db)?;
    Ok(1)
}

fn severity(s: &str) -> Severity {
    match s {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        _ => Severity::Info,
    }
}

impl JournalTx<'_> {
    /// Merges messages found in an action's output into `node`'s messages; returns how
    /// many are new.
    pub fn merge_messages(&mut self, node: NodeId, messages: &[Message], now: i64) -> Result<usize, StoreError> {
        let mut new = 0;
        for m in messages {
            new += merge_message(self.tx, node, m, now)?;
        }
        Ok(new)
    }
}

impl Store {
    /// A machine's state (the cache), if it was ever refreshed.
    pub fn machine_state(&self, node: NodeId) -> Result<Option<MachineState>, StoreError> {
        self.transaction(|tx| {
            let payload: Option<String> = tx
                .query_row("SELECT payload FROM machine_state WHERE node_id = ?1", [node.get()], |r| r.get(0))
                .optional()
                .map_err(db)?;
            payload.map(|p| serde_json::from_str(&p).map_err(|e| corrupt("machine state", e))).transpose()
        })
    }

    /// Rebuilds a machine's state from its refreshes and snapshots alone, rewrites the
    /// cache, and returns it.
    pub fn rebuild_machine_state(&self, node: NodeId) -> Result<MachineState, StoreError> {
        self.transaction(|tx| {
            let state = derive_from_tables(tx, node)?;
            write_state(tx, node, &state, super::now_ms())?;
            Ok(state)
        })
    }

    /// The latest snapshot of a machine.
    pub fn latest_snapshot(&self, node: NodeId) -> Result<Option<SnapshotRecord>, StoreError> {
        self.transaction(|tx| latest_snapshot(tx, node))
    }

    /// A machine's refresh attempts, newest first.
    pub fn refreshes(&self, node: NodeId, limit: usize) -> Result<Vec<RefreshRecord>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {REFRESH_COLUMNS} FROM machine_refreshes WHERE node_id = ?1 ORDER BY id DESC LIMIT ?2"
                ))
                .map_err(db)?;
            let rows = stmt.query_map(params![node.get(), limit as i64], refresh_row).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    /// A machine's messages: unacknowledged ones first (worst first), then the rest,
    /// newest first.
    pub fn machine_messages(&self, node: NodeId, include_acknowledged: bool) -> Result<Vec<MessageRecord>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT id, source, category, severity, subject, text, first_seen, last_seen, times_seen,
                            acknowledged_at, acknowledged_by
                     FROM machine_messages WHERE node_id = ?1 AND (?2 OR acknowledged_at IS NULL)
                     ORDER BY acknowledged_at IS NOT NULL,
                              CASE severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
                              last_seen DESC, id",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![node.get(), include_acknowledged], |r| {
                    let subject: String = r.get(4)?;
                    let at: Option<i64> = r.get(9)?;
                    let by: Option<String> = r.get(10)?;
                    Ok(MessageRecord {
                        id: r.get(0)?,
                        node,
                        message: Message {
                            source: r.get(1)?,
                            category: r.get(2)?,
                            severity: severity(&r.get::<_, String>(3)?),
                            subject: (!subject.is_empty()).then_some(subject),
                            text: r.get(5)?,
                        },
                        first_seen: r.get(6)?,
                        last_seen: r.get(7)?,
                        times_seen: r.get(8)?,
                        acknowledged: at.zip(by),
                    })
                })
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    /// Acknowledges a message of `node` in `by`'s name; `false` if there is no such message.
    pub fn acknowledge_message(&self, node: NodeId, id: i64, by: &str) -> Result<bool, StoreError> {
        self.transaction(|tx| {
            let n = tx
                .execute(
                    "UPDATE machine_messages SET acknowledged_at = ?3, acknowledged_by = ?4
                     WHERE id = ?1 AND node_id = ?2 AND acknowledged_at IS NULL",
                    params![id, node.get(), super::now_ms(), by],
                )
                .map_err(db)?;
            Ok(n > 0)
        })
    }
}

/// One entry of a machine's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimelineEntry {
    /// The journal event it comes from.
    pub event: crate::model::EventId,
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// `refresh`, `action`, `power` or `maintenance`.
    pub kind: &'static str,
    /// How much it matters.
    pub severity: Severity,
    /// Who caused it, when someone did.
    pub actor: Option<String>,
    /// One line for people.
    pub summary: String,
}

/// The machine-related journal kinds a timeline reads.
const TIMELINE_KINDS: [&str; 5] =
    ["machine-refreshed", "machine-execution", "status-change", "power-refused", "maintenance"];

fn timeline_entry(e: crate::events::Event) -> Option<TimelineEntry> {
    let (kind, severity, actor, summary) = match e.kind {
        EventKind::MachineRefreshed { outcome, security_updates, reboot_required, summary, actor, .. } => {
            let severity = match outcome.as_str() {
                "failed" => Severity::Error,
                _ if security_updates > 0 || reboot_required => Severity::Warning,
                _ => Severity::Info,
            };
            ("refresh", severity, Some(actor), format!("refresh {outcome}: {summary}"))
        }
        EventKind::MachineExecution { execution, action, status, error_kind, actor, .. } => {
            let severity = match status.as_str() {
                "failed" | "interrupted" => Severity::Error,
                _ => Severity::Info,
            };
            let why = error_kind.map(|k| format!(" ({k})")).unwrap_or_default();
            ("action", severity, Some(actor), format!("{action} {status}{why} (execution:{execution})"))
        }
        EventKind::StatusChange { state, .. } => ("power", Severity::Info, None, format!("now {state}")),
        EventKind::PowerRefused { action, actor, code, .. } => (
            "power",
            Severity::Warning,
            Some(actor.clone()),
            format!("{} refused to {actor} ({})", action.as_str(), code.as_str()),
        ),
        EventKind::Maintenance { run, phase, status, message, .. } => {
            let severity = if status == "failed" { Severity::Error } else { Severity::Info };
            ("maintenance", severity, None, format!("maintenance run {run}, {phase}: {message}"))
        }
        _ => return None,
    };
    Some(TimelineEntry { event: e.id, at_ms: e.at_ms, kind, severity, actor, summary })
}

impl Store {
    /// A machine's timeline, newest first: its refreshes, actions, power changes and
    /// refused power requests, each with a severity and who caused it — read from the
    /// journal, where every one of them is recorded.
    pub fn machine_timeline(&self, node: NodeId, limit: usize) -> Result<Vec<TimelineEntry>, StoreError> {
        let query = super::EventQuery {
            node: Some(node),
            kinds: TIMELINE_KINDS.iter().map(|k| (*k).to_owned()).collect(),
            newest_first: true,
            limit,
            ..Default::default()
        };
        Ok(self.find_events(&query)?.into_iter().filter_map(timeline_entry).collect())
    }
}
