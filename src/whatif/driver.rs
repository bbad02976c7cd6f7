//! One model's run: its virtual clock, its pending timers in fire order, and
//! the machine that decides.
//!
//! The order is the replay's (`spec/whatif.md`, "Records"): before a record at
//! instant `t`, timers due at or before `t` fire, each at its due time (or the
//! clock, if that is later); a timer armed already past fires right after the
//! record that armed it, at the record's instant; after the last record the
//! clock runs on until no timer is pending. Meetings are independent, so the
//! order among different meetings' timers due at the same instant changes
//! nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::legacy::{self, LegacyMeeting};
use crate::meeting::{step, Ended, Input, Meeting, Policy, TimerKind};
use crate::time::Timestamp;

use super::front::Event;

/// Timers to arm: `(due, kind, meeting)`.
pub(crate) type Armed = Vec<(Timestamp, TimerKind, u32)>;

/// A model's rules: what a record and a timer do to a meeting.
pub(crate) trait Machine: Send {
    /// An accepted, non-duplicate record of meeting `m`, at the engine instant `now`.
    fn record(&mut self, m: u32, input: &Input, now: Timestamp, armed: &mut Armed);
    /// A timer of `m` due at `due` fires at `now`. A timer the meeting no
    /// longer has pending (moved, cancelled) is the machine's to ignore.
    fn timer(&mut self, m: u32, kind: TimerKind, due: Timestamp, now: Timestamp, armed: &mut Armed);
    /// How each meeting ended, by index (`None`: running at the end).
    fn into_ends(self: Box<Self>) -> Vec<Option<Ended>>;
}

/// The clock and the timer queue around a [`Machine`].
pub(crate) struct Driver {
    machine: Box<dyn Machine>,
    queue: BinaryHeap<Reverse<(Timestamp, u8, u32)>>,
    armed: Armed,
    clock: Timestamp,
    pub(crate) fired: u64,
}

impl Driver {
    pub(crate) fn new(machine: Box<dyn Machine>) -> Self {
        Driver { machine, queue: BinaryHeap::new(), armed: Vec::new(), clock: Timestamp::MIN, fired: 0 }
    }

    fn queue_armed(&mut self) {
        for (due, kind, m) in self.armed.drain(..) {
            self.queue.push(Reverse((due, kind.rank(), m)));
        }
    }

    /// Fire every timer due at or before `limit`, in fire order.
    fn fire_through(&mut self, limit: Timestamp) {
        while let Some(&Reverse((due, rank, m))) = self.queue.peek() {
            if due > limit {
                break;
            }
            self.queue.pop();
            let kind = TimerKind::from_rank(i64::from(rank)).expect("a queued rank");
            self.clock = self.clock.max(due);
            self.fired += 1;
            self.machine.timer(m, kind, due, self.clock, &mut self.armed);
            self.queue_armed();
        }
    }

    /// Apply one event: what is due first, then the record, then what it armed in the past.
    pub(crate) fn apply(&mut self, e: &Event) {
        self.fire_through(e.at);
        self.clock = self.clock.max(e.at);
        self.machine.record(e.meeting, &e.input, self.clock, &mut self.armed);
        self.queue_armed();
        self.fire_through(self.clock);
    }

    /// Run on until no timer is pending; how each meeting ended.
    pub(crate) fn finish(mut self) -> (Vec<Option<Ended>>, u64) {
        self.fire_through(Timestamp::MAX);
        (self.machine.into_ends(), self.fired)
    }
}

/// A meeting in a machine: not seen yet, live, or ended (its state dropped).
enum Slot<M> {
    Unseen,
    Live(M),
    Ended(Ended),
}

fn slot<M>(slots: &mut Vec<Slot<M>>, m: u32) -> &mut Slot<M> {
    let i = m as usize;
    if slots.len() <= i {
        slots.resize_with(i + 1, || Slot::Unseen);
    }
    &mut slots[i]
}

