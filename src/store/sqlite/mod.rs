//! The SQLite backend: one file in WAL mode, the embedded default.
//!
//! The SQL store ([`super::sql`]) in SQLite's [`SqliteDialect`]: one writer
//! connection (`BEGIN IMMEDIATE`: a unit of work holds the single write lock)
//! and a small pool of readers; this module opens the file (options, WAL,
//! the migrations under a lock, a background checkpoint task) and words
//! SQLite's errors. Statements SQLite words its own way are in `queries/`;
//! every instant is a bound parameter, never SQL `now()`. One worker per
//! file: a second process may read and run operator commands, but only one
//! runs `spindown run` (its `<db>.worker.lock`).

mod dialect;

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Row, SqlitePool};

pub use dialect::SqliteDialect;

use super::{Fault, SqlStore, StoreError};
use crate::named::names;

names! {
    /// How hard SQLite tries to keep a commit across power loss.
    pub Durability ("synchronous setting") {
        /// `synchronous = FULL`: every commit is fsynced (survives power loss).
        Full = "full",
        /// `synchronous = NORMAL`: the WAL is fsynced at checkpoints only; a
        /// process crash (SIGKILL) loses nothing, a power loss may lose the last commits.
        Normal = "normal",
        /// `synchronous = OFF`: nothing is fsynced (a temporary database).
        Off = "off",
    }
}

/// Options for [`SqliteStore::open`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub durability: Durability,
    /// How long a writer waits for another process holding the write lock.
    pub busy_timeout: Duration,
    /// SQLite page cache per connection, MiB.
    pub cache_mib: u32,
    /// Memory-mapped reads per connection, MiB (0: none).
    pub mmap_mib: u32,
    /// Reader connections (besides the one writer).
    pub readers: u32,
    /// SQLite's own checkpoint threshold, in pages of 4 KiB. A background task
    /// checkpoints the WAL every 250 ms off the write path; this backstop makes
    /// the committing writer checkpoint itself once the WAL passes it.
    pub wal_autocheckpoint: u32,
}

impl SqliteOptions {
    /// The same options tuned for a bulk load (`replay`, `ingest`): the writer
    /// lets the WAL grow to ~200 MB before it checkpoints on its own.
    pub fn bulk(self) -> SqliteOptions {
        SqliteOptions { wal_autocheckpoint: 50_000, ..self }
    }

    /// For a resident engine (`replay`), which keeps what it works on in its
    /// own memory and mostly writes: small caches, no memory map, one reader,
    /// so that the process's memory does not grow with the database.
    pub fn lean(self) -> SqliteOptions {
        SqliteOptions { cache_mib: 8, mmap_mib: 0, readers: 1, ..self }
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            cache_mib: 64,
            mmap_mib: 64,
            readers: 4,
            wal_autocheckpoint: 10_000,
        }
    }
}

/// A spindown database in one SQLite file: the SQL store in SQLite's dialect.
pub type SqliteStore = SqlStore<SqliteDialect>;

/// The background WAL checkpoint task; stopped when the last handle goes.
#[derive(Debug)]
pub(crate) struct Checkpointer(tokio::task::JoinHandle<()>);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Checkpointer {
    /// Copy committed WAL pages into the database file every 250 ms, on a
    /// reader connection: a `PASSIVE` checkpoint never blocks the writer, and
    /// the writer's commits do not stall on an automatic checkpoint.
    fn start(reader: SqlitePool) -> Checkpointer {
        Checkpointer(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if reader.is_closed() {
                    return;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&reader).await {
                    tracing::debug!("background checkpoint: {e}");
                }
            }
        }))
    }
}

/// When opening failed: is it because nothing there may be written? SQLite
/// says only "unable to open database file" for a WAL database on a
/// read-only file system.
fn read_only_probe(path: &Path) -> Option<StoreError> {
    let ro = |why: std::io::Error| StoreError::ReadOnly { path: path.display().to_string(), why: why.to_string() };
    if path.exists() {
        if let Err(e) = std::fs::OpenOptions::new().append(true).open(path) {
            return Some(ro(e));
        }
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match tempfile::NamedTempFile::new_in(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Some(ro(e)),
        _ => None,
    }
}

/// Two processes opening one new file at once (a worker and its console, or
/// `run` started twice) would both run the migrations, and the second would
/// fail on `table … already exists` (or find the file locked while the other
/// turns WAL on): SQLite has no lock sqlx's migrator can take. So creating
/// and migrating run under an advisory lock on `<db>.migrate.lock`,
/// waited for (the kernel drops it with its holder, so a killed process never
/// leaves it held). Where the lock file cannot be created (a read-only
/// directory) migrating goes on without it and fails, if it must, for its own
/// reason.
async fn migration_lock(path: &Path) -> Option<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".migrate.lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&name).ok()?;
    let started = std::time::Instant::now();
    let mut warned = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Some(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                if !warned && started.elapsed() > Duration::from_secs(10) {
                    tracing::warn!(lock = %Path::new(&name).display(), "waiting for another process to finish migrating the database");
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(std::fs::TryLockError::Error(_)) => return None,
        }
    }
}

