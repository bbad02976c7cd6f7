//! The shards as this reader knows them: lineage (parents are read to their
//! end before their children), positions, and how far the stream is read
//! through (the gate's input) — pure, no I/O.

use std::collections::BTreeMap;

use super::Position;
use crate::store::Checkpoint;
use crate::time::Timestamp;

#[derive(Debug, Default)]
pub(super) struct Shard {
    pub(super) parent: Option<String>,
    pub(super) iterator: Option<String>,
    pub(super) closed: bool,
    pub(super) sequence: Option<String>,
    /// Where to (re)start when no checkpoint exists.
    pub(super) start: Option<Position>,
    pub(super) caught_up: bool,
    pub(super) last_heartbeat: Option<std::time::Instant>,
    pub(super) listed: bool,
    /// Every record of this shard with an earlier event time is applied (by
    /// this worker; `None`: not read since it was taken).
    pub(super) progress: Option<Timestamp>,
    /// Read by another worker through this event time, by its last checkpoint.
    pub(super) elsewhere: Option<Timestamp>,
}

/// Every shard known, by id.
#[derive(Debug, Default)]
pub(super) struct Shards(pub(super) BTreeMap<String, Shard>);

impl std::ops::Deref for Shards {
    type Target = BTreeMap<String, Shard>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Shards {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Shards {
    /// Shards that may be read now: open, and whose parent is fully read
    /// (or gone from the stream), parents first.
    pub(super) fn readable(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, s)| !s.closed)
            .filter(|(_, s)| match &s.parent {
                None => true,
                Some(p) => self.0.get(p).is_none_or(|parent| parent.closed || !parent.listed),
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Every open shard read — by this worker (`holds`), or by another as its
    /// checkpoint says — through the least of their positions, no later than
    /// `round_start`; `None` while one of them is not known to be read at all.
    pub(super) fn read_through(&self, round_start: Timestamp, holds: impl Fn(&str) -> bool) -> Option<Timestamp> {
        self.0
            .iter()
            .filter(|(_, s)| !s.closed && s.listed)
            .map(|(id, s)| if holds(id) { s.progress } else { s.elsewhere })
            .try_fold(round_start, |acc, p| p.map(|p| acc.min(p)))
    }

    /// Forget every position not known to be committed: each shard as its
    /// stored checkpoint says (a shard without one starts over).
    pub(super) fn reset_to(&mut self, stored: Vec<Checkpoint>) {
        let mut by_shard: BTreeMap<String, Checkpoint> = stored.into_iter().map(|c| (c.shard_id.clone(), c)).collect();
        for (id, s) in self.0.iter_mut() {
            s.iterator = None;
            s.progress = None;
            match by_shard.remove(id) {
                Some(c) => {
                    s.closed = c.closed;
                    s.sequence = c.sequence_number;
                    s.caught_up = c.caught_up;
                }
                None => {
                    s.closed = false;
                    s.sequence = None;
                    s.caught_up = false;
                }
            }
        }
    }
}
