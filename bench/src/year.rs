//! YEAR: a database that runs for a year stays the size of its retention
//! window.
//!
//! A generated year of traffic (10,000 meetings a day at full size, about
//! three stream records each, every scenario kind) is split into months by
//! event time; each month is replayed into one database file with `spindown
//! --db year.db replay MONTH --until END` (the virtual clock resumes where
//! the previous month stopped), then `spindown prune --before END − 30 d`
//! deletes what retention no longer keeps — what the worker's housekeeping
//! does every 10 minutes, done once a month. After each month: the file's
//! size (database + WAL), the meetings it holds, and the time each step took.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use crate::{day, remove_db, Cli, Metric, Size};

/// (meetings a day, days, days kept, days a chunk).
fn shape(size: Size) -> (usize, u32, i64, u32) {
    match size {
        Size::Full => (10_000, 365, 30, 30),
        Size::Small => (2_000, 120, 30, 30),
        Size::Tiny => (100, 20, 5, 5),
    }
}

/// Split the generated stream into chunks of `chunk_days` by event time.
struct Splitter {
    dir: PathBuf,
    chunk_secs: i64,
    files: Vec<(PathBuf, BufWriter<std::fs::File>)>,
    line: Vec<u8>,
}

impl Splitter {
    fn route(&mut self) -> std::io::Result<()> {
        let text = std::str::from_utf8(&self.line).unwrap_or("");
        let t = text
            .split("\"ApproximateCreationDateTime\":")
            .nth(1)
            .and_then(|r| r.split([',', '}']).next())
            .and_then(|n| n.trim().parse::<f64>().ok())
            .unwrap_or(day::DAY0 as f64);
        let k = (((t as i64) - day::DAY0).max(0) / self.chunk_secs) as usize;
        while self.files.len() <= k {
            let path = self.dir.join(format!("chunk-{:03}.jsonl", self.files.len()));
            self.files.push((path.clone(), BufWriter::new(std::fs::File::create(&path)?)));
        }
        self.files[k].1.write_all(&self.line)?;
        self.line.clear();
        Ok(())
    }
}

impl Write for Splitter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            self.line.push(b);
            if b == b'\n' {
                self.route()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        for (_, f) in &mut self.files {
            f.flush()?;
        }
        Ok(())
    }
}

fn size_mib(db: &Path) -> f64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len() as f64)
        .sum::<f64>()
        / (1024.0 * 1024.0)
}

fn run_cli(bin: &Path, db: &Path, args: &[&str]) -> Result<(String, f64)> {
    let t0 = Instant::now();
    let out = Command::new(bin)
        .arg("--db")
        .arg(db)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("SPINDOWN_DB")
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    ensure!(out.status.success(), "spindown {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok((String::from_utf8_lossy(&out.stdout).into_owned(), t0.elapsed().as_secs_f64()))
}

fn iso(t: i64) -> String {
    spindown::time::Timestamp::from_secs(t).to_rfc3339()
}

pub fn run(cli: &Cli, dir: &Path, out: &mut Vec<Metric>) -> Result<()> {
    let bin = crate::w1::spindown_binary()?;
    let (per_day, days, keep, chunk_days) = shape(cli.size);
    let chunks_dir = dir.join("year");
    let _ = std::fs::remove_dir_all(&chunks_dir);
    std::fs::create_dir_all(&chunks_dir)?;
    let started = Instant::now();
    let mut split = Splitter {
        dir: chunks_dir.clone(),
        chunk_secs: i64::from(chunk_days) * 86_400,
        files: Vec::new(),
        line: Vec::new(),
    };
    let stats = day::write_day(&mut split, per_day * days as usize * 3, days, 7)?;
    split.flush()?;
    let chunks: Vec<PathBuf> = split.files.drain(..).map(|(p, _)| p).collect();
    eprintln!(
        "year: generated {} records of {} meetings over {days} days in {} chunks ({:.0} s)",
        stats.lines,
        stats.meetings,
        chunks.len(),
        started.elapsed().as_secs_f64()
    );
    let db = dir.join("year.db");
    remove_db(&db);
    let mut peak: f64 = 0.0;
    let (mut replay_secs, mut prune_secs, mut pruned) = (0.0, 0.0, 0u64);
    let mut rows = Vec::new();
    for (k, chunk) in chunks.iter().enumerate() {
        let end = day::DAY0 + (k as i64 + 1) * i64::from(chunk_days) * 86_400;
        let (_, r) =
            run_cli(&bin, &db, &["replay", chunk.to_str().expect("a UTF-8 path"), "--json", "--until", &iso(end)])?;
        std::fs::remove_file(chunk)?;
        let cut = iso(end - keep * 86_400);
        let (printed, p) = run_cli(&bin, &db, &["prune", "--before", &cut, "--json"])?;
        let report: Value = serde_json::from_str(printed.trim()).context("prune --json")?;
        pruned += report["meetings"].as_u64().unwrap_or(0);
        let (status, _) = run_cli(&bin, &db, &["status", "--json"])?;
        let status: Value = serde_json::from_str(&status)?;
        let held = status["counts"]["meetings"].as_i64().unwrap_or(0);
        let mib = size_mib(&db);
        peak = peak.max(mib);
        replay_secs += r;
        prune_secs += p;
        eprintln!(
            "year: day {:>3}: {held:>7} meetings kept, {:>8} pruned so far, {mib:>7.1} MiB (replay {r:.1} s, prune {p:.1} s)",
            (k + 1) * chunk_days as usize,
            pruned
        );
        rows.push((held, mib));
    }
    let (held, last) = *rows.last().context("no chunk")?;
    // The size once the window is full (after `keep` days) — what a year-old database weighs.
    let full_at = (keep as usize).div_ceil(chunk_days as usize).min(rows.len() - 1);
    let at_window = rows[full_at].1;
    out.push(Metric::new(
        "YEAR",
        format!("meetings generated ({per_day}/day, {days} days)"),
        stats.meetings as f64,
        "meetings",
    ));
    out.push(Metric::new("YEAR", "meetings pruned", pruned as f64, "meetings"));
    out.push(Metric::new("YEAR", format!("meetings kept at the end ({keep}-day retention)"), held as f64, "meetings"));
    out.push(Metric::new("YEAR", "file size once the window is full", at_window, "MiB"));
    out.push(Metric::new("YEAR", "file size at the end", last, "MiB"));
    out.push(Metric::new("YEAR", "largest file size", peak, "MiB"));
    out.push(Metric::new("YEAR", "replay, all chunks", replay_secs, "s"));
    out.push(Metric::new("YEAR", "prune, all chunks", prune_secs, "s"));
    Ok(())
}
