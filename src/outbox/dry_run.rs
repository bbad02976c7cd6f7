//! The dry run: a port that calls nothing and says what it would have done.
//!
//! `replay` completes its effects this way inside the unit of work that
//! queued them ([`entry`]); [`DryRun`] is the same as a port, for an executor.

use super::{BoxFuture, Ec2, EffectError, MeetingTable, TerminateReport, WriteBackOutcome};
use crate::meeting::history::{Cause, Entry, Note, Outcome};
use crate::meeting::{Effect, InstanceId, MeetingId, Reason};
use crate::time::Timestamp;

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
        _: Timestamp,
    ) -> BoxFuture<'a, Result<WriteBackOutcome, EffectError>> {
        Box::pin(async { Ok(WriteBackOutcome::DryRun) })
    }
}

/// What a dry run of `effect` says it would have done.
pub fn notes(effect: &Effect) -> Vec<Note> {
    match effect {
        Effect::Terminate { instances } => vec![Note::WouldTerminate(instances.clone())],
        Effect::WriteBack { reason, terminated_at } => {
            vec![Note::WouldWriteBack { reason: *reason, terminated_at: *terminated_at }]
        }
    }
}

/// The history entry of `effect` completed by a dry run at `at`.
pub fn entry(effect: &Effect, at: Timestamp) -> Entry {
    Entry {
        at,
        cause: Cause::Effect { kind: effect.kind(), effect: None },
        from: None,
        to: None,
        outcome: Outcome::EffectDone,
        reason: None,
        lateness: None,
        notes: notes(effect),
    }
}
