//! What a unit of work writes, when, and the commit itself.

use std::mem;
use std::sync::atomic::Ordering;

use super::Work;
use crate::engine::{EffectMode, EngineError, Report};
use crate::machine::Durable;
use crate::store::{Changes, Clocks, InstanceWrite, StoredInstance};
use crate::time::Timestamp;

/// What a unit of work writes, its instances not encoded yet: a resident
/// engine encodes them on the commit's task, beside the engine, not in its way.
pub(super) struct Pending<M: Durable> {
    pub(super) changes: Changes,
    rows: Vec<Row<M>>,
}

/// An instance to write, as held.
struct Row<M: Durable> {
    state: M::State,
    keys: Vec<String>,
    version: i64,
    loaded: Option<i64>,
    search_changed: bool,
}

impl<M: Durable> Pending<M> {
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.changes.is_empty()
    }

    /// Whether instances are written.
    pub(super) fn has_rows(&self) -> bool {
        !self.rows.is_empty()
    }

    /// The store's changes: each instance as its document and what is indexed
    /// of it, in key order (the writes walk the B-tree in order).
    pub(super) fn into_changes(self) -> Changes {
        let Pending { mut changes, rows } = self;
        changes.instances = rows
            .into_iter()
            .map(|r| {
                let s = &r.state;
                InstanceWrite {
                    stored: StoredInstance {
                        id: M::id(s).as_ref().to_string(),
                        version: r.version,
                        doc: M::encode(s),
                        keys: r.keys,
                    },
                    index: M::index(s),
                    loaded_version: r.loaded,
                    search_changed: r.search_changed,
                }
            })
            .collect();
        changes.instances.sort_unstable_by(|a, b| a.stored.id.cmp(&b.stored.id));
        changes
    }
}

impl<M: Durable> Work<'_, M> {
    /// Note that a held instance has something to write.
    pub(super) fn touch(&mut self, id: &M::Id) {
        self.backing.touch(&mut self.cache, id);
    }

    /// What to write: the instances `ids`, and everything else this unit of work decided.
    pub(super) fn changes(&mut self, ids: &[M::Id]) -> Pending<M> {
        let mut changes = Changes::default();
        let mut rows = Vec::new();
        for id in ids {
            let Some(Some(c)) = self.cache.entries.get_mut(id) else { continue };
            c.queued = false;
            if c.row_dirty {
                // Every write bumps the row's version: the next write is fenced on it.
                let version = c.loaded_version.map_or(1, |v| v + 1);
                rows.push(Row {
                    state: c.state().clone(),
                    keys: c.held.keys.clone(),
                    version,
                    loaded: c.loaded_version,
                    search_changed: c.search_dirty,
                });
                c.search_dirty = false;
                c.loaded_version = Some(version);
                c.row_dirty = false;
            }
            if !c.history.is_empty() {
                changes.history.push(mem::take(&mut c.history).append_to(id.as_ref()));
            }
        }
        changes.effects = mem::take(&mut self.effects);
        changes.dead_letters = mem::take(&mut self.dead);
        changes.checkpoint = self.checkpoint.take();
        changes.clocks = Clocks {
            last_instant: (self.last > Timestamp::MIN).then_some(self.last),
            event_clock: (self.event_clock > Timestamp::MIN).then_some(self.event_clock),
        };
        Pending { changes, rows }
    }

    /// Commit what this unit of work decided (a resident engine: start committing it).
    pub(in crate::engine) async fn commit(self) -> Result<Report, EngineError> {
        self.commit_with(false).await
    }

    /// Commit, writing every instance a resident engine still holds unwritten.
    pub(in crate::engine) async fn commit_all(self) -> Result<Report, EngineError> {
        self.commit_with(true).await
    }

    pub(super) async fn commit_with(mut self, all: bool) -> Result<Report, EngineError> {
        let ids = self.backing.pick_writes(&mut self.cache, all);
        let changes = self.changes(&ids);
        let queued = !changes.changes.effects.is_empty() && matches!(self.engine.options.effects, EffectMode::Queue);
        let engine = self.engine;
        let mut report = mem::take(&mut self.report);
        let cache = mem::take(&mut self.cache);
        self.backing.finish(engine, cache, changes, ids, all, &mut report).await?;
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
    pub(in crate::engine) async fn abandon(self) -> Result<(), EngineError> {
        self.backing.abandon(self.engine).await
    }
}
