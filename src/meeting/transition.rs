//! The rules: [`transition`] applies one input to a meeting — pure and synchronous.
//!
//! It takes the meeting as stored (or `None` for an unknown one), one [`Input`],
//! the engine instant and the [`Policy`], and returns a [`Step`]: the new
//! meeting, the effects to run, the timer changes and the history notes, as
//! data. It does no I/O; the engine persists what it returns in one
//! transaction. The rules are those of `spec/meeting-workflow.md`; the
//! comments name them.

use super::effect::Effect;
use super::history::{FactChange, Ignored, Note, Outcome};
use super::ids::{InstanceId, MeetingId};
use super::input::{Change, Command, Extend, Input, Rejection, SeenInstance};
use super::model::{Ended, EventName, Facts, Hold, Meeting, Reason, State, TimerKind};
use super::policy::{Mode, Policy};
use crate::time::Timestamp;

/// A change to a meeting's pending timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerChange {
    Arm { kind: TimerKind, due: Timestamp },
    Disarm { kind: TimerKind },
}

/// The result of one transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub meeting: Meeting,
    /// The state before; `None` when the input created the meeting.
    pub from: Option<State>,
    /// `Created`, `Updated`, `Terminated` or `Ignored`.
    pub outcome: Outcome,
    pub effects: Vec<Effect>,
    pub timers: Vec<TimerChange>,
    /// What changed and why, for the history.
    pub notes: Vec<Note>,
}

/// Whether a record can be applied at all: a record for an unknown meeting
/// must give a start (rules 1 and 4). The engine asks before it moves the
/// clock (a dead-lettered record does not); [`transition`] asks again.
pub fn admits(meeting: Option<&Meeting>, change: &Change) -> Result<(), Rejection> {
    match meeting {
        Some(_) => Ok(()),
        None => can_create(change),
    }
}

/// Whether a record can create a meeting: its image must give a start
/// (`meet_time`, else `created_at`).
///
/// # Errors
///
/// [`Rejection::NoStart`] when it gives none.
pub fn can_create(change: &Change) -> Result<(), Rejection> {
    match change.image.as_ref().and_then(|i| i.start()) {
        Some(_) => Ok(()),
        None => Err(Rejection::NoStart(change.meeting_id.clone())),
    }
}

/// Apply one input to a meeting at instant `now`.
///
/// # Errors
///
/// [`Rejection::NoStart`] for a record that would create a meeting without a
/// start; [`Rejection::UnknownMeeting`] for a timer or `terminate` on a
/// meeting that does not exist.
pub fn transition(
    meeting: Option<&Meeting>,
    input: &Input,
    now: Timestamp,
    policy: &Policy,
) -> Result<Step, Rejection> {
    step(meeting.cloned(), input, now, policy).map_err(|(rejection, _)| rejection)
}

/// [`transition`] on a meeting the caller gives up (an engine that holds it
/// saves a copy per input). A rejected input hands the meeting back.
///
/// # Errors
///
/// As [`transition`], with the meeting as it was given.
// The refusal is smaller than the `Step` it replaces: boxing it would not
// shrink the result.
#[allow(clippy::result_large_err)]
pub fn step(
    meeting: Option<Meeting>,
    input: &Input,
    now: Timestamp,
    policy: &Policy,
) -> Result<Step, (Rejection, Option<Meeting>)> {
    match input {
        Input::Record(change) => record(meeting, change, now, policy),
        Input::Timer { kind, due } => match meeting {
            Some(m) => Ok(timer(m, *kind, *due, now, policy)),
            None => Err((Rejection::UnknownMeeting, None)),
        },
        Input::Command(cmd) => command(meeting, cmd, now, policy),
    }
}

struct Builder {
    meeting: Meeting,
    from: Option<State>,
    effects: Vec<Effect>,
    timers: Vec<TimerChange>,
    notes: Vec<Note>,
}

impl Builder {
    fn new(meeting: Meeting, from: Option<State>) -> Self {
        Builder { meeting, from, effects: Vec::new(), timers: Vec::new(), notes: Vec::new() }
    }

    fn note(&mut self, note: Note) {
        self.notes.push(note);
    }

    fn forget_change(&mut self, kind: TimerKind) {
        self.timers
            .retain(|c| !matches!(c, TimerChange::Arm { kind: k, .. } | TimerChange::Disarm { kind: k } if *k == kind));
    }

