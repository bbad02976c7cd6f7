//! The meeting model — pure and synchronous: nothing async, no storage, no AWS.
//!
//! * [`ids`](MeetingId) — [`MeetingId`] and [`InstanceId`], validated on construction.
//! * model — [`State`], [`Reason`], [`TimerKind`], [`Facts`], [`Timers`], [`Meeting`]
//!   and the fire order of timers ([`TimerKey`]).
//! * input — what the machine reads: a decoded stream record ([`Change`]), a
//!   timer fire, an operator [`Command`].
//! * [`transition`] — the rules of `spec/meeting-workflow.md`: one input in, a
//!   [`Step`] out (the new meeting, [`Effect`]s and timer changes as data, and
//!   the history [`Note`]s).
//! * [`history`] — the story of a meeting: [`Entry`], [`Cause`], [`Outcome`], [`Note`].
//! * [`policy`] — the policy file (`workflows/meeting.toml`) and its validation.
//! * [`record`] — DynamoDB stream records (Lambda shape) → [`Change`], or a
//!   dead letter with its reason.
//! * [`MeetingWorkflow`] — the rules under a policy as a [`Machine`](crate::machine::Machine),
//!   the form every runtime runs them in.

mod effect;
pub mod history;
mod ids;
mod input;
mod model;
pub mod policy;
pub mod record;
pub mod stored;
mod transition;
pub mod workflow;

pub use crate::named::UnknownName;
pub use effect::{Effect, EffectKind};
pub use history::{Cause, CauseKind, Chunk, Entry, Note, OperatorAction, Outcome};
pub use ids::{BadInstanceId, EmptyMeetingId, InstanceId, MeetingId};
pub use input::{Change, Command, CommandKind, Extend, Image, Input, InstanceSource, Rejection, SeenInstance};
pub use model::{
    start_value, Ended, EventName, Facts, Hold, Meeting, Reason, State, TimerKey, TimerKind, Timers, SEARCH_HELD,
    SEARCH_INSTANCE, SEARCH_START,
};
pub use policy::{Mode, Policy, PolicyError, KEYS as POLICY_KEYS};
pub use stored::{
    Counts, EffectFilter, EffectOutcome, EffectRow, HistoryRecord, MeetingFilter, OutcomeLine, StoredMeeting,
    TimerFilter,
};
pub use transition::{admits, can_create, step, transition, Step, TimerChange};
pub use workflow::MeetingWorkflow;
