//! `spindown whatif`: one file of recorded stream records through several
//! models — the old Lambdas ([`legacy`](crate::legacy)) and any number of
//! policies — and, for each, when every meeting's instances would have been
//! terminated, in instance-hours and dollars. The contract is `spec/whatif.md`.
//!
//! Everything runs in memory, no database. Each record is decoded once; the
//! front (`front.rs`) decides once what every model shares (dead letters,
//! duplicates, the virtual clock, each meeting's start and instance set);
//! the models then run on a few threads (as many as the cores), each on the engine's core
//! ([`Core`]: the virtual clock and the timer order of the durable engine)
//! over the same accepted records. A policy model is the engine's own
//! machine ([`MeetingWorkflow`]), the legacy model the Lambdas'
//! ([`LegacyWorkflow`]) — `spindown replay --policy P` gives the same end for
//! every meeting, which the tests check.
//!
//! Memory is bounded by the meetings (a few dozen bytes each, plus the live
//! meetings' state in each model) and the batches in flight, not by the input.

mod figures;
mod front;
pub mod html;
pub mod table;

use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::core::Core;
use crate::legacy::LegacyWorkflow;
use crate::machine::Machine;
use crate::meeting::record::Item;
use crate::meeting::{Ended, Input, MeetingWorkflow, Policy};
use crate::source::feed::LineFeed;

pub use figures::{Cost, MeetingFigures, Summary, DEFAULT_PRICE};
pub(crate) use front::Event;
pub use front::{ReadStats, Seen};

use front::Front;

/// Records decoded per batch handed from the reader to the models.
const BATCH: usize = 4096;

/// A model to run.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// `legacy`, a policy file's stem, or `default`.
    pub name: String,
    pub kind: ModelKind,
}

#[derive(Debug, Clone)]
pub enum ModelKind {
    /// The two Lambdas as written.
    Legacy,
    /// The engine under this policy.
    Policy(Policy),
}

/// One model's result: how each meeting ended (by meeting index).
#[derive(Debug, Clone)]
pub struct ModelRun {
    pub name: String,
    /// By meeting index ([`WhatIf::meetings`]); `None`: never terminated.
    pub ends: Vec<Option<Ended>>,
    pub timers_fired: u64,
    /// Time this model's thread spent deciding (not waiting for records).
    pub busy: Duration,
}

/// Where the time went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Reading the file to the last model finishing.
    pub run: Duration,
    /// The front's own work (admission, dedupe, facts), excluding waits.
    pub front: Duration,
}

/// The result of a what-if run, before figures.
#[derive(Debug, Clone)]
pub struct WhatIf {
    /// Every meeting with an accepted record, in first-seen order.
    pub meetings: Vec<Seen>,
    /// One per model, in the order given.
    pub models: Vec<ModelRun>,
    pub read: ReadStats,
    /// The latest event time among the accepted records.
    pub latest_event: Option<crate::time::Timestamp>,
    pub timings: Timings,
}

/// A what-if failure (bad records never are one: they are counted as dead letters).
#[derive(Debug, thiserror::Error)]
pub enum WhatIfError {
    #[error("reading input: {0}")]
    Io(#[from] std::io::Error),
    #[error("the {0} thread panicked")]
    Panicked(String),
}

/// Run `feed` through `models`.
///
/// # Errors
///
/// The input cannot be read.
pub fn run<R: Read + Send + 'static>(feed: LineFeed<R>, models: &[ModelSpec]) -> Result<WhatIf, WhatIfError> {
    let started = Instant::now();
    let (batches, reader) = read_ahead(feed);
    // Models share threads: as many as the machine has cores (at least
    // four), each running its models in turn on every batch — `tune` hands
    // over dozens of models, `whatif` a few.
    let workers = models.len().min(std::thread::available_parallelism().map_or(4, |n| n.get()).max(4));
    let mut groups: Vec<Vec<Running>> = (0..workers).map(|_| Vec::new()).collect();
    for (n, spec) in models.iter().enumerate() {
        let model: Box<dyn Model> = match &spec.kind {
            ModelKind::Legacy => Box::new(Core::new(LegacyWorkflow)),
            ModelKind::Policy(p) => Box::new(Core::new(MeetingWorkflow::new(p.clone()))),
        };
        groups[n % workers].push(Running { n, name: spec.name.clone(), model, busy: Duration::ZERO });
    }
    let mut senders: Vec<SyncSender<Arc<Vec<Event>>>> = Vec::new();
    let mut threads = Vec::new();
    for (t, group) in groups.into_iter().enumerate() {
        let (tx, rx) = sync_channel::<Arc<Vec<Event>>>(4);
        senders.push(tx);
        let handle = std::thread::Builder::new()
            .name(format!("whatif-models-{t}"))
            .spawn(move || model_thread(group, rx))
            .map_err(WhatIfError::Io)?;
        threads.push(handle);
    }

