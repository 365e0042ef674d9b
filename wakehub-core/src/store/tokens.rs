//! API tokens. A token is `whk_` followed by 43 base64url characters (32 random bytes); only
//! its SHA-256 is stored, so a stolen database yields no usable token. Tokens are shown
//! once, at creation.
//!
//! [`Store::authenticate`] checks a token or a session and keeps the answer in memory,
//! keyed by the token's SHA-256, so a request with a known token costs no database read.
//! Every change of tokens, users or sessions through this store empties the cache at once;
//! a change made by another process on the same database (the CLI) is seen within
//! [`AUTH_CACHE_TTL`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::db::OptionalExtension;
use rusqlite::params;
use sha2::{Digest, Sha256};

use super::{Store, StoreError, db, now_ms};
use crate::model::{Refusal, Role, Scope};
use crate::secrets::SecretString;

/// An API token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRecord {
    /// Its id.
    pub id: i64,
    /// The name given at creation.
    pub name: String,
    /// Created at (ms since epoch).
    pub created_at_ms: i64,
    /// Revoked at, if revoked.
    pub revoked_at_ms: Option<i64>,
    /// What it may do.
    pub role: Role,
    /// Which nodes it may see and act on.
    pub scope: Scope,
    /// When it stops being valid (ms since epoch), if ever.
    pub expires_at_ms: Option<i64>,
}

const COLUMNS: &str = "id, name, created_at, revoked_at, role, scope, expires_at";

/// How long a cached answer is trusted without reading the database again: the longest a
/// token revoked by another process (the CLI) may still be accepted.
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(1);

/// The most answers kept (the cache is emptied when full).
const AUTH_CACHE_MAX: usize = 10_000;

/// Who a token or session stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Principal {
    /// The token's or user's name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Which nodes it may see and act on.
    pub scope: Scope,
}

struct Cached {
    who: Principal,
    /// When the token or session expires (ms since epoch), if ever.
    expires_at_ms: Option<i64>,
    checked: Instant,
}

/// The answers of [`Store::authenticate`] (valid tokens and sessions only), and a
/// generation bumped by every change, so an answer read before a change is never kept.
#[derive(Default)]
pub(super) struct AuthCache(Mutex<(u64, HashMap<Vec<u8>, Cached>)>);

impl AuthCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, HashMap<Vec<u8>, Cached>)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets every answer (a token, user or session changed).
    pub(super) fn clear(&self) {
        let mut cache = self.lock();
        cache.0 += 1;
        cache.1.clear();
    }
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn row(r: &super::db::Row<'_>) -> super::db::Result<TokenRecord> {
    let bad = |i: usize, e: String| super::db::Error::Conversion(format!("column {i}: {e}"));
    let role: String = r.get(4)?;
    let scope: String = r.get(5)?;
    Ok(TokenRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at_ms: r.get(2)?,
        revoked_at_ms: r.get(3)?,
        role: role.parse().map_err(|e| bad(4, e))?,
        scope: scope.parse().map_err(|e| bad(5, e))?,
        expires_at_ms: r.get(6)?,
    })
}

impl Store {
    /// Creates a token named `name` with `role`, limited to `scope`, valid until
    /// `expires_at_ms` (if given), and returns it — the only time it is ever visible.
    pub fn create_token(
        &self,
        name: &str,
        role: Role,
        scope: &Scope,
        expires_at_ms: Option<i64>,
    ) -> Result<(TokenRecord, SecretString), StoreError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(StoreError::from(Refusal::invalid(format!(
                "token name `{name}`: use 1 to 64 letters, digits, `-`, `_` or `.`"
            ))));
        }
        let token = format!("whk_{}", crate::secrets::random_string(32));
        self.transaction(|tx| {
            let taken: Option<i64> = tx
                .query_row("SELECT id FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL", [name], |r| r.get(0))
                .optional()
                .map_err(db)?;
            if taken.is_some() {
                return Err(StoreError::from(Refusal::conflict(format!(
                    "an active token named `{name}` already exists"
                ))));
            }
            tx.execute(
                "INSERT INTO api_tokens (name, hash, created_at, role, scope, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, hash(&token), now_ms(), role.as_str(), scope.to_string(), expires_at_ms],
            )
            .map_err(db)?;
            let id = tx.last_insert_rowid();
            let record = tx
                .query_row(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = ?1"), [id], row)
                .map_err(db)?;
            Ok((record, SecretString::new(token)))
        })
    }

    /// Every token, active and revoked, oldest first.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx.prepare(&format!("SELECT {COLUMNS} FROM api_tokens ORDER BY id")).map_err(db)?;
            let rows = stmt.query_map((), row).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    /// Revokes the active token with this name (or id).
    pub fn revoke_token(&self, name_or_id: &str) -> Result<TokenRecord, StoreError> {
        self.transaction(|tx| {
            let id: Option<i64> = tx
                .query_row(
                    "SELECT id FROM api_tokens WHERE revoked_at IS NULL AND (name = ?1 OR CAST(id AS TEXT) = ?1)",
                    [name_or_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            let id = id.ok_or_else(|| StoreError::NotFound { what: format!("active token `{name_or_id}`") })?;
            tx.execute("UPDATE api_tokens SET revoked_at = ?1 WHERE id = ?2", params![now_ms(), id]).map_err(db)?;
            self.inner.auth.clear();
            super::shared::notify(tx, super::shared::CHANGES_CHANNEL, "auth")?;
            tx.query_row(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = ?1"), [id], row).map_err(db)
        })
    }

    /// Who `token` (an API token `whk_…` or a session `whs_…`) stands for, if it is live:
    /// from memory when it was checked less than [`AUTH_CACHE_TTL`] ago and nothing changed
    /// since, else from the database.
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        if let Some(who) = self.authenticated(token) {
            return Ok(Some(who));
        }
        let generation = self.inner.auth.lock().0;
        let found = if token.starts_with("whs_") {
            self.verify_session_until(token)?
                .map(|(u, until)| (Principal { name: u.name, role: u.role, scope: u.scope }, Some(until)))
        } else {
            self.verify_token(token)?
                .map(|t| (Principal { name: t.name, role: t.role, scope: t.scope }, t.expires_at_ms))
        };
        Ok(found.map(|(who, expires_at_ms)| {
            let mut cache = self.inner.auth.lock();
            // A change since the read: this answer may be stale, it is not kept.
            if cache.0 == generation {
                if cache.1.len() >= AUTH_CACHE_MAX {
                    cache.1.clear();
                }
                cache.1.insert(hash(token), Cached { who: who.clone(), expires_at_ms, checked: Instant::now() });
            }
            who
        }))
    }

    /// The cached answer for `token`, if it is fresh and not expired: no database read, so
    /// an async caller may ask it in place.
    pub fn authenticated(&self, token: &str) -> Option<Principal> {
        let key = hash(token);
        let cache = self.inner.auth.lock();
        let c = cache.1.get(&key)?;
        let fresh = c.checked.elapsed() < AUTH_CACHE_TTL && c.expires_at_ms.is_none_or(|e| e > now_ms());
        fresh.then(|| c.who.clone())
    }

    /// The active (not revoked, not expired) token matching `token`, if any.
    pub fn verify_token(&self, token: &str) -> Result<Option<TokenRecord>, StoreError> {
        if !token.starts_with("whk_") || token.len() > 128 {
            return Ok(None);
        }
        self.transaction(|tx| {
            tx.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM api_tokens
                 WHERE hash = ?1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)"
            ))
            .map_err(db)?
            .query_row(params![hash(token), now_ms()], row)
            .optional()
            .map_err(db)
        })
    }
}