    fn arm(&mut self, kind: TimerKind, due: Timestamp) {
        match self.meeting.timers.slot(kind).replace(due) {
            Some(old) if old == due => return,
            Some(old) => self.note(Note::Rearmed { kind, from: old, to: due }),
            None => self.note(Note::Armed { kind, due }),
        }
        self.forget_change(kind);
        self.timers.push(TimerChange::Arm { kind, due });
    }

    fn disarm(&mut self, kind: TimerKind) {
        if self.meeting.timers.slot(kind).take().is_some() {
            self.forget_change(kind);
            self.timers.push(TimerChange::Disarm { kind });
        }
    }

    /// Termination: state, cancel every pending timer, queue the effects.
    fn terminate(&mut self, reason: Reason, now: Timestamp) {
        let cancelled: Vec<TimerKind> = self.meeting.timers.pending().map(|(k, _)| k).collect();
        for &kind in &cancelled {
            self.disarm(kind);
        }
        self.meeting.ended = Some(Ended { reason, at: now });
        self.meeting.state = State::Terminated;
        self.meeting.hold = None;
        if !cancelled.is_empty() {
            self.note(Note::Cancelled(cancelled));
        }
        if self.meeting.instances.is_empty() {
            self.note(Note::NoInstances);
        } else {
            let instances: Vec<InstanceId> = self.meeting.instances.iter().cloned().collect();
            self.note(Note::QueuedTerminate(instances.clone()));
            self.effects.push(Effect::Terminate { instances });
        }
        if reason.writes_back() {
            self.note(Note::QueuedWriteBack(reason));
            self.effects.push(Effect::WriteBack { reason, terminated_at: now });
        }
    }

    /// Finish a step that was applied: `Terminated` if it ended the meeting,
    /// `Created` for a new one, else `Updated`.
    fn finish_live(self) -> Step {
        let outcome = if self.meeting.ended.is_some() {
            Outcome::Terminated
        } else if self.from.is_none() {
            Outcome::Created
        } else {
            Outcome::Updated
        };
        self.finish(outcome)
    }

    fn finish(self, outcome: Outcome) -> Step {
        let mut meeting = self.meeting;
        if outcome != Outcome::Ignored {
            meeting.version += 1;
        }
        Step { meeting, from: self.from, outcome, effects: self.effects, timers: self.timers, notes: self.notes }
    }
}

/// The due instant of a start-relative timer for this meeting, if it has a
/// start; an extended meeting's end-of-life timer is never due before its
/// extension.
fn start_relative_due(kind: TimerKind, m: &Meeting, policy: &Policy) -> Option<Timestamp> {
    let due = start_relative(kind, &m.facts, policy)?;
    Some(match (kind, m.extended_until) {
        (TimerKind::Cap | TimerKind::Fixed, Some(floor)) => due.max(floor),
        _ => due,
    })
}

fn start_relative(kind: TimerKind, facts: &Facts, policy: &Policy) -> Option<Timestamp> {
    let start = facts.start()?;
    Some(match kind {
        TimerKind::SafetyNet => start.saturating_add(policy.safety_net_delay),
        TimerKind::Cap => {
            let lifetime = start.saturating_add(policy.max_lifetime);
            match facts.duration {
                Some(d) => lifetime.min(start.saturating_add(d).saturating_add(policy.overrun_grace)),
                None => lifetime,
            }
        }
        TimerKind::Fixed => start.saturating_add(policy.fixed_duration),
        TimerKind::Recheck => return None,
    })
}

