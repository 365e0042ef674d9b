//! What instances sharing one PostgreSQL database tell each other (see
//! [`Engine::follower`](crate::engine::Engine::follower)): the leader's address, what it
//! last observed, and notices — `wakehub_events` when the journal grew, `wakehub_changes`
//! when the topology (`topology`) or the tokens, users and sessions (`auth`) changed — so
//! the others read the journal and drop their caches. A notice only wakes a reader early:
//! followers also poll, so a notice lost with a connection delays, never loses.
//! On SQLite (one server per file) all of this is a no-op.

use std::collections::HashMap;

use super::db::{OptionalExtension, Transaction};
use super::{Backend, Store, StoreError, db};
use crate::connector::PowerState;
use crate::model::NodeId;

/// The channel notified when the journal grew.
pub const EVENTS_CHANNEL: &str = "wakehub_events";
/// The channel notified when the topology or the credentials of callers changed.
pub const CHANGES_CHANNEL: &str = "wakehub_changes";

/// The lease holder, as it advertised itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Leader {
    /// The instance holding the lease.
    pub instance: String,
    /// Where its API answers (`http://host:port`), as it advertised.
    pub url: String,
}

/// Tells the other instances, once `tx` commits, that `what` changed (PostgreSQL only).
pub(super) fn notify(tx: &Transaction<'_>, channel: &str, what: &str) -> Result<(), StoreError> {
    if tx.backend() == Backend::Postgres {
        // Both are identifiers of ours, never input.
        tx.execute_batch(&format!("NOTIFY {channel}, '{what}'")).map_err(db)?;
    }
    Ok(())
}

impl Store {
    /// Whether the store is a database several instances may share (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.conn().backend() == Backend::Postgres
    }

    /// Records where the lease holder `instance` answers (after claiming the lease).
    pub fn advertise(&self, instance: &str, url: &str) -> Result<(), StoreError> {
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('instance_url', ?1) ON CONFLICT (key) DO UPDATE SET value = ?1",
                [format!("{instance} {url}")],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    /// The instance holding the lease now and where it answers, if one does and advertised.
    pub fn leader(&self) -> Result<Option<Leader>, StoreError> {
        self.transaction(|tx| {
            let read = |key: &str| -> Result<Option<String>, StoreError> {
                tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(db)
            };
            let (Some(lease), Some(advertised)) = (read("instance_lease")?, read("instance_url")?) else {
                return Ok(None);
            };
            let Some((holder, until)) = lease.rsplit_once(' ') else { return Ok(None) };
            let Some((instance, url)) = advertised.split_once(' ') else { return Ok(None) };
            let live = until.parse::<i64>().is_ok_and(|u| u > super::now_ms());
            Ok((live && holder == instance).then(|| Leader { instance: instance.to_owned(), url: url.to_owned() }))
        })
    }

    /// The state last journaled of each node (its newest `status-change`), with when.
    pub fn last_states(&self) -> Result<HashMap<NodeId, (PowerState, i64)>, StoreError> {
        let rows: Vec<(i64, i64, String, String)> = self.transaction(|tx| {
            tx.query_map(
                "SELECT id, at, kind, payload FROM events WHERE id IN
                   (SELECT MAX(id) FROM events WHERE kind = 'status-change' GROUP BY node_id)",
                (),
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)
        })?;
        let mut last = HashMap::new();
        for (id, at, kind, payload) in rows {
            match super::payload::decode(&kind, &payload) {
                Some(crate::events::EventKind::StatusChange { node, state, .. }) => {
                    last.insert(node, (state, at));
                }
                _ => return Err(super::journal::bad("event", &id.to_string())),
            }
        }
        Ok(last)
    }

    /// Records that every node was just observed (the leader's monitor, on a shared database).
    pub fn set_observed_round(&self, at_ms: i64) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO meta (key, value) VALUES ('observed_round', ?1) ON CONFLICT (key) DO UPDATE SET value = ?1",
                [at_ms.to_string()],
            )
            .map_err(db)?;
        Ok(())
    }

    /// Keeps `value` (JSON) under `key` for the instances that follow: what the leader
    /// holds only in memory (its last inactivity check, its meters' last readings).
    pub fn set_shared_state(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
                [key, value],
            )
            .map_err(db)?;
        Ok(())
    }

    /// What the leader kept under `key` with [`set_shared_state`](Self::set_shared_state).
    pub fn shared_state(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn().query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(db)
    }

    /// When the leader last observed every node (ms since the epoch).
    pub fn observed_round(&self) -> Result<Option<i64>, StoreError> {
        let v: Option<String> = self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = 'observed_round'", (), |r| r.get(0))
            .optional()
            .map_err(db)?;
        Ok(v.and_then(|v| v.parse().ok()))
    }

    /// Drops what a notice on [`CHANGES_CHANNEL`] says is out of date.
    pub fn changed_elsewhere(&self, what: &str) {
        match what {
            "topology" => self.invalidate_topology(),
            "auth" => self.inner.auth.clear(),
            _ => {}
        }
    }

    /// A connection of its own that listens to the notices (`None` on SQLite).
    pub fn listen(&self) -> Result<Option<Listener>, StoreError> {
        Listener::open(self)
    }
}

/// A connection listening to the store's notices ([`Store::listen`]).
pub struct Listener {
    #[cfg(feature = "postgres")]
    conn: std::sync::Mutex<super::pg::PgConn>,
    #[cfg(feature = "postgres")]
    notices: tokio::sync::broadcast::Receiver<(String, String)>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

#[cfg(feature = "postgres")]
impl Listener {
    fn open(store: &Store) -> Result<Option<Listener>, StoreError> {
        let url = match &*store.conn() {
            super::db::Conn::Postgres(c) => c.url().to_owned(),
            super::db::Conn::Sqlite(_) => return Ok(None),
        };
        let conn = super::pg::PgConn::connect(&url).map_err(db)?;
        let notices = conn.notices();
        let listener = Listener { conn: std::sync::Mutex::new(conn), notices };
        listener.renew()?;
        Ok(Some(listener))
    }

    /// Listens again: a connection that broke is opened again (a server that restarted
    /// forgot who listened). Blocking.
    pub fn renew(&self) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.batch(&format!("LISTEN {EVENTS_CHANNEL}; LISTEN {CHANGES_CHANNEL}")).map_err(db)
    }

    /// The next notice: `(channel, payload)`. Notices missed while behind are skipped (a
    /// reader polls anyway).
    pub async fn next(&mut self) -> Option<(String, String)> {
        loop {
            match self.notices.recv().await {
                Ok(n) => return Some(n),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(not(feature = "postgres"))]
impl Listener {
    fn open(_: &Store) -> Result<Option<Listener>, StoreError> {
        Ok(None)
    }

    /// Listens again (never: there is no listener without PostgreSQL).
    pub fn renew(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The next notice (never).
    pub async fn next(&mut self) -> Option<(String, String)> {
        None
    }
}
