//! The engine's core in memory: any [`Machine`]'s instances on a virtual
//! clock, their timers fired in the engine's order, no store.
//!
//! The order is the durable engine's (and `replay`'s): before an input at
//! instant `t`, the timers due at or before `t` fire, each at its due time
//! (or the clock, if that is later); a timer armed already past fires right
//! after the input that armed it, at that input's instant; [`Core::finish`]
//! runs the clock on until no timer is pending. Timers due at the same
//! instant fire in the machine's timer order, then by instance.
//!
//! `whatif` runs each of its models on one `Core` (and `tune` each
//! candidate). Instances are numbered densely by the caller (first seen,
//! first numbered); the caller admits inputs ([`Machine::creates`]) and
//! drops duplicates ([`duplicate`](crate::machine::duplicate)) before they
//! get here, as the durable engine does before a step.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::machine::Machine;
use crate::time::Timestamp;

/// An instance: not seen yet, live, or ended (its state dropped: a final
/// state ignores every later input).
enum Slot<M: Machine> {
    Unseen,
    Live(Box<M::State>),
    Ended(M::End),
}

/// A machine's instances, their pending timers and the virtual clock.
pub struct Core<M: Machine> {
    machine: M,
    slots: Vec<Slot<M>>,
    /// Pending timers in fire order; a fire whose timer the instance no
    /// longer lists (moved, cancelled) does nothing.
    queue: BinaryHeap<Reverse<(Timestamp, M::Timer, u32)>>,
    before: Vec<(M::Timer, Timestamp)>,
    after: Vec<(M::Timer, Timestamp)>,
    clock: Timestamp,
    fired: u64,
    rejected: u64,
}

impl<M: Machine> Core<M> {
    pub fn new(machine: M) -> Self {
        Core {
            machine,
            slots: Vec::new(),
            queue: BinaryHeap::new(),
            before: Vec::new(),
            after: Vec::new(),
            clock: Timestamp::MIN,
            fired: 0,
            rejected: 0,
        }
    }

    /// The virtual clock: the latest instant an input or a timer ran at.
    pub fn clock(&self) -> Timestamp {
        self.clock
    }

    /// Timers fired so far.
    pub fn fired(&self) -> u64 {
        self.fired
    }

    /// Inputs the machine refused so far (their instances unchanged).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Apply an admitted, non-duplicate input of instance `i` at instant `at`:
    /// the timers due by then first, then the input (at `at`, or the clock
    /// if that is later), then the timers it armed in the past.
    pub fn apply(&mut self, i: u32, input: &M::Input, at: Timestamp) {
        self.fire_through(at);
        self.clock = self.clock.max(at);
        self.step(i, input);
        self.fire_through(self.clock);
    }

    /// Fire every timer due at or before `limit`, in fire order.
    pub fn fire_through(&mut self, limit: Timestamp) {
        while let Some(&Reverse((due, timer, i))) = self.queue.peek() {
            if due > limit {
                break;
            }
            self.queue.pop();
            let Some(Slot::Live(state)) = self.slots.get(i as usize) else { continue };
            self.before.clear();
            M::timers(state, &mut self.before);
            if !self.before.contains(&(timer, due)) {
                continue; // moved or cancelled since it was queued
            }
            self.clock = self.clock.max(due);
            self.fired += 1;
            let input = self.machine.timer_input(timer, due);
            self.step(i, &input);
        }
    }

    /// Run the clock on until no timer is pending; how each instance ended
    /// (`None`: still running, or never seen), by number, and the timers fired.
    pub fn finish(mut self) -> (Vec<Option<M::End>>, u64) {
        self.fire_through(Timestamp::MAX);
        let fired = self.fired;
        (self.into_ends(), fired)
    }

    /// Forget every instance, timer and the clock, keeping the allocations:
    /// the core is as new, for the next independent run (`tune` runs each
    /// meeting alone under every candidate).
    pub fn reset(&mut self) {
        self.slots.clear();
        self.queue.clear();
        self.clock = Timestamp::MIN;
    }

    /// Run the clock on until no timer is pending, and how instance `i`
    /// ended (`None`: still running, or never seen). The core stays usable.
    pub fn run_out(&mut self, i: u32) -> Option<M::End> {
        self.fire_through(Timestamp::MAX);
        match self.slots.get(i as usize) {
            Some(Slot::Ended(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// How each instance has ended so far, by number, without running the
    /// clock on (`None`: still running, or never seen).
    pub fn into_ends(self) -> Vec<Option<M::End>> {
        self.slots.into_iter().map(|s| if let Slot::Ended(e) = s { Some(e) } else { None }).collect()
    }

    fn step(&mut self, i: u32, input: &M::Input) {
        let idx = i as usize;
        if self.slots.len() <= idx {
            self.slots.resize_with(idx + 1, || Slot::Unseen);
        }
        let state = match std::mem::replace(&mut self.slots[idx], Slot::Unseen) {
            Slot::Unseen => None,
            Slot::Live(s) => Some(*s),
            ended @ Slot::Ended(_) => {
                self.slots[idx] = ended;
                return;
            }
        };
        self.before.clear();
        if let Some(s) = &state {
            M::timers(s, &mut self.before);
        }
        let state = match self.machine.step(state, input, self.clock) {
            Ok(step) => M::state(step),
            Err((_, state)) => {
                self.rejected += 1;
                if let Some(s) = state {
                    self.slots[idx] = Slot::Live(Box::new(s));
                }
                return;
            }
        };
        if let Some(end) = M::end(&state) {
            self.slots[idx] = Slot::Ended(end);
            return;
        }
        self.after.clear();
        M::timers(&state, &mut self.after);
        for &(timer, due) in &self.after {
            if !self.before.contains(&(timer, due)) {
                self.queue.push(Reverse((due, timer, i)));
            }
        }
        self.slots[idx] = Slot::Live(Box::new(state));
    }
}
