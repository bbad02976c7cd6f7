//! Generated days of stream records, beyond the fixtures.
//!
//! A deterministic generator writes days with every scenario kind of the spec
//! (no-shows, partial and complete meetings, keep-alives, caps, declared
//! durations, start changes, deletes, external ends, legacy rows, late and
//! out-of-order records, duplicates, missing times, bad records, envelopes).
//! The SQLite engine — batched, paged timers, group commit — must give the
//! same outcome for every meeting as a naive in-memory reading of the spec,
//! whatever the batch size.

mod common;

use spindown::inspect::MeetingStore;
use spindown::meeting::{EffectFilter, MeetingFilter, TimerFilter};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use spindown::clock::{Clock, ManualClock};
use spindown::engine::Engine;
use spindown::inspect::OutcomeLine;
use spindown::meeting::record::{decode_line, Item};
use spindown::meeting::{admits, transition, Input, Meeting, MeetingId, Mode, Policy};
use spindown::source::feed::LineFeed;
use spindown::source::replay::{replay, ReplayOptions};
use spindown::store::memory::MemoryStore;
use spindown::store::sqlite::{Durability, SqliteOptions, SqliteStore};
use spindown::store::{EffectStatus, Store};
use spindown::time::{Span, Timestamp};

/// The spec, read naively: every meeting in a map, every timer found by a scan.
struct Model {
    policy: Policy,
    meetings: BTreeMap<MeetingId, Meeting>,
    seen: HashSet<String>,
    clock: Timestamp,
    dead: usize,
}

impl Model {
    fn new(policy: Policy) -> Self {
        Model { policy, meetings: BTreeMap::new(), seen: HashSet::new(), clock: Timestamp::EPOCH, dead: 0 }
    }

    fn fire_through(&mut self, target: Timestamp) {
        loop {
            let next = self
                .meetings
                .values()
                .flat_map(|m| m.timers.pending().map(move |(k, d)| (d, k.rank(), m.id.clone(), k)))
                .min();
            let Some((due, _, id, kind)) = next else { return };
            if due > target {
                return;
            }
            self.clock = self.clock.max(due);
            let step =
                transition(self.meetings.get(&id), &Input::Timer { kind, due }, self.clock, &self.policy).unwrap();
            self.meetings.insert(id, step.meeting);
        }
    }

    fn line(&mut self, line: &[u8]) {
        for item in decode_line(line) {
            let d = match item {
                Item::Record(d) => d,
                Item::Dead(_) => {
                    self.dead += 1;
                    continue;
                }
            };
            let c = d.change;
            if admits(self.meetings.get(&c.meeting_id), &c).is_err() {
                self.dead += 1;
                continue;
            }
            let target = self.clock.max(c.event_time.unwrap_or(self.clock));
            self.fire_through(target);
            self.clock = target;
            if let Some(e) = &c.event_id {
                if !self.seen.insert(e.clone()) {
                    continue;
                }
            }
            let id = c.meeting_id.clone();
            let step = transition(self.meetings.get(&id), &Input::Record(c), self.clock, &self.policy).unwrap();
            self.meetings.insert(id, step.meeting);
            self.fire_through(self.clock);
        }
    }

    fn outcomes(&self) -> BTreeMap<String, Value> {
        self.meetings
            .values()
            .map(|m| (m.id.to_string(), serde_json::to_value(OutcomeLine::from(m)).unwrap()))
            .collect()
    }
}

/// A generated record (before shuffling and corruption).
struct Ev {
    at: i64,
    line: String,
}

const DAY: i64 = 1_795_651_200; // 2026-11-26T00:00:00Z

fn iso(rng: &mut StdRng, secs: i64) -> String {
    let base = Timestamp::from_secs(secs).to_rfc3339();
    let naive = base.trim_end_matches('Z').to_string();
    match rng.gen_range(0..6) {
        0 => naive,
        1 => naive.replacen('T', " ", 1) + "Z",
        2 => {
            // +02:00: the same instant, local time two hours later.
            let local = Timestamp::from_secs(secs + 7200).to_rfc3339();
            local.trim_end_matches('Z').to_string() + "+02:00"
        }
        3 => {
            let local = Timestamp::from_secs(secs - 5 * 3600 - 1800).to_rfc3339();
            local.trim_end_matches('Z').to_string() + "-05:30"
        }
        4 => naive + ".000Z",
        _ => base,
    }
}

