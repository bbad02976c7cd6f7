//! One unit of work: load, decide in memory, commit once.

use std::collections::{BTreeSet, VecDeque};
use std::mem;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rustc_hash::FxHashMap;
use tokio::sync::MutexGuard;

use super::{CommandResult, EffectMode, Engine, EngineError, Incoming, Origin, Report};
use crate::clock::Clock;
use crate::meeting::history::{Cause, Chunk, Entry, Note, Outcome};
use crate::meeting::record::{DeadLetter, Decoded, Item, RecordError};
use crate::meeting::{admits, step, Command, Input, Meeting, MeetingId, Step, TimerKey, Timers};
use crate::outbox::dry_run;
use crate::store::{
    Changes, Checkpoint, Clocks, HistoryAppend, MeetingWrite, NewDeadLetter, NewEffect, StoreError, StoredMeeting,
    UnitOfWork,
};
use crate::time::{Span, Timestamp};

/// Timers read from the store per page.
const TIMER_PAGE: usize = 1024;
/// A resident engine keeps this many ended meetings in memory, unwritten,
/// before it writes the oldest (records that come after the end then find
/// them in memory, and a meeting is written once, with its whole story).
const ENDED_KEPT: usize = 10_000;

/// Where the store's due timers have been read up to.
#[derive(Debug, Clone, Default)]
enum Horizon {
    #[default]
    Nothing,
    /// Every stored timer up to and including this key is known.
    Key(TimerKey),
    /// Every stored timer due at or before this instant is known.
    Through(Timestamp),
}

/// A meeting held in memory.
struct Cached {
    stored: StoredMeeting,
    /// The version the store holds (`None`: not stored yet).
    loaded_version: Option<i64>,
    /// The row must be written.
    row_dirty: bool,
    /// Entries not written yet.
    history: Chunk,
    /// In `Cache::ended`, waiting to be written (resident).
    queued: bool,
}

impl Cached {
    fn pending(&self) -> bool {
        self.row_dirty || !self.history.is_empty()
    }
}

/// The meetings and timers a unit of work holds; a resident engine keeps it
/// between units of work.
#[derive(Default)]
pub(crate) struct Cache {
    /// `None`: known not to be stored.
    entries: FxHashMap<MeetingId, Option<Cached>>,
    /// Pending timers of the cached meetings (authoritative for them).
    overlay: BTreeSet<TimerKey>,
    /// Stored timers of meetings not cached, all those up to `horizon`.
    db_queue: BTreeSet<TimerKey>,
    horizon: Horizon,
    /// Meetings written by the commit still running, to drop once it lands
    /// (resident; ended meetings only).
    evict: Vec<MeetingId>,
    /// Meetings with something to write, in the order they first had it
    /// (their chunks are written in that order: `seq` follows the input).
    touched: Vec<MeetingId>,
    /// Ended meetings with something to write, oldest first (resident).
    ended: VecDeque<MeetingId>,
}

impl Cache {
    fn meeting(&self, id: &MeetingId) -> Option<&Meeting> {
        self.entries.get(id).and_then(Option::as_ref).map(|c| &c.stored.meeting)
    }
}

pub(super) struct Work<'e> {
    engine: &'e Engine,
    /// A resident engine's cache, held for the unit of work (units take turns).
    guard: Option<MutexGuard<'e, Cache>>,
    /// The transaction (not for a resident engine: it reads committed state
    /// and opens its transaction at commit).
    uow: Option<Box<dyn UnitOfWork>>,
    cache: Cache,
    effects: Vec<NewEffect>,
    dead: Vec<NewDeadLetter>,
    checkpoint: Option<Checkpoint>,
    /// The last engine instant of this unit of work (instants never go back within it).
    last: Timestamp,
    /// How far ahead timers may usefully be read (the batch's last event time).
    lookahead: Timestamp,
    /// The latest record event time applied (live mode).
    event_clock: Timestamp,
    report: Report,
    armed: bool,
}

