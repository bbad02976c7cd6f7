//! The stream reader against a scripted stream: what the local endpoint cannot
//! do — shard lineage, paged shard lists, expired iterators, trimmed data,
//! throttling — and checkpoints that survive a restart.

use spindown::inspect::MeetingStore;
use spindown::operate::MeetingEngine;
use std::collections::BTreeMap;
use std::sync::Arc;

mod common;

use common::fake_stream::FakeStream;
use common::records::sqlite_engine;
use spindown::clock::ManualClock;
use spindown::meeting::{CauseKind, Outcome, State};
use spindown::source::stream::{Position, ReaderOptions, Start, StreamError, StreamReader};
use spindown::time::Timestamp;

const ARN: &str = "arn:aws:dynamodb:eu-west-1:1:table/t/stream/x";

struct Rig {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    fake: FakeStream,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        Rig { _dir: dir, db, fake: FakeStream::default() }
    }

    async fn engine(&self) -> Arc<MeetingEngine> {
        let clock = ManualClock::live(Timestamp::parse_iso("2026-11-26T12:00:00Z").unwrap());
        Arc::new(sqlite_engine(&self.db, Arc::new(clock)).await.0)
    }

    async fn reader(&self, engine: &Arc<MeetingEngine>, start: Start) -> StreamReader {
        let options = ReaderOptions { start, page_limit: 3, ..ReaderOptions::default() };
        StreamReader::new(Arc::new(self.fake.clone()), engine.clone(), ARN.into(), options).await.unwrap()
    }
}

/// Rounds until a round reads nothing; returns the ids in the order applied.
async fn drain(reader: &mut StreamReader) -> u64 {
    let mut total = 0;
    for _ in 0..100 {
        let r = reader.round().await.unwrap();
        total += r.records;
        if r.records == 0 && r.expired == 0 && r.trimmed == 0 && r.throttled == 0 && r.closed == 0 {
            return total;
        }
    }
    panic!("the reader never settled");
}

async fn applied_order(engine: &MeetingEngine) -> Vec<String> {
    // Each meeting is created by one record: the order of their first history rows.
    let ms = engine.store().meetings(&Default::default()).await.unwrap();
    let mut firsts = Vec::new();
    for m in ms {
        let h = engine.store().history(&m.meeting.id).await.unwrap();
        firsts.push((h[0].seq, m.meeting.id.to_string()));
    }
    firsts.sort();
    firsts.into_iter().map(|(_, id)| id).collect()
}

#[tokio::test]
async fn parents_are_read_to_their_end_before_children() {
    let rig = Rig::new();
    rig.fake.add_shard("shard-0", None);
    rig.fake.add_shard("shard-1a", Some("shard-0"));
    rig.fake.add_shard("shard-1b", Some("shard-0"));
    for i in 1..=5 {
        rig.fake.push("shard-0", i, &format!("p{i}"));
    }
    rig.fake.push("shard-1a", 10, "a1");
    rig.fake.push("shard-1b", 20, "b1");
    let engine = rig.engine().await;
    let mut reader = rig.reader(&engine, Start::TrimHorizon).await;
    // The parent is still open: children wait.
    assert_eq!(drain(&mut reader).await, 5);
    assert_eq!(
        engine.store().meeting(&"a1".parse().unwrap()).await.unwrap(),
        None,
        "child read before its parent closed"
    );
    // The parent splits: it is closed; now the children are read.
    rig.fake.with(|s| s.shards.get_mut("shard-0").unwrap().closed = true);
    rig.fake.push("shard-1a", 11, "a2");
    assert_eq!(drain(&mut reader).await, 3);
    let order = applied_order(&engine).await;
    assert_eq!(&order[..5], ["p1", "p2", "p3", "p4", "p5"]);
    assert_eq!(order.len(), 8);
    let cps = engine.store().checkpoints(Some(ARN)).await.unwrap();
    let cp: BTreeMap<_, _> = cps.iter().map(|c| (c.shard_id.as_str(), c)).collect();
    assert!(cp["shard-0"].closed, "the parent is recorded as fully read");
    assert_eq!(cp["shard-0"].sequence_number.as_deref(), Some("5"));
    assert_eq!(cp["shard-1a"].sequence_number.as_deref(), Some("11"));
    assert_eq!(cp["shard-1b"].parent_shard_id.as_deref(), Some("shard-0"));
    assert!(rig.fake.with(|s| s.describe_calls) >= 3, "every page of the shard list was read");
}

