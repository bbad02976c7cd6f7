//! The orphan sweep: instances that outlived their meeting.
//!
//! The old Lambdas never looked for them, and neither does the outbox: a
//! meeting whose row named a wrong instance id ends with its real, tagged
//! instance still running. The sweep lists every pending or running instance
//! carrying the meeting tag (`DescribeInstances`, paged, filtered by tag key
//! and state) and judges each by its tag's meeting ([`judge`], pure):
//!
//! * the meeting ended more than `grace` ago → terminated through the tag
//!   guard, and recorded in the meeting's history;
//! * the meeting is still running, or ended within `grace` → left alone;
//! * spindown never saw the meeting → only reported in the sweep log, unless
//!   `unknown = "terminate"` and the instance was launched longer ago than
//!   `max_lifetime + grace`.
//!
//! Instances without the tag are never listed, so never touched. Every
//! instance terminated or reported is a line of the sweep log (`status`, the
//! console).

use std::sync::Arc;

use serde::Serialize;

use crate::clock::Clock;
use crate::inspect::MeetingStore;
use crate::meeting::history::{Cause, Chunk, Entry, Note, Outcome};
use crate::meeting::{InstanceId, Meeting, MeetingId};
use crate::outbox::{Ec2, EffectError, TaggedInstance};
use crate::store::{Changes, HistoryAppend, Store, StoreError, SweepAction, SweepFinding};
use crate::time::{Span, Timestamp};

/// What to do with an instance tagged for a meeting spindown never saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unknown {
    /// Only report it (the default).
    #[default]
    Report,
    /// Terminate it once it was launched longer ago than `max_lifetime + grace`.
    Terminate,
}

/// The sweep's settings.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// The meeting tag's key (`[guard] require_tag`, default `meeting_id`).
    pub tag: String,
    /// How long after a meeting ended its instances may still be seen running.
    pub grace: Span,
    pub unknown: Unknown,
    /// The policy's cap: no meeting lives longer (for unknown meetings).
    pub max_lifetime: Span,
    /// Decide and report, change nothing.
    pub dry_run: bool,
}

/// What the sweep makes of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// An orphan of a meeting that ended at `ended_at`.
    Orphan { ended_at: Timestamp },
    /// Tagged for a meeting that is still running.
    Running,
    /// The meeting ended less than `grace` ago: its own termination may still be on the way.
    WithinGrace,
    /// A meeting spindown never saw: report only.
    Unknown,
    /// A meeting spindown never saw, launched long enough ago to terminate (`unknown = "terminate"`).
    UnknownExpired,
}