fn instance(rng: &mut StdRng) -> String {
    match rng.gen_range(0..20) {
        0 => "i-0123456789ABCDEF0".to_string(), // uppercase: invalid
        1 => "i-1234".to_string(),
        2 => "sir-12345678".to_string(),
        n if n < 10 => format!("i-{:08x}", rng.gen::<u32>()),
        _ => format!("i-{:017x}", rng.gen::<u128>() & 0xff_ffff_ffff_ffff_ffff),
    }
}

struct Gen<'a> {
    rng: &'a mut StdRng,
    evs: Vec<Ev>,
    next_id: u64,
}

impl Gen<'_> {
    fn emit(&mut self, name: &str, at: i64, meeting: &str, image: Option<Value>, old: Option<Value>) {
        self.next_id += 1;
        let mut ddb = json!({"Keys": {"id": {"S": meeting}}, "SequenceNumber": format!("{:021}", self.next_id),
            "StreamViewType": "NEW_AND_OLD_IMAGES"});
        if self.rng.gen_range(0..60) != 0 {
            ddb["ApproximateCreationDateTime"] = json!(at);
        }
        if let Some(i) = image {
            ddb["NewImage"] = i;
        }
        if let Some(o) = old {
            ddb["OldImage"] = o;
        }
        let mut r = json!({"eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb", "dynamodb": ddb});
        if self.rng.gen_range(0..40) != 0 {
            r["eventID"] = json!(format!("{:032x}", self.rng.gen::<u128>()));
        }
        self.evs.push(Ev { at, line: r.to_string() });
    }

    /// One meeting's life, as its row changes.
    fn meeting(&mut self, n: usize) {
        let id = format!("m-{n:05}");
        let meet = DAY + self.rng.gen_range(0..20 * 3600) / 60 * 60;
        let legacy = self.rng.gen_range(0..10) == 0;
        let teacher = instance(self.rng);
        let student = instance(self.rng);
        let mut item = json!({"id": {"S": id}, "status": {"S": "SCHEDULED"},
            "created_at": {"S": iso(self.rng, meet - 7200)},
            "teacher_ec2_id": {"S": teacher}, "student_ec2_id": {"S": student}});
        if legacy {
            item["created_at"] = json!({"S": iso(self.rng, meet)});
        } else {
            item["meet_time"] = json!({"S": iso(self.rng, meet)});
        }
        if self.rng.gen_range(0..6) == 0 {
            let d = [0, 20, 30, 45, 90, 300][self.rng.gen_range(0..6)];
            item["duration_minutes"] = json!({"N": d.to_string()});
        }
        let late = self.rng.gen_range(0..12) == 0;
        let mut t = if late { meet + self.rng.gen_range(0..5 * 3600) } else { meet - self.rng.gen_range(600..7200) };
        self.emit("INSERT", t, &id, Some(item.clone()), None);
        let kind = self.rng.gen_range(0..12);
        let step = |rng: &mut StdRng, t: &mut i64, lo: i64, hi: i64| *t += rng.gen_range(lo..hi);
        if kind == 0 {
            return; // no-show
        }
        if kind == 1 {
            // Start moved.
            let new_meet = meet + self.rng.gen_range(-3600..7200) / 60 * 60;
            item["meet_time"] = json!({"S": iso(self.rng, new_meet)});
            step(self.rng, &mut t, 60, 1200);
            let old = item.clone();
            self.emit("MODIFY", t, &id, Some(item.clone()), Some(old));
            return;
        }
        // Joins.
        item["status"] = json!({"S": "IN_PROGRESS"});
        t = t.max(meet + self.rng.gen_range(-300..600));
        self.emit("MODIFY", t, &id, Some(item.clone()), None);
        match kind {
            2 => {} // in progress forever → recheck, cap
            3 | 4 => {
                item["teacher_session_data"] = json!({"S": "blob"});
                step(self.rng, &mut t, 60, 2400);
                self.emit("MODIFY", t, &id, Some(item.clone()), None);
                if kind == 4 {
                    item["student_session_data"] = json!({"M": {"k": {"S": "v"}}});
                    step(self.rng, &mut t, 0, 2400);
                    self.emit("MODIFY", t, &id, Some(item.clone()), None);
                }
            }
            5 => {
                step(self.rng, &mut t, 60, 3600);
                self.emit("REMOVE", t, &id, None, Some(item.clone()));
            }
            6 => {
                item["status"] = json!({"S": "TERMINATED"});
                step(self.rng, &mut t, 60, 3600);
                self.emit("MODIFY", t, &id, Some(item.clone()), None);
            }
            7 => {
                // Leaves without data, status cleared.
                item["status"] = json!({"S": "SCHEDULED"});
                step(self.rng, &mut t, 600, 5400);
                self.emit("MODIFY", t, &id, Some(item.clone()), None);
            }
            8 => {
                item["teacher_session_data"] = json!({"NULL": true});
                item["student_session_data"] = json!({"S": "x"});
                step(self.rng, &mut t, 60, 1200);
                self.emit("MODIFY", t, &id, Some(item.clone()), None);
            }
            9 => {
                item["duration_minutes"] = json!({"N": format!("{}", self.rng.gen_range(1..120) as f64 / 2.0)});
                step(self.rng, &mut t, 60, 1200);
                self.emit("MODIFY", t, &id, Some(item.clone()), None);
            }
            _ => {
                // Both sides, then a record without an image, then a late delete.
                item["teacher_session_data"] = json!({"S": "a"});
                item["student_session_data"] = json!({"S": "b"});
                step(self.rng, &mut t, 60, 3600);
                self.emit("MODIFY", t, &id, Some(item.clone()), None);
                step(self.rng, &mut t, 60, 600);
                self.emit("MODIFY", t, &id, None, Some(item.clone()));
                step(self.rng, &mut t, 3600, 9 * 3600);
                self.emit("REMOVE", t, &id, None, Some(item.clone()));
            }
        }
    }
}

