//! The timer loop.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Engine, EngineError};

impl Engine {
    /// The timer loop: sleep until the next due timer (no polling), wake early
    /// when an earlier one is armed, fire what is due, until `shutdown`.
    /// Overdue timers (a restart) fire at once, each exactly once.
    ///
    /// The next due time is read from the store on every pass, and the clock
    /// is re-read at least every [`Engine::set_clock_check`], so a step of the
    /// wall clock is noticed during a long sleep.
    ///
    /// # Errors
    ///
    /// A store failure (the worker then stops; nothing committed is lost).
    pub async fn run_timers(&self, shutdown: impl Future<Output = ()>) -> Result<(), EngineError> {
        tokio::pin!(shutdown);
        loop {
            crate::failpoint::hold("timers").await;
            self.liveness.timer_tick(self.clock.now());
            loop {
                let (report, more) = self.fire_due(self.fires_per_unit()).await?;
                if report.timers_fired > 0 {
                    tracing::debug!(fired = report.timers_fired, "timers fired");
                }
                if !more {
                    break;
                }
            }
            let next = self.store.next_due().await?;
            let now = self.clock.now();
            let limit = self.limit_at(now);
            let wait = match next {
                // Fell due while the last batch fired: go again at once.
                Some(due) if due <= limit => continue,
                // Due, but held by the stream gate: the reader wakes us as it advances.
                Some(due) if due <= now => Duration::from_millis(500),
                Some(due) => Duration::from_micros(due.as_micros().saturating_sub(now.as_micros()).max(0) as u64),
                None => Duration::from_secs(3600),
            };
            let wait = wait.min(Duration::from_millis(self.clock_check_ms.load(Ordering::Relaxed)));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.timers_changed.notified() => {}
                _ = &mut shutdown => return Ok(()),
            }
        }
    }
}
