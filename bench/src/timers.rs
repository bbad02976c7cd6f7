//! W2–W4: the worker's timer loop on the wall clock, and a restart over overdue timers.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::json;
use spindown::clock::{ManualClock, SystemClock};
use spindown::engine::{Engine, EngineOptions, Incoming};
use spindown::meeting::history::{self, Cause, Outcome};
use spindown::meeting::record::decode_line;
use spindown::meeting::stored;
use spindown::meeting::{Effect, Ended, Policy, Reason, State, Timers};
use spindown::store::sqlite::SqliteStore;
use spindown::store::{Changes, DueKey, NewEffect, Store};
use spindown::store::{Phase, WriteCounts};
use spindown::time::{Span, Timestamp};

use crate::records::sleep_until;
use crate::{day, percentile, remove_db, worker_options, Cli, Metric};

/// An INSERT for a meeting starting at `meet`, seen at `seen`, with two instances.
fn insert(id: &str, meet: Timestamp, seen: Timestamp, n: u64) -> String {
    json!({
        "eventID": format!("ins-{n}"),
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": seen.as_micros() as f64 / 1e6,
            "Keys": {"id": {"S": id}},
            "NewImage": {
                "id": {"S": id},
                "meet_time": {"S": meet.to_rfc3339()},
                "status": {"S": "SCHEDULED"},
                "teacher_ec2_id": {"S": format!("i-{:017x}", n * 2)},
                "student_ec2_id": {"S": format!("i-{:017x}", n * 2 + 1)}
            }
        }
    })
    .to_string()
}

async fn open(cli: &Cli, db: &Path) -> Result<Arc<SqliteStore>> {
    Ok(Arc::new(SqliteStore::open(db, &worker_options(cli)).await?))
}

/// Create `n` meetings whose safety nets fall due at `due(i)`, without firing anything.
async fn seed_timers(cli: &Cli, db: &Path, n: usize, due: impl Fn(usize) -> Timestamp) -> Result<Duration> {
    let store = open(cli, db).await?;
    seed_into(store, n, due).await
}

/// [`seed_timers`] into any store.
pub async fn seed_into(store: Arc<dyn Store>, n: usize, due: impl Fn(usize) -> Timestamp) -> Result<Duration> {
    let seen = Timestamp::from_secs(day::DAY0 - 86_400);
    let frozen = Arc::new(ManualClock::live(seen));
    let e = Engine::start(store.clone(), Policy::default(), frozen, EngineOptions::default()).await?;
    let delay = Policy::default().safety_net_delay;
    let start = Instant::now();
    let mut batch = Vec::with_capacity(5000);
    for i in 0..n {
        let meet = due(i).saturating_add(Span::from_micros(-delay.as_micros()));
        let line = insert(&format!("t-{i:07}"), meet, seen, i as u64);
        batch.extend(decode_line(line.as_bytes()).into_iter().map(|item| Incoming { item, origin: "seed".into() }));
        if batch.len() == 5000 {
            e.apply(std::mem::take(&mut batch)).await?;
        }
    }
    e.apply(batch).await?;
    store.close().await;
    Ok(start.elapsed())
}

/// Every history entry in the database, decoded.
async fn entries(db: &Path) -> Result<Vec<(String, history::Entry)>> {
    let pool = reader(db).await?;
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT instance, entries FROM history").fetch_all(&pool).await?;
    pool.close().await;
    let mut out = Vec::new();
    for (id, bytes) in rows {
        for e in history::decode(&bytes)? {
            out.push((id.clone(), e));
        }
    }
    Ok(out)
}

/// Lateness of every timer fire in the database, microseconds, sorted.
async fn lateness(db: &Path) -> Result<Vec<i64>> {
    let mut v: Vec<i64> = entries(db)
        .await?
        .into_iter()
        .filter(|(_, e)| matches!(e.cause, Cause::Timer { .. }))
        .filter_map(|(_, e)| e.lateness.map(Span::as_micros))
        .collect();
    v.sort_unstable();
    Ok(v)
}

async fn reader(db: &Path) -> Result<sqlx::SqlitePool> {
    Ok(sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true))
        .await?)
}

/// History rows so far: each fire of these workloads ends a meeting and writes one.
async fn history_rows(reader: &sqlx::SqlitePool) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(seq) FROM history").fetch_one(reader).await?.unwrap_or(0))
}

