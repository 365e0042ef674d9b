//! People: users who log in with a name and a password (stored as an argon2id hash, a
//! memory-hard function), each with a role and a scope like a token's; and their sessions,
//! opaque `whs_…` tokens of which only the SHA-256 is stored, valid for a limited time.

use super::db::OptionalExtension;
use rusqlite::params;
use sha2::{Digest, Sha256};

use super::{Store, StoreError, db, now_ms};
use crate::model::{Refusal, Role, Scope, validate_name};
use crate::secrets::SecretString;

/// A user as stored (never the password).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserRecord {
    /// Its id.
    pub id: i64,
    /// The name it logs in with.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Which nodes it may see and act on.
    pub scope: Scope,
    /// Created at (ms since epoch).
    pub created_at_ms: i64,
}

const COLUMNS: &str = "id, name, role, scope, created_at";

fn row(r: &super::db::Row<'_>) -> super::db::Result<UserRecord> {
    let bad = |i: usize, e: String| super::db::Error::Conversion(format!("column {i}: {e}"));
    let role: String = r.get(2)?;
    let scope: String = r.get(3)?;
    Ok(UserRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        role: role.parse().map_err(|e| bad(2, e))?,
        scope: scope.parse().map_err(|e| bad(3, e))?,
        created_at_ms: r.get(4)?,
    })
}

fn session_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Hashes a password with argon2id (a fresh random salt).
fn hash_password(password: &str) -> Result<String, StoreError> {
    super::passwords::hash(password)
        .map_err(|e| StoreError::Corrupt { message: format!("cannot hash a password: {e}") })
}

/// A fixed hash checked when the user does not exist, so that a wrong name costs the same
/// time as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("wakehub: no such user").unwrap_or_default())
}

/// The shortest password a user may have, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;

impl Store {
    /// Creates a user; the password must be at least [`MIN_PASSWORD_CHARS`] characters.
    pub fn create_user(&self, name: &str, password: &str, role: Role, scope: &Scope) -> Result<UserRecord, StoreError> {
        validate_name(name).map_err(|e| StoreError::from(Refusal::invalid(format!("user name: {e}"))))?;
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(Refusal::invalid(format!("a password has at least {MIN_PASSWORD_CHARS} characters")).into());
        }
        let hash = hash_password(password)?;
        self.transaction(|tx| {
            let taken: Option<i64> =
                tx.query_row("SELECT id FROM users WHERE name = ?1", [name], |r| r.get(0)).optional().map_err(db)?;
            if taken.is_some() {
                return Err(Refusal::conflict(format!("a user named `{name}` already exists")).into());
            }
            tx.execute(
                "INSERT INTO users (name, password_hash, role, scope, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, hash, role.as_str(), scope.to_string(), now_ms()],
            )
            .map_err(db)?;
            let id = tx.last_insert_rowid();
            tx.query_row(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"), [id], row).map_err(db)
        })
    }

    /// Every user, oldest first.
    pub fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx.prepare(&format!("SELECT {COLUMNS} FROM users ORDER BY id")).map_err(db)?;
            let rows = stmt.query_map((), row).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    /// Deletes a user and its sessions.
    pub fn remove_user(&self, name: &str) -> Result<(), StoreError> {
        self.transaction(|tx| {
            let n = tx.execute("DELETE FROM users WHERE name = ?1", [name]).map_err(db)?;
            self.inner.auth.clear();
            super::shared::notify(tx, super::shared::CHANGES_CHANNEL, "auth")?;
            if n == 0 {
                return Err(StoreError::NotFound { what: format!("user `{name}`") });
            }
            Ok(())
        })
    }

    /// Checks a login; on success opens a session valid for `ttl_ms` and returns its token
    /// (the only time it is visible). A wrong name or password is `None`, in the same time.
    pub fn login(
        &self,
        name: &str,
        password: &str,
        ttl_ms: i64,
    ) -> Result<Option<(UserRecord, SecretString, i64)>, StoreError> {
        let found: Option<(UserRecord, String)> = self.transaction(|tx| {
            tx.query_row(&format!("SELECT {COLUMNS}, password_hash FROM users WHERE name = ?1"), [name], |r| {
                Ok((row(r)?, r.get(5)?))
            })
            .optional()
            .map_err(db)
        })?;
        let (user, hash) = match found {
            Some((u, h)) => (Some(u), h),
            None => (None, dummy_hash().to_owned()),
        };
        let ok = super::passwords::verify(&hash, password);
        let Some(user) = user.filter(|_| ok) else { return Ok(None) };
        let token = format!("whs_{}", crate::secrets::random_string(32));
        let expires = now_ms().saturating_add(ttl_ms);
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO sessions (user_id, hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![user.id, session_hash(&token), now_ms(), expires],
            )
            .map_err(db)
        })?;
        Ok(Some((user, SecretString::new(token), expires)))
    }

    /// The user of a live session token (not revoked, not expired), if any.
    pub fn verify_session(&self, token: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.verify_session_until(token)?.map(|(user, _)| user))
    }

    /// The user of a live session token, and when the session expires.
    pub(super) fn verify_session_until(&self, token: &str) -> Result<Option<(UserRecord, i64)>, StoreError> {
        if !token.starts_with("whs_") || token.len() > 128 {
            return Ok(None);
        }
        self.transaction(|tx| {
            tx.prepare_cached(
                "SELECT u.id, u.name, u.role, u.scope, u.created_at, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.hash = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2",
            )
            .map_err(db)?
            .query_row(params![session_hash(token), now_ms()], |r| Ok((row(r)?, r.get(5)?)))
            .optional()
            .map_err(db)
        })
    }

    /// Ends a session (logout); `NOT_FOUND` if it is not live.
    pub fn revoke_session(&self, token: &str) -> Result<(), StoreError> {
        self.transaction(|tx| {
            let n = tx
                .execute(
                    "UPDATE sessions SET revoked_at = ?1 WHERE hash = ?2 AND revoked_at IS NULL",
                    params![now_ms(), session_hash(token)],
                )
                .map_err(db)?;
            self.inner.auth.clear();
            super::shared::notify(tx, super::shared::CHANGES_CHANNEL, "auth")?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "session".into() });
            }
            Ok(())
        })
    }
}
