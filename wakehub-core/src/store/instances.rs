//! Several servers and one database: the active instance's lease, and copying a lab from
//! one store into another (`wakehub migrate-store`, SQLite into PostgreSQL).
//!
//! **The lease.** One instance at a time runs a database's engine (its cascades, commands,
//! maintenance and schedules); others stand by. The active one holds a lease in `meta`
//! (`instance_lease`: its id and the time it runs out) and renews it well before it runs
//! out; a standby takes it only once it has run out, so an instance killed outright is
//! replaced within the lease time, and an active instance that could not renew (cut off
//! from the database) stops before a standby may start.

use rusqlite::types::Value;

use super::db::{Conn, OptionalExtension, Transaction};
use super::{Store, StoreError, db, now_ms};

/// The tables of a lab, parents before children (the order they are created in).
const TABLES: &[&str] = &[
    "meta",
    "credentials",
    "nodes",
    "dependencies",
    "cascades",
    "cascade_steps",
    "proposals",
    "events",
    "api_tokens",
    "host_keys",
    "discoveries",
    "users",
    "sessions",
    "machine_refreshes",
    "machine_snapshots",
    "machine_messages",
    "machine_state",
    "machine_executions",
    "machine_artifacts",
    "maintenance_windows",
    "maintenance_runs",
    "maintenance_steps",
    "stack_versions",
    "stack_state",
    "stack_commands",
    "power_schedules",
    "notification_rules",
    "notification_deliveries",
    "power_samples",
];

/// What holds the lease now: `(instance, runs out at, in ms)`.
fn holder(tx: &Transaction<'_>) -> Result<Option<(String, i64)>, StoreError> {
    let value: Option<String> =
        tx.query_row("SELECT value FROM meta WHERE key = 'instance_lease'", (), |r| r.get(0)).optional().map_err(db)?;
    Ok(value.and_then(|v| {
        let (who, until) = v.rsplit_once(' ')?;
        Some((who.to_owned(), until.parse().ok()?))
    }))
}

impl Store {
    /// Takes or renews the lease for `instance` until `ttl_ms` from now, if it is free (run
    /// out, or `instance`'s own). Otherwise, who holds it and until when.
    pub fn claim_lease(&self, instance: &str, ttl_ms: i64) -> Result<Result<(), (String, i64)>, StoreError> {
        self.transaction(|tx| {
            let now = now_ms();
            if tx.backend() == super::Backend::Postgres {
                // Claims are serialized: two standbys never both see it free.
                tx.execute_batch("LOCK TABLE meta IN SHARE ROW EXCLUSIVE MODE").map_err(db)?;
            }
            if let Some((who, until)) = holder(tx)?
                && who != instance
                && until > now
            {
                return Ok(Err((who, until)));
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('instance_lease', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = ?1",
                [format!("{instance} {}", now + ttl_ms)],
            )
            .map_err(db)?;
            Ok(Ok(()))
        })
    }

    /// Gives the lease up (a clean stop: a standby may take over at once).
    pub fn release_lease(&self, instance: &str) -> Result<(), StoreError> {
        self.transaction(|tx| {
            if holder(tx)?.is_some_and(|(who, _)| who == instance) {
                tx.execute("DELETE FROM meta WHERE key = 'instance_lease'", ()).map_err(db)?;
            }
            Ok(())
        })
    }

    /// Copies everything in this store into `target`, which must be empty (no node, no
    /// event): ids, sealed credentials (the same master key opens them), the journal. Each
    /// table's rows, then, on PostgreSQL, its id sequence moved past them. All or nothing.
    /// Returns how many rows were copied.
    pub fn copy_into(&self, target: &Store) -> Result<u64, StoreError> {
        let source = self.conn();
        let mut to = target.conn();
        let tx = to.transaction().map_err(db)?;
        let used: i64 = tx
            .query_row("SELECT (SELECT COUNT(*) FROM nodes) + (SELECT COUNT(*) FROM events)", (), |r| r.get(0))
            .map_err(db)?;
        if used > 0 {
            return Err(crate::model::Refusal::conflict("the target database already holds a lab").into());
        }
        // The target's own key check (the same key, or the open would have failed) stays.
        tx.execute("DELETE FROM meta WHERE key <> 'key_check' AND key <> 'schema_version'", ()).map_err(db)?;
        // Every table of the source is one this copies (a table added by a later migration
        // and not listed here is refused, not left behind).
        if source.backend() == super::Backend::Sqlite {
            let tables: Vec<String> = source
                .query_map(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                    (),
                    |r| r.get(0),
                )
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?;
            if let Some(t) = tables.iter().find(|t| !TABLES.contains(&t.as_str())) {
                return Err(StoreError::Corrupt { message: format!("table `{t}` is not one a copy knows") });
            }
        }
        let mut copied = 0;
        for table in TABLES {
            let columns = columns(&source, table)?;
            let list = columns.join(", ");
            let rows: Vec<Vec<Value>> = source
                .query_map(&format!("SELECT {list} FROM {table}"), (), |r| {
                    (0..columns.len()).map(|i| r.get::<_, Value>(i)).collect()
                })
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?;
            let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
            let insert = format!("INSERT INTO {table} ({list}) VALUES ({}) ON CONFLICT DO NOTHING", marks.join(", "));
            for row in &rows {
                let values: Vec<&dyn rusqlite::ToSql> = row.iter().map(|v| v as &dyn rusqlite::ToSql).collect();
                copied += tx.execute(&insert, &values[..]).map_err(db)? as u64;
            }
            if tx.backend() == super::Backend::Postgres && columns.iter().any(|c| c == "id") {
                tx.execute_batch(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
                ))
                .map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        drop(to);
        target.invalidate_topology();
        Ok(copied)
    }
}

/// The columns of `table` on the database `conn` is open on.
fn columns(conn: &Conn, table: &str) -> Result<Vec<String>, StoreError> {
    let sql = match conn.backend() {
        super::Backend::Sqlite => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        super::Backend::Postgres => format!(
            "SELECT column_name FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
        ),
    };
    conn.query_map(&sql, (), |r| r.get(0)).map_err(db)?.collect::<Result<_, _>>().map_err(db)
}
