//! Opening the database a command works on, and the things every command reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use spindown::clock::SystemClock;
use spindown::engine::{Engine, EngineOptions};
use spindown::meeting::{MeetingId, Policy};
use spindown::store::postgres::{self, PgOptions, PgStore};
use spindown::store::sqlite::{Durability, SqliteOptions, SqliteStore};
use spindown::store::{Store, StoreError};
use spindown::time::Span;
use spindown::worker;

use crate::cli::{Cli, PolicyArg};

/// The database file when `--db` (or `SPINDOWN_DB`) is not given.
pub const DEFAULT_DB: &str = "spindown.db";

/// What `--db` names: a SQLite file, or a PostgreSQL database.
#[derive(Debug, Clone)]
pub enum Target {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Target {
    /// For messages: the path, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Target::Sqlite(p) => p.display().to_string(),
            Target::Postgres(url) => postgres::redact(url),
        }
    }
}

/// The database the command line names (or the default file).
pub fn target(cli: &Cli) -> Target {
    match &cli.db {
        Some(db) if db.to_str().is_some_and(postgres::is_url) => {
            Target::Postgres(db.to_str().expect("checked").to_string())
        }
        Some(db) => Target::Sqlite(db.clone()),
        None => Target::Sqlite(PathBuf::from(DEFAULT_DB)),
    }
}

pub fn options(cli: &Cli) -> SqliteOptions {
    SqliteOptions { durability: cli.synchronous.unwrap_or(Durability::Full), ..SqliteOptions::default() }
}

/// Where a command pokes a running worker after changing the database (a
/// socket next to a SQLite file; `None` for PostgreSQL, whose workers poll).
pub fn wake_socket(cli: &Cli) -> Option<PathBuf> {
    match target(cli) {
        Target::Sqlite(p) => Some(worker::wake_socket_for(&p)),
        Target::Postgres(_) => None,
    }
}

/// Wake the running workers: the socket next to a SQLite file, or a
/// NOTIFY to every worker on a PostgreSQL database (a hint; they also poll).
pub async fn poke(cli: &Cli, store: &dyn Store) {
    if let Some(socket) = wake_socket(cli) {
        worker::poke(&socket);
    }
    if let Err(e) = store.notify().await {
        tracing::warn!("could not wake the workers ({e}); they will notice within a second");
    }
}

/// Open (creating if missing) the database.
pub async fn open(cli: &Cli, options: &SqliteOptions) -> Result<Arc<dyn Store>> {
    Ok(open_with(cli, options, &PgOptions::default()).await?)
}

/// [`open`] with PostgreSQL's connection settings (its `application_name`
/// names this process in `pg_stat_activity`); the store's own error, so a
/// caller can tell a server that is down from one that refuses.
pub async fn open_with(cli: &Cli, options: &SqliteOptions, pg: &PgOptions) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = match &target(cli) {
        Target::Sqlite(path) => Arc::new(SqliteStore::open(path, options).await?),
        // The error names the database (without its password).
        Target::Postgres(url) => Arc::new(PgStore::open(url, pg).await?),
    };
    Ok(store)
}

/// An engine for an operator command: it fires only what the workers' stream
/// checkpoints say the stream was read past (holding a timer at most the
/// default `timer_hold_max`).
pub async fn operator_engine(store: Arc<dyn Store>, policy: Policy) -> Result<spindown::operate::MeetingEngine> {
    let engine = Engine::start(store, policy, Arc::new(SystemClock), EngineOptions::default()).await?;
    let hold = spindown::config::WorkerConfig::default().timer_hold_max()?;
    engine.gate_from_checkpoints(Span::from_micros(hold.as_micros() as i64));
    Ok(engine)
}

/// Read-only commands must not create a database by accident.
pub async fn open_existing(cli: &Cli) -> Result<Arc<dyn Store>> {
    if let Target::Sqlite(path) = target(cli) {
        if !path.exists() {
            bail!("no database at {} (use --db PATH, or run `spindown ingest`/`run` first)", path.display());
        }
    }
    open(cli, &options(cli)).await
}

pub fn load_policy(arg: &PolicyArg) -> Result<Policy> {
    match &arg.policy {
        Some(p) => Policy::load(p).with_context(|| format!("policy {}", p.display())),
        None => Ok(Policy::default()),
    }
}

pub fn meeting_id(s: &str) -> Result<MeetingId> {
    Ok(s.parse::<MeetingId>()?)
}

/// An input file (or `-` for standard input), and the name its records' origins carry.
pub fn open_input(path: &Path) -> Result<(Box<dyn std::io::Read + Send>, String)> {
    if path == Path::new("-") {
        return Ok((Box::new(std::io::stdin()), "stdin".into()));
    }
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    Ok((Box::new(f), name))
}
