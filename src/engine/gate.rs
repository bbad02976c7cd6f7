//! The stream gate: timers wait until the stream has been read past their due time.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::store::Checkpoint;
use crate::time::{Span, Timestamp};

/// How far a stream has been read, for the timer loop (live mode).
///
/// A timer due at `d` must see every stream record with an event time before
/// `d` — that is the spec's order, and what `replay` computes. When the worker
/// catches up on a backlog (after a restart, a network outage) timers due
/// inside the backlog therefore wait until the reader has passed them. The
/// gate never holds a timer longer than `hold_max` *of the reader running*
/// past its due time, so a stream that cannot be read does not keep
/// meetings alive — but a reader that cannot run (the database is away, the
/// worker has just started) holds them until it has read again: after an
/// outage longer than `hold_max`, the backlog written meanwhile is applied
/// before the timers it precedes, not after.
#[derive(Debug)]
pub struct StreamGate {
    /// Every record with an event time before this has been applied.
    read_through: AtomicI64,
    hold_max: Span,
    /// Since when the reader has been running rounds (µs; `i64::MAX`: it is
    /// not — stopped by a database failure, or not started yet).
    running_since: AtomicI64,
}

impl StreamGate {
    /// A gate whose reader runs (see [`StreamGate::reader_stopped`]).
    pub fn new(hold_max: Span) -> Self {
        StreamGate { read_through: AtomicI64::new(i64::MIN), hold_max, running_since: AtomicI64::new(i64::MIN) }
    }

    /// The reader cannot run (a database failure, or before its first
    /// round): timers wait for it, however long.
    pub fn reader_stopped(&self) {
        self.running_since.store(i64::MAX, Ordering::SeqCst);
    }

    /// The reader finished a round at `now`; `hold_max` counts from the first
    /// such round after it stopped.
    pub fn reader_running(&self, now: Timestamp) {
        let _ = self.running_since.compare_exchange(i64::MAX, now.as_micros(), Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The reader has read everything with an event time before `t`.
    /// Returns whether that moved the gate.
    pub fn advance(&self, t: Timestamp) -> bool {
        self.read_through.fetch_max(t.as_micros(), Ordering::SeqCst) < t.as_micros()
    }

    pub fn read_through(&self) -> Option<Timestamp> {
        let v = self.read_through.load(Ordering::SeqCst);
        (v != i64::MIN).then(|| Timestamp::from_micros(v))
    }

    /// Timers due at or before this may fire at `now`: what the stream has
    /// been read through, or anything held `hold_max` while the reader ran.
    pub fn limit(&self, now: Timestamp) -> Timestamp {
        let read = self.read_through().unwrap_or(Timestamp::MIN);
        let since = self.running_since.load(Ordering::SeqCst);
        let held = now.saturating_add(Span::from_micros(-self.hold_max.as_micros()));
        if since == i64::MAX || Timestamp::from_micros(since) > held {
            return read.min(now);
        }
        read.max(held).min(now)
    }

    /// The gate as the stored checkpoints show it, for a process that reads
    /// no stream itself (an operator command): the stream most recently
    /// read, through the least of its open shards' positions.
    pub fn from_checkpoints(checkpoints: &[Checkpoint], hold_max: Span) -> StreamGate {
        let gate = StreamGate::new(hold_max);
        let newest = checkpoints.iter().max_by_key(|c| c.at).map(|c| c.stream_arn.as_str());
        let Some(arn) = newest else {
            // No stream was ever read here: nothing holds the timers.
            gate.advance(Timestamp::MAX);
            return gate;
        };
        let through = checkpoints
            .iter()
            .filter(|c| c.stream_arn == arn && !c.closed)
            .map(read_through)
            .try_fold(Timestamp::MAX, |acc, t| t.map(|t| acc.min(t)));
        if let Some(t) = through {
            gate.advance(t);
        }
        gate
    }
}

/// How far a shard is read by its checkpoint: every record before this is
/// applied (`None`: nothing known yet).
pub fn read_through(c: &Checkpoint) -> Option<Timestamp> {
    if c.caught_up {
        Some(c.at)
    } else {
        c.last_event_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_until_read_past_but_never_longer_than_the_limit() {
        let g = StreamGate::new(Span::from_secs(60));
        let now = Timestamp::from_secs(1000);
        assert_eq!(g.limit(now), Timestamp::from_secs(940), "nothing read: held for at most 60 s");
        assert!(g.advance(Timestamp::from_secs(990)));
        assert!(!g.advance(Timestamp::from_secs(980)), "never moves back");
        assert_eq!(g.limit(now), Timestamp::from_secs(990));
        g.advance(Timestamp::from_secs(2000));
        assert_eq!(g.limit(now), now, "never past now");
    }

    #[test]
    fn a_reader_that_cannot_run_holds_timers_until_it_has_read_again() {
        let g = StreamGate::new(Span::from_secs(60));
        g.advance(Timestamp::from_secs(900));
        g.reader_stopped();
        let now = Timestamp::from_secs(1000);
        assert_eq!(g.limit(now), Timestamp::from_secs(900), "the database is away: only what was read");
        // Back at 1000: hold_max counts from its first round, not from the timers' due times.
        g.reader_running(now);
        assert_eq!(g.limit(Timestamp::from_secs(1030)), Timestamp::from_secs(900), "30 s of reading: still held");
        g.reader_running(Timestamp::from_secs(1030));
        assert_eq!(g.limit(Timestamp::from_secs(1061)), Timestamp::from_secs(1001), "60 s of reading: released");
    }
}
