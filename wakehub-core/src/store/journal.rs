//! The cascade journal: cascade records, their steps, shutdown proposals and the event log.
//! Writers run inside [`Store::journal`], which appends the events in the same transaction
//! as the state change they record.

use std::collections::BTreeMap;
use std::time::Duration;

use super::db::{OptionalExtension, Row, Transaction};
use rusqlite::params;

use super::payload::encode;
use super::{Store, StoreError, db, now_ms};
use crate::events::{CascadeStatus, Event, EventKind, StepStatus};
use crate::model::{Action, CascadeId, ErrorCode, EventId, NodeId, ProposalId};
use crate::plan::Role;

/// A cascade as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CascadeRecord {
    /// Its id.
    pub id: CascadeId,
    /// The node asked for.
    pub node: NodeId,
    /// Its name at the time.
    pub node_name: String,
    /// Start or stop.
    pub action: Action,
    /// Where it is.
    pub status: CascadeStatus,
    /// Steps finished.
    pub current_step: usize,
    /// Steps planned.
    pub total_steps: usize,
    /// The step that failed.
    pub failed_step: Option<usize>,
    /// Stable error code when it did not complete.
    pub error_code: Option<ErrorCode>,
    /// Human error message.
    pub error_message: Option<String>,
    /// The interrupted cascade this one re-runs.
    pub rerun_of: Option<CascadeId>,
    /// Accepted at (ms since epoch).
    pub created_at_ms: i64,
    /// Began running at.
    pub started_at_ms: Option<i64>,
    /// Ended at.
    pub completed_at_ms: Option<i64>,
    /// Who asked for it (a token's or user's name), when it came through the API.
    pub requested_by: Option<String>,
}

/// One step of a cascade as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepRecord {
    /// Index in the plan.
    pub index: usize,
    /// The node.
    pub node: NodeId,
    /// Its name at the time.
    pub node_name: String,
    /// Start or stop.
    pub action: Action,
    /// Why it is in the plan.
    pub role: Role,
    /// Steps it waited for.
    pub after: Vec<usize>,
    /// Where it is.
    pub status: StepStatus,
    /// Why it was skipped or joined.
    pub reason: Option<String>,
    /// Error code if it failed.
    pub error_code: Option<ErrorCode>,
    /// Error message if it failed.
    pub error_message: Option<String>,
    /// Began at.
    pub started_at_ms: Option<i64>,
    /// Ended at.
    pub completed_at_ms: Option<i64>,
}

/// The state of a shutdown proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProposalStatus {
    /// Awaiting a decision.
    Pending,
    /// Confirmed: a stop cascade was started.
    Confirmed,
    /// Dismissed: the node stays on.
    Dismissed,
}

impl ProposalStatus {
    /// The name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Pending => "pending",
            ProposalStatus::Confirmed => "confirmed",
            ProposalStatus::Dismissed => "dismissed",
        }
    }
}

/// A shutdown proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProposalRecord {
    /// Its id.
    pub id: ProposalId,
    /// The node to shut down.
    pub node: NodeId,
    /// Its name at the time.
    pub node_name: String,
    /// The cascade whose re-evaluation proposed it.
    pub cascade: Option<CascadeId>,
    /// Why.
    pub reason: String,
    /// Decision.
    pub status: ProposalStatus,
    /// Proposed at.
    pub created_at_ms: i64,
    /// Decided at.
    pub resolved_at_ms: Option<i64>,
}

/// Which cascades to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct CascadeFilter {
    /// Only this target node.
    pub node: Option<NodeId>,
    /// Only this status.
    pub status: Option<CascadeStatus>,
    /// Only ids below this one (cursor pagination).
    pub before: Option<CascadeId>,
    /// At most this many (default 50).
    pub limit: Option<usize>,
}

