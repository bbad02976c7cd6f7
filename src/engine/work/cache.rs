//! The instances and timers a unit of work holds, and the store's due timers
//! read page by page and merged with the held instances' own, in fire order.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use rustc_hash::FxHashMap;

use super::Work;
use crate::engine::EngineError;
use crate::machine::{Chunk, Durable, Machine};
use crate::store::{DueKey, StoreError, StoredInstance};
use crate::time::Timestamp;

/// Timers read from the store per page.
const TIMER_PAGE: usize = 1024;

/// A pending timer's place in fire order: due, then the machine's timer
/// order, then the instance id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key<T, I> {
    pub(super) due: Timestamp,
    pub(super) timer: T,
    pub(super) id: I,
}

/// A machine's timer key.
pub(super) type TimerKey<M> = Key<<M as Machine>::Timer, <M as Durable>::Id>;

/// Where the store's due timers have been read up to.
pub(super) enum Horizon<M: Durable> {
    Nothing,
    /// Every stored timer up to and including this key is known.
    Key(TimerKey<M>),
    /// Every stored timer due at or before this instant is known.
    Through(Timestamp),
}

/// An instance as held: its state (out only while a step has it) and the
/// dedupe keys it applied.
pub(super) struct Held<M: Durable> {
    pub(super) state: Option<M::State>,
    pub(super) keys: Vec<String>,
}

/// An instance held in memory.
pub(super) struct Cached<M: Durable> {
    pub(super) held: Held<M>,
    /// The version the store holds (`None`: not stored yet).
    pub(super) loaded_version: Option<i64>,
    /// The row must be written.
    pub(super) row_dirty: bool,
    /// Search attributes were added since the store indexed them.
    pub(super) search_dirty: bool,
    /// Entries not written yet.
    pub(super) history: Chunk,
    /// In `Cache::ended`, waiting to be written (resident).
    pub(super) queued: bool,
}

impl<M: Durable> Cached<M> {
    pub(super) fn pending(&self) -> bool {
        self.row_dirty || !self.history.is_empty()
    }

    /// Its state (held between steps).
    pub(super) fn state(&self) -> &M::State {
        self.held.state.as_ref().expect("a held instance has its state between steps")
    }
}

/// The instances and timers a unit of work holds; a resident engine keeps it
/// between units of work.
pub(crate) struct Cache<M: Durable> {
    /// `None`: known not to be stored. (Boxed: a resident engine holds tens
    /// of thousands, and the map's spare slots then stay small.)
    pub(super) entries: FxHashMap<M::Id, Option<Box<Cached<M>>>>,
    /// Pending timers of the cached instances (authoritative for them).
    pub(super) overlay: BTreeSet<TimerKey<M>>,
    /// Stored timers of instances not cached, all those up to `horizon`.
    pub(super) db_queue: BTreeSet<TimerKey<M>>,
    pub(super) horizon: Horizon<M>,
    /// Instances written by the commit still running, to drop once it lands
    /// (resident; ended instances only).
    pub(super) evict: Vec<M::Id>,
    /// Instances with something to write, in the order they first had it
    /// (their chunks are written in that order: `seq` follows the input).
    pub(super) touched: Vec<M::Id>,
    /// Ended instances with something to write, oldest first (resident).
    pub(super) ended: VecDeque<M::Id>,
    /// Live instances whose unwritten history grew long, to write with the next commit (resident).
    pub(super) long: Vec<M::Id>,
}

impl<M: Durable> Default for Cache<M> {
    fn default() -> Self {
        Cache {
            entries: FxHashMap::default(),
            overlay: BTreeSet::new(),
            db_queue: BTreeSet::new(),
            horizon: Horizon::Nothing,
            evict: Vec::new(),
            touched: Vec::new(),
            ended: VecDeque::new(),
            long: Vec::new(),
        }
    }
}

