//! Time is injected: the engine never reads the wall clock itself.
//!
//! * [`SystemClock`] — the worker's clock. Timers fire at the real instant the
//!   engine notices them (their lateness goes to history).
//! * [`ManualClock`] — a virtual clock for replay and tests. It moves only when
//!   told to, and timers fire at their own due instant.
//!
//! Engine instants are additionally kept monotonic by the engine, so a wall
//! clock stepping backwards never re-orders history or re-fires a timer.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::time::Timestamp;

/// A source of "now" for the engine.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// `true` for a virtual clock that only inputs move (replay): a timer then
    /// fires at its own due instant, and a record's event time moves the clock.
    fn is_virtual(&self) -> bool {
        false
    }

    /// Move a virtual clock forward to `t` (never backwards). A wall clock
    /// cannot be moved and ignores this.
    fn advance_to(&self, _t: Timestamp) {}
}

/// The wall clock (UTC).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to.
///
/// [`ManualClock::new`] is a *virtual* clock (replay): inputs move it, and
/// timers fire at their own due instant. [`ManualClock::live`] behaves like a
/// wall clock that a test sets by hand: inputs do not move it, and a timer
/// noticed late fires late (so tests can check lateness and recovery).
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
    is_virtual: bool,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock { now: Arc::new(AtomicI64::new(start.as_micros())), is_virtual: true }
    }

    /// A hand-set stand-in for the wall clock (see the type's docs).
    pub fn live(start: Timestamp) -> Self {
        ManualClock { now: Arc::new(AtomicI64::new(start.as_micros())), is_virtual: false }
    }

    /// Set the clock to `t`, forwards or backwards (tests use this to inject
    /// clock faults; the engine's own instants stay monotonic regardless).
    pub fn set(&self, t: Timestamp) {
        self.now.store(t.as_micros(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.now.load(Ordering::SeqCst))
    }

    fn is_virtual(&self) -> bool {
        self.is_virtual
    }

    fn advance_to(&self, t: Timestamp) {
        if self.is_virtual {
            self.now.fetch_max(t.as_micros(), Ordering::SeqCst);
        }
    }
}

/// A wall clock displaced by an adjustable offset: for tests of clock jumps
/// on a live worker (the offset can move forwards and backwards).
#[derive(Debug, Clone, Default)]
pub struct OffsetClock {
    offset_us: Arc<AtomicI64>,
}

impl OffsetClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Jump the clock by `delta_us` microseconds (negative jumps backwards).
    pub fn jump(&self, delta_us: i64) {
        self.offset_us.fetch_add(delta_us, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(Timestamp::now().as_micros().saturating_add(self.offset_us.load(Ordering::SeqCst)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_only_advances_forward() {
        let c = ManualClock::new(Timestamp::from_secs(100));
        c.advance_to(Timestamp::from_secs(50));
        assert_eq!(c.now(), Timestamp::from_secs(100));
        c.advance_to(Timestamp::from_secs(150));
        assert_eq!(c.now(), Timestamp::from_secs(150));
        c.set(Timestamp::from_secs(10));
        assert_eq!(c.now(), Timestamp::from_secs(10), "set may jump backwards");
        assert!(c.is_virtual());
        assert!(!SystemClock.is_virtual());
        let live = ManualClock::live(Timestamp::from_secs(100));
        live.advance_to(Timestamp::from_secs(200));
        assert_eq!(live.now(), Timestamp::from_secs(100), "a live clock is not moved by inputs");
        assert!(!live.is_virtual());
    }

    #[test]
    fn offset_clock_jumps() {
        let c = OffsetClock::new();
        let before = c.now();
        c.jump(3_600_000_000);
        assert!(c.now().as_micros() - before.as_micros() >= 3_600_000_000);
        c.jump(-7_200_000_000);
        assert!(c.now() < before);
    }
}
