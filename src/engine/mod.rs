//! The engine: applies inputs in units of work, fires due timers in order,
//! runs the timer loop.
//!
//! The engine runs any [`Durable`] machine; it knows nothing of meetings
//! (the meeting workflow on it is [`crate::operate`]). Every call that
//! changes state is one unit of work (`work/`): the instances its inputs
//! touch are loaded in bulk, the inputs run through [`Machine::step`](crate::machine::Machine::step) in
//! order — with due timers interleaved at their instants — and everything
//! the steps produced (instances with their timers, history, outbox rows,
//! dead letters, the stream checkpoint) is committed at once. Effects run
//! only after the commit.
//!
//! Timer order is global: `(due, tie order, instance id)`. A unit of work
//! merges the timers of the instances it holds with those still in the
//! store, reading those in pages, so a million overdue timers stream through
//! bounded memory.
//!
//! A *resident* engine (`replay`: the only writer of its database) keeps the
//! live instances in memory between units of work, reads nothing it wrote,
//! and commits a unit of work while it computes the next. Memory is then
//! bounded by the live instances and one unit of work, not by the input.

pub mod core;
mod gate;
mod pace;
mod report;
mod timers;
mod work;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{Mutex, Notify};

pub use gate::{read_through, StreamGate};
pub use report::Report;
use work::{Cache, Work};

use crate::clock::Clock;
use crate::machine::Durable;
use crate::store::{Checkpoint, Store, StoreError};
use crate::time::{Span, Timestamp};

/// Timer fires per unit of work when catching up (worker).
const FIRES_PER_UNIT: usize = 2000;
/// Timer fires per unit of work for a resident engine running its clock on.
const RESIDENT_FIRES_PER_UNIT: usize = 100_000;

/// An engine failure.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An input only an existing instance takes, for one that does not exist.
    #[error("no {noun} {id}")]
    Unknown { noun: &'static str, id: String },
    /// An input the instance refused (an operator command it cannot take);
    /// nothing changed.
    #[error("{reason}")]
    Refused { reason: String },
    #[error("a commit task failed: {0}")]
    Commit(String),
}

impl EngineError {
    /// Whether the database failed in passing (nothing of the unit of work
    /// that failed is committed, or its outcome is unknown and it is applied
    /// again from its checkpoint).
    pub fn is_transient(&self) -> bool {
        matches!(self, EngineError::Store(e) if e.is_transient())
    }
}

/// How effects completed inside the unit of work that queued them are told
/// in the history: one entry per effect at the instant of the unit of work
/// (the outbox's dry run hands the engine its own, for `replay`).
pub type CompleteInline<M> = fn(&<M as Durable>::Effect, Timestamp) -> <M as Durable>::Entry;

/// What happens to the effects a step asks for.
#[derive(Default)]
pub enum EffectMode<M: Durable> {
    /// Queued in the outbox, `pending`, for the executor (the worker).
    #[default]
    Queue,
    /// Completed in the unit of work that queued them: the outbox row is
    /// written `done` and the history says, through the given function, what
    /// was done (`replay`: what would have been done).
    Inline(CompleteInline<M>),
}

impl<M: Durable> Clone for EffectMode<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: Durable> Copy for EffectMode<M> {}

impl<M: Durable> std::fmt::Debug for EffectMode<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EffectMode::Queue => f.write_str("Queue"),
            EffectMode::Inline(_) => f.write_str("Inline"),
        }
    }
}

/// How an engine works.
pub struct EngineOptions<M: Durable> {
    /// Keep live instances in memory between units of work and commit in the
    /// background. Only for an engine that is its store's only writer.
    pub resident: bool,
    pub effects: EffectMode<M>,
    /// Nobody will search this database (`replay`'s temporary file): a
    /// resident engine then never indexes its instances' search attributes.
    /// Otherwise a resident engine indexes them once, at [`Engine::flush`]
    /// (a bulk load's random-key index written per commit cost W1 45 %).
    pub unsearched: bool,
}

impl<M: Durable> Default for EngineOptions<M> {
    fn default() -> Self {
        EngineOptions { resident: false, effects: EffectMode::Queue, unsearched: false }
    }
}

impl<M: Durable> Clone for EngineOptions<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: Durable> Copy for EngineOptions<M> {}

impl<M: Durable> std::fmt::Debug for EngineOptions<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("resident", &self.resident)
            .field("effects", &self.effects)
            .field("unsearched", &self.unsearched)
            .finish()
    }
}

