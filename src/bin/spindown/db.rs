//! Opening the database a command works on, and the things every command reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use spindown::meeting::{MeetingId, Policy};
use spindown::store::sqlite::{Durability, SqliteOptions, SqliteStore};

use crate::cli::{Cli, PolicyArg};

/// The database file when `--db` (or `SPINDOWN_DB`) is not given.
pub const DEFAULT_DB: &str = "spindown.db";

/// The database path the command line names (or the default).
pub fn path(cli: &Cli) -> PathBuf {
    cli.db.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DB))
}

pub fn options(cli: &Cli) -> SqliteOptions {
    SqliteOptions { durability: cli.synchronous.unwrap_or(Durability::Full), ..SqliteOptions::default() }
}

/// Open (creating if missing) the database.
pub async fn open(cli: &Cli, options: &SqliteOptions) -> Result<Arc<SqliteStore>> {
    let path = path(cli);
    Ok(Arc::new(SqliteStore::open(&path, options).await.with_context(|| format!("opening {}", path.display()))?))
}

/// Read-only commands must not create a database by accident.
pub async fn open_existing(cli: &Cli) -> Result<Arc<SqliteStore>> {
    let path = path(cli);
    if !path.exists() {
        bail!("no database at {} (use --db PATH, or run `spindown ingest`/`run` first)", path.display());
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
