//! A PostgreSQL connection for the store's synchronous SQL interface ([`super::db`]).
//!
//! tokio-postgres drives the socket on a thread of its own (a one-thread runtime): the
//! store's calls hand it requests and wait for the answers without entering any runtime,
//! so they may be made from the blocking pool, the journal writer's thread or a test alike.
//! A connection that broke (the server restarted) is opened again on the next call; the
//! transaction it was in is lost, as it would be on SQLite after a crash. A URL with
//! `sslmode=require` connects over TLS, the server's certificate verified ([`Target`]).

use std::cell::RefCell;
use std::collections::HashMap;

use bytes::BytesMut;
use rusqlite::ToSql;
use rusqlite::types::Value;
use tokio_postgres::types::{IsNull, ToSql as PgToSql, Type, to_sql_checked};

use super::db::{Error, Result, owned};

/// Notifications received on a connection: `(channel, payload)`.
pub(crate) type Notices = tokio::sync::broadcast::Sender<(String, String)>;

/// How long a broken connection is tried again before its caller is told.
const REOPEN_FOR: std::time::Duration = std::time::Duration::from_secs(15);

struct Live {
    client: tokio_postgres::Client,
    statements: HashMap<String, tokio_postgres::Statement>,
}

/// One PostgreSQL connection, opened again when it broke.
pub(crate) struct PgConn {
    url: String,
    live: RefCell<Option<Live>>,
    notices: Notices,
}

fn pg(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(d) => Error::Postgres(format!("{}: {}", d.code().code(), d.message())),
        None => match std::error::Error::source(&e) {
            Some(cause) => Error::Postgres(format!("{e}: {cause}")),
            None => Error::Postgres(e.to_string()),
        },
    }
}

impl PgConn {
    /// Connects to `url` (`postgres://user:password@host:port/db` or key=value pairs).
    pub(crate) fn connect(url: &str) -> Result<PgConn> {
        let conn = PgConn { url: url.to_owned(), live: RefCell::new(None), notices: Notices::new(256) };
        // The first time, an error is said at once (a wrong address, password, database).
        *conn.live.borrow_mut() = Some(conn.open().map_err(|(e, _)| e)?);
        Ok(conn)
    }

