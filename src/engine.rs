//! Applies inputs, fires due timers, and runs the timer loop.
//!
//! Every call that changes state opens one unit of work: a `BEGIN IMMEDIATE`
//! transaction in which meetings are loaded (in bulk), inputs are run through
//! [`machine::transition`] in order — with due timers interleaved at their
//! instants — and everything the steps produced (meetings, timers, history,
//! outbox rows, seen event ids, dead letters) is flushed with multi-row
//! statements before one commit. Many inputs share a transaction (group
//! commit); effects run only after the commit.
//!
//! Timer order is global: `(due, rank, meeting id)`, with rank safety net <
//! re-check < cap. The unit of work merges the timers of the meetings it holds
//! in memory with the ones still in SQLite, loading those lazily and in pages,
//! so a million overdue timers stream through a bounded amount of memory.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::machine::{self, Command, Effect, Input, Meeting, MeetingId, Outcome, Rejection, State, Step, Timers};
use crate::policy::Policy;
use crate::record::{DeadLetter, Decoded, Item, RecordError};
use crate::store::{
    Checkpoint, NewDeadLetter, NewEffect, NewHistory, Store, StoreError, StoreOptions, TimerKey, Tx, Writes,
};
use crate::time::{Span, Timestamp};

/// Timers loaded from SQLite per page.
const TIMER_PAGE: i64 = 1024;
/// Timer fires per transaction when catching up.
const FIRES_PER_TX: usize = 2000;

/// An engine error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no meeting {0}")]
    UnknownMeeting(MeetingId),
}

/// One input line's worth of work for [`Engine::apply`]: a decoded record or a
/// dead letter, and where it came from (`file:line`, `shard/sequence`).
#[derive(Debug, Clone)]
pub struct Incoming {
    pub item: Item,
    pub origin: String,
}

/// What a unit of work did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Records applied (including duplicates and records ignored after termination).
    pub records: u64,
    pub duplicates: u64,
    /// Records for meetings already terminated.
    pub ignored: u64,
    pub created: u64,
    pub dead_letters: BTreeMap<String, u64>,
    pub timers_fired: u64,
    pub terminated: BTreeMap<String, u64>,
    pub effects_queued: u64,
    /// Largest timer lateness seen (fire instant − due), microseconds.
    pub max_lateness_us: i64,
}

impl Report {
    pub fn merge(&mut self, o: &Report) {
        self.records += o.records;
        self.duplicates += o.duplicates;
        self.ignored += o.ignored;
        self.created += o.created;
        for (k, v) in &o.dead_letters {
            *self.dead_letters.entry(k.clone()).or_default() += v;
        }
        self.timers_fired += o.timers_fired;
        for (k, v) in &o.terminated {
            *self.terminated.entry(k.clone()).or_default() += v;
        }
        self.effects_queued += o.effects_queued;
        self.max_lateness_us = self.max_lateness_us.max(o.max_lateness_us);
    }

    pub fn dead_letter_total(&self) -> u64 {
        self.dead_letters.values().sum()
    }
}

/// The outcome of an operator command.
#[derive(Debug, Clone, Serialize)]
pub struct CommandResult {
    pub meeting_id: String,
    pub outcome: Outcome,
    pub state: State,
    pub notes: Vec<String>,
}

/// How far a stream has been read, for the timer loop (live mode).
///
/// A timer due at `d` must see every stream record with an event time before
/// `d` — that is the spec's order, and what `replay` computes. When the worker
/// catches up on a backlog (after a restart, a network outage) timers due
/// inside the backlog therefore wait until the reader has passed them. The
/// gate never holds a timer longer than `hold_max` past its due time, so a
/// stream that cannot be read does not keep meetings alive.
#[derive(Debug)]
pub struct StreamGate {
    /// Every record with an event time before this has been applied.
    read_through: std::sync::atomic::AtomicI64,
    hold_max: Span,
}

impl StreamGate {
    pub fn new(hold_max: Span) -> Self {
        StreamGate { read_through: std::sync::atomic::AtomicI64::new(i64::MIN), hold_max }
    }

