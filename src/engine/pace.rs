//! How time moves for the engine: one of two paces, chosen once from the clock.
//!
//! * [`Replayed`] — a virtual clock that inputs move (`replay`, tests): a
//!   record moves the clock to its event time, every timer due by then fires
//!   first at its own due instant, a batch reads due timers ahead to its last
//!   event time, and nothing waits for a stream (there is none).
//! * [`Live`] — the wall clock (a worker): a record is applied now; what fires
//!   before it is held by the stream gate (the least read-through of all
//!   shards), except the record's own instance's timers due by its event time;
//!   a fire is as late as the engine was in noticing it, and that is measured.

use crate::time::Timestamp;

/// The instants one record is applied under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RecordTimes {
    /// The record's own instance fires its timers due by this first.
    pub own: Timestamp,
    /// Every other instance fires its timers due by this first.
    pub fire: Timestamp,
    /// The instant the record is applied at.
    pub at: Timestamp,
}

/// How time moves (see the module docs).
pub(super) trait Pace: Send + Sync {
    /// The instants a record with `event_time` is applied under, the clock
    /// reading `now`, the latest event time applied so far being
    /// `event_clock` and the stream gate letting timers fire through `gate`.
    fn record(
        &self,
        now: Timestamp,
        event_time: Option<Timestamp>,
        event_clock: Timestamp,
        gate: Timestamp,
    ) -> RecordTimes;

    /// How far ahead a batch whose records' latest event time is `latest`
    /// reads due timers (`Timestamp::MIN`: no further than it fires).
    fn lookahead(&self, latest: Timestamp) -> Timestamp;

    /// Whether a fire's lateness is measured (the lateness histogram).
    fn measures_lateness(&self) -> bool;

    /// Whether timers wait for the stream gate (the timer loop, commands).
    fn waits_for_stream(&self) -> bool;
}

/// A virtual clock that inputs move.
pub(super) struct Replayed;

impl Pace for Replayed {
    fn record(&self, now: Timestamp, event_time: Option<Timestamp>, _: Timestamp, _: Timestamp) -> RecordTimes {
        let t = now.max(event_time.unwrap_or(now));
        RecordTimes { own: t, fire: t, at: t }
    }

    fn lookahead(&self, latest: Timestamp) -> Timestamp {
        latest
    }

    fn measures_lateness(&self) -> bool {
        false
    }

    fn waits_for_stream(&self) -> bool {
        false
    }
}

/// The wall clock, held by the stream gate.
pub(super) struct Live;

impl Pace for Live {
    fn record(
        &self,
        now: Timestamp,
        event_time: Option<Timestamp>,
        event_clock: Timestamp,
        gate: Timestamp,
    ) -> RecordTimes {
        // The record's own instance: all its earlier records (same shard) are applied.
        let own = event_time.map_or(now, |t| t.min(now));
        // Other meetings: their records may still be unread on another shard.
        let seen = event_time.map_or(now, |t| t.max(event_clock).min(now));
        RecordTimes { own, fire: seen.min(gate), at: now }
    }

    fn lookahead(&self, _: Timestamp) -> Timestamp {
        Timestamp::MIN
    }

    fn measures_lateness(&self) -> bool {
        true
    }

    fn waits_for_stream(&self) -> bool {
        true
    }
}

/// The pace of `clock`: the one place the engine asks whether its clock is virtual.
pub(super) fn of(clock: &dyn crate::clock::Clock) -> Box<dyn Pace> {
    if clock.is_virtual() {
        Box::new(Replayed)
    } else {
        Box::new(Live)
    }
}