/// A day of `meetings` meetings as lines, with duplicates, jitter and bad records.
fn generate(seed: u64, meetings: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut g = Gen { rng: &mut rng, evs: Vec::new(), next_id: 0 };
    for n in 0..meetings {
        g.meeting(n);
    }
    let mut evs = std::mem::take(&mut g.evs);
    drop(g);
    // Stream order is roughly event order, with some jitter.
    let mut keyed: Vec<(i64, Ev)> = evs.drain(..).map(|e| (e.at + rng.gen_range(-90..90), e)).collect();
    keyed.sort_by_key(|(k, _)| *k);
    let evs: Vec<Ev> = keyed.into_iter().map(|(_, e)| e).collect();
    let mut lines = Vec::new();
    let mut i = 0;
    while i < evs.len() {
        match rng.gen_range(0..100) {
            0..=3 => lines.push(evs[rng.gen_range(0..=i)].line.clone()), // a duplicate delivery
            4 => lines.push("{not json".to_string()),
            5 => lines.push(r#"{"eventName":"UPSERT","dynamodb":{"Keys":{"id":{"S":"m-x"}}}}"#.to_string()),
            6 => lines.push(String::new()),
            7 if i + 1 < evs.len() => {
                lines.push(format!("{{\"Records\": [{}, {}, 17]}}", evs[i].line, evs[i + 1].line));
                i += 2;
                continue;
            }
            _ => {}
        }
        lines.push(evs[i].line.clone());
        i += 1;
    }
    lines
}

/// Which store a replay of a generated day runs on.
#[derive(Clone, Copy, Debug)]
enum On {
    Sqlite,
    Memory,
}

async fn engine_outcomes(lines: &[String], policy: &Policy, batch: usize, on: On) -> BTreeMap<String, Value> {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = match on {
        On::Sqlite => {
            let options = SqliteOptions { durability: Durability::Off, ..SqliteOptions::default() };
            Arc::new(SqliteStore::open(&dir.path().join("g.db"), &options).await.unwrap())
        }
        On::Memory => Arc::new(MemoryStore::new()),
    };
    let clock = ManualClock::new(Timestamp::EPOCH);
    let engine = Engine::start(
        store.clone(),
        policy.clone(),
        Arc::new(clock.clone()),
        spindown::source::replay::engine_options(),
    )
    .await
    .unwrap();
    let text = lines.join("\n");
    let opts = ReplayOptions { batch, ..ReplayOptions::default() };
    replay(&engine, &clock, LineFeed::new(std::io::Cursor::new(text.into_bytes()), "gen"), &opts).await.unwrap();
    let left = store.timers(&TimerFilter { meeting: None, limit: 1 }).await.unwrap();
    assert!(left.is_empty(), "replay runs on until no timer is pending");
    let pending = EffectFilter { status: Some(EffectStatus::Pending), ..EffectFilter::default() };
    assert!(store.effects(&pending).await.unwrap().is_empty(), "the dry run completed every effect");
    let ms = store.meetings(&MeetingFilter::default()).await.unwrap();
    ms.iter()
        .map(|m| (m.meeting.id.to_string(), serde_json::to_value(OutcomeLine::from(&m.meeting)).unwrap()))
        .collect()
}

fn model_outcomes(lines: &[String], policy: &Policy) -> BTreeMap<String, Value> {
    let mut model = Model::new(policy.clone());
    for l in lines {
        model.line(l.as_bytes());
    }
    model.fire_through(Timestamp::MAX);
    model.outcomes()
}

#[tokio::test]
async fn generated_days_match_the_naive_reading_of_the_spec_at_every_batch_size() {
    let fixed = Policy { mode: Mode::Fixed, ..Policy::default() };
    let short = Policy::from_toml_str("safety_net_delay = \"5m\"\nkeepalive_recheck = \"7m\"\nmax_lifetime = \"2h\"\nmin_success_duration = \"20m\"\noverrun_grace = \"1m\"").unwrap();
    for (seed, policy) in [(1, Policy::default()), (2, Policy::default()), (3, fixed), (4, short)] {
        let lines = generate(seed, 300);
        let want = model_outcomes(&lines, &policy);
        assert!(want.len() >= 290, "seed {seed}: {} meetings", want.len());
        let reasons: HashSet<_> = want.values().filter_map(|v| v["reason"].as_str().map(str::to_owned)).collect();
        if policy.mode == Mode::Smart {
            assert!(reasons.len() >= 7, "seed {seed}: the day covers the scenario kinds: {reasons:?}");
        }
        // One unit of work per record is slow in a debug build; one seed is enough for it.
        let batches: &[usize] = if seed == 1 { &[1, 7, 1000] } else { &[7, 1000] };
        for &batch in batches {
            let got = engine_outcomes(&lines, &policy, batch, On::Sqlite).await;
            assert_same_outcomes(&got, &want);
        }
        assert_same_outcomes(&engine_outcomes(&lines, &policy, 50, On::Memory).await, &want);
    }
}

#[test]
fn a_generated_day_through_the_binary() {
    let lines = generate(7, 200);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("day.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let got = outcomes(&run_ok(spindown().arg("replay").arg(&file).arg("--json")));
    assert_same_outcomes(&got, &model_outcomes(&lines, &Policy::default()));
}

#[tokio::test]
async fn a_long_keepalive_chain_ends_at_the_cap() {
    // An IN_PROGRESS meeting with no data is looked at every keepalive_recheck until the cap.
    let policy = Policy::from_toml_str("keepalive_recheck = \"1s\"\nmax_lifetime = \"2h\"").unwrap();
    let line = json!({"eventID": "e", "eventName": "INSERT", "dynamodb": {"ApproximateCreationDateTime": DAY,
        "Keys": {"id": {"S": "m-1"}}, "NewImage": {"meet_time": {"S": "2026-11-26T00:00:00Z"}, "status": {"S": "IN_PROGRESS"}}}})
    .to_string();
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::EPOCH);
    let store = Arc::new(SqliteStore::open(&dir.path().join("k.db"), &SqliteOptions::default()).await.unwrap());
    let engine =
        Engine::start(store.clone(), policy, Arc::new(clock.clone()), spindown::source::replay::engine_options())
            .await
            .unwrap();
    let s =
        replay(&engine, &clock, LineFeed::new(std::io::Cursor::new(line.into_bytes()), "k"), &ReplayOptions::default())
            .await
            .unwrap();
    // 2h − 15m of one-second re-checks, plus the safety net and the cap.
    assert_eq!(s.total().timers_fired, (2 * 3600 - 15 * 60) + 2);
    let m = store.meeting(&MeetingId::new("m-1").unwrap()).await.unwrap().unwrap().meeting;
    assert_eq!(m.ended.unwrap().at, Timestamp::from_secs(DAY).saturating_add(Span::from_hours(2)));
    assert_eq!(clock.now(), m.ended.unwrap().at);
}
