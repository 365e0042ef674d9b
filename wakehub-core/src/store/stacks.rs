//! Stacks: immutable numbered versions of a compose file, the version each stack is on, and
//! the durable queue of its commands.
//!
//! A version is written once (triggers refuse any change) and only its image ids are added,
//! once, the first time it runs. Environment values whose names say they are secrets
//! ([`is_secret_env`]: `…_PASSWORD`, `DB_PASS`, `…_TOKEN`, `SECRET_KEY`…) are sealed
//! apart with the master key; the model kept beside them holds a placeholder, and the
//! version's digest is keyed so it can be shown without letting anyone test guesses. A
//! command is persisted `pending` before it is acknowledged; one per stack runs at a time
//! (a unique index), under a lease a heartbeat renews; after a crash,
//! [`JournalTx::reclaim_stack_commands`] marks a command left running `failed`
//! (`INTERRUPTED`), so nothing runs twice.

use std::collections::BTreeMap;

use super::db::{OptionalExtension, Transaction};
use rusqlite::params;

use super::journal::JournalTx;
use super::{Store, StoreError, db};
use crate::events::EventKind;
use crate::model::{NodeId, Refusal, is_secret_key};
use crate::secrets::{Sealed, SecretError};
use crate::stack::Compose;

/// What a secret environment value reads as outside the store.
pub const SECRET_PLACEHOLDER: &str = "********";

/// Whether environment variable `name` holds a secret: by the connector keys' rule, or a
/// word of it (split on `_`) is `PASSWORD`, `PASSWD`, `PASS`, `PWD`, `SECRET`, `TOKEN`,
/// `PASSPHRASE`, `CREDENTIALS` or `APIKEY`, or it ends in `_KEY` (`SECRET_KEY`,
/// `ACCESS_KEY`…). Sealing a value that was no secret only hides it; the reverse leaks.
pub fn is_secret_env(name: &str) -> bool {
    const WORDS: [&str; 9] =
        ["PASSWORD", "PASSWD", "PASS", "PWD", "SECRET", "TOKEN", "PASSPHRASE", "CREDENTIALS", "APIKEY"];
    let upper = name.to_ascii_uppercase();
    is_secret_key(&name.to_ascii_lowercase()) || upper.ends_with("_KEY") || upper.split('_').any(|w| WORDS.contains(&w))
}

/// One version of a stack, as shown: its secrets are placeholders.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StackVersion {
    /// The stack.
    pub stack: NodeId,
    /// Its number (1, 2, …).
    pub number: i64,
    /// Its identity (keyed SHA-256 of the whole model, secrets included).
    pub digest: String,
    /// The model, secret values replaced by [`SECRET_PLACEHOLDER`].
    pub compose: Compose,
    /// `service.VARIABLE` of each sealed value.
    pub secrets: Vec<String>,
    /// Service → image id it first ran with (none before its first successful apply).
    pub images: Option<BTreeMap<String, String>>,
    /// Who wrote it.
    pub created_by: String,
    /// When (ms since the epoch).
    pub created_at: i64,
    /// A note given with it.
    pub note: Option<String>,
}

/// A stack command's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StackCommandKind {
    /// Converge to a version (the latest by default).
    Apply,
    /// Converge to an earlier version, with the images it ran with.
    Rollback,
    /// Stop the stack's containers.
    Stop,
    /// Remove the stack's containers and networks (volumes are kept).
    Remove,
    /// Observe the stack: its containers, health, drift.
    Refresh,
}

impl StackCommandKind {
    /// Every kind.
    pub const ALL: [StackCommandKind; 5] = [
        StackCommandKind::Apply,
        StackCommandKind::Rollback,
        StackCommandKind::Stop,
        StackCommandKind::Remove,
        StackCommandKind::Refresh,
    ];

