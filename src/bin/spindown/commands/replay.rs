//! `spindown replay FILE`: the engine on a virtual clock; every meeting's outcome out.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use spindown::clock::ManualClock;
use spindown::engine::{Engine, EngineOptions};
use spindown::inspect::{self, for_each_meeting};
use spindown::source::feed::LineFeed;
use spindown::source::replay::{replay, ReplayOptions, ReplaySummary};
use spindown::store::sqlite::{Durability, SqliteOptions, SqliteStore, WriteCounts};
use spindown::store::{MeetingFilter, Store, StoreError};
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
    synchronous: Durability,
    /// The process's peak resident set (`VmHWM`), MiB; `None` where /proc has none.
    peak_rss_mib: Option<f64>,
}

/// Peak resident set size of this process, MiB (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim();
    Some(kb.parse::<f64>().ok()? / 1024.0)
}

/// Beside a database a replay is writing: a replay keeps live meetings in
/// memory and writes each once it has ended (or at the end), so a replay
/// that did not finish leaves a database that is not what the input says.
fn unfinished_marker(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".replaying");
    PathBuf::from(p)
}

pub async fn run(cli: &Cli, args: &ReplayArgs) -> Result<()> {
    let started = Instant::now();
    let policy = db::load_policy(&args.policy)?;
    let (input, name) = db::open_input(&args.file)?;
    // A replay needs a database only for its duration unless one is named.
    let temp;
    let (path, durability) = match &cli.db {
        Some(p) => (p.clone(), cli.synchronous.unwrap_or(Durability::Normal)),
        None => {
            temp = tempfile::tempdir().context("creating a temporary directory")?;
            (temp.path().join("replay.db"), cli.synchronous.unwrap_or(Durability::Off))
        }
    };
    let marker = unfinished_marker(&path);
    if marker.exists() {
        bail!(
            "{} holds a replay that did not finish (it stopped before writing every meeting): \
             remove {} (and its -wal and -shm files) and {}, then replay again",
            path.display(),
            path.display(),
            marker.display()
        );
    }
    std::fs::write(&marker, format!("a replay of {name} started at {}\n", Timestamp::now()))
        .with_context(|| format!("writing {}", marker.display()))?;
    let options = SqliteOptions { durability, ..SqliteOptions::default() }.bulk().lean();
    let store =
        Arc::new(SqliteStore::open(&path, &options).await.with_context(|| format!("opening {}", path.display()))?);
    // A replay on an existing database resumes its virtual clock.
    let clock = ManualClock::new(store.clocks().await?.last_instant.unwrap_or(Timestamp::EPOCH));
    let engine = Engine::start(store.clone(), policy, Arc::new(clock.clone()), EngineOptions::replay()).await?;
    let options = ReplayOptions { until: args.until, batch: args.batch };
    let summary = replay(&engine, &clock, LineFeed::new(input, name.clone()), &options).await?;
    std::fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))?;

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
            rows: store.write_counts(),
            synchronous: durability,
            peak_rss_mib: peak_rss_mib(),
        };
        std::fs::write(p, serde_json::to_vec_pretty(&profile)?).with_context(|| format!("writing {}", p.display()))?;
    }
    store.close().await;
    Ok(())
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
