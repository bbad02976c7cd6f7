//! `spindown replay FILE`: the engine on a virtual clock; every meeting's outcome out.

use spindown::inspect::MeetingStore;
use spindown::meeting::MeetingFilter;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;
use spindown::clock::ManualClock;
use spindown::engine::{Engine, EngineOptions};
use spindown::inspect::{self, for_each_meeting};
use spindown::source::feed::LineFeed;
use spindown::source::replay::{replay, ReplayOptions, ReplaySummary};
use spindown::store::postgres::{PgOptions, PgStore};
use spindown::store::sqlite::{Durability, SqliteOptions, SqliteStore};
use spindown::store::WriteCounts;
use spindown::store::{Store, StoreError};
use spindown::time::Timestamp;

use crate::cli::{Cli, ReplayArgs};
use crate::{db, output, render};

/// Where a replay's time went, for `--profile` (the benchmark reads it).
#[derive(Serialize)]
struct Profile<'a> {
    summary: &'a ReplaySummary,
    output_secs: f64,
    total_secs: f64,
    rows: WriteCounts,
    /// SQLite's setting (`None` on PostgreSQL).
    synchronous: Option<Durability>,
    /// The process's peak resident set (`VmHWM`), MiB; `None` where /proc has none.
    peak_rss_mib: Option<f64>,
}

/// Beside a database a replay is writing: a replay keeps live meetings in
/// memory and writes each once it has ended (or at the end), so a replay
/// that did not finish leaves a database that is not what the input says.
fn unfinished_marker(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".replaying");
    PathBuf::from(p)
}

/// The database a replay writes, and how to read its write counts.
enum ReplayStore {
    Sqlite(Arc<SqliteStore>, PathBuf, Durability),
    Postgres(Arc<PgStore>),
}

impl ReplayStore {
    fn store(&self) -> Arc<dyn Store> {
        match self {
            ReplayStore::Sqlite(s, ..) => s.clone(),
            ReplayStore::Postgres(s) => s.clone(),
        }
    }

    fn write_counts(&self) -> WriteCounts {
        match self {
            ReplayStore::Sqlite(s, ..) => s.write_counts(),
            ReplayStore::Postgres(s) => s.write_counts(),
        }
    }
}

pub async fn run(cli: &Cli, args: &ReplayArgs) -> Result<()> {
    let started = Instant::now();
    let policy = db::load_policy(&args.policy)?;
    let (input, name) = db::open_input(&args.file)?;
    // A replay needs a database only for its duration unless one is named.
    let temp;
    let target = match (&cli.db, db::target(cli)) {
        (Some(_), t) => t,
        (None, _) => {
            temp = tempfile::tempdir().context("creating a temporary directory")?;
            db::Target::Sqlite(temp.path().join("replay.db"))
        }
    };
    let replay_store = match &target {
        db::Target::Sqlite(path) => {
            let durability =
                cli.synchronous.unwrap_or(if cli.db.is_some() { Durability::Normal } else { Durability::Off });
            ReplayStore::Sqlite(open_sqlite(path, durability, &name).await?, path.clone(), durability)
        }
        db::Target::Postgres(url) => {
            let pg = PgStore::open(url, &PgOptions::default()).await?;
            ensure!(
                pg.counts().await?.meetings == 0,
                "{} already holds meetings: a replay into PostgreSQL needs an empty database",
                target.describe()
            );
            ReplayStore::Postgres(Arc::new(pg))
        }
    };
    let store = replay_store.store();
    // A replay on an existing database resumes its virtual clock.
    let clock = ManualClock::new(store.clocks().await?.last_instant.unwrap_or(Timestamp::EPOCH));
    // A temporary database is never searched: its meetings are not indexed.
    let options = EngineOptions { unsearched: cli.db.is_none(), ..spindown::source::replay::engine_options() };
    let engine = Engine::start(store.clone(), policy, Arc::new(clock.clone()), options).await?;
    let options = ReplayOptions { until: args.until, batch: args.batch };
    let summary = replay(&engine, &clock, LineFeed::new(input, name.clone()), &options).await?;
    if let ReplayStore::Sqlite(_, path, _) = &replay_store {
        let marker = unfinished_marker(path);
        std::fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))?;
    }

    let out_started = Instant::now();
    let mut out = output::stdout();
    let written = if args.json {
        write_json(store.as_ref(), &mut out).await
    } else {
        write_table(store.as_ref(), &mut out).await
    };
    output::finish(written, out)?;
    let output_secs = out_started.elapsed().as_secs_f64();

    let counts = store.counts().await?;
    eprint!("{}", render::replay_summary(&name, &summary, &counts));
    if let Some(p) = &args.profile {
        let profile = Profile {
            summary: &summary,
            output_secs,
            total_secs: started.elapsed().as_secs_f64(),
            rows: replay_store.write_counts(),
            synchronous: match &replay_store {
                ReplayStore::Sqlite(_, _, d) => Some(*d),
                ReplayStore::Postgres(_) => None,
            },
            peak_rss_mib: super::peak_rss_mib(),
        };
        std::fs::write(p, serde_json::to_vec_pretty(&profile)?).with_context(|| format!("writing {}", p.display()))?;
    }
    store.close().await;
    Ok(())
}

/// Open a SQLite replay database, refusing one an earlier replay left unfinished.
async fn open_sqlite(path: &Path, durability: Durability, input: &str) -> Result<Arc<SqliteStore>> {
    let marker = unfinished_marker(path);
    if marker.exists() {
        bail!(
            "{} holds a replay that did not finish (it stopped before writing every meeting): \
             remove {} (and its -wal and -shm files) and {}, then replay again",
            path.display(),
            path.display(),
            marker.display()
        );
    }
    std::fs::write(&marker, format!("a replay of {input} started at {}\n", Timestamp::now()))
        .with_context(|| format!("writing {}", marker.display()))?;
    let options = SqliteOptions { durability, ..SqliteOptions::default() }.bulk().lean();
    Ok(Arc::new(SqliteStore::open(path, &options).await.with_context(|| format!("opening {}", path.display()))?))
}

async fn write_json(store: &dyn Store, out: &mut impl Write) -> Result<()> {
    inspect::write_outcomes(store, out).await?;
    Ok(())
}

/// The meetings as a table, streamed a page at a time (columns sized by the first page).
async fn write_table(store: &dyn Store, out: &mut impl Write) -> Result<()> {
    let mut rows = Vec::new();
    let mut header_done = false;
    let flush = |rows: &mut Vec<Vec<String>>, out: &mut dyn Write, header: bool| -> std::io::Result<()> {
        let text = render::table(&render::MEETING_HEADER, rows);
        let body = if header { text.as_str() } else { text.split_once('\n').map_or("", |(_, b)| b) };
        rows.clear();
        out.write_all(body.as_bytes())
    };
    let mut io_result = Ok(());
    for_each_meeting(store, &MeetingFilter::default(), |m| {
        rows.push(render::meeting_row(&m.meeting));
        if rows.len() == 5000 && io_result.is_ok() {
            io_result = flush(&mut rows, out, !header_done);
            header_done = true;
        }
        Ok::<(), StoreError>(())
    })
    .await?;
    io_result?;
    if !rows.is_empty() || !header_done {
        flush(&mut rows, out, !header_done)?;
    }
    Ok(())
}