impl Store {
    /// Runs `f` in one transaction with the journal's writers, and appends the events it
    /// emitted in the same transaction: committed together, or not at all. Returns the
    /// events with their ids, to be published once committed.
    pub fn journal<R>(
        &self,
        f: impl FnOnce(&mut JournalTx<'_>) -> Result<R, StoreError>,
    ) -> Result<(R, Vec<Event>), StoreError> {
        let mut item = (Some(f), None);
        let mut written = self.journal_each(
            std::slice::from_mut(&mut item),
            |_| true,
            |(f, r), tx| {
                *r = f.take().map(|f| f(tx)).transpose()?;
                Ok(())
            },
        )?;
        let events = written.pop().unwrap_or_else(|| Ok(Vec::new()))?;
        item.1.map(|r| (r, events)).ok_or_else(|| bad("journal write", "not run"))
    }

    /// Group commit: runs `write` for each item in one transaction and commits once, with
    /// one sync. An item `guarded` says may fail runs in a savepoint of its own: if it fails
    /// it is rolled back alone (its `Err` is in the result) and the others commit. An item
    /// that is not guarded (a write that fails only when the database does) saves the
    /// savepoint's cost; if it fails, the whole group is rolled back and this returns its
    /// error, as when the transaction cannot begin or commit: nothing was written.
    pub fn journal_each<T>(
        &self,
        items: &mut [T],
        guarded: impl Fn(&T) -> bool,
        mut write: impl FnMut(&mut T, &mut JournalTx<'_>) -> Result<(), StoreError>,
    ) -> Result<Vec<Result<Vec<Event>, StoreError>>, StoreError> {
        self.transaction(|tx| {
            let savepoint = |sql: &str| tx.prepare_cached(sql).and_then(|mut s| s.execute(())).map_err(db);
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter_mut() {
                let guarded = guarded(item);
                if guarded {
                    savepoint("SAVEPOINT journal_item")?;
                }
                let mut jtx = JournalTx { tx, events: Vec::new() };
                let written = write(item, &mut jtx)
                    .and_then(|()| jtx.events.into_iter().map(|k| append_event(tx, k)).collect::<Result<Vec<_>, _>>());
                if guarded {
                    if written.is_err() {
                        savepoint("ROLLBACK TO journal_item")?;
                    }
                    savepoint("RELEASE journal_item")?;
                    out.push(written);
                } else {
                    out.push(Ok(written?));
                }
            }
            if out.iter().any(|o| o.as_ref().is_ok_and(|events| !events.is_empty())) {
                super::shared::notify(tx, super::shared::EVENTS_CHANNEL, "")?;
            }
            Ok(out)
        })
    }

    /// A cascade by id.
    pub fn cascade(&self, id: CascadeId) -> Result<Option<CascadeRecord>, StoreError> {
        self.transaction(|tx| cascade(tx, id))
    }

    /// Cascades matching `filter`, newest first.
    pub fn cascades(&self, filter: &CascadeFilter) -> Result<Vec<CascadeRecord>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {CASCADE_COLUMNS} FROM cascades
                 WHERE (CAST(?1 AS BIGINT) IS NULL OR node_id = ?1) AND (CAST(?2 AS TEXT) IS NULL OR status = ?2)
                   AND (CAST(?3 AS BIGINT) IS NULL OR id < ?3)
                 ORDER BY id DESC LIMIT ?4"
                ))
                .map_err(db)?;
            let rows = stmt
                .query_map(
                    params![
                        filter.node.map(NodeId::get),
                        filter.status.map(CascadeStatus::as_str),
                        filter.before.map(CascadeId::get),
                        filter.limit.unwrap_or(50) as i64
                    ],
                    cascade_row,
                )
                .map_err(db)?;
            rows.map(|r| r.map_err(super::db).and_then(|r| r)).collect()
        })
    }

    /// The steps of a cascade, in plan order.
    pub fn steps(&self, id: CascadeId) -> Result<Vec<StepRecord>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT idx, node_id, node_name, action, role, after, status, reason, error_code, error_message,
                        started_at, completed_at
                 FROM cascade_steps WHERE cascade_id = ?1 ORDER BY idx",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([id.get()], |r| {
                    let after: String = r.get(5)?;
                    Ok((
                        StepRecord {
                            index: r.get::<_, i64>(0)? as usize,
                            node: NodeId::new(r.get(1)?),
                            node_name: r.get(2)?,
                            action: Action::Start,
                            role: Role::Requested,
                            after: serde_json::from_str(&after).unwrap_or_default(),
                            status: StepStatus::Pending,
                            reason: r.get(7)?,
                            error_code: code_of(r.get(8)?),
                            error_message: r.get(9)?,
                            started_at_ms: r.get(10)?,
                            completed_at_ms: r.get(11)?,
                        },
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(6)?,
                    ))
                })
                .map_err(db)?;
            rows.map(|row| {
                let (mut step, action, role, status) = row.map_err(db)?;
                step.action = Action::parse(&action).ok_or_else(|| bad("step action", &action))?;
                step.role = Role::parse(&role).ok_or_else(|| bad("step role", &role))?;
                step.status = StepStatus::parse(&status).ok_or_else(|| bad("step status", &status))?;
                Ok(step)
            })
            .collect()
        })
    }

    /// Shutdown proposals, newest first; only pending ones unless `all`.
    pub fn proposals(&self, all: bool) -> Result<Vec<ProposalRecord>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {PROPOSAL_COLUMNS} FROM proposals WHERE ?1 OR status = 'pending' ORDER BY id DESC"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([all], proposal_row).map_err(db)?;
            rows.map(|r| r.map_err(super::db).and_then(|r| r)).collect()
        })
    }

    /// A proposal by id.
    pub fn proposal(&self, id: ProposalId) -> Result<Option<ProposalRecord>, StoreError> {
        self.transaction(|tx| proposal(tx, id))
    }

    /// The median duration of the last successful steps per node and action (for plan
    /// estimates).
    pub fn typical_durations(&self) -> Result<BTreeMap<(NodeId, Action), Duration>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT node_id, action, completed_at - started_at FROM cascade_steps
                 WHERE status = 'done' AND started_at IS NOT NULL AND completed_at IS NOT NULL
                 ORDER BY cascade_id DESC LIMIT 5000",
                )
                .map_err(db)?;
            let mut samples: BTreeMap<(NodeId, Action), Vec<i64>> = BTreeMap::new();
            for row in stmt
                .query_map((), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
                .map_err(db)?
            {
                let (node, action, ms) = row.map_err(db)?;
                if let Some(action) = Action::parse(&action) {
                    let v = samples.entry((NodeId::new(node), action)).or_default();
                    if v.len() < 20 {
                        v.push(ms.max(0));
                    }
                }
            }
            Ok(samples
                .into_iter()
                .map(|(k, mut v)| {
                    v.sort_unstable();
                    (k, Duration::from_millis(v[v.len() / 2] as u64))
                })
                .collect())
        })
    }
}

