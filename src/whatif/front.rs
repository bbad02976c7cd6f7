//! What every model shares, decided once per record — admission and dedupe
//! by the workflow's own rules (as the engine applies them) — the
//! virtual clock, and each meeting's start, instance set and late activity.
//!
//! Records reach the models only through here, so every model sees the same
//! accepted records in file order at the same instants (`spec/whatif.md`,
//! "Records"). A duplicate moves the clock and does nothing else in any model,
//! so only the clock keeps it: models get accepted, non-duplicate records.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::machine::{duplicate, Machine};
use crate::meeting::record::{Decoded, RecordError};
use crate::meeting::{EventName, Input, InstanceId, MeetingId, MeetingWorkflow};
use crate::time::Timestamp;

/// An accepted, non-duplicate record for the models: the meeting (its index
/// in first-seen order), the engine instant and the record itself.
#[derive(Debug)]
pub(crate) struct Event {
    pub meeting: u32,
    pub at: Timestamp,
    pub input: Input,
}

/// A meeting as the cost sees it: the facts after every accepted record.
#[derive(Debug, Clone)]
pub struct Seen {
    pub id: MeetingId,
    meet_time: Option<Timestamp>,
    created_at: Option<Timestamp>,
    /// Valid instance ids, each once.
    instances: Vec<InstanceId>,
    /// eventIDs this meeting applied (dedupe is per meeting, as in replay).
    event_ids: Vec<Box<str>>,
    /// The latest event time of a `MODIFY` whose `NewImage` is not `TERMINATED`.
    pub(crate) activity: Option<Timestamp>,
}

impl Seen {
    /// The spec's start: `meet_time`, or `created_at` while it never had one.
    pub fn start(&self) -> Timestamp {
        self.meet_time.or(self.created_at).expect("an admitted meeting has a start")
    }

    /// The size of the instance set.
    pub fn instances(&self) -> usize {
        self.instances.len()
    }
}

/// What was read, for the summary line.
#[derive(Debug, Clone, Default)]
pub struct ReadStats {
    pub lines: u64,
    /// Records accepted (duplicates included).
    pub records: u64,
    pub duplicates: u64,
    /// Dead letters by reason kind.
    pub dead_letters: BTreeMap<&'static str, u64>,
}

impl ReadStats {
    pub fn dead(&self) -> u64 {
        self.dead_letters.values().sum()
    }
}

#[derive(Default)]
pub(crate) struct Front {
    index: FxHashMap<MeetingId, u32>,
    pub(crate) meetings: Vec<Seen>,
    clock: Option<Timestamp>,
    /// The latest event time among accepted records.
    pub(crate) latest: Option<Timestamp>,
    pub(crate) stats: ReadStats,
    /// Whose admission and dedupe the records get (the workflow's, whatever the model).
    rules: MeetingWorkflow,
}

impl Front {
    pub(crate) fn dead_letter(&mut self, reason: &RecordError) {
        *self.stats.dead_letters.entry(reason.kind()).or_default() += 1;
    }

    /// Take one decoded record: `Some` when the models must see it.
    ///
    /// Admission and dedupe are the machine's ([`Machine::creates`],
    /// [`duplicate`]), as the durable engine applies them.
    pub(crate) fn accept(&mut self, d: Decoded) -> Option<Event> {
        let input = Input::Record(d.change);
        let Input::Record(change) = &input else { unreachable!("built above") };
        let known = self.index.get(&change.meeting_id).copied();
        if known.is_none() {
            // A new meeting needs a start (rule 1); a dead letter does not move the clock.
            if let Err(rejection) = self.rules.creates(&input) {
                self.dead_letter(&RecordError::Rejected(rejection));
                return None;
            }
        }
        let clock = self.clock.unwrap_or(Timestamp::EPOCH);
        let t = change.event_time.unwrap_or(clock);
        let at = clock.max(t);
        self.clock = Some(at);
        self.latest = Some(self.latest.map_or(t, |l| l.max(t)));
        self.stats.records += 1;

        let m = match known {
            Some(m) => m,
            None => {
                let m = u32::try_from(self.meetings.len()).expect("fewer than 4 billion meetings");
                self.index.insert(change.meeting_id.clone(), m);
                self.meetings.push(Seen {
                    id: change.meeting_id.clone(),
                    meet_time: None,
                    created_at: None,
                    instances: Vec::new(),
                    event_ids: Vec::new(),
                    activity: None,
                });
                m
            }
        };
        let seen = &mut self.meetings[m as usize];
        if duplicate::<MeetingWorkflow, _>(&seen.event_ids, &input).is_some() {
            self.stats.duplicates += 1;
            return None;
        }
        if let Some(key) = MeetingWorkflow::dedupe_key(&input) {
            seen.event_ids.push(key.into());
        }
        if let Some(img) = &change.image {
            seen.meet_time = img.meet_time.or(seen.meet_time);
            seen.created_at = img.created_at.or(seen.created_at);
            if change.event_name == EventName::Modify && img.status.as_deref() != Some("TERMINATED") {
                seen.activity = Some(seen.activity.map_or(t, |a| a.max(t)));
            }
        }
        for s in &change.instance_ids {
            if !seen.instances.iter().any(|i| i.as_str() == s.value) {
                if let Some(id) = InstanceId::parse(&s.value) {
                    seen.instances.push(id);
                }
            }
        }
        Some(Event { meeting: m, at, input })
    }
}
