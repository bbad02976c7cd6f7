//! Side effects: the ports ([`Ec2`], [`MeetingTable`]) and the outbox executor.
//!
//! Effects are written to the outbox in the same transaction as the transition
//! that causes them and run after it commits, at least once: an effect in
//! flight when the process dies is still `pending` and runs again at start-up.
//! Both effects are idempotent (terminating a terminated instance succeeds;
//! the write-back is conditional), so "at least once" is "exactly once" in effect.
//!
//! Transient failures are retried with exponential backoff and jitter, across
//! restarts (the attempt count and next attempt time are in the row). After
//! `max_attempts`, or at once for a permanent error, the effect is `failed`:
//! kept, visible in `show`/`status`, and re-queued by `spindown retry`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::machine::{InstanceId, MeetingId, Reason, State};
use crate::store::{EffectRow, EffectUpdate, NewHistory, Store, StoreError, Writes};
use crate::time::Span;

/// A boxed, sendable future (the ports are used as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A failed effect call, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EffectError {
    /// Throttling, 5xx, timeouts, connection errors: worth retrying.
    pub transient: bool,
    pub message: String,
}

impl EffectError {
    pub fn transient(message: impl Into<String>) -> Self {
        EffectError { transient: true, message: message.into() }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        EffectError { transient: false, message: message.into() }
    }
}

/// What a terminate call did, instance by instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TerminateReport {
    /// Now shutting down or terminated (including already terminated ones).
    pub terminated: Vec<InstanceId>,
    /// `InvalidInstanceID.NotFound`: nothing to do.
    pub gone: Vec<InstanceId>,
    /// Refused by the tag guard, with why.
    pub refused: Vec<(InstanceId, String)>,
    /// Nothing was called (dry run).
    pub dry_run: bool,
}

/// What a write-back did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteBackOutcome {
    Written,
    /// The condition failed: the row already says TERMINATED (or is gone).
    AlreadyDone,
    DryRun,
}

/// The EC2 API, as much of it as spindown uses.
pub trait Ec2: Send + Sync + 'static {
    /// Terminate these instances (for `meeting`, which a tag guard may check).
    fn terminate<'a>(
        &'a self,
        meeting: &'a MeetingId,
        instances: &'a [InstanceId],
    ) -> BoxFuture<'a, Result<TerminateReport, EffectError>>;
}

/// The meetings table, as much of it as spindown uses.
pub trait MeetingTable: Send + Sync + 'static {
    /// `SET status = TERMINATED, termination_reason, terminated_at` if not yet TERMINATED.
    fn write_back<'a>(
        &'a self,
        meeting: &'a MeetingId,
        reason: Reason,
        terminated_at: &'a str,
    ) -> BoxFuture<'a, Result<WriteBackOutcome, EffectError>>;
}

/// The dry-run port: calls nothing, reports what it would have done.
#[derive(Debug, Default, Clone, Copy)]
pub struct DryRun;

impl Ec2 for DryRun {
    fn terminate<'a>(
        &'a self,
        _: &'a MeetingId,
        instances: &'a [InstanceId],
    ) -> BoxFuture<'a, Result<TerminateReport, EffectError>> {
        Box::pin(
            async move { Ok(TerminateReport { terminated: instances.to_vec(), dry_run: true, ..Default::default() }) },
        )
    }
}

impl MeetingTable for DryRun {
    fn write_back<'a>(
        &'a self,
        _: &'a MeetingId,
        _: Reason,
        _: &'a str,
    ) -> BoxFuture<'a, Result<WriteBackOutcome, EffectError>> {
        Box::pin(async { Ok(WriteBackOutcome::DryRun) })
    }
}

/// Retry settings for the executor.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts before an effect is marked `failed`.
    pub max_attempts: i64,
    /// Delay after the first failure; doubles each time.
    pub base_delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 10, base_delay: Duration::from_secs(1), max_delay: Duration::from_secs(300) }
    }
}

