//! Capped exponential backoff with jitter: how every loop of the worker
//! waits out weather (a database that fails over, a throttled API).

use std::time::Duration;

use rand::Rng;

/// `base · 2ⁿ` capped at `max`, with "equal jitter": half of it fixed, half
/// random, so that several workers that failed together do not retry in step.
pub fn jittered(base: Duration, max: Duration, attempt: u32) -> Duration {
    let full = base.saturating_mul(1u32 << attempt.min(20)).min(max);
    let half = full / 2;
    half + rand::thread_rng().gen_range(Duration::ZERO..=half)
}

/// The delays of one run of failures: each [`Backoff::next`] waits longer,
/// [`Backoff::reset`] starts over after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max: max.max(base), failures: 0 }
    }

    /// For a store that does not answer: 250 ms doubling to 5 s.
    pub fn store() -> Backoff {
        Backoff::new(Duration::from_millis(250), Duration::from_secs(5))
    }

    /// The next delay (the first is about `base`).
    pub fn next_delay(&mut self) -> Duration {
        let d = jittered(self.base, self.max, self.failures);
        self.failures = self.failures.saturating_add(1);
        d
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_starts_over() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let first = b.next_delay();
        assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first), "{first:?}");
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(d <= Duration::from_secs(1), "capped: {d:?}");
        }
        let late = b.next_delay();
        assert!(late >= Duration::from_millis(500), "half of the cap at least: {late:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100), "starts over");
    }
}
