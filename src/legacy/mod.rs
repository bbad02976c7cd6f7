//! The old system as a second pure model: the two AWS Lambdas as written.
//!
//! `spindown whatif --legacy` runs recorded stream records through this
//! machine to show what the old *safety net* (an EventBridge one-shot at
//! `meet_time + 15 min`) and *terminator* (a DynamoDB Streams trigger) would
//! have done — and what they leaked. The rules are "The `legacy` model" of
//! `spec/whatif.md`; the comments name them. Like
//! [`meeting::step`](crate::meeting::step) it is pure: a meeting and one input
//! in, the new meeting (and the one timer a first record arms) out.
//!
//! What the Lambdas did differently from the engine, and this model keeps:
//! * a side "has data" when its attribute is *present*, `{"NULL": true}`
//!   included (`'teacher_session_data' in new_image`);
//! * the safety net is armed once, at the start known when the meeting is
//!   first seen, and never moved or re-armed;
//! * an `IN_PROGRESS` meeting without data at the safety net is never looked
//!   at again by the net, and a deleted row is never acted on: their
//!   instances keep running.

use crate::machine::Machine;
use crate::meeting::{workflow, Change, Ended, EventName, Input, Reason, Rejection, TimerKind};
use crate::time::{Span, Timestamp};

/// The EventBridge one-shot: `at(meet_time + 15 min)`.
pub const SAFETY_NET_DELAY: Span = Span::from_mins(15);
/// The terminator's "15 minutes or more since `meet_time`".
pub const MIN_SUCCESS_DURATION: Span = Span::from_mins(15);

/// What the Lambdas could know of a meeting: the latest image's data
/// attributes and status, whether the row is gone, and how it ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegacyMeeting {
    /// `teacher_session_data` is present in the latest image.
    pub teacher: bool,
    /// `student_session_data` is present in the latest image.
    pub student: bool,
    /// The latest image's status is `IN_PROGRESS`.
    pub in_progress: bool,
    /// The latest accepted record is a `REMOVE`: the safety net finds no item.
    pub removed: bool,
    /// The one-shot, while it has not fired.
    pub net: Option<Timestamp>,
    pub ended: Option<Ended>,
}

/// What one record did to a meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyStep {
    pub meeting: LegacyMeeting,
    /// The safety net this record armed (only a meeting's first record arms one).
    pub safety_net: Option<Timestamp>,
}

/// Apply an accepted, non-duplicate record at `now` (the clock after the
/// record moved it). `meeting` is `None` when this is the meeting's first
/// accepted record; such a record gives a start (records that do not are
/// dead letters before they get here).
pub fn record(meeting: Option<LegacyMeeting>, change: &Change, now: Timestamp) -> LegacyStep {
    let first = meeting.is_none();
    let mut m = meeting.unwrap_or_default();
    // An image replaces the data flags and status; a record without one keeps them.
    if let Some(img) = &change.image {
        m.teacher = img.teacher_attr;
        m.student = img.student_attr;
        m.in_progress = img.status.as_deref() == Some("IN_PROGRESS");
    }
    m.removed = change.event_name == EventName::Remove;

    // Rule 1: the first record schedules the one-shot at the start known then.
    let safety_net = if first {
        change.image.as_ref().and_then(|i| i.start()).map(|s| s.saturating_add(SAFETY_NET_DELAY))
    } else {
        None
    };
    if safety_net.is_some() {
        m.net = safety_net;
    }

    if m.ended.is_none() {
        let img = change.image.as_ref();
        // Rule 2: the terminator — MODIFY, both attributes present, 15 minutes past the
        // NewImage's own start (meet_time, else created_at), by the record's event time.
        if change.event_name == EventName::Modify {
            if let Some(img) = img.filter(|i| i.teacher_attr && i.student_attr) {
                let t = change.event_time.unwrap_or(now);
                // A NewImage with neither time: the Lambda raises; skipped.
                if img.start().is_some_and(|start| t.since(start) >= MIN_SUCCESS_DURATION) {
                    m.ended = Some(Ended { reason: Reason::Success, at: now });
                }
            }
        }
        // Rule 3: someone else marked the row TERMINATED (never from a REMOVE).
        if m.ended.is_none()
            && change.event_name != EventName::Remove
            && img.and_then(|i| i.status.as_deref()) == Some("TERMINATED")
        {
            m.ended = Some(Ended { reason: Reason::External, at: now });
        }
    }
    LegacyStep { meeting: m, safety_net }
}

/// The safety net fires at `now`.
pub fn safety_net(meeting: LegacyMeeting, now: Timestamp) -> LegacyMeeting {
    let mut m = meeting;
    m.net = None;
    if m.ended.is_some() || m.removed {
        // Already ended, or the row is gone: the Lambda finds nothing to do.
        return m;
    }
    let reason = match (m.teacher, m.student) {
        // IN_PROGRESS without data: nothing, and the net never looks again.
        (false, false) if m.in_progress => return m,
        (false, false) => Reason::NoShowTimeout,
        (true, true) => Reason::FifteenMinSuccess,
        _ => Reason::PartialNoShowTimeout,
    };
    m.ended = Some(Ended { reason, at: now });
    m
}

/// The two Lambdas as a [`Machine`]: records move a [`LegacyMeeting`], its
/// one safety net fires once. What it admits and how it recognises a
/// redelivered record are the engine's (a record of a new meeting must give
/// a start; `eventID`s once per meeting), so every `whatif` model sees the
/// same records; operator commands did not exist and are ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct LegacyWorkflow;

impl Machine for LegacyWorkflow {
    type State = LegacyMeeting;
    type Input = Input;
    type Timer = TimerKind;
    type Step = LegacyMeeting;
    type End = Ended;
    type Rejection = Rejection;

    fn dedupe_key(input: &Input) -> Option<&str> {
        workflow::event_id(input)
    }

    fn creates(&self, input: &Input) -> Result<(), Rejection> {
        workflow::creates(input)
    }

    fn timer_input(&self, kind: TimerKind, due: Timestamp) -> Input {
        Input::Timer { kind, due }
    }

    fn step(
        &self,
        state: Option<LegacyMeeting>,
        input: &Input,
        now: Timestamp,
    ) -> Result<LegacyMeeting, (Rejection, Option<LegacyMeeting>)> {
        match (input, state) {
            (Input::Record(change), state) => Ok(record(state, change, now).meeting),
            (Input::Timer { .. }, Some(m)) => Ok(safety_net(m, now)),
            (Input::Command(_), Some(m)) => Ok(m),
            (_, None) => Err((Rejection::UnknownMeeting, None)),
        }
    }

    fn state(step: LegacyMeeting) -> LegacyMeeting {
        step
    }

    fn timers(state: &LegacyMeeting, armed: &mut Vec<(TimerKind, Timestamp)>) {
        if state.ended.is_none() {
            armed.extend(state.net.map(|due| (TimerKind::SafetyNet, due)));
        }
    }

    fn end(state: &LegacyMeeting) -> Option<Ended> {
        state.ended
    }
}

#[cfg(test)]
mod tests;
