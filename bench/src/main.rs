//! spindown-bench: W1–W4, the raw SQLite ceiling, and peers, side by side.
//!
//! ```sh
//! cargo run --release -p spindown-bench -- all                  # full size, one run
//! cargo run --release -p spindown-bench -- all --runs 3 --json  # medians of three
//! cargo run --release -p spindown-bench --features peers -- peers
//! cargo run --release -p spindown-bench --features peers -- all  # spindown and the peers in one run
//! cargo run -p spindown-bench -- all --size tiny                # CI's smoke test
//! ```
//!
//! W1 ingest: N stream records (a generated day) applied durably with history,
//!    next to the raw ceiling: the same rows written by batched multi-row
//!    prepared inserts, no engine.
//! W2 timer storm: N safety nets due within one second, each fire a durable
//!    transition with its history and outbox rows; throughput and lateness.
//! W3 recovery: a restart (a fresh process) over N overdue timers: time to the
//!    first fire, to the last, peak RSS, each exactly once.
//! W4 steady: R timers per second for S seconds: lateness p50/p99/max.

mod gen;
#[cfg(feature = "peers")]
mod peers;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use rand::SeedableRng;
use serde::Serialize;
use spindown::clock::{ManualClock, SystemClock};
use spindown::engine::{Engine, Incoming};
use spindown::feed::LineFeed;
use spindown::policy::Policy;
use spindown::record::decode_line;
use spindown::store::{Durability, Phase, Store, StoreOptions, WriteCounts};
use spindown::time::{Span, Timestamp};
use sqlx::{QueryBuilder, Sqlite};

