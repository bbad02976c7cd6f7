//! Any bytes as a sequence of lines through the decoder and the state machine
//! (in memory, the naive engine): no panic, and the machine's invariants hold —
//! a terminated meeting has no pending timer, every instance id is valid, a
//! termination happens once.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use spindown::meeting::{transition, Input, Meeting, MeetingId, Outcome, State};
use spindown::meeting::Policy;
use spindown::meeting::record::{decode_line, Item};
use spindown::time::Timestamp;

fuzz_target!(|data: &[u8]| {
    let policy = Policy::default();
    let mut meetings: BTreeMap<MeetingId, Meeting> = BTreeMap::new();
    let mut clock = Timestamp::EPOCH;
    let fire = |meetings: &mut BTreeMap<MeetingId, Meeting>, target: Timestamp, clock: &mut Timestamp| {
        for _ in 0..10_000 {
            let next = meetings
                .values()
                .flat_map(|m| m.timers.pending().map(move |(k, d)| (d, k.rank(), m.id.clone(), k)))
                .min();
            let Some((due, _, id, kind)) = next else { return };
            if due > target {
                return;
            }
            *clock = (*clock).max(due);
            let before = meetings[&id].clone();
            let step = transition(Some(&before), &Input::Timer { kind, due }, *clock, &policy).unwrap();
            check(&before, &step.meeting, step.outcome);
            meetings.insert(id, step.meeting);
        }
    };
    for line in data.split(|&c| c == b'\n') {
        for item in decode_line(line) {
            let Item::Record(d) = item else { continue };
            let c = d.change;
            let t = clock.max(c.event_time.unwrap_or(clock));
            fire(&mut meetings, t, &mut clock);
            clock = t;
            let id = c.meeting_id.clone();
            let before = meetings.get(&id).cloned();
            if let Ok(step) = transition(before.as_ref(), &Input::Record(c), clock, &policy) {
                if let Some(b) = &before {
                    check(b, &step.meeting, step.outcome);
                }
                meetings.insert(id, step.meeting);
            }
            fire(&mut meetings, clock, &mut clock);
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
