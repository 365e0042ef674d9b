//! The SQLite store (rusqlite, bundled SQLite): migrations, the topology repository and the
//! encrypted credentials.
//!
//! One connection behind a mutex, WAL journal, foreign keys on. Every multi-row change runs
//! in one transaction. Methods are synchronous; async callers use [`Store::run`], which moves
//! the work to tokio's blocking pool so the runtime is never blocked.

pub(crate) mod db;
mod discovery;
mod events;
mod executions;
mod instances;
mod journal;
mod machines;
mod maintenance;
mod migrations;
mod nodes;
mod notifications;
mod passwords;
mod payload;
#[cfg(feature = "postgres")]
mod pg;
mod power;
mod schedules;
mod shared;
mod stacks;
mod tokens;
mod users;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use db::{Conn, OptionalExtension};
use rusqlite::params;

pub use db::Backend;
pub use discovery::{Disappeared, DiscoveredNode, DiscoveryRecord, DiscoveryReport};
pub use events::EventQuery;
pub use executions::{Artifact, ArtifactRecord, ExecutionRecord, ExecutionStatus, Finished, retention_ms};
pub use journal::{CascadeFilter, CascadeRecord, JournalTx, NewStep, ProposalRecord, ProposalStatus, StepRecord};
pub use machines::{
    MachineState, MessageRecord, RecordedRefresh, RefreshOutcome, RefreshRecord, RefreshResult, SnapshotRecord,
    TimelineEntry,
};
pub use maintenance::{MaintenanceRunRecord, MaintenanceStep, MaintenanceWindow, RunStatus, check_window_name};
pub use migrations::SCHEMA_VERSION;
pub use nodes::ImportSummary;
pub use notifications::{Delivery, DeliveryStatus, NotificationRule, NotifyEvent, SecretChange, SmtpSecurity, Target};
pub use power::{SAMPLE_HEARTBEAT, SAMPLE_RETENTION, SAMPLE_VALID, worth_keeping};
pub use schedules::{PowerSchedule, ScheduleAction};
pub use shared::{CHANGES_CHANNEL, EVENTS_CHANNEL, Leader, Listener};
pub use stacks::{
    SECRET_PLACEHOLDER, StackCommand, StackCommandKind, StackCommandStatus, StackOutcome, StackVersion, is_secret_env,
};
pub use tokens::{AUTH_CACHE_TTL, Principal, TokenRecord};
pub use users::{MIN_PASSWORD_CHARS, UserRecord};

use crate::model::{CredentialId, ErrorCode, ModelError, NodeId, Refusal, SecretRef};
use crate::secrets::{MasterKey, Sealed, SecretError, SecretString};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error: {message}")]
    Database {
        /// SQLite's message.
        message: String,
    },
    /// The database was written by a newer WakeHub.
    #[error("database schema version {found} is newer than this WakeHub supports ({supported})")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The database holds something this build cannot read.
    #[error("database content is invalid: {message}")]
    Corrupt {
        /// What is wrong.
        message: String,
    },
    /// The topology refused the change.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A secret could not be sealed, opened or read.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The master key does not open this database's credentials.
    #[error("the master key does not match this database (was it created with another key?)")]
    WrongMasterKey,
    /// The thing asked for does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was asked for.
        what: String,
    },
    /// The change breaks a rule: it conflicts with what exists, or is not valid.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl StoreError {
    /// The stable machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::Model(e) => e.code(),
            StoreError::TooNew { .. } => ErrorCode::StoreTooNew,
            StoreError::Corrupt { .. } | StoreError::Database { .. } => ErrorCode::Internal,
            StoreError::Secret(SecretError::Unavailable { .. }) => ErrorCode::SecretUnavailable,
            StoreError::Secret(_) | StoreError::WrongMasterKey => ErrorCode::Secret,
            StoreError::NotFound { .. } => ErrorCode::NotFound,
            StoreError::Refused(r) => r.code,
        }
    }
}

/// SQLite's error as a [`StoreError`]. A function, not a `From` impl: rusqlite's types stay
/// out of the store's public API.
pub(crate) fn db(e: db::Error) -> StoreError {
    StoreError::Database { message: e.to_string() }
}