/// A stored failure code; one this build does not know (it cannot happen: a newer database
/// is refused at open) reads as `INTERNAL` rather than failing the whole listing.
fn code_of(stored: Option<String>) -> Option<ErrorCode> {
    stored.map(|c| ErrorCode::parse(&c).unwrap_or(ErrorCode::Internal))
}

pub(super) fn bad(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt { message: format!("bad {what} `{value}`") }
}

const CASCADE_COLUMNS: &str = "id, node_id, node_name, action, status, current_step, total_steps, failed_step, \
     error_code, error_message, rerun_of, created_at, started_at, completed_at, requested_by";

fn cascade_row(r: &Row<'_>) -> super::db::Result<Result<CascadeRecord, StoreError>> {
    let action: String = r.get(3)?;
    let status: String = r.get(4)?;
    let (Some(action), Some(status)) = (Action::parse(&action), CascadeStatus::parse(&status)) else {
        return Ok(Err(bad("cascade", &format!("{action}/{status}"))));
    };
    Ok(Ok(CascadeRecord {
        id: CascadeId::new(r.get(0)?),
        node: NodeId::new(r.get(1)?),
        node_name: r.get(2)?,
        action,
        status,
        current_step: r.get::<_, i64>(5)? as usize,
        total_steps: r.get::<_, i64>(6)? as usize,
        failed_step: r.get::<_, Option<i64>>(7)?.map(|s| s as usize),
        error_code: code_of(r.get(8)?),
        error_message: r.get(9)?,
        rerun_of: r.get::<_, Option<i64>>(10)?.map(CascadeId::new),
        created_at_ms: r.get(11)?,
        started_at_ms: r.get(12)?,
        completed_at_ms: r.get(13)?,
        requested_by: r.get(14)?,
    }))
}