    /// `apply`, `rollback`, `stop`, `remove`, `refresh`.
    pub fn as_str(self) -> &'static str {
        match self {
            StackCommandKind::Apply => "apply",
            StackCommandKind::Rollback => "rollback",
            StackCommandKind::Stop => "stop",
            StackCommandKind::Remove => "remove",
            StackCommandKind::Refresh => "refresh",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<StackCommandKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a stack command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StackCommandStatus {
    /// Persisted, waiting its turn (its `reason` says for what).
    Pending,
    /// Running, under a lease.
    Running,
    /// Ended well.
    Done,
    /// Ended badly (its error code and message say why).
    Failed,
    /// Cancelled while pending.
    Cancelled,
}

impl StackCommandStatus {
    /// `pending`, `running`, `done`, `failed`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            StackCommandStatus::Pending => "pending",
            StackCommandStatus::Running => "running",
            StackCommandStatus::Done => "done",
            StackCommandStatus::Failed => "failed",
            StackCommandStatus::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> StackCommandStatus {
        match s {
            "pending" => StackCommandStatus::Pending,
            "running" => StackCommandStatus::Running,
            "done" => StackCommandStatus::Done,
            "cancelled" => StackCommandStatus::Cancelled,
            _ => StackCommandStatus::Failed,
        }
    }

    /// Whether it has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, StackCommandStatus::Pending | StackCommandStatus::Running)
    }
}

/// One stack command.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StackCommand {
    /// Its id.
    pub id: i64,
    /// The stack.
    pub stack: NodeId,
    /// What it does.
    pub kind: StackCommandKind,
    /// The version it converges to (apply, rollback).
    pub version: Option<i64>,
    /// Where it is.
    pub status: StackCommandStatus,
    /// Who asked.
    pub actor: String,
    /// Why it waits (while pending), or what it is doing.
    pub reason: Option<String>,
    /// When it was queued (ms since the epoch).
    pub queued_at: i64,
    /// When it began.
    pub started_at: Option<i64>,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// Its stable error code (`UNHEALTHY`, `TIMEOUT`, `INTERRUPTED`…).
    pub error_code: Option<String>,
    /// What failed, for people (with the tail of a container's log).
    pub error_message: Option<String>,
    /// What it did (JSON: containers created, kept, removed; what a refresh saw).
    pub result: Option<serde_json::Value>,
    /// Its log lines.
    pub log: String,
}

/// The most of a command's log kept.
const LOG_LIMIT: usize = 256 << 10;

const COMMAND_COLUMNS: &str = "id, stack_id, kind, version, status, actor, reason, queued_at, started_at, finished_at,
     error_code, error_message, result, log";

fn command_row(r: &super::db::Row<'_>) -> super::db::Result<StackCommand> {
    let result: Option<String> = r.get(12)?;
    Ok(StackCommand {
        id: r.get(0)?,
        stack: NodeId::new(r.get(1)?),
        kind: StackCommandKind::parse(&r.get::<_, String>(2)?).unwrap_or(StackCommandKind::Refresh),
        version: r.get(3)?,
        status: StackCommandStatus::parse(&r.get::<_, String>(4)?),
        actor: r.get(5)?,
        reason: r.get(6)?,
        queued_at: r.get(7)?,
        started_at: r.get(8)?,
        finished_at: r.get(9)?,
        error_code: r.get(10)?,
        error_message: r.get(11)?,
        result: result.and_then(|j| serde_json::from_str(&j).ok()),
        log: r.get(13)?,
    })
}

fn command(tx: &Transaction<'_>, id: i64) -> Result<StackCommand, StoreError> {
    tx.query_row(&format!("SELECT {COMMAND_COLUMNS} FROM stack_commands WHERE id = ?1"), [id], command_row)
        .optional()
        .map_err(db)?
        .ok_or_else(|| StoreError::NotFound { what: format!("stack command {id}") })
}

type VersionRow =
    (i64, i64, String, String, Option<Vec<u8>>, Option<Vec<u8>>, Option<String>, String, i64, Option<String>);

const VERSION_COLUMNS: &str = "stack_id, number, digest, model, nonce, secrets, images, created_by, created_at, note";

fn version_row(r: &super::db::Row<'_>) -> super::db::Result<VersionRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?))
}

/// What seals a version's secrets to its row.
fn secrets_aad(stack: i64, number: i64) -> Vec<u8> {
    format!("wakehub:stack-version:{stack}:{number}").into_bytes()
}

