//! One unit of work: load, decide in memory, commit once.
//!
//! * [`backing`] — where it reads what it does not hold and how its
//!   decisions reach the store: a store transaction, or a resident engine's
//!   memory;
//! * [`cache`] — the meetings and timers a unit of work holds, and paging
//!   through the store's due timers in fire order;
//! * this file — records, timers and commands applied to them;
//! * [`commit`] — what is written, when, and the commit itself.

mod backing;
mod cache;
mod commit;

use std::mem;
use std::sync::atomic::Ordering;

use tracing::Instrument;

use super::{CommandResult, EffectMode, Engine, EngineError, Incoming, Origin, Report};
use crate::clock::Clock;
use crate::machine::{duplicate, Machine};
use crate::meeting::history::{Cause, Entry, Note, Outcome};
use crate::meeting::record::{DeadLetter, Decoded, Item, RecordError};
use crate::meeting::stored::encode_parts;
use crate::meeting::{Command, Input, Meeting, MeetingId, MeetingWorkflow, Step, StoredMeeting, TimerKey, TimerKind};
use crate::store::{Checkpoint, NewDeadLetter, NewEffect};
use crate::time::{Span, Timestamp};
use backing::{Backing, Resident, Transaction};
pub(crate) use cache::Cache;
use cache::Cached;

/// A meeting as a step found it: what its results are compared with (its
/// pending timers are in [`Work::before`]).
#[derive(Default)]
struct Before {
    /// What its search attributes depended on (`None`: it did not exist).
    search: Option<(usize, Option<Timestamp>)>,
}

pub(super) struct Work<'e> {
    engine: &'e Engine,
    /// A store transaction, or a resident engine's memory.
    backing: Box<dyn Backing + 'e>,
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
    /// The pending timers of the meeting a step took, and of what it left.
    before: Vec<(TimerKind, Timestamp)>,
    after: Vec<(TimerKind, Timestamp)>,
}