pub(crate) fn cascade(tx: &Transaction<'_>, id: CascadeId) -> Result<Option<CascadeRecord>, StoreError> {
    tx.query_row(&format!("SELECT {CASCADE_COLUMNS} FROM cascades WHERE id = ?1"), [id.get()], cascade_row)
        .optional()
        .map_err(db)?
        .transpose()
}

const PROPOSAL_COLUMNS: &str = "id, node_id, node_name, cascade_id, reason, status, created_at, resolved_at";

fn proposal_row(r: &Row<'_>) -> super::db::Result<Result<ProposalRecord, StoreError>> {
    let status: String = r.get(5)?;
    let status = match status.as_str() {
        "pending" => ProposalStatus::Pending,
        "confirmed" => ProposalStatus::Confirmed,
        "dismissed" => ProposalStatus::Dismissed,
        other => return Ok(Err(bad("proposal status", other))),
    };
    Ok(Ok(ProposalRecord {
        id: ProposalId::new(r.get(0)?),
        node: NodeId::new(r.get(1)?),
        node_name: r.get(2)?,
        cascade: r.get::<_, Option<i64>>(3)?.map(CascadeId::new),
        reason: r.get(4)?,
        status,
        created_at_ms: r.get(6)?,
        resolved_at_ms: r.get(7)?,
    }))
}

pub(crate) fn proposal(tx: &Transaction<'_>, id: ProposalId) -> Result<Option<ProposalRecord>, StoreError> {
    tx.query_row(&format!("SELECT {PROPOSAL_COLUMNS} FROM proposals WHERE id = ?1"), [id.get()], proposal_row)
        .optional()
        .map_err(db)?
        .transpose()
}

// ----- writers (called inside `Store::journal`) -----

/// The journal's writers, inside one transaction ([`Store::journal`]): cascades, steps,
/// proposals, and the events that record them.
pub struct JournalTx<'a> {
    pub(super) tx: &'a Transaction<'a>,
    events: Vec<EventKind>,
}

impl std::fmt::Debug for JournalTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalTx").field("events", &self.events.len()).finish_non_exhaustive()
    }
}

/// One planned step to record.
#[derive(Debug, Clone, Copy)]
pub struct NewStep<'a> {
    /// The node.
    pub node: NodeId,
    /// Its name now.
    pub node_name: &'a str,
    /// Start or stop.
    pub action: Action,
    /// Why it is in the plan.
    pub role: Role,
    /// Steps it waits for.
    pub after: &'a [usize],
}