/// `compose` with its secret values taken out: the values, and the placeholders left.
fn split_secrets(compose: &Compose) -> (Compose, BTreeMap<String, BTreeMap<String, String>>) {
    let mut shown = compose.clone();
    let mut secrets: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (service, s) in shown.services.iter_mut() {
        for (name, value) in s.environment.iter_mut().filter(|(n, _)| is_secret_env(n)) {
            let value = std::mem::replace(value, SECRET_PLACEHOLDER.to_owned());
            secrets.entry(service.clone()).or_default().insert(name.clone(), value);
        }
    }
    (shown, secrets)
}

impl Store {
    fn version_of(&self, row: VersionRow, with_secrets: bool) -> Result<(StackVersion, Option<Compose>), StoreError> {
        let (stack, number, digest, model, nonce, sealed, images, created_by, created_at, note) = row;
        let compose: Compose = serde_json::from_str(&model)
            .map_err(|e| StoreError::Corrupt { message: format!("stack version {stack}/{number}: {e}") })?;
        let secrets: Vec<String> = compose
            .services
            .iter()
            .flat_map(|(svc, s)| {
                s.environment
                    .iter()
                    .filter(|(n, v)| is_secret_env(n) && *v == SECRET_PLACEHOLDER)
                    .map(move |(n, _)| format!("{svc}.{n}"))
            })
            .collect();
        let full = match (with_secrets, nonce, sealed) {
            (false, _, _) => None,
            (true, Some(nonce), Some(ciphertext)) => {
                let plain = self.inner.key.open(&Sealed { nonce, ciphertext }, &secrets_aad(stack, number))?;
                let values: BTreeMap<String, BTreeMap<String, String>> =
                    serde_json::from_slice(&plain).map_err(|_| StoreError::Secret(SecretError::Decrypt))?;
                let mut full = compose.clone();
                for (service, vars) in values {
                    if let Some(s) = full.services.get_mut(&service) {
                        s.environment.extend(vars);
                    }
                }
                Some(full)
            }
            (true, _, _) => Some(compose.clone()),
        };
        let images = images.and_then(|j| serde_json::from_str(&j).ok());
        let version = StackVersion {
            stack: NodeId::new(stack),
            number,
            digest,
            compose,
            secrets,
            images,
            created_by,
            created_at,
            note,
        };
        Ok((version, full))
    }

    /// Writes `compose` as the next version of `stack` (by `actor`, with `note`), unless it
    /// is identical to the latest one: returns the version and whether it is new.
    pub fn save_stack_version(
        &self,
        stack: NodeId,
        compose: &Compose,
        actor: &str,
        note: Option<&str>,
    ) -> Result<(StackVersion, bool), StoreError> {
        let digest = self.inner.key.keyed_digest("wakehub:stack-version", compose.canonical().as_bytes());
        let (shown, secrets) = split_secrets(compose);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db)?;
        let latest: Option<(i64, String)> = tx
            .query_row(
                "SELECT number, digest FROM stack_versions WHERE stack_id = ?1 ORDER BY number DESC LIMIT 1",
                [stack.get()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        let number = match latest {
            Some((n, d)) if d == digest => {
                drop(tx);
                drop(conn);
                let v = self.stack_version(stack, n)?.ok_or_else(|| StoreError::NotFound { what: "version".into() })?;
                return Ok((v, false));
            }
            Some((n, _)) => n + 1,
            None => 1,
        };
        let (nonce, sealed) = if secrets.is_empty() {
            (None, None)
        } else {
            let plain = serde_json::to_vec(&secrets).unwrap_or_default();
            let s = self.inner.key.seal(&plain, &secrets_aad(stack.get(), number));
            (Some(s.nonce), Some(s.ciphertext))
        };
        tx.execute(
            "INSERT INTO stack_versions (stack_id, number, digest, model, nonce, secrets, created_by, created_at, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![stack.get(), number, digest, shown.canonical(), nonce, sealed, actor, super::now_ms(), note],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        drop(conn);
        let v = self.stack_version(stack, number)?.ok_or_else(|| StoreError::NotFound { what: "version".into() })?;
        Ok((v, true))
    }

    /// Version `number` of `stack`, as shown (secrets are placeholders).
    pub fn stack_version(&self, stack: NodeId, number: i64) -> Result<Option<StackVersion>, StoreError> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {VERSION_COLUMNS} FROM stack_versions WHERE stack_id = ?1 AND number = ?2"),
                params![stack.get(), number],
                version_row,
            )
            .optional()
            .map_err(db)?;
        row.map(|r| self.version_of(r, false).map(|(v, _)| v)).transpose()
    }

