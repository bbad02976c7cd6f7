//! The meeting as a [`Machine`]: the rules of `spec/meeting-workflow.md`
//! ([`step`]) under one [`Policy`], as every runtime runs them — the durable
//! engine, `replay`, and `whatif`'s and `tune`'s policy models.

use super::input::{Input, Rejection};
use super::model::{Ended, Meeting, TimerKind};
use super::policy::Policy;
use super::transition::{can_create, step, Step};
use crate::machine::Machine;
use crate::time::Timestamp;

/// The meeting workflow under a policy.
#[derive(Debug, Clone, Default)]
pub struct MeetingWorkflow {
    pub policy: Policy,
}

impl MeetingWorkflow {
    pub fn new(policy: Policy) -> Self {
        MeetingWorkflow { policy }
    }
}

/// A stream record's `eventID`: the dedupe key of every machine that reads
/// the meetings table's stream.
pub fn event_id(input: &Input) -> Option<&str> {
    match input {
        Input::Record(change) => change.event_id.as_deref(),
        _ => None,
    }
}

/// Whether an input can create a meeting: a record whose image gives a start
/// (rules 1 and 4); a timer or an operator command needs a meeting that exists.
///
/// # Errors
///
/// Why it cannot.
pub fn creates(input: &Input) -> Result<(), Rejection> {
    match input {
        Input::Record(change) => can_create(change),
        _ => Err(Rejection::UnknownMeeting),
    }
}

impl Machine for MeetingWorkflow {
    type State = Meeting;
    type Input = Input;
    type Timer = TimerKind;
    type Step = Step;
    type End = Ended;
    type Rejection = Rejection;

    fn dedupe_key(input: &Input) -> Option<&str> {
        event_id(input)
    }

    fn creates(&self, input: &Input) -> Result<(), Rejection> {
        creates(input)
    }

    fn timer_input(&self, kind: TimerKind, due: Timestamp) -> Input {
        Input::Timer { kind, due }
    }

    fn step(
        &self,
        state: Option<Meeting>,
        input: &Input,
        now: Timestamp,
    ) -> Result<Step, (Rejection, Option<Meeting>)> {
        step(state, input, now, &self.policy)
    }

    fn state(step: Step) -> Meeting {
        step.meeting
    }

    fn timers(state: &Meeting, armed: &mut Vec<(TimerKind, Timestamp)>) {
        armed.extend(state.timers.pending());
    }

    fn end(state: &Meeting) -> Option<Ended> {
        state.ended
    }
}