/// Run the timer loop on the wall clock until `n` meetings have ended.
async fn run_loop_until(cli: &Cli, db: &Path, n: usize, limit: Duration) -> Result<(Duration, Timestamp, WriteCounts)> {
    let store = open(cli, db).await?;
    let e = Arc::new(
        Engine::start(store.clone(), Policy::default(), Arc::new(SystemClock), EngineOptions::default()).await?,
    );
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
    let reader = reader(db).await?;
    let start = Instant::now();
    let base = history_rows(&reader).await?;
    loop {
        let fired = history_rows(&reader).await? - base;
        if fired >= n as i64 {
            break;
        }
        ensure!(start.elapsed() < limit, "only {fired} of {n} fired in {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let done = Timestamp::now();
    let _ = stop_tx.send(());
    looper.await??;
    let counts = store.write_counts();
    store.close().await;
    Ok((start.elapsed(), done, counts))
}

/// [`push_profile`] for another backend: the phases named `store: …`.
pub(crate) fn push_profile_pub(out: &mut Vec<Metric>, w: &'static str, counts: &WriteCounts) {
    let from = out.len();
    push_profile(out, w, counts);
    for m in &mut out[from..] {
        if let Some(phase) = m.name.strip_prefix("sqlite: ") {
            m.name = format!("store: {phase}");
        }
    }
}

pub fn push_lateness(out: &mut Vec<Metric>, w: &'static str, late: &[i64]) {
    out.push(Metric::new(w, "lateness min", late.first().copied().unwrap_or(0) as f64 / 1000.0, "ms"));
    out.push(Metric::new(w, "lateness p50", percentile(late, 0.5) as f64 / 1000.0, "ms"));
    out.push(Metric::new(w, "lateness p99", percentile(late, 0.99) as f64 / 1000.0, "ms"));
    out.push(Metric::new(w, "lateness max", late.last().copied().unwrap_or(0) as f64 / 1000.0, "ms"));
}

fn push_profile(out: &mut Vec<Metric>, w: &'static str, counts: &WriteCounts) {
    out.push(Metric::new(w, "transactions", counts.transactions as f64, "tx"));
    out.push(Metric::new(w, "rows written", counts.rows() as f64, "rows"));
    for (p, secs) in Phase::ALL.iter().zip(counts.phase_secs) {
        out.push(Metric::new(w, format!("sqlite: {}", p.as_str()), secs, "s"));
    }
}

/// W2: N safety nets due within one second.
pub async fn w2(cli: &Cli, dir: &Path, out: &mut Vec<Metric>) -> Result<()> {
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
    out.push(Metric::new("W2", "timers", n as f64, "timers"));
    out.push(Metric::new("W2", "all fired after the first due", span, "s"));
    out.push(Metric::new("W2", "throughput", n as f64 / span.max(1.0), "fires/s"));
    push_lateness(out, "W2", &late);
    push_profile(out, "W2", &counts);
    let (alone, txs) = store_alone(cli, dir, "w2", n).await?;
    out.push(Metric::new("W2", "ceiling: the store alone, same reads and rows", alone, "s"));
    out.push(Metric::new("W2", "ceiling: the store alone", n as f64 / alone, "fires/s"));
    out.push(Metric::new("W2", "ceiling: transactions", txs as f64, "tx"));
    Ok(())
}

/// The store alone doing what the timer loop's units of work do with `n`
/// overdue safety nets, with no engine in between: each transaction reads
/// pages of due timers with their meetings (1,024 a page, one statement
/// each, as the engine does) up to 2,000 fires (its units of work), and
/// writes each one back ended —
/// the meeting row, a one-entry history chunk, an outbox row — then commits.
/// The ceiling beside W2 and W3: the same reads and rows, in as many
/// transactions, through the same statements. Returns (seconds, transactions).
async fn store_alone(cli: &Cli, dir: &Path, name: &str, n: usize) -> Result<(f64, u64)> {
    let db = dir.join(format!("{name}-store-alone.db"));
    remove_db(&db);
    let due = Timestamp::now().saturating_add(Span::from_mins(-5));
    seed_timers(cli, &db, n, |_| due).await?;
    let store = open(cli, &db).await?;
    let now = Timestamp::now();
    let chunk = crate::w1::story(now, 1);
    let start = Instant::now();
    let mut fired = 0;
    let mut txs = 0;
    loop {
        let mut uow = store.begin().await?;
        let mut keys: Vec<DueKey> = Vec::new();
        let mut loaded = Vec::new();
        while keys.len() < 2000 {
            let (page, meetings) = uow.due_loaded(keys.last(), now, 1024).await?;
            let full = page.len() == 1024;
            keys.extend(page);
            loaded.extend(meetings);
            if !full {
                break;
            }
        }
        loaded.truncate(2000);
        if loaded.is_empty() {
            uow.rollback().await?;
            break;
        }
        let mut changes = Changes::default();
        for row in loaded {
            // Decoded and encoded again, as the engine does with a meeting it fires.
            let version = row.version;
            let mut s = stored::meeting_of(row)?;
            let m = &mut s.meeting;
            m.version += 1;
            m.state = State::Terminated;
            m.timers = Timers::default();
            m.ended = Some(Ended { reason: Reason::NoShowTimeout, at: now });
            let id = m.id.clone();
            let instances = m.instances.iter().cloned().collect();
            changes.history.push(stored::append(&id, chunk.clone()));
            let parts = [
                Effect::Terminate { instances },
                Effect::WriteBack { reason: Reason::NoShowTimeout, terminated_at: now },
            ];
            changes.effects.push(NewEffect {
                key: format!("{id}/end"),
                subject: id.to_string(),
                parts: stored::encode_parts(&parts),
                count: parts.len(),
                at: now,
                completed: false,
            });
            changes.instances.push(crate::w1::row(m, s.event_ids, Some(version)));
        }
        fired += changes.instances.len();
        uow.commit(changes).await?;
        txs += 1;
    }
    let took = start.elapsed().as_secs_f64();
    store.close().await;
    ensure!(fired == n, "the store alone ended {fired} of {n}");
    Ok((took, txs))
}

/// W3: a fresh process restarts over N overdue timers.
pub async fn w3(cli: &Cli, dir: &Path, out: &mut Vec<Metric>) -> Result<()> {
    let n = cli.size.sizes().w3_timers;
    let db = dir.join("w3.db");
    remove_db(&db);
    let due = Timestamp::now().saturating_add(Span::from_mins(-5));
    seed_timers(cli, &db, n, |_| due).await?;
    let exe = std::env::current_exe()?;
    let child = tokio::process::Command::new(exe)
        .args(["--synchronous", cli.synchronous.as_str(), "w3-recover"])
        .arg(&db)
        .arg(n.to_string())
        .output()
        .await?;
    ensure!(child.status.success(), "w3-recover failed: {}", String::from_utf8_lossy(&child.stderr));
    eprint!("{}", String::from_utf8_lossy(&child.stderr));
    let r: serde_json::Value = serde_json::from_slice(&child.stdout).context("w3-recover output")?;
    let g = |k: &str| r[k].as_f64().unwrap_or(-1.0);
    out.push(Metric::new("W3", "overdue timers", n as f64, "timers"));
    out.push(Metric::new("W3", "first fire after start", g("first_fire_s"), "s"));
    out.push(Metric::new("W3", "all fired after start", g("all_fired_s"), "s"));
    out.push(Metric::new("W3", "throughput", n as f64 / g("all_fired_s"), "fires/s"));
    out.push(Metric::new("W3", "peak RSS", g("peak_rss_mib"), "MiB"));
    out.push(Metric::new("W3", "fires recorded", g("fires"), "fires"));
    out.push(Metric::new("W3", "meetings terminated twice", g("twice"), "meetings"));
    let (alone, txs) = store_alone(cli, dir, "w3", n).await?;
    out.push(Metric::new("W3", "ceiling: the store alone, same reads and rows", alone, "s"));
    out.push(Metric::new("W3", "ceiling: transactions", txs as f64, "tx"));
    Ok(())
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(-1.0, |kb| kb / 1024.0)
}

/// The W3 child: open, run the timer loop, report.
pub async fn w3_recover(cli: &Cli, db: &Path, expect: u64) -> Result<()> {
    let start = Instant::now();
    let store = open(cli, db).await?;
    let e = Arc::new(
        Engine::start(store.clone(), Policy::default(), Arc::new(SystemClock), EngineOptions::default()).await?,
    );
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
    let reader = reader(db).await?;
    let base = history_rows(&reader).await?;
    let mut first = None;
    let all = loop {
        let fires = history_rows(&reader).await? - base;
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
    let rss = peak_rss_mib();
    store.close().await;
    let all_entries = entries(db).await?;
    let fires = all_entries.iter().filter(|(_, e)| matches!(e.cause, Cause::Timer { .. })).count();
    let mut ends = std::collections::HashMap::new();
    for (id, e) in &all_entries {
        if e.outcome == Outcome::Terminated {
            *ends.entry(id.as_str()).or_insert(0) += 1;
        }
    }
    let twice = ends.values().filter(|n| **n > 1).count();
    println!(
        "{}",
        json!({
            "first_fire_s": first.unwrap_or_default().as_secs_f64(),
            "all_fired_s": all.as_secs_f64(),
            "peak_rss_mib": rss,
            "fires": fires,
            "twice": twice,
        })
    );
    Ok(())
}

/// W4: R timers a second for S seconds.
pub async fn w4(cli: &Cli, dir: &Path, out: &mut Vec<Metric>) -> Result<()> {
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
    out.push(Metric::new("W4", "timers", n as f64, "timers"));
    out.push(Metric::new("W4", "rate", s.w4_rate as f64, "timers/s"));
    push_lateness(out, "W4", &late);
    push_profile(out, "W4", &counts);
    Ok(())
}