#[derive(Parser, Debug)]
#[command(
    name = "spindown-bench",
    about = "Benchmarks of the spindown engine (W1–W4), the raw SQLite ceiling, and peers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Workload sizes: full (the targets'), small, or tiny (CI's smoke test).
    #[arg(long, value_enum, default_value = "full", global = true)]
    size: Size,
    /// SQLite synchronous setting for the engine's database.
    #[arg(long, default_value = "normal", global = true, value_parser = |s: &str| s.parse::<Durability>())]
    synchronous: Durability,
    /// Repeat each workload and report median, min and max.
    #[arg(long, default_value_t = 1, global = true)]
    runs: usize,
    /// SQLite page cache, MiB.
    #[arg(long, default_value_t = 64, global = true)]
    cache_mib: u32,
    /// SQLite's WAL autocheckpoint threshold (pages), the backstop to the
    /// background checkpointer [default: W1 as `spindown replay`
    /// (`StoreOptions::bulk`), W2–W4 as the worker].
    #[arg(long, global = true)]
    wal_autocheckpoint: Option<u32>,
    /// Records per transaction in W1.
    #[arg(long, default_value_t = 5000, global = true)]
    batch: usize,
    /// Print one JSON object instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Where the databases go (a temporary directory by default).
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug, Clone)]
enum Cmd {
    /// W1–W4 and the raw ceiling (and the peers, when built with --features peers).
    All,
    W1,
    W2,
    W3,
    W4,
    /// W2 and W4 on tokio-cron-scheduler and apalis (build with --features peers).
    Peers,
    /// (internal) the W3 restart, in its own process.
    #[command(hide = true)]
    W3Recover {
        db: PathBuf,
        expect: u64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Size {
    Tiny,
    Small,
    Full,
}

struct Sizes {
    w1_records: usize,
    w2_timers: usize,
    w3_timers: usize,
    w4_rate: usize,
    w4_secs: usize,
}

impl Size {
    fn sizes(self) -> Sizes {
        match self {
            Size::Full => {
                Sizes { w1_records: 1_000_000, w2_timers: 100_000, w3_timers: 1_000_000, w4_rate: 1000, w4_secs: 60 }
            }
            Size::Small => {
                Sizes { w1_records: 100_000, w2_timers: 20_000, w3_timers: 100_000, w4_rate: 1000, w4_secs: 10 }
            }
            Size::Tiny => Sizes { w1_records: 2_000, w2_timers: 1_000, w3_timers: 2_000, w4_rate: 200, w4_secs: 1 },
        }
    }
}

/// One measurement, named.
#[derive(Debug, Clone, Serialize)]
struct Metric {
    workload: &'static str,
    name: &'static str,
    value: f64,
    unit: &'static str,
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The worker's store options (W2–W4), or with `bulk` those of `spindown
/// replay`/`ingest` (W1).
fn store_options(cli: &Cli, bulk: bool) -> StoreOptions {
    let o = StoreOptions { durability: cli.synchronous, cache_mib: cli.cache_mib, ..StoreOptions::default() };
    let o = if bulk { o.bulk() } else { o };
    StoreOptions { wal_autocheckpoint: cli.wal_autocheckpoint.unwrap_or(o.wal_autocheckpoint), ..o }
}

async fn engine(cli: &Cli, db: &Path, clock: Arc<dyn spindown::clock::Clock>, bulk: bool) -> Result<Engine> {
    Ok(Engine::open(db, Policy::default(), clock, &store_options(cli, bulk)).await?)
}

/// W1: a generated day applied through the engine, then the raw ceiling.
async fn w1(cli: &Cli, dir: &Path, out: &mut Vec<Metric>) -> Result<()> {
    let n = cli.size.sizes().w1_records;
    let file = dir.join(format!("day-{n}.jsonl"));
    if !file.exists() {
        let lines = gen::day(n, 42);
        std::fs::write(&file, lines.join("\n") + "\n")?;
    }
    let db = dir.join("w1.db");
    remove_db(&db);
    let clock = ManualClock::new(Timestamp::EPOCH);
    let e = engine(cli, &db, Arc::new(clock.clone()), true).await?;
    let feed = LineFeed::new(std::fs::File::open(&file)?, "day");
    let start = Instant::now();
    let mut records = 0u64;
    let mut dead = 0u64;
    // As `spindown replay` does: input decoded on its own thread, batches ahead.
    let (mut batches, reader) = spindown::replay::read_ahead(feed, cli.batch);
    while let Some(batch) = batches.recv().await {
        let r = e.apply(batch?).await?;
        records += r.records;
        dead += r.dead_letter_total();
    }
    let apply = start.elapsed();
    let _ = reader.join();
    let counts = e.store().write_counts();
    let run_on = Instant::now();
    let fired = e.run_until(Timestamp::MAX).await?.timers_fired;
    let run_on = run_on.elapsed();
    e.store().close().await;
    let rows = counts.rows();
    out.push(Metric { workload: "W1", name: "records", value: records as f64, unit: "records" });
    out.push(Metric { workload: "W1", name: "dead letters", value: dead as f64, unit: "records" });
    out.push(Metric { workload: "W1", name: "apply time", value: apply.as_secs_f64(), unit: "s" });
    out.push(Metric {
        workload: "W1",
        name: "throughput",
        value: records as f64 / apply.as_secs_f64(),
        unit: "records/s",
    });
    out.push(Metric { workload: "W1", name: "rows written", value: rows as f64, unit: "rows" });
    out.push(Metric {
        workload: "W1",
        name: "engine rows/s",
        value: rows as f64 / apply.as_secs_f64(),
        unit: "rows/s",
    });
    out.push(Metric { workload: "W1", name: "transactions", value: counts.transactions as f64, unit: "tx" });
    for (name, n) in [
        ("rows: meetings (upserts)", counts.meetings),
        ("rows: history", counts.history),
        ("rows: seen eventIDs", counts.seen),
        ("rows: timers inserted", counts.timers_inserted),
        ("rows: timer deletes", counts.timer_deletes),
        ("rows: effects", counts.effects),
        ("rows: dead letters", counts.dead),
    ] {
        out.push(Metric { workload: "W1", name, value: n as f64, unit: "rows" });
    }
    out.push(Metric { workload: "W1", name: "run-on fires", value: fired as f64, unit: "timers" });
    out.push(Metric {
        workload: "W1",
        name: "run-on fires/s",
        value: fired as f64 / run_on.as_secs_f64(),
        unit: "fires/s",
    });

    // The raw ceiling: the same rows, batched prepared inserts, no engine.
    let raw = raw_ceiling(cli, dir, &counts).await?;
    out.push(Metric { workload: "W1", name: "raw SQLite time", value: raw.as_secs_f64(), unit: "s" });
    out.push(Metric { workload: "W1", name: "raw rows/s", value: rows as f64 / raw.as_secs_f64(), unit: "rows/s" });
    out.push(Metric {
        workload: "W1",
        name: "share of raw ceiling",
        value: 100.0 * raw.as_secs_f64() / apply.as_secs_f64(),
        unit: "%",
    });
    push_profile(out, "W1", &counts.phase_secs);
    Ok(())
}

/// Where the units of work spent their time (the store's phase timers): one
/// metric per phase, seconds, and the rest of each unit — the engine's own
/// computing between statements — as "engine (in memory)".
fn push_profile(out: &mut Vec<Metric>, w: &'static str, phase_secs: &[f64]) {
    let mut rest = 0.0;
    for (p, secs) in Phase::ALL.iter().zip(phase_secs) {
        let name: &'static str = Box::leak(format!("time: {}", p.as_str()).into_boxed_str());
        if *p == Phase::Work {
            rest += secs;
        } else {
            rest -= secs;
        }
        out.push(Metric { workload: w, name, value: *secs, unit: "s" });
    }
    out.push(Metric { workload: w, name: "time: engine (in memory)", value: rest.max(0.0), unit: "s" });
}

fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

/// Write `counts` worth of rows, of the engine's shapes, in as many
/// transactions, with multi-row prepared inserts (400 rows a statement).
async fn raw_ceiling(cli: &Cli, dir: &Path, counts: &WriteCounts) -> Result<Duration> {
    let db = dir.join("raw.db");
    remove_db(&db);
    let store = Store::open(&db, &store_options(cli, true)).await?; // same schema, same pragmas
    store.close().await;
    // The engine's own connection settings: the ceiling of the same SQLite.
    let opts = Store::connect_options(&db, &store_options(cli, true));
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?;
    let txs = counts.transactions.max(1);
    let per = |n: u64| n.div_ceil(txs) as usize;
    let notes = serde_json::to_string(&vec![
        "created: meet_time 2026-11-26T10:00:00Z, created_at 2026-11-26T08:00:00Z, duration -, status SCHEDULED, teacher data no, student data no",
        "armed safety_net timer for 2026-11-26T10:15:00Z",
    ])?;
    let mut done = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    // Keys spread like the engine's: a day's records touch meetings all over
    // the key space, so inserts land on random pages, not at the end.
    let meetings = (counts.meetings / 2).max(1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut key = move || format!("m-{:07}", rand::Rng::gen_range(&mut rng, 0..meetings));
    let start = Instant::now();
    for t in 0..txs {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let m = per(counts.meetings).min((counts.meetings - done.0) as usize);
        for chunk in (0..m).collect::<Vec<_>>().chunks(400) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT OR REPLACE INTO meetings (id, state, reason, terminated_at, meet_time, created_at, duration_us, status, \
                 teacher_data, student_data, instances, first_seen, updated_at, version, prev_version) ",
            );
            q.push_values(chunk, |mut b, _| {
                b.push_bind(key())
                    .push_bind("Scheduled")
                    .push_bind(None::<&str>)
                    .push_bind(None::<i64>)
                    .push_bind(1_795_687_200_000_000i64)
                    .push_bind(1_795_680_000_000_000i64)
                    .push_bind(None::<i64>)
                    .push_bind("SCHEDULED")
                    .push_bind(false)
                    .push_bind(false)
                    .push_bind(r#"["i-0123456789abcdef0","i-0123456789abcdef1"]"#)
                    .push_bind(1_795_687_200_000_000i64)
                    .push_bind(1_795_687_200_000_000i64)
                    .push_bind(1i64)
                    .push_bind(-1i64);
            });
            q.build().execute(&mut *tx).await?;
        }
        done.0 += m as u64;
        let d = per(counts.timer_deletes).min((counts.timer_deletes - done.1) as usize);
        for chunk in (0..d).collect::<Vec<_>>().chunks(400) {
            let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM timers WHERE meeting_id IN (");
            let mut sep = q.separated(", ");
            for _ in chunk {
                sep.push_bind(key());
            }
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
        done.1 += d as u64;
        let ti = per(counts.timers_inserted).min((counts.timers_inserted - done.2) as usize);
        for chunk in (0..ti).collect::<Vec<_>>().chunks(400) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT OR REPLACE INTO timers (meeting_id, kind, rank, due) ");
            q.push_values(chunk, |mut b, i| {
                b.push_bind(key())
                    .push_bind(if i % 2 == 0 { "safety_net" } else { "cap" })
                    .push_bind((i % 2) as i64 * 2)
                    .push_bind(1_795_688_100_000_000i64 + (t as i64) * 1000 + *i as i64);
            });
            q.build().execute(&mut *tx).await?;
        }
        done.2 += ti as u64;
        let h = per(counts.history).min((counts.history - done.3) as usize);
        for chunk in (0..h).collect::<Vec<_>>().chunks(400) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO history (meeting_id, at, cause, cause_ref, from_state, to_state, outcome, reason, lateness_us, details) ",
            );
            q.push_values(chunk, |mut b, _| {
                b.push_bind(key())
                    .push_bind(1_795_687_200_000_000i64)
                    .push_bind("record")
                    .push_bind("INSERT 0000a1b2000000")
                    .push_bind(None::<&str>)
                    .push_bind("Scheduled")
                    .push_bind("created")
                    .push_bind(None::<&str>)
                    .push_bind(None::<i64>)
                    .push_bind(notes.as_str());
            });
            q.build().execute(&mut *tx).await?;
        }
        done.3 += h as u64;
        let s = per(counts.seen).min((counts.seen - done.4) as usize);
        for chunk in (0..s).collect::<Vec<_>>().chunks(400) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO seen_events (event_id, meeting_id, at) ");
            q.push_values(chunk, |mut b, i| {
                b.push_bind(format!("{t:08x}{i:06x}00"))
                    .push_bind(format!("m-{t:06}-{i:05}"))
                    .push_bind(1_795_687_200_000_000i64);
            });
            q.build().execute(&mut *tx).await?;
        }
        done.4 += s as u64;
        let ef = per(counts.effects).min((counts.effects - done.5) as usize);
        for chunk in (0..ef).collect::<Vec<_>>().chunks(400) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO effects (key, meeting_id, kind, payload, status, attempts, next_attempt_at, created_at, updated_at) ",
            );
            q.push_values(chunk, |mut b, i| {
                let k = key();
                b.push_bind(format!("{k}/terminate-{t}-{i}"))
                    .push_bind(k)
                    .push_bind("terminate")
                    .push_bind(r#"{"instances":["i-0123456789abcdef0","i-0123456789abcdef1"]}"#)
                    .push_bind("pending")
                    .push_bind(0i64)
                    .push_bind(1_795_687_200_000_000i64)
                    .push_bind(1_795_687_200_000_000i64)
                    .push_bind(1_795_687_200_000_000i64);
            });
            q.build().execute(&mut *tx).await?;
        }
        done.5 += ef as u64;
        tx.commit().await?;
    }
    let took = start.elapsed();
    pool.close().await;
    Ok(took)
}