#[tokio::test]
async fn a_restart_resumes_after_the_checkpoint() {
    let rig = Rig::new();
    rig.fake.add_shard("shard-0", None);
    for i in 1..=4 {
        rig.fake.push("shard-0", i, &format!("m{i}"));
    }
    {
        let engine = rig.engine().await;
        let mut reader = rig.reader(&engine, Start::TrimHorizon).await;
        assert_eq!(drain(&mut reader).await, 4);
        engine.store().close().await;
    }
    for i in 5..=6 {
        rig.fake.push("shard-0", i, &format!("m{i}"));
    }
    let engine = rig.engine().await;
    let mut reader = rig.reader(&engine, Start::TrimHorizon).await;
    assert_eq!(drain(&mut reader).await, 2, "only the new records");
    let last = rig.fake.with(|s| s.positions.last().cloned()).unwrap();
    assert_eq!(last, ("shard-0".to_string(), Position::After("4".into())));
    assert_eq!(engine.store().counts().await.unwrap().meetings_by_state, vec![(State::Scheduled, 6)]);
}

#[tokio::test]
async fn expired_iterators_are_reacquired_without_loss_or_duplicates() {
    let rig = Rig::new();
    rig.fake.add_shard("shard-0", None);
    for i in 1..=7 {
        rig.fake.push("shard-0", i, &format!("m{i}"));
    }
    let engine = rig.engine().await;
    let mut reader = rig.reader(&engine, Start::TrimHorizon).await;
    let r = reader.round().await.unwrap();
    assert_eq!(r.records, 3);
    rig.fake.with(|s| s.record_faults.push_back(StreamError::ExpiredIterator));
    let r = reader.round().await.unwrap();
    assert_eq!((r.records, r.expired), (0, 1));
    assert_eq!(drain(&mut reader).await, 4);
    let positions = rig.fake.with(|s| s.positions.clone());
    assert_eq!(positions.last().unwrap().1, Position::After("3".into()), "re-acquired from the checkpoint");
    let c = engine.store().counts().await.unwrap();
    assert_eq!(c.meetings_by_state, vec![(State::Scheduled, 7)]);
}

#[tokio::test]
async fn trimmed_data_is_a_loud_recorded_gap_and_reading_goes_on() {
    let rig = Rig::new();
    rig.fake.add_shard("shard-0", None);
    for i in 1..=2 {
        rig.fake.push("shard-0", i, &format!("m{i}"));
    }
    {
        let engine = rig.engine().await;
        let mut reader = rig.reader(&engine, Start::TrimHorizon).await;
        assert_eq!(drain(&mut reader).await, 2);
    }
    // The worker was down for more than a day: records 3–5 were written and trimmed.
    for i in 3..=8 {
        rig.fake.push("shard-0", i, &format!("m{i}"));
    }
    rig.fake.with(|s| s.shards.get_mut("shard-0").unwrap().trimmed_below = 6);
    let engine = rig.engine().await;
    let mut reader = rig.reader(&engine, Start::TrimHorizon).await;
    drain(&mut reader).await;
    let gaps = engine.store().gaps().await.unwrap();
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].shard_id, "shard-0");
    assert!(gaps[0].detail.contains("trimmed") || gaps[0].detail.contains("older"), "{}", gaps[0].detail);
    let ids = applied_order(&engine).await;
    assert_eq!(ids, ["m1", "m2", "m6", "m7", "m8"], "continues from the oldest available record");
    // A trim reported by GetRecords itself is handled the same way.
    rig.fake.with(|s| s.record_faults.push_back(StreamError::Trimmed("gone".into())));
    rig.fake.push("shard-0", 9, "m9");
    drain(&mut reader).await;
    assert_eq!(engine.store().gaps().await.unwrap().len(), 2);
    assert!(applied_order(&engine).await.contains(&"m9".to_string()));
}