    /// A new connection; its error says whether trying again may help (the server is not
    /// reachable or starting up, rather than refusing who we are).
    fn open(&self) -> std::result::Result<Live, (Error, bool)> {
        let fatal = |e: Error| (e, false);
        let target = Target::parse(&self.url).map_err(fatal)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let notices = self.notices.clone();
        std::thread::Builder::new()
            .name("wakehub-postgres".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(r) => r,
                    Err(e) => return drop(tx.send(Err((Error::Postgres(e.to_string()), false)))),
                };
                runtime.block_on(async move {
                    match target.tls {
                        Some(tls) => drive(target.config, tls, tx, notices).await,
                        None => drive(target.config, tokio_postgres::NoTls, tx, notices).await,
                    }
                });
            })
            .map_err(|e| fatal(Error::Postgres(e.to_string())))?;
        let client = rx.recv().map_err(|_| fatal(Error::Postgres("the connection thread ended".into())))??;
        Ok(Live { client, statements: HashMap::new() })
    }

    /// The live connection, opened again if it broke: a server restarting is waited for
    /// (up to [`REOPEN_FOR`]), so the writes that follow an outage (a cascade's end) land.
    fn live(&self) -> Result<std::cell::RefMut<'_, Live>> {
        let mut live = self.live.borrow_mut();
        if live.as_ref().is_none_or(|l| l.client.is_closed()) {
            *live = None;
            let since = std::time::Instant::now();
            loop {
                match self.open() {
                    Ok(l) => {
                        if since.elapsed() > std::time::Duration::from_millis(500) {
                            tracing::info!("the PostgreSQL connection is back after {:?}", since.elapsed());
                        }
                        *live = Some(l);
                        break;
                    }
                    Err((e, again)) if !again || since.elapsed() >= REOPEN_FOR => return Err(e),
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
                }
            }
        }
        Ok(std::cell::RefMut::map(live, |l| l.as_mut().expect("just opened")))
    }

    /// Where it connects.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The notifications this connection receives from now on (after `LISTEN`), across its
    /// reconnections.
    pub(crate) fn notices(&self) -> tokio::sync::broadcast::Receiver<(String, String)> {
        self.notices.subscribe()
    }

    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        let live = self.live()?;
        futures::executor::block_on(live.client.batch_execute(sql)).map_err(pg)
    }

    fn statement(&self, live: &mut Live, sql: &str) -> Result<tokio_postgres::Statement> {
        if let Some(s) = live.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = futures::executor::block_on(live.client.prepare(&translate(sql))).map_err(|e| match pg(e) {
            // A statement PostgreSQL refuses is a bug of ours: say which.
            Error::Postgres(m) => {
                Error::Postgres(format!("{m} (in `{}`)", sql.split_whitespace().collect::<Vec<_>>().join(" ")))
            }
            e => e,
        })?;
        live.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    fn bind(params: &[&dyn ToSql]) -> Result<Vec<Bound>> {
        params.iter().map(|p| owned(*p).map(Bound)).collect()
    }

    pub(crate) fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize> {
        let mut live = self.live()?;
        let stmt = self.statement(&mut live, sql)?;
        let values = Self::bind(params)?;
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        futures::executor::block_on(live.client.execute(&stmt, &refs)).map(|n| n as usize).map_err(pg)
    }

    pub(crate) fn query(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Vec<Value>>> {
        let mut live = self.live()?;
        let stmt = self.statement(&mut live, sql)?;
        let values = Self::bind(params)?;
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        let rows = futures::executor::block_on(live.client.query(&stmt, &refs)).map_err(pg)?;
        rows.iter().map(decode).collect()
    }
}

/// Where and how to connect: the URL's settings, and TLS when it requires it.
struct Target {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Target {
    /// Parses a URL (`postgres://…?…`) or key=value pairs. `sslmode=require` (or libpq's
    /// `verify-full` / `verify-ca`) means TLS, the server's certificate verified — chain and
    /// host name — against `sslrootcert=FILE` (PEM certificate authorities), else the
    /// system's; never TLS that trusts anything. Otherwise the connection is plain.
    fn parse(url: &str) -> Result<Target> {
        let (url, root) = settings(url);
        let config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| Error::Postgres(format!("bad database URL: {e}")))?;
        if config.get_ssl_mode() != tokio_postgres::config::SslMode::Require {
            if root.is_some() {
                return Err(Error::Postgres("bad database URL: `sslrootcert` needs `sslmode=require`".into()));
            }
            return Ok(Target { config, tls: None });
        }
        let mut roots = rustls::RootCertStore::empty();
        match &root {
            Some(file) => {
                use rustls::pki_types::pem::PemObject;
                let bad = |e: String| Error::Postgres(format!("sslrootcert {file}: {e}"));
                let certs = rustls::pki_types::CertificateDer::pem_file_iter(file)
                    .map_err(|e| bad(e.to_string()))?
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| bad(e.to_string()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(bad("no certificate in it".into()));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(Error::Postgres(
                        "sslmode=require: no system certificate authority could be read (give sslrootcert=FILE)".into(),
                    ));
                }
            }
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Postgres(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Target { config, tls: Some(tokio_postgres_rustls::MakeRustlsConnect::new(tls)) })
    }
}

/// `url` without WakeHub's own setting `sslrootcert` (which tokio-postgres does not know),
/// libpq's verifying `sslmode`s spelled `require` (which verifies here), and that file.
fn settings(url: &str) -> (String, Option<String>) {
    let mut root = None;
    let mut keep = |pair: &str| -> Option<String> {
        match pair.split_once('=') {
            Some(("sslrootcert", file)) => {
                root = Some(file.to_owned());
                None
            }
            Some(("sslmode", "verify-full" | "verify-ca")) => Some("sslmode=require".to_owned()),
            _ => Some(pair.to_owned()),
        }
    };
    let url = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            Some((base, query)) => {
                let query: Vec<String> = query.split('&').filter_map(&mut keep).collect();
                if query.is_empty() { base.to_owned() } else { format!("{base}?{}", query.join("&")) }
            }
            None => url.to_owned(),
        }
    } else {
        url.split_whitespace().filter_map(&mut keep).collect::<Vec<_>>().join(" ")
    };
    (url, root)
}