/// Rules 3–8 for a stream record (rules 1–2 are the decoder's and the engine's).
// The refusal is smaller than the `Step` it replaces: boxing it would not
// shrink the result.
#[allow(clippy::result_large_err)]
fn record(
    meeting: Option<Meeting>,
    change: &Change,
    now: Timestamp,
    policy: &Policy,
) -> Result<Step, (Rejection, Option<Meeting>)> {
    if let Err(rejection) = admits(meeting.as_ref(), change) {
        return Err((rejection, meeting));
    }
    let t = change.event_time.unwrap_or(now);
    let image = change.image.as_ref();
    let mut b = match open(meeting, &change.meeting_id, now) {
        Opened::Live(b) => b,
        // Rule 3: a terminated meeting only notes the record.
        Opened::Terminated(mut b) => {
            b.note(Note::AfterTermination(Ignored::Record(change.event_name)));
            return Ok(b.finish(Outcome::Ignored));
        }
    };
    let created = b.from.is_none();

    // Facts: flags and status from the latest image; times only when present.
    match image {
        Some(image) => {
            let old = b.meeting.facts.clone();
            let f = &mut b.meeting.facts;
            f.meet_time = image.meet_time.or(f.meet_time);
            f.created_at = image.created_at.or(f.created_at);
            f.duration = image.duration.or(f.duration);
            f.status.clone_from(&image.status);
            f.teacher_data = image.teacher_data;
            f.student_data = image.student_data;
            describe_facts(&mut b, &old, created);
        }
        None => b.note(Note::NoImage(change.event_name)),
    }
    absorb_instances(&mut b, &change.instance_ids);
    follow_timers(&mut b, created, policy);

    let derived = b.meeting.derived_state();
    if change.event_name == EventName::Remove {
        // Rule 5.
        b.note(Note::RowDeleted);
        b.terminate(Reason::Cancelled, now);
    } else if image.and_then(|i| i.status.as_deref()) == Some("TERMINATED") {
        // Rule 6.
        b.note(Note::TerminatedElsewhere);
        b.terminate(Reason::External, now);
    } else if let (Mode::Smart, State::Complete, Some(start)) = (policy.mode, derived, b.meeting.facts.start()) {
        // Rule 7 — judged at the record's own event time.
        if t.since(start) >= policy.min_success_duration {
            b.note(Note::BothSides { event_time: t, past_start: t.since(start) });
            b.terminate(Reason::Success, now);
        } else {
            b.meeting.state = derived;
        }
    } else {
        // Rule 8.
        b.meeting.state = derived;
    }
    Ok(b.finish_live())
}

enum Opened {
    Live(Builder),
    Terminated(Builder),
}

/// Load the meeting for a step, or create it (rule 4; [`admits`] has checked it may be).
fn open(meeting: Option<Meeting>, id: &MeetingId, now: Timestamp) -> Opened {
    match meeting {
        Some(m) if m.state == State::Terminated => Opened::Terminated(Builder::new(m, Some(State::Terminated))),
        Some(m) => {
            let from = Some(m.state);
            Opened::Live(Builder::new(m, from))
        }
        None => Opened::Live(Builder::new(Meeting::new(id.clone(), now), None)),
    }
}

/// Instance ids accumulate; invalid ones are noted and skipped.
fn absorb_instances(b: &mut Builder, seen: &[SeenInstance]) {
    for s in seen {
        match InstanceId::parse(&s.value) {
            Some(id) => {
                if b.meeting.instances.insert(id.clone()) {
                    b.note(Note::Instance { id, source: s.source });
                }
            }
            None => b.note(Note::SkippedInstance { value: s.value.clone(), source: s.source }),
        }
    }
}

/// A new meeting arms its start-relative timers; a known one's pending
/// start-relative timers follow a changed start or declared duration.
/// Re-check timers are never moved.
fn follow_timers(b: &mut Builder, created: bool, policy: &Policy) {
    let kinds: &[TimerKind] = match (created, policy.mode) {
        (true, Mode::Smart) => &[TimerKind::SafetyNet, TimerKind::Cap],
        (true, Mode::Fixed) => &[TimerKind::Fixed],
        (false, _) => &[TimerKind::SafetyNet, TimerKind::Cap, TimerKind::Fixed],
    };
    for &kind in kinds {
        if created || b.meeting.timers.get(kind).is_some() {
            if let Some(due) = start_relative_due(kind, &b.meeting, policy) {
                b.arm(kind, due);
            }
        }
    }
}

fn describe_facts(b: &mut Builder, old: &Facts, created: bool) {
    if created {
        // Only what the image says (the history is kept for every input: it stays short).
        let facts = b.meeting.facts.clone();
        b.note(Note::Created(facts));
        return;
    }
    let new = &b.meeting.facts;
    let mut changes = Vec::new();
    if old.meet_time != new.meet_time {
        changes.push(FactChange::MeetTime(old.meet_time, new.meet_time));
    }
    if old.created_at != new.created_at {
        changes.push(FactChange::CreatedAt(old.created_at, new.created_at));
    }
    if old.duration != new.duration {
        changes.push(FactChange::Duration(old.duration, new.duration));
    }
    if old.status != new.status {
        changes.push(FactChange::Status(old.status.clone(), new.status.clone()));
    }
    if old.teacher_data != new.teacher_data {
        changes.push(FactChange::TeacherData(old.teacher_data, new.teacher_data));
    }
    if old.student_data != new.student_data {
        changes.push(FactChange::StudentData(old.student_data, new.student_data));
    }
    b.notes.extend(changes.into_iter().map(Note::Changed));
}