    /// The reader has read everything with an event time before `t`.
    pub fn advance(&self, t: Timestamp) {
        self.read_through.fetch_max(t.as_micros(), std::sync::atomic::Ordering::SeqCst);
    }

    pub fn read_through(&self) -> Option<Timestamp> {
        let v = self.read_through.load(std::sync::atomic::Ordering::SeqCst);
        (v != i64::MIN).then(|| Timestamp::from_micros(v))
    }

    /// Timers due at or before this may fire now.
    pub fn limit(&self, now: Timestamp) -> Timestamp {
        let held = now.saturating_add(Span::from_micros(-self.hold_max.as_micros()));
        self.read_through().unwrap_or(Timestamp::MIN).max(held).min(now)
    }
}

/// The durable meeting engine: a store, a policy and a clock.
pub struct Engine {
    store: Store,
    policy: Policy,
    clock: Arc<dyn Clock>,
    timers_changed: Arc<Notify>,
    effects_queued: Arc<Notify>,
    gate: std::sync::OnceLock<Arc<StreamGate>>,
    /// The latest record event time applied (live mode), persisted.
    event_clock: std::sync::atomic::AtomicI64,
    /// The timer loop re-reads the clock at least this often, so a step of the
    /// wall clock (NTP, a VM resumed) is noticed even in a long sleep.
    clock_check: std::sync::atomic::AtomicU64,
}

