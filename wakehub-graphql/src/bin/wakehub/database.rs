//! Where the lab lives: a SQLite file (one server per file, an advisory lock beside it) or a
//! PostgreSQL database (`--db postgres://…`: one active server at a time, holding a lease,
//! any others standing by to take over), and `wakehub migrate-store` from one to the other.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::Store;

/// Whether `--db` names a PostgreSQL database rather than a file.
pub(crate) fn is_url(db: &Path) -> bool {
    db.to_str().is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// `--db` as it may be shown: a URL's password hidden.
pub(crate) fn shown(db: &Path) -> String {
    let text = db.display().to_string();
    if !is_url(db) {
        return text;
    }
    let (scheme, rest) = text.split_once("://").unwrap_or(("", &text));
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            format!("{scheme}://{}:***@{host}", user.split(':').next().unwrap_or_default())
        }
        _ => text,
    }
}

/// WakeHub's own directory: `$XDG_DATA_HOME/wakehub` (`~/.local/share/wakehub`).
pub(crate) fn data_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .context("no --db given and neither XDG_DATA_HOME nor HOME is set")?;
    Ok(base.join("wakehub"))
}

/// `--db`, or `$XDG_DATA_HOME/wakehub/wakehub.db`.
pub(crate) fn db_path(db: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match db {
        Some(db) => Ok(db),
        None => Ok(data_dir()?.join("wakehub.db")),
    }
}

/// The directory whose files belong with the database (the master key, the plugin cache):
/// beside a file; WakeHub's own directory for PostgreSQL.
pub(crate) fn home_of(db: &Path) -> anyhow::Result<PathBuf> {
    if is_url(db) {
        return data_dir();
    }
    Ok(db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned())
}

/// Opens (creating) the store; the master key comes from `WAKEHUB_MASTER_KEY` or
/// `master.key` in [`home_of`] the database (created with mode 0600 on first use). Every
/// instance sharing a PostgreSQL database needs the same key.
pub(crate) fn open_store(db: &Path) -> anyhow::Result<Store> {
    open_with(db, key_of(db)?)
}

/// The master key of database `db`.
fn key_of(db: &Path) -> anyhow::Result<MasterKey> {
    let home = home_of(db)?;
    std::fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
    Ok(MasterKey::from_env_or_file(&home.join("master.key"))?)
}

fn open_with(db: &Path, key: MasterKey) -> anyhow::Result<Store> {
    if is_url(db) {
        let url = db.to_str().context("the database URL is not UTF-8")?;
        return Store::open_postgres(url, key).with_context(|| format!("cannot open {}", shown(db)));
    }
    let store = Store::open(db, key).with_context(|| format!("cannot open {}", db.display()))?;
    // The database holds every node's sealed credentials and the journal: its owner's only
    // (SQLite gives its -wal and -shm files the same mode).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(db, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {} to its owner", db.display()))?;
    Ok(store)
}

/// What makes this server the one running the database's engine, held while it runs.
pub(crate) enum Held {
    /// An advisory lock on `DB.lock` beside a SQLite file.
    File(#[allow(dead_code)] std::fs::File),
    /// The lease of a PostgreSQL database, renewed by a task.
    Lease { store: Store, instance: String, renew: tokio::task::JoinHandle<()> },
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Held::Lease { store, instance, renew } = self {
            renew.abort();
            // A clean stop: a standby may take over at once.
            if let Err(e) = store.release_lease(instance) {
                tracing::warn!("cannot give the lease up: {e}");
            }
        }
    }
}

/// Who asks for the database: the file's lock, or the PostgreSQL lease.
pub(crate) struct Claimant {
    db: PathBuf,
    store: Store,
    instance: String,
    lease: Duration,
    /// Where this instance's API answers, advertised to the others once it holds the lease.
    url: String,
}

impl Claimant {
    pub(crate) fn new(db: &Path, store: &Store, lease: Duration, url: String) -> Self {
        let instance = format!("{}:{}:{}", host_name(), std::process::id(), now_ms());
        Claimant { db: db.to_owned(), store: store.clone(), instance, lease, url }
    }

    /// The database now, if no other instance holds it: the file's lock (refused if another
    /// server holds it), or the PostgreSQL lease (`None` while another instance holds it).
    pub(crate) async fn try_claim(&self) -> anyhow::Result<Option<Held>> {
        if !is_url(&self.db) {
            return lock_file(&self.db).map(|f| Some(Held::File(f)));
        }
        let (s, i, ttl) = (self.store.clone(), self.instance.clone(), self.lease.as_millis() as i64);
        match store_run(&self.store, move || s.claim_lease(&i, ttl)).await? {
            Ok(()) => self.held().await.map(Some),
            Err((who, _)) => {
                tracing::info!(holder = %who, "another instance leads this database: following it");
                Ok(None)
            }
        }
    }