impl<M: Durable> EngineOptions<M> {
    /// Resident, effects completed inline and told by `complete` — how
    /// `replay` runs ([`crate::source::replay::engine_options`]).
    pub fn resident(complete: CompleteInline<M>) -> Self {
        EngineOptions { resident: true, effects: EffectMode::Inline(complete), unsearched: false }
    }
}

/// One input line's worth of work for [`Engine::apply`]: an item a source
/// read (an input, or what could not be read) and where it came from.
pub struct Incoming<M: Durable> {
    pub item: M::Item,
    pub origin: Origin,
}

impl<M: Durable> Clone for Incoming<M> {
    fn clone(&self) -> Self {
        Incoming { item: self.item.clone(), origin: self.origin.clone() }
    }
}

impl<M: Durable> std::fmt::Debug for Incoming<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming").field("item", &self.item).field("origin", &self.origin).finish()
    }
}

/// Where an input came from, as its dead letter says: `file:line` (`#n` for
/// the n-th record of an envelope line), or a stream position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Line { file: Arc<str>, line: u64, part: Option<u32> },
    Text(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Line { file, line, part: None } => write!(f, "{file}:{line}"),
            Origin::Line { file, line, part: Some(n) } => write!(f, "{file}:{line}#{n}"),
            Origin::Text(t) => f.write_str(t),
        }
    }
}

impl From<String> for Origin {
    fn from(s: String) -> Self {
        Origin::Text(s)
    }
}

impl From<&str> for Origin {
    fn from(s: &str) -> Self {
        Origin::Text(s.to_string())
    }
}

/// The durable engine: a machine, a store and a clock.
pub struct Engine<M: Durable> {
    store: Arc<dyn Store>,
    /// The rules: every step goes through it.
    machine: M,
    clock: Arc<dyn Clock>,
    /// How time moves: a virtual clock, or the wall clock held by the stream gate.
    pace: Box<dyn pace::Pace>,
    options: EngineOptions<M>,
    timers_changed: Notify,
    effects_queued: Arc<Notify>,
    gate: OnceLock<Arc<StreamGate>>,
    /// Without a reader of its own: operator commands read the gate from the
    /// stored checkpoints, holding timers at most this long.
    stored_gate: OnceLock<Span>,
    liveness: Arc<crate::telemetry::Liveness>,
    /// The latest record event time applied (live mode), persisted.
    event_clock: AtomicI64,
    /// The timer loop re-reads the clock at least this often, so a step of the
    /// wall clock (NTP, a VM resumed) is noticed even in a long sleep.
    clock_check_ms: AtomicU64,
    /// The longest a pass of the timer loop waits for the store (ms; 0: no limit).
    store_deadline_ms: AtomicU64,
    /// A resident engine's memory between units of work; it also makes units of work take turns.
    resident: Mutex<Cache<M>>,
    /// A resident engine's commit still running.
    inflight: Mutex<Option<tokio::task::JoinHandle<Result<(), StoreError>>>>,
}

impl<M: Durable> Engine<M> {
    /// An engine running `machine` over `store`. Use [`Engine::resume`] to
    /// resume the clocks stored there.
    pub fn with_machine(machine: M, store: Arc<dyn Store>, clock: Arc<dyn Clock>, options: EngineOptions<M>) -> Self {
        Engine {
            store,
            machine,
            pace: pace::of(clock.as_ref()),
            clock,
            options,
            timers_changed: Notify::new(),
            effects_queued: Arc::new(Notify::new()),
            gate: OnceLock::new(),
            stored_gate: OnceLock::new(),
            liveness: Arc::default(),
            event_clock: AtomicI64::new(i64::MIN),
            clock_check_ms: AtomicU64::new(30_000),
            store_deadline_ms: AtomicU64::new(0),
            resident: Mutex::new(Cache::default()),
            inflight: Mutex::new(None),
        }
    }

    /// [`Engine::with_machine`], resuming the event clock the store holds.
    ///
    /// # Errors
    ///
    /// The store cannot be read.
    pub async fn resume(
        machine: M,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        options: EngineOptions<M>,
    ) -> Result<Self, EngineError> {
        let clocks = store.clocks().await?;
        let engine = Engine::with_machine(machine, store, clock, options);
        if let Some(t) = clocks.event_clock {
            engine.event_clock.store(t.as_micros(), Ordering::SeqCst);
        }
        Ok(engine)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// When the timer loop and the stream reader last showed they are alive (`/readyz`).
    pub fn liveness(&self) -> &Arc<crate::telemetry::Liveness> {
        &self.liveness
    }

    /// The machine it runs.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn options(&self) -> EngineOptions<M> {
        self.options
    }

