//! The same W2 (storm) and W4 (steady) workloads on peers:
//! tokio-cron-scheduler one-shot jobs (in memory) and apalis on SQLite.
//!
//! Each job records its lateness (when it ran − when it was due). Neither
//! peer writes a state transition, a history row or an outbox row: they do
//! less work per fire than spindown does.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use apalis::prelude::*;
use apalis_sql::sqlite::SqliteStorage;
use apalis_sql::Config;
use serde::{Deserialize, Serialize};
use spindown::time::{Span, Timestamp};
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::timers::push_lateness;
use crate::{percentile, Metric};

type Lateness = Arc<Mutex<Vec<i64>>>;

/// Wait until `n` jobs ran or `limit` passed; how long it took.
async fn wait_for(late: &Lateness, n: usize, limit: Duration) -> Duration {
    let start = Instant::now();
    while late.lock().unwrap().len() < n && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// What one peer run measured.
pub struct PeerRun {
    /// Lateness of the jobs that ran, µs, sorted.
    pub late: Vec<i64>,
    /// From the first due time to the last run (or the deadline).
    pub took: Duration,
    /// Scheduling the jobs.
    pub setup: Duration,
}

/// tokio-cron-scheduler: one one-shot job per timer, due at `due(i)` from now.
async fn tcs(n: usize, due_in: impl Fn(usize) -> Duration, limit: Duration) -> Result<PeerRun> {
    let mut sched = JobScheduler::new().await?;
    let late: Lateness = Arc::default();
    let setup = Instant::now();
    // Adding jobs is slow in tokio-cron-scheduler; if it takes longer than
    // this head start, the jobs are late before they start (and that counts).
    let base = Instant::now() + Duration::from_secs(5 + n as u64 / 5000);
    for i in 0..n {
        let at = base + due_in(i);
        let late = late.clone();
        let job = Job::new_one_shot_at_instant_async(at, move |_, _| {
            let late = late.clone();
            Box::pin(async move {
                // Signed: a job that runs early counts as negative lateness.
                let now = Instant::now();
                let l = if now >= at {
                    now.duration_since(at).as_micros() as i64
                } else {
                    -(at.duration_since(now).as_micros() as i64)
                };
                late.lock().unwrap().push(l);
            })
        })?;
        sched.add(job).await?;
    }
    let setup = setup.elapsed();
    sched.start().await?;
    tokio::time::sleep(base.saturating_duration_since(Instant::now())).await;
    wait_for(&late, n, limit).await;
    let took = Instant::now().saturating_duration_since(base);
    sched.shutdown().await?;
    let mut v = late.lock().unwrap().clone();
    v.sort_unstable();
    Ok(PeerRun { late: v, took, setup })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Timer {
    due_us: i64,
}

async fn on_timer(t: Timer, late: Data<Lateness>) -> Result<(), BoxDynError> {
    let l = Timestamp::now().as_micros() - t.due_us;
    late.lock().unwrap().push(l);
    Ok(())
}

/// apalis with its SQLite storage: one scheduled job per timer.
async fn apalis(n: usize, due_in: impl Fn(usize) -> Duration, limit: Duration) -> Result<PeerRun> {
    let dir = tempfile::tempdir()?;
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("apalis.db"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
    SqliteStorage::<()>::setup(&pool).await?;
    let config = Config::new("bench").set_poll_interval(Duration::from_millis(100)).set_buffer_size(1000);
    let mut storage: SqliteStorage<Timer> = SqliteStorage::new_with_config(pool, config);
    let setup = Instant::now();
    let base = Timestamp::now().saturating_add(Span::from_secs(5 + n as i64 / 2000));
    for i in 0..n {
        let due = base.saturating_add(Span::from_micros(due_in(i).as_micros() as i64));
        let secs = due.as_micros().div_euclid(1_000_000);
        storage.schedule(Timer { due_us: due.as_micros() }, secs).await?;
    }
    let setup = setup.elapsed();
    let late: Lateness = Arc::default();
    let worker = WorkerBuilder::new("bench").data(late.clone()).backend(storage).build_fn(on_timer);
    let monitor = tokio::spawn(Monitor::new().register(worker).run());
    let start_wait = base.as_micros() - Timestamp::now().as_micros();
    tokio::time::sleep(Duration::from_micros(start_wait.max(0) as u64)).await;
    wait_for(&late, n, limit).await;
    let took = Duration::from_micros(Timestamp::now().since(base).as_micros().max(0) as u64);
    monitor.abort();
    let mut v = late.lock().unwrap().clone();
    v.sort_unstable();
    Ok(PeerRun { late: v, took, setup })
}

fn report(out: &mut Vec<Metric>, w: &'static str, n: usize, r: &PeerRun) {
    out.push(Metric { workload: w, name: "setup (schedule the jobs)".into(), value: r.setup.as_secs_f64(), unit: "s" });
    out.push(Metric { workload: w, name: "ran".into(), value: r.late.len() as f64, unit: "jobs" });
    out.push(Metric { workload: w, name: "of".into(), value: n as f64, unit: "jobs" });
    out.push(Metric {
        workload: w,
        name: "throughput".into(),
        value: r.late.len() as f64 / r.took.as_secs_f64().max(1.0),
        unit: "fires/s",
    });
    push_lateness(out, w, &r.late);
}

pub async fn run(storm: usize, rate: usize, secs: usize, out: &mut Vec<Metric>) -> Result<()> {
    let storm_due = |n: usize| move |i: usize| Duration::from_micros((1_000_000 * i / n) as u64);
    let steady_due = move |i: usize| Duration::from_micros((1_000_000 / rate * i) as u64);
    let steady = rate * secs;
    // Each peer gets a generous deadline; what has not run by then is counted as not run.
    let storm_limit = Duration::from_secs(120);
    let steady_limit = Duration::from_secs(secs as u64 + 60);

    eprintln!("  tokio-cron-scheduler W2…");
    let r = tcs(storm, storm_due(storm), storm_limit).await?;
    report(out, "W2 tcs", storm, &r);
    eprintln!("  tokio-cron-scheduler W4…");
    let r = tcs(steady, steady_due, steady_limit).await?;
    report(out, "W4 tcs", steady, &r);
    eprintln!("  apalis W2…");
    let r = apalis(storm, storm_due(storm), storm_limit).await?;
    report(out, "W2 apalis", storm, &r);
    eprintln!("  apalis W4…");
    let r = apalis(steady, steady_due, steady_limit).await?;
    report(out, "W4 apalis", steady, &r);
    let _ = percentile;
    Ok(())
}
