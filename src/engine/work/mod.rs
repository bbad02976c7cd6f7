//! One unit of work: load, decide in memory, commit once.
//!
//! * [`backing`] — where it reads what it does not hold and how its
//!   decisions reach the store: a store transaction, or a resident engine's
//!   memory;
//! * [`cache`] — the instances and timers a unit of work holds, and paging
//!   through the store's due timers in fire order;
//! * this file — inputs, timers and commands applied to them;
//! * [`commit`] — what is written, when, and the commit itself.

mod backing;
mod cache;
mod commit;

use std::sync::atomic::Ordering;

use tracing::Instrument;

use super::{EffectMode, Engine, EngineError, Incoming, Origin, Report};
use crate::clock::Clock;
use crate::machine::{duplicate, Durable, Letter, Opened, Took};
use crate::store::{Checkpoint, NewDeadLetter, NewEffect};
use crate::time::Timestamp;
use backing::{Backing, Resident, Transaction};
pub(crate) use cache::Cache;
use cache::{Cached, Held, Key};

pub(super) struct Work<'e, M: Durable> {
    engine: &'e Engine<M>,
    /// A store transaction, or a resident engine's memory.
    backing: Box<dyn Backing<M> + 'e>,
    cache: Cache<M>,
    effects: Vec<NewEffect>,
    dead: Vec<NewDeadLetter>,
    checkpoint: Option<Checkpoint>,
    /// The last engine instant of this unit of work (instants never go back within it).
    last: Timestamp,
    /// How far ahead timers may usefully be read (the batch's last event time).
    lookahead: Timestamp,
    /// The latest source event time applied (live mode).
    event_clock: Timestamp,
    report: Report,
    armed: bool,
    /// The pending timers of the instance a step took, and of what it left.
    before: Vec<(M::Timer, Timestamp)>,
    after: Vec<(M::Timer, Timestamp)>,
}

/// What a step's results are compared with: the search stamp of the
/// instance it took (`None`: it did not exist); its timers are in [`Work::before`].
type Before = Option<u128>;