    /// How often the timer loop re-reads the clock while sleeping (default 30 s).
    pub fn set_clock_check(&self, every: Duration) {
        self.clock_check_ms.store(every.as_millis().max(1) as u64, Ordering::Relaxed);
    }

    /// The longest the engine's loops wait for the database before they
    /// treat it as gone (a peer that vanished mid-call), and try again.
    pub fn set_store_deadline(&self, within: Duration) {
        self.store_deadline_ms.store(within.as_millis().max(1) as u64, Ordering::Relaxed);
    }

    /// See [`Engine::set_store_deadline`].
    pub fn store_deadline(&self) -> Option<Duration> {
        Some(self.store_deadline_ms.load(Ordering::Relaxed)).filter(|&ms| ms > 0).map(Duration::from_millis)
    }

    /// Attach a stream gate (the worker does, for its stream reader): the
    /// timer loop then fires only timers the stream has been read past.
    pub fn set_gate(&self, gate: Arc<StreamGate>) {
        let _ = self.gate.set(gate);
    }

    /// For a process that reads no stream but shares the database with
    /// workers that do (operator commands, the console): commands fire only
    /// what the workers' stored checkpoints say the stream was read past,
    /// holding a timer at most `hold_max`.
    pub fn gate_from_checkpoints(&self, hold_max: Span) {
        let _ = self.stored_gate.set(hold_max);
    }

    /// The instant up to which a command at `now` may fire timers.
    async fn command_gate(&self, now: Timestamp) -> Result<Timestamp, EngineError> {
        if !self.pace.waits_for_stream() {
            return Ok(now);
        }
        if let Some(g) = self.gate.get() {
            return Ok(g.limit(now));
        }
        match self.stored_gate.get() {
            Some(hold) => {
                let checkpoints = self.store.checkpoints(None).await?;
                Ok(StreamGate::from_checkpoints(&checkpoints, *hold).limit(now))
            }
            None => Ok(now),
        }
    }

    /// The stream has been read through `t`: let the timer loop fire what is due by then.
    pub fn advance_gate(&self, t: Timestamp) {
        if let Some(g) = self.gate.get() {
            if g.advance(t) {
                self.timers_changed.notify_one();
            }
        }
    }

    /// The stream reader cannot run (a database failure, or it has not
    /// started): the gate holds timers for it, whatever `hold_max` says.
    pub fn reader_stopped(&self) {
        if let Some(g) = self.gate.get() {
            g.reader_stopped();
        }
    }

    /// The stream reader finished a round.
    pub fn reader_running(&self, now: Timestamp) {
        if let Some(g) = self.gate.get() {
            g.reader_running(now);
        }
    }

    /// The instant up to which timers may fire at `now`.
    fn limit_at(&self, now: Timestamp) -> Timestamp {
        match self.gate.get() {
            Some(g) if self.pace.waits_for_stream() => g.limit(now),
            _ => now,
        }
    }

    /// Notified after a commit that queued effects (the executor waits on it).
    pub fn effects_notify(&self) -> Arc<Notify> {
        self.effects_queued.clone()
    }

    /// Wake the timer loop (e.g. another process armed a timer).
    pub fn wake_timers(&self) {
        self.timers_changed.notify_one();
    }

    /// Apply a batch of records (and dead letters) in one unit of work, in
    /// order, firing due timers before each record as the spec orders them.
    ///
    /// # Errors
    ///
    /// A store failure; nothing of the batch is then committed.
    pub async fn apply(&self, items: Vec<Incoming<M>>) -> Result<Report, EngineError> {
        self.apply_with_checkpoint(items, None).await
    }

    /// [`Engine::apply`], also writing a stream checkpoint in the same unit of
    /// work (the position these records bring their shard to).
    ///
    /// # Errors
    ///
    /// As [`Engine::apply`].
    pub async fn apply_with_checkpoint(
        &self,
        items: Vec<Incoming<M>>,
        checkpoint: Option<Checkpoint>,
    ) -> Result<Report, EngineError> {
        // The batch is copied for an attempt only where a unit of work may
        // run again (several writers); a resident engine, which never
        // retries, hands its one attempt the batch itself.
        let mut batch = Some(items);
        let report = self
            .retrying("applying the records again", || {
                let items = if self.options.resident { batch.take() } else { batch.clone() };
                let checkpoint = checkpoint.clone();
                async move {
                    let mut w = Work::begin(self).await?;
                    w.set_checkpoint(checkpoint);
                    w.apply(items.unwrap_or_default()).await?;
                    w.commit().await
                }
            })
            .await?;
        report.record_metrics();
        Ok(report)
    }

