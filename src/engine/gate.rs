//! The stream gate: timers wait until the stream has been read past their due time.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::time::{Span, Timestamp};

/// How far a stream has been read, for the timer loop (live mode).
///
/// A timer due at `d` must see every stream record with an event time before
/// `d` — that is the spec's order, and what `replay` computes. When the worker
/// catches up on a backlog (after a restart, a network outage) timers due
/// inside the backlog therefore wait until the reader has passed them. The
/// gate never holds a timer longer than `hold_max` past its due time, so a
/// stream that cannot be read does not keep meetings alive.
#[derive(Debug)]
pub struct StreamGate {
    /// Every record with an event time before this has been applied.
    read_through: AtomicI64,
    hold_max: Span,
}

impl StreamGate {
    pub fn new(hold_max: Span) -> Self {
        StreamGate { read_through: AtomicI64::new(i64::MIN), hold_max }
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

    /// Timers due at or before this may fire at `now`.
    pub fn limit(&self, now: Timestamp) -> Timestamp {
        let held = now.saturating_add(Span::from_micros(-self.hold_max.as_micros()));
        self.read_through().unwrap_or(Timestamp::MIN).max(held).min(now)
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
}