impl<'e> Work<'e> {
    pub(super) async fn begin(engine: &'e Engine) -> Result<Work<'e>, EngineError> {
        let mut backing: Box<dyn Backing + 'e> = if engine.options.resident {
            Box::new(Resident { guard: engine.resident.lock().await })
        } else {
            Box::new(Transaction { uow: engine.store.begin().await? })
        };
        let cache = backing.take_cache();
        Ok(Work {
            engine,
            backing,
            cache,
            effects: Vec::new(),
            dead: Vec::new(),
            checkpoint: None,
            last: Timestamp::MIN,
            lookahead: Timestamp::MIN,
            event_clock: Timestamp::from_micros(engine.event_clock.load(Ordering::SeqCst)),
            report: Report::default(),
            armed: false,
            before: Vec::new(),
            after: Vec::new(),
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
        self.lookahead = self.engine.pace.lookahead(lookahead);
        self.preload(ids).await?;
        for i in items {
            match i.item {
                Item::Record(d) => {
                    let span = tracing::info_span!(
                        "record",
                        meeting_id = %d.change.meeting_id,
                        event_id = d.change.event_id.as_deref().unwrap_or(""),
                        event = %d.change.event_name,
                    );
                    self.record(*d, &i.origin).instrument(span).await?
                }
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
            kind: d.reason.kind().into(),
            reason: d.reason.to_string(),
            event_id: d.event_id,
            raw: d.raw,
        });
    }

    async fn record(&mut self, d: Decoded, origin: &Origin) -> Result<(), EngineError> {
        let input = Input::Record(d.change);
        let Input::Record(change) = &input else { unreachable!("built above") };
        let id = change.meeting_id.clone();
        // (`apply` loaded the batch's meetings.)
        // Rule 1, the part that needs the store: a new meeting needs a start.
        // A dead-lettered record does not move the clock.
        if self.cache.meeting(&id).is_none() {
            if let Err(rejection) = self.engine.machine.creates(&input) {
                let reason = RecordError::Rejected(rejection);
                let event_id = change.event_id.clone();
                self.dead_letter(DeadLetter { reason, raw: d.raw, event_id }, origin);
                return Ok(());
            }
        }
        // Timers due by the record's time fire first, as the pace says (see
        // `pace.rs`): on a virtual clock, everything due by its event time; on
        // the wall clock, its own meeting's timers due by its event time and
        // every other meeting's only through the stream gate. A backlog read
        // late, at any relative speed of the shards, is applied in event-time
        // order per meeting, as replay of the records merged by event time would.
        let clock_now = self.clock().now();
        let gate = self.engine.limit_at(clock_now);
        let times = self.engine.pace.record(clock_now, change.event_time, self.event_clock, gate);
        let (own_limit, fire_limit, target) = (times.own, times.fire, times.at);
        if let Some(t) = change.event_time {
            self.event_clock = self.event_clock.max(t);
        }
        self.fire_through(fire_limit, usize::MAX).await?;
        self.fire_meeting_through(&id, own_limit).await?;
        let now = self.instant(target);
        self.report.records += 1;

        // Rule 2: a record whose eventID this meeting has applied is a duplicate.
        if let Some(Some(c)) = self.cache.entries.get_mut(&id) {
            if let Some(eid) = duplicate::<MeetingWorkflow, _>(&c.stored.event_ids, &input) {
                self.report.duplicates += 1;
                let state = c.stored.meeting.state;
                c.history.push(&Entry {
                    at: now,
                    cause: Cause::Duplicate { event: change.event_name, event_id: eid.to_string() },
                    from: Some(state),
                    to: Some(state),
                    outcome: Outcome::Ignored,
                    reason: None,
                    lateness: None,
                    notes: vec![Note::Duplicate { event_id: eid.to_string() }],
                });
                self.touch(&id);
                return Ok(());
            }
        }
        let cause = Cause::Record { event: change.event_name, event_id: change.event_id.clone() };
        let event_id = MeetingWorkflow::dedupe_key(&input).map(str::to_string);
        let created = self.cache.meeting(&id).is_none();
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
                // `creates` said yes a moment ago; should the rules ever
                // disagree, the record is kept as a dead letter, not lost.
                let reason = RecordError::Rejected(rejection);
                self.dead_letter(DeadLetter { reason, raw: d.raw, event_id }, origin);
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
        self.fire_meeting_through(&id, own_limit).await?;
        Ok(())
    }

    /// An operator command on one meeting, after what is due — held by the
    /// stream gate: a command fires no timer the stream has not been read
    /// past (its meeting's records before it may still be unread).
    pub(super) async fn command(
        &mut self,
        id: &MeetingId,
        cmd: Command,
        gate: Timestamp,
    ) -> Result<CommandResult, EngineError> {
        self.preload(vec![id.clone()]).await?;
        let clock_now = self.clock().now();
        let limit = gate.min(clock_now);
        self.fire_through(limit, usize::MAX).await?;
        let now = self.instant(clock_now);
        let kind = cmd.kind();
        let (meeting, before) = self.take(id);
        let step = match self.engine.machine.step(meeting, &Input::Command(cmd), now) {
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
        self.apply_step(step, before, now, Cause::Command(kind), None);
        self.fire_through(limit, usize::MAX).await?;
        Ok(result)
    }

    /// Take a cached meeting out for [`step`] (a placeholder keeps its place),
    /// with what the step's results are compared with.
    fn take(&mut self, id: &MeetingId) -> (Option<Meeting>, Before) {
        self.before.clear();
        match self.cache.entries.get_mut(id) {
            Some(Some(c)) => {
                let m = mem::replace(&mut c.stored.meeting, Meeting::new(id.clone(), Timestamp::EPOCH));
                MeetingWorkflow::timers(&m, &mut self.before);
                let before = Before { search: Some(m.search_stamp()) };
                (Some(m), before)
            }
            _ => (None, Before::default()),
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
        let (meeting, before) = self.take(id);
        match self.engine.machine.step(meeting, input, now) {
            Ok(s) => {
                let outcome = s.outcome;
                self.apply_step(s, before, now, cause, lateness);
                Ok(outcome)
            }
            Err((rejection, meeting)) => {
                self.put_back(meeting);
                Err(rejection)
            }
        }
    }

    /// Take a step's results into the cache and the write buffer, compared
    /// with the meeting `before` the step.
    fn apply_step(&mut self, step: Step, before: Before, now: Timestamp, cause: Cause, lateness: Option<Span>) {
        // Search attributes are only ever added: a new count means new ones to index.
        let search_changed = Some(step.meeting.search_stamp()) != before.search;
        let Step { meeting, from, outcome, effects, timers: _, notes } = step;
        let id = meeting.id.clone();
        let reason = (outcome == Outcome::Terminated).then(|| meeting.ended.map(|e| e.reason)).flatten();
        if let Some(r) = reason {
            *self.report.terminated.entry(r).or_default() += 1;
        }
        let mut entries =
            vec![Entry { at: now, cause, from, to: Some(meeting.state), outcome, reason, lateness, notes }];
        if !effects.is_empty() {
            let completed = match self.engine.options.effects {
                EffectMode::Inline(complete) => {
                    self.report.effects_completed += 1;
                    entries.extend(effects.iter().map(|e| complete(e, now)));
                    true
                }
                EffectMode::Queue => {
                    self.report.effects_queued += 1;
                    false
                }
            };
            self.effects.push(NewEffect {
                key: format!("{id}/end"),
                subject: id.to_string(),
                parts: encode_parts(&effects),
                count: effects.len(),
                at: now,
                completed,
            });
        }
        let changed = outcome != Outcome::Ignored;
        // Only the timers that changed move in the queue.
        self.after.clear();
        MeetingWorkflow::timers(&meeting, &mut self.after);
        for &(kind, due) in &self.before {
            if !self.after.contains(&(kind, due)) {
                self.cache.overlay.remove(&TimerKey::new(id.clone(), kind, due));
            }
        }
        for &(kind, due) in &self.after {
            if !self.before.contains(&(kind, due)) {
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
                c.search_dirty |= search_changed;
                for e in &entries {
                    c.history.push(e);
                }
            }
            _ => {
                let stored = StoredMeeting { meeting, event_ids: Vec::new() };
                let history = entries.iter().cloned().collect();
                let c = Cached {
                    stored,
                    loaded_version: None,
                    row_dirty: true,
                    search_dirty: true,
                    history,
                    queued: false,
                };
                self.cache.entries.insert(id.clone(), Some(Box::new(c)));
            }
        }
        self.touch(&id);
    }
}