#[tokio::test]
async fn throttling_backs_off_and_loses_nothing() {
    let rig = Rig::new();
    rig.fake.add_shard("shard-0", None);
    for i in 1..=5 {
        rig.fake.push("shard-0", i, &format!("m{i}"));
    }
    rig.fake.with(|s| {
        s.record_faults.push_back(StreamError::Throttled("LimitExceededException".into()));
        s.record_faults.push_back(StreamError::Transient("503".into()));
    });
    let engine = rig.engine().await;
    let mut reader = rig.reader(&engine, Start::TrimHorizon).await;
    let r = reader.round().await.unwrap();
    assert_eq!(r.throttled, 1);
    let mut total = 0;
    for _ in 0..10 {
        total += reader.round().await.unwrap().records;
    }
    assert_eq!(total, 5);
    // A fatal error stops the reader (and the worker) with the reason.
    rig.fake.with(|s| s.record_faults.push_back(StreamError::Fatal("AccessDeniedException".into())));
    let err = reader.round().await.unwrap_err().to_string();
    assert!(err.contains("AccessDeniedException"), "{err}");
}

#[tokio::test]
async fn start_latest_skips_history_only_on_a_new_stream() {
    let rig = Rig::new();
    rig.fake.add_shard("shard-0", None);
    rig.fake.push("shard-0", 1, "old");
    let engine = rig.engine().await;
    let mut reader = rig.reader(&engine, Start::Latest).await;
    assert_eq!(drain(&mut reader).await, 0);
    rig.fake.push("shard-0", 2, "new");
    assert_eq!(drain(&mut reader).await, 1);
    // A child shard created later is read from its start, --start latest or not.
    rig.fake.with(|s| s.shards.get_mut("shard-0").unwrap().closed = true);
    rig.fake.add_shard("shard-1", Some("shard-0"));
    rig.fake.push("shard-1", 3, "child-first");
    rig.fake.push("shard-1", 4, "child-second");
    assert_eq!(drain(&mut reader).await, 2);
    assert_eq!(applied_order(&engine).await, ["new", "child-first", "child-second"]);
}

#[tokio::test]
async fn a_page_applied_twice_is_deduplicated() {
    // A crash after the records committed but (impossible here, simulated) before the
    // checkpoint would re-deliver the page: eventIDs make that harmless.
    let rig = Rig::new();
    rig.fake.add_shard("shard-0", None);
    for i in 1..=3 {
        rig.fake.push("shard-0", i, &format!("m{i}"));
    }
    let engine = rig.engine().await;
    let mut reader = rig.reader(&engine, Start::TrimHorizon).await;
    drain(&mut reader).await;
    // Forget the checkpoint and read again.
    let fresh = Rig { _dir: tempfile::tempdir().unwrap(), db: rig.db.clone(), fake: rig.fake.clone() };
    let e2 = fresh.engine().await;
    sqlx_free_reset(&e2).await;
    let mut again = fresh.reader(&e2, Start::TrimHorizon).await;
    assert_eq!(drain(&mut again).await, 3, "re-read");
    let h = e2.store().history(&"m1".parse().unwrap()).await.unwrap();
    assert_eq!(h.iter().filter(|h| h.entry.cause.kind() == CauseKind::Duplicate).count(), 1);
    assert_eq!(h.iter().filter(|h| h.entry.outcome == Outcome::Created).count(), 1);
}

/// Drop the stored checkpoints, as an operator resetting the stream position would.
async fn sqlx_free_reset(engine: &MeetingEngine) {
    let cps = engine.store().checkpoints(None).await.unwrap();
    assert!(!cps.is_empty());
    engine.store().forget_checkpoints(ARN).await.unwrap();
}

