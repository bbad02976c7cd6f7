//! The worker's recurring jobs: hints from other processes, housekeeping
//! (forget old eventIDs, apply retention) on a cron schedule, and the orphan
//! sweep — one sweeper at a time across the workers of a database.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{WorkerError, WorkerOptions};
use crate::operate::MeetingEngine;

use crate::store::StoreError;
use crate::time::Span;

pub use crate::retention::Retention;

/// The sweep's lease: a row of the shard-lease table under this stream name,
/// so that one worker sweeps at a time (another takes over once it dies).
pub const SWEEP_LEASE: (&str, &str) = ("spindown:sweep", "sweep");

/// Wake the timer loop and the executor on every hint another process
/// sends through the database (PostgreSQL: `LISTEN`). A connection that
/// cannot be had (an outage) is tried again; the loops poll meanwhile.
pub(super) async fn hints(engine: Arc<MeetingEngine>, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
    tokio::pin!(shutdown);
    let mut backoff = crate::backoff::Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    loop {
        let listening = tokio::select! {
            r = engine.store().listen() => r,
            _ = &mut shutdown => return Ok(()),
        };
        let mut hints = match listening {
            Ok(Some(h)) => h,
            Ok(None) => {
                // This backend has no hints: nothing to do until the stop.
                shutdown.await;
                return Ok(());
            }
            Err(e) if e.is_transient() => {
                tracing::debug!("listening for hints: {e}; polling meanwhile");
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => continue,
                    _ = &mut shutdown => return Ok(()),
                }
            }
            Err(e) => return Err(WorkerError::Effects(e)),
        };
        backoff.reset();
        loop {
            tokio::select! {
                r = hints.recv() => match r {
                    Ok(()) => {
                        engine.wake_timers();
                        engine.effects_notify().notify_one();
                    }
                    Err(err) => {
                        tracing::warn!("listening for hints: {err}; polling meanwhile");
                        tokio::time::sleep(backoff.next_delay()).await;
                        break;
                    }
                },
                _ = &mut shutdown => return Ok(()),
            }
        }
    }
}

/// Start the recurring jobs.
pub(super) async fn schedule(
    engine: Arc<MeetingEngine>,
    options: &WorkerOptions,
) -> Result<tokio_cron_scheduler::JobScheduler, WorkerError> {
    use tokio_cron_scheduler::{Job, JobScheduler};
    let err = |e: tokio_cron_scheduler::JobSchedulerError| WorkerError::Housekeeping(e.to_string());
    let scheduler = JobScheduler::new().await.map_err(err)?;
    let seen = Span::from_micros(options.seen_retention.as_micros() as i64);
    let retention = options.retention.clone();
    let (sweep_engine, worker_id) = (engine.clone(), options.reader.worker.id.clone());
    let job = Job::new_async(options.housekeeping.as_str(), move |_id, _sched| {
        let (engine, retention) = (engine.clone(), retention.clone());
        Box::pin(async move { housekeeping(&engine, seen, &retention).await })
    })
    .map_err(|e| WorkerError::Housekeeping(format!("schedule {:?}: {e}", options.housekeeping)))?;
    scheduler.add(job).await.map_err(err)?;
    if let Some(sweep) = options.sweep.clone() {
        let job = Job::new_repeated_async(sweep.every, move |_id, _sched| {
            let (engine, sweep, worker_id) = (sweep_engine.clone(), sweep.clone(), worker_id.clone());
            Box::pin(async move { sweep_once(&engine, &sweep, &worker_id).await })
        })
        .map_err(err)?;
        scheduler.add(job).await.map_err(err)?;
    }
    scheduler.start().await.map_err(err)?;
    Ok(scheduler)
}

fn noted(engine: &MeetingEngine, what: &str, e: &StoreError) {
    if e.is_transient() {
        engine.liveness().store_failed(what, e, engine.clock().now());
    } else {
        tracing::error!("{what} failed: {e}");
    }
}

/// Forget eventIDs the stream cannot deliver again, and delete what the
/// retention settings no longer keep (in small batches).
async fn housekeeping(engine: &MeetingEngine, seen: Span, retention: &Retention) {
    let now = engine.clock().now();
    let before = now.saturating_add(Span::from_micros(-seen.as_micros()));
    match engine.store().forget_event_ids(before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(meetings = n, before = %before, "forgot the eventIDs of meetings ended long ago"),
        Err(e) => noted(engine, "forgetting old eventIDs", &e),
    }
    match crate::retention::apply(engine.store().as_ref(), retention, now).await {
        Ok(r) if r.is_empty() => {}
        Ok(r) => tracing::info!(
            meetings = r.meetings,
            history = r.history,
            effects = r.effects,
            dead_letters = r.dead_letters,
            sweep_log = r.sweep_log,
            gaps = r.gaps,
            workers = r.workers,
            shards = r.shards,
            "retention: deleted what is no longer kept"
        ),
        Err(e) => noted(engine, "retention", &e),
    }
}

/// One sweep, by whichever worker holds the sweep lease.
async fn sweep_once(engine: &MeetingEngine, sweep: &super::SweepJob, worker_id: &str) {
    let store = engine.store();
    let ttl = Span::from_micros((sweep.every.as_micros() as i64).saturating_mul(2));
    match store.acquire_lease(SWEEP_LEASE.0, SWEEP_LEASE.1, worker_id, ttl).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            tracing::debug!("orphan sweep: another worker sweeps");
            return;
        }
        Err(e) => return noted(engine, "orphan sweep", &e),
    }
    match crate::sweep::sweep(store, &sweep.ec2, engine.clock(), &sweep.options).await {
        Ok(r) if r.findings.is_empty() => tracing::debug!(seen = r.seen, "orphan sweep: nothing to do"),
        Ok(r) => {
            for f in &r.findings {
                tracing::info!(instance = %f.instance_id, meeting_id = %f.meeting_id, action = %f.action, "orphan sweep: {}", f.detail);
            }
        }
        Err(e) => tracing::warn!("orphan sweep failed: {e}"),
    }
}