fn ends<M>(slots: Vec<Slot<M>>) -> Vec<Option<Ended>> {
    slots.into_iter().map(|s| if let Slot::Ended(e) = s { Some(e) } else { None }).collect()
}

/// A policy model: the engine's rules ([`step`]), as `spindown replay --policy` runs them.
pub(crate) struct PolicyMachine {
    policy: Policy,
    slots: Vec<Slot<Box<Meeting>>>,
}

impl PolicyMachine {
    pub(crate) fn new(policy: Policy) -> Self {
        PolicyMachine { policy, slots: Vec::new() }
    }

    fn run(&mut self, m: u32, meeting: Option<Meeting>, input: &Input, now: Timestamp, armed: &mut Armed) {
        let before = meeting.as_ref().map(|m| m.timers).unwrap_or_default();
        let s = match step(meeting, input, now, &self.policy) {
            Ok(s) => s,
            // The front admitted it: a record of a new meeting gives a start.
            Err((rejection, _)) => unreachable!("an admitted input was rejected: {rejection}"),
        };
        let meeting = s.meeting;
        for (kind, due) in meeting.timers.pending() {
            if before.get(kind) != Some(due) {
                armed.push((due, kind, m));
            }
        }
        *slot(&mut self.slots, m) = match meeting.ended {
            Some(e) => Slot::Ended(e),
            None => Slot::Live(Box::new(meeting)),
        };
    }
}

impl Machine for PolicyMachine {
    fn record(&mut self, m: u32, input: &Input, now: Timestamp, armed: &mut Armed) {
        let meeting = match std::mem::replace(slot(&mut self.slots, m), Slot::Unseen) {
            Slot::Unseen => None,
            Slot::Live(b) => Some(*b),
            // Rule 3: a terminated meeting ignores records.
            ended @ Slot::Ended(_) => {
                self.slots[m as usize] = ended;
                return;
            }
        };
        self.run(m, meeting, input, now, armed);
    }

    fn timer(&mut self, m: u32, kind: TimerKind, due: Timestamp, now: Timestamp, armed: &mut Armed) {
        let s = slot(&mut self.slots, m);
        let Slot::Live(b) = s else { return };
        if b.timers.get(kind) != Some(due) {
            return; // moved or cancelled since it was queued
        }
        let Slot::Live(b) = std::mem::replace(s, Slot::Unseen) else { unreachable!() };
        self.run(m, Some(*b), &Input::Timer { kind, due }, now, armed);
    }

    fn into_ends(self: Box<Self>) -> Vec<Option<Ended>> {
        ends(self.slots)
    }
}

/// The `legacy` model: the two Lambdas ([`legacy`]).
#[derive(Default)]
pub(crate) struct LegacyMachine {
    slots: Vec<Slot<LegacyMeeting>>,
}

impl Machine for LegacyMachine {
    fn record(&mut self, m: u32, input: &Input, now: Timestamp, armed: &mut Armed) {
        let Input::Record(change) = input else { return };
        let s = slot(&mut self.slots, m);
        let meeting = match s {
            Slot::Unseen => None,
            Slot::Live(l) => Some(*l),
            Slot::Ended(_) => return,
        };
        let step = legacy::record(meeting, change, now);
        if let Some(due) = step.safety_net {
            armed.push((due, TimerKind::SafetyNet, m));
        }
        *s = match step.meeting.ended {
            Some(e) => Slot::Ended(e),
            None => Slot::Live(step.meeting),
        };
    }

    fn timer(&mut self, m: u32, _kind: TimerKind, _due: Timestamp, now: Timestamp, _armed: &mut Armed) {
        let s = slot(&mut self.slots, m);
        if let Slot::Live(l) = s {
            let l = legacy::safety_net(*l, now);
            if let Some(e) = l.ended {
                *s = Slot::Ended(e);
            } else {
                *s = Slot::Live(l);
            }
        }
    }

    fn into_ends(self: Box<Self>) -> Vec<Option<Ended>> {
        ends(self.slots)
    }
}
