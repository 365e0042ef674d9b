//! API tokens. A token is `whk_` followed by 43 base64url characters (32 random bytes); only
//! its SHA-256 is stored, so a stolen database yields no usable token. Tokens are shown
//! once, at creation.

use rusqlite::{OptionalExtension, params};
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

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRecord> {
    let bad = |i: usize, e: String| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into());
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
            let rows = stmt.query_map([], row).map_err(db)?;
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
            tx.query_row(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = ?1"), [id], row).map_err(db)
        })
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
