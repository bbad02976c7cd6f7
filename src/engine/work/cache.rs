//! The meetings and timers a unit of work holds, and the store's due timers
//! read page by page and merged with the held meetings' own, in fire order.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use rustc_hash::FxHashMap;

use super::Work;
use crate::engine::EngineError;
use crate::machine::Machine;
use crate::meeting::history::{Cause, Chunk};
use crate::meeting::stored::{due_key, timer_of, versioned};
use crate::meeting::{Meeting, MeetingId, MeetingWorkflow, StoredMeeting, TimerKey, TimerKind};
use crate::store::StoreError;
use crate::time::Timestamp;

/// Timers read from the store per page.
const TIMER_PAGE: usize = 1024;

/// Where the store's due timers have been read up to.
#[derive(Debug, Clone, Default)]
pub(super) enum Horizon {
    #[default]
    Nothing,
    /// Every stored timer up to and including this key is known.
    Key(TimerKey),
    /// Every stored timer due at or before this instant is known.
    Through(Timestamp),
}

/// A meeting held in memory.
pub(super) struct Cached {
    pub(super) stored: StoredMeeting,
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

impl Cached {
    pub(super) fn pending(&self) -> bool {
        self.row_dirty || !self.history.is_empty()
    }
}

/// The meetings and timers a unit of work holds; a resident engine keeps it
/// between units of work.
#[derive(Default)]
pub(crate) struct Cache {
    /// `None`: known not to be stored. (Boxed: a resident engine holds tens
    /// of thousands, and the map's spare slots then stay small.)
    pub(super) entries: FxHashMap<MeetingId, Option<Box<Cached>>>,
    /// Pending timers of the cached meetings (authoritative for them).
    pub(super) overlay: BTreeSet<TimerKey>,
    /// Stored timers of meetings not cached, all those up to `horizon`.
    pub(super) db_queue: BTreeSet<TimerKey>,
    pub(super) horizon: Horizon,
    /// Meetings written by the commit still running, to drop once it lands
    /// (resident; ended meetings only).
    pub(super) evict: Vec<MeetingId>,
    /// Meetings with something to write, in the order they first had it
    /// (their chunks are written in that order: `seq` follows the input).
    pub(super) touched: Vec<MeetingId>,
    /// Ended meetings with something to write, oldest first (resident).
    pub(super) ended: VecDeque<MeetingId>,
    /// Live meetings whose unwritten history grew long, to write with the next commit (resident).
    pub(super) long: Vec<MeetingId>,
}

impl Cache {
    pub(super) fn meeting(&self, id: &MeetingId) -> Option<&Meeting> {
        self.entries.get(id).and_then(Option::as_ref).map(|c| &c.stored.meeting)
    }
}

impl Work<'_> {
    pub(super) async fn store_load(&mut self, ids: &[MeetingId]) -> Result<Vec<(StoredMeeting, i64)>, StoreError> {
        let t = Instant::now();
        let ids: Vec<&str> = ids.iter().map(MeetingId::as_str).collect();
        let r = self.backing.load(self.engine, &ids).await;
        self.report.store_time += t.elapsed();
        r?.into_iter().map(versioned).collect()
    }

    pub(super) async fn store_due(
        &mut self,
        after: Option<&TimerKey>,
        upto: Timestamp,
        limit: usize,
    ) -> Result<(Vec<TimerKey>, Vec<(StoredMeeting, i64)>), StoreError> {
        let t = Instant::now();
        let after = after.map(due_key);
        let r = self.backing.due(self.engine, after.as_ref(), upto, limit).await;
        self.report.store_time += t.elapsed();
        let (keys, rows) = r?;
        let keys = keys.into_iter().map(timer_of).collect::<Result<Vec<_>, _>>()?;
        let rows = rows.into_iter().map(versioned).collect::<Result<Vec<_>, _>>()?;
        Ok((keys, rows))
    }

    pub(super) fn cache_insert(&mut self, stored: StoredMeeting, version: i64) {
        let m = &stored.meeting;
        for (kind, due) in m.timers.pending() {
            let key = TimerKey::new(m.id.clone(), kind, due);
            self.cache.db_queue.remove(&key);
            self.cache.overlay.insert(key);
        }
        let id = m.id.clone();
        let entry = Cached {
            stored,
            loaded_version: Some(version),
            row_dirty: false,
            search_dirty: false,
            history: Chunk::default(),
            queued: false,
        };
        self.cache.entries.insert(id, Some(Box::new(entry)));
    }