/// The safety-net, re-check, cap and fixed timers.
fn timer(m: Meeting, kind: TimerKind, due: Timestamp, now: Timestamp, policy: &Policy) -> Step {
    let state = m.state;
    let stale = state == State::Terminated || m.timers.get(kind) != Some(due);
    let mut b = Builder::new(m, Some(state));
    if stale {
        b.note(Note::StaleTimer { kind, due });
        return b.finish(Outcome::Ignored);
    }
    b.disarm(kind);
    if let Some(until) = b.meeting.held_until().filter(|&u| now < u) {
        // A hold: no timer ends the meeting before its end. The end-of-life
        // timer waits for it; a safety net or re-check looks again then.
        let to = match kind {
            TimerKind::Cap | TimerKind::Fixed => kind,
            TimerKind::SafetyNet | TimerKind::Recheck => TimerKind::Recheck,
        };
        b.note(Note::HeldOver { kind, due, to, until });
        b.arm(to, until);
        if let Some(h) = b.meeting.hold.as_mut() {
            if !h.moved.contains(&to) {
                h.moved.push(to);
            }
        }
        return b.finish_live();
    }
    match (kind, state) {
        (TimerKind::Cap, _) => b.terminate(Reason::MaxLifetime, now),
        (TimerKind::Fixed, _) => b.terminate(Reason::FixedDuration, now),
        (_, State::Scheduled) => b.terminate(Reason::NoShowTimeout, now),
        (_, State::Partial) => b.terminate(Reason::PartialNoShowTimeout, now),
        (_, State::Complete) => b.terminate(Reason::FifteenMinSuccess, now),
        (_, State::InProgress) => {
            b.note(Note::LookingAgain);
            b.arm(TimerKind::Recheck, now.saturating_add(policy.keepalive_recheck));
        }
        (_, State::Terminated) => {
            // Checked above: a terminated meeting has no pending timer.
            b.note(Note::StaleTimer { kind, due });
            return b.finish(Outcome::Ignored);
        }
    }
    b.finish_live()
}