/// Create `n` meetings whose safety nets fall due at `due(i)`, without firing anything.
async fn seed_timers(cli: &Cli, db: &Path, n: usize, due: impl Fn(usize) -> Timestamp) -> Result<Duration> {
    let frozen = ManualClock::live(Timestamp::from_secs(gen::DAY - 86_400));
    let e = engine(cli, db, Arc::new(frozen), true).await?;
    let delay = Policy::default().safety_net_delay;
    let start = Instant::now();
    let mut batch = Vec::with_capacity(2000);
    for i in 0..n {
        let meet = due(i).saturating_add(Span::from_micros(-delay.as_micros()));
        let line = gen::insert(&format!("t-{i:07}"), meet, Timestamp::from_secs(gen::DAY - 86_400), i as u64);
        batch.extend(decode_line(line.as_bytes()).into_iter().map(|item| Incoming { item, origin: String::new() }));
        if batch.len() == 2000 {
            e.apply(std::mem::take(&mut batch)).await?;
        }
    }
    e.apply(batch).await?;
    e.store().close().await;
    Ok(start.elapsed())
}

/// Lateness of every timer fire in the database, microseconds, sorted.
async fn lateness(db: &Path) -> Result<Vec<i64>> {
    let store = Store::open(db, &StoreOptions::default()).await?;
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true))
        .await?;
    let mut v: Vec<i64> =
        sqlx::query_scalar("SELECT lateness_us FROM history WHERE cause = 'timer'").fetch_all(&pool).await?;
    v.sort_unstable();
    pool.close().await;
    store.close().await;
    Ok(v)
}

