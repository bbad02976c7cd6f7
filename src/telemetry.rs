//! What the engine tells an operator: Prometheus metrics (through the
//! `metrics` facade — without an installed recorder every call here is a
//! no-op, as in `replay`) and the liveness the readiness check reads.
//!
//! Every metric is prefixed `spindown_` and labelled only by bounded sets
//! (outcome, reason, state, kind, status, shard) — never by a meeting or an
//! instance id. The list, with what each means, is [`METRICS`] (the README
//! prints the same table).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use crate::meeting::{EffectKind, TimerKind};
use crate::store::StoreError;
use crate::time::Timestamp;

/// `(name, type, help)` of every metric spindown exports.
pub const METRICS: &[(&str, &str, &str)] = &[
    (
        "spindown_records_total",
        "counter",
        "Stream records by outcome: applied, duplicate, ignored (meeting already terminated), dead_letter.",
    ),
    ("spindown_dead_letters_total", "counter", "Dead-lettered records by reason."),
    ("spindown_meetings", "gauge", "Meetings by state."),
    (
        "spindown_meetings_held",
        "gauge",
        "Meetings an operator's hold keeps alive now (spindown hold; counted in spindown_meetings by state too).",
    ),
    ("spindown_terminations_total", "counter", "Meetings terminated, by reason."),
    ("spindown_timers_pending", "gauge", "Pending timers by kind."),
    ("spindown_timer_lateness_seconds", "histogram", "Timer fire instant minus due time, by kind."),
    (
        "spindown_timer_oldest_overdue_seconds",
        "gauge",
        "How long the earliest pending timer is overdue (0 when none is).",
    ),
    (
        "spindown_effects_total",
        "counter",
        "Effect attempts by kind (terminate, write_back) and outcome (done, retry, failed).",
    ),
    (
        "spindown_effect_duration_seconds",
        "histogram",
        "Duration of one effect call (an EC2 or DynamoDB request), by kind.",
    ),
    ("spindown_outbox", "gauge", "Outbox rows by status (pending, done, failed)."),
    (
        "spindown_stream_lag_seconds",
        "gauge",
        "Per shard: now minus the newest record's event time in the last page read (0 when caught up).",
    ),
    ("spindown_stream_gaps_total", "counter", "Stream gaps recorded (records trimmed before they were read)."),
    ("spindown_timer_loop_last_tick_timestamp_seconds", "gauge", "When the timer loop last ran (Unix seconds)."),
    (
        "spindown_store_errors_total",
        "counter",
        "Database failures that pass (the worker waits and tries again), by kind: connection, shutdown, \
         serialization, deadlock, lock_timeout, statement_timeout, pool_timeout, too_many_connections, busy, \
         no_answer.",
    ),
    ("spindown_store_up", "gauge", "1 while the database answers the worker, 0 during an outage."),
    ("spindown_build_info", "gauge", "Always 1; the version in a label."),
];

/// Buckets of the lateness histogram, seconds.
pub const LATENESS_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0];
/// Buckets of the effect duration histogram, seconds.
pub const EFFECT_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Register every metric's help text (once, after a recorder is installed).
pub fn describe() {
    for &(name, kind, help) in METRICS {
        match kind {
            "counter" => metrics::describe_counter!(name, help),
            "gauge" => metrics::describe_gauge!(name, help),
            _ => metrics::describe_histogram!(name, metrics::Unit::Seconds, help),
        }
    }
    metrics::gauge!("spindown_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// One attempt at one effect part.
pub fn effect_attempt(kind: EffectKind, outcome: &'static str, secs: f64) {
    metrics::counter!("spindown_effects_total", "kind" => kind.as_str(), "outcome" => outcome).increment(1);
    metrics::histogram!("spindown_effect_duration_seconds", "kind" => kind.as_str()).record(secs);
}

/// How far behind the stream a shard's reader is.
pub fn stream_lag(shard: &str, secs: f64) {
    metrics::gauge!("spindown_stream_lag_seconds", "shard" => shard.to_string()).set(secs.max(0.0));
}

/// A gap was recorded.
pub fn stream_gap() {
    metrics::counter!("spindown_stream_gaps_total").increment(1);
}

/// Pending timers by kind, and how overdue the earliest is.
pub fn timers(by_kind: &[(TimerKind, i64)], next_due: Option<Timestamp>, now: Timestamp) {
    for kind in TimerKind::ALL {
        let n = by_kind.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n);
        metrics::gauge!("spindown_timers_pending", "kind" => kind.as_str()).set(n as f64);
    }
    let overdue = next_due.map_or(0.0, |d| (now.as_micros() - d.as_micros()).max(0) as f64 / 1e6);
    metrics::gauge!("spindown_timer_oldest_overdue_seconds").set(overdue);
}

/// When the parts of a running worker last showed they are alive (µs since
/// the epoch, 0 = never), and whether the database answers them, for `/readyz`.
#[derive(Debug, Default)]
pub struct Liveness {
    timer_tick: AtomicI64,
    reader_tick: AtomicI64,
    /// Since when the database has failed the worker, and its last words.
    outage: Mutex<Option<Outage>>,
}

/// A database outage as the worker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub since: Timestamp,
    /// The last failure, as an operator reads it.
    pub reason: String,
    /// Failures seen since it began.
    pub failures: u64,
}

impl Liveness {
    /// A part of the worker met a passing database failure (it waits and tries again).
    pub fn store_failed(&self, part: &str, e: &StoreError, now: Timestamp) {
        let kind = e.fault().map_or("other", |f| f.as_str());
        metrics::counter!("spindown_store_errors_total", "kind" => kind).increment(1);
        metrics::gauge!("spindown_store_up").set(0.0);
        let mut o = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        let reason = format!("{part}: {e}");
        match o.as_mut() {
            Some(o) => {
                o.reason = reason;
                o.failures += 1;
            }
            None => {
                tracing::warn!(part, kind, "database unavailable: {e}; waiting for it, nothing is lost");
                *o = Some(Outage { since: now, reason, failures: 1 });
            }
        }
    }

    /// The database answered again.
    pub fn store_ok(&self, now: Timestamp) {
        let mut o = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(gone) = o.take() {
            tracing::info!(
                failures = gone.failures,
                "database available again after {:.1}s",
                now.since(gone.since).as_micros() as f64 / 1e6
            );
        }
        metrics::gauge!("spindown_store_up").set(1.0);
    }

    /// The outage going on now, if any.
    pub fn outage(&self) -> Option<Outage> {
        self.outage.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The timer loop ran a pass.
    pub fn timer_tick(&self, now: Timestamp) {
        self.timer_tick.store(now.as_micros(), Ordering::Relaxed);
        metrics::gauge!("spindown_timer_loop_last_tick_timestamp_seconds").set(now.as_micros() as f64 / 1e6);
    }

    /// The stream reader finished a round.
    pub fn reader_tick(&self, now: Timestamp) {
        self.reader_tick.store(now.as_micros(), Ordering::Relaxed);
    }

    pub fn last_timer_tick(&self) -> Option<Timestamp> {
        Some(self.timer_tick.load(Ordering::Relaxed)).filter(|&t| t != 0).map(Timestamp::from_micros)
    }

    pub fn last_reader_tick(&self) -> Option<Timestamp> {
        Some(self.reader_tick.load(Ordering::Relaxed)).filter(|&t| t != 0).map(Timestamp::from_micros)
    }
}
