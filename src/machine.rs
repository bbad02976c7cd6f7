//! The seam between a runtime and the rules it runs: a typed state machine.
//!
//! A [`Machine`] declares its types — the state of one instance, what it
//! reads, the timers it arms, the effects it asks for, how it ends — and a
//! pure, synchronous [`Machine::step`]. Everything that makes a machine
//! durable or fast is the runtime's: ordering timers, moving a virtual
//! clock, admitting and deduplicating inputs, persisting, running effects.
//! The meeting workflow ([`MeetingWorkflow`](crate::meeting::MeetingWorkflow))
//! and the old Lambdas ([`LegacyWorkflow`](crate::legacy::LegacyWorkflow))
//! are two machines; [`engine::core`](crate::engine::core) runs any machine
//! in memory on a virtual clock (`whatif`, `tune`), in the order the durable
//! engine fires timers.
//!
//! # Writing a machine
//!
//! ```
//! use spindown::machine::Machine;
//! use spindown::time::{Span, Timestamp};
//!
//! /// A recording must be transcoded within an hour, else it is retried.
//! #[derive(Clone, Debug, PartialEq)]
//! enum Recording { Waiting { deadline: Timestamp, tries: u32 }, Done }
//!
//! enum Input { Uploaded, Transcoded, Deadline(Timestamp) }
//!
//! struct Transcoding;
//!
//! impl Machine for Transcoding {
//!     type State = Recording;
//!     type Input = Input;
//!     type Timer = ();
//!     type Step = Recording;
//!     type End = u32;
//!     type Rejection = &'static str;
//!
//!     fn dedupe_key(_: &Input) -> Option<&str> { None }
//!     fn creates(&self, input: &Input) -> Result<(), &'static str> {
//!         match input { Input::Uploaded => Ok(()), _ => Err("no such recording") }
//!     }
//!     fn timer_input(&self, _: (), due: Timestamp) -> Input { Input::Deadline(due) }
//!     fn step(&self, state: Option<Recording>, input: &Input, now: Timestamp)
//!         -> Result<Recording, (&'static str, Option<Recording>)> {
//!         let hour = Span::from_mins(60);
//!         Ok(match (state, input) {
//!             (None, Input::Uploaded) => Recording::Waiting { deadline: now.saturating_add(hour), tries: 1 },
//!             (Some(Recording::Waiting { .. }), Input::Transcoded) => Recording::Done,
//!             (Some(Recording::Waiting { tries, .. }), Input::Deadline(_)) =>
//!                 Recording::Waiting { deadline: now.saturating_add(hour), tries: tries + 1 },
//!             (Some(s), _) => s,
//!             (None, _) => return Err(("no such recording", None)),
//!         })
//!     }
//!     fn state(step: Recording) -> Recording { step }
//!     fn timers(state: &Recording, armed: &mut Vec<((), Timestamp)>) {
//!         if let Recording::Waiting { deadline, .. } = state { armed.push(((), *deadline)); }
//!     }
//!     fn end(state: &Recording) -> Option<u32> {
//!         matches!(state, Recording::Done).then_some(0)
//!     }
//! }
//! ```

use crate::time::Timestamp;

/// A typed state machine: one instance's state, a pure step, and what a
/// runtime needs to know to order, admit and persist it.
///
/// # Contract
///
/// * [`Machine::step`] is pure: the same state, input and instant give the
///   same result. It does no I/O and reads no clock.
/// * An instance's pending timers are exactly what [`Machine::timers`]
///   lists for its state, at most one per timer value: a runtime arms what
///   appears, cancels what disappears, and fires a timer only while it is
///   still listed with the same due instant.
/// * Timers due at the same instant fire in the order of [`Machine::Timer`]
///   (then by instance); instants never go backwards.
/// * A state with an [`Machine::end`] is final: every later input leaves
///   it as it is (a runtime that only wants ends may drop the state).
pub trait Machine {
    /// One instance's state.
    type State: Clone;
    /// What the machine reads: records, operator commands, fired timers.
    type Input;
    /// A timer an instance can have pending (its order breaks ties).
    type Timer: Copy + Eq + Ord;
    /// What a step returns: the new state and whatever else the machine
    /// reports (effects, history notes).
    type Step;
    /// How an instance ended.
    type End: Clone;
    /// Why an input cannot be applied.
    type Rejection;