async fn history_reader(db: &Path) -> Result<sqlx::SqlitePool> {
    Ok(sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true))
        .await?)
}

async fn last_seq(reader: &sqlx::SqlitePool) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(seq) FROM history").fetch_one(reader).await?.unwrap_or(0))
}

/// Run the timer loop on the wall clock until `n` meetings have ended.
async fn run_loop_until(cli: &Cli, db: &Path, n: usize, limit: Duration) -> Result<(Duration, Timestamp, WriteCounts)> {
    let e = Arc::new(engine(cli, db, Arc::new(SystemClock), false).await?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let looper = {
        let e = e.clone();
        tokio::spawn(async move {
            e.run_timers(async {
                stop_rx.await.ok();
            })
            .await
        })
    };
    // Each fire appends one history row: watch the last row id (an O(log n) read).
    let reader = history_reader(db).await?;
    let start = Instant::now();
    let base = last_seq(&reader).await?;
    loop {
        let fired = last_seq(&reader).await? - base;
        if fired >= n as i64 {
            break;
        }
        ensure!(start.elapsed() < limit, "only {fired} of {n} fired in {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let done = Timestamp::now();
    let _ = stop_tx.send(());
    looper.await??;
    let counts = e.store().write_counts();
    e.store().close().await;
    Ok((start.elapsed(), done, counts))
}

/// W2: N safety nets due within one second.
async fn w2(cli: &Cli, dir: &Path, out: &mut Vec<Metric>) -> Result<()> {
    let n = cli.size.sizes().w2_timers;
    let db = dir.join("w2.db");
    remove_db(&db);
    let t0 = Timestamp::now().saturating_add(Span::from_secs(10 + n as i64 / 20_000));
    let setup = seed_timers(cli, &db, n, |i| t0.saturating_add(Span::from_micros((1_000_000 * i / n) as i64))).await?;
    ensure!(Timestamp::now() < t0, "setup took {setup:?}, past the storm's start");
    sleep_until(t0.saturating_add(Span::from_millis(-300))).await;
    let (_, done, counts) = run_loop_until(cli, &db, n, Duration::from_secs(600)).await?;
    let late = lateness(&db).await?;
    let span = done.since(t0).as_micros() as f64 / 1e6;
    out.push(Metric { workload: "W2", name: "timers", value: n as f64, unit: "timers" });
    out.push(Metric { workload: "W2", name: "all fired after the first due", value: span, unit: "s" });
    out.push(Metric { workload: "W2", name: "throughput", value: n as f64 / span.max(1.0), unit: "fires/s" });
    push_lateness(out, "W2", &late);
    out.push(Metric { workload: "W2", name: "transactions", value: counts.transactions as f64, unit: "tx" });
    push_profile(out, "W2", &counts.phase_secs);
    Ok(())
}

fn push_lateness(out: &mut Vec<Metric>, w: &'static str, late: &[i64]) {
    out.push(Metric {
        workload: w,
        name: "lateness min",
        value: late.first().copied().unwrap_or(0) as f64 / 1000.0,
        unit: "ms",
    });
    out.push(Metric { workload: w, name: "lateness p50", value: percentile(late, 0.5) as f64 / 1000.0, unit: "ms" });
    out.push(Metric { workload: w, name: "lateness p99", value: percentile(late, 0.99) as f64 / 1000.0, unit: "ms" });
    out.push(Metric {
        workload: w,
        name: "lateness max",
        value: late.last().copied().unwrap_or(0) as f64 / 1000.0,
        unit: "ms",
    });
}

async fn sleep_until(t: Timestamp) {
    let us = t.as_micros() - Timestamp::now().as_micros();
    if us > 0 {
        tokio::time::sleep(Duration::from_micros(us as u64)).await;
    }
}

/// W3: a fresh process restarts over N overdue timers.
async fn w3(cli: &Cli, dir: &Path, out: &mut Vec<Metric>) -> Result<()> {
    let n = cli.size.sizes().w3_timers;
    let db = dir.join("w3.db");
    remove_db(&db);
    let due = Timestamp::now().saturating_add(Span::from_mins(-5));
    seed_timers(cli, &db, n, |_| due).await?;
    let exe = std::env::current_exe()?;
    let sync = match cli.synchronous {
        Durability::Full => "full",
        Durability::Normal => "normal",
    };
    let child = tokio::process::Command::new(exe)
        .args(["--synchronous", sync, "--cache-mib", &cli.cache_mib.to_string()])
        .args(cli.wal_autocheckpoint.iter().flat_map(|p| ["--wal-autocheckpoint".to_string(), p.to_string()]))
        .arg("w3-recover")
        .arg(&db)
        .arg(n.to_string())
        .output()
        .await?;
    ensure!(child.status.success(), "w3-recover failed: {}", String::from_utf8_lossy(&child.stderr));
    eprint!("{}", String::from_utf8_lossy(&child.stderr));
    let r: serde_json::Value = serde_json::from_slice(&child.stdout).context("w3-recover output")?;
    out.push(Metric { workload: "W3", name: "overdue timers", value: n as f64, unit: "timers" });
    out.push(Metric {
        workload: "W3",
        name: "first fire after start",
        value: r["first_fire_s"].as_f64().unwrap_or(-1.0),
        unit: "s",
    });
    out.push(Metric {
        workload: "W3",
        name: "all fired after start",
        value: r["all_fired_s"].as_f64().unwrap_or(-1.0),
        unit: "s",
    });
    out.push(Metric { workload: "W3", name: "peak RSS", value: r["peak_rss_mb"].as_f64().unwrap_or(-1.0), unit: "MB" });
    out.push(Metric {
        workload: "W3",
        name: "fires recorded",
        value: r["fires"].as_f64().unwrap_or(-1.0),
        unit: "fires",
    });
    out.push(Metric {
        workload: "W3",
        name: "fired twice",
        value: r["twice"].as_f64().unwrap_or(-1.0),
        unit: "meetings",
    });
    let phases: Vec<f64> =
        r["phase_secs"].as_array().map(|a| a.iter().filter_map(|v| v.as_f64()).collect()).unwrap_or_default();
    if phases.len() == Phase::COUNT {
        push_profile(out, "W3", &phases);
    }
    Ok(())
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(-1.0, |kb| kb / 1024.0)
}

/// The W3 child: open, run the timer loop, report.
async fn w3_recover(cli: &Cli, db: &Path, expect: u64) -> Result<()> {
    let start = Instant::now();
    let e = Arc::new(engine(cli, db, Arc::new(SystemClock), false).await?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let looper = {
        let e = e.clone();
        tokio::spawn(async move {
            e.run_timers(async {
                stop_rx.await.ok();
            })
            .await
        })
    };
    let reader = sqlx::sqlite::SqlitePoolOptions::new()
        .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true))
        .await?;
    let mut first = None;
    let all = loop {
        let fires: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM history WHERE cause = 'timer'").fetch_one(&reader).await?;
        if fires > 0 && first.is_none() {
            first = Some(start.elapsed());
        }
        if fires as u64 >= expect {
            break start.elapsed();
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!("only {fires} of {expect} fired");
        }
        tokio::time::sleep(Duration::from_millis(if first.is_none() { 1 } else { 20 })).await;
    };
    let _ = stop_tx.send(());
    looper.await??;
    let counts = e.store().write_counts();
    let fires: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM history WHERE cause = 'timer'").fetch_one(&reader).await?;
    let twice: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT meeting_id FROM history WHERE outcome = 'terminated' GROUP BY meeting_id HAVING COUNT(*) > 1)",
    )
    .fetch_one(&reader)
    .await?;
    println!(
        "{}",
        serde_json::json!({
            "first_fire_s": first.unwrap_or_default().as_secs_f64(),
            "all_fired_s": all.as_secs_f64(),
            "peak_rss_mb": peak_rss_mb(),
            "fires": fires,
            "twice": twice,
            "phase_secs": counts.phase_secs,
        })
    );
    Ok(())
}