    /// Run a unit of work, again while it loses a race another writer won
    /// first ([`Engine::may_retry`]).
    async fn retrying<T, F, Fut>(&self, again: &str, mut unit: F) -> Result<T, EngineError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, EngineError>>,
    {
        let mut attempt = 0;
        loop {
            match unit().await {
                Err(e) if self.may_retry(&e, attempt) => {
                    attempt += 1;
                    tracing::info!(attempt, "unit of work not committed ({e}); {again}");
                    tokio::time::sleep(Duration::from_millis(20 << attempt.min(5))).await;
                }
                r => return r,
            }
        }
    }

    /// Whether a unit of work that failed with `e` may simply run again:
    /// another worker changed one of its instances first (several writers on
    /// one database: two created the same instance at once). Nothing of it
    /// was committed. Other failures stop the caller (a worker exits and is
    /// restarted; what was committed is kept).
    fn may_retry(&self, e: &EngineError, attempt: u32) -> bool {
        const ATTEMPTS: u32 = 5;
        !self.options.resident && attempt < ATTEMPTS && matches!(e, EngineError::Store(StoreError::Conflict(_)))
    }

    /// Fire timers due at or before the clock's now (held by the stream gate,
    /// if any), at most `limit` in one unit of work. Returns the report and
    /// whether more are due.
    ///
    /// # Errors
    ///
    /// A store failure; nothing is then committed.
    pub async fn fire_due(&self, limit: usize) -> Result<(Report, bool), EngineError> {
        let (report, more) = self
            .retrying("firing the timers again", || async {
                let mut w = Work::begin(self).await?;
                let target = self.limit_at(self.clock.now());
                let more = w.fire_through(target, limit).await?;
                Ok((w.commit().await?, more))
            })
            .await?;
        report.record_metrics();
        Ok((report, more))
    }

    /// Virtual time: run the clock on, firing every timer due at or before
    /// `until` (all of them with `Timestamp::MAX`), in units of work.
    ///
    /// # Errors
    ///
    /// A store failure.
    pub async fn run_until(&self, until: Timestamp) -> Result<Report, EngineError> {
        let per_unit = if self.options.resident { RESIDENT_FIRES_PER_UNIT } else { FIRES_PER_UNIT };
        let mut total = Report::default();
        loop {
            let mut w = Work::begin(self).await?;
            let more = w.fire_through(until, per_unit).await?;
            total.merge(&w.commit().await?);
            if !more {
                return Ok(total);
            }
        }
    }

    /// Apply an input that no source delivers (an operator's command) to
    /// the instance `id`, after firing what is due and the stream gate lets
    /// through (see [`Engine::gate_from_checkpoints`]), in one unit of work.
    /// Returns the step's history entry.
    ///
    /// # Errors
    ///
    /// [`EngineError::Unknown`] when the machine refuses it for an instance
    /// that does not exist (an input only an existing instance takes),
    /// [`EngineError::Refused`] when an existing instance refuses it (nothing
    /// changed); a store failure.
    pub async fn send(&self, id: &M::Id, input: M::Input) -> Result<M::Entry, EngineError> {
        // A gate that holds nothing back lets the command fire what it arms
        // at its own instant, right after it.
        let asked = self.clock.now();
        let gate = self.command_gate(asked).await?;
        let gate = if gate >= asked { Timestamp::MAX } else { gate };
        let mut w = Work::begin(self).await?;
        let result = w.command(id, input, gate).await;
        match result {
            Ok(r) => {
                w.commit().await?;
                Ok(r)
            }
            Err(e) => {
                w.abandon().await?;
                Err(e)
            }
        }
    }

    /// Write everything a resident engine still holds and wait for it to land
    /// (for any other engine there is nothing to do).
    ///
    /// # Errors
    ///
    /// A commit failed.
    pub async fn flush(&self) -> Result<Report, EngineError> {
        if !self.options.resident {
            return Ok(Report::default());
        }
        let report = Work::begin(self).await?.commit_all().await?;
        let _cache = self.resident.lock().await;
        let task = self.inflight.lock().await.take();
        if let Some(t) = task {
            t.await.map_err(|e| EngineError::Commit(e.to_string()))??;
        }
        // What its units of work left out of the search index, in one pass.
        if !self.options.unsearched {
            self.store.index_search().await?;
        }
        Ok(report)
    }

    /// The timer loop's batch size.
    pub(crate) fn fires_per_unit(&self) -> usize {
        FIRES_PER_UNIT
    }
}