/// What an operator needs to hear about a SQLite failure, then SQLite's words.
pub(crate) fn describe(e: &sqlx::Error) -> (String, Option<Fault>) {
    let code = e.as_database_error().and_then(|d| d.code()).and_then(|c| c.parse::<i64>().ok());
    let (what, fault) = match code.map(|c| c & 0xff) {
        Some(13) => ("the disk is full", None),
        Some(8) => ("the database file or its directory is read-only", None),
        Some(5) | Some(6) => ("the database is locked by another process (waited the busy timeout)", Some(Fault::Busy)),
        Some(14) => ("cannot open the database file", None),
        Some(10) => ("disk I/O error", None),
        Some(11) | Some(26) => ("the database file is corrupt or not a database", None),
        _ => return (e.to_string(), None),
    };
    let detail = e.as_database_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
    (format!("{what} ({detail})"), fault)
}

impl SqliteStore {
    /// How every connection is opened: WAL, the chosen `synchronous`, a busy
    /// timeout, a page cache, memory-mapped reads, in-memory temp storage.
    fn connect_options(path: &Path, options: &SqliteOptions) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
                Durability::Off => SqliteSynchronous::Off,
            })
            .busy_timeout(options.busy_timeout)
            .foreign_keys(false)
            .pragma("cache_size", format!("-{}", options.cache_mib.max(1) as u64 * 1024))
            .pragma("mmap_size", (options.mmap_mib as u64 * 1024 * 1024).to_string())
            .pragma("temp_store", "MEMORY")
            .pragma("wal_autocheckpoint", options.wal_autocheckpoint.to_string())
            // A slow checkpoint under load is not the operator's news.
            .disable_statement_logging()
    }

    /// Open (creating if missing) and migrate the database at `path`.
    ///
    /// # Errors
    ///
    /// The file cannot be opened or written (the error says why: read-only,
    /// full, locked, not a database), or a migration fails.
    pub async fn open(path: &Path, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        match SqliteStore::open_inner(path, options).await {
            Ok(s) => Ok(s),
            Err(e) => Err(read_only_probe(path).unwrap_or(e)),
        }
    }

    async fn open_inner(path: &Path, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        let open_err = |error: sqlx::Error| {
            let (message, fault) = describe(&error);
            StoreError::Open { path: path.display().to_string(), message, fault }
        };
        let connect = SqliteStore::connect_options(path, options);
        // Creating the file, turning WAL on and migrating, one process at a time.
        let migrating = migration_lock(path).await;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(3600))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect.clone())
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await.map_err(|e| StoreError::Migrate(e.to_string()))?;
        drop(migrating);
        let reader = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .connect_with(connect)
            .await
            .map_err(open_err)?;
        let checkpointer = Checkpointer::start(reader.clone());
        let dialect = SqliteDialect { path: path.to_path_buf(), _checkpointer: checkpointer };
        Ok(SqlStore::new(writer, reader, dialect))
    }

    pub fn path(&self) -> &Path {
        &self.dialect().path
    }

    /// `PRAGMA integrity_check` — `"ok"` for a healthy file.
    ///
    /// # Errors
    ///
    /// The file cannot be read.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let rows = sqlx::query("PRAGMA integrity_check").fetch_all(&self.reader).await?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect::<Vec<_>>().join("\n"))
    }
}

include!(concat!(env!("OUT_DIR"), "/sqlite_queries.rs"));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn every_fixed_statement_prepares_against_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("q.db"), &SqliteOptions::default()).await.unwrap();
        for (name, sql) in QUERIES {
            let explain = format!("EXPLAIN {sql}");
            let mut conn = store.reader.acquire().await.unwrap();
            // Preparing checks every table, column and function the statement names.
            let r = sqlx::query(&explain).fetch_all(&mut *conn).await;
            if let Err(e) = r {
                let msg = e.to_string();
                assert!(!msg.contains("no such") && !msg.contains("syntax error"), "{name}: {msg}");
            }
        }
        store.close().await;
    }
}