/// W4: R timers a second for S seconds.
async fn w4(cli: &Cli, dir: &Path, out: &mut Vec<Metric>) -> Result<()> {
    let s = cli.size.sizes();
    let n = s.w4_rate * s.w4_secs;
    let db = dir.join("w4.db");
    remove_db(&db);
    let t0 = Timestamp::now().saturating_add(Span::from_secs(10));
    let step = 1_000_000 / s.w4_rate as i64;
    seed_timers(cli, &db, n, |i| t0.saturating_add(Span::from_micros(step * i as i64))).await?;
    ensure!(Timestamp::now() < t0, "setup ran past the start");
    sleep_until(t0.saturating_add(Span::from_millis(-300))).await;
    let (_, _, counts) = run_loop_until(cli, &db, n, Duration::from_secs(s.w4_secs as u64 * 3 + 30)).await?;
    let late = lateness(&db).await?;
    out.push(Metric { workload: "W4", name: "timers", value: n as f64, unit: "timers" });
    out.push(Metric { workload: "W4", name: "rate", value: s.w4_rate as f64, unit: "timers/s" });
    push_lateness(out, "W4", &late);
    out.push(Metric { workload: "W4", name: "transactions", value: counts.transactions as f64, unit: "tx" });
    push_profile(out, "W4", &counts.phase_secs);
    Ok(())
}