/// Connects with `tls`, hands the client over, then drives the connection until it
/// closes, passing notifications on.
async fn drive<T>(
    config: tokio_postgres::Config,
    tls: T,
    tx: std::sync::mpsc::Sender<std::result::Result<tokio_postgres::Client, (Error, bool)>>,
    notices: Notices,
) where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send,
{
    let (client, mut connection) = match config.connect(tls).await {
        Ok(c) => c,
        Err(e) => {
            // Unreachable, or starting up (57P03): worth another try. A TLS failure (a
            // certificate refused) is not.
            let tls = std::error::Error::source(&e)
                .is_some_and(|c| c.is::<rustls::Error>() || c.to_string().contains("certificate"));
            let again = !tls && e.as_db_error().is_none_or(|d| d.code().code().starts_with("57P"));
            return drop(tx.send(Err((pg(e), again))));
        }
    };
    let _ = tx.send(Ok(client));
    loop {
        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                let _ = notices.send((n.channel().to_owned(), n.payload().to_owned()));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return tracing::warn!("PostgreSQL connection ended: {e}"),
            None => return,
        }
    }
}

/// A row's columns as SQLite values, by their PostgreSQL types.
fn decode(row: &tokio_postgres::Row) -> Result<Vec<Value>> {
    let bad = |i: usize, e: Box<dyn std::error::Error + Sync + Send>| Error::Conversion(format!("column {i}: {e}"));
    (0..row.len())
        .map(|i| {
            let ty = row.columns()[i].type_();
            Ok(match *ty {
                Type::BOOL => row.try_get::<_, Option<bool>>(i).map(|v| v.map(|b| Value::Integer(b.into()))),
                Type::INT2 => row.try_get::<_, Option<i16>>(i).map(|v| v.map(|n| Value::Integer(n.into()))),
                Type::INT4 => row.try_get::<_, Option<i32>>(i).map(|v| v.map(|n| Value::Integer(n.into()))),
                Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Integer)),
                Type::OID => row.try_get::<_, Option<u32>>(i).map(|v| v.map(|n| Value::Integer(n.into()))),
                Type::FLOAT4 => row.try_get::<_, Option<f32>>(i).map(|v| v.map(|n| Value::Real(n.into()))),
                Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map(|v| v.map(Value::Real)),
                Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i).map(|v| v.map(Value::Blob)),
                _ => row.try_get::<_, Option<String>>(i).map(|v| v.map(Value::Text)),
            }
            .map_err(|e| bad(i, e.into()))?
            .unwrap_or(Value::Null))
        })
        .collect()
}

/// A parameter, encoded as the type PostgreSQL inferred for it.
#[derive(Debug)]
struct Bound(Value);

