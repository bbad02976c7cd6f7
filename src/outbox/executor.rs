//! The outbox executor: claim due rows, run their parts, record the outcome.
//!
//! Transient failures are retried with exponential backoff and jitter, across
//! restarts (the attempt count and next attempt time are in the row). After
//! `max_attempts`, or at once for a permanent error, the row is `failed`:
//! kept, visible in `show`/`status`, and re-queued by an operator. Parts run
//! in order (terminate, then write back); a part that succeeded is not run
//! again when a later one is retried.

use crate::inspect::MeetingStore;
use crate::meeting::{EffectOutcome, EffectRow};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;

use super::{Ec2, EffectError, MeetingTable, TerminateReport, WriteBackOutcome};
use crate::clock::Clock;
use crate::meeting::history::{Cause, Entry, Note, Outcome};
use crate::meeting::{Effect, MeetingId};
use crate::store::{Claim, EffectStatus, Store, StoreError};
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
        crate::backoff::jittered(self.base_delay, self.max_delay, exp)
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

/// Runs the outbox.
pub struct Executor {
    store: Arc<dyn Store>,
    ec2: Arc<dyn Ec2>,
    table: Arc<dyn MeetingTable>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    owner: String,
    /// How long a claim holds a row against other workers (renewed while its call runs).
    lease: Span,
    /// Longest sleep between looks at the outbox.
    max_wait: Duration,
    /// The longest a claim or a record may wait for the database.
    store_deadline: Duration,
    /// Outcomes whose recording failed (the database was away): recorded
    /// first thing next time, while this executor still holds their lease.
    unrecorded: std::sync::Mutex<Vec<EffectOutcome>>,
    liveness: Option<Arc<crate::telemetry::Liveness>>,
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
            max_wait: Duration::from_secs(3600),
            store_deadline: Duration::from_secs(60),
            unrecorded: Default::default(),
            liveness: None,
        }
    }

    /// Lease effects under this identity (default `worker`). Two executors on
    /// one database need different identities; an executor restarted under
    /// the same identity takes over its own leases at once.
    pub fn owned_by(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    /// How long a claim holds a row against other executors (default 5
    /// minutes; the worker's `[effects] lease`, 2 minutes). The lease of an
    /// effect whose call is running is renewed every third of it.
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

    /// The longest a call to the database may take before it counts as lost (default 60 s).
    pub fn store_deadline(mut self, within: Duration) -> Self {
        self.store_deadline = within;
        self
    }

    /// Report database outages here (`/readyz`).
    pub fn liveness(mut self, liveness: Arc<crate::telemetry::Liveness>) -> Self {
        self.liveness = Some(liveness);
        self
    }

    /// The identity its leases carry.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn lease_duration(&self) -> Duration {
        Duration::from_micros(self.lease.as_micros().max(1) as u64)
    }

    /// Record one outcome now (kept to record later if the database is away).
    async fn record(&self, outcome: EffectOutcome) -> Result<(), StoreError> {
        let mut pending = std::mem::take(&mut *self.unrecorded.lock().unwrap_or_else(|p| p.into_inner()));
        pending.push(outcome);
        self.record_pending(pending).await
    }

    /// Record what is waiting to be recorded; on a passing failure keep it.
    async fn record_pending(&self, pending: Vec<EffectOutcome>) -> Result<(), StoreError> {
        if pending.is_empty() {
            return Ok(());
        }
        let r = crate::store::deadline(
            "recording effects",
            self.store_deadline,
            self.store.finish_effects(&self.owner, &pending),
        )
        .await;
        if let Err(e) = &r {
            if e.is_transient() {
                self.unrecorded.lock().unwrap_or_else(|p| p.into_inner()).extend(pending);
            }
        }
        r
    }

    /// Run every effect that is due now, until none is.
    ///
    /// At most [`CONCURRENCY`] calls run at once (the AWS APIs' rate limits,
    /// and the stream reader shares the endpoint), and no more are claimed
    /// than start at once: a claimed effect never waits behind others while
    /// its lease runs out. While a call runs, its lease is renewed every
    /// third of it (by the database's clock), so no other worker takes it
    /// over; each outcome is recorded the moment its call returns, so a
    /// crash repeats at most the calls in flight.
    ///
    /// # Errors
    ///
    /// The store cannot be read or written (nothing is lost: an unrecorded
    /// attempt runs again once its lease runs out; a calls in flight are
    /// waited for first).
    pub async fn drain(&self) -> Result<ExecReport, StoreError> {
        let mut report = ExecReport::default();
        let waiting = std::mem::take(&mut *self.unrecorded.lock().unwrap_or_else(|p| p.into_inner()));
        self.record_pending(waiting).await?;
        let mut calls = tokio::task::JoinSet::new();
        let mut running: std::collections::HashMap<tokio::task::Id, EffectRow> = Default::default();
        let mut more = true;
        let mut failure: Option<StoreError> = None;
        let mut heartbeat = tokio::time::interval(self.lease_duration() / 3);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        loop {
            // Top up when at most half the slots are busy: claim only what starts now.
            if more && failure.is_none() && calls.len() <= CONCURRENCY / 2 {
                let want = CONCURRENCY - calls.len();
                let claim = Claim {
                    owner: self.owner.clone(),
                    now: self.clock.now(),
                    lease: self.lease,
                    limit: want,
                    running: running.values().map(|r| r.id).collect(),
                };
                match crate::store::deadline("claiming effects", self.store_deadline, self.store.claim_effects(&claim))
                    .await
                {
                    Ok(rows) => {
                        more = rows.len() == want;
                        for row in rows {
                            let (ec2, table, clock) = (self.ec2.clone(), self.table.clone(), self.clock.clone());
                            let (r, retry) = (row.clone(), self.retry.clone());
                            let handle = calls.spawn(async move {
                                attempt(ec2.as_ref(), table.as_ref(), clock.as_ref(), &retry, &r).await
                            });
                            running.insert(handle.id(), row);
                        }
                    }
                    Err(e) => failure = Some(e),
                }
            }
            if calls.is_empty() {
                return match failure {
                    Some(e) => Err(e),
                    None => Ok(report),
                };
            }
            tokio::select! {
                joined = calls.join_next_with_id() => {
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
                    if let Err(e) = self.record(outcome).await {
                        if !e.is_transient() {
                            return Err(e);
                        }
                        failure.get_or_insert(e);
                    }
                }
                _ = heartbeat.tick() => {
                    let ids: Vec<i64> = running.values().map(|r| r.id).collect();
                    let renew = self.store.renew_effect_leases(&self.owner, &ids, self.lease);
                    match crate::store::deadline("renewing effect leases", self.store_deadline, renew).await {
                        Ok(held) if held.len() < ids.len() => {
                            let lost: Vec<i64> = ids.iter().copied().filter(|i| !held.contains(i)).collect();
                            tracing::warn!(
                                lost = lost.len(),
                                effects = ?lost,
                                "effect leases lost while their calls ran (another worker may run them too)"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!("renewing effect leases failed: {e}"),
                    }
                }
            }
        }
    }

    /// Drain now, then whenever `wake` fires or a retry falls due, until
    /// `shutdown`. A database that fails in passing is waited out (capped
    /// exponential backoff).
    ///
    /// # Errors
    ///
    /// A store failure that does not pass.
    pub async fn run(&self, wake: Arc<Notify>, shutdown: impl Future<Output = ()>) -> Result<(), StoreError> {
        tokio::pin!(shutdown);
        let mut backoff = crate::backoff::Backoff::store();
        loop {
            let wait = match self.drain_and_look().await {
                Ok(wait) => {
                    backoff.reset();
                    if let Some(l) = &self.liveness {
                        l.store_ok(self.clock.now());
                    }
                    wait
                }
                Err(e) if e.is_transient() => {
                    if let Some(l) = &self.liveness {
                        l.store_failed("effect executor", &e, self.clock.now());
                    }
                    backoff.next_delay()
                }
                Err(e) => return Err(e),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait.min(self.max_wait)) => {}
                _ = wake.notified() => {}
                _ = &mut shutdown => return Ok(()),
            }
        }
    }

    /// One drain, then how long until the next effect falls due.
    async fn drain_and_look(&self) -> Result<Duration, StoreError> {
        let r = self.drain().await?;
        if r.done + r.retried + r.failed > 0 {
            tracing::info!(done = r.done, retried = r.retried, failed = r.failed, "effects run");
        }
        let next =
            crate::store::deadline("the next effect", self.store_deadline, self.store.next_effect_attempt()).await?;
        Ok(match next {
            Some(at) => {
                Duration::from_micros(at.as_micros().saturating_sub(self.clock.now().as_micros()).max(0) as u64)
            }
            None => self.max_wait,
        })
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
