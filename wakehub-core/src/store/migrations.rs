//! Versioned schema migrations, embedded in the binary. `PRAGMA user_version` holds the
//! version applied; each migration runs in its own transaction. Never edit a released
//! migration: add a new one (a fixture database of every released version is tested).

use rusqlite::Connection;

use super::db::{Backend, Conn, OptionalExtension};
use super::{StoreError, db};

/// The PostgreSQL schema at [`SCHEMA_VERSION`]: a PostgreSQL database starts there (there
/// is no older one to migrate); a later version adds its migration to both engines.
#[cfg(feature = "postgres")]
const POSTGRES_SCHEMA: &str = include_str!("postgres.sql");

/// The migrations, in order; version N is `MIGRATIONS[N - 1]`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: topology and credentials.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;

    CREATE TABLE credentials (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        nonce      BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE nodes (
        id                    INTEGER PRIMARY KEY AUTOINCREMENT,
        name                  TEXT NOT NULL UNIQUE,
        kind                  TEXT NOT NULL,
        parent_id             INTEGER REFERENCES nodes(id) ON DELETE RESTRICT,
        state                 TEXT NOT NULL DEFAULT 'configured' CHECK (state IN ('configured', 'discovered')),
        pinned                INTEGER NOT NULL DEFAULT 0,
        confirm_auto_shutdown INTEGER NOT NULL,
        start_timeout_ms      INTEGER NOT NULL,
        stop_timeout_ms       INTEGER NOT NULL,
        readiness             TEXT,
        offers                TEXT NOT NULL DEFAULT '[]',
        connector_type        TEXT NOT NULL,
        connector_settings    TEXT NOT NULL DEFAULT '{}',
        created_at            INTEGER NOT NULL,
        updated_at            INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX nodes_parent ON nodes(parent_id);

    CREATE TABLE dependencies (
        from_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        to_id   INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        PRIMARY KEY (from_id, to_id),
        CHECK (from_id <> to_id)
    ) STRICT;
    CREATE INDEX dependencies_to ON dependencies(to_id);
    "#,
    // 2: the cascade journal: cascades, their steps, shutdown proposals, events.
    r#"
    CREATE TABLE cascades (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        node_id       INTEGER NOT NULL,
        node_name     TEXT NOT NULL,
        action        TEXT NOT NULL CHECK (action IN ('start', 'stop')),
        status        TEXT NOT NULL CHECK (status IN
                        ('pending', 'in_progress', 'completed', 'failed', 'cancelled', 'interrupted')),
        current_step  INTEGER NOT NULL DEFAULT 0,
        total_steps   INTEGER NOT NULL DEFAULT 0,
        failed_step   INTEGER,
        error_code    TEXT,
        error_message TEXT,
        rerun_of      INTEGER REFERENCES cascades(id),
        created_at    INTEGER NOT NULL,
        started_at    INTEGER,
        completed_at  INTEGER
    ) STRICT;
    CREATE INDEX cascades_node ON cascades(node_id, id);
    CREATE INDEX cascades_status ON cascades(status, id);

    CREATE TABLE cascade_steps (
        cascade_id    INTEGER NOT NULL REFERENCES cascades(id) ON DELETE CASCADE,
        idx           INTEGER NOT NULL,
        node_id       INTEGER NOT NULL,
        node_name     TEXT NOT NULL,
        action        TEXT NOT NULL,
        role          TEXT NOT NULL,
        after         TEXT NOT NULL DEFAULT '[]',
        status        TEXT NOT NULL,
        reason        TEXT,
        error_code    TEXT,
        error_message TEXT,
        started_at    INTEGER,
        completed_at  INTEGER,
        PRIMARY KEY (cascade_id, idx)
    ) STRICT;
    CREATE INDEX cascade_steps_node ON cascade_steps(node_id, action, status);

    CREATE TABLE proposals (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        node_id     INTEGER NOT NULL,
        node_name   TEXT NOT NULL,
        cascade_id  INTEGER REFERENCES cascades(id),
        reason      TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'dismissed')),
        created_at  INTEGER NOT NULL,
        resolved_at INTEGER
    ) STRICT;

    CREATE TABLE events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        at         INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        cascade_id INTEGER,
        node_id    INTEGER,
        payload    TEXT NOT NULL
    ) STRICT;
    CREATE INDEX events_node ON events(node_id, id);
    CREATE INDEX events_cascade ON events(cascade_id, id);
    "#,
    // 3: API tokens (only a SHA-256 of each token is stored).
    r#"
    CREATE TABLE api_tokens (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        name       TEXT NOT NULL,
        hash       BLOB NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) STRICT;
    CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens(name) WHERE revoked_at IS NULL;
    "#,
    // 4: SSH host keys learned on first contact (pinned from then on).
    r#"
    CREATE TABLE host_keys (
        node_id    INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        endpoint   TEXT NOT NULL,
        key        TEXT NOT NULL,
        learned_at INTEGER NOT NULL,
        PRIMARY KEY (node_id, endpoint)
    ) STRICT;
    "#,
    // 5: discovery: what a host's platform listed, per guest node.
    r#"
    CREATE TABLE discoveries (
        node_id    INTEGER PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
        host_id    INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        source     TEXT NOT NULL,
        key        TEXT NOT NULL,
        details    TEXT NOT NULL,
        status     TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        gone_at    INTEGER,
        UNIQUE (host_id, source, key)
    ) STRICT;
    "#,
    // 6: a credential is bound to the node and key it was given for, and to the endpoint
    // (host, URLs, ports, pins) its node had then; rows of older versions are bound at open.
    r#"
    ALTER TABLE credentials ADD COLUMN node_id INTEGER;
    ALTER TABLE credentials ADD COLUMN key TEXT;
    ALTER TABLE credentials ADD COLUMN endpoint TEXT;
    "#,
    // 7: node tags; tokens with a role, a scope and an expiry; who requested a cascade.
    r#"
    ALTER TABLE nodes ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin' CHECK (role IN ('viewer', 'operator', 'admin'));
    ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT '*';
    ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
    ALTER TABLE cascades ADD COLUMN requested_by TEXT;
    "#,
    // 8: end events say start or stop: older ones get their cascade's action.
    r#"
    UPDATE events SET payload = json_set(payload, '$.action', (SELECT action FROM cascades WHERE cascades.id = events.cascade_id))
    WHERE kind IN ('cascade-complete', 'cascade-error')
      AND EXISTS (SELECT 1 FROM cascades WHERE cascades.id = events.cascade_id);
    "#,
    // 9: a host a stop leaves empty may opt in to being stopped.
    r#"
    ALTER TABLE nodes ADD COLUMN stop_when_empty INTEGER NOT NULL DEFAULT 0;
    "#,
    // 10: people: users with an argon2id password hash, a role and a scope; their sessions
    // (only a token's SHA-256 is stored).
    r#"
    CREATE TABLE users (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        name          TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role          TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        scope         TEXT NOT NULL DEFAULT '*',
        created_at    INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE sessions (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        hash       BLOB NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) STRICT;
    "#,
    // 11: the service's web address, opened from the dashboard.
    r#"
    ALTER TABLE nodes ADD COLUMN url TEXT;
    "#,
    // 12: machines: every refresh attempt; the snapshots of those that answered (JSON,
    // never edited: the source of truth); the messages found in them, merged across
    // refreshes and acknowledged by people; and the machine-state cache derived from the
    // first two (rebuilt from them at will).
    r#"
    CREATE TABLE machine_refreshes (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        node_id       INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        started_at    INTEGER NOT NULL,
        finished_at   INTEGER NOT NULL,
        outcome       TEXT NOT NULL CHECK (outcome IN ('ok', 'asleep', 'failed')),
        error_code    TEXT,
        error_message TEXT,
        actor         TEXT NOT NULL
    ) STRICT;
    CREATE INDEX machine_refreshes_node ON machine_refreshes (node_id, id);
    CREATE TABLE machine_snapshots (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        refresh_id INTEGER NOT NULL UNIQUE REFERENCES machine_refreshes(id) ON DELETE CASCADE,
        node_id    INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        taken_at   INTEGER NOT NULL,
        schema     INTEGER NOT NULL,
        payload    TEXT NOT NULL
    ) STRICT;
    CREATE INDEX machine_snapshots_node ON machine_snapshots (node_id, id);
    CREATE TABLE machine_messages (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        node_id         INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        source          TEXT NOT NULL,
        category        TEXT NOT NULL,
        severity        TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'error')),
        subject         TEXT NOT NULL DEFAULT '',
        text            TEXT NOT NULL,
        first_seen      INTEGER NOT NULL,
        last_seen       INTEGER NOT NULL,
        times_seen      INTEGER NOT NULL,
        acknowledged_at INTEGER,
        acknowledged_by TEXT,
        UNIQUE (node_id, source, subject, text)
    ) STRICT;
    CREATE TABLE machine_state (
        node_id     INTEGER PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
        payload     TEXT NOT NULL,
        updated_at  INTEGER NOT NULL
    ) STRICT;
    -- Actions on machines: the durable queue (one running per machine, claimed with a lease
    -- renewed by a heartbeat) and the record of each run.
    CREATE TABLE machine_executions (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        node_id       INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        action        TEXT NOT NULL,
        mode          TEXT NOT NULL CHECK (mode IN ('manual', 'scheduled', 'maintenance')),
        actor         TEXT NOT NULL,
        status        TEXT NOT NULL
                      CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'interrupted', 'cancelled')),
        queued_at     INTEGER NOT NULL,
        started_at    INTEGER,
        finished_at   INTEGER,
        lease_until   INTEGER,
        exit_code     INTEGER,
        error_kind    TEXT,
        error_message TEXT,
        result        TEXT,
        report        TEXT
    ) STRICT;
    CREATE INDEX machine_executions_node ON machine_executions (node_id, status, id);
    CREATE UNIQUE INDEX machine_executions_one_running ON machine_executions (node_id) WHERE status = 'running';
    -- Raw logs (redacted), kept by retention policy and swept when they expire.
    CREATE TABLE machine_artifacts (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        node_id       INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        execution_id  INTEGER REFERENCES machine_executions(id) ON DELETE CASCADE,
        kind          TEXT NOT NULL,
        bytes         INTEGER NOT NULL,
        sha256        TEXT NOT NULL,
        content       BLOB,
        redacted      INTEGER NOT NULL,
        retention     TEXT NOT NULL CHECK (retention IN ('default', 'failed', 'pinned', 'short')),
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER,
        deleted_at    INTEGER,
        delete_reason TEXT
    ) STRICT;
    "#,
    // 13: maintenance windows (machines by name or tag, an optional cron schedule) and their
    // runs: the plan followed, each step taken, the report.
    r#"
    CREATE TABLE maintenance_windows (
        name          TEXT PRIMARY KEY,
        nodes         TEXT NOT NULL,
        tags          TEXT NOT NULL,
        schedule      TEXT,
        timezone      TEXT,
        enabled       INTEGER NOT NULL,
        updated_by    TEXT NOT NULL,
        updated_at    INTEGER NOT NULL,
        last_fired_at INTEGER
    ) STRICT;
    CREATE TABLE maintenance_runs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        window_name TEXT,
        mode        TEXT NOT NULL CHECK (mode IN ('manual', 'scheduled')),
        actor       TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'attention', 'interrupted')),
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        plan        TEXT NOT NULL,
        report      TEXT
    ) STRICT;
    CREATE INDEX maintenance_runs_window ON maintenance_runs (window_name, id);
    CREATE TABLE maintenance_steps (
        run_id  INTEGER NOT NULL REFERENCES maintenance_runs(id) ON DELETE CASCADE,
        seq     INTEGER NOT NULL,
        at      INTEGER NOT NULL,
        phase   TEXT NOT NULL,
        node    TEXT,
        status  TEXT NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) STRICT;
    "#,
    // 14: stacks — immutable numbered versions of a compose file (secret environment values
    // sealed apart, the image ids each first ran with), the version a stack is on, and the
    // durable queue of its commands (one running per stack, leased, with its log).
    r#"
    CREATE TABLE stack_versions (
        stack_id   INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        number     INTEGER NOT NULL,
        digest     TEXT NOT NULL,
        model      TEXT NOT NULL,
        nonce      BLOB,
        secrets    BLOB,
        images     TEXT,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        note       TEXT,
        PRIMARY KEY (stack_id, number)
    ) STRICT;
    CREATE TRIGGER stack_versions_immutable
        BEFORE UPDATE OF stack_id, number, digest, model, nonce, secrets, created_by, created_at, note
        ON stack_versions
    BEGIN
        SELECT RAISE(ABORT, 'a stack version never changes');
    END;
    CREATE TRIGGER stack_versions_images_once
        BEFORE UPDATE OF images ON stack_versions WHEN OLD.images IS NOT NULL
    BEGIN
        SELECT RAISE(ABORT, 'a stack version records its images once');
    END;
    CREATE TABLE stack_state (
        stack_id   INTEGER PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
        current    INTEGER,
        applied_at INTEGER
    ) STRICT;
    CREATE TABLE stack_commands (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        stack_id      INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        kind          TEXT NOT NULL CHECK (kind IN ('apply', 'rollback', 'stop', 'remove', 'refresh')),
        version       INTEGER,
        status        TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
        actor         TEXT NOT NULL,
        reason        TEXT,
        queued_at     INTEGER NOT NULL,
        started_at    INTEGER,
        finished_at   INTEGER,
        lease_until   INTEGER,
        error_code    TEXT,
        error_message TEXT,
        result        TEXT,
        log           TEXT NOT NULL DEFAULT ''
    ) STRICT;
    CREATE UNIQUE INDEX stack_commands_one_running ON stack_commands (stack_id) WHERE status = 'running';
    CREATE INDEX stack_commands_by_stack ON stack_commands (stack_id, id);
    "#,
    // 15: power schedules — start, stop or keep on nodes (by name or tag) at cron times read
    // in a time zone; when each last fired and what came of it.
    r#"
    CREATE TABLE power_schedules (
        name          TEXT PRIMARY KEY,
        action        TEXT NOT NULL CHECK (action IN ('start', 'stop', 'keep-on')),
        nodes         TEXT NOT NULL,
        tags          TEXT NOT NULL,
        schedule      TEXT NOT NULL,
        timezone      TEXT,
        keep_for_secs INTEGER,
        enabled       INTEGER NOT NULL,
        updated_by    TEXT NOT NULL,
        updated_at    INTEGER NOT NULL,
        last_fired_at INTEGER,
        last_outcome  TEXT
    ) STRICT;
    "#,
    // 16: inactivity rules and the proxy — a node's `idle` table (when it counts as idle and
    // is stopped) and `proxy` table (the host names, path and TCP ports WakeHub fronts it
    // on), each JSON in the file's form.
    r#"
    ALTER TABLE nodes ADD COLUMN idle TEXT;
    ALTER TABLE nodes ADD COLUMN proxy TEXT;
    "#,
    // 17: notifications — rules (events, nodes or tags, a target; its secret sealed apart)
    // and every delivery with its attempts, last error and outcome; and a node's power draw.
    r#"
    CREATE TABLE notification_rules (
        name         TEXT PRIMARY KEY,
        events       TEXT NOT NULL,
        nodes        TEXT NOT NULL,
        tags         TEXT NOT NULL,
        target       TEXT NOT NULL,
        enabled      INTEGER NOT NULL,
        secret_nonce BLOB,
        secret       BLOB,
        updated_by   TEXT NOT NULL,
        updated_at   INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE notification_deliveries (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        rule       TEXT NOT NULL,
        event_id   INTEGER,
        event      TEXT NOT NULL,
        node       TEXT,
        title      TEXT NOT NULL,
        body       TEXT NOT NULL,
        status     TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
        attempts   INTEGER NOT NULL,
        next_at    INTEGER NOT NULL,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        sent_at    INTEGER
    ) STRICT;
    CREATE INDEX notification_deliveries_due ON notification_deliveries (status, next_at);
    -- A node's power draw (`watts`, JSON in the file's form), for the energy report.
    ALTER TABLE nodes ADD COLUMN power TEXT;
    "#,
    // 18: what meters read — the watts a meter node's connector measured, kept when they
    // change and at least every few minutes (see `energy`), for the energy report.
    r#"
    CREATE TABLE power_samples (
        node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        at_ms   INTEGER NOT NULL,
        watts   REAL NOT NULL,
        PRIMARY KEY (node_id, at_ms)
    ) STRICT, WITHOUT ROWID;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`]. Refuses a database from a newer WakeHub.
pub(super) fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", (), |r| r.get(0)).map_err(|e| db(e.into()))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::TooNew { found: current, supported: SCHEMA_VERSION });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        let sqlite = |e: rusqlite::Error| db(e.into());
        let tx = conn.transaction().map_err(sqlite)?;
        tx.execute_batch(sql).map_err(sqlite)?;
        tx.pragma_update(None, "user_version", version).map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(current)
}

/// The schema version of the database `conn` is open on.
pub(super) fn version(conn: &Conn) -> Result<i64, StoreError> {
    match conn.backend() {
        Backend::Sqlite => conn.query_row("PRAGMA user_version", (), |r| r.get(0)).map_err(db),
        Backend::Postgres => conn
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", (), |r| r.get::<_, String>(0))
            .map_err(db)?
            .parse()
            .map_err(|_| StoreError::Corrupt { message: "the schema version is not a number".into() }),
    }
}

/// Brings a PostgreSQL database to [`SCHEMA_VERSION`], creating its schema in an empty one.
/// Instances starting together take turns (a transaction-scoped advisory lock).
#[cfg(feature = "postgres")]
pub(super) fn migrate_postgres(conn: &Conn) -> Result<i64, StoreError> {
    conn.execute_batch("BEGIN").map_err(db)?;
    let migrated = (|| {
        conn.execute_batch("SELECT pg_advisory_xact_lock(7157061375468651817)").map_err(db)?;
        let exists: bool = conn
            .query_row("SELECT to_regclass('meta') IS NOT NULL", (), |r| r.get(0))
            .optional()
            .map_err(db)?
            .unwrap_or(false);
        if !exists {
            conn.execute_batch(POSTGRES_SCHEMA).map_err(db)?;
            conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?1)", [SCHEMA_VERSION.to_string()])
                .map_err(db)?;
            tracing::info!(version = SCHEMA_VERSION, "created the PostgreSQL schema");
            return Ok(0);
        }
        let current = version(conn)?;
        if current > SCHEMA_VERSION {
            return Err(StoreError::TooNew { found: current, supported: SCHEMA_VERSION });
        }
        Ok(current)
    })();
    match migrated {
        Ok(v) => conn.execute_batch("COMMIT").map_err(db).map(|_| v),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
