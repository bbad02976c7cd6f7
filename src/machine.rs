//! The meeting state machine — pure and synchronous.
//!
//! [`transition`] takes the meeting as stored (or `None` for an unknown one),
//! one [`Input`], the engine instant and the [`Policy`], and returns a [`Step`]:
//! the new meeting, the effects to run and the timer changes, as data. It does
//! no I/O; the engine persists what it returns in one transaction.
//!
//! The rules are those of `spec/meeting-workflow.md`; the comments name them.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::policy::{Mode, Policy};
use crate::time::{Span, Timestamp};

/// A meeting id: the table key `id`, never empty.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MeetingId(String);

impl MeetingId {
    /// `None` for the empty string, which the spec treats as "no id".
    pub fn new(id: impl Into<String>) -> Option<Self> {
        let id = id.into();
        (!id.is_empty()).then_some(MeetingId(id))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for MeetingId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        MeetingId::new(s).ok_or_else(|| "a meeting id must not be empty".to_string())
    }
}

impl fmt::Display for MeetingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An EC2 instance id the engine may terminate: `^i-[0-9a-f]{8}([0-9a-f]{9})?$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstanceId(String);

impl InstanceId {
    /// `None` unless the whole string matches the pattern (lowercase hex, 8 or 17 digits).
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("i-")?;
        let ok = (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| InstanceId(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for InstanceId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        InstanceId::parse(&s).ok_or_else(|| format!("{s:?} is not an EC2 instance id"))
    }
}

impl From<InstanceId> for String {
    fn from(i: InstanceId) -> String {
        i.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "unknown {} {:?} (expected one of: {})",
                        stringify!($name).to_lowercase(),
                        s,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> { s.serialize_str(self.as_str()) }
        }
    };
}

string_enum! {
    /// Where a meeting is, derived from its facts (rules of "States").
    State {
        Scheduled = "Scheduled",
        InProgress = "InProgress",
        Partial = "Partial",
        Complete = "Complete",
        Terminated = "Terminated",
    }
}

string_enum! {
    /// Why a meeting was terminated — exactly the spec's strings.
    Reason {
        NoShowTimeout = "NO_SHOW_TIMEOUT",
        PartialNoShowTimeout = "PARTIAL_NO_SHOW_TIMEOUT",
        FifteenMinSuccess = "15_MIN_SUCCESS",
        Success = "SUCCESS",
        Cancelled = "CANCELLED",
        External = "EXTERNAL",
        MaxLifetime = "MAX_LIFETIME",
        FixedDuration = "FIXED_DURATION",
        Manual = "MANUAL",
    }
}

string_enum! {
    /// The durable one-shot timers a meeting can have pending (one of each at most).
    TimerKind {
        /// `start + safety_net_delay` (the old EventBridge one-shot).
        SafetyNet = "safety_net",
        /// `fired + keepalive_recheck`, while a meeting is `InProgress` without data.
        Recheck = "recheck",
        /// `start + max_lifetime`, or the earlier declared cap.
        Cap = "cap",
        /// `start + fixed_duration` in `fixed` mode.
        Fixed = "fixed",
    }
}

string_enum! {
    /// The stream record's `eventName`.
    EventName { Insert = "INSERT", Modify = "MODIFY", Remove = "REMOVE" }
}

impl Reason {
    /// Timer-driven ends, `SUCCESS` and `MANUAL` write back to DynamoDB;
    /// `CANCELLED` (the row is gone) and `EXTERNAL` (someone else wrote it) do not.
    pub fn writes_back(self) -> bool {
        !matches!(self, Reason::Cancelled | Reason::External)
    }
}

impl TimerKind {
    /// Tie order for equal due times: safety net, then re-check, then cap.
    pub fn rank(self) -> i64 {
        match self {
            TimerKind::SafetyNet => 0,
            TimerKind::Recheck => 1,
            TimerKind::Cap => 2,
            TimerKind::Fixed => 3,
        }
    }
}

/// What the engine knows about a meeting from the stream (see "Facts").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub meet_time: Option<Timestamp>,
    pub created_at: Option<Timestamp>,
    pub duration: Option<Span>,
    pub status: Option<String>,
    pub teacher_data: bool,
    pub student_data: bool,
}

impl Facts {
    /// `meet_time`, or `created_at` while the meeting has never had a `meet_time`.
    pub fn start(&self) -> Option<Timestamp> {
        self.meet_time.or(self.created_at)
    }
}

/// The pending timers of a meeting (due instants).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Timers {
    pub safety_net: Option<Timestamp>,
    pub recheck: Option<Timestamp>,
    pub cap: Option<Timestamp>,
    pub fixed: Option<Timestamp>,
}

impl Timers {
    pub fn get(&self, kind: TimerKind) -> Option<Timestamp> {
        match kind {
            TimerKind::SafetyNet => self.safety_net,
            TimerKind::Recheck => self.recheck,
            TimerKind::Cap => self.cap,
            TimerKind::Fixed => self.fixed,
        }
    }
    pub fn slot(&mut self, kind: TimerKind) -> &mut Option<Timestamp> {
        match kind {
            TimerKind::SafetyNet => &mut self.safety_net,
            TimerKind::Recheck => &mut self.recheck,
            TimerKind::Cap => &mut self.cap,
            TimerKind::Fixed => &mut self.fixed,
        }
    }
    /// Pending timers, in tie order.
    pub fn pending(&self) -> impl Iterator<Item = (TimerKind, Timestamp)> + '_ {
        TimerKind::ALL.iter().filter_map(|&k| self.get(k).map(|d| (k, d)))
    }
}

/// How a meeting ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ended {
    pub reason: Reason,
    pub at: Timestamp,
}

/// A meeting as the engine stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    pub id: MeetingId,
    pub facts: Facts,
    /// Every valid instance id seen in an accepted record, sorted.
    pub instances: BTreeSet<InstanceId>,
    pub state: State,
    pub ended: Option<Ended>,
    pub timers: Timers,
    /// The instant the meeting was first seen.
    pub created: Timestamp,
    /// Bumped by every step that changes the meeting; the store fences on it.
    pub version: i64,
}

impl Meeting {
    /// The state the facts say (rules 1–5 of "States").
    pub fn derived_state(&self) -> State {
        if self.ended.is_some() {
            State::Terminated
        } else {
            match (self.facts.teacher_data, self.facts.student_data) {
                (true, true) => State::Complete,
                (true, false) | (false, true) => State::Partial,
                _ if self.facts.status.as_deref() == Some("IN_PROGRESS") => State::InProgress,
                _ => State::Scheduled,
            }
        }
    }
}

/// An image (`NewImage` for INSERT/MODIFY, `OldImage` for REMOVE), decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    pub meet_time: Option<Timestamp>,
    pub created_at: Option<Timestamp>,
    pub duration: Option<Span>,
    pub status: Option<String>,
    pub teacher_data: bool,
    pub student_data: bool,
}

/// An instance-id attribute as found in a record, valid or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenInstance {
    /// `NewImage.teacher_ec2_id` and the like.
    pub source: &'static str,
    pub value: String,
}

/// A well-formed stream record, ready for the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub event_id: Option<String>,
    pub event_name: EventName,
    /// `dynamodb.ApproximateCreationDateTime`; `None` means "the clock's now".
    pub event_time: Option<Timestamp>,
    pub meeting_id: MeetingId,
    /// The image used; `None` when the record carries none.
    pub image: Option<Image>,
    /// Instance-id attributes of both images.
    pub instance_ids: Vec<SeenInstance>,
}

/// An operator's command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `spindown terminate ID` → `Terminated(MANUAL)`.
    Terminate,
    /// `spindown schedule ID …`: register or update a meeting without a stream
    /// (an INSERT-like image).
    Schedule { id: MeetingId, meet_time: Timestamp, instances: Vec<SeenInstance>, duration: Option<Span> },
}

/// One input to a meeting's machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Record(Change),
    Timer { kind: TimerKind, due: Timestamp },
    Command(Command),
}

/// A side effect to run after the step commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// `ec2:TerminateInstances` on these instances (sorted, deduplicated, never empty).
    Terminate { instances: Vec<InstanceId> },
    /// The conditional `UpdateItem` that marks the row `TERMINATED`.
    WriteBack { reason: Reason, terminated_at: Timestamp },
}

/// A change to a meeting's pending timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TimerChange {
    /// Arm (or re-arm, replacing the pending one) a timer of this kind.
    Arm { kind: TimerKind, due: Timestamp },
    /// Remove the pending timer of this kind (fired or cancelled).
    Disarm { kind: TimerKind },
}

/// What a step did, in one word (the history's summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Terminated,
    /// Nothing changed (a record after termination, a late command).
    Ignored,
}

/// The result of one transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub meeting: Meeting,
    pub from: Option<State>,
    pub outcome: Outcome,
    pub effects: Vec<Effect>,
    pub timers: Vec<TimerChange>,
    /// Human-readable lines for the history: what changed and why.
    pub notes: Vec<String>,
}

/// An input the machine cannot apply; the engine dead-letters records that get one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("new meeting {0} has neither meet_time nor created_at")]
    NoStart(MeetingId),
    #[error("no such meeting")]
    UnknownMeeting,
}

/// Apply one input to a meeting at instant `now`.
pub fn transition(
    meeting: Option<&Meeting>,
    input: &Input,
    now: Timestamp,
    policy: &Policy,
) -> Result<Step, Rejection> {
    match input {
        Input::Record(change) => record(meeting, change, now, policy),
        Input::Timer { kind, due } => Ok(timer(meeting.ok_or(Rejection::UnknownMeeting)?, *kind, *due, now, policy)),
        Input::Command(cmd) => command(meeting, cmd, now, policy),
    }
}

struct Builder {
    meeting: Meeting,
    from: Option<State>,
    effects: Vec<Effect>,
    timers: Vec<TimerChange>,
    notes: Vec<String>,
}

impl Builder {
    fn new(meeting: Meeting, from: Option<State>) -> Self {
        Builder { meeting, from, effects: Vec::new(), timers: Vec::new(), notes: Vec::new() }
    }

    fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }

    fn arm(&mut self, kind: TimerKind, due: Timestamp) {
        let old = self.meeting.timers.slot(kind).replace(due);
        match old {
            Some(old) if old == due => return,
            Some(old) => self.note(format!("re-armed {kind} timer {old} → {due}")),
            None => self.note(format!("armed {kind} timer for {due}")),
        }
        self.timers
            .retain(|c| !matches!(c, TimerChange::Arm { kind: k, .. } | TimerChange::Disarm { kind: k } if *k == kind));
        self.timers.push(TimerChange::Arm { kind, due });
    }

    fn disarm(&mut self, kind: TimerKind) {
        if self.meeting.timers.slot(kind).take().is_some() {
            self.timers.retain(
                |c| !matches!(c, TimerChange::Arm { kind: k, .. } | TimerChange::Disarm { kind: k } if *k == kind),
            );
            self.timers.push(TimerChange::Disarm { kind });
        }
    }

    /// Termination: state, cancel every pending timer, queue the effects.
    fn terminate(&mut self, reason: Reason, now: Timestamp) {
        let cancelled: Vec<_> = self.meeting.timers.pending().map(|(k, _)| k).collect();
        for kind in &cancelled {
            self.disarm(*kind);
        }
        self.meeting.ended = Some(Ended { reason, at: now });
        self.meeting.state = State::Terminated;
        if !cancelled.is_empty() {
            let names: Vec<_> = cancelled.iter().map(|k| k.as_str()).collect();
            self.note(format!("cancelled pending timers: {}", names.join(", ")));
        }
        if self.meeting.instances.is_empty() {
            self.note("no valid instance ids known: nothing to terminate");
        } else {
            let instances: Vec<InstanceId> = self.meeting.instances.iter().cloned().collect();
            self.note(format!("queued terminate {}", join(&instances)));
            self.effects.push(Effect::Terminate { instances });
        }
        if reason.writes_back() {
            self.note(format!("queued write-back {reason}"));
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

fn join<T: fmt::Display>(items: &[T]) -> String {
    items.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

/// The due instant of a start-relative timer for this meeting, if it has a start.
fn start_relative_due(kind: TimerKind, facts: &Facts, policy: &Policy) -> Option<Timestamp> {
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

/// Rules 3–8 for a stream record (rules 1–2 are the decoder's and the store's).
fn record(meeting: Option<&Meeting>, change: &Change, now: Timestamp, policy: &Policy) -> Result<Step, Rejection> {
    let t = change.event_time.unwrap_or(now);
    let cause = format!("{} record", change.event_name);
    let image = change.image.as_ref();
    let new_start = image.and_then(|i| i.meet_time.or(i.created_at));
    let mut b = match open(meeting, &change.meeting_id, now, new_start.is_some())? {
        Opened::Live(b) => b,
        // Rule 3: a terminated meeting only notes the record.
        Opened::Terminated(mut b) => {
            b.note(format!("{cause} ignored: meeting already terminated"));
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
            f.status = image.status.clone();
            f.teacher_data = image.teacher_data;
            f.student_data = image.student_data;
            describe_facts(&mut b, &old, created);
        }
        None => b.note(format!("{cause} carries no image: facts kept")),
    }
    absorb_instances(&mut b, &change.instance_ids);
    follow_timers(&mut b, created, policy);

    let derived = b.meeting.derived_state();
    if change.event_name == EventName::Remove {
        // Rule 5.
        b.note("row deleted (REMOVE)");
        b.terminate(Reason::Cancelled, now);
    } else if image.and_then(|i| i.status.as_deref()) == Some("TERMINATED") {
        // Rule 6.
        b.note("row marked TERMINATED by someone else");
        b.terminate(Reason::External, now);
    } else if let (Mode::Smart, State::Complete, Some(start)) = (policy.mode, derived, b.meeting.facts.start()) {
        // Rule 7 — judged at the record's own event time.
        if t.since(start) >= policy.min_success_duration {
            b.note(format!("both sides have data and the event time {t} is {} past the start", t.since(start)));
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

/// Load the meeting for a step, or create it (rule 4) when `can_create`.
fn open(meeting: Option<&Meeting>, id: &MeetingId, now: Timestamp, can_create: bool) -> Result<Opened, Rejection> {
    Ok(match meeting {
        Some(m) if m.state == State::Terminated => Opened::Terminated(Builder::new(m.clone(), Some(State::Terminated))),
        Some(m) => Opened::Live(Builder::new(m.clone(), Some(m.state))),
        None if can_create => Opened::Live(Builder::new(
            Meeting {
                id: id.clone(),
                facts: Facts::default(),
                instances: BTreeSet::new(),
                state: State::Scheduled,
                ended: None,
                timers: Timers::default(),
                created: now,
                version: 0,
            },
            None,
        )),
        None => return Err(Rejection::NoStart(id.clone())),
    })
}

/// Instance ids accumulate; invalid ones are noted and skipped.
fn absorb_instances(b: &mut Builder, seen: &[SeenInstance]) {
    for s in seen {
        match InstanceId::parse(&s.value) {
            Some(id) => {
                if b.meeting.instances.insert(id.clone()) {
                    b.note(format!("instance {id} ({})", s.source));
                }
            }
            None => b.note(format!(
                "skipped instance id {:?} from {}: not i- followed by 8 or 17 lowercase hex digits",
                s.value, s.source
            )),
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
            if let Some(due) = start_relative_due(kind, &b.meeting.facts, policy) {
                b.arm(kind, due);
            }
        }
    }
}

fn describe_facts(b: &mut Builder, old: &Facts, created: bool) {
    let new = b.meeting.facts.clone();
    let opt = |t: Option<Timestamp>| t.map_or("-".to_string(), |t| t.to_string());
    let yes = |v: bool| if v { "yes" } else { "no" };
    if created {
        // Only what the image says (the history is kept for every input: it stays short).
        let mut facts = Vec::new();
        if let Some(t) = new.meet_time {
            facts.push(format!("meet_time {t}"));
        }
        if let Some(t) = new.created_at {
            facts.push(format!("created_at {t}"));
        }
        if let Some(d) = new.duration {
            facts.push(format!("duration {d}"));
        }
        if let Some(st) = &new.status {
            facts.push(format!("status {st}"));
        }
        if new.teacher_data {
            facts.push("teacher data".into());
        }
        if new.student_data {
            facts.push("student data".into());
        }
        b.note(format!("created: {}", facts.join(", ")));
        return;
    }
    if old.meet_time != new.meet_time {
        b.note(format!("meet_time {} → {}", opt(old.meet_time), opt(new.meet_time)));
    }
    if old.created_at != new.created_at {
        b.note(format!("created_at {} → {}", opt(old.created_at), opt(new.created_at)));
    }
    if old.duration != new.duration {
        let d = |d: Option<Span>| d.map_or("-".to_string(), |d| d.to_string());
        b.note(format!("duration {} → {}", d(old.duration), d(new.duration)));
    }
    if old.status != new.status {
        b.note(format!("status {} → {}", old.status.as_deref().unwrap_or("-"), new.status.as_deref().unwrap_or("-")));
    }
    if old.teacher_data != new.teacher_data {
        b.note(format!("teacher data {} → {}", yes(old.teacher_data), yes(new.teacher_data)));
    }
    if old.student_data != new.student_data {
        b.note(format!("student data {} → {}", yes(old.student_data), yes(new.student_data)));
    }
}

/// The safety-net, re-check, cap and fixed timers.
fn timer(m: &Meeting, kind: TimerKind, due: Timestamp, now: Timestamp, policy: &Policy) -> Step {
    let mut b = Builder::new(m.clone(), Some(m.state));
    if m.state == State::Terminated || m.timers.get(kind) != Some(due) {
        b.note(format!("{kind} timer due {due} ignored: no longer pending"));
        return b.finish(Outcome::Ignored);
    }
    b.disarm(kind);
    match (kind, m.state) {
        (TimerKind::Cap, _) => b.terminate(Reason::MaxLifetime, now),
        (TimerKind::Fixed, _) => b.terminate(Reason::FixedDuration, now),
        (_, State::Scheduled) => b.terminate(Reason::NoShowTimeout, now),
        (_, State::Partial) => b.terminate(Reason::PartialNoShowTimeout, now),
        (_, State::Complete) => b.terminate(Reason::FifteenMinSuccess, now),
        (_, State::InProgress) => {
            b.note("in progress without session data: looking again later");
            b.arm(TimerKind::Recheck, now.saturating_add(policy.keepalive_recheck));
        }
        (_, State::Terminated) => unreachable!("checked above"),
    }
    b.finish_live()
}

fn command(meeting: Option<&Meeting>, cmd: &Command, now: Timestamp, policy: &Policy) -> Result<Step, Rejection> {
    match cmd {
        Command::Terminate => {
            let m = meeting.ok_or(Rejection::UnknownMeeting)?;
            let mut b = Builder::new(m.clone(), Some(m.state));
            if let Some(ended) = m.ended {
                b.note(format!("terminate ignored: already terminated ({} at {})", ended.reason, ended.at));
                return Ok(b.finish(Outcome::Ignored));
            }
            b.note("terminated by an operator");
            b.terminate(Reason::Manual, now);
            Ok(b.finish_live())
        }
        Command::Schedule { id, meet_time, instances, duration } => {
            let mut b = match open(meeting, id, now, true)? {
                Opened::Live(b) => b,
                Opened::Terminated(mut b) => {
                    b.note("schedule ignored: meeting already terminated");
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
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
