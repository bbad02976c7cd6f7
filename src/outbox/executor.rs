//! The outbox executor: claim due rows, run their parts, record the outcome.
//!
//! Transient failures are retried with exponential backoff and jitter, across
//! restarts (the attempt count and next attempt time are in the row). After
//! `max_attempts`, or at once for a permanent error, the row is `failed`:
//! kept, visible in `show`/`status`, and re-queued by an operator. Parts run
//! in order (terminate, then write back); a part that succeeded is not run
//! again when a later one is retried.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tokio::sync::Notify;

use super::{Ec2, EffectError, MeetingTable, TerminateReport, WriteBackOutcome};
use crate::clock::Clock;
use crate::meeting::history::{Cause, Entry, Note, Outcome};
use crate::meeting::{Effect, MeetingId};
use crate::store::{Claim, EffectOutcome, EffectRow, EffectStatus, Store, StoreError};
use crate::time::{Span, Timestamp};

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
        let full = self.base_delay.saturating_mul(1u32 << exp).min(self.max_delay);
        let half = full / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=half)
    }
}

/// Counts from one [`Executor::drain`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExecReport {
    pub done: u64,
    pub retried: u64,
    pub failed: u64,
}

impl ExecReport {
    fn count(&mut self, o: &EffectOutcome) {
        match o.status {
            EffectStatus::Done => self.done += 1,
            EffectStatus::Pending => self.retried += 1,
            EffectStatus::Failed => self.failed += 1,
        }
    }
}

/// Effects run at once, at most.
pub const CONCURRENCY: usize = 16;
/// Outcomes are recorded in groups of this many…
pub const RECORD_EVERY: usize = 32;
/// …or this long after the first of a group came in.
pub const RECORD_WITHIN: Duration = Duration::from_millis(250);

/// Runs the outbox.
pub struct Executor {
    store: Arc<dyn Store>,
    ec2: Arc<dyn Ec2>,
    table: Arc<dyn MeetingTable>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    owner: String,
    /// How long a claim holds a row against other workers.
    lease: Span,
    batch: usize,
    /// Longest sleep between looks at the outbox.
    max_wait: Duration,
}

impl Executor {
    pub fn new(
        store: Arc<dyn Store>,
        ec2: Arc<dyn Ec2>,
        table: Arc<dyn MeetingTable>,
        clock: Arc<dyn Clock>,
        retry: RetryPolicy,
    ) -> Self {
        Executor {
            store,
            ec2,
            table,
            clock,
            retry,
            owner: "worker".into(),
            lease: Span::from_mins(5),
            batch: 256,
            max_wait: Duration::from_secs(3600),
        }
    }

    /// Lease effects under this identity (default `worker`). Two executors on
    /// one database need different identities; an executor restarted under
    /// the same identity takes over its own leases at once.
    pub fn owned_by(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    /// How long a claim holds a row against other executors (default 5 minutes;
    /// the worker's `[effects] lease`, 2 minutes: longer than an attempt can
    /// take with the SDK's timeouts).
    pub fn lease(mut self, lease: Span) -> Self {
        self.lease = lease;
        self
    }

    /// Look at the outbox at least this often, woken or not (several workers
    /// on one database: effects queued by another worker that died).
    pub fn max_wait(mut self, every: Duration) -> Self {
        self.max_wait = every;
        self
    }

    /// The identity its leases carry.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Run every effect that is due now, until none is.
    ///
    /// Rows are claimed a batch at a time; at most [`CONCURRENCY`] run at
    /// once (the AWS APIs' rate limits, and the stream reader shares the
    /// endpoint), and outcomes are recorded as they come in — every
    /// [`RECORD_EVERY`] of them, or [`RECORD_WITHIN`] after the first
    /// unrecorded one — so that work done before a crash stays done.
    ///
    /// # Errors
    ///
    /// The store cannot be read or written (nothing is lost: an unrecorded
    /// attempt runs again).
    pub async fn drain(&self) -> Result<ExecReport, StoreError> {
        let mut report = ExecReport::default();
        loop {
            let now = self.clock.now();
            let claim =
                Claim { owner: self.owner.clone(), now, until: now.saturating_add(self.lease), limit: self.batch };
            let due = self.store.claim_effects(&claim).await?;
            if due.is_empty() {
                return Ok(report);
            }
            let mut rows = due.into_iter();
            let mut calls = tokio::task::JoinSet::new();
            let mut running: std::collections::HashMap<tokio::task::Id, EffectRow> = Default::default();
            let mut unrecorded: Vec<EffectOutcome> = Vec::new();
            let mut record_by = None;
            loop {
                while calls.len() < CONCURRENCY {
                    let Some(row) = rows.next() else { break };
                    let (ec2, table, clock) = (self.ec2.clone(), self.table.clone(), self.clock.clone());
                    let (r, retry) = (row.clone(), self.retry.clone());
                    let handle = calls
                        .spawn(async move { attempt(ec2.as_ref(), table.as_ref(), clock.as_ref(), &retry, &r).await });
                    running.insert(handle.id(), row);
                }
                if calls.is_empty() && unrecorded.is_empty() {
                    break;
                }
                let deadline = record_by.unwrap_or_else(|| tokio::time::Instant::now() + RECORD_WITHIN);
                let record_now = tokio::select! {
                    joined = calls.join_next_with_id(), if !calls.is_empty() => {
                        let outcome = match joined.expect("not empty") {
                            Ok((id, o)) => {
                                running.remove(&id);
                                o
                            }
                            Err(e) => {
                                tracing::error!("effect task failed: {e}");
                                let row = running.remove(&e.id()).expect("a task of this batch");
                                failed_attempt(&row, "effect task panicked", self.clock.now(), &self.retry, true)
                            }
                        };
                        report.count(&outcome);
                        unrecorded.push(outcome);
                        record_by.get_or_insert(deadline);
                        unrecorded.len() >= RECORD_EVERY || calls.is_empty()
                    }
                    _ = tokio::time::sleep_until(deadline), if !unrecorded.is_empty() => true,
                };
                if record_now {
                    self.store.finish_effects(&self.owner, &unrecorded).await?;
                    unrecorded.clear();
                    record_by = None;
                }
            }
        }
    }

    /// Drain now, then whenever `wake` fires or a retry falls due, until `shutdown`.
    ///
    /// # Errors
    ///
    /// As [`Executor::drain`].
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
                None => self.max_wait,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait.min(self.max_wait)) => {}
                _ = wake.notified() => {}
                _ = &mut shutdown => return Ok(()),
            }
        }
    }
}

