//! Where a unit of work reads what it does not hold, and how what it decided
//! reaches the store: one small interface, two implementations.
//!
//! * [`Transaction`] — a worker's: reads inside one store transaction (where
//!   the store has several writers, the instances it loads are locked), every
//!   instance it touched written at its end, together, or nothing.
//! * [`Resident`] — a resident engine's (`replay`: the only writer of its
//!   database): it keeps what it works on in its own memory between units of
//!   work (units take turns on it), reads committed state for the rest, and
//!   writes a instance once it has ended and is among the oldest ended ones
//!   (or at the final flush), the commit running while the next unit works.

use std::mem;
use std::time::Instant;

use async_trait::async_trait;
use tokio::sync::MutexGuard;

use super::cache::Cache;
use super::commit::Pending;
use crate::engine::{Engine, EngineError, Report};
use crate::machine::Durable;
use crate::store::{DueKey, StoreError, StoredInstance, UnitOfWork};
use crate::time::Timestamp;

/// A resident engine keeps this many ended instances in memory, unwritten,
/// before it writes the oldest (records that come after the end then find
/// them in memory, and a instance is written once, with its whole story).
const ENDED_KEPT: usize = 10_000;
/// A live instance whose unwritten history grows past this many bytes is
/// written with the next commit, not kept to the final flush: a instance
/// re-checked for years of virtual time (a `meet_time` typed centuries
/// ahead) would otherwise build one chunk larger than a row can hold.
const HISTORY_HELD_MAX: usize = 1 << 20;

/// What a unit of work's store side does (see the module docs).
#[async_trait]
pub(super) trait Backing<M: Durable>: Send {
    /// The cache the unit of work starts with (it is handed back at the end).
    fn take_cache(&mut self) -> Cache<M>;

    /// Stored instances of `ids` (those stored).
    async fn load(&mut self, engine: &Engine<M>, ids: &[&str]) -> Result<Vec<StoredInstance>, StoreError>;

    /// Stored due timers in fire order after `after`, due by `upto`, at
    /// most `limit`, with their instances (see [`UnitOfWork::due_loaded`]).
    async fn due(
        &mut self,
        engine: &Engine<M>,
        after: Option<&DueKey>,
        upto: Timestamp,
        limit: usize,
    ) -> Result<(Vec<DueKey>, Vec<StoredInstance>), StoreError>;

    /// Note that the held instance `id` has something to write.
    fn touch(&self, cache: &mut Cache<M>, id: &M::Id);

    /// The instances to write now (`all`: every one with something to write).
    fn pick_writes(&self, cache: &mut Cache<M>, all: bool) -> Vec<M::Id>;

    /// Write `changes` (holding the instances `ids`) and hand `cache` back.
    async fn finish(
        self: Box<Self>,
        engine: &Engine<M>,
        cache: Cache<M>,
        changes: Pending<M>,
        ids: Vec<M::Id>,
        all: bool,
        report: &mut Report,
    ) -> Result<(), EngineError>;

    /// End without writing.
    async fn abandon(self: Box<Self>, engine: &Engine<M>) -> Result<(), EngineError>;
}

/// A unit of work in one store transaction.
pub(super) struct Transaction {
    pub(super) uow: Box<dyn UnitOfWork>,
}

#[async_trait]
impl<M: Durable> Backing<M> for Transaction {
    fn take_cache(&mut self) -> Cache<M> {
        Cache::default()
    }

    async fn load(&mut self, _engine: &Engine<M>, ids: &[&str]) -> Result<Vec<StoredInstance>, StoreError> {
        self.uow.load(ids).await
    }

    async fn due(
        &mut self,
        _engine: &Engine<M>,
        after: Option<&DueKey>,
        upto: Timestamp,
        limit: usize,
    ) -> Result<(Vec<DueKey>, Vec<StoredInstance>), StoreError> {
        self.uow.due_loaded(after, upto, limit).await
    }

    fn touch(&self, cache: &mut Cache<M>, id: &M::Id) {
        let Some(Some(c)) = cache.entries.get_mut(id) else { return };
        if !c.queued {
            c.queued = true;
            cache.touched.push(id.clone());
        }
    }

    fn pick_writes(&self, cache: &mut Cache<M>, _all: bool) -> Vec<M::Id> {
        mem::take(&mut cache.touched)
    }