impl<'e> Work<'e> {
    pub(super) async fn begin(engine: &'e Engine) -> Result<Work<'e>, EngineError> {
        let (guard, uow, cache) = if engine.options.resident {
            let mut guard = engine.resident.lock().await;
            let cache = mem::take(&mut *guard);
            (Some(guard), None, cache)
        } else {
            (None, Some(engine.store.begin().await?), Cache::default())
        };
        Ok(Work {
            engine,
            guard,
            uow,
            cache,
            effects: Vec::new(),
            dead: Vec::new(),
            checkpoint: None,
            last: Timestamp::MIN,
            lookahead: Timestamp::MIN,
            event_clock: Timestamp::from_micros(engine.event_clock.load(Ordering::SeqCst)),
            report: Report::default(),
            armed: false,
        })
    }

    pub(super) fn set_checkpoint(&mut self, checkpoint: Option<Checkpoint>) {
        self.checkpoint = checkpoint;
    }

    fn clock(&self) -> &dyn Clock {
        self.engine.clock.as_ref()
    }

    /// The engine instant for an input at `target`: the virtual clock moves
    /// there; instants never go backwards within a unit of work.
    fn instant(&mut self, target: Timestamp) -> Timestamp {
        self.clock().advance_to(target);
        let now = self.clock().now().max(self.last);
        self.last = now;
        now
    }

    async fn store_load(&mut self, ids: &[MeetingId]) -> Result<Vec<StoredMeeting>, StoreError> {
        let t = Instant::now();
        let r = match &mut self.uow {
            Some(u) => u.load(ids).await,
            None => self.engine.store.load(ids).await,
        };
        self.report.store_time += t.elapsed();
        r
    }

    async fn store_due(
        &mut self,
        after: Option<&TimerKey>,
        upto: Timestamp,
        limit: usize,
    ) -> Result<Vec<TimerKey>, StoreError> {
        let t = Instant::now();
        let r = match &mut self.uow {
            Some(u) => u.due(after, upto, limit).await,
            None => self.engine.store.due(after, upto, limit).await,
        };
        self.report.store_time += t.elapsed();
        r
    }

    fn cache_insert(&mut self, stored: StoredMeeting) {
        let m = &stored.meeting;
        for (kind, due) in m.timers.pending() {
            let key = TimerKey::new(m.id.clone(), kind, due);
            self.cache.db_queue.remove(&key);
            self.cache.overlay.insert(key);
        }
        let version = m.version;
        let id = m.id.clone();
        let entry = Cached {
            stored,
            loaded_version: Some(version),
            row_dirty: false,
            history: Chunk::default(),
            queued: false,
        };
        self.cache.entries.insert(id, Some(entry));
    }

    /// Load every meeting of `ids` not held yet, in one call.
    async fn preload(&mut self, mut ids: Vec<MeetingId>) -> Result<(), EngineError> {
        ids.retain(|id| !self.cache.entries.contains_key(id));
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort_unstable();
        ids.dedup();
        for stored in self.store_load(&ids).await? {
            self.cache_insert(stored);
        }
        for id in ids {
            self.cache.entries.entry(id).or_insert(None);
        }
        Ok(())
    }

    fn covers(&self, target: Timestamp) -> bool {
        match &self.cache.horizon {
            Horizon::Nothing => false,
            Horizon::Key(k) => k.due > target,
            Horizon::Through(t) => *t >= target,
        }
    }

    /// Read the next page of stored timers due at or before `target`.
    async fn extend(&mut self, target: Timestamp) -> Result<(), EngineError> {
        // Read ahead to where this unit of work is known to go (a batch's last
        // event time), so a batch reads its timers in pages, not per record.
        let upto = target.max(self.lookahead);
        let after = match &self.cache.horizon {
            Horizon::Nothing => None,
            Horizon::Key(k) => Some(k.clone()),
            Horizon::Through(t) => Some(TimerKey::new(
                MeetingId::new("\u{10FFFF}").expect("not empty"),
                crate::meeting::TimerKind::Fixed,
                *t,
            )),
        };
        let rows = self.store_due(after.as_ref(), upto, TIMER_PAGE).await?;
        let full = rows.len() == TIMER_PAGE;
        self.cache.horizon = match rows.last() {
            Some(last) if full => Horizon::Key(last.clone()),
            _ => Horizon::Through(upto),
        };
        let mut load = Vec::new();
        for key in rows {
            if !self.cache.entries.contains_key(&key.meeting_id) {
                load.push(key.meeting_id.clone());
                self.cache.db_queue.insert(key);
            }
        }
        // Their meetings in one go (they move from the queue to the overlay).
        self.preload(load).await
    }

    /// The next pending timer due at or before `target`, in fire order.
    async fn next_due(&mut self, target: Timestamp) -> Result<Option<TimerKey>, EngineError> {
        loop {
            // The smallest timer known in memory (queued from the store, or of
            // a held meeting). Every stored timer up to the horizon is known,
            // so if that one is within the horizon it is the next of all.
            let known = match (self.cache.db_queue.first(), self.cache.overlay.first()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let within = match (known, &self.cache.horizon) {
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
    pub(super) async fn fire_through(&mut self, target: Timestamp, limit: usize) -> Result<bool, EngineError> {
        let mut fired = 0;
        while let Some(key) = self.next_due(target).await? {
            if fired == limit {
                return Ok(true);
            }
            fired += 1;
            if self.cache.meeting(&key.meeting_id).is_none() {
                // A timer without its meeting cannot happen through the engine;
                // drop it rather than loop on it.
                self.cache.db_queue.remove(&key);
                self.cache.overlay.remove(&key);
                continue;
            }
            let now = self.instant(key.due);
            let input = Input::Timer { kind: key.kind, due: key.due };
            let lateness = now.since(key.due);
            self.report.timers_fired += 1;
            self.report.max_lateness_us = self.report.max_lateness_us.max(lateness.as_micros());
            let cause = Cause::Timer { kind: key.kind, due: key.due };
            self.run_step(&key.meeting_id, &input, now, cause, Some(lateness))
                .expect("a timer of a known meeting is always applicable");
            // A stale key (should not happen) must not be fired again.
            self.cache.overlay.remove(&key);
        }
        Ok(false)
    }

    /// Apply a batch of records and dead letters, in order.
    pub(super) async fn apply(&mut self, items: Vec<Incoming>) -> Result<(), EngineError> {
        let mut ids = Vec::with_capacity(items.len());
        let now = self.clock().now();
        let mut lookahead = now;
        for i in &items {
            if let Item::Record(d) = &i.item {
                ids.push(d.change.meeting_id.clone());
                lookahead = lookahead.max(d.change.event_time.unwrap_or(now));
            }
        }
        if self.clock().is_virtual() {
            self.lookahead = lookahead;
        }
        self.preload(ids).await?;
        for i in items {
            match i.item {
                Item::Record(d) => self.record(*d, &i.origin).await?,
                Item::Dead(d) => self.dead_letter(d, &i.origin),
            }
        }
        Ok(())
    }

    fn dead_letter(&mut self, d: DeadLetter, origin: &Origin) {
        *self.report.dead_letters.entry(d.reason.kind().to_string()).or_default() += 1;
        let at = self.clock().now().max(self.last);
        self.dead.push(NewDeadLetter {
            at,
            origin: origin.to_string(),
            kind: d.reason.kind(),
            reason: d.reason.to_string(),
            event_id: d.event_id,
            raw: d.raw,
        });
    }

    async fn record(&mut self, d: Decoded, origin: &Origin) -> Result<(), EngineError> {
        let change = d.change;
        let id = change.meeting_id.clone();
        // (`apply` loaded the batch's meetings.)
        // Rule 1, the part that needs the store: a new meeting needs a start.
        // A dead-lettered record does not move the clock.
        if let Err(rejection) = admits(self.cache.meeting(&id), &change) {
            let reason = RecordError::Rejected(rejection);
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

        // Rule 2: a record whose eventID this meeting has applied is a duplicate.
        if let (Some(eid), Some(Some(c))) = (&change.event_id, self.cache.entries.get_mut(&id)) {
            if c.stored.event_ids.iter().any(|e| e == eid) {
                self.report.duplicates += 1;
                let state = c.stored.meeting.state;
                c.history.push(&Entry {
                    at: now,
                    cause: Cause::Duplicate { event: change.event_name, event_id: eid.clone() },
                    from: Some(state),
                    to: Some(state),
                    outcome: Outcome::Ignored,
                    reason: None,
                    lateness: None,
                    notes: vec![Note::Duplicate { event_id: eid.clone() }],
                });
                self.touch(&id);
                return Ok(());
            }
        }
        let cause = Cause::Record { event: change.event_name, event_id: change.event_id.clone() };
        let event_id = change.event_id.clone();
        let created = self.cache.meeting(&id).is_none();
        let input = Input::Record(change);
        match self.run_step(&id, &input, now, cause, None) {
            Ok(outcome) => {
                if outcome == Outcome::Ignored {
                    self.report.ignored += 1;
                }
                if created {
                    self.report.created += 1;
                }
            }
            Err(rejection) => {
                // `admits` said yes a moment ago; should the rules ever
                // disagree, the record is kept as a dead letter, not lost.
                let Input::Record(change) = input else { unreachable!("built above") };
                let reason = RecordError::Rejected(rejection);
                self.dead_letter(DeadLetter { reason, raw: d.raw, event_id: change.event_id }, origin);
                return Ok(());
            }
        }
        if let (Some(eid), Some(Some(c))) = (event_id, self.cache.entries.get_mut(&id)) {
            c.stored.event_ids.push(eid);
            c.row_dirty = true;
        }
        self.touch(&id);
        // Timers this input armed in the past fire right after it.
        self.fire_through(fire_limit, usize::MAX).await?;
        Ok(())
    }

    /// An operator command on one meeting, after what is due.
    pub(super) async fn command(&mut self, id: &MeetingId, cmd: Command) -> Result<CommandResult, EngineError> {
        self.preload(vec![id.clone()]).await?;
        let target = self.clock().now();
        self.fire_through(target, usize::MAX).await?;
        let now = self.instant(target);
        let kind = cmd.kind();
        let (meeting, timers) = self.take(id);
        let step = match step(meeting, &Input::Command(cmd), now, &self.engine.policy) {
            Ok(s) => s,
            Err((_, meeting)) => {
                self.put_back(meeting);
                return Err(EngineError::UnknownMeeting(id.clone()));
            }
        };
        let result = CommandResult {
            meeting_id: id.clone(),
            outcome: step.outcome,
            state: step.meeting.state,
            notes: step.notes.clone(),
        };
        self.apply_step(step, timers, now, Cause::Command(kind), None);
        self.fire_through(now, usize::MAX).await?;
        Ok(result)
    }

    /// Take a cached meeting out for [`step`] (a placeholder keeps its place),
    /// with its pending timers as they are.
    fn take(&mut self, id: &MeetingId) -> (Option<Meeting>, Timers) {
        match self.cache.entries.get_mut(id) {
            Some(Some(c)) => {
                let m = mem::replace(&mut c.stored.meeting, Meeting::new(id.clone(), Timestamp::EPOCH));
                let timers = m.timers;
                (Some(m), timers)
            }
            _ => (None, Timers::default()),
        }
    }

    /// Give back a meeting [`Work::take`] took, unchanged.
    fn put_back(&mut self, meeting: Option<Meeting>) {
        if let Some(m) = meeting {
            if let Some(Some(c)) = self.cache.entries.get_mut(&m.id) {
                c.stored.meeting = m;
            }
        }
    }

    /// Run a step on a cached meeting (or none) and take its results.
    fn run_step(
        &mut self,
        id: &MeetingId,
        input: &Input,
        now: Timestamp,
        cause: Cause,
        lateness: Option<Span>,
    ) -> Result<Outcome, crate::meeting::Rejection> {
        let (meeting, timers) = self.take(id);
        match step(meeting, input, now, &self.engine.policy) {
            Ok(s) => {
                let outcome = s.outcome;
                self.apply_step(s, timers, now, cause, lateness);
                Ok(outcome)
            }
            Err((rejection, meeting)) => {
                self.put_back(meeting);
                Err(rejection)
            }
        }
    }

    /// Take a step's results into the cache and the write buffer; `old` are
    /// the meeting's pending timers before the step.
    fn apply_step(&mut self, step: Step, old: Timers, now: Timestamp, cause: Cause, lateness: Option<Span>) {
        let Step { meeting, from, outcome, effects, timers: _, notes } = step;
        let id = meeting.id.clone();
        let reason = (outcome == Outcome::Terminated).then(|| meeting.ended.map(|e| e.reason)).flatten();
        if let Some(r) = reason {
            *self.report.terminated.entry(r).or_default() += 1;
        }
        let mut entries =
            vec![Entry { at: now, cause, from, to: Some(meeting.state), outcome, reason, lateness, notes }];
        if !effects.is_empty() {
            let completed = self.engine.options.effects == EffectMode::DryRunInline;
            if completed {
                self.report.effects_completed += 1;
                entries.extend(effects.iter().map(|e| dry_run::entry(e, now)));
            } else {
                self.report.effects_queued += 1;
            }
            self.effects.push(NewEffect {
                key: format!("{id}/end"),
                meeting_id: id.clone(),
                parts: effects,
                at: now,
                completed,
            });
        }
        let changed = outcome != Outcome::Ignored;
        // Only the timers that changed move in the queue.
        for kind in crate::meeting::TimerKind::ALL.iter().copied() {
            let (was, is) = (old.get(kind), meeting.timers.get(kind));
            if was == is {
                continue;
            }
            if let Some(due) = was {
                self.cache.overlay.remove(&TimerKey::new(id.clone(), kind, due));
            }
            if let Some(due) = is {
                self.cache.overlay.insert(TimerKey::new(id.clone(), kind, due));
                self.armed = true;
            }
        }
        match self.cache.entries.get_mut(&id) {
            Some(Some(c)) => {
                c.stored.meeting = meeting;
                if changed {
                    c.row_dirty = true;
                }
                for e in &entries {
                    c.history.push(e);
                }
            }
            _ => {
                let stored = StoredMeeting { meeting, event_ids: Vec::new() };
                let history = entries.iter().cloned().collect();
                let c = Cached { stored, loaded_version: None, row_dirty: true, history, queued: false };
                self.cache.entries.insert(id.clone(), Some(c));
            }
        }
        self.touch(&id);
    }

    /// Note that a cached meeting has something to write.
    fn touch(&mut self, id: &MeetingId) {
        let resident = self.guard.is_some();
        let Some(Some(c)) = self.cache.entries.get_mut(id) else { return };
        if resident {
            // A resident engine writes a meeting once it has ended and is
            // among the oldest ended ones, or at the final flush.
            if c.stored.meeting.ended.is_some() && !c.queued {
                c.queued = true;
                self.cache.ended.push_back(id.clone());
            }
        } else if !c.queued {
            c.queued = true;
            self.cache.touched.push(id.clone());
        }
    }

    /// What to write now: everything touched (worker); the oldest ended
    /// meetings beyond what is kept, or everything with `all` (resident).
    fn to_write(&mut self, all: bool) -> Vec<MeetingId> {
        if self.guard.is_none() {
            return mem::take(&mut self.cache.touched);
        }
        if all {
            self.cache.ended.clear();
            let mut ids: Vec<MeetingId> = self
                .cache
                .entries
                .iter()
                .filter(|(_, c)| c.as_ref().is_some_and(Cached::pending))
                .map(|(id, _)| id.clone())
                .collect();
            ids.sort_unstable();
            return ids;
        }
        let n = self.cache.ended.len().saturating_sub(ENDED_KEPT);
        self.cache.ended.drain(..n).collect()
    }

    /// The store's changes: the meetings `ids`, and everything else this unit of work decided.
    fn changes(&mut self, ids: &[MeetingId]) -> Changes {
        let mut changes = Changes::default();
        for id in ids {
            let Some(Some(c)) = self.cache.entries.get_mut(id) else { continue };
            c.queued = false;
            if c.row_dirty {
                changes.meetings.push(MeetingWrite { stored: c.stored.clone(), loaded_version: c.loaded_version });
                c.loaded_version = Some(c.stored.meeting.version);
                c.row_dirty = false;
            }
            if !c.history.is_empty() {
                changes.history.push(HistoryAppend { meeting_id: id.clone(), chunk: mem::take(&mut c.history) });
            }
        }
        // Meeting rows in key order: the writes walk the B-tree in order.
        changes.meetings.sort_unstable_by(|a, b| a.stored.meeting.id.cmp(&b.stored.meeting.id));
        changes.effects = mem::take(&mut self.effects);
        changes.dead_letters = mem::take(&mut self.dead);
        changes.checkpoint = self.checkpoint.take();
        changes.clocks = Clocks {
            last_instant: (self.last > Timestamp::MIN).then_some(self.last),
            event_clock: (self.event_clock > Timestamp::MIN).then_some(self.event_clock),
        };
        changes
    }

    /// Commit what this unit of work decided (a resident engine: start committing it).
    pub(super) async fn commit(self) -> Result<Report, EngineError> {
        self.commit_with(false).await
    }

    /// Commit, writing every meeting a resident engine still holds unwritten.
    pub(super) async fn commit_all(self) -> Result<Report, EngineError> {
        self.commit_with(true).await
    }

    async fn commit_with(mut self, all: bool) -> Result<Report, EngineError> {
        let ids = self.to_write(all);
        let changes = self.changes(&ids);
        let queued = !changes.effects.is_empty() && self.engine.options.effects == EffectMode::Queue;
        let engine = self.engine;
        let mut report = mem::take(&mut self.report);
        if let Some(mut guard) = self.guard.take() {
            let mut cache = mem::take(&mut self.cache);
            // The previous commit must land before anything of it leaves memory.
            let previous = engine.inflight.lock().await.take();
            if let Some(task) = previous {
                let t = Instant::now();
                task.await.map_err(|e| EngineError::Commit(e.to_string()))??;
                report.store_time += t.elapsed();
            }
            // What the previous commit wrote may leave memory now, unless it
            // was touched again since (then it waits for its next write).
            for id in mem::take(&mut cache.evict) {
                if let Some(Some(c)) = cache.entries.get(&id) {
                    if !c.pending() && c.stored.meeting.ended.is_some() {
                        cache.entries.remove(&id);
                    }
                }
            }
            if !all {
                cache.evict = ids;
            }
            cache.entries.retain(|_, c| c.is_some());
            // The final flush also writes the clocks (a later replay resumes there).
            if !changes.is_empty() || all {
                report.commits += 1;
                let store = engine.store.clone();
                let task = tokio::spawn(async move { store.begin().await?.commit(changes).await });
                *engine.inflight.lock().await = Some(task);
            }
            *guard = cache;
        } else {
            let uow = self.uow.take().expect("a unit of work that is not resident holds a transaction");
            let t = Instant::now();
            if changes.is_empty() {
                uow.rollback().await?;
            } else {
                uow.commit(changes).await?;
                report.commits += 1;
            }
            report.store_time += t.elapsed();
            crate::failpoint::hit("after-commit");
        }
        engine.event_clock.fetch_max(self.event_clock.as_micros(), Ordering::SeqCst);
        if self.armed {
            engine.timers_changed.notify_one();
        }
        if queued {
            engine.effects_queued.notify_one();
        }
        Ok(report)
    }

    /// End without committing.
    pub(super) async fn abandon(mut self) -> Result<(), EngineError> {
        if let Some(uow) = self.uow.take() {
            uow.rollback().await?;
        }
        if let Some(mut guard) = self.guard.take() {
            // Nothing of this unit of work is kept: once the last commit has
            // landed, the store is the truth and the cache starts empty.
            if let Some(task) = self.engine.inflight.lock().await.take() {
                task.await.map_err(|e| EngineError::Commit(e.to_string()))??;
            }
            *guard = Cache::default();
        }
        Ok(())
    }
}