    let (front, front_busy) = front_pass(batches, reader, |events| {
        let events = Arc::new(events);
        for tx in &senders {
            // A model thread that stopped has panicked; its join says so.
            let _ = tx.send(events.clone());
        }
    })?;
    drop(senders);
    let mut runs: Vec<Option<ModelRun>> = (0..models.len()).map(|_| None).collect();
    for (t, handle) in threads.into_iter().enumerate() {
        let done = handle.join().map_err(|_| WhatIfError::Panicked(format!("model thread {t}")))?;
        for (n, mut r) in done {
            r.ends.resize(front.meetings.len(), None);
            runs[n] = Some(r);
        }
    }
    let runs = runs.into_iter().map(|r| r.expect("every model ran on a thread")).collect();
    Ok(WhatIf {
        meetings: front.meetings,
        models: runs,
        read: front.stats,
        latest_event: front.latest,
        timings: Timings { run: started.elapsed(), front: front_busy },
    })
}

/// Read, admit and deduplicate `feed` once, as [`run`] does, and keep the
/// accepted records for the caller's own models (`tune` runs every meeting
/// alone under every candidate): the meetings' facts, and the records in
/// file order with their instants. Their `eventID`s, already used for
/// dedupe, are dropped.
///
/// # Errors
///
/// The input cannot be read.
pub(crate) fn read<R: Read + Send + 'static>(feed: LineFeed<R>) -> Result<(WhatIf, Vec<Event>), WhatIfError> {
    let started = Instant::now();
    let (batches, reader) = read_ahead(feed);
    let mut all = Vec::new();
    let (front, front_busy) = front_pass(batches, reader, |mut events| {
        for e in &mut events {
            if let Input::Record(c) = &mut e.input {
                c.event_id = None;
            }
        }
        all.append(&mut events);
    })?;
    all.shrink_to_fit();
    let w = WhatIf {
        meetings: front.meetings,
        models: Vec::new(),
        read: front.stats,
        latest_event: front.latest,
        timings: Timings { run: started.elapsed(), front: front_busy },
    };
    Ok((w, all))
}

/// The front over every batch the reader decodes: each accepted,
/// non-duplicate record to `sink`, batch by batch.
fn front_pass(
    batches: Receiver<std::io::Result<Vec<Item>>>,
    reader: std::thread::JoinHandle<u64>,
    mut sink: impl FnMut(Vec<Event>),
) -> Result<(Front, Duration), WhatIfError> {
    let mut front = Front::default();
    let mut busy = Duration::ZERO;
    for batch in batches {
        let batch = batch?;
        let t = Instant::now();
        let mut events = Vec::with_capacity(batch.len());
        for inc in batch {
            match inc {
                Item::Record(d) => events.extend(front.accept(*d)),
                Item::Dead(d) => front.dead_letter(&d.reason),
            }
        }
        busy += t.elapsed();
        sink(events);
    }
    front.stats.lines = reader.join().map_err(|_| WhatIfError::Panicked("input reader".into()))?;
    Ok((front, busy))
}

/// A model: a machine on the engine's core, fed the front's records.
trait Model: Send {
    fn apply(&mut self, e: &Event);
    fn finish(self: Box<Self>) -> (Vec<Option<Ended>>, u64);
}

impl<M> Model for Core<M>
where
    M: Machine<Input = Input, End = Ended> + Send,
    M::State: Send,
    M::Timer: Send,
{
    fn apply(&mut self, e: &Event) {
        Core::apply(self, e.meeting, &e.input, e.at);
    }

    fn finish(self: Box<Self>) -> (Vec<Option<Ended>>, u64) {
        Core::finish(*self)
    }
}

/// A model on a thread: its number, name, machine and time spent deciding.
struct Running {
    n: usize,
    name: String,
    model: Box<dyn Model>,
    busy: Duration,
}

/// Run a group of models over every batch, each in turn; their results with their numbers.
fn model_thread(mut group: Vec<Running>, rx: Receiver<Arc<Vec<Event>>>) -> Vec<(usize, ModelRun)> {
    for events in rx {
        for r in &mut group {
            let t = Instant::now();
            for e in events.iter() {
                r.model.apply(e);
            }
            r.busy += t.elapsed();
        }
    }
    group
        .into_iter()
        .map(|r| {
            let t = Instant::now();
            let (ends, timers_fired) = r.model.finish();
            let busy = r.busy + t.elapsed();
            (r.n, ModelRun { name: r.name, ends, timers_fired, busy })
        })
        .collect()
}

/// Read and decode on a thread of their own, a few batches ahead.
fn read_ahead<R: Read + Send + 'static>(
    mut feed: LineFeed<R>,
) -> (Receiver<std::io::Result<Vec<Item>>>, std::thread::JoinHandle<u64>) {
    let (tx, rx) = sync_channel(4);
    let handle = std::thread::Builder::new()
        .name("whatif-read".into())
        .spawn(move || {
            loop {
                match feed.next_batch(BATCH) {
                    Ok(Some(b)) => {
                        if tx.send(Ok(b.into_iter().map(|i| i.item).collect())).is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
            feed.lines
        })
        .expect("the reader thread starts");
    (rx, handle)
}