// The refusal is smaller than the `Step` it replaces: boxing it would not
// shrink the result.
#[allow(clippy::result_large_err)]
fn command(
    meeting: Option<Meeting>,
    cmd: &Command,
    now: Timestamp,
    policy: &Policy,
) -> Result<Step, (Rejection, Option<Meeting>)> {
    match cmd {
        Command::Terminate => {
            let Some(m) = meeting else { return Err((Rejection::UnknownMeeting, None)) };
            let ended = m.ended;
            let from = Some(m.state);
            let mut b = Builder::new(m, from);
            if let Some(ended) = ended {
                b.note(Note::AlreadyTerminated(ended));
                return Ok(b.finish(Outcome::Ignored));
            }
            b.note(Note::ByOperator);
            b.terminate(Reason::Manual, now);
            Ok(b.finish_live())
        }
        Command::Schedule { id, meet_time, instances, duration } => {
            let mut b = match open(meeting, id, now) {
                Opened::Live(b) => b,
                Opened::Terminated(mut b) => {
                    b.note(Note::AfterTermination(Ignored::Schedule));
                    return Ok(b.finish(Outcome::Ignored));
                }
            };
            let created = b.from.is_none();
            let old = b.meeting.facts.clone();
            b.meeting.facts.meet_time = Some(*meet_time);
            b.meeting.facts.duration = duration.or(b.meeting.facts.duration);
            describe_facts(&mut b, &old, created);
            absorb_instances(&mut b, instances);
            follow_timers(&mut b, created, policy);
            b.meeting.state = b.meeting.derived_state();
            Ok(b.finish_live())
        }
        Command::Extend(how) => {
            let m = operable(meeting, "extend")?;
            // The end-of-life timer the meeting has (the policy's, if neither is pending).
            let kind = match (m.timers.cap, m.timers.fixed, policy.mode) {
                (Some(_), _, _) | (None, None, Mode::Smart) => TimerKind::Cap,
                (None, Some(_), _) | (None, None, Mode::Fixed) => TimerKind::Fixed,
            };
            let Some(due) = m.timers.get(kind) else {
                let why = format!("meeting {} has no pending {kind} timer to extend", m.id);
                return Err((Rejection::Refused(why), Some(m)));
            };
            let (to, by) = match *how {
                Extend::Until(t) => (t, None),
                Extend::By(d) => (due.saturating_add(d), Some(d)),
            };
            let refuse = |why: String, m: Meeting| Err((Rejection::Refused(why), Some(m)));
            if to <= now {
                return refuse(format!("extend to {to} is not after now ({now}): nothing changed"), m);
            }
            if to <= due {
                return refuse(
                    format!(
                        "extend to {to} is not after the current end ({kind} timer due {due}): an extend never shortens a meeting"
                    ),
                    m,
                );
            }
            if to > due.saturating_add(MAX_EXTEND) {
                return refuse(
                    format!("extend to {to} is more than 7 days after the current end ({kind} timer due {due})"),
                    m,
                );
            }
            let from = Some(m.state);
            let mut b = Builder::new(m, from);
            b.note(Note::Extended { kind, from: due, to, by });
            b.arm(kind, to);
            b.meeting.extended_until = Some(b.meeting.extended_until.map_or(to, |e| e.max(to)));
            if let Some(h) = b.meeting.hold.as_mut() {
                h.moved.retain(|k| *k != kind);
            }
            Ok(b.finish_live())
        }
        Command::Hold { until } => {
            let m = operable(meeting, "hold")?;
            let until = *until;
            if until <= now {
                return Err((
                    Rejection::Refused(format!("hold until {until} is not after now ({now}): nothing changed")),
                    Some(m),
                ));
            }
            if until > now.saturating_add(MAX_HOLD) {
                return Err((
                    Rejection::Refused(format!(
                        "hold until {until} is more than 24 h after now ({now}): nothing changed"
                    )),
                    Some(m),
                ));
            }
            let from = Some(m.state);
            let mut b = Builder::new(m, from);
            let old = b.meeting.hold.take();
            let replaced = old.as_ref().map(|h| h.until).filter(|&u| now < u);
            b.note(Note::Held { until, replaced });
            // Timers the replaced hold moved to its end follow the new end.
            let mut moved = Vec::new();
            if let Some(h) = old {
                for k in h.moved {
                    if b.meeting.timers.get(k) == Some(h.until) {
                        b.arm(k, until);
                        moved.push(k);
                    }
                }
            }
            b.meeting.hold = Some(Hold { until, moved });
            Ok(b.finish_live())
        }
        Command::Release => {
            let m = operable(meeting, "release")?;
            let Some(until) = m.held_until().filter(|&u| now < u) else {
                let why = match m.held_until() {
                    Some(u) => format!("meeting {} is not held: its hold ended at {u}", m.id),
                    None => format!("meeting {} is not held", m.id),
                };
                return Err((Rejection::Refused(why), Some(m)));
            };
            let from = Some(m.state);
            let mut b = Builder::new(m, from);
            let hold = b.meeting.hold.take().expect("held");
            let rearmed: Vec<TimerKind> =
                hold.moved.into_iter().filter(|&k| b.meeting.timers.get(k) == Some(until)).collect();
            b.note(Note::Released { until, rearmed: rearmed.clone() });
            for k in rearmed {
                b.arm(k, now);
            }
            Ok(b.finish_live())
        }
    }
}

/// How far past the current end an extend may go.
const MAX_EXTEND: crate::time::Span = crate::time::Span::from_hours(7 * 24);

/// How far past now a hold may go.
const MAX_HOLD: crate::time::Span = crate::time::Span::from_hours(24);

/// A meeting an operator command may change: it exists and has not ended.
#[allow(clippy::result_large_err)]
fn operable(meeting: Option<Meeting>, what: &str) -> Result<Meeting, (Rejection, Option<Meeting>)> {
    match meeting {
        None => Err((Rejection::UnknownMeeting, None)),
        Some(m) => match m.ended {
            Some(e) => {
                let why = format!("meeting {} was terminated at {} ({}): nothing to {what}", m.id, e.at, e.reason);
                Err((Rejection::Refused(why), Some(m)))
            }
            None => Ok(m),
        },
    }
}

#[cfg(test)]
#[path = "transition_tests.rs"]
mod tests;
