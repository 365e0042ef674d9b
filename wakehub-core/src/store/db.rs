//! The store's two database engines behind one small SQL interface: SQLite (rusqlite,
//! bundled; the embedded default) and PostgreSQL (tokio-postgres, feature `postgres`).
//!
//! The store's queries are written once, in the SQL both engines speak, with SQLite's
//! numbered parameters (`?1`); for PostgreSQL they are rewritten (`$1`, blob literals) and
//! prepared once per connection. Values cross as SQLite's dynamic values (`rusqlite`'s
//! `ToSql`/`FromSql`): a parameter is encoded as the type PostgreSQL inferred for it, a
//! column decoded from the type it has, so the store's row readers serve both engines.
//!
//! Transactions are explicit (`BEGIN`/`COMMIT`, rolled back when dropped uncommitted) and
//! savepoints are plain SQL, identical on both engines.

use std::cell::Cell;

use rusqlite::ToSql;
use rusqlite::types::{FromSql, Value, ValueRef};

#[cfg(feature = "postgres")]
use super::pg::PgConn;

/// A database error, whichever engine raised it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// SQLite's.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL's (or the connection's).
    #[cfg(feature = "postgres")]
    #[error("{0}")]
    Postgres(String),
    /// A query for one row found none.
    #[error("query returned no rows")]
    NoRows,
    /// A value could not be read as the type asked for.
    #[error("{0}")]
    Conversion(String),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// `Ok(None)` for a query that found no row.
pub(crate) trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) | Err(Error::Sqlite(rusqlite::Error::QueryReturnedNoRows)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A statement's parameters: `()`, an array of values, or `params![…]`.
pub(crate) trait Params {
    fn values(&self) -> Vec<&dyn ToSql>;
}

impl Params for () {
    fn values(&self) -> Vec<&dyn ToSql> {
        Vec::new()
    }
}

impl<T: ToSql, const N: usize> Params for [T; N] {
    fn values(&self) -> Vec<&dyn ToSql> {
        self.iter().map(|v| v as &dyn ToSql).collect()
    }
}

impl Params for &[&dyn ToSql] {
    fn values(&self) -> Vec<&dyn ToSql> {
        self.to_vec()
    }
}

/// Which engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, a file or memory.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// One connection to the database.
pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    #[cfg(feature = "postgres")]
    Postgres(PgConn),
}

/// A row read: its columns by position.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    /// PostgreSQL's columns, decoded to SQLite's values.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Values(&'a [Value]),
}

/// A column position.
pub(crate) trait RowIndex {
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

impl Row<'_> {
    /// Column `i` as a `T`.
    pub(crate) fn get<I: RowIndex, T: FromSql>(&self, i: I) -> Result<T> {
        let i = i.index();
        match self {
            Row::Sqlite(r) => r.get(i).map_err(Error::from),
            Row::Values(v) => {
                let value = v.get(i).ok_or_else(|| Error::Conversion(format!("no column {i}")))?;
                T::column_result(ValueRef::from(value)).map_err(|e| Error::Conversion(format!("column {i}: {e}")))
            }
        }
    }
}

impl Conn {
    /// The engine this connection talks to.
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs `sql` (one or more statements, no parameters).
    pub(crate) fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(c) => c.execute_batch(sql).map_err(Error::from),
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => c.batch(sql),
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub(crate) fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        match self {
            Conn::Sqlite(c) => {
                c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params.values())).map_err(Error::from)
            }
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => c.execute(sql, &params.values()),
        }
    }

    /// The first row of a query, read by `f` (`Error::NoRows` without one).
    pub(crate) fn query_row<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params.values()))?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)),
                    None => Err(Error::NoRows),
                }
            }
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => {
                let rows = c.query(sql, &params.values())?;
                f(&Row::Values(rows.first().ok_or(Error::NoRows)?))
            }
        }
    }

    /// A query whose rows are read by `f`, in order.
    pub(crate) fn query_map<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let mut out = Vec::new();
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params.values()))?;
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r)));
                }
            }
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => {
                for r in c.query(sql, &params.values())? {
                    out.push(f(&Row::Values(&r)));
                }
            }
        }
        Ok(out.into_iter())
    }

    /// A statement, prepared (and cached) on first use.
    pub(crate) fn prepare<'c>(&'c self, sql: &str) -> Result<Statement<'c>> {
        Ok(Statement { conn: self, sql: sql.to_owned() })
    }

    /// Same as [`prepare`](Self::prepare): every statement is cached.
    pub(crate) fn prepare_cached<'c>(&'c self, sql: &str) -> Result<Statement<'c>> {
        self.prepare(sql)
    }

    /// The id the last insert gave its row (SQLite's rowid; PostgreSQL's `lastval()`).
    pub(crate) fn last_insert_rowid(&self) -> i64 {
        match self {
            Conn::Sqlite(c) => c.last_insert_rowid(),
            #[cfg(feature = "postgres")]
            Conn::Postgres(_) => self.query_row("SELECT lastval()", (), |r| r.get(0)).unwrap_or(0),
        }
    }

    /// Begins a transaction that takes the write lock up front (SQLite's `IMMEDIATE`: a
    /// writer in another process makes this wait for it, not fail half-way).
    pub(crate) fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.execute_batch(match self.backend() {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        })?;
        Ok(Transaction { conn: self, done: Cell::new(false) })
    }
}

/// A statement of a connection.
pub(crate) struct Statement<'c> {
    conn: &'c Conn,
    sql: String,
}

impl Statement<'_> {
    pub(crate) fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        self.conn.execute(&self.sql, params)
    }

    pub(crate) fn query_row<T, P: Params>(&mut self, params: P, f: impl FnOnce(&Row<'_>) -> Result<T>) -> Result<T> {
        self.conn.query_row(&self.sql, params, f)
    }

    pub(crate) fn query_map<T, P: Params>(
        &mut self,
        params: P,
        f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        self.conn.query_map(&self.sql, params, f)
    }
}

/// A transaction: committed by [`commit`](Self::commit), rolled back when dropped.
pub(crate) struct Transaction<'c> {
    conn: &'c Conn,
    done: Cell<bool>,
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl Transaction<'_> {
    pub(crate) fn commit(self) -> Result<()> {
        self.done.set(true);
        self.conn.execute_batch("COMMIT")
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done.get() {
            // Nothing to do if it fails: the connection is broken, and so the transaction.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// A value as SQLite's dynamic types hold it (what PostgreSQL's columns are read into).
pub(crate) fn owned(v: &dyn ToSql) -> Result<Value> {
    use rusqlite::types::ToSqlOutput;
    Ok(match v.to_sql()? {
        ToSqlOutput::Borrowed(r) => r.into(),
        ToSqlOutput::Owned(v) => v,
        other => return Err(Error::Conversion(format!("unsupported parameter {other:?}"))),
    })
}
