//! A meeting's story: one [`Entry`] per input applied to it and per effect outcome.
//!
//! Entries are data, not text: the cause, the state change, the outcome and
//! typed [`Note`]s that say what changed and why. They are rendered only when
//! read ([`Note`]'s `Display` gives the sentences `spindown show` prints), and
//! stored compactly.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::effect::EffectKind;
use super::ids::InstanceId;
use super::input::{CommandKind, InstanceSource};
use super::model::{Ended, EventName, Facts, Reason, State, TimerKind};
use crate::named::{join, names};
use crate::time::{Span, Timestamp};

/// One line of a meeting's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub at: Timestamp,
    pub cause: Cause,
    /// The state before; `None` when the input created the meeting, and for effect outcomes.
    pub from: Option<State>,
    /// The state after; `None` for effect outcomes (they do not move the machine).
    pub to: Option<State>,
    pub outcome: Outcome,
    /// The termination reason, when this entry terminated the meeting.
    pub reason: Option<Reason>,
    /// Timer fires: the fire instant minus the due instant.
    pub lateness: Option<Span>,
    pub notes: Vec<Note>,
}

/// What caused an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cause {
    /// A stream record applied.
    Record {
        event: EventName,
        event_id: Option<String>,
    },
    /// A stream record whose `eventID` this meeting had already applied.
    Duplicate {
        event: EventName,
        event_id: String,
    },
    Timer {
        kind: TimerKind,
        due: Timestamp,
    },
    Command(CommandKind),
    /// An effect attempt; `effect` is the outbox id (`None` for a dry run completed inline).
    Effect {
        kind: EffectKind,
        effect: Option<i64>,
    },
    /// The orphan sweep (`spindown sweep`, or the worker's recurring job).
    Sweep,
    /// An operator's action, and who took it (`console`).
    Operator {
        action: OperatorAction,
        by: String,
    },
}

names! {
    /// What an operator did outside the stream and the timers.
    pub OperatorAction ("operator action") {
        /// Re-queued a failed effect.
        Retry = "retry",
        /// Asked for the meeting to be terminated.
        Terminate = "terminate",
        /// Extended the meeting (`extend`).
        Extend = "extend",
        /// Held the meeting (`hold`).
        Hold = "hold",
        /// Released its hold (`release`).
        Release = "release",
    }
}

names! {
    /// The cause's family, as `show` and `--json` name it.
    pub CauseKind ("cause") {
        Record = "record",
        Duplicate = "duplicate",
        Timer = "timer",
        Command = "command",
        Effect = "effect",
        Sweep = "sweep",
        Operator = "operator",
    }
}

impl Cause {
    pub fn kind(&self) -> CauseKind {
        match self {
            Cause::Record { .. } => CauseKind::Record,
            Cause::Duplicate { .. } => CauseKind::Duplicate,
            Cause::Timer { .. } => CauseKind::Timer,
            Cause::Command(_) => CauseKind::Command,
            Cause::Effect { .. } => CauseKind::Effect,
            Cause::Sweep => CauseKind::Sweep,
            Cause::Operator { .. } => CauseKind::Operator,
        }
    }
}

impl fmt::Display for Cause {
    /// `record INSERT ev-1`, `timer safety_net due …`, `effect terminate #5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind();
        match self {
            Cause::Record { event, event_id } => {
                write!(f, "{kind} {event} {}", event_id.as_deref().unwrap_or("(no eventID)"))
            }
            Cause::Duplicate { event, event_id } => write!(f, "{kind} {event} {event_id}"),
            Cause::Timer { kind: timer, due } => write!(f, "{kind} {timer} due {due}"),
            Cause::Command(c) => write!(f, "{kind} {c}"),
            Cause::Effect { kind: effect, effect: Some(id) } => write!(f, "{kind} {effect} #{id}"),
            Cause::Effect { kind: effect, effect: None } => write!(f, "{kind} {effect}"),
            Cause::Sweep => write!(f, "{kind} orphans"),
            Cause::Operator { action, by } => write!(f, "{kind} {action} by {by}"),
        }
    }
}

names! {
    /// What an entry did.
    pub Outcome ("outcome") {
        Created = "created",
        Updated = "updated",
        Terminated = "terminated",
        /// Nothing changed (a duplicate, a record after termination, a stale timer, a late command).
        Ignored = "ignored",
        EffectDone = "effect_done",
        /// The attempt failed and will be retried.
        EffectRetry = "effect_retry",
        /// The attempt failed and the effect is `failed` until re-queued.
        EffectFailed = "effect_failed",
    }
}

/// A fact that changed, old value then new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FactChange {
    MeetTime(Option<Timestamp>, Option<Timestamp>),
    CreatedAt(Option<Timestamp>, Option<Timestamp>),
    Duration(Option<Span>, Option<Span>),
    Status(Option<String>, Option<String>),
    TeacherData(bool, bool),
    StudentData(bool, bool),
}

