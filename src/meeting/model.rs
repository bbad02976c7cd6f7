//! What a meeting is: its facts, its state, its pending timers.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::ids::{InstanceId, MeetingId};
use crate::named::names;
use crate::time::{Span, Timestamp};

names! {
    /// Where a meeting is, derived from its facts (rules of "States").
    pub State ("state") {
        Scheduled = "Scheduled",
        InProgress = "InProgress",
        Partial = "Partial",
        Complete = "Complete",
        Terminated = "Terminated",
    }
}

names! {
    /// Why a meeting was terminated — exactly the spec's strings.
    pub Reason ("reason") {
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

names! {
    /// The durable one-shot timers a meeting can have pending (one of each at most),
    /// declared in tie order: for equal due times, the safety net fires first,
    /// then the re-check, then the cap.
    pub TimerKind ("timer kind") {
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

names! {
    /// The stream record's `eventName`.
    pub EventName ("eventName") { Insert = "INSERT", Modify = "MODIFY", Remove = "REMOVE" }
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
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// The kind of a tie rank ([`TimerKind::rank`]); `None` for a rank no kind has.
    pub fn from_rank(rank: i64) -> Option<TimerKind> {
        TimerKind::ALL.get(usize::try_from(rank).ok()?).copied()
    }
}

/// What the engine knows about a meeting from the stream (see "Facts").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

    /// The pending timer that fires first: the earliest, ties in tie order.
    pub fn next(&self) -> Option<(TimerKind, Timestamp)> {
        self.pending().min_by_key(|&(k, d)| (d, k.rank()))
    }

    pub fn is_empty(&self) -> bool {
        self.pending().next().is_none()
    }
}

/// How a meeting ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    pub reason: Reason,
    pub at: Timestamp,
}

/// A meeting as the engine keeps it.
/// An operator's hold (`spindown hold`): until `until` no timer ends the
/// meeting; `moved` are the timers a fire during the hold re-armed at its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub until: Timestamp,
    pub moved: Vec<TimerKind>,
}

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
    /// `spindown extend`: the end-of-life timer is never due before this.
    pub extended_until: Option<Timestamp>,
    /// `spindown hold`: the latest hold (over once its end has passed).
    pub hold: Option<Hold>,
}

/// The search attribute of an instance id: a meeting is found by each of its instances.
pub const SEARCH_INSTANCE: &str = "instance_id";

/// The search attribute of a meeting's start ([`Facts::start`]: `meet_time`,
/// else `created_at`), as [`start_value`]
/// writes it: meetings are found by when they start, in ranges.
pub const SEARCH_START: &str = "start";

/// The search attribute of a held meeting: its hold's end, as
/// [`start_value`] writes an instant (held meetings are counted from it).
pub const SEARCH_HELD: &str = "held_until";

/// An instant as the value of [`SEARCH_START`]: RFC 3339 with six fraction
/// digits, always (`2026-11-26T10:00:00.000000Z`), so that values sort as
/// the instants do (years 0000–9999).
pub fn start_value(t: Timestamp) -> String {
    let us = t.as_micros();
    let frac = us.rem_euclid(1_000_000);
    let mut v = Timestamp::from_micros(us - frac).to_rfc3339();
    v.pop(); // the 'Z' of a whole second
    v.reserve(8);
    v.push('.');
    for d in (0..6).rev() {
        v.push(char::from(b'0' + (frac / 10_i64.pow(d) % 10) as u8));
    }
    v.push('Z');
    v
}

impl Meeting {
    /// What the store indexes this meeting by, as (attribute, value): each
    /// of its instance ids ([`SEARCH_INSTANCE`]) and its start
    /// ([`SEARCH_START`], once known).
    pub fn search_attributes(&self) -> impl Iterator<Item = (&'static str, String)> + '_ {
        let start = self.facts.start().map(|t| (SEARCH_START, start_value(t)));
        let held = self.held_until().map(|t| (SEARCH_HELD, start_value(t)));
        self.instances.iter().map(|i| (SEARCH_INSTANCE, i.as_str().to_string())).chain(start).chain(held)
    }

    /// The end of the meeting's hold, if it has one and is not terminated
    /// (the hold is over once that instant has passed).
    pub fn held_until(&self) -> Option<Timestamp> {
        self.hold.as_ref().filter(|_| self.ended.is_none()).map(|h| h.until)
    }

    /// Whether a hold keeps the meeting alive at `now`.
    pub fn held_at(&self, now: Timestamp) -> bool {
        self.held_until().is_some_and(|t| now < t)
    }

    /// What [`Meeting::search_attributes`] depends on, cheaply compared: a
    /// step that changes it has new values to index (instances are only
    /// ever added; the start may move).
    pub fn search_stamp(&self) -> (usize, Option<Timestamp>, Option<Timestamp>) {
        (self.instances.len(), self.facts.start(), self.held_until())
    }

    /// A meeting first seen at `now`, with no facts yet.
    pub fn new(id: MeetingId, now: Timestamp) -> Meeting {
        Meeting {
            id,
            facts: Facts::default(),
            instances: BTreeSet::new(),
            state: State::Scheduled,
            ended: None,
            timers: Timers::default(),
            created: now,
            version: 0,
            extended_until: None,
            hold: None,
        }
    }

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

/// A pending timer's position in fire order: due, then tie order, then meeting id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TimerKey {
    pub due: Timestamp,
    pub kind: TimerKind,
    pub meeting_id: MeetingId,
}

impl TimerKey {
    pub fn new(meeting_id: MeetingId, kind: TimerKind, due: Timestamp) -> Self {
        TimerKey { due, kind, meeting_id }
    }
}

impl Ord for TimerKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.kind.rank(), &self.meeting_id).cmp(&(other.due, other.kind.rank(), &other.meeting_id))
    }
}

impl PartialOrd for TimerKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
