//! What a unit of work writes, when, and the commit itself.

use std::mem;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Cache, Work};
use crate::engine::{EffectMode, EngineError, Report};
use crate::meeting::MeetingId;
use crate::store::{Changes, Clocks, HistoryAppend, MeetingWrite};
use crate::time::Timestamp;

/// A resident engine keeps this many ended meetings in memory, unwritten,
/// before it writes the oldest (records that come after the end then find
/// them in memory, and a meeting is written once, with its whole story).
const ENDED_KEPT: usize = 10_000;

impl Work<'_> {
    /// Note that a cached meeting has something to write.
    pub(super) fn touch(&mut self, id: &MeetingId) {
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
    pub(super) fn pick_writes(&mut self, all: bool) -> Vec<MeetingId> {
        if self.guard.is_none() {
            return mem::take(&mut self.cache.touched);
        }
        if all {
            self.cache.ended.clear();
            let mut ids: Vec<MeetingId> = self
                .cache
                .entries
                .iter()
                .filter(|(_, c)| c.as_ref().is_some_and(|c| c.pending()))
                .map(|(id, _)| id.clone())
                .collect();
            ids.sort_unstable();
            return ids;
        }
        let n = self.cache.ended.len().saturating_sub(ENDED_KEPT);
        self.cache.ended.drain(..n).collect()
    }

    /// The store's changes: the meetings `ids`, and everything else this unit of work decided.
    pub(super) fn changes(&mut self, ids: &[MeetingId]) -> Changes {
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
    pub(in crate::engine) async fn commit(self) -> Result<Report, EngineError> {
        self.commit_with(false).await
    }

    /// Commit, writing every meeting a resident engine still holds unwritten.
    pub(in crate::engine) async fn commit_all(self) -> Result<Report, EngineError> {
        self.commit_with(true).await
    }

    pub(super) async fn commit_with(mut self, all: bool) -> Result<Report, EngineError> {
        let ids = self.pick_writes(all);
        let changes = self.changes(&ids);
        let queued = !changes.effects.is_empty() && matches!(self.engine.options.effects, EffectMode::Queue);
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
            tracing::debug!(
                held = cache.entries.len(),
                timers = cache.overlay.len(),
                ended = cache.ended.len(),
                history_bytes = cache.entries.values().flatten().map(|c| c.history.as_bytes().len()).sum::<usize>(),
                "resident cache"
            );
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
            // (The black-hole test holds a worker here: its transaction open, its rows locked.)
            if !changes.meetings.is_empty() {
                crate::failpoint::hold("in-transaction").await;
            }
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
    pub(in crate::engine) async fn abandon(mut self) -> Result<(), EngineError> {
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