impl tokio_postgres::types::ToSql for Bound {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let mismatch = || format!("a {} parameter cannot be given {:?}", ty.name(), self.0).into();
        match (&self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Integer(n), &Type::INT8) => PgToSql::to_sql(&n, ty, out),
            (Value::Integer(n), &Type::INT4) => PgToSql::to_sql(&i32::try_from(*n)?, ty, out),
            (Value::Integer(n), &Type::INT2) => PgToSql::to_sql(&i16::try_from(*n)?, ty, out),
            (Value::Integer(n), &Type::BOOL) => PgToSql::to_sql(&(*n != 0), ty, out),
            (Value::Integer(n), &Type::FLOAT8) => PgToSql::to_sql(&(*n as f64), ty, out),
            (Value::Integer(n), &Type::FLOAT4) => PgToSql::to_sql(&(*n as f32), ty, out),
            (Value::Integer(n), &Type::TEXT | &Type::VARCHAR | &Type::UNKNOWN) => {
                PgToSql::to_sql(&n.to_string(), ty, out)
            }
            (Value::Real(f), &Type::FLOAT8) => PgToSql::to_sql(&f, ty, out),
            (Value::Real(f), &Type::FLOAT4) => PgToSql::to_sql(&(*f as f32), ty, out),
            (Value::Real(f), &Type::TEXT | &Type::VARCHAR | &Type::UNKNOWN) => PgToSql::to_sql(&f.to_string(), ty, out),
            (Value::Text(s), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME | &Type::UNKNOWN) => {
                PgToSql::to_sql(s, ty, out)
            }
            (Value::Text(s), &Type::INT8) => PgToSql::to_sql(&s.parse::<i64>().map_err(|_| mismatch())?, ty, out),
            (Value::Text(s), &Type::BYTEA) => PgToSql::to_sql(&s.as_bytes(), ty, out),
            (Value::Blob(b), &Type::BYTEA) => PgToSql::to_sql(&b.as_slice(), ty, out),
            _ => Err(mismatch()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// SQLite's SQL as PostgreSQL's: numbered parameters `?N` become `$N` (a bare `?` takes the
/// next number), blob literals `x'…'` become `'\x…'::bytea`; quoted text is left alone.
pub(crate) fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut next = 1;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                out.push(c);
                for q in chars.by_ref() {
                    out.push(q);
                    if q == '\'' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    digits = next.to_string();
                }
                next = digits.parse::<usize>().unwrap_or(next) + 1;
                out.push('$');
                out.push_str(&digits);
            }
            'x' | 'X'
                if chars.peek() == Some(&'\'')
                    && !out.chars().last().is_some_and(|p| p.is_ascii_alphanumeric() || p == '_') =>
            {
                chars.next();
                out.push_str("'\\x");
                for q in chars.by_ref() {
                    out.push(q);
                    if q == '\'' {
                        break;
                    }
                }
                out.push_str("::bytea");
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Target, settings, translate};

    #[test]
    fn wakehubs_own_tls_settings_are_taken_out_of_the_url() {
        let (url, root) = settings("postgres://u@h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x");
        assert_eq!(url, "postgres://u@h/db?sslmode=require&application_name=x");
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        let (url, root) = settings("host=h user=u sslrootcert=/ca.pem sslmode=verify-ca");
        assert_eq!(url, "host=h user=u sslmode=require");
        assert_eq!(root.as_deref(), Some("/ca.pem"));
        assert_eq!(settings("postgres://u@h/db?sslrootcert=/ca.pem").0, "postgres://u@h/db");
        assert_eq!(settings("postgres://u@h/db"), ("postgres://u@h/db".to_owned(), None));
        assert!(Target::parse("postgres://u@h/db?sslrootcert=/ca.pem").is_err(), "a root without TLS");
        assert!(Target::parse("postgres://u@h/db?sslmode=require&sslrootcert=/nonexistent.pem").is_err());
        assert!(Target::parse("postgres://u@h/db").unwrap().tls.is_none());
    }

    #[test]
    fn sqlite_sql_is_rewritten_for_postgres() {
        assert_eq!(translate("SELECT a FROM t WHERE b = ?1 AND c = ?12"), "SELECT a FROM t WHERE b = $1 AND c = $12");
        assert_eq!(translate("VALUES (?, ?)"), "VALUES ($1, $2)");
        assert_eq!(translate("SELECT '?1', x'' , index"), "SELECT '?1', '\\x'::bytea , index");
        assert_eq!(translate("SELECT max(x'00ff')"), "SELECT max('\\x00ff'::bytea)");
    }
}
