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
//!
//! # Running it durably
//!
//! To run a machine on the durable [`Engine`](crate::engine::Engine) —
//! instances in SQLite or PostgreSQL, timers that survive restarts, effects
//! through the outbox, a history per instance — implement [`Durable`] as
//! well: the id, effect, history entry and source item types; how an item
//! opens ([`Durable::open`]), what a step did ([`Durable::took`]), how a
//! duplicate is told ([`Durable::duplicate`]), how effects are keyed in the
//! outbox ([`Durable::outbox`]), and the stored document with what is indexed
//! of it. Then:
//!
//! ```text
//! let engine = Engine::resume(Transcoding, store, clock, EngineOptions::default()).await?;
//! engine.apply(items).await?;          // one unit of work per batch
//! engine.run_timers(shutdown).await?;  // or run_until(t) on a virtual clock
//! ```
//!
//! `examples/transcode.rs` is such a machine, start to end, with its tests.

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

/// A machine the durable engine runs: its instances are kept by a store
/// (their state encoded; the store keeps the bytes as given and never reads
/// them, and indexes what [`Durable::index`] derives), its inputs arrive
/// from sources as items, its steps leave history entries and ask for
/// effects through the outbox.
///
/// The engine ([`Engine`](crate::engine::Engine)) knows nothing else of a
/// machine: admission ([`Machine::creates`]), dedupe
/// ([`Machine::dedupe_key`]), what a step did ([`Durable::took`]) and what
/// the history says ([`Durable::Entry`]) are the machine's.
pub trait Durable:
    Machine<State: Send + Sync, Input: Send + Sync, Timer: Send + Sync, Rejection: Send> + Send + Sync + Sized + 'static
{
    /// An instance's id: the store keys it by its text.
    type Id: Clone + Eq + Ord + std::hash::Hash + std::fmt::Display + std::fmt::Debug + AsRef<str> + Send + Sync;
    /// An effect a step asks for (run by the outbox after the commit).
    type Effect: Send + Sync;
    /// One line of an instance's history (stored as it serializes).
    type Entry: serde::Serialize + Clone + Send + Sync;
    /// What a source hands the engine: an input, or what could not be read.
    type Item: Send + Sync + Clone + std::fmt::Debug;
    /// What an instance is called in errors ("no meeting m-1").
    const NOUN: &'static str = "instance";

    /// The instance's id.
    fn id(state: &Self::State) -> &Self::Id;

    /// The id a store's text names (`None`: no instance can have it).
    fn parse_id(id: &str) -> Option<Self::Id>;

    /// The instance a source's input is for (`None` for inputs that only
    /// the engine makes: timer fires, operator commands).
    fn subject(input: &Self::Input) -> Option<&Self::Id>;

    /// When a source's input happened, by its own clock (`None`: now).
    fn event_time(input: &Self::Input) -> Option<Timestamp>;

    /// An item as the engine applies it: an input, or a dead letter.
    fn open(item: Self::Item) -> Opened<Self>;

    /// A refused input's dead letter: a short, stable kind and the reason.
    fn refusal(rejection: Self::Rejection) -> (&'static str, String);

    /// What a step did, taken apart: the state it left, its history entry,
    /// the effects it asks for. `input` and `now` are the step's.
    fn took(step: Self::Step, input: &Self::Input, now: Timestamp) -> Took<Self>;

    /// The history entry of an input dropped as a duplicate (its key `key`
    /// was applied before); the instance is unchanged.
    fn duplicate(state: &Self::State, input: &Self::Input, key: &str, now: Timestamp) -> Self::Entry;

    /// The outbox row of a step's effects: its idempotency key (a second
    /// row with the same key is not written) and the effects encoded.
    fn outbox(state: &Self::State, effects: &[Self::Effect]) -> (String, String);

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

    /// A timer's name (metrics, traces).
    fn timer_name(timer: Self::Timer) -> &'static str;

    /// Push the values the instance is found by, as (attribute, value).
    fn search(state: &Self::State, found_by: &mut Vec<(&'static str, String)>);

    /// A value that changes whenever [`Durable::search`]'s does: the engine
    /// re-indexes an instance whose stamp a step changed. The default hashes
    /// the attributes; a machine may give something cheaper.
    fn search_stamp(state: &Self::State) -> u128 {
        use std::hash::{Hash, Hasher};
        let mut attrs = Vec::new();
        Self::search(state, &mut attrs);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        attrs.hash(&mut h);
        u128::from(h.finish())
    }

    /// The trace span an input runs in (`lateness`: a timer fire's).
    fn span(id: &Self::Id, input: &Self::Input, lateness: Option<crate::time::Span>) -> tracing::Span {
        let _ = input;
        match lateness {
            Some(l) => tracing::info_span!("timer", id = %id, lateness_ms = l.as_micros() / 1000),
            None => tracing::info_span!("input", id = %id),
        }
    }

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

/// An item opened ([`Durable::open`]).
pub enum Opened<M: Durable> {
    /// An input to apply; `raw` is what a dead letter keeps should the
    /// machine refuse it (empty when it cannot be refused).
    Input { input: M::Input, raw: Vec<u8> },
    /// What could not be read.
    Dead(Letter),
}

/// A dead letter as a machine describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    /// A short, stable name for counting (`not_json`, `no_start`, …).
    pub kind: &'static str,
    pub reason: String,
    /// The input's dedupe key, when it had a readable one.
    pub event_id: Option<String>,
    pub raw: Vec<u8>,
}

/// What a step did ([`Durable::took`]).
pub struct Took<M: Durable> {
    /// The state it left.
    pub state: M::State,
    /// Its history entry.
    pub entry: M::Entry,
    /// The effects it asks for (queued in the outbox in the same unit of work).
    pub effects: Vec<M::Effect>,
    /// Whether anything changed (`false`: the input was ignored).
    pub changed: bool,
    /// How it ended, by name, when this step ended it.
    pub ended: Option<&'static str>,
}

/// The first byte of an encoded [`Chunk`]: entries one after another in
/// spindown's compact binary encoding (postcard).
pub const CHUNK_ENTRIES: u8 = 2;

/// History entries encoded for storage, appended one at a time.
///
/// A store keeps a chunk as opaque bytes ([`Chunk::as_bytes`]); reading it
/// back is the machine's (the meeting's is
/// [`history::decode`](crate::meeting::history::decode)). Entries take a few
/// dozen bytes each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    bytes: Vec<u8>,
    len: usize,
}

impl Default for Chunk {
    fn default() -> Self {
        Chunk { bytes: vec![CHUNK_ENTRIES], len: 0 }
    }
}

impl Chunk {
    pub fn push<E: serde::Serialize>(&mut self, entry: &E) {
        // A story is a few hundred bytes: one allocation, not a doubling series.
        self.bytes.reserve(if self.len == 0 { 256 } else { 64 });
        let bytes = std::mem::take(&mut self.bytes);
        self.bytes = postcard::to_extend(entry, bytes).expect("history entries always encode");
        self.len += 1;
    }

    /// Entries in the chunk.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The encoded chunk, as a store keeps it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoded chunk, given up.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The chunk as a store appends it to the history of the instance `id`.
    pub fn append_to(self, id: &str) -> crate::store::HistoryAppend {
        let entries = self.len;
        crate::store::HistoryAppend { id: id.to_string(), bytes: self.bytes, entries }
    }
}

/// The entries of a stored [`Chunk`], decoded as `E`.
///
/// # Errors
///
/// The bytes are not a chunk of `E`s.
pub fn decode_chunk<E: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Vec<E>, String> {
    let Some((&CHUNK_ENTRIES, mut rest)) = bytes.split_first() else {
        return Err("not a chunk of history entries".into());
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (e, tail) = postcard::take_from_bytes::<E>(rest).map_err(|e| e.to_string())?;
        out.push(e);
        rest = tail;
    }
    Ok(out)
}

impl<E: serde::Serialize> FromIterator<E> for Chunk {
    fn from_iter<I: IntoIterator<Item = E>>(iter: I) -> Self {
        let mut c = Chunk::default();
        for e in iter {
            c.push(&e);
        }
        c
    }
}