/// Judge one instance tagged for `meeting` (`None`: never seen).
pub fn judge(meeting: Option<&Meeting>, launched_at: Option<Timestamp>, now: Timestamp, o: &SweepOptions) -> Judgement {
    match meeting {
        Some(m) => match m.ended {
            None => Judgement::Running,
            Some(e) if now.since(e.at) > o.grace => Judgement::Orphan { ended_at: e.at },
            Some(_) => Judgement::WithinGrace,
        },
        None => {
            let limit = Span::from_micros(o.max_lifetime.as_micros().saturating_add(o.grace.as_micros()));
            match (o.unknown, launched_at) {
                (Unknown::Terminate, Some(at)) if now.since(at) > limit => Judgement::UnknownExpired,
                _ => Judgement::Unknown,
            }
        }
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    /// Tagged instances pending or running.
    pub seen: usize,
    /// Of those, tagged for meetings still running or ended within the grace.
    pub left_alone: usize,
    /// Every instance terminated (or, in a dry run, that would be), reported, refused or failed.
    pub findings: Vec<SweepFinding>,
}

/// A sweep that could not run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("listing instances: {}", .0.message)]
    List(EffectError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sweep once.
///
/// # Errors
///
/// The instances cannot be listed, or the store fails. A failed termination
/// is a finding, not an error (the next sweep tries again).
pub async fn sweep(
    store: &Arc<dyn Store>,
    ec2: &Arc<dyn Ec2>,
    clock: &Arc<dyn Clock>,
    o: &SweepOptions,
) -> Result<SweepReport, SweepError> {
    let instances = ec2.tagged_instances(&o.tag).await.map_err(SweepError::List)?;
    let mut report = SweepReport { seen: instances.len(), ..SweepReport::default() };
    let now = clock.now();
    let mut history = Vec::new();
    for TaggedInstance { id, tag, launched_at } in instances {
        let meeting_id = MeetingId::new(tag.clone());
        let meeting = match &meeting_id {
            Some(mid) => store.meeting(mid).await?.map(|m| m.meeting),
            None => None,
        };
        let finding = |action, detail: String| SweepFinding {
            at: now,
            instance_id: id.to_string(),
            meeting_id: tag.clone(),
            launched_at,
            action,
            detail,
        };
        let judgement = judge(meeting.as_ref(), launched_at, now, o);
        let detail = match &judgement {
            Judgement::Running | Judgement::WithinGrace => {
                report.left_alone += 1;
                continue;
            }
            Judgement::Unknown => {
                report.findings.push(finding(SweepAction::Reported, "tagged for a meeting spindown never saw".into()));
                continue;
            }
            Judgement::Orphan { ended_at } => format!("meeting ended at {ended_at}, more than the grace ago"),
            Judgement::UnknownExpired => "meeting never seen; launched longer ago than max_lifetime + grace".into(),
        };
        if o.dry_run {
            report.findings.push(finding(SweepAction::WouldTerminate, detail));
            continue;
        }
        // Through the tag guard: the instance must carry the tag naming this meeting.
        let Some(mid) = &meeting_id else { continue };
        match ec2.terminate(mid, std::slice::from_ref(&id)).await {
            Ok(r) if r.terminated.contains(&id) || r.gone.contains(&id) => {
                report.findings.push(finding(SweepAction::Terminated, detail));
                if let (Some(m), Judgement::Orphan { ended_at }) = (&meeting, &judgement) {
                    history.push(swept_entry(m, &id, *ended_at, now));
                }
            }
            Ok(r) => {
                let why =
                    r.refused.iter().find(|(i, _)| *i == id).map_or("not terminated".to_string(), |(_, w)| w.clone());
                report.findings.push(finding(SweepAction::Refused, why));
            }
            Err(e) => report.findings.push(finding(SweepAction::Failed, e.message)),
        }
    }
    if !o.dry_run {
        if !history.is_empty() {
            let uow = store.begin().await?;
            uow.commit(Changes { history, ..Changes::default() }).await?;
        }
        store.record_sweep(&report.findings).await?;
    }
    Ok(report)
}

fn swept_entry(m: &Meeting, id: &InstanceId, ended_at: Timestamp, now: Timestamp) -> HistoryAppend {
    let entry = Entry {
        at: now,
        cause: Cause::Sweep,
        from: Some(m.state),
        to: Some(m.state),
        outcome: Outcome::EffectDone,
        reason: None,
        lateness: None,
        notes: vec![Note::SweptOrphan { id: id.clone(), ended_at }],
    };
    crate::meeting::stored::append(&m.id, std::iter::once(entry).collect::<Chunk>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meeting::{Ended, Reason};

    fn opts(unknown: Unknown) -> SweepOptions {
        SweepOptions {
            tag: "meeting_id".into(),
            grace: Span::from_mins(10),
            unknown,
            max_lifetime: Span::from_hours(4),
            dry_run: false,
        }
    }

    fn at(mins: i64) -> Timestamp {
        Timestamp::from_secs(1_800_000_000 + mins * 60)
    }

    #[test]
    fn ended_meetings_past_the_grace_are_orphans_others_are_left_alone() {
        let mut m = Meeting::new(MeetingId::new("m").unwrap(), at(0));
        assert_eq!(judge(Some(&m), None, at(500), &opts(Unknown::Report)), Judgement::Running);
        m.ended = Some(Ended { reason: Reason::NoShowTimeout, at: at(15) });
        assert_eq!(judge(Some(&m), None, at(20), &opts(Unknown::Report)), Judgement::WithinGrace);
        assert_eq!(judge(Some(&m), None, at(25), &opts(Unknown::Report)), Judgement::WithinGrace, "exactly the grace");
        assert_eq!(judge(Some(&m), None, at(26), &opts(Unknown::Report)), Judgement::Orphan { ended_at: at(15) });
    }

    #[test]
    fn unknown_meetings_are_reported_unless_configured_and_old_enough() {
        let o = opts(Unknown::Report);
        assert_eq!(judge(None, Some(at(0)), at(1000), &o), Judgement::Unknown);
        let o = opts(Unknown::Terminate);
        assert_eq!(judge(None, Some(at(0)), at(250), &o), Judgement::Unknown, "4h10m not yet passed");
        assert_eq!(judge(None, Some(at(0)), at(251), &o), Judgement::UnknownExpired);
        assert_eq!(judge(None, None, at(1000), &o), Judgement::Unknown, "no launch time: never terminated");
    }
}