    /// Version `number` of `stack` with its secrets, to apply. Never leaves WakeHub.
    #[cfg_attr(not(feature = "docker"), allow(dead_code))]
    pub(crate) fn stack_version_to_apply(
        &self,
        stack: NodeId,
        number: i64,
    ) -> Result<Option<(StackVersion, Compose)>, StoreError> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {VERSION_COLUMNS} FROM stack_versions WHERE stack_id = ?1 AND number = ?2"),
                params![stack.get(), number],
                version_row,
            )
            .optional()
            .map_err(db)?;
        match row {
            None => Ok(None),
            Some(r) => {
                let (v, full) = self.version_of(r, true)?;
                let full = full.unwrap_or_else(|| v.compose.clone());
                Ok(Some((v, full)))
            }
        }
    }

    /// Every version of `stack`, newest first.
    pub fn stack_versions(&self, stack: NodeId) -> Result<Vec<StackVersion>, StoreError> {
        let rows: Vec<VersionRow> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {VERSION_COLUMNS} FROM stack_versions WHERE stack_id = ?1 ORDER BY number DESC"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([stack.get()], version_row).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        };
        rows.into_iter().map(|r| self.version_of(r, false).map(|(v, _)| v)).collect()
    }

    /// The version `stack` is on (its last successful apply or rollback) and when it got there.
    pub fn stack_current(&self, stack: NodeId) -> Result<Option<(i64, i64)>, StoreError> {
        self.conn()
            .query_row(
                "SELECT current, applied_at FROM stack_state WHERE stack_id = ?1 AND current IS NOT NULL",
                [stack.get()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)
    }

    /// The latest version's number of `stack`.
    pub fn stack_latest(&self, stack: NodeId) -> Result<Option<i64>, StoreError> {
        self.conn()
            .query_row("SELECT MAX(number) FROM stack_versions WHERE stack_id = ?1", [stack.get()], |r| r.get(0))
            .map_err(db)
    }

    /// Records the image ids version `number` ran with, the first time it ran.
    pub fn record_stack_images(
        &self,
        stack: NodeId,
        number: i64,
        images: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(images).unwrap_or_default();
        self.conn()
            .execute(
                "UPDATE stack_versions SET images = ?3 WHERE stack_id = ?1 AND number = ?2 AND images IS NULL",
                params![stack.get(), number, json],
            )
            .map_err(db)?;
        Ok(())
    }

    /// Command `id`.
    pub fn stack_command(&self, id: i64) -> Result<Option<StackCommand>, StoreError> {
        self.conn()
            .query_row(&format!("SELECT {COMMAND_COLUMNS} FROM stack_commands WHERE id = ?1"), [id], command_row)
            .optional()
            .map_err(db)
    }

    /// The latest `limit` commands of `stack` (of every stack when `None`), newest first.
    pub fn stack_commands(&self, stack: Option<NodeId>, limit: usize) -> Result<Vec<StackCommand>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COMMAND_COLUMNS} FROM stack_commands WHERE CAST(?1 AS BIGINT) IS NULL OR stack_id = ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .map_err(db)?;
        let rows = stmt.query_map(params![stack.map(NodeId::get), limit as i64], command_row).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// The stacks with pending commands.
    pub fn stacks_with_pending_commands(&self) -> Result<Vec<NodeId>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT DISTINCT stack_id FROM stack_commands WHERE status = 'pending'").map_err(db)?;
        let rows = stmt.query_map((), |r| r.get::<_, i64>(0).map(NodeId::new)).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// Appends `line` to command `id`'s log (kept up to 256 KiB).
    pub fn append_stack_log(&self, id: i64, line: &str) -> Result<(), StoreError> {
        let line = format!("{line}\n");
        self.conn()
            .execute(
                "UPDATE stack_commands SET log = log || ?2 WHERE id = ?1 AND length(log) + length(?2) <= ?3",
                params![id, line, LOG_LIMIT as i64],
            )
            .map_err(db)?;
        Ok(())
    }

    /// Says why pending command `id` waits.
    pub fn set_stack_reason(&self, id: i64, reason: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("UPDATE stack_commands SET reason = ?2 WHERE id = ?1 AND status = 'pending'", params![id, reason])
            .map_err(db)?;
        Ok(())
    }

    /// Renews running command `id`'s lease; false when it no longer runs.
    pub fn renew_stack_lease(&self, id: i64, until: i64) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(
                "UPDATE stack_commands SET lease_until = ?2 WHERE id = ?1 AND status = 'running'",
                params![id, until],
            )
            .map_err(db)?;
        Ok(n == 1)
    }
}