impl<M: Durable> Cache<M> {
    /// A held instance's state.
    pub(super) fn held(&self, id: &M::Id) -> Option<&M::State> {
        self.entries.get(id).and_then(Option::as_ref).map(|c| c.state())
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// A stored instance as held, with its row's version.
fn held_of<M: Durable>(row: StoredInstance) -> Result<(Held<M>, i64), StoreError> {
    let state = M::decode(&row.id, &row.doc).map_err(|e| corrupt(&format!("{} {}", M::NOUN, row.id), e))?;
    Ok((Held { state: Some(state), keys: row.keys }, row.version))
}

/// A stored timer as the engine keys it.
fn key_of<M: Durable>(key: DueKey) -> Result<TimerKey<M>, StoreError> {
    let timer = M::timer(key.rank).ok_or_else(|| corrupt("timer", format!("no timer has rank {}", key.rank)))?;
    let id = M::parse_id(&key.id).ok_or_else(|| corrupt("timer", format!("{:?} is not a {} id", key.id, M::NOUN)))?;
    Ok(Key { due: key.due, timer, id })
}

/// A timer as the store keys it.
fn due_key<M: Durable>(key: &TimerKey<M>) -> DueKey {
    DueKey { due: key.due, rank: M::rank(key.timer), id: key.id.as_ref().to_string() }
}

impl<M: Durable> Work<'_, M> {
    pub(super) async fn store_load(&mut self, ids: &[M::Id]) -> Result<Vec<(Held<M>, i64)>, StoreError> {
        let t = Instant::now();
        let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
        let r = self.backing.load(self.engine, &ids).await;
        self.report.store_time += t.elapsed();
        r?.into_iter().map(held_of::<M>).collect()
    }

    pub(super) async fn store_due(
        &mut self,
        after: Option<DueKey>,
        upto: Timestamp,
        limit: usize,
    ) -> Result<(Vec<TimerKey<M>>, Vec<(Held<M>, i64)>), StoreError> {
        let t = Instant::now();
        let r = self.backing.due(self.engine, after.as_ref(), upto, limit).await;
        self.report.store_time += t.elapsed();
        let (keys, rows) = r?;
        let keys = keys.into_iter().map(key_of::<M>).collect::<Result<Vec<_>, _>>()?;
        let rows = rows.into_iter().map(held_of::<M>).collect::<Result<Vec<_>, _>>()?;
        Ok((keys, rows))
    }

    pub(super) fn cache_insert(&mut self, held: Held<M>, version: i64) {
        let state = held.state.as_ref().expect("decoded");
        let id = M::id(state).clone();
        self.before.clear();
        M::timers(state, &mut self.before);
        for &(timer, due) in &self.before {
            let key = Key { due, timer, id: id.clone() };
            self.cache.db_queue.remove(&key);
            self.cache.overlay.insert(key);
        }
        let entry = Cached {
            held,
            loaded_version: Some(version),
            row_dirty: false,
            search_dirty: false,
            history: Chunk::default(),
            queued: false,
        };
        self.cache.entries.insert(id, Some(Box::new(entry)));
    }

    /// Load every instance of `ids` not held yet, in one call.
    pub(super) async fn preload(&mut self, mut ids: Vec<M::Id>) -> Result<(), EngineError> {
        ids.retain(|id| !self.cache.entries.contains_key(id));
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort_unstable();
        ids.dedup();
        for (held, version) in self.store_load(&ids).await? {
            self.cache_insert(held, version);
        }
        for id in ids {
            self.cache.entries.entry(id).or_insert(None);
        }
        Ok(())
    }

    pub(super) fn covers(&self, target: Timestamp) -> bool {
        match &self.cache.horizon {
            Horizon::Nothing => false,
            Horizon::Key(k) => k.due > target,
            Horizon::Through(t) => *t >= target,
        }
    }

    /// Read the next page of stored timers due at or before `target`.
    pub(super) async fn extend(&mut self, target: Timestamp) -> Result<(), EngineError> {
        // Read ahead to where this unit of work is known to go (a batch's last
        // event time), so a batch reads its timers in pages, not per record.
        let upto = target.max(self.lookahead);
        let after = match &self.cache.horizon {
            Horizon::Nothing => None,
            Horizon::Key(k) => Some(due_key::<M>(k)),
            // After every timer due at `t`.
            Horizon::Through(t) => Some(DueKey { due: *t, rank: u8::MAX, id: "\u{10FFFF}".into() }),
        };
        let (rows, instances) = self.store_due(after, upto, TIMER_PAGE).await?;
        let full = rows.len() == TIMER_PAGE;
        self.cache.horizon = match rows.last() {
            Some(last) if full => Horizon::Key(last.clone()),
            _ => Horizon::Through(upto),
        };
        let mut read = Vec::new();
        for key in rows {
            if !self.cache.entries.contains_key(&key.id) {
                read.push(key.id.clone());
                self.cache.db_queue.insert(key);
            }
        }
        // Their instances, read with them (they move from the queue to the
        // overlay); an instance held already is the held one.
        for (held, version) in instances {
            let id = held.state.as_ref().map(M::id);
            if id.is_some_and(|id| !self.cache.entries.contains_key(id)) {
                self.cache_insert(held, version);
            }
        }
        for id in read {
            self.cache.entries.entry(id).or_insert(None);
        }
        Ok(())
    }

    /// The next pending timer due at or before `target`, in fire order.
    pub(super) async fn next_due(&mut self, target: Timestamp) -> Result<Option<TimerKey<M>>, EngineError> {
        loop {
            // The smallest timer known in memory (queued from the store, or of
            // a held instance). Every stored timer up to the horizon is known,
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
    pub(in crate::engine) async fn fire_through(
        &mut self,
        target: Timestamp,
        limit: usize,
    ) -> Result<bool, EngineError> {
        let mut fired = 0;
        while let Some(key) = self.next_due(target).await? {
            if fired == limit {
                return Ok(true);
            }
            if self.fire_key(key) {
                fired += 1;
            }
        }
        Ok(false)
    }

    /// Fire one instance's own timers due at or before `target`, in order
    /// (it is held: its timers are in the overlay).
    pub(in crate::engine) async fn fire_instance_through(
        &mut self,
        id: &M::Id,
        target: Timestamp,
    ) -> Result<(), EngineError> {
        while let Some((timer, due)) = self.next_timer(id).filter(|(_, d)| *d <= target) {
            self.fire_key(Key { due, timer, id: id.clone() });
        }
        Ok(())
    }

    /// A held instance's pending timers (none when it is not held), in the
    /// unit of work's scratch list (the next step's `take` reuses it).
    fn pending_timers(&mut self, id: &M::Id) -> &[(M::Timer, Timestamp)] {
        self.before.clear();
        if let Some(state) = self.cache.held(id) {
            M::timers(state, &mut self.before);
        }
        &self.before
    }

    /// A held instance's pending timer that fires first: the earliest, ties
    /// in the machine's timer order.
    fn next_timer(&mut self, id: &M::Id) -> Option<(M::Timer, Timestamp)> {
        self.pending_timers(id).iter().copied().min_by_key(|&(timer, due)| (due, timer))
    }

    /// Fire the timer `key` names, if its instance still has it; either way
    /// the key leaves the queues, so it is looked at once. Returns whether it fired.
    fn fire_key(&mut self, key: TimerKey<M>) -> bool {
        self.cache.db_queue.remove(&key);
        self.cache.overlay.remove(&key);
        // A key read from the store whose instance no longer has that timer
        // (another worker fired or moved it between the read and the load),
        // or whose instance is gone: nothing to fire.
        let current = self.pending_timers(&key.id).contains(&(key.timer, key.due));
        if !current {
            // Its row is written again, so the store's index of due timers
            // agrees with the instance from now on: the key is dropped once.
            if let Some(Some(c)) = self.cache.entries.get_mut(&key.id) {
                tracing::warn!(id = %key.id, timer = M::timer_name(key.timer), due = %key.due, "a due timer the instance no longer has: dropped");
                c.row_dirty = true;
                self.touch(&key.id);
            }
            return false;
        }
        let now = self.instant(key.due);
        let input = self.engine.machine.timer_input(key.timer, key.due);
        let lateness = now.since(key.due);
        self.report.timers_fired += 1;
        self.report.max_lateness_us = self.report.max_lateness_us.max(lateness.as_micros());
        if self.engine.pace.measures_lateness() {
            self.report.lateness.push((M::timer_name(key.timer), lateness));
        }
        let _span = M::span(&key.id, &input, Some(lateness)).entered();
        if self.run_step(&key.id, &input, now).is_err() {
            // (A machine takes every timer it armed; one that refuses it is a
            // bug in the machine, told here rather than lost.)
            tracing::error!(id = %key.id, timer = M::timer_name(key.timer), "the machine refused its own timer");
        }
        true
    }
}
