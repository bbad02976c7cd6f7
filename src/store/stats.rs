//! Rows written and time spent, by phase of a unit of work (always on: a few
//! clock reads per transaction).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

/// Where a unit of work spends its time in a SQL backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// `BEGIN` (SQLite: `BEGIN IMMEDIATE`, waiting for the write lock).
    Begin,
    /// Reads inside a transaction: instances, due timers.
    Read,
    WriteInstances,
    WriteHistory,
    WriteEffects,
    /// Dead letters, checkpoints, clocks.
    WriteOther,
    Commit,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Begin,
        Phase::Read,
        Phase::WriteInstances,
        Phase::WriteHistory,
        Phase::WriteEffects,
        Phase::WriteOther,
        Phase::Commit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Begin => "begin",
            Phase::Read => "read",
            Phase::WriteInstances => "write instances",
            Phase::WriteHistory => "write history",
            Phase::WriteEffects => "write effects",
            Phase::WriteOther => "write other",
            Phase::Commit => "commit",
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub transactions: AtomicU64,
    pub instances: AtomicU64,
    pub history_chunks: AtomicU64,
    pub history_entries: AtomicU64,
    pub effects: AtomicU64,
    pub dead: AtomicU64,
    phase_ns: [AtomicU64; 7],
}

impl Stats {
    pub fn add_time(&self, phase: Phase, since: Instant) {
        self.phase_ns[phase as usize].fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn add(&self, counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn counts(&self) -> WriteCounts {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WriteCounts {
            transactions: l(&self.transactions),
            instances: l(&self.instances),
            history_chunks: l(&self.history_chunks),
            history_entries: l(&self.history_entries),
            effects: l(&self.effects),
            dead: l(&self.dead),
            phase_secs: std::array::from_fn(|i| l(&self.phase_ns[i]) as f64 / 1e9),
        }
    }
}

/// Rows this process has written, and seconds per [`Phase`] (in [`Phase::ALL`] order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WriteCounts {
    pub transactions: u64,
    /// Instance rows inserted or updated.
    pub instances: u64,
    /// History rows (one chunk per instance per unit of work).
    pub history_chunks: u64,
    /// History entries inside those chunks.
    pub history_entries: u64,
    /// Outbox rows.
    pub effects: u64,
    pub dead: u64,
    pub phase_secs: [f64; 7],
}

impl WriteCounts {
    /// Rows written, all tables.
    pub fn rows(&self) -> u64 {
        self.instances + self.history_chunks + self.effects + self.dead
    }
}
