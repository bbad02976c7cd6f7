//! `spindown replay`: the engine on a virtual clock over a file of records.
//!
//! Records are applied in file order; the clock moves to each record's
//! `ApproximateCreationDateTime` and timers due before it fire first. After
//! the last record the clock runs on until no timer is pending (or until
//! `--until`). Effects go through the dry-run port, which records what it
//! would have done in each meeting's history.

use std::io::Read;

use serde::Serialize;

use crate::clock::{Clock, ManualClock};
use crate::effects::{ExecReport, Executor};
use crate::engine::{Engine, EngineError, Incoming, Report};
use crate::feed::LineFeed;
use crate::record::Item;
use crate::store::StoreError;
use crate::time::Timestamp;

/// Options for [`replay`].
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Stop the virtual clock here: later records are not applied, later timers do not fire.
    pub until: Option<Timestamp>,
    /// Input items per transaction.
    pub batch: usize,
    /// Run the dry-run effect executor (records "would terminate …").
    pub dry_run_effects: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions { until: None, batch: 5000, dry_run_effects: true }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    pub lines: u64,
    /// Records and dead letters read (an envelope line counts each element).
    pub items: u64,
    pub engine: Report,
    pub effects: ExecReport,
    /// Records left unapplied because they fall after `--until`.
    pub after_until: u64,
    /// Where the virtual clock stopped.
    pub clock: Option<Timestamp>,
}

/// A replay failure (bad input never is one: it is dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading input: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Replay a record stream on `engine`, whose clock must be `clock`.
///
/// Reading and decoding the input runs on its own thread, a couple of batches
/// ahead of the engine, so parsing JSON overlaps with the engine's work.
pub async fn replay<R: Read + Send + 'static>(
    engine: &Engine,
    clock: &ManualClock,
    feed: LineFeed<R>,
    options: &ReplayOptions,
) -> Result<ReplaySummary, ReplayError> {
    let mut summary = ReplaySummary::default();
    let executor = Executor::dry_run(engine.store().clone(), engine.clock().clone());
    let until = options.until.unwrap_or(Timestamp::MAX);
    let mut projected = clock.now();
    let (mut batches, reader) = read_ahead(feed, options.batch.max(1));
    let mut stopped = false;
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
            let rest: Vec<Incoming> = batch.split_off(i);
            summary.after_until += rest.iter().filter(|i| matches!(i.item, Item::Record(_))).count() as u64;
            stopped = true;
        }
        let report = engine.apply(batch).await?;
        summary.engine.merge(&report);
        if options.dry_run_effects {
            merge_exec(&mut summary.effects, &executor.drain().await?);
        }
    }
    summary.lines = reader.join().map_err(|_| std::io::Error::other("the input reader panicked"))?;
    let report = engine.run_until(until).await?;
    summary.engine.merge(&report);
    if options.until.is_some() {
        clock.advance_to(until);
    }
    if options.dry_run_effects {
        merge_exec(&mut summary.effects, &executor.drain().await?);
    }
    summary.clock = Some(clock.now());
    Ok(summary)
}

/// Read and decode batches on a thread of their own, two batches ahead.
/// Returns the batches and the thread, which yields the number of lines read.
pub fn read_ahead<R: Read + Send + 'static>(
    mut feed: LineFeed<R>,
    batch: usize,
) -> (tokio::sync::mpsc::Receiver<std::io::Result<Vec<Incoming>>>, std::thread::JoinHandle<u64>) {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let handle = std::thread::spawn(move || {
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
    (rx, handle)
}

fn merge_exec(into: &mut ExecReport, r: &ExecReport) {
    into.done += r.done;
    into.retried += r.retried;
    into.failed += r.failed;
}
