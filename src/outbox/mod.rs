//! Side effects after commit: the ports, the executor, the dry run.
//!
//! A termination's effects are one outbox row, written in the same unit of
//! work as the transition, and run after it commits, at least once: a row in
//! flight when the process dies is still `pending` and runs again once its
//! lease expires. Both effects are idempotent (terminating a terminated
//! instance succeeds; the write-back is conditional), so "at least once" is
//! "exactly once" in effect.
//!
//! * [`Ec2`] and [`MeetingTable`] — the ports (the AWS adapters implement them).
//! * [`Executor`] — claims due rows, runs their parts in order, retries with
//!   backoff, keeps failures visible.
//! * [`dry_run`] — the port that calls nothing, and the history it leaves.
//!
//! The executor knows effects and ports, not the meeting's rules.

pub mod dry_run;
mod executor;

use serde::Serialize;

pub use executor::{ExecReport, Executor, RetryPolicy, CONCURRENCY};

use crate::meeting::{InstanceId, MeetingId, Reason};
use crate::time::Timestamp;

pub use crate::BoxFuture;

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

    /// Every pending or running instance carrying the tag `key` (any value),
    /// for the orphan sweep. A port that cannot list instances says so.
    fn tagged_instances<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<TaggedInstance>, EffectError>> {
        let _ = key;
        Box::pin(async { Err(EffectError { transient: false, message: "this EC2 port cannot list instances".into() }) })
    }
}

/// A pending or running instance found by its meeting tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedInstance {
    pub id: InstanceId,
    /// The tag's value: the meeting it was launched for.
    pub tag: String,
    pub launched_at: Option<Timestamp>,
}

/// The meetings table, as much of it as spindown uses.
pub trait MeetingTable: Send + Sync + 'static {
    /// `SET status = TERMINATED, termination_reason, terminated_at` if not yet TERMINATED.
    fn write_back<'a>(
        &'a self,
        meeting: &'a MeetingId,
        reason: Reason,
        terminated_at: Timestamp,
    ) -> BoxFuture<'a, Result<WriteBackOutcome, EffectError>>;
}
