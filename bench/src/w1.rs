//! W1: `spindown replay DAY --json`, as a user runs it, and the raw SQLite ceiling.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use spindown::machine::Durable;
use spindown::meeting::history::{Cause, Chunk, Entry, Note, Outcome};
use spindown::meeting::stored;
use spindown::meeting::MeetingWorkflow;
use spindown::meeting::{Effect, InstanceId, Meeting, MeetingId, Reason, State, TimerKind};
use spindown::store::sqlite::{Durability, SqliteOptions, SqliteStore};
use spindown::store::Phase;
use spindown::store::{Changes, InstanceWrite, NewEffect, Store, StoredInstance};
use spindown::time::{Span, Timestamp};

use crate::{day, remove_db, Cli, Metric};

/// The `spindown` binary built beside this one (same profile).
pub(crate) fn spindown_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name(format!("spindown{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        bail!(
            "{} is not built: run `cargo build{}` first",
            bin.display(),
            if cfg!(debug_assertions) { "" } else { " --release" }
        );
    }
    Ok(bin)
}

/// A generated day of `records` lines in `dir` (written once, reused).
pub(crate) fn ensure_day(dir: &Path, records: usize) -> Result<PathBuf> {
    let days = (records / 1_000_000).max(1) as u32;
    let path = dir.join(format!("day-{records}.jsonl"));
    if !path.exists() {
        let started = Instant::now();
        let tmp = path.with_extension("partial");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let stats = day::write_day(&mut f, records, days, 42)?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        eprintln!(
            "generated {} ({} lines, {} meetings, {:.0} bytes a line, over {days} day(s)) in {:.1} s",
            path.display(),
            stats.lines,
            stats.meetings,
            stats.bytes as f64 / stats.lines.max(1) as f64,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(path)
}

/// What one replay run reported.
pub(crate) struct Run {
    wall_secs: f64,
    profile: Value,
}

pub(crate) fn replay(bin: &Path, day: &Path, db: Option<&Path>, dir: &Path) -> Result<Run> {
    let profile = dir.join("replay-profile.json");
    let _ = std::fs::remove_file(&profile);
    let mut cmd = Command::new(bin);
    if let Some(db) = db {
        remove_db(db);
        cmd.arg("--db").arg(db);
    }
    cmd.arg("replay").arg(day).arg("--json").arg("--profile").arg(&profile);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped()).env_remove("SPINDOWN_DB");
    let started = Instant::now();
    let out = cmd.output().with_context(|| format!("running {}", bin.display()))?;
    let wall_secs = started.elapsed().as_secs_f64();
    ensure!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    let profile: Value = serde_json::from_slice(&std::fs::read(&profile)?).context("the replay profile")?;
    Ok(Run { wall_secs, profile })
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

pub(crate) fn report(out: &mut Vec<Metric>, w: &'static str, run: &Run) {
    let p = &run.profile;
    let s = &p["summary"];
    let records = f(&s["applied"]["records"]);
    let fires = f(&s["applied"]["timers_fired"]) + f(&s["run_on"]["timers_fired"]);
    let effects = f(&s["applied"]["effects_completed"]) + f(&s["run_on"]["effects_completed"]);
    out.push(Metric::new(w, "records", records, "records"));
    out.push(Metric::new(w, "end to end (the whole command)", run.wall_secs, "s"));
    out.push(Metric::new(w, "throughput", records / run.wall_secs, "records/s"));
    out.push(Metric::new(w, "peak RSS", f(&p["peak_rss_mib"]), "MiB"));
    out.push(Metric::new(w, "phase: apply (records, timers between them)", f(&s["timings"]["apply_secs"]), "s"));
    out.push(Metric::new(w, "phase: run-on to the last timer", f(&s["timings"]["run_on_secs"]), "s"));
    out.push(Metric::new(w, "phase: output (every meeting's line)", f(&p["output_secs"]), "s"));
    out.push(Metric::new(w, "of apply + run-on: waiting for SQLite", f(&s["timings"]["store_secs"]), "s"));
    out.push(Metric::new(w, "timer fires", fires, "fires"));
    out.push(Metric::new(w, "dry-run effects (outbox rows, done inline)", effects, "rows"));
    let rows = &p["rows"];
    for (name, key) in [
        ("rows: instances", "instances"),
        ("rows: history chunks", "history_chunks"),
        ("history entries in them", "history_entries"),
        ("rows: outbox", "effects"),
        ("rows: dead letters", "dead"),
        ("transactions", "transactions"),
    ] {
        out.push(Metric::new(w, name, f(&rows[key]), "rows"));
    }
    let total_rows = f(&rows["instances"]) + f(&rows["history_chunks"]) + f(&rows["effects"]) + f(&rows["dead"]);
    out.push(Metric::new(w, "rows per record", total_rows / records, "rows"));
    if let Some(phases) = rows["phase_secs"].as_array() {
        for (phase, secs) in Phase::ALL.iter().zip(phases) {
            out.push(Metric::new(w, format!("sqlite: {}", phase.as_str()), f(secs), "s"));
        }
    }
}

/// W1 on a generated day, twice (a temporary database, a kept one), the raw
/// ceiling of the same writes, and the memory run on a larger day.
pub async fn run(cli: &Cli, dir: &Path, out: &mut Vec<Metric>) -> Result<()> {
    let sizes = cli.size.sizes();
    let bin = spindown_binary()?;
    let day = ensure_day(dir, sizes.w1_records)?;
    let temp = replay(&bin, &day, None, dir)?;
    report(out, "W1", &temp);
    let kept = replay(&bin, &day, Some(&dir.join("w1.db")), dir)?;
    report(out, "W1db", &kept);
    let rows = f(&kept.profile["rows"]["instances"])
        + f(&kept.profile["rows"]["history_chunks"])
        + f(&kept.profile["rows"]["effects"]);
    // (A profile whose keys moved would make the ceiling write nothing and
    // report nonsense: the smoke test in CI fails here instead.)
    ensure!(rows > 0.0, "the replay's profile counts no rows written: {}", kept.profile["rows"]);
    let raw = raw_ceiling(dir, &kept.profile["rows"]).await?;
    out.push(Metric::new("W1db", "raw ceiling: the same writes, no engine", raw, "s"));
    out.push(Metric::new("W1db", "raw ceiling rows/s", rows / raw, "rows/s"));
    if sizes.w1_memory_records > 0 {
        let big = ensure_day(dir, sizes.w1_memory_records)?;
        let run = replay(&bin, &big, None, dir)?;
        let records = f(&run.profile["summary"]["applied"]["records"]);
        out.push(Metric::new("W1big", "records", records, "records"));
        out.push(Metric::new("W1big", "end to end", run.wall_secs, "s"));
        out.push(Metric::new("W1big", "throughput", records / run.wall_secs, "records/s"));
        out.push(Metric::new("W1big", "peak RSS", f(&run.profile["peak_rss_mib"]), "MiB"));
    }
    Ok(())
}

/// A meeting's whole story as replay writes it: a typical length in entries.
pub(crate) fn story(at: Timestamp, entries: usize) -> Chunk {
    let i = InstanceId::parse("i-0123456789abcdef0").unwrap();
    (0..entries)
        .map(|n| Entry {
            at: at.saturating_add(Span::from_mins(15 * n as i64)),
            cause: Cause::Timer { kind: TimerKind::Recheck, due: at },
            from: Some(State::InProgress),
            to: Some(State::InProgress),
            outcome: Outcome::Updated,
            reason: None,
            lateness: Some(Span::ZERO),
            notes: vec![
                Note::LookingAgain,
                Note::Armed { kind: TimerKind::Recheck, due: at },
                Note::QueuedTerminate(vec![i.clone()]),
            ],
        })
        .collect()
}

/// A meeting's row as the engine writes it: its document and what is indexed of it.
pub(crate) fn row(m: &Meeting, keys: Vec<String>, loaded: Option<i64>) -> InstanceWrite {
    InstanceWrite {
        stored: StoredInstance {
            id: m.id.to_string(),
            version: loaded.map_or(1, |v| v + 1),
            keys,
            doc: stored::encode(m),
        },
        index: MeetingWorkflow::index(m),
        loaded_version: loaded,
        search_changed: false,
    }
}

/// The same number of meeting, history and outbox rows as the replay wrote,
/// in as many transactions, through the SQLite store's own commit (the same
/// statements), with nothing computed in between: what SQLite itself costs.
async fn raw_ceiling(dir: &Path, rows: &Value) -> Result<f64> {
    let db = dir.join("raw.db");
    remove_db(&db);
    let options = SqliteOptions { durability: Durability::Normal, ..SqliteOptions::default() }.bulk().lean();
    let store = Arc::new(SqliteStore::open(&db, &options).await?);
    let n = |k: &str| rows[k].as_u64().unwrap_or(0) as usize;
    let (meetings, chunks, effects, txs) =
        (n("instances"), n("history_chunks"), n("effects"), n("transactions").max(1));
    let per_chunk = (n("history_entries") / chunks.max(1)).max(1);
    let at = Timestamp::from_secs(day::DAY0);
    let chunk = story(at, per_chunk);
    let mut written = 0;
    let mut took = 0.0;
    for t in 0..txs {
        let upto = (meetings * (t + 1) / txs).min(meetings);
        let mut changes = Changes::default();
        for k in written..upto {
            // Keys spread over the key space as a day's are (a bijection: no two alike).
            let id = MeetingId::new(format!("m-{:016x}", (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))).unwrap();
            let mut m = Meeting::new(id.clone(), at);
            m.version = 3;
            m.state = State::Terminated;
            m.facts.meet_time = Some(at);
            m.instances.insert(InstanceId::parse("i-0123456789abcdef0").unwrap());
            m.ended = Some(spindown::meeting::Ended { reason: Reason::NoShowTimeout, at });
            changes.instances.push(row(&m, vec![format!("{k:032x}")], None));
            if k * chunks / meetings.max(1) < (k + 1) * chunks / meetings.max(1) || chunks >= meetings {
                changes.history.push(stored::append(&id, chunk.clone()));
            }
            if k * effects / meetings.max(1) < (k + 1) * effects / meetings.max(1) {
                let parts = [Effect::WriteBack { reason: Reason::NoShowTimeout, terminated_at: at }];
                changes.effects.push(NewEffect {
                    key: format!("{id}/end"),
                    subject: id.to_string(),
                    parts: stored::encode_parts(&parts),
                    count: parts.len(),
                    at,
                    completed: true,
                });
            }
        }
        changes.instances.sort_by(|a, b| a.stored.id.cmp(&b.stored.id));
        written = upto;
        let started = Instant::now();
        store.begin().await?.commit(changes).await?;
        took += started.elapsed().as_secs_f64();
    }
    store.close().await;
    Ok(took)
}
