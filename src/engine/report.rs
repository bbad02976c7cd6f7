//! What units of work did, counted.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::time::Span;

/// What one or more units of work did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Records applied (including duplicates and records that changed nothing).
    pub records: u64,
    pub duplicates: u64,
    /// Records that changed nothing (for a meeting: it had ended).
    pub ignored: u64,
    /// Instances created.
    pub created: u64,
    /// Dead letters by kind.
    pub dead_letters: BTreeMap<String, u64>,
    pub timers_fired: u64,
    /// Instances ended, by how (the machine's names: `NO_SHOW_TIMEOUT`, …).
    pub terminated: BTreeMap<&'static str, u64>,
    /// Outbox rows queued for the executor.
    pub effects_queued: u64,
    /// Outbox rows completed in the unit of work that queued them (dry run).
    pub effects_completed: u64,
    /// Largest timer lateness seen (fire instant − due), microseconds.
    pub max_lateness_us: i64,
    /// Units of work committed.
    pub commits: u64,
    /// Time spent waiting for the store (loads, timer pages, commits).
    #[serde(skip)]
    pub store_time: Duration,
    /// Each timer fire's lateness, on the wall clock only (the metrics'
    /// histogram; a replay's virtual clock keeps none).
    #[serde(skip)]
    pub lateness: Vec<(&'static str, Span)>,
}

impl Report {
    pub fn merge(&mut self, o: &Report) {
        self.records += o.records;
        self.duplicates += o.duplicates;
        self.ignored += o.ignored;
        self.created += o.created;
        for (k, v) in &o.dead_letters {
            *self.dead_letters.entry(k.clone()).or_default() += v;
        }
        self.timers_fired += o.timers_fired;
        for (k, v) in &o.terminated {
            *self.terminated.entry(*k).or_default() += v;
        }
        self.effects_queued += o.effects_queued;
        self.effects_completed += o.effects_completed;
        self.max_lateness_us = self.max_lateness_us.max(o.max_lateness_us);
        self.commits += o.commits;
        self.store_time += o.store_time;
        self.lateness.extend_from_slice(&o.lateness);
    }

    pub fn dead_letter_total(&self) -> u64 {
        self.dead_letters.values().sum()
    }
}

impl Report {
    /// Count a committed unit of work in the metrics: its records, dead
    /// letters, terminations and timer fires (see [`crate::telemetry::METRICS`]).
    pub(crate) fn record_metrics(&self) {
        let r = self;
        let applied = r.records.saturating_sub(r.duplicates + r.ignored);
        for (outcome, n) in [("applied", applied), ("duplicate", r.duplicates), ("ignored", r.ignored)] {
            if n > 0 {
                metrics::counter!("spindown_records_total", "outcome" => outcome).increment(n);
            }
        }
        for (reason, &n) in &r.dead_letters {
            metrics::counter!("spindown_records_total", "outcome" => "dead_letter").increment(n);
            metrics::counter!("spindown_dead_letters_total", "reason" => reason.clone()).increment(n);
        }
        for (reason, &n) in &r.terminated {
            metrics::counter!("spindown_terminations_total", "reason" => *reason).increment(n);
        }
        for &(kind, lateness) in &r.lateness {
            metrics::histogram!("spindown_timer_lateness_seconds", "kind" => kind)
                .record(lateness.as_micros() as f64 / 1e6);
        }
    }
}