impl JournalTx<'_> {
    /// Appends `event` to the journal (with the transaction's other writes).
    pub fn emit(&mut self, event: EventKind) {
        self.events.push(event);
    }

    /// A new cascade, `pending`.
    pub fn insert_cascade(
        &mut self,
        node: NodeId,
        node_name: &str,
        action: Action,
        rerun_of: Option<CascadeId>,
        requested_by: Option<&str>,
    ) -> Result<CascadeRecord, StoreError> {
        let tx = self.tx;
        tx.execute(
            "INSERT INTO cascades (node_id, node_name, action, status, rerun_of, created_at, requested_by)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6)",
            params![node.get(), node_name, action.as_str(), rerun_of.map(CascadeId::get), now_ms(), requested_by],
        )
        .map_err(db)?;
        let id = CascadeId::new(tx.last_insert_rowid());
        cascade(tx, id)?.ok_or_else(|| bad("cascade", "just inserted"))
    }

    /// The cascade begins: `in_progress`, with its planned steps.
    pub fn begin_cascade(&mut self, id: CascadeId, steps: &[NewStep<'_>]) -> Result<(), StoreError> {
        let tx = self.tx;
        tx.execute(
            "UPDATE cascades SET status = 'in_progress', started_at = ?1, total_steps = ?2 WHERE id = ?3",
            params![now_ms(), steps.len() as i64, id.get()],
        )
        .map_err(db)?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO cascade_steps (cascade_id, idx, node_id, node_name, action, role, after, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending')",
            )
            .map_err(db)?;
        for (i, s) in steps.iter().enumerate() {
            insert
                .execute(params![
                    id.get(),
                    i as i64,
                    s.node.get(),
                    s.node_name,
                    s.action.as_str(),
                    s.role.as_str(),
                    serde_json::to_string(s.after).unwrap_or_else(|_| "[]".into())
                ])
                .map_err(db)?;
        }
        Ok(())
    }

    /// A step's new status; returns how many steps of the cascade are finished.
    pub fn set_step(
        &mut self,
        id: CascadeId,
        index: usize,
        status: StepStatus,
        reason: Option<&str>,
        error: Option<(ErrorCode, &str)>,
    ) -> Result<usize, StoreError> {
        let tx = self.tx;
        let now = now_ms();
        let (started, completed) = match status {
            StepStatus::Running => (Some(now), None),
            StepStatus::Pending => (None, None),
            _ => (None, Some(now)),
        };
        // Hot path (two writes per step): statements are prepared once per connection. A
        // finished step is final: it is never written again.
        let changed = tx
            .prepare_cached(
                "UPDATE cascade_steps SET status = ?1, reason = COALESCE(?2, reason), error_code = ?3, error_message = ?4,
                started_at = COALESCE(?5, started_at), completed_at = COALESCE(?6, completed_at)
         WHERE cascade_id = ?7 AND idx = ?8 AND status NOT IN ('done', 'skipped', 'joined')",
            )
        .map_err(db)?
        .execute(params![
            status.as_str(),
            reason,
            error.map(|e| e.0.as_str()),
            error.map(|e| e.1),
            started,
            completed,
            id.get(),
            index as i64
        ])
        .map_err(db)?;
        // O(1) accounting: the count moves by one when a step reaches a finished status.
        let finishes = changed > 0 && matches!(status, StepStatus::Done | StepStatus::Skipped | StepStatus::Joined);
        let finished: i64 = tx
            .prepare_cached("UPDATE cascades SET current_step = current_step + ?1 WHERE id = ?2 RETURNING current_step")
            .map_err(db)?
            .query_row(params![i64::from(finishes), id.get()], |r| r.get(0))
            .map_err(db)?;
        Ok(finished as usize)
    }

    /// The cascade ends with `status` (steps not begun become `cancelled`); `false` (and
    /// nothing written) when it had already ended.
    pub fn finish_cascade(
        &mut self,
        id: CascadeId,
        status: CascadeStatus,
        failed_step: Option<usize>,
        error: Option<(ErrorCode, &str)>,
    ) -> Result<bool, StoreError> {
        let tx = self.tx;
        // A terminal status never changes: only a cascade still pending or in progress ends.
        let ended = tx
            .execute(
                "UPDATE cascades SET status = ?1, failed_step = ?2, error_code = ?3, error_message = ?4, completed_at = ?5
                 WHERE id = ?6 AND status IN ('pending', 'in_progress')",
                params![
                    status.as_str(),
                    failed_step.map(|s| s as i64),
                    error.map(|e| e.0.as_str()),
                    error.map(|e| e.1),
                    now_ms(),
                    id.get()
                ],
            )
            .map_err(db)?
            > 0;
        if ended {
            tx.execute(
                "UPDATE cascade_steps SET status = 'cancelled', completed_at = ?1 WHERE cascade_id = ?2 AND status = 'pending'",
                params![now_ms(), id.get()],
            )
            .map_err(db)?;
        }
        Ok(ended)
    }

    /// A pending shutdown proposal (replacing an older pending one of the node).
    pub fn insert_proposal(
        &mut self,
        node: NodeId,
        node_name: &str,
        cascade: CascadeId,
        reason: &str,
    ) -> Result<ProposalId, StoreError> {
        let tx = self.tx;
        // A node has at most one pending proposal: a newer one replaces the older.
        tx.execute(
            "UPDATE proposals SET status = 'dismissed', resolved_at = ?1 WHERE node_id = ?2 AND status = 'pending'",
            params![now_ms(), node.get()],
        )
        .map_err(db)?;
        tx.execute(
            "INSERT INTO proposals (node_id, node_name, cascade_id, reason, status, created_at)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
            params![node.get(), node_name, cascade.get(), reason, now_ms()],
        )
        .map_err(db)?;
        Ok(ProposalId::new(tx.last_insert_rowid()))
    }

    /// A proposal confirmed or dismissed; `false` (nothing written) when it was already
    /// decided.
    pub fn resolve_proposal(&mut self, id: ProposalId, status: ProposalStatus) -> Result<bool, StoreError> {
        let tx = self.tx;
        let changed = tx
            .execute(
                "UPDATE proposals SET status = ?1, resolved_at = ?2 WHERE id = ?3 AND status = 'pending'",
                params![status.as_str(), now_ms(), id.get()],
            )
            .map_err(db)?;
        Ok(changed > 0)
    }

    /// The pending proposals of `nodes`.
    pub fn pending_proposals_of(
        &mut self,
        nodes: &std::collections::BTreeSet<NodeId>,
    ) -> Result<Vec<ProposalRecord>, StoreError> {
        let mut stmt = self
            .tx
            .prepare(&format!("SELECT {PROPOSAL_COLUMNS} FROM proposals WHERE status = 'pending' ORDER BY id"))
            .map_err(db)?;
        let rows = stmt.query_map((), proposal_row).map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let p = row.map_err(db)??;
            if nodes.contains(&p.node) {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Marks every unfinished cascade `interrupted` (and its running steps), with a
    /// `cascade-error` event each; returns how many.
    pub fn interrupt_unfinished(&mut self) -> Result<usize, StoreError> {
        let tx = self.tx;
        let mut stmt = tx
            .prepare("SELECT id, node_id, action FROM cascades WHERE status IN ('pending', 'in_progress')")
            .map_err(db)?;
        let rows: Vec<(i64, i64, String)> = stmt
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?;
        for (id, node, action) in &rows {
            let action = Action::parse(action).ok_or_else(|| bad("cascade action", action))?;
            tx.execute(
                "UPDATE cascade_steps SET status = 'interrupted', completed_at = ?1
             WHERE cascade_id = ?2 AND status = 'running'",
                params![now_ms(), id],
            )
            .map_err(db)?;
            let message = "WakeHub stopped while this cascade ran; it can be re-run";
            let id = CascadeId::new(*id);
            if !self.finish_cascade(id, CascadeStatus::Interrupted, None, Some((ErrorCode::Interrupted, message)))? {
                continue;
            }
            self.emit(EventKind::CascadeError {
                cascade: id,
                node: NodeId::new(*node),
                action,
                status: CascadeStatus::Interrupted,
                failed_step: None,
                code: ErrorCode::Interrupted,
                message: message.into(),
            });
        }
        Ok(rows.len())
    }
}

fn append_event(tx: &Transaction<'_>, kind: EventKind) -> Result<Event, StoreError> {
    let at = now_ms();
    tx.prepare_cached("INSERT INTO events (at, kind, cascade_id, node_id, payload) VALUES (?1, ?2, ?3, ?4, ?5)")
        .map_err(db)?
        .execute(params![
            at,
            kind.name(),
            kind.cascade().map(CascadeId::get),
            kind.node().map(NodeId::get),
            encode(&kind).to_string()
        ])
        .map_err(db)?;
    Ok(Event { id: EventId::new(tx.last_insert_rowid()), at_ms: at, kind })
}
