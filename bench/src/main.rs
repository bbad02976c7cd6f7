//! spindown-bench: what users run, measured.
//!
//! ```sh
//! cargo build --release && cargo run --release -p spindown-bench -- all --runs 3
//! cargo run --release -p spindown-bench -- w1 --size small
//! cargo build && cargo run -p spindown-bench -- all --size tiny   # CI's smoke test
//! ```
//!
//! W1 replay: `spindown replay DAY --json` end to end, as a user runs it (the
//!    release binary beside this one), on a generated day — once on a
//!    temporary database, once keeping `--db day.db` — by phase (apply, the
//!    run-on to the last timer, output), with peak RSS; next to the raw SQLite
//!    ceiling (the same rows written by the same statements, no engine); and
//!    a 3M-record day for memory.
//! W2 timer storm: N safety nets due within one second, fired by the worker's
//!    timer loop, each a durable transition with its history and outbox row.
//! W3 recovery: a fresh process over N overdue timers: time to the first
//!    fire, to the last, peak RSS, each exactly once.
//! W4 steady: R timers per second for S seconds: lateness p50/p99/max.
//! YEAR retention: a generated year replayed month by month into one
//!    database, pruned to its 30-day retention after each: the file's size.

mod day;
mod overview;
#[cfg(feature = "peers")]
mod peers;
mod pg;
#[path = "../../tests/common/records.rs"]
#[allow(dead_code)]
mod records;
mod timers;
mod tune;
mod w1;
mod whatif;
mod year;

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use spindown::store::sqlite::{Durability, SqliteOptions};