    /// Load every meeting of `ids` not held yet, in one call.
    pub(super) async fn preload(&mut self, mut ids: Vec<MeetingId>) -> Result<(), EngineError> {
        ids.retain(|id| !self.cache.entries.contains_key(id));
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort_unstable();
        ids.dedup();
        for (stored, version) in self.store_load(&ids).await? {
            self.cache_insert(stored, version);
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
            Horizon::Key(k) => Some(k.clone()),
            Horizon::Through(t) => Some(TimerKey::new(
                MeetingId::new("\u{10FFFF}").expect("not empty"),
                crate::meeting::TimerKind::Fixed,
                *t,
            )),
        };
        let (rows, meetings) = self.store_due(after.as_ref(), upto, TIMER_PAGE).await?;
        let full = rows.len() == TIMER_PAGE;
        self.cache.horizon = match rows.last() {
            Some(last) if full => Horizon::Key(last.clone()),
            _ => Horizon::Through(upto),
        };
        let mut read = Vec::new();
        for key in rows {
            if !self.cache.entries.contains_key(&key.meeting_id) {
                read.push(key.meeting_id.clone());
                self.cache.db_queue.insert(key);
            }
        }
        // Their meetings, read with them (they move from the queue to the
        // overlay); a meeting held already is the held one.
        for (stored, version) in meetings {
            if !self.cache.entries.contains_key(&stored.meeting.id) {
                self.cache_insert(stored, version);
            }
        }
        for id in read {
            self.cache.entries.entry(id).or_insert(None);
        }
        Ok(())
    }

    /// The next pending timer due at or before `target`, in fire order.
    pub(super) async fn next_due(&mut self, target: Timestamp) -> Result<Option<TimerKey>, EngineError> {
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

    /// Fire one meeting's own timers due at or before `target`, in order
    /// (it is held: its timers are in the overlay).
    pub(in crate::engine) async fn fire_meeting_through(
        &mut self,
        id: &MeetingId,
        target: Timestamp,
    ) -> Result<(), EngineError> {
        while let Some((kind, due)) = self.next_timer(id).filter(|(_, d)| *d <= target) {
            self.fire_key(TimerKey::new(id.clone(), kind, due));
        }
        Ok(())
    }

    /// A held meeting's pending timers (none when it is not held), in the
    /// unit of work's scratch list (the next step's `take` reuses it).
    fn pending_timers(&mut self, id: &MeetingId) -> &[(TimerKind, Timestamp)] {
        self.before.clear();
        if let Some(m) = self.cache.meeting(id) {
            MeetingWorkflow::timers(m, &mut self.before);
        }
        &self.before
    }

    /// A held meeting's pending timer that fires first: the earliest, ties in
    /// the machine's timer order.
    fn next_timer(&mut self, id: &MeetingId) -> Option<(TimerKind, Timestamp)> {
        self.pending_timers(id).iter().copied().min_by_key(|&(kind, due)| (due, kind))
    }

    /// Fire the timer `key` names, if its meeting still has it; either way
    /// the key leaves the queues, so it is looked at once. Returns whether it fired.
    fn fire_key(&mut self, key: TimerKey) -> bool {
        self.cache.db_queue.remove(&key);
        self.cache.overlay.remove(&key);
        // A key read from the store whose meeting no longer has that timer
        // (another worker fired or moved it between the read and the load),
        // or whose meeting is gone: nothing to fire.
        let current = self.pending_timers(&key.meeting_id).contains(&(key.kind, key.due));
        if !current {
            // Its row is written again, so the store's index of due timers
            // agrees with the meeting from now on: the key is dropped once.
            if let Some(Some(c)) = self.cache.entries.get_mut(&key.meeting_id) {
                tracing::warn!(meeting_id = %key.meeting_id, kind = %key.kind, due = %key.due, "a due timer the meeting no longer has: dropped");
                c.row_dirty = true;
                self.touch(&key.meeting_id);
            }
            return false;
        }
        let now = self.instant(key.due);
        let input = self.engine.machine.timer_input(key.kind, key.due);
        let lateness = now.since(key.due);
        self.report.timers_fired += 1;
        self.report.max_lateness_us = self.report.max_lateness_us.max(lateness.as_micros());
        if self.engine.pace.measures_lateness() {
            self.report.lateness.push((key.kind, lateness));
        }
        let _span = tracing::info_span!(
            "timer",
            meeting_id = %key.meeting_id,
            kind = %key.kind,
            lateness_ms = lateness.as_micros() / 1000,
        )
        .entered();
        let cause = Cause::Timer { kind: key.kind, due: key.due };
        self.run_step(&key.meeting_id, &input, now, cause, Some(lateness))
            .expect("a timer of a known meeting is always applicable");
        true
    }
}