/// How a command ended, to record.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StackOutcome {
    /// Done or failed.
    pub status: StackCommandStatus,
    /// Its error, when it failed: code and message.
    pub error: Option<(String, String)>,
    /// What it did.
    pub result: serde_json::Value,
    /// The version the stack is on now, when that changed (`Some(None)`: on none, removed).
    pub current: Option<Option<i64>>,
}

fn set_current(tx: &Transaction<'_>, stack: NodeId, version: Option<i64>, now: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO stack_state (stack_id, current, applied_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (stack_id) DO UPDATE SET current = ?2, applied_at = ?3",
        params![stack.get(), version, now],
    )
    .map_err(db)?;
    Ok(())
}

impl JournalTx<'_> {
    /// Queues command `kind` (to `version`) on `stack` (named `name`) for `actor`; journaled as
    /// a `stack-command` event.
    pub fn queue_stack_command(
        &mut self,
        stack: NodeId,
        name: &str,
        kind: StackCommandKind,
        version: Option<i64>,
        actor: &str,
        now: i64,
    ) -> Result<StackCommand, StoreError> {
        self.tx
            .execute(
                "INSERT INTO stack_commands (stack_id, kind, version, status, actor, queued_at, reason)
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?5, 'queued')",
                params![stack.get(), kind.as_str(), version, actor, now],
            )
            .map_err(db)?;
        let c = command(self.tx, self.tx.last_insert_rowid())?;
        self.emit_stack(&c, name);
        Ok(c)
    }

    /// Claims the oldest pending command of `stack` when none runs there.
    pub fn claim_stack_command(
        &mut self,
        stack: NodeId,
        name: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<StackCommand>, StoreError> {
        let running: Option<i64> = self
            .tx
            .query_row("SELECT id FROM stack_commands WHERE stack_id = ?1 AND status = 'running'", [stack.get()], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db)?;
        if running.is_some() {
            return Ok(None);
        }
        let next: Option<i64> = self
            .tx
            .query_row(
                "SELECT id FROM stack_commands WHERE stack_id = ?1 AND status = 'pending' ORDER BY id LIMIT 1",
                [stack.get()],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        let Some(id) = next else { return Ok(None) };
        self.tx
            .execute(
                "UPDATE stack_commands SET status = 'running', started_at = ?2, lease_until = ?3, reason = NULL
                 WHERE id = ?1",
                params![id, now, lease_until],
            )
            .map_err(db)?;
        let c = command(self.tx, id)?;
        self.emit_stack(&c, name);
        Ok(Some(c))
    }

    /// Records how command `id` ended (and the version its stack is now on).
    pub fn finish_stack_command(
        &mut self,
        id: i64,
        name: &str,
        now: i64,
        outcome: StackOutcome,
    ) -> Result<StackCommand, StoreError> {
        let current = command(self.tx, id)?;
        if current.status.is_final() {
            return Ok(current);
        }
        let (code, message) = outcome.error.unzip();
        self.tx
            .execute(
                "UPDATE stack_commands SET status = ?2, finished_at = ?3, lease_until = NULL, error_code = ?4,
                        error_message = ?5, result = ?6
                 WHERE id = ?1",
                params![id, outcome.status.as_str(), now, code, message, outcome.result.to_string()],
            )
            .map_err(db)?;
        if let Some(version) = outcome.current {
            set_current(self.tx, current.stack, version, now)?;
        }
        let c = command(self.tx, id)?;
        self.emit_stack(&c, name);
        Ok(c)
    }

    /// Cancels pending command `id`; a running one answers `COMMAND_RUNNING`.
    pub fn cancel_stack_command(&mut self, id: i64, name: &str, now: i64) -> Result<StackCommand, StoreError> {
        let c = command(self.tx, id)?;
        match c.status {
            StackCommandStatus::Pending => {}
            StackCommandStatus::Running => {
                return Err(Refusal::new(
                    crate::model::ErrorCode::CommandRunning,
                    format!("stack command {id} is running: it runs to its end (a running apply is not interrupted)"),
                )
                .into());
            }
            _ => return Err(Refusal::conflict(format!("stack command {id} has already ended")).into()),
        }
        self.tx
            .execute(
                "UPDATE stack_commands SET status = 'cancelled', finished_at = ?2, reason = NULL WHERE id = ?1",
                params![id, now],
            )
            .map_err(db)?;
        let c = command(self.tx, id)?;
        self.emit_stack(&c, name);
        Ok(c)
    }

    /// Marks every command left running whose lease ended before `now` `failed`
    /// (`INTERRUPTED`): it is never run again. `names` gives each stack's name.
    pub fn reclaim_stack_commands(
        &mut self,
        now: i64,
        names: &dyn Fn(NodeId) -> String,
    ) -> Result<Vec<StackCommand>, StoreError> {
        let ids: Vec<i64> = {
            let mut stmt = self
                .tx
                .prepare("SELECT id FROM stack_commands WHERE status = 'running' AND (lease_until IS NULL OR lease_until < ?1)")
                .map_err(db)?;
            let rows = stmt.query_map([now], |r| r.get(0)).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        };
        let mut out = Vec::new();
        for id in ids {
            let c = command(self.tx, id)?;
            let outcome = StackOutcome {
                status: StackCommandStatus::Failed,
                error: Some((
                    "INTERRUPTED".into(),
                    "WakeHub stopped while this command ran; it was not run again (apply again to converge)".into(),
                )),
                result: serde_json::Value::Null,
                current: None,
            };
            out.push(self.finish_stack_command(id, &names(c.stack), now, outcome)?);
        }
        Ok(out)
    }

    /// Records that `stack` (named `name`) is on `version` (none: removed) since `now`,
    /// outside a command (a start cascade applied it).
    pub fn set_stack_current(
        &mut self,
        stack: NodeId,
        _name: &str,
        version: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        set_current(self.tx, stack, version, now)
    }

    fn emit_stack(&mut self, c: &StackCommand, name: &str) {
        self.emit(EventKind::StackCommand {
            node: c.stack,
            name: name.to_owned(),
            command: c.id,
            kind: c.kind.as_str().to_owned(),
            version: c.version,
            status: c.status.as_str().to_owned(),
            code: c.error_code.clone(),
            actor: c.actor.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::is_secret_env;

    #[test]
    fn secret_environment_names_are_recognised() {
        for name in [
            "POSTGRES_PASSWORD",
            "DB_PASS",
            "PAPERLESS_DBPASS_X_PASS",
            "API_TOKEN",
            "SECRET_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "MYSQL_ROOT_PWD",
            "SMTP_PASSWD",
            "GITHUB_APIKEY",
            "app_secret",
        ] {
            assert!(is_secret_env(name), "{name}");
        }
        for name in ["TZ", "PUID", "POSTGRES_USER", "PAPERLESS_URL", "PASSIVE_MODE", "KEYBOARD"] {
            assert!(!is_secret_env(name), "{name}");
        }
    }
}