#[derive(Parser, Debug)]
#[command(name = "spindown-bench", about = "Benchmarks of spindown (W1–W4), the raw SQLite ceiling, and peers")]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Workload sizes: full (the targets'), small, or tiny (CI's smoke test).
    #[arg(long, value_enum, default_value = "full", global = true)]
    pub size: Size,
    /// SQLite synchronous setting for the worker's database (W2–W4).
    #[arg(long, default_value = "normal", global = true)]
    pub synchronous: Durability,
    /// Repeat each workload and report median, min and max.
    #[arg(long, default_value_t = 1, global = true)]
    runs: usize,
    /// Print one JSON object instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Where the databases and generated days go (a temporary directory by default).
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug, Clone)]
enum Cmd {
    /// W1–W4 (and the peers, when built with --features peers).
    All,
    W1,
    W2,
    W3,
    W4,
    /// W2 and W4 on tokio-cron-scheduler and apalis (build with --features peers).
    Peers,
    /// `spindown whatif` on W1's day with three models (legacy, smart, fixed).
    Whatif,
    /// `spindown tune` on W1's day: the default space (51 candidates) and the base.
    Tune,
    /// The console's overview (GET /) on a database of three of W1's days (~1M meetings).
    Overview,
    /// A year of meetings replayed month by month into one database and pruned to its retention window.
    Year,
    /// W1 and W2 on PostgreSQL (W2 with 1, 2 and 4 workers): --pg names a
    /// server (a superuser URL, e.g. from `scripts/pg-server start`).
    Pg {
        /// postgres://USER@HOST:PORT/postgres — databases are created beside it.
        #[arg(long, env = "SPINDOWN_BENCH_PG")]
        pg: String,
        /// Worker counts for W2.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        workers: Vec<usize>,
        /// Only W2 (skip the replay).
        #[arg(long)]
        no_w1: bool,
    },
    /// Write a generated day (the workloads' input) to a file, and say how it went.
    Day {
        /// Where to write it (JSON lines, as the stream's records).
        out: PathBuf,
        /// About this many records.
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
        /// Spread over this many days.
        #[arg(long, default_value_t = 1)]
        days: u32,
    },
    /// (internal) the W3 restart, in its own process.
    #[command(hide = true)]
    W3Recover {
        db: PathBuf,
        expect: u64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Size {
    Tiny,
    Small,
    Full,
}

pub struct Sizes {
    pub w1_records: usize,
    /// The memory run's day (0: none).
    pub w1_memory_records: usize,
    pub w2_timers: usize,
    pub w3_timers: usize,
    pub w4_rate: usize,
    pub w4_secs: usize,
}

impl Size {
    pub fn sizes(self) -> Sizes {
        match self {
            Size::Full => Sizes {
                w1_records: 1_000_000,
                w1_memory_records: 3_000_000,
                w2_timers: 100_000,
                w3_timers: 1_000_000,
                w4_rate: 1000,
                w4_secs: 60,
            },
            Size::Small => Sizes {
                w1_records: 100_000,
                w1_memory_records: 300_000,
                w2_timers: 20_000,
                w3_timers: 100_000,
                w4_rate: 1000,
                w4_secs: 10,
            },
            Size::Tiny => Sizes {
                w1_records: 3_000,
                w1_memory_records: 0,
                w2_timers: 1_000,
                w3_timers: 2_000,
                w4_rate: 200,
                w4_secs: 1,
            },
        }
    }
}

/// One measurement, named.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    pub workload: &'static str,
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
}

impl Metric {
    pub fn new(workload: &'static str, name: impl Into<String>, value: f64, unit: &'static str) -> Metric {
        Metric { workload, name: name.into(), value, unit }
    }
}

pub fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The worker's store options (W2–W4).
pub fn worker_options(cli: &Cli) -> SqliteOptions {
    SqliteOptions { durability: cli.synchronous, ..SqliteOptions::default() }
}

pub fn remove_db(db: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

fn print_table(metrics: &[Vec<Metric>]) {
    let first = &metrics[0];
    println!("{:<4} {:<44} {:>14} {:>12} {:>12}  unit", "", "metric", "median", "min", "max");
    for (i, m) in first.iter().enumerate() {
        let mut v: Vec<f64> = metrics.iter().filter_map(|r| r.get(i)).map(|m| m.value).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let med = v[v.len() / 2];
        let fmt = |x: f64| if x.abs() >= 1000.0 { format!("{x:.0}") } else { format!("{x:.3}") };
        println!(
            "{:<4} {:<44} {:>14} {:>12} {:>12}  {}",
            m.workload,
            m.name,
            fmt(med),
            fmt(v[0]),
            fmt(*v.last().expect("one run at least")),
            m.unit
        );
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Cmd::W3Recover { db, expect } = &cli.cmd {
        return timers::w3_recover(&cli, db, *expect).await;
    }
    if let Cmd::Day { out, records, days } = &cli.cmd {
        let start = std::time::Instant::now();
        let mut file = std::fs::File::create(out).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
        let stats = day::write_day(&mut file, *records, *days, 42)?;
        eprintln!("{}: {stats:?} in {:.2} s", out.display(), start.elapsed().as_secs_f64());
        return Ok(());
    }
    let temp = tempfile::tempdir()?;
    let dir = cli.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let mut runs = Vec::new();
    for run in 0..cli.runs.max(1) {
        let mut out = Vec::new();
        let which: Vec<&str> = match &cli.cmd {
            // Built with the peers, `all` runs them too, after spindown's own.
            Cmd::All if cfg!(feature = "peers") => vec!["w1", "w2", "w3", "w4", "whatif", "tune", "year", "peers"],
            Cmd::All => vec!["w1", "w2", "w3", "w4", "whatif", "tune", "year"],
            Cmd::Whatif => vec!["whatif"],
            Cmd::Tune => vec!["tune"],
            Cmd::Overview => vec!["overview"],
            Cmd::Year => vec!["year"],
            Cmd::W1 => vec!["w1"],
            Cmd::W2 => vec!["w2"],
            Cmd::W3 => vec!["w3"],
            Cmd::W4 => vec!["w4"],
            Cmd::Peers => vec!["peers"],
            Cmd::Pg { .. } => vec!["pg"],
            Cmd::W3Recover { .. } | Cmd::Day { .. } => unreachable!("handled above"),
        };
        for w in which {
            eprintln!("run {} — {w}…", run + 1);
            match w {
                "w1" => w1::run(&cli, &dir, &mut out).await?,
                "w2" => timers::w2(&cli, &dir, &mut out).await?,
                "w3" => timers::w3(&cli, &dir, &mut out).await?,
                "w4" => timers::w4(&cli, &dir, &mut out).await?,
                "whatif" => whatif::run(&cli, &dir, &mut out)?,
                "tune" => tune::run(&cli, &dir, &mut out)?,
                "overview" => overview::run(&cli, &dir, &mut out)?,
                "year" => year::run(&cli, &dir, &mut out)?,
                "pg" => {
                    let Cmd::Pg { pg, workers, no_w1 } = &cli.cmd else { unreachable!("only for pg") };
                    pg::run(&cli, &dir, pg, workers, *no_w1, &mut out).await?
                }
                _ => peers_run(&cli, &mut out).await?,
            }
        }
        runs.push(out);
    }
    if cli.json {
        let doc = serde_json::json!({
            "size": format!("{:?}", cli.size),
            "synchronous": cli.synchronous.as_str(),
            "runs": runs,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
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
