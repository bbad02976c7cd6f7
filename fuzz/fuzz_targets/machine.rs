//! Any bytes as a sequence of lines through the decoder and the state machine
//! (in memory, the naive engine): no panic, and the machine's invariants hold —
//! a terminated meeting has no pending timer, every instance id is valid, a
//! termination happens once. The same inputs through the engine's core
//! (`engine::core::Core`, what `whatif` runs) end every meeting the same way.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use spindown::engine::core::Core;
use spindown::machine::Machine;
use spindown::meeting::{transition, Input, Meeting, MeetingId, MeetingWorkflow, Outcome, State};
use spindown::meeting::Policy;
use spindown::meeting::record::{decode_line, Item};
use spindown::time::Timestamp;

fuzz_target!(|data: &[u8]| {
    let policy = Policy::default();
    let mut meetings: BTreeMap<MeetingId, Meeting> = BTreeMap::new();
    let mut clock = Timestamp::EPOCH;
    let workflow = MeetingWorkflow::new(policy.clone());
    let mut core = Core::new(MeetingWorkflow::new(policy.clone()));
    let mut index: BTreeMap<MeetingId, u32> = BTreeMap::new();
    let mut complete = true;
    let fire = |meetings: &mut BTreeMap<MeetingId, Meeting>, target: Timestamp, clock: &mut Timestamp| -> bool {
        for _ in 0..10_000 {
            let next = meetings
                .values()
                .flat_map(|m| m.timers.pending().map(move |(k, d)| (d, k.rank(), m.id.clone(), k)))
                .min();
            let Some((due, _, id, kind)) = next else { return true };
            if due > target {
                return true;
            }
            *clock = (*clock).max(due);
            let before = meetings[&id].clone();
            let step = transition(Some(&before), &Input::Timer { kind, due }, *clock, &policy).unwrap();
            check(&before, &step.meeting, step.outcome);
            meetings.insert(id, step.meeting);
        }
        false
    };
    for line in data.split(|&c| c == b'\n') {
        for item in decode_line(line) {
            let Item::Record(d) = item else { continue };
            let c = d.change;
            let t = clock.max(c.event_time.unwrap_or(clock));
            complete &= fire(&mut meetings, t, &mut clock);
            clock = t;
            let id = c.meeting_id.clone();
            let before = meetings.get(&id).cloned();
            let input = Input::Record(c);
            if index.get(&id).is_none() && workflow.creates(&input).is_ok() {
                let n = index.len() as u32;
                index.insert(id.clone(), n);
            }
            if let Some(&n) = index.get(&id) {
                core.apply(n, &input, t);
            }
            if let Ok(step) = transition(before.as_ref(), &input, clock, &policy) {
                if let Some(b) = &before {
                    check(b, &step.meeting, step.outcome);
                }
                meetings.insert(id, step.meeting);
            }
            complete &= fire(&mut meetings, clock, &mut clock);
        }
    }
    // Run on for a year past the last record (a meeting moved centuries
    // ahead, in progress without data, is re-checked every 15 minutes until
    // its cap: millions of fires, right but slow), then compare.
    let horizon = clock.saturating_add(spindown::time::Span::from_mins(366 * 24 * 60));
    complete &= fire(&mut meetings, horizon, &mut clock);
    core.fire_through(horizon);
    let ends = core.into_ends();
    if complete {
        for (id, n) in &index {
            let end = ends.get(*n as usize).copied().flatten();
            assert_eq!(meetings[id].ended, end, "meeting {id}: the naive engine and the core disagree");
        }
    }
});

fn check(before: &Meeting, after: &Meeting, outcome: Outcome) {
    if after.state == State::Terminated {
        assert!(after.ended.is_some());
        assert_eq!(after.timers.pending().count(), 0, "a terminated meeting has no pending timer");
    }
    if before.state == State::Terminated {
        assert_eq!(outcome, Outcome::Ignored, "a termination happens once");
        assert_eq!(before.ended, after.ended);
    }
    assert!(after.instances.iter().all(|i| spindown::meeting::InstanceId::parse(i.as_str()).is_some()));
}
