//! The timer loop.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Engine, EngineError};
use crate::backoff::Backoff;
use crate::machine::Durable;
use crate::store::StoreError;

impl<M: Durable> Engine<M> {
    /// The timer loop: sleep until the next due timer (no polling), wake early
    /// when an earlier one is armed, fire what is due, until `shutdown`.
    /// Overdue timers (a restart) fire at once, each exactly once.
    ///
    /// The next due time is read from the store on every pass, and the clock
    /// is re-read at least every [`Engine::set_clock_check`], so a step of the
    /// wall clock is noticed during a long sleep.
    ///
    /// A database that fails in passing (down, restarting, failing over,
    /// busy, not answering within [`Engine::set_store_deadline`]) is waited
    /// out with capped exponential backoff, the outage reported in the
    /// engine's liveness (`/readyz`); nothing that was not committed counts.
    ///
    /// # Errors
    ///
    /// A store failure that does not pass (the worker then stops; nothing
    /// committed is lost).
    pub async fn run_timers(&self, shutdown: impl Future<Output = ()>) -> Result<(), EngineError> {
        tokio::pin!(shutdown);
        let mut backoff = Backoff::store();
        loop {
            crate::failpoint::hold("timers").await;
            self.liveness.timer_tick(self.clock.now());
            let wait = match self.within_deadline("timer loop", self.timer_pass()).await {
                Ok(None) => continue,
                Ok(Some(wait)) => {
                    backoff.reset();
                    self.liveness.store_ok(self.clock.now());
                    wait
                }
                Err(EngineError::Store(e)) if e.is_transient() => {
                    self.liveness.store_failed("timer loop", &e, self.clock.now());
                    let wait = backoff.next_delay();
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = &mut shutdown => return Ok(()),
                    }
                }
                Err(e) => return Err(e),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.timers_changed.notified() => {}
                _ = &mut shutdown => return Ok(()),
            }
        }
    }

    /// Fire what is due, then say how long to sleep (`None`: go again at once).
    async fn timer_pass(&self) -> Result<Option<Duration>, EngineError> {
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
            Some(due) if due <= limit => return Ok(None),
            // Due, but held by the stream gate: the reader wakes us as it advances.
            Some(due) if due <= now => Duration::from_millis(500),
            Some(due) => Duration::from_micros(due.as_micros().saturating_sub(now.as_micros()).max(0) as u64),
            None => Duration::from_secs(3600),
        };
        Ok(Some(wait.min(Duration::from_millis(self.clock_check_ms.load(Ordering::Relaxed)))))
    }

    /// `f`, failing as a store that does not answer if it takes longer than
    /// the deadline set by [`Engine::set_store_deadline`] (none by default).
    pub(crate) async fn within_deadline<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        match self.store_deadline() {
            Some(d) => match tokio::time::timeout(d, f).await {
                Ok(r) => r,
                Err(_) => Err(EngineError::Store(StoreError::no_answer(what, d))),
            },
            None => f.await,
        }
    }
}