struct Inner {
    conn: Mutex<Conn>,
    key: MasterKey,
    /// The database's directory (where the master key file lives by default): no `file:`
    /// secret may point into it.
    dir: Option<std::path::PathBuf>,
    /// The last loaded topology and the generation it was loaded at.
    topology: Mutex<(u64, Option<Arc<crate::model::Topology>>)>,
    /// Who the tokens and sessions recently checked stand for.
    auth: tokens::AuthCache,
}

/// A stored credential: nonce, ciphertext, and the node and key it is bound to.
type SealedRow = (Vec<u8>, Vec<u8>, Option<i64>, Option<String>);

/// A handle to the store. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

const KEY_CHECK_AAD: &[u8] = b"wakehub:key-check";

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    ///
    /// **The key.** Credentials are sealed with `key`, and the first open records a sealed
    /// marker: every later open must pass the *same* key, or it is refused at once with
    /// [`StoreError::WrongMasterKey`] (nothing is read or changed). Keep it with
    /// [`MasterKey::from_env_or_file`] (the `WAKEHUB_MASTER_KEY` variable, else a 0600 key
    /// file created on first use); a key from [`MasterKey::generate`] suits a database
    /// that lives as long as the process. A database written by a newer WakeHub is refused
    /// with [`StoreError::TooNew`].
    pub fn open(path: &Path, key: MasterKey) -> Result<Self, StoreError> {
        let conn = rusqlite::Connection::open(path).map_err(|e| db(e.into()))?;
        let dir = path.parent().map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d });
        Self::init(conn, key, dir.and_then(|d| d.canonicalize().ok()))
    }

    /// A private in-memory database (tests, `wakehub plan`).
    pub fn open_in_memory(key: MasterKey) -> Result<Self, StoreError> {
        Self::init(rusqlite::Connection::open_in_memory().map_err(|e| db(e.into()))?, key, None)
    }

    fn init(
        mut conn: rusqlite::Connection,
        key: MasterKey,
        dir: Option<std::path::PathBuf>,
    ) -> Result<Self, StoreError> {
        let sqlite = |e: rusqlite::Error| db(e.into());
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sqlite)?;
        conn.pragma_update(None, "foreign_keys", true).map_err(sqlite)?;
        // FULL: a committed transaction survives a power loss, so an event id that was
        // published (after its commit) is never handed out again.
        conn.pragma_update(None, "synchronous", "FULL").map_err(sqlite)?;
        // The journal writer commits groups of writes, each in a savepoint: their statement
        // journals stay in memory.
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(sqlite)?;
        conn.set_prepared_statement_cache_capacity(256);
        migrations::migrate(&mut conn)?;
        Self::with_conn(Conn::Sqlite(conn), key, dir)
    }

    /// Opens the PostgreSQL database at `url` (`postgres://user:password@host:port/db`),
    /// creating or migrating its schema. Several WakeHub instances may share it. The key
    /// rules are those of [`open`](Self::open).
    #[cfg(feature = "postgres")]
    pub fn open_postgres(url: &str, key: MasterKey) -> Result<Self, StoreError> {
        let conn = Conn::Postgres(pg::PgConn::connect(url).map_err(db)?);
        migrations::migrate_postgres(&conn)?;
        Self::with_conn(conn, key, None)
    }

    fn with_conn(mut conn: Conn, key: MasterKey, dir: Option<std::path::PathBuf>) -> Result<Self, StoreError> {
        check_master_key(&conn, &key)?;
        {
            let tx = conn.transaction().map_err(db)?;
            let bound = nodes::bind_legacy_credentials(&tx)?;
            tx.commit().map_err(db)?;
            if bound > 0 {
                tracing::info!(bound, "credentials of an older version bound to their nodes");
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                key,
                dir,
                topology: Mutex::new((0, None)),
                auth: tokens::AuthCache::default(),
            }),
        })
    }

    /// Runs `f` on tokio's blocking pool, for async callers.
    pub async fn run<R, F>(&self, f: F) -> R
    where
        F: FnOnce(&Store) -> R + Send + 'static,
        R: Send + 'static,
    {
        let store = self.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn().query_row("PRAGMA user_version", (), |r| r.get(0)).map_err(db)
    }

    fn conn(&self) -> MutexGuard<'_, Conn> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back on drop), so a poisoned lock is safe to reuse.
        self.inner.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn topology_cache(&self) -> MutexGuard<'_, (u64, Option<Arc<crate::model::Topology>>)> {
        self.inner.topology.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn cached_topology(&self) -> Option<Arc<crate::model::Topology>> {
        self.topology_cache().1.clone()
    }

    pub(crate) fn topology_generation(&self) -> u64 {
        self.topology_cache().0
    }

    /// Caches `t` unless a change happened since `generation` was read.
    pub(crate) fn cache_topology(&self, generation: u64, t: Arc<crate::model::Topology>) {
        let mut cache = self.topology_cache();
        if cache.0 == generation {
            cache.1 = Some(t);
        }
    }

    pub(crate) fn invalidate_topology(&self) {
        let mut cache = self.topology_cache();
        cache.0 += 1;
        cache.1 = None;
    }

    /// Runs `f` in one transaction: committed if it returns `Ok`, rolled back otherwise.
    pub(crate) fn transaction<R>(
        &self,
        f: impl FnOnce(&db::Transaction<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut conn = self.conn();
        // IMMEDIATE: the write lock is taken up front, so another process writing the same
        // database (the CLI creating a token beside a running server) makes this wait
        // (busy timeout) instead of failing when a read would have to become a write.
        let tx = conn.transaction().map_err(db)?;
        let r = f(&tx)?;
        tx.commit().map_err(db)?;
        Ok(r)
    }

    /// A value an application keeps in the database beside WakeHub's own (its own keys,
    /// stored apart from the store's internal ones).
    pub fn app_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = format!("app:{key}");
        self.transaction(|tx| {
            tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(db)
        })
    }

    /// Sets an application value (see [`app_value`](Self::app_value)).
    pub fn set_app_value(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let key = format!("app:{key}");
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
                params![key, value],
            )
            .map(|_| ())
            .map_err(db)
        })
    }

    /// Reads secret `key` of node `owner`'s table wherever it lives: the environment, a
    /// file, or the encrypted store. A stored credential is read only for the node and key
    /// it was given for; a reference never reads the master key or the database's
    /// directory.
    pub fn resolve_secret(&self, owner: NodeId, key: &str, secret: &SecretRef) -> Result<SecretString, StoreError> {
        let unavailable = |message: String| {
            StoreError::Secret(SecretError::Unavailable {
                reference: secret.to_reference().unwrap_or_else(|| "<inline>".into()),
                message,
            })
        };
        match secret {
            SecretRef::Inline(s) => Ok(SecretString::new(s.clone())),
            SecretRef::Env(var) => {
                self.check_reference(secret)?;
                std::env::var(var).map(SecretString::new).map_err(|_| unavailable("not set".into()))
            }
            SecretRef::File(path) => {
                self.check_reference(secret)?;
                std::fs::read_to_string(path)
                    .map(|s| SecretString::new(s.trim_end_matches(['\r', '\n'])))
                    .map_err(|e| unavailable(e.to_string()))
            }
            SecretRef::Stored(id) => {
                let conn = self.conn();
                let row: Option<SealedRow> = conn
                    .query_row(
                        "SELECT nonce, ciphertext, node_id, key FROM credentials WHERE id = ?1",
                        [id.get()],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()
                    .map_err(db)?;
                let (nonce, ciphertext, node, bound_key) =
                    row.ok_or_else(|| unavailable("no such credential".into()))?;
                if node != Some(owner.get()) || bound_key.as_deref() != Some(key) {
                    return Err(unavailable(format!("it is not the `{key}` of {owner}")));
                }
                let plain = self.inner.key.open(&Sealed { nonce, ciphertext }, id.to_string().as_bytes())?;
                String::from_utf8(plain).map(SecretString::new).map_err(|_| StoreError::Secret(SecretError::Decrypt))
            }
        }
    }

    /// Refuses `env:`/`file:` references to the master key or into the database's
    /// directory (which holds the database and, by default, the key file).
    pub(crate) fn check_reference(&self, secret: &SecretRef) -> Result<(), StoreError> {
        let refused =
            |why: &str| Err(Refusal::invalid(format!("{}: {why}", secret.to_reference().unwrap_or_default())).into());
        match secret {
            SecretRef::Env(var) if var == crate::secrets::MASTER_KEY_ENV => {
                refused("the master key is never a node's secret")
            }
            SecretRef::File(path) => {
                let Some(dir) = &self.inner.dir else { return Ok(()) };
                // A file that does not exist yet cannot be canonicalized; its parent can.
                let resolved = path
                    .canonicalize()
                    .or_else(|_| {
                        path.parent().map_or(Ok(path.clone()), |p| {
                            p.canonicalize().map(|p| p.join(path.file_name().unwrap_or_default()))
                        })
                    })
                    .unwrap_or_else(|_| path.clone());
                if resolved.starts_with(dir) {
                    refused(
                        "files of WakeHub's own database directory (the database, the master key) are never a node's secret",
                    )
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Encrypts a plaintext secret into a new credential row.
    pub(crate) fn seal_credential(
        &self,
        tx: &db::Transaction<'_>,
        plaintext: &str,
        node: NodeId,
        key: &str,
        endpoint: &str,
    ) -> Result<CredentialId, StoreError> {
        tx.execute(
            "INSERT INTO credentials (nonce, ciphertext, created_at, node_id, key, endpoint)
             VALUES (x'', x'', ?1, ?2, ?3, ?4)",
            params![now_ms(), node.get(), key, endpoint],
        )
        .map_err(db)?;
        let id = CredentialId::new(tx.last_insert_rowid());
        let sealed = self.inner.key.seal(plaintext.as_bytes(), id.to_string().as_bytes());
        tx.execute(
            "UPDATE credentials SET nonce = ?1, ciphertext = ?2 WHERE id = ?3",
            params![sealed.nonce, sealed.ciphertext, id.get()],
        )
        .map_err(db)?;
        Ok(id)
    }
}

/// The first open stores a sealed marker; later opens must be able to open it, so a wrong
/// key is reported at once instead of at the first credential use.
fn check_master_key(conn: &Conn, key: &MasterKey) -> Result<(), StoreError> {
    let stored: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = 'key_check'", (), |r| r.get(0)).optional().map_err(db)?;
    match stored {
        Some(value) => {
            let (nonce, ciphertext) = value.split_once(':').ok_or(StoreError::WrongMasterKey)?;
            let decode = |s: &str| base64_decode(s).ok_or(StoreError::WrongMasterKey);
            let sealed = Sealed { nonce: decode(nonce)?, ciphertext: decode(ciphertext)? };
            key.open(&sealed, KEY_CHECK_AAD).map(|_| ()).map_err(|_| StoreError::WrongMasterKey)
        }
        None => {
            let sealed = key.seal(b"wakehub", KEY_CHECK_AAD);
            let value = format!("{}:{}", base64_encode(&sealed.nonce), base64_encode(&sealed.ciphertext));
            conn.execute("INSERT INTO meta (key, value) VALUES ('key_check', ?1)", [value]).map_err(db)?;
            Ok(())
        }
    }
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Store {
    /// The SSH host key learned for `endpoint` (`host:port`) of `node`, if any.
    pub fn host_key(&self, node: NodeId, endpoint: &str) -> Option<String> {
        self.conn()
            .query_row(
                "SELECT key FROM host_keys WHERE node_id = ?1 AND endpoint = ?2",
                params![node.get(), endpoint],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten()
    }

    /// Remembers the SSH host key first seen at `endpoint` of `node` (the first one stays).
    pub fn remember_host_key(&self, node: NodeId, endpoint: &str, key: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO host_keys (node_id, endpoint, key, learned_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (node_id, endpoint) DO NOTHING",
                params![node.get(), endpoint, key, now_ms()],
            )
            .map(|_| ())
            .map_err(db)
    }
}