    /// The PostgreSQL lease, once the instance holding it lets it run out (it stopped, was
    /// killed or cut off).
    pub(crate) async fn wait(self) -> anyhow::Result<Held> {
        let ttl = self.lease.as_millis() as i64;
        loop {
            let (s, i) = (self.store.clone(), self.instance.clone());
            match store_run(&self.store, move || s.claim_lease(&i, ttl)).await {
                Ok(Ok(())) => return self.held().await,
                Ok(Err((_, until))) => {
                    let wait = (until - now_ms()).clamp(100, ttl.max(100) / 3);
                    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                }
                Err(e) => {
                    tracing::warn!("cannot ask for the lease (trying again): {e}");
                    tokio::time::sleep(self.lease / 3).await;
                }
            }
        }
    }

    /// The lease is ours: advertised, and renewed by a task every third of its time. An
    /// instance that cannot renew it before it runs out stops at once (exit 3): another
    /// may have taken over.
    async fn held(&self) -> anyhow::Result<Held> {
        let (s, i, u) = (self.store.clone(), self.instance.clone(), self.url.clone());
        store_run(&self.store, move || s.advertise(&i, &u)).await?;
        tracing::info!(instance = %self.instance, url = %self.url, "this instance holds the database's lease");
        let (lease, ttl) = (self.lease, self.lease.as_millis() as i64);
        let renew = {
            let (store, instance) = (self.store.clone(), self.instance.clone());
            tokio::spawn(async move {
                let mut held_until = now_ms() + ttl;
                loop {
                    tokio::time::sleep(lease / 3).await;
                    let (s, i) = (store.clone(), instance.clone());
                    match store_run(&store, move || s.claim_lease(&i, ttl)).await {
                        Ok(Ok(())) => held_until = now_ms() + ttl,
                        Ok(Err((who, _))) => lost(&format!("instance {who} took the lease over")),
                        Err(e) if now_ms() + lease.as_millis() as i64 / 3 >= held_until => {
                            lost(&format!("the lease could not be renewed before it ran out: {e}"))
                        }
                        Err(e) => tracing::warn!("cannot renew the lease (trying again): {e}"),
                    }
                }
            })
        };
        Ok(Held::Lease { store: self.store.clone(), instance: self.instance.clone(), renew })
    }
}

/// Stops the process: another instance may run the engine now, two never may.
fn lost(why: &str) -> ! {
    tracing::error!("stopping: {why}");
    eprintln!("error: stopping: {why}");
    std::process::exit(3)
}

async fn store_run<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce() -> Result<T, wakehub_core::store::StoreError> + Send + 'static,
) -> anyhow::Result<T> {
    Ok(store.run(move |_| f()).await?)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "host".into())
}

/// One server per database file: an advisory lock on `DB.lock`, held while the server runs
/// (the command line's one-shot writes, such as `token create`, do not take it).
fn lock_file(db: &Path) -> anyhow::Result<std::fs::File> {
    let path = db.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another WakeHub server is already using {} (it holds {}); stop it first, or give this one its own --db",
            db.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// `wakehub migrate-store FROM TO`: copies the lab of database `from` (a SQLite file) into
/// the empty database `to` (`postgres://…`), all or nothing. Exit 0 once copied, 1 when
/// refused (`to` holds a lab, a database cannot be opened).
pub(crate) fn migrate_store(from: &Path, to: &Path) -> anyhow::Result<ExitCode> {
    if !from.exists() {
        eprintln!("error: {} does not exist", from.display());
        return Ok(ExitCode::from(1));
    }
    // The copy keeps the credentials sealed: the target takes the source's key.
    let source = open_store(from)?;
    let target = open_with(to, key_of(from)?)?;
    match source.copy_into(&target) {
        Ok(rows) => {
            println!("copied {rows} rows from {} into {}", from.display(), shown(to));
            if std::env::var_os(wakehub_core::secrets::MASTER_KEY_ENV).is_none() {
                let (from_key, to_key) = (home_of(from)?.join("master.key"), home_of(to)?.join("master.key"));
                if from_key != to_key {
                    println!(
                        "serve it with the same master key: set {} or copy {} to {}",
                        wakehub_core::secrets::MASTER_KEY_ENV,
                        from_key.display(),
                        to_key.display()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e} ({})", e.code().as_str());
            Ok(ExitCode::from(1))
        }
    }
}