/// What happened, in a form that renders as a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Note {
    /// A new meeting, with what its image said.
    Created(Facts),
    Changed(FactChange),
    /// A valid instance id joined the meeting's instance set.
    Instance {
        id: InstanceId,
        source: InstanceSource,
    },
    /// An instance-id attribute that is not one, skipped.
    SkippedInstance {
        value: String,
        source: InstanceSource,
    },
    /// A record without an image: the facts stay.
    NoImage(EventName),
    Armed {
        kind: TimerKind,
        due: Timestamp,
    },
    Rearmed {
        kind: TimerKind,
        from: Timestamp,
        to: Timestamp,
    },
    /// Termination cancelled these pending timers.
    Cancelled(Vec<TimerKind>),
    RowDeleted,
    TerminatedElsewhere,
    /// Rule 7: both sides have data, judged at the record's event time.
    BothSides {
        event_time: Timestamp,
        past_start: Span,
    },
    LookingAgain,
    ByOperator,
    NoInstances,
    QueuedTerminate(Vec<InstanceId>),
    QueuedWriteBack(Reason),
    /// An input for a meeting that has already ended.
    AfterTermination(Ignored),
    /// `terminate` on a meeting that has already ended.
    AlreadyTerminated(Ended),
    /// A timer that is no longer pending (re-armed or cancelled since).
    StaleTimer {
        kind: TimerKind,
        due: Timestamp,
    },
    Duplicate {
        event_id: String,
    },
    // Effect outcomes.
    WouldTerminate(Vec<InstanceId>),
    TerminatedInstances(Vec<InstanceId>),
    /// `InvalidInstanceID.NotFound`: nothing to do.
    Gone(Vec<InstanceId>),
    /// The tag guard refused an instance.
    Refused {
        id: InstanceId,
        why: String,
    },
    WroteBack {
        reason: Reason,
        terminated_at: Timestamp,
    },
    WouldWriteBack {
        reason: Reason,
        terminated_at: Timestamp,
    },
    /// The write-back's condition failed: already written, or the row is gone.
    AlreadyWritten,
    /// A transient failure; the next attempt is at `retry_at`.
    AttemptFailed {
        attempt: i64,
        error: String,
        retry_at: Timestamp,
    },
    /// The last attempt failed; the effect waits for an operator to re-queue it.
    GaveUp {
        attempt: i64,
        error: String,
    },
    /// A note in words (history converted from an older database).
    Text(String),
    /// The orphan sweep found this instance, tagged for the meeting, still
    /// running after the meeting ended, and terminated it.
    SweptOrphan {
        id: InstanceId,
        ended_at: Timestamp,
    },
    /// `extend`: the end-of-life timer moved later (`by`: the command's
    /// `--by`, when it gave one instead of `--until`).
    Extended {
        kind: TimerKind,
        from: Timestamp,
        to: Timestamp,
        by: Option<Span>,
    },
    /// `hold`: until `until` no timer ends the meeting; it replaced a hold
    /// that would have ended at `replaced`.
    Held {
        until: Timestamp,
        replaced: Option<Timestamp>,
    },
    /// A timer fell due during a hold: instead of acting, `to` is armed at
    /// the hold's end.
    HeldOver {
        kind: TimerKind,
        due: Timestamp,
        to: TimerKind,
        until: Timestamp,
    },
    /// `release`: the hold that would have ended at `until` ends now; the
    /// timers it had moved are re-armed now.
    Released {
        until: Timestamp,
        rearmed: Vec<TimerKind>,
    },
}

/// What an input that came after the end was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ignored {
    Record(EventName),
    Schedule,
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