    /// The key that makes a redelivered input recognisable (a stream
    /// record's `eventID`): an instance applies each key once.
    fn dedupe_key(input: &Self::Input) -> Option<&str>;

    /// Whether `input` can create an instance that does not exist yet (an
    /// existing instance takes every input to [`Machine::step`]). A runtime
    /// asks before it moves the clock: a refused input moves nothing.
    ///
    /// # Errors
    ///
    /// Why it cannot.
    fn creates(&self, input: &Self::Input) -> Result<(), Self::Rejection>;

    /// The input a timer's fire is.
    fn timer_input(&self, timer: Self::Timer, due: Timestamp) -> Self::Input;

    /// Apply one input at instant `now` to an instance (`None`: it does not
    /// exist yet).
    ///
    /// # Errors
    ///
    /// The input cannot be applied; the state is handed back unchanged.
    // The refusal is smaller than the step it replaces: boxing it would not shrink the result.
    #[allow(clippy::result_large_err)]
    fn step(&self, state: Option<Self::State>, input: &Self::Input, now: Timestamp) -> StepResult<Self>;

    /// The state a step left.
    fn state(step: Self::Step) -> Self::State;

    /// Push the instance's pending timers onto `armed`.
    fn timers(state: &Self::State, armed: &mut Vec<(Self::Timer, Timestamp)>);

    /// How the instance ended (`None`: still running).
    fn end(state: &Self::State) -> Option<Self::End>;
}

/// What [`Machine::step`] returns: the step, or why not with the state handed back.
pub type StepResult<M> = Result<<M as Machine>::Step, (<M as Machine>::Rejection, Option<<M as Machine>::State>)>;

/// Whether `input` repeats one of the keys an instance has `applied`
/// ([`Machine::dedupe_key`]): the key it repeats.
pub fn duplicate<'i, M: Machine, K: AsRef<str>>(applied: &[K], input: &'i M::Input) -> Option<&'i str> {
    M::dedupe_key(input).filter(|k| applied.iter().any(|a| a.as_ref() == *k))
}

/// A machine whose instances a store keeps: how its state is encoded (the
/// store keeps the bytes as given and never reads them) and what the store
/// indexes of it — its state's name, how it ended, its pending timers in fire
/// order, its search attributes.
pub trait Durable: Machine {
    /// The instance's id, as the store keys it.
    fn id(state: &Self::State) -> &str;

    /// The state as a JSON document.
    fn encode(state: &Self::State) -> String;

    /// The state [`Durable::encode`] wrote for the instance `id`.
    ///
    /// # Errors
    ///
    /// What is wrong with the document.
    fn decode(id: &str, doc: &str) -> Result<Self::State, String>;

    /// The name of the state it is in (`list --state`, counts by state).
    fn state_name(state: &Self::State) -> &'static str;

    /// How and when it ended, by name (`None`: running).
    fn ended(state: &Self::State) -> Option<(&'static str, Timestamp)>;

    /// A timer's tie rank as stored (its place in [`Machine::Timer`]'s order).
    fn rank(timer: Self::Timer) -> u8;

    /// The timer of a stored rank.
    fn timer(rank: u8) -> Option<Self::Timer>;

    /// Push the values the instance is found by, as (attribute, value).
    fn search(state: &Self::State, found_by: &mut Vec<(&'static str, String)>);

    /// Everything the store indexes of a state.
    fn index(state: &Self::State) -> crate::store::Indexed {
        let mut armed = Vec::new();
        Self::timers(state, &mut armed);
        let mut timers: Vec<(u8, Timestamp)> = armed.into_iter().map(|(t, due)| (Self::rank(t), due)).collect();
        timers.sort_unstable_by_key(|&(rank, due)| (due, rank));
        let mut attrs = Vec::new();
        Self::search(state, &mut attrs);
        crate::store::Indexed { state: Self::state_name(state), end: Self::ended(state), timers, attrs }
    }
}