fn print_table(metrics: &[Vec<Metric>]) {
    let first = &metrics[0];
    println!("{:<4} {:<30} {:>14} {:>12} {:>12}  unit", "", "metric", "median", "min", "max");
    for (i, m) in first.iter().enumerate() {
        let mut v: Vec<f64> = metrics.iter().filter_map(|r| r.get(i)).map(|m| m.value).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let med = v[v.len() / 2];
        let fmt = |x: f64| if x.abs() >= 1000.0 { format!("{x:.0}") } else { format!("{x:.3}") };
        println!(
            "{:<4} {:<30} {:>14} {:>12} {:>12}  {}",
            m.workload,
            m.name,
            fmt(med),
            fmt(v[0]),
            fmt(*v.last().unwrap()),
            m.unit
        );
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Cmd::W3Recover { db, expect } = &cli.cmd {
        return w3_recover(&cli, db, *expect).await;
    }
    let temp = tempfile::tempdir()?;
    let dir = cli.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let mut runs = Vec::new();
    for run in 0..cli.runs.max(1) {
        let mut out = Vec::new();
        let which: Vec<&str> = match &cli.cmd {
            // Built with the peers, `all` runs them too, after spindown's own.
            Cmd::All if cfg!(feature = "peers") => vec!["w1", "w2", "w3", "w4", "peers"],
            Cmd::All => vec!["w1", "w2", "w3", "w4"],
            Cmd::W1 => vec!["w1"],
            Cmd::W2 => vec!["w2"],
            Cmd::W3 => vec!["w3"],
            Cmd::W4 => vec!["w4"],
            Cmd::Peers => vec!["peers"],
            Cmd::W3Recover { .. } => unreachable!(),
        };
        for w in which {
            eprintln!("run {} — {w}…", run + 1);
            match w {
                "w1" => w1(&cli, &dir, &mut out).await?,
                "w2" => w2(&cli, &dir, &mut out).await?,
                "w3" => w3(&cli, &dir, &mut out).await?,
                "w4" => w4(&cli, &dir, &mut out).await?,
                _ => peers_run(&cli, &mut out).await?,
            }
        }
        runs.push(out);
    }
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "size": format!("{:?}", cli.size),
                "synchronous": format!("{:?}", cli.synchronous),
                "runs": runs,
            }))?
        );
    } else {
        print_table(&runs);
    }
    Ok(())
}

#[cfg(feature = "peers")]
async fn peers_run(cli: &Cli, out: &mut Vec<Metric>) -> Result<()> {
    let s = cli.size.sizes();
    peers::run(s.w2_timers, s.w4_rate, s.w4_secs, out).await
}

#[cfg(not(feature = "peers"))]
async fn peers_run(_: &Cli, _: &mut Vec<Metric>) -> Result<()> {
    bail!("the peers are not built in: cargo run --release -p spindown-bench --features peers -- peers")
}