impl fmt::Display for FactChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FactChange::MeetTime(a, b) => write!(f, "meet_time {} → {}", opt(a), opt(b)),
            FactChange::CreatedAt(a, b) => write!(f, "created_at {} → {}", opt(a), opt(b)),
            FactChange::Duration(a, b) => write!(f, "duration {} → {}", opt(a), opt(b)),
            FactChange::Status(a, b) => write!(f, "status {} → {}", opt(a), opt(b)),
            FactChange::TeacherData(a, b) => write!(f, "teacher data {} → {}", yes(*a), yes(*b)),
            FactChange::StudentData(a, b) => write!(f, "student data {} → {}", yes(*a), yes(*b)),
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Created(facts) => {
                let mut parts = Vec::new();
                if let Some(t) = facts.meet_time {
                    parts.push(format!("meet_time {t}"));
                }
                if let Some(t) = facts.created_at {
                    parts.push(format!("created_at {t}"));
                }
                if let Some(d) = facts.duration {
                    parts.push(format!("duration {d}"));
                }
                if let Some(s) = &facts.status {
                    parts.push(format!("status {s}"));
                }
                if facts.teacher_data {
                    parts.push("teacher data".into());
                }
                if facts.student_data {
                    parts.push("student data".into());
                }
                write!(f, "created: {}", parts.join(", "))
            }
            Note::Changed(c) => c.fmt(f),
            Note::Instance { id, source } => write!(f, "instance {id} ({source})"),
            Note::SkippedInstance { value, source } => write!(
                f,
                "skipped instance id {value:?} from {source}: not i- followed by 8 or 17 lowercase hex digits"
            ),
            Note::NoImage(event) => write!(f, "{event} record carries no image: facts kept"),
            Note::Armed { kind, due } => write!(f, "armed {kind} timer for {due}"),
            Note::Rearmed { kind, from, to } => write!(f, "re-armed {kind} timer {from} → {to}"),
            Note::Cancelled(kinds) => write!(f, "cancelled pending timers: {}", join(kinds)),
            Note::RowDeleted => f.write_str("row deleted (REMOVE)"),
            Note::TerminatedElsewhere => f.write_str("row marked TERMINATED by someone else"),
            Note::BothSides { event_time, past_start } => {
                write!(f, "both sides have data and the event time {event_time} is {past_start} past the start")
            }
            Note::LookingAgain => f.write_str("in progress without session data: looking again later"),
            Note::ByOperator => f.write_str("terminated by an operator"),
            Note::NoInstances => f.write_str("no valid instance ids known: nothing to terminate"),
            Note::QueuedTerminate(ids) => write!(f, "queued terminate {}", join(ids)),
            Note::QueuedWriteBack(reason) => write!(f, "queued write-back {reason}"),
            Note::AfterTermination(Ignored::Record(event)) => {
                write!(f, "{event} record ignored: meeting already terminated")
            }
            Note::AfterTermination(Ignored::Schedule) => f.write_str("schedule ignored: meeting already terminated"),
            Note::AlreadyTerminated(e) => {
                write!(f, "terminate ignored: already terminated ({} at {})", e.reason, e.at)
            }
            Note::StaleTimer { kind, due } => write!(f, "{kind} timer due {due} ignored: no longer pending"),
            Note::Duplicate { event_id } => write!(f, "eventID {event_id} was already applied: duplicate ignored"),
            Note::WouldTerminate(ids) => write!(f, "would terminate {} (dry run)", join(ids)),
            Note::TerminatedInstances(ids) => write!(f, "terminated {}", join(ids)),
            Note::Gone(ids) => write!(f, "already gone (InvalidInstanceID.NotFound): {}", join(ids)),
            Note::Refused { id, why } => write!(f, "refused to terminate {id}: {why}"),
            Note::WroteBack { reason, terminated_at } => {
                write!(f, "wrote status=TERMINATED termination_reason={reason} terminated_at={terminated_at}")
            }
            Note::WouldWriteBack { reason, terminated_at } => write!(
                f,
                "would write status=TERMINATED termination_reason={reason} terminated_at={terminated_at} (dry run)"
            ),
            Note::AlreadyWritten => f.write_str("row already TERMINATED (or gone): nothing written"),
            Note::AttemptFailed { attempt, error, retry_at } => {
                write!(f, "attempt {attempt} failed: {error}; retrying at {retry_at}")
            }
            Note::GaveUp { attempt, error } => write!(f, "attempt {attempt} failed: {error}; effect marked failed"),
            Note::Text(text) => f.write_str(text),
            Note::SweptOrphan { id, ended_at } => write!(
                f,
                "instance {id} was still running after the meeting ended at {ended_at}: terminated by the orphan sweep"
            ),
            Note::Extended { kind, from, to, by: Some(by) } => {
                write!(f, "extended by {by}: {kind} timer {from} → {to} (never earlier from now on)")
            }
            Note::Extended { kind, from, to, by: None } => {
                write!(f, "extended until {to}: {kind} timer {from} → {to} (never earlier from now on)")
            }
            Note::Held { until, replaced: None } => {
                write!(f, "held until {until}: no timer ends the meeting before then")
            }
            Note::Held { until, replaced: Some(old) } => {
                write!(f, "held until {until} (replacing the hold until {old}): no timer ends the meeting before then")
            }
            Note::HeldOver { kind, due, to, until } if kind == to => {
                write!(f, "{kind} timer due {due} fell during the hold: re-armed at its end {until}")
            }
            Note::HeldOver { kind, due, to, until } => {
                write!(f, "{kind} timer due {due} fell during the hold: {to} at its end {until} instead")
            }
            Note::Released { until, rearmed } if rearmed.is_empty() => {
                write!(f, "released: the hold until {until} ends now; no timer had been moved")
            }
            Note::Released { until, rearmed } => {
                write!(f, "released: the hold until {until} ends now; re-armed now: {}", join(rearmed))
            }
        }
    }
}

pub use crate::machine::Chunk;
use crate::machine::CHUNK_ENTRIES;

/// A stored chunk that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("history chunk: {0}")]
pub struct ChunkError(String);

/// Decode a stored chunk: spindown's binary entries, or a JSON array of
/// entries (history converted from an older database).
///
/// # Errors
///
/// The bytes are neither.
pub fn decode(bytes: &[u8]) -> Result<Vec<Entry>, ChunkError> {
    match bytes.first() {
        Some(&CHUNK_ENTRIES) => crate::machine::decode_chunk(bytes).map_err(ChunkError),
        Some(b'[') => serde_json::from_slice(bytes).map_err(|e| ChunkError(e.to_string())),
        _ => Err(ChunkError("unknown encoding".into())),
    }
}