/// Two workers on one database share the shards (the first gives back what
/// is over its share when the second appears), and when one dies the other
/// takes its shards over once their leases expire — every record applied once.
#[tokio::test]
async fn two_workers_share_the_shards_and_one_takes_over_when_the_other_dies() {
    use spindown::store::WorkerInfo;
    use std::time::Duration;
    let rig = Rig::new();
    for s in 0..4u64 {
        let shard = format!("shard-{s}");
        rig.fake.add_shard(&shard, None);
        for i in 1..=2 {
            rig.fake.push(&shard, s * 100 + i, &format!("s{s}-{i}"));
        }
    }
    let options = |id: &str| ReaderOptions {
        page_limit: 3,
        worker: WorkerInfo::this_process(Some(id.into())),
        lease_ttl: Duration::from_secs(1),
        ..ReaderOptions::default()
    };
    let (e1, e2) = (rig.engine().await, rig.engine().await);
    let mut w1 = StreamReader::new(Arc::new(rig.fake.clone()), e1.clone(), ARN.into(), options("w-1")).await.unwrap();
    let mut w2 = StreamReader::new(Arc::new(rig.fake.clone()), e2.clone(), ARN.into(), options("w-2")).await.unwrap();
    w1.round().await.unwrap();
    assert_eq!(w1.held_shards().len(), 4, "alone, w-1 takes every shard");
    // Both run; within a few lease periods each holds two.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while (w1.held_shards().len(), w2.held_shards().len()) != (2, 2) {
        assert!(
            std::time::Instant::now() < deadline,
            "never balanced: {:?} / {:?}",
            w1.held_shards(),
            w2.held_shards()
        );
        w1.round().await.unwrap();
        w2.round().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (h1, h2) = (w1.held_shards(), w2.held_shards());
    assert!(h1.iter().all(|s| !h2.contains(s)), "a shard has one reader: {h1:?} / {h2:?}");
    // More records on every shard; then w-2 dies (it stops renewing, without giving its leases back).
    for s in 0..4u64 {
        rig.fake.push(&format!("shard-{s}"), s * 100 + 50, &format!("s{s}-late"));
    }
    drop(w2);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while w1.held_shards().len() < 4 {
        assert!(std::time::Instant::now() < deadline, "w-1 never took over: {:?}", w1.held_shards());
        w1.round().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drain(&mut w1).await;
    let ids = applied_order(&e1).await;
    assert_eq!(ids.len(), 12, "every record's meeting exists: {ids:?}");
    for id in &ids {
        let h = e1.store().history(&id.parse().unwrap()).await.unwrap();
        assert_eq!(h.len(), 1, "{id} applied once: {h:?}");
    }
}

/// Records on two open shards: meetings `b-*` on shard B only, `a-*` on A.
/// Event times interleave across the shards; each shard's own are in order.
fn two_shard_day() -> (Vec<(String, String)>, Vec<String>) {
    use common::records::{img, rec, t};
    use serde_json::json;
    let data = |side: &str| json!({format!("{side}_session_data"): {"S": "x"}});
    let modify = |m: &str, n: usize, at: &str, meet: &str, extra| {
        rec(Some(&format!("{m}-{n}")), "MODIFY", Some(t(at)), m, img(meet, extra))
    };
    let status = |s: &str| json!({"status": {"S": s}});
    let both = |a: serde_json::Value, b: serde_json::Value| {
        let mut o = a.as_object().unwrap().clone();
        o.extend(b.as_object().unwrap().clone());
        serde_json::Value::Object(o)
    };
    let mut shard_b = vec![
        // Both sides join 2 and 3 minutes in: the safety net finds them complete.
        rec(Some("b-1-0"), "INSERT", Some(t("10:00")), "b-1", img("10:00", status("IN_PROGRESS"))),
        modify("b-1", 1, "10:02", "10:00", both(status("IN_PROGRESS"), data("teacher"))),
        modify("b-1", 2, "10:03", "10:00", both(both(status("IN_PROGRESS"), data("teacher")), data("student"))),
        // Nobody by its safety net (10:20); the teacher's data comes after it.
        rec(Some("b-2-0"), "INSERT", Some(t("10:05")), "b-2", img("10:05", status("SCHEDULED"))),
        modify("b-2", 1, "10:25", "10:05", data("teacher")),
        // One side by the net (10:25): partial; the other too late.
        rec(Some("b-3-0"), "INSERT", Some(t("10:10")), "b-3", img("10:10", status("IN_PROGRESS"))),
        modify("b-3", 1, "10:12", "10:10", data("teacher")),
        modify("b-3", 2, "10:30", "10:10", both(data("teacher"), data("student"))),
    ];
    let mut shard_a = Vec::new();
    for i in 0..15 {
        let m = format!("a-{i}");
        let start = format!("10:{:02}", i * 3);
        shard_a.push(rec(Some(&format!("{m}-0")), "INSERT", Some(t(&start)), &m, img(&start, status("SCHEDULED"))));
        if i % 2 == 1 {
            let (t1, t2) = (format!("10:{:02}", i * 3 + 1), format!("10:{:02}", i * 3 + 2));
            shard_a.push(modify(&m, 1, &t1, &start, data("teacher")));
            shard_a.push(modify(&m, 2, &t2, &start, both(data("teacher"), data("student"))));
        }
    }
    // A shard holds its records in the order they were written.
    let time = |l: &String| {
        serde_json::from_str::<serde_json::Value>(l).unwrap()["dynamodb"]["ApproximateCreationDateTime"]
            .as_f64()
            .unwrap()
    };
    shard_a.sort_by(|x, y| time(x).partial_cmp(&time(y)).unwrap());
    shard_b.sort_by(|x, y| time(x).partial_cmp(&time(y)).unwrap());
    // The records merged by event time (stable: A before B at equal times), as replay reads them.
    let mut merged: Vec<String> = shard_a.iter().chain(shard_b.iter()).cloned().collect();
    merged.sort_by(|x, y| time(x).partial_cmp(&time(y)).unwrap());
    let tagged = shard_a
        .drain(..)
        .map(|l| ("shard-a".to_string(), l))
        .chain(shard_b.drain(..).map(|l| ("shard-b".to_string(), l)))
        .collect();
    (tagged, merged)
}

/// (state, reason) by meeting, as `spindown replay --json` says.
fn replayed(lines: &[String], dir: &std::path::Path) -> BTreeMap<String, (String, String)> {
    let file = dir.join("merged.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = common::run_ok(common::spindown().arg("replay").arg(&file).arg("--json"));
    common::outcomes(&out)
        .into_iter()
        .map(|(id, v)| (id, (v["state"].as_str().unwrap().to_string(), v["reason"].as_str().unwrap_or("").to_string())))
        .collect()
}

async fn live_outcomes(engine: &MeetingEngine) -> BTreeMap<String, (String, String)> {
    let ms = engine.store().meetings(&Default::default()).await.unwrap();
    ms.into_iter()
        .map(|m| {
            let m = m.meeting;
            let reason = m.ended.map(|e| e.reason.to_string()).unwrap_or_default();
            (m.id.to_string(), (m.state.to_string(), reason))
        })
        .collect()
}

/// Two open shards with a backlog, read at several relative speeds: shard B
/// (meetings `b-*`) one record per page, shard A ahead by 1 to 50 records a
/// page. The stream gate holds every meeting's timers until both shards are
/// read past them, and a record fires only its own meeting's timers up to its
/// event time: the outcome equals replay of the records merged by event time.
/// (Before, applying a record fired every meeting's timers up to the latest
/// event time seen on any shard: b-1's safety net fired the moment its INSERT
/// was read, and it ended NO_SHOW_TIMEOUT.)
#[tokio::test]
async fn two_shards_read_at_different_speeds_end_like_replay_of_the_merged_records() {
    use spindown::engine::StreamGate;
    use spindown::time::Span;
    let (records, merged) = two_shard_day();
    let dir = tempfile::tempdir().unwrap();
    let want = replayed(&merged, dir.path());
    assert_eq!(want["b-1"], ("Terminated".into(), "15_MIN_SUCCESS".into()), "replay: both sides joined in time");
    for a_page in [1usize, 2, 5, 50] {
        let rig = Rig::new();
        for shard in ["shard-a", "shard-b"] {
            rig.fake.add_shard(shard, None);
        }
        rig.fake.with(|s| {
            s.shards.get_mut("shard-a").unwrap().page_cap = Some(a_page);
            s.shards.get_mut("shard-b").unwrap().page_cap = Some(1);
        });
        for (seq, (shard, line)) in records.iter().enumerate() {
            rig.fake.push_value(shard, seq as u64 + 1, serde_json::from_str(line).unwrap());
        }
        // The worker comes up at noon: every record is a backlog, every timer overdue.
        let engine = rig.engine().await;
        engine.set_gate(Arc::new(StreamGate::new(Span::from_hours(24))));
        let mut reader = rig.reader(&engine, Start::TrimHorizon).await;
        for _ in 0..200 {
            let r = reader.round().await.unwrap();
            // The timer loop runs between rounds, as in the worker.
            while engine.fire_due(1000).await.unwrap().1 {}
            if r.records == 0 {
                break;
            }
        }
        while engine.fire_due(1000).await.unwrap().1 {}
        let got = live_outcomes(&engine).await;
        assert_eq!(got, want, "shard A read {a_page} records a page, B one: outcomes differ from replay");
    }
}

/// An operator's `terminate` while the gate is held fires no timer past it:
/// shard A is read to its end, shard B not at all; a-0's safety net (10:15)
/// is due by A's records but not by the gate, so the meeting ends MANUAL and
/// no meeting has a timer fire due after the gate.
#[tokio::test]
async fn a_terminate_while_the_gate_is_held_fires_nothing_past_it() {
    use common::records::{id, t};
    use spindown::engine::StreamGate;
    use spindown::meeting::history::Cause;
    use spindown::meeting::Command;
    use spindown::store::{Changes, Checkpoint};
    use spindown::time::Span;
    let (records, _) = two_shard_day();
    let rig = Rig::new();
    for shard in ["shard-a", "shard-b"] {
        rig.fake.add_shard(shard, None);
    }
    for (seq, (shard, line)) in records.iter().enumerate() {
        rig.fake.push_value(shard, seq as u64 + 1, serde_json::from_str(line).unwrap());
    }
    let engine = rig.engine().await;
    engine.set_gate(Arc::new(StreamGate::new(Span::from_hours(24))));
    // Another worker holds shard B and has read it through 10:00 only (a
    // backlog, or a dead worker whose lease has not run out yet).
    let store = engine.store().clone();
    store.acquire_lease(ARN, "shard-b", "other", Span::from_hours(1)).await.unwrap().expect("free");
    let b = Checkpoint {
        stream_arn: ARN.into(),
        shard_id: "shard-b".into(),
        parent_shard_id: None,
        sequence_number: Some("1".into()),
        closed: false,
        records: 1,
        last_event_at: Some(t("10:00")),
        caught_up: false,
        at: t("11:59"),
        lease: None,
    };
    store.begin().await.unwrap().commit(Changes { checkpoint: Some(b), ..Changes::default() }).await.unwrap();
    let mut reader = rig.reader(&engine, Start::TrimHorizon).await;
    // This worker reads A to its end: the gate stays at B's 10:00.
    for _ in 0..30 {
        reader.round().await.unwrap();
        while engine.fire_due(1000).await.unwrap().1 {}
    }
    assert_eq!(reader.held_shards(), ["shard-a"], "B is the other worker's");
    let r = engine.command(&id("a-0"), Command::Terminate).await.unwrap();
    assert_eq!((r.state, r.outcome), (State::Terminated, Outcome::Terminated));
    let m = engine.store().meeting(&id("a-0")).await.unwrap().unwrap().meeting;
    assert_eq!(m.ended.unwrap().reason.to_string(), "MANUAL", "its safety net did not fire first");
    for sm in engine.store().meetings(&Default::default()).await.unwrap() {
        for h in engine.store().history(&sm.meeting.id).await.unwrap() {
            if let Cause::Timer { due, .. } = h.entry.cause {
                assert!(due <= t("10:00"), "{}: a timer due {due} fired past the gate", sm.meeting.id);
            }
        }
    }
}