    async fn finish(
        self: Box<Self>,
        _engine: &Engine<M>,
        _cache: Cache<M>,
        changes: Pending<M>,
        _ids: Vec<M::Id>,
        _all: bool,
        report: &mut Report,
    ) -> Result<(), EngineError> {
        // (The black-hole test holds a worker here: its transaction open, its rows locked.)
        if changes.has_rows() {
            crate::failpoint::hold("in-transaction").await;
        }
        let t = Instant::now();
        if changes.is_empty() {
            self.uow.rollback().await?;
        } else {
            self.uow.commit(changes.into_changes()).await?;
            report.commits += 1;
        }
        report.store_time += t.elapsed();
        crate::failpoint::hit("after-commit");
        Ok(())
    }

    async fn abandon(self: Box<Self>, _engine: &Engine<M>) -> Result<(), EngineError> {
        self.uow.rollback().await?;
        Ok(())
    }
}

/// A unit of work on a resident engine's memory, held for its duration.
pub(super) struct Resident<'e, M: Durable> {
    pub(super) guard: MutexGuard<'e, Cache<M>>,
}

#[async_trait]
impl<M: Durable> Backing<M> for Resident<'_, M> {
    fn take_cache(&mut self) -> Cache<M> {
        mem::take(&mut *self.guard)
    }

    async fn load(&mut self, engine: &Engine<M>, ids: &[&str]) -> Result<Vec<StoredInstance>, StoreError> {
        engine.store.load(ids).await
    }

    async fn due(
        &mut self,
        engine: &Engine<M>,
        after: Option<&DueKey>,
        upto: Timestamp,
        limit: usize,
    ) -> Result<(Vec<DueKey>, Vec<StoredInstance>), StoreError> {
        // (Rare: a resident engine holds what it wrote; this reads what a
        // database held before it started.)
        let keys = engine.store.due(after, upto, limit).await?;
        let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        let instances = engine.store.load(&ids).await?;
        Ok((keys, instances))
    }

    fn touch(&self, cache: &mut Cache<M>, id: &M::Id) {
        let Some(Some(c)) = cache.entries.get_mut(id) else { return };
        // Written once it has ended and is among the oldest ended ones, or at the final flush.
        if M::ended(c.state()).is_some() && !c.queued {
            c.queued = true;
            cache.ended.push_back(id.clone());
        } else if c.history.as_bytes().len() >= HISTORY_HELD_MAX && !c.queued {
            // (Or, live, with the next commit once its story is long.)
            c.queued = true;
            cache.long.push(id.clone());
        }
    }

    fn pick_writes(&self, cache: &mut Cache<M>, all: bool) -> Vec<M::Id> {
        if all {
            cache.ended.clear();
            cache.long.clear();
            let mut ids: Vec<M::Id> = cache
                .entries
                .iter()
                .filter(|(_, c)| c.as_ref().is_some_and(|c| c.pending()))
                .map(|(id, _)| id.clone())
                .collect();
            ids.sort_unstable();
            return ids;
        }
        let n = cache.ended.len().saturating_sub(ENDED_KEPT);
        let mut ids: Vec<M::Id> = cache.ended.drain(..n).collect();
        ids.append(&mut cache.long);
        ids
    }

    async fn finish(
        mut self: Box<Self>,
        engine: &Engine<M>,
        mut cache: Cache<M>,
        mut changes: Pending<M>,
        ids: Vec<M::Id>,
        all: bool,
        report: &mut Report,
    ) -> Result<(), EngineError> {
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
                if !c.pending() && M::ended(c.state()).is_some() {
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
        // Search attributes are indexed at the flush, in one sorted pass.
        changes.changes.defer_search = true;
        // The final flush also writes the clocks (a later replay resumes there).
        if !changes.is_empty() || all {
            report.commits += 1;
            let store = engine.store.clone();
            // The instances are encoded on the commit's task, beside the engine.
            let task = tokio::spawn(async move {
                let changes = changes.into_changes();
                store.begin().await?.commit(changes).await
            });
            *engine.inflight.lock().await = Some(task);
        }
        *self.guard = cache;
        Ok(())
    }

    async fn abandon(mut self: Box<Self>, engine: &Engine<M>) -> Result<(), EngineError> {
        // Nothing of this unit of work is kept: once the last commit has
        // landed, the store is the truth and the cache starts empty.
        if let Some(task) = engine.inflight.lock().await.take() {
            task.await.map_err(|e| EngineError::Commit(e.to_string()))??;
        }
        *self.guard = Cache::default();
        Ok(())
    }
}