impl RetryPolicy {
    /// Exponential backoff with "equal jitter": half fixed, half random.
    pub fn delay(&self, attempts: i64) -> Duration {
        let exp = attempts.saturating_sub(1).clamp(0, 30) as u32;
        let full = self.base_delay.saturating_mul(1u32 << exp.min(30)).min(self.max_delay);
        let half = full / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=half)
    }
}

/// Counts from one [`Executor::drain`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExecReport {
    pub done: u64,
    pub retried: u64,
    pub failed: u64,
}

/// Runs the outbox.
pub struct Executor {
    store: Store,
    ec2: Arc<dyn Ec2>,
    table: Arc<dyn MeetingTable>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    batch: i64,
}

enum Verdict {
    Done(Vec<String>),
    Retry(String),
    Failed(String),
}

impl Executor {
    pub fn new(
        store: Store,
        ec2: Arc<dyn Ec2>,
        table: Arc<dyn MeetingTable>,
        clock: Arc<dyn Clock>,
        retry: RetryPolicy,
    ) -> Self {
        Executor { store, ec2, table, clock, retry, batch: 256 }
    }

    /// A dry-run executor: records "would terminate …" and completes every effect.
    pub fn dry_run(store: Store, clock: Arc<dyn Clock>) -> Self {
        Executor::new(store, Arc::new(DryRun), Arc::new(DryRun), clock, RetryPolicy::default())
    }

    /// Run every effect that is due now, until none is. Calls within a batch
    /// run concurrently; each batch's outcomes are committed together.
    pub async fn drain(&self) -> Result<ExecReport, StoreError> {
        let mut report = ExecReport::default();
        loop {
            let now = self.clock.now();
            let due = self.store.due_effects(now, self.batch).await?;
            if due.is_empty() {
                return Ok(report);
            }
            let mut calls = tokio::task::JoinSet::new();
            for (i, e) in due.iter().enumerate() {
                let (ec2, table, e) = (self.ec2.clone(), self.table.clone(), e.clone());
                calls.spawn(async move {
                    crate::failpoint::hit("effect-before-call");
                    let verdict = run_one(ec2.as_ref(), table.as_ref(), &e).await;
                    crate::failpoint::hit("effect-after-call");
                    (i, verdict)
                });
            }
            let mut verdicts: Vec<Option<Verdict>> = (0..due.len()).map(|_| None).collect();
            while let Some(joined) = calls.join_next().await {
                match joined {
                    Ok((i, v)) => verdicts[i] = Some(v),
                    Err(e) => tracing::error!("effect task failed: {e}"),
                }
            }
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let mut writes = Writes::default();
            for (e, v) in due.iter().zip(verdicts) {
                let v = v.unwrap_or_else(|| Verdict::Retry("effect task panicked".into()));
                let attempts = e.attempts + 1;
                let (status, outcome, next, error, result, notes) = match v {
                    Verdict::Done(notes) => {
                        report.done += 1;
                        ("done", "effect_done", now, None, Some(notes.join("; ")), notes)
                    }
                    Verdict::Retry(err) if attempts < self.retry.max_attempts => {
                        report.retried += 1;
                        let wait = self.retry.delay(attempts);
                        let next = now.saturating_add(Span::from_micros(wait.as_micros() as i64));
                        let note = format!("attempt {attempts} failed: {err}; retrying at {next}");
                        ("pending", "effect_retry", next, Some(err), None, vec![note])
                    }
                    Verdict::Retry(err) | Verdict::Failed(err) => {
                        report.failed += 1;
                        let note = format!(
                            "attempt {attempts} failed: {err}; effect marked failed (re-queue with `spindown retry {}`)",
                            e.id
                        );
                        ("failed", "effect_failed", now, Some(err), None, vec![note])
                    }
                };
                tx.update_effect(&EffectUpdate {
                    id: e.id,
                    status,
                    attempts,
                    next_attempt_at: next,
                    last_error: error.as_deref(),
                    result: result.as_deref(),
                    now,
                })
                .await?;
                if let Some(id) = MeetingId::new(e.meeting_id.clone()) {
                    // On a virtual clock (replay) the effect "runs" right after the
                    // transition that queued it, not when the replay got round to it.
                    let at = if self.clock.is_virtual() { e.next_attempt_at } else { now };
                    writes.history.push(NewHistory {
                        meeting_id: id,
                        at,
                        cause: "effect",
                        cause_ref: format!("{} #{}", e.kind, e.id),
                        from_state: Some(State::Terminated),
                        to_state: State::Terminated,
                        outcome,
                        reason: None,
                        lateness: None,
                        notes,
                    });
                }
            }
            tx.write(&writes).await?;
            crate::failpoint::hit("tx-before-commit");
            tx.commit().await?;
        }
    }