fn entry(effect: &Effect, row: &EffectRow, at: Timestamp, outcome: Outcome, notes: Vec<Note>) -> Entry {
    Entry {
        at,
        cause: Cause::Effect { kind: effect.kind(), effect: Some(row.id) },
        from: None,
        to: None,
        outcome,
        reason: None,
        lateness: None,
        notes,
    }
}

/// The outcome of an attempt whose part `row.current()` failed with `error`.
fn failed_attempt(row: &EffectRow, error: &str, at: Timestamp, retry: &RetryPolicy, transient: bool) -> EffectOutcome {
    let attempts = row.attempts + 1;
    let part = row.current().or(row.parts.last()).cloned();
    let (status, next, note, outcome) = if transient && attempts < retry.max_attempts {
        let next = at.saturating_add(Span::from_micros(retry.delay(attempts).as_micros() as i64));
        let note = Note::AttemptFailed { attempt: attempts, error: error.to_string(), retry_at: next };
        (EffectStatus::Pending, next, note, Outcome::EffectRetry)
    } else {
        (EffectStatus::Failed, at, Note::GaveUp { attempt: attempts, error: error.to_string() }, Outcome::EffectFailed)
    };
    EffectOutcome {
        id: row.id,
        meeting_id: row.meeting_id.clone(),
        done: row.done,
        status,
        attempts,
        next_attempt_at: next,
        last_error: Some(error.to_string()),
        at,
        history: part.map(|p| vec![entry(&p, row, at, outcome, vec![note])]).unwrap_or_default(),
    }
}

/// Run the row's parts that are not done yet, in order, stopping at a failure.
async fn attempt(
    ec2: &dyn Ec2,
    table: &dyn MeetingTable,
    clock: &dyn Clock,
    retry: &RetryPolicy,
    row: &EffectRow,
) -> EffectOutcome {
    let mut history = Vec::new();
    let mut done = row.done;
    for part in &row.parts[row.done.min(row.parts.len())..] {
        crate::failpoint::hit("effect-before-call");
        let started = std::time::Instant::now();
        let span = tracing::info_span!("effect", meeting_id = %row.meeting_id, effect = row.id, kind = %part.kind());
        let result = tracing::Instrument::instrument(run_part(ec2, table, &row.meeting_id, part), span).await;
        let secs = started.elapsed().as_secs_f64();
        crate::failpoint::hit("effect-after-call");
        let at = clock.now();
        match result {
            Ok(notes) => {
                crate::telemetry::effect_attempt(part.kind(), "done", secs);
                history.push(entry(part, row, at, Outcome::EffectDone, notes));
                done += 1;
            }
            Err(err) => {
                let progressed = EffectRow { done, ..row.clone() };
                let mut o = failed_attempt(&progressed, &err.message, at, retry, err.transient);
                let outcome = if o.status == EffectStatus::Failed { "failed" } else { "retry" };
                crate::telemetry::effect_attempt(part.kind(), outcome, secs);
                history.append(&mut o.history);
                o.history = history;
                return o;
            }
        }
    }
    let at = clock.now();
    EffectOutcome {
        id: row.id,
        meeting_id: row.meeting_id.clone(),
        done,
        status: EffectStatus::Done,
        attempts: row.attempts + 1,
        next_attempt_at: at,
        last_error: None,
        at,
        history,
    }
}

async fn run_part(
    ec2: &dyn Ec2,
    table: &dyn MeetingTable,
    meeting: &MeetingId,
    part: &Effect,
) -> Result<Vec<Note>, EffectError> {
    match part {
        Effect::Terminate { instances } => ec2.terminate(meeting, instances).await.map(|r| describe_terminate(&r)),
        Effect::WriteBack { reason, terminated_at } => {
            let (reason, terminated_at) = (*reason, *terminated_at);
            table.write_back(meeting, reason, terminated_at).await.map(|o| {
                vec![match o {
                    WriteBackOutcome::Written => Note::WroteBack { reason, terminated_at },
                    WriteBackOutcome::AlreadyDone => Note::AlreadyWritten,
                    WriteBackOutcome::DryRun => Note::WouldWriteBack { reason, terminated_at },
                }]
            })
        }
    }
}

fn describe_terminate(r: &TerminateReport) -> Vec<Note> {
    let mut notes = Vec::new();
    if !r.terminated.is_empty() {
        notes.push(if r.dry_run {
            Note::WouldTerminate(r.terminated.clone())
        } else {
            Note::TerminatedInstances(r.terminated.clone())
        });
    }
    if !r.gone.is_empty() {
        notes.push(Note::Gone(r.gone.clone()));
    }
    for (id, why) in &r.refused {
        notes.push(Note::Refused { id: id.clone(), why: why.clone() });
    }
    notes
}