impl<'e, M: Durable> Work<'e, M> {
    pub(super) async fn begin(engine: &'e Engine<M>) -> Result<Work<'e, M>, EngineError> {
        let mut backing: Box<dyn Backing<M> + 'e> = if engine.options.resident {
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

    /// Apply a batch of items, in order.
    pub(super) async fn apply(&mut self, items: Vec<Incoming<M>>) -> Result<(), EngineError> {
        let items: Vec<(Opened<M>, Origin)> = items.into_iter().map(|i| (M::open(i.item), i.origin)).collect();
        let mut ids = Vec::with_capacity(items.len());
        let now = self.clock().now();
        let mut lookahead = now;
        for (opened, _) in &items {
            if let Opened::Input { input, .. } = opened {
                if let Some(id) = M::subject(input) {
                    ids.push(id.clone());
                }
                lookahead = lookahead.max(M::event_time(input).unwrap_or(now));
            }
        }
        self.lookahead = self.engine.pace.lookahead(lookahead);
        self.preload(ids).await?;
        for (opened, origin) in items {
            match opened {
                Opened::Input { input, raw } => {
                    let Some(id) = M::subject(&input).cloned() else {
                        // (A source's inputs name their instance; one that does not is refused.)
                        let letter = Letter {
                            kind: "no_subject",
                            reason: format!("the input names no {}", M::NOUN),
                            event_id: M::dedupe_key(&input).map(str::to_string),
                            raw,
                        };
                        self.dead_letter(letter, &origin);
                        continue;
                    };
                    let span = M::span(&id, &input, None);
                    self.input(id, input, raw, &origin).instrument(span).await?
                }
                Opened::Dead(d) => self.dead_letter(d, &origin),
            }
        }
        Ok(())
    }

    fn dead_letter(&mut self, d: Letter, origin: &Origin) {
        *self.report.dead_letters.entry(d.kind.to_string()).or_default() += 1;
        let at = self.clock().now().max(self.last);
        self.dead.push(NewDeadLetter {
            at,
            origin: origin.to_string(),
            kind: d.kind.into(),
            reason: d.reason,
            event_id: d.event_id,
            raw: d.raw,
        });
    }

    fn refused(&mut self, rejection: M::Rejection, input: &M::Input, raw: Vec<u8>, origin: &Origin) {
        let (kind, reason) = M::refusal(rejection);
        let event_id = M::dedupe_key(input).map(str::to_string);
        self.dead_letter(Letter { kind, reason, event_id, raw }, origin);
    }

    async fn input(&mut self, id: M::Id, input: M::Input, raw: Vec<u8>, origin: &Origin) -> Result<(), EngineError> {
        // (`apply` loaded the batch's instances.)
        // Admission, the part that needs the store: can the input create an
        // instance that does not exist? A refused input does not move the clock.
        if self.cache.held(&id).is_none() {
            if let Err(rejection) = self.engine.machine.creates(&input) {
                self.refused(rejection, &input, raw, origin);
                return Ok(());
            }
        }
        // Timers due by the input's time fire first, as the pace says (see
        // `pace.rs`): on a virtual clock, everything due by its event time; on
        // the wall clock, its own instance's timers due by its event time and
        // every other instance's only through the stream gate. A backlog read
        // late, at any relative speed of the shards, is applied in event-time
        // order per instance, as replay of the inputs merged by event time would.
        let clock_now = self.clock().now();
        let gate = self.engine.limit_at(clock_now);
        let event_time = M::event_time(&input);
        let times = self.engine.pace.record(clock_now, event_time, self.event_clock, gate);
        let (own_limit, fire_limit, target) = (times.own, times.fire, times.at);
        if let Some(t) = event_time {
            self.event_clock = self.event_clock.max(t);
        }
        self.fire_through(fire_limit, usize::MAX).await?;
        self.fire_instance_through(&id, own_limit).await?;
        let now = self.instant(target);
        self.report.records += 1;

        // An input whose dedupe key this instance has applied is a duplicate.
        if let Some(Some(c)) = self.cache.entries.get_mut(&id) {
            if let Some(key) = duplicate::<M, _>(&c.held.keys, &input) {
                self.report.duplicates += 1;
                let entry = M::duplicate(c.state(), &input, key, now);
                c.history.push(&entry);
                self.touch(&id);
                return Ok(());
            }
        }
        let key = M::dedupe_key(&input).map(str::to_string);
        let created = self.cache.held(&id).is_none();
        match self.run_step(&id, &input, now) {
            Ok(changed) => {
                if !changed {
                    self.report.ignored += 1;
                }
                if created {
                    self.report.created += 1;
                }
            }
            Err(rejection) => {
                // `creates` said yes a moment ago; should the machine ever
                // disagree, the input is kept as a dead letter, not lost.
                self.refused(rejection, &input, raw, origin);
                return Ok(());
            }
        }
        if let (Some(key), Some(Some(c))) = (key, self.cache.entries.get_mut(&id)) {
            c.held.keys.push(key);
            c.row_dirty = true;
        }
        self.touch(&id);
        // Timers this input armed in the past fire right after it.
        self.fire_through(fire_limit, usize::MAX).await?;
        self.fire_instance_through(&id, own_limit).await?;
        Ok(())
    }

    /// An input no source delivers (an operator's command) on one instance,
    /// after what is due — held by the stream gate: it fires no timer the
    /// stream has not been read past (its instance's inputs before it may
    /// still be unread). Returns the step's history entry.
    pub(super) async fn command(
        &mut self,
        id: &M::Id,
        input: M::Input,
        gate: Timestamp,
    ) -> Result<M::Entry, EngineError> {
        self.preload(vec![id.clone()]).await?;
        let clock_now = self.clock().now();
        let limit = gate.min(clock_now);
        self.fire_through(limit, usize::MAX).await?;
        let now = self.instant(clock_now);
        let entered = M::span(id, &input, None).entered();
        let (state, before) = self.take(id);
        let step = match self.engine.machine.step(state, &input, now) {
            Ok(s) => s,
            Err((rejection, state)) => {
                let exists = state.is_some();
                self.put_back(id, state);
                return Err(if exists {
                    EngineError::Refused { reason: M::refusal(rejection).1 }
                } else {
                    EngineError::Unknown { noun: M::NOUN, id: id.to_string() }
                });
            }
        };
        let took = M::took(step, &input, now);
        let entry = took.entry.clone();
        self.apply_step(took, before, now);
        drop(entered);
        // What the command armed at its own instant fires right after it
        // (unless the stream gate holds timers back).
        let after = gate.min(now);
        self.fire_through(after, usize::MAX).await?;
        Ok(entry)
    }

    /// Take a held instance's state out for a step, with what the step's
    /// results are compared with.
    fn take(&mut self, id: &M::Id) -> (Option<M::State>, Before) {
        self.before.clear();
        match self.cache.entries.get_mut(id) {
            Some(Some(c)) => {
                let state = c.held.state.take().expect("a held instance has its state between steps");
                M::timers(&state, &mut self.before);
                let stamp = M::search_stamp(&state);
                (Some(state), Some(stamp))
            }
            _ => (None, None),
        }
    }

    /// Give back a state [`Work::take`] took, unchanged.
    fn put_back(&mut self, id: &M::Id, state: Option<M::State>) {
        if let (Some(s), Some(Some(c))) = (state, self.cache.entries.get_mut(id)) {
            c.held.state = Some(s);
        }
    }

    /// Run a step on a held instance (or none) and take its results:
    /// whether it changed anything.
    fn run_step(&mut self, id: &M::Id, input: &M::Input, now: Timestamp) -> Result<bool, M::Rejection> {
        let (state, before) = self.take(id);
        match self.engine.machine.step(state, input, now) {
            Ok(s) => {
                let took = M::took(s, input, now);
                let changed = took.changed;
                self.apply_step(took, before, now);
                Ok(changed)
            }
            Err((rejection, state)) => {
                self.put_back(id, state);
                Err(rejection)
            }
        }
    }

    /// Take a step's results into the cache and the write buffer, compared
    /// with the instance `before` the step.
    fn apply_step(&mut self, took: Took<M>, before: Before, now: Timestamp) {
        let Took { state, entry, effects, changed, ended } = took;
        let search_changed = Some(M::search_stamp(&state)) != before;
        let id = M::id(&state).clone();
        if let Some(how) = ended {
            *self.report.terminated.entry(how).or_default() += 1;
        }
        let mut entries = vec![entry];
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
            let (key, parts) = M::outbox(&state, &effects);
            self.effects.push(NewEffect {
                key,
                subject: id.as_ref().to_string(),
                parts,
                count: effects.len(),
                at: now,
                completed,
            });
        }
        // Only the timers that changed move in the queue.
        self.after.clear();
        M::timers(&state, &mut self.after);
        for &(timer, due) in &self.before {
            if !self.after.contains(&(timer, due)) {
                self.cache.overlay.remove(&Key { due, timer, id: id.clone() });
            }
        }
        for &(timer, due) in &self.after {
            if !self.before.contains(&(timer, due)) {
                self.cache.overlay.insert(Key { due, timer, id: id.clone() });
                self.armed = true;
            }
        }
        match self.cache.entries.get_mut(&id) {
            Some(Some(c)) => {
                c.held.state = Some(state);
                if changed {
                    c.row_dirty = true;
                }
                c.search_dirty |= search_changed;
                for e in &entries {
                    c.history.push(e);
                }
            }
            _ => {
                let held = Held { state: Some(state), keys: Vec::new() };
                let history = entries.iter().collect();
                let c =
                    Cached { held, loaded_version: None, row_dirty: true, search_dirty: true, history, queued: false };
                self.cache.entries.insert(id.clone(), Some(Box::new(c)));
            }
        }
        self.touch(&id);
    }
}