impl Engine {
    /// Open (creating and migrating) the database at `path`.
    pub async fn open(
        path: &Path,
        policy: Policy,
        clock: Arc<dyn Clock>,
        options: &StoreOptions,
    ) -> Result<Engine, EngineError> {
        let store = Store::open(path, options).await?;
        let event_clock = store.meta("event_clock").await?.and_then(|v| v.parse::<i64>().ok());
        let engine = Engine::new(store, policy, clock);
        if let Some(ec) = event_clock {
            engine.event_clock.store(ec, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(engine)
    }

    pub fn new(store: Store, policy: Policy, clock: Arc<dyn Clock>) -> Engine {
        Engine {
            store,
            policy,
            clock,
            timers_changed: Arc::new(Notify::new()),
            effects_queued: Arc::new(Notify::new()),
            gate: std::sync::OnceLock::new(),
            event_clock: std::sync::atomic::AtomicI64::new(i64::MIN),
            clock_check: std::sync::atomic::AtomicU64::new(30_000),
        }
    }

    /// How often the timer loop re-reads the clock while sleeping (default 30 s).
    pub fn set_clock_check(&self, every: Duration) {
        self.clock_check.store(every.as_millis().max(1) as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Attach a stream gate (the worker does, for its stream reader): the
    /// timer loop then fires only timers the stream has been read past.
    pub fn set_gate(&self, gate: Arc<StreamGate>) {
        let _ = self.gate.set(gate);
    }

    /// The stream has been read through `t`: let the timer loop fire what is due by then.
    pub fn advance_gate(&self, t: Timestamp) {
        if let Some(g) = self.gate.get() {
            let before = g.read_through();
            g.advance(t);
            if g.read_through() != before {
                self.timers_changed.notify_one();
            }
        }
    }

    /// The instant up to which timers may fire now.
    fn timer_limit(&self) -> Timestamp {
        self.limit_at(self.clock.now())
    }

    fn limit_at(&self, now: Timestamp) -> Timestamp {
        match self.gate.get() {
            Some(g) if !self.clock.is_virtual() => g.limit(now),
            _ => now,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Notified after a commit that queued effects (the executor waits on it).
    pub fn effects_notify(&self) -> Arc<Notify> {
        self.effects_queued.clone()
    }

    /// Wake the timer loop (e.g. another process armed a timer).
    pub fn wake_timers(&self) {
        self.timers_changed.notify_one();
    }

    /// Apply a batch of records (and dead letters) in one transaction, in order,
    /// firing due timers before each record as the spec orders them.
    pub async fn apply(&self, items: Vec<Incoming>) -> Result<Report, EngineError> {
        self.apply_with_checkpoint(items, None).await
    }

    /// [`Engine::apply`], also writing a stream checkpoint in the same
    /// transaction (the position these records bring their shard to).
    pub async fn apply_with_checkpoint(
        &self,
        items: Vec<Incoming>,
        checkpoint: Option<Checkpoint>,
    ) -> Result<Report, EngineError> {
        let mut w = Work::begin(self).await?;
        w.writes.checkpoint = checkpoint;
        // Bulk-load every meeting and eventID this batch touches.
        let mut ids: Vec<MeetingId> = Vec::new();
        let mut events: Vec<&str> = Vec::new();
        for i in &items {
            if let Item::Record(d) = &i.item {
                ids.push(d.change.meeting_id.clone());
                if let Some(e) = &d.change.event_id {
                    events.push(e);
                }
            }
        }
        if self.clock.is_virtual() {
            let now = self.clock.now();
            w.lookahead = items
                .iter()
                .filter_map(|i| match &i.item {
                    Item::Record(d) => Some(d.change.event_time.unwrap_or(now)),
                    Item::Dead(_) => None,
                })
                .fold(now, Timestamp::max);
        }
        w.preload(ids).await?;
        w.seen_db = w.tx.seen(&events).await?;
        for i in items {
            match i.item {
                Item::Record(d) => w.record(*d, &i.origin).await?,
                Item::Dead(d) => w.dead_letter(d, &i.origin),
            }
        }
        w.commit().await
    }

    /// Fire timers due at or before the clock's now, at most `limit` in one
    /// transaction. Returns the report and whether more are due.
    pub async fn fire_due(&self, limit: usize) -> Result<(Report, bool), EngineError> {
        let mut w = Work::begin(self).await?;
        let target = self.timer_limit();
        let more = w.fire_through(target, limit).await?;
        Ok((w.commit().await?, more))
    }

    /// Virtual time: run the clock on, firing every timer due at or before
    /// `until` (all of them with `Timestamp::MAX`), committing in chunks.
    pub async fn run_until(&self, until: Timestamp) -> Result<Report, EngineError> {
        let mut total = Report::default();
        loop {
            let mut w = Work::begin(self).await?;
            let more = w.fire_through(until, FIRES_PER_TX).await?;
            total.merge(&w.commit().await?);
            if !more {
                return Ok(total);
            }
        }
    }

    /// Apply an operator command to one meeting.
    pub async fn command(&self, id: &MeetingId, cmd: Command) -> Result<CommandResult, EngineError> {
        let mut w = Work::begin(self).await?;
        w.preload(vec![id.clone()]).await?;
        let target = self.clock.now();
        w.fire_through(target, usize::MAX).await?;
        let now = w.instant(target);
        let meeting = w.get(id).await?;
        let name = match &cmd {
            Command::Terminate => "terminate",
            Command::Schedule { .. } => "schedule",
        };
        let step = match machine::transition(meeting.as_ref(), &Input::Command(cmd), now, &self.policy) {
            Ok(s) => s,
            Err(Rejection::UnknownMeeting) | Err(Rejection::NoStart(_)) => {
                w.tx.rollback().await?;
                return Err(EngineError::UnknownMeeting(id.clone()));
            }
        };
        let result = CommandResult {
            meeting_id: id.to_string(),
            outcome: step.outcome,
            state: step.meeting.state,
            notes: step.notes.clone(),
        };
        w.apply_step(step, now, "command", name.to_string(), None);
        w.fire_through(now, usize::MAX).await?;
        w.commit().await?;
        Ok(result)
    }

    /// The timer loop: sleep until the next due timer (no polling), wake early
    /// when an earlier one is armed, fire what is due, until `shutdown`.
    /// Overdue timers (a restart) fire at once, each exactly once.
    pub async fn run_timers(&self, shutdown: impl Future<Output = ()>) -> Result<(), EngineError> {
        tokio::pin!(shutdown);
        loop {
            loop {
                let (report, more) = self.fire_due(FIRES_PER_TX).await?;
                if report.timers_fired > 0 {
                    tracing::debug!(fired = report.timers_fired, "timers fired");
                }
                if !more {
                    break;
                }
            }
            let next = self.store.next_due().await?;
            let now = self.clock.now();
            let limit = self.limit_at(now);
            let wait = match next {
                // Fell due while the last batch fired: go again at once.
                Some(due) if due <= limit => continue,
                // Due, but held by the stream gate: the reader wakes us as it advances.
                Some(due) if due <= now => Duration::from_millis(500),
                Some(due) => Duration::from_micros(due.as_micros().saturating_sub(now.as_micros()).max(0) as u64),
                None => Duration::from_secs(3600),
            };
            let wait = wait.min(Duration::from_millis(self.clock_check.load(std::sync::atomic::Ordering::Relaxed)));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.timers_changed.notified() => {}
                _ = &mut shutdown => return Ok(()),
            }
        }
    }
}

/// Where the SQLite page of timers has been read up to.
#[derive(Debug, Clone)]
enum Horizon {
    Nothing,
    Key(TimerKey),
    Through(Timestamp),
}

struct Cached {
    meeting: Meeting,
    loaded_version: Option<i64>,
    loaded_timers: Timers,
    dirty: bool,
}

/// One transaction's worth of work.
struct Work<'e> {
    engine: &'e Engine,
    tx: Tx,
    /// Meetings held in memory: `None` = known not to exist.
    cache: HashMap<MeetingId, Option<Cached>>,
    /// Pending timers of cached meetings (authoritative for them).
    overlay: BTreeSet<TimerKey>,
    /// Timers of uncached meetings read from SQLite, all those ≤ `horizon`.
    db_queue: BTreeSet<TimerKey>,
    horizon: Horizon,
    seen_db: HashSet<String>,
    seen_new: HashSet<String>,
    writes: Writes,
    last: Timestamp,
    /// How far ahead timers may usefully be read (the batch's last event time).
    lookahead: Timestamp,
    /// The latest record event time applied (live mode).
    event_clock: Timestamp,
    report: Report,
    armed: bool,
    /// When the unit of work began (for the store's phase profile).
    started: std::time::Instant,
}

impl<'e> Work<'e> {
    async fn begin(engine: &'e Engine) -> Result<Work<'e>, EngineError> {
        let started = std::time::Instant::now();
        let tx = engine.store.begin().await?;
        // Instants are monotonic within a unit of work. Across units the clock
        // decides: a virtual clock never goes back, and the wall clock's own
        // jumps are recorded as they happened rather than hidden.
        let last = Timestamp::MIN;
        Ok(Work {
            engine,
            tx,
            cache: HashMap::new(),
            overlay: BTreeSet::new(),
            db_queue: BTreeSet::new(),
            horizon: Horizon::Nothing,
            seen_db: HashSet::new(),
            seen_new: HashSet::new(),
            writes: Writes::default(),
            last,
            lookahead: Timestamp::MIN,
            event_clock: Timestamp::from_micros(engine.event_clock.load(std::sync::atomic::Ordering::SeqCst)),
            report: Report::default(),
            armed: false,
            started,
        })
    }

    fn clock(&self) -> &dyn Clock {
        self.engine.clock.as_ref()
    }

    /// The engine instant for an input at `target`: the virtual clock moves
    /// there; instants never go backwards.
    fn instant(&mut self, target: Timestamp) -> Timestamp {
        self.clock().advance_to(target);
        let now = self.clock().now().max(self.last);
        self.last = now;
        now
    }

    fn cache_insert(&mut self, m: Meeting) {
        for (kind, due) in m.timers.pending() {
            let key = TimerKey::new(m.id.clone(), kind, due);
            self.db_queue.remove(&key);
            self.overlay.insert(key);
        }
        let entry = Cached { loaded_version: Some(m.version), loaded_timers: m.timers, meeting: m, dirty: false };
        self.cache.insert(entry.meeting.id.clone(), Some(entry));
    }

    async fn preload(&mut self, mut ids: Vec<MeetingId>) -> Result<(), EngineError> {
        ids.sort();
        ids.dedup();
        ids.retain(|id| !self.cache.contains_key(id));
        let found = self.tx.load_meetings(&ids).await?;
        for m in found {
            self.cache_insert(m);
        }
        for id in ids {
            self.cache.entry(id).or_insert(None);
        }
        Ok(())
    }

    async fn get(&mut self, id: &MeetingId) -> Result<Option<Meeting>, EngineError> {
        if !self.cache.contains_key(id) {
            self.preload(vec![id.clone()]).await?;
        }
        Ok(self.cache.get(id).and_then(|c| c.as_ref()).map(|c| c.meeting.clone()))
    }

    fn covers(&self, target: Timestamp) -> bool {
        match &self.horizon {
            Horizon::Nothing => false,
            Horizon::Key(k) => k.due > target,
            Horizon::Through(t) => *t >= target,
        }
    }

    /// Read the next page of SQLite timers due at or before `target`.
    async fn extend(&mut self, target: Timestamp) -> Result<(), EngineError> {
        // Read ahead to where this unit of work is known to go (a batch's last
        // event time), so a batch reads its timers in pages, not per record.
        let upto = target.max(self.lookahead);
        let rows = match &self.horizon {
            Horizon::Nothing => self.tx.due_timers(None, upto, TIMER_PAGE).await?,
            Horizon::Key(k) => {
                let k = k.clone();
                self.tx.due_timers(Some(&k), upto, TIMER_PAGE).await?
            }
            Horizon::Through(t) => {
                let after =
                    TimerKey { due: *t, rank: i64::MAX, meeting_id: MeetingId::new("\u{10FFFF}").expect("non-empty") };
                self.tx.due_timers(Some(&after), upto, TIMER_PAGE).await?
            }
        };
        let full = rows.len() as i64 == TIMER_PAGE;
        self.horizon = match rows.last() {
            Some(last) if full => Horizon::Key(last.clone()),
            _ => Horizon::Through(upto),
        };
        let mut load = Vec::new();
        for key in rows {
            if !self.cache.contains_key(&key.meeting_id) {
                load.push(key.meeting_id.clone());
                self.db_queue.insert(key);
            }
        }
        // Their meetings in one go (they move from the queue to the overlay).
        self.preload(load).await?;
        Ok(())
    }

    /// The next pending timer due at or before `target`, in fire order.
    async fn next_due(&mut self, target: Timestamp) -> Result<Option<TimerKey>, EngineError> {
        loop {
            // The smallest timer known in memory (queued from SQLite, or of a
            // held meeting). Every SQLite timer up to the horizon is known, so
            // if that one is within the horizon it is the next of all.
            let known = match (self.db_queue.first(), self.overlay.first()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let within = match (known, &self.horizon) {
                (Some(k), Horizon::Key(h)) => k <= h,
                (Some(k), Horizon::Through(t)) => k.due <= *t,
                _ => false,
            };
            if !within && !self.covers(target) {
                self.extend(target).await?;
                continue;
            }
            return Ok(known.filter(|k| k.due <= target).cloned());
        }
    }

    /// Fire timers due at or before `target`, in order, at most `limit`.
    /// Returns whether more are due.
    async fn fire_through(&mut self, target: Timestamp, limit: usize) -> Result<bool, EngineError> {
        let mut fired = 0;
        while let Some(key) = self.next_due(target).await? {
            if fired == limit {
                return Ok(true);
            }
            fired += 1;
            let meeting = self.get(&key.meeting_id).await?;
            let Some(meeting) = meeting else {
                // A timer without its meeting cannot happen through the engine;
                // drop it rather than loop on it.
                self.db_queue.remove(&key);
                self.overlay.remove(&key);
                continue;
            };
            let now = self.instant(key.due);
            let kind = key.kind();
            let step =
                machine::transition(Some(&meeting), &Input::Timer { kind, due: key.due }, now, &self.engine.policy)
                    .expect("a timer on a known meeting is always applicable");
            let lateness = now.since(key.due);
            self.report.timers_fired += 1;
            self.report.max_lateness_us = self.report.max_lateness_us.max(lateness.as_micros());
            // A stale key (should not happen) must not be fired again.
            self.overlay.remove(&key);
            self.apply_step(step, now, "timer", format!("{kind} due {}", key.due), Some(lateness));
        }
        Ok(false)
    }

    fn dead_letter(&mut self, d: DeadLetter, origin: &str) {
        *self.report.dead_letters.entry(d.reason.kind().to_string()).or_default() += 1;
        let at = self.clock().now().max(self.last);
        self.writes.dead.push(NewDeadLetter {
            at,
            origin: origin.to_string(),
            kind: d.reason.kind(),
            reason: d.reason.to_string(),
            event_id: d.event_id,
            raw: d.raw,
        });
    }

    async fn record(&mut self, d: Decoded, origin: &str) -> Result<(), EngineError> {
        let change = d.change;
        let existing = self.get(&change.meeting_id).await?;
        // Rule 1, the part that needs the store: a new meeting needs a start.
        let has_start = change.image.as_ref().is_some_and(|i| i.meet_time.or(i.created_at).is_some());
        if existing.is_none() && !has_start {
            let reason = RecordError::NoStart(change.meeting_id.to_string());
            self.dead_letter(DeadLetter { reason, raw: d.raw, event_id: change.event_id }, origin);
            return Ok(());
        }
        // Timers due by the record's time fire first. On a virtual clock the
        // clock moves to the event time. On the wall clock the record is
        // applied now, but only timers due by its event time (or the latest
        // event time seen) fire before it: a backlog read late is applied in
        // event-time order, as replay would apply it.
        let clock_now = self.clock().now();
        let (fire_limit, target) = if self.clock().is_virtual() {
            let t = clock_now.max(change.event_time.unwrap_or(clock_now));
            (t, t)
        } else {
            let t = change.event_time.map_or(clock_now, |t| t.max(self.event_clock).min(clock_now));
            (t, clock_now)
        };
        if let Some(t) = change.event_time {
            self.event_clock = self.event_clock.max(t);
        }
        self.fire_through(fire_limit, usize::MAX).await?;
        let now = self.instant(target);
        self.report.records += 1;
        let cause_ref = format!("{} {}", change.event_name, change.event_id.as_deref().unwrap_or("(no eventID)"));

        // Rule 2: duplicates.
        if let Some(eid) = &change.event_id {
            if self.seen_db.contains(eid) || !self.seen_new.insert(eid.clone()) {
                self.report.duplicates += 1;
                if let Some(m) = self.get(&change.meeting_id).await? {
                    self.writes.history.push(NewHistory {
                        meeting_id: m.id.clone(),
                        at: now,
                        cause: "duplicate",
                        cause_ref,
                        from_state: Some(m.state),
                        to_state: m.state,
                        outcome: "ignored",
                        reason: None,
                        lateness: None,
                        notes: vec![format!("eventID {eid} was already applied: duplicate ignored")],
                    });
                }
                return Ok(());
            }
            self.writes.seen.push((eid.clone(), change.meeting_id.clone(), now));
        }
        let meeting = self.get(&change.meeting_id).await?;
        let input = Input::Record(change);
        match machine::transition(meeting.as_ref(), &input, now, &self.engine.policy) {
            Ok(step) => {
                if step.outcome == Outcome::Ignored {
                    self.report.ignored += 1;
                }
                if step.from.is_none() {
                    self.report.created += 1;
                }
                self.apply_step(step, now, "record", cause_ref, None);
            }
            Err(e) => unreachable!("start checked above: {e}"),
        }
        // Timers this input armed in the past fire right after it.
        self.fire_through(fire_limit, usize::MAX).await?;
        Ok(())
    }

    /// Take a step's results into the cache and the write buffer.
    fn apply_step(
        &mut self,
        step: Step,
        now: Timestamp,
        cause: &'static str,
        cause_ref: String,
        lateness: Option<Span>,
    ) {
        let Step { meeting, from, outcome, effects, timers, notes } = step;
        let id = meeting.id.clone();
        let reason = (outcome == Outcome::Terminated).then(|| meeting.ended.map(|e| e.reason)).flatten();
        if let Some(r) = reason {
            *self.report.terminated.entry(r.to_string()).or_default() += 1;
        }
        self.writes.history.push(NewHistory {
            meeting_id: id.clone(),
            at: now,
            cause,
            cause_ref,
            from_state: from,
            to_state: meeting.state,
            outcome: match outcome {
                Outcome::Created => "created",
                Outcome::Updated => "updated",
                Outcome::Terminated => "terminated",
                Outcome::Ignored => "ignored",
            },
            reason,
            lateness,
            notes,
        });
        for e in effects {
            let (kind, payload) = match &e {
                Effect::Terminate { instances } => ("terminate", serde_json::json!({ "instances": instances })),
                Effect::WriteBack { reason, terminated_at } => (
                    "write_back",
                    serde_json::json!({ "reason": reason.as_str(), "terminated_at": terminated_at.to_rfc3339() }),
                ),
            };
            self.report.effects_queued += 1;
            self.writes.effects.push(NewEffect {
                key: format!("{id}/{kind}"),
                meeting_id: id.clone(),
                kind,
                payload,
                at: now,
            });
        }
        if outcome == Outcome::Ignored {
            return;
        }
        if !timers.is_empty() {
            self.armed = true;
        }
        let old_timers = match self.cache.get(&id) {
            Some(Some(c)) => c.meeting.timers,
            _ => Timers::default(),
        };
        for (kind, due) in old_timers.pending() {
            self.overlay.remove(&TimerKey::new(id.clone(), kind, due));
        }
        for (kind, due) in meeting.timers.pending() {
            self.overlay.insert(TimerKey::new(id.clone(), kind, due));
        }
        match self.cache.get_mut(&id) {
            Some(Some(c)) => {
                c.meeting = meeting;
                c.dirty = true;
            }
            _ => {
                self.cache.insert(
                    id,
                    Some(Cached { meeting, loaded_version: None, loaded_timers: Timers::default(), dirty: true }),
                );
            }
        }
    }

    async fn commit(mut self) -> Result<Report, EngineError> {
        for c in self.cache.values().flatten() {
            if c.dirty {
                self.writes.meetings.push((c.meeting.clone(), c.loaded_version));
                if c.meeting.timers != c.loaded_timers {
                    self.writes.timers.push((c.meeting.id.clone(), c.meeting.timers));
                }
            }
        }
        if self.writes.is_empty() {
            self.tx.rollback().await?;
            self.engine.store.stats().add_time(crate::store::Phase::Work, self.started);
            return Ok(self.report);
        }
        if self.last > Timestamp::MIN {
            self.writes.last_instant = Some(self.last);
        }
        if self.event_clock > Timestamp::MIN {
            self.writes.event_clock = Some(self.event_clock);
        }
        // Rows in key order: inserts walk the B-trees in order instead of
        // jumping between random pages.
        self.writes.meetings.sort_unstable_by(|a, b| a.0.id.cmp(&b.0.id));
        self.writes.timers.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.writes.seen.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.tx.write(&self.writes).await?;
        crate::failpoint::hit("tx-before-commit");
        self.tx.commit().await?;
        self.engine.store.stats().add_time(crate::store::Phase::Work, self.started);
        crate::failpoint::hit("after-commit");
        self.engine.event_clock.fetch_max(self.event_clock.as_micros(), std::sync::atomic::Ordering::SeqCst);
        if self.armed {
            self.engine.timers_changed.notify_one();
        }
        if !self.writes.effects.is_empty() {
            self.engine.effects_queued.notify_one();
        }
        Ok(self.report)
    }
}
