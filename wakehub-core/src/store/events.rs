//! Reading the journal's events: filtered queries, replay checks, retention.

use super::db::OptionalExtension;

use super::journal::bad;
use super::payload::decode;
use super::{Store, StoreError, db};
use crate::events::Event;
use crate::model::{CascadeId, ErrorCode, EventId, NodeId, Refusal};

/// Which journal events [`Store::find_events`] reads: every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events after this one.
    pub after: Option<EventId>,
    /// Only events before this one.
    pub before: Option<EventId>,
    /// Only events about this node.
    pub node: Option<NodeId>,
    /// Only events of these kinds ([`EventKind::NAMES`](crate::events::EventKind::NAMES)).
    pub kinds: Vec<String>,
    /// Only events at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only events before this time.
    pub until_ms: Option<i64>,
    /// Newest first (the default is oldest first).
    pub newest_first: bool,
    /// At most this many.
    pub limit: usize,
}

impl Store {
    /// Events after `after` (all if `None`), oldest first, optionally about one node only.
    pub fn events_after(
        &self,
        after: Option<EventId>,
        node: Option<NodeId>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.find_events(&EventQuery { after, node, limit, ..EventQuery::default() })
    }

    /// The events `query` selects (the journal's filters).
    pub fn find_events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        // The known kinds asked for, one parameter each (a few dozen at most); none known,
        // no event.
        let mut kinds: Vec<&str> =
            crate::events::EventKind::NAMES.iter().copied().filter(|n| query.kinds.iter().any(|k| k == n)).collect();
        kinds.dedup();
        if kinds.is_empty() && !query.kinds.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = "SELECT id, at, kind, payload FROM events WHERE id > ?1 AND id < ?2
                 AND (CAST(?3 AS BIGINT) IS NULL OR node_id = ?3) AND at >= ?4 AND at < ?5"
            .to_owned();
        if !kinds.is_empty() {
            let list: Vec<String> = (0..kinds.len()).map(|i| format!("?{}", i + 7)).collect();
            sql += &format!(" AND kind IN ({})", list.join(", "));
        }
        sql += if query.newest_first { " ORDER BY id DESC LIMIT ?6" } else { " ORDER BY id ASC LIMIT ?6" };
        let (after, before, node) = (
            query.after.map_or(0, EventId::get),
            query.before.map_or(i64::MAX, EventId::get),
            query.node.map(NodeId::get),
        );
        let (since, until, limit) =
            (query.since_ms.unwrap_or(i64::MIN), query.until_ms.unwrap_or(i64::MAX), query.limit as i64);
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&after, &before, &node, &since, &until, &limit];
        values.extend(kinds.iter().map(|k| k as &dyn rusqlite::ToSql));
        self.transaction(|tx| {
            let rows = tx
                .query_map(&sql, &values[..], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
                })
                .map_err(db)?;
            rows.map(|row| {
                let (id, at, kind, payload) = row.map_err(db)?;
                let kind = decode(&kind, &payload).ok_or_else(|| bad("event", &format!("{id}")))?;
                Ok(Event { id: EventId::new(id), at_ms: at, kind })
            })
            .collect()
        })
    }

    /// The id of the first event of a cascade (None if it has none yet).
    pub fn first_event_of_cascade(&self, id: CascadeId) -> Result<Option<EventId>, StoreError> {
        self.transaction(|tx| {
            Ok(tx
                .query_row("SELECT MIN(id) FROM events WHERE cascade_id = ?1", [id.get()], |r| {
                    r.get::<_, Option<i64>>(0)
                })
                .map_err(db)?
                .map(EventId::new))
        })
    }

    /// Deletes the events recorded before `before_ms` (the journal's retention); cascades,
    /// steps and proposals stay. Returns how many were deleted. Ids are never reused.
    pub fn prune_events(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.transaction(|tx| {
            let last: Option<i64> =
                tx.query_row("SELECT MAX(id) FROM events WHERE at < ?1", [before_ms], |r| r.get(0)).map_err(db)?;
            let Some(last) = last else { return Ok(0) };
            let n = tx.execute("DELETE FROM events WHERE id <= ?1", [last]).map_err(db)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('events_pruned_through', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = ?1",
                [last.to_string()],
            )
            .map_err(db)?;
            Ok(n)
        })
    }

    /// The newest event id the retention deleted (a replay must start after it).
    pub fn events_pruned_through(&self) -> Result<Option<EventId>, StoreError> {
        self.transaction(|tx| {
            let v: Option<String> = tx
                .query_row("SELECT value FROM meta WHERE key = 'events_pruned_through'", (), |r| r.get(0))
                .optional()
                .map_err(db)?;
            Ok(v.and_then(|v| v.parse().ok()).map(EventId::new))
        })
    }

    /// Refuses a replay that resumes after `after` when events after it were pruned
    /// (`JOURNAL_PRUNED`): the caller would miss them. (Replaying "everything", with no
    /// `after`, starts at the oldest event kept.)
    pub fn check_replay(&self, after: Option<EventId>) -> Result<(), StoreError> {
        match (after, self.events_pruned_through()?) {
            (Some(a), Some(pruned)) if a < pruned => Err(Refusal::new(
                ErrorCode::JournalPruned,
                format!("events up to {pruned} were pruned by the journal's retention; resume from {pruned} or later"),
            )
            .into()),
            _ => Ok(()),
        }
    }

    /// The id of the newest event (None if the journal is empty).
    pub fn last_event_id(&self) -> Result<Option<EventId>, StoreError> {
        self.transaction(|tx| {
            Ok(tx
                .query_row("SELECT MAX(id) FROM events", (), |r| r.get::<_, Option<i64>>(0))
                .map_err(db)?
                .map(EventId::new))
        })
    }
}
