//! `spindown replay`: the engine on a virtual clock over a file of records.
//!
//! Records are applied in file order; the clock moves to each record's
//! `ApproximateCreationDateTime` and timers due before it fire first. After
//! the last record the clock runs on until no timer is pending (or until
//! `--until`). Reading and decoding run on a thread of their own, a couple of
//! batches ahead; the engine (resident, dry-run effects completed inline) is
//! the only writer of its database, so memory stays bounded by the live
//! meetings and the batches in flight.

use std::io::Read;
use std::time::Instant;

use serde::Serialize;

use crate::clock::{Clock, ManualClock};
use crate::engine::{EngineError, Incoming, Report};
use crate::meeting::record::Item;
use crate::meeting::MeetingWorkflow;
use crate::operate::MeetingEngine;
use crate::time::Timestamp;

use super::feed::LineFeed;

/// How `replay`'s engine runs: resident (the only writer of its database),
/// every effect completed in the unit of work that queued it by the dry run,
/// which says in the history what would have been done.
pub fn engine_options() -> crate::engine::EngineOptions<crate::meeting::MeetingWorkflow> {
    crate::engine::EngineOptions::resident(crate::outbox::dry_run::entry)
}

/// Options for [`replay`].
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Stop the virtual clock here: later records are not applied, later timers do not fire.
    pub until: Option<Timestamp>,
    /// Input items per unit of work.
    pub batch: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions { until: None, batch: 5_000 }
    }
}

/// Where a replay spent its time.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ReplayTimings {
    /// Applying the records (timers due between them included).
    pub apply_secs: f64,
    /// Running the clock on after the last record.
    pub run_on_secs: f64,
    /// Of both, time spent waiting for the store.
    pub store_secs: f64,
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    pub lines: u64,
    /// Records and dead letters read (an envelope line counts each element).
    pub items: u64,
    /// Applying the records.
    pub applied: Report,
    /// Running the clock on.
    pub run_on: Report,
    /// Records left unapplied because they fall after `--until`.
    pub after_until: u64,
    /// Where the virtual clock stopped.
    pub clock: Option<Timestamp>,
    pub timings: ReplayTimings,
}

impl ReplaySummary {
    /// Both phases together.
    pub fn total(&self) -> Report {
        let mut r = self.applied.clone();
        r.merge(&self.run_on);
        r
    }
}

/// A replay failure (bad input never is one: it is dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading input: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Replay a record stream on `engine`, whose clock must be `clock`.
///
/// # Errors
///
/// The input cannot be read, or the store fails.
pub async fn replay<R: Read + Send + 'static>(
    engine: &MeetingEngine,
    clock: &ManualClock,
    feed: LineFeed<R>,
    options: &ReplayOptions,
) -> Result<ReplaySummary, ReplayError> {
    let mut summary = ReplaySummary::default();
    let until = options.until.unwrap_or(Timestamp::MAX);
    let mut projected = clock.now();
    let (mut batches, reader) = read_ahead(feed, options.batch.max(1));
    let mut stopped = false;
    let started = Instant::now();
    while let Some(batch) = batches.recv().await {
        let mut batch = batch?;
        summary.items += batch.len() as u64;
        if stopped {
            // Count what is left without applying it.
            summary.after_until += batch.iter().filter(|i| matches!(i.item, Item::Record(_))).count() as u64;
            continue;
        }
        // Cut the batch at the first record that would move the clock past `until`.
        let mut cut = None;
        for (i, inc) in batch.iter().enumerate() {
            if let Item::Record(d) = &inc.item {
                let t = d.change.event_time.unwrap_or(projected).max(projected);
                if t > until {
                    cut = Some(i);
                    break;
                }
                projected = t;
            }
        }
        if let Some(i) = cut {
            let rest: Vec<Incoming<MeetingWorkflow>> = batch.split_off(i);
            summary.after_until += rest.iter().filter(|i| matches!(i.item, Item::Record(_))).count() as u64;
            stopped = true;
        }
        summary.applied.merge(&engine.apply(batch).await?);
    }
    summary.lines = reader.join().map_err(|_| std::io::Error::other("the input reader panicked"))?;
    summary.timings.apply_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    summary.run_on = engine.run_until(until).await?;
    let flush = Instant::now();
    summary.run_on.merge(&engine.flush().await?);
    let flush = flush.elapsed();
    summary.timings.run_on_secs = started.elapsed().as_secs_f64();
    summary.timings.store_secs = (summary.applied.store_time + summary.run_on.store_time + flush).as_secs_f64();
    if options.until.is_some() {
        clock.advance_to(until);
    }
    summary.clock = Some(clock.now());
    Ok(summary)
}

/// Batches of decoded records, as [`read_ahead`] hands them over.
pub type Batches = tokio::sync::mpsc::Receiver<std::io::Result<Vec<Incoming<MeetingWorkflow>>>>;

/// Read and decode batches on a thread of their own, two batches ahead.
/// Returns the batches and the thread, which yields the number of lines read.
pub fn read_ahead<R: Read + Send + 'static>(
    mut feed: LineFeed<R>,
    batch: usize,
) -> (Batches, std::thread::JoinHandle<u64>) {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let handle = std::thread::Builder::new().name("spindown-read".into()).spawn(move || {
        loop {
            match feed.next_batch(batch) {
                Ok(Some(b)) => {
                    if tx.blocking_send(Ok(b)).is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
        feed.lines
    });
    (rx, handle.expect("the reader thread starts"))
}