    /// Drain now, then whenever `wake` fires or a retry falls due, until `shutdown`.
    pub async fn run(&self, wake: Arc<Notify>, shutdown: impl Future<Output = ()>) -> Result<(), StoreError> {
        tokio::pin!(shutdown);
        loop {
            let r = self.drain().await?;
            if r.done + r.retried + r.failed > 0 {
                tracing::info!(done = r.done, retried = r.retried, failed = r.failed, "effects run");
            }
            let wait = match self.store.next_effect_attempt().await? {
                Some(at) => {
                    Duration::from_micros(at.as_micros().saturating_sub(self.clock.now().as_micros()).max(0) as u64)
                }
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = wake.notified() => {}
                _ = &mut shutdown => return Ok(()),
            }
        }
    }
}

async fn run_one(ec2: &dyn Ec2, table: &dyn MeetingTable, e: &EffectRow) -> Verdict {
    let Some(meeting) = MeetingId::new(e.meeting_id.clone()) else {
        return Verdict::Failed("effect has no meeting id".into());
    };
    let verdict = |r: Result<Vec<String>, EffectError>| match r {
        Ok(notes) => Verdict::Done(notes),
        Err(err) if err.transient => Verdict::Retry(err.message),
        Err(err) => Verdict::Failed(err.message),
    };
    match e.kind.as_str() {
        "terminate" => {
            let instances: Vec<InstanceId> = match serde_json::from_value(e.payload["instances"].clone()) {
                Ok(i) => i,
                Err(err) => return Verdict::Failed(format!("bad terminate payload: {err}")),
            };
            verdict(ec2.terminate(&meeting, &instances).await.map(|r| describe_terminate(&r)))
        }
        "write_back" => {
            let reason = e.payload["reason"].as_str().and_then(|r| r.parse::<Reason>().ok());
            let at = e.payload["terminated_at"].as_str();
            let (Some(reason), Some(at)) = (reason, at) else {
                return Verdict::Failed("bad write_back payload".into());
            };
            verdict(table.write_back(&meeting, reason, at).await.map(|o| {
                vec![match o {
                    WriteBackOutcome::Written => {
                        format!("wrote status=TERMINATED termination_reason={reason} terminated_at={at}")
                    }
                    WriteBackOutcome::AlreadyDone => "row already TERMINATED (or gone): nothing written".to_string(),
                    WriteBackOutcome::DryRun => {
                        format!(
                            "would write status=TERMINATED termination_reason={reason} terminated_at={at} (dry run)"
                        )
                    }
                }]
            }))
        }
        other => Verdict::Failed(format!("unknown effect kind {other:?}")),
    }
}

fn describe_terminate(r: &TerminateReport) -> Vec<String> {
    let list = |v: &[InstanceId]| v.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(", ");
    let mut notes = Vec::new();
    if !r.terminated.is_empty() {
        notes.push(if r.dry_run {
            format!("would terminate {} (dry run)", list(&r.terminated))
        } else {
            format!("terminated {}", list(&r.terminated))
        });
    }
    if !r.gone.is_empty() {
        notes.push(format!("already gone (InvalidInstanceID.NotFound): {}", list(&r.gone)));
    }
    for (i, why) in &r.refused {
        notes.push(format!("refused to terminate {i}: {why}"));
    }
    notes
}
