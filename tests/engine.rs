//! The engine on a real SQLite file: durability, dedupe, timer order and recovery.

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use spindown::clock::{Clock, ManualClock, SystemClock};
use spindown::engine::{Engine, Incoming};
use spindown::machine::{Command, MeetingId, Reason, SeenInstance, State};
use spindown::policy::Policy;
use spindown::record::decode_line;
use spindown::store::{Store, StoreOptions};
use spindown::time::{Span, Timestamp};

fn t(hhmmss: &str) -> Timestamp {
    Timestamp::parse_iso(&format!("2026-11-26T{hhmmss}Z")).unwrap()
}

fn id(s: &str) -> MeetingId {
    MeetingId::new(s).unwrap()
}

/// A stream record line.
fn rec(event_id: Option<&str>, name: &str, at: Option<Timestamp>, meeting: &str, image: serde_json::Value) -> String {
    let mut ddb = json!({"Keys": {"id": {"S": meeting}}});
    if let Some(at) = at {
        ddb["ApproximateCreationDateTime"] = json!(at.as_micros() as f64 / 1e6);
    }
    ddb[if name == "REMOVE" { "OldImage" } else { "NewImage" }] = image;
    let mut r = json!({"eventName": name, "dynamodb": ddb});
    if let Some(e) = event_id {
        r["eventID"] = json!(e);
    }
    r.to_string()
}

fn img(meet: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut i = json!({"meet_time": {"S": format!("2026-11-26T{meet}Z")}});
    for (k, v) in extra.as_object().unwrap() {
        i[k] = v.clone();
    }
    i
}

fn items(lines: &[String]) -> Vec<Incoming> {
    lines
        .iter()
        .enumerate()
        .flat_map(|(n, l)| {
            decode_line(l.as_bytes()).into_iter().map(move |item| Incoming { item, origin: format!("test:{}", n + 1) })
        })
        .collect()
}

async fn engine(path: &std::path::Path, clock: Arc<dyn Clock>) -> Engine {
    Engine::open(path, Policy::default(), clock, &StoreOptions::default()).await.unwrap()
}

#[tokio::test]
async fn overdue_timers_fire_once_after_a_restart_and_history_says_how_late() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let clock = ManualClock::live(t("10:00:00"));
    {
        let e = engine(&db, Arc::new(clock.clone())).await;
        let lines: Vec<String> = ["m-1", "m-2", "m-3"]
            .iter()
            .map(|m| rec(Some(&format!("ev-{m}")), "INSERT", Some(t("10:00:00")), m, img("10:00:00", json!({}))))
            .collect();
        let r = e.apply(items(&lines)).await.unwrap();
        assert_eq!(r.created, 3);
        assert_eq!(e.store().timers(None, 10).await.unwrap().len(), 6, "safety net + cap each");
        e.store().close().await;
    } // the engine is gone: nothing in memory survives

    // Reopen after the safety nets were due (10:15), at 10:20:30.
    clock.set(t("10:20:30"));
    let e = engine(&db, Arc::new(clock.clone())).await;
    let (r, more) = e.fire_due(100).await.unwrap();
    assert_eq!(r.timers_fired, 3);
    assert!(!more);
    assert_eq!(r.terminated.get("NO_SHOW_TIMEOUT"), Some(&3));
    for m in ["m-1", "m-2", "m-3"] {
        let meeting = e.store().meeting(&id(m)).await.unwrap().unwrap();
        let ended = meeting.ended.unwrap();
        assert_eq!((ended.reason, ended.at), (Reason::NoShowTimeout, t("10:20:30")), "fires at the real instant");
        let h = e.store().history(&id(m)).await.unwrap();
        let fires: Vec<_> = h.iter().filter(|h| h.cause == "timer").collect();
        assert_eq!(fires.len(), 1, "{m} fired exactly once");
        assert_eq!(fires[0].lateness_us, Some(Span::from_secs(330).as_micros()), "5m30s late");
        let shown =
            spindown::inspect::render_show(&spindown::inspect::inspect(e.store(), &id(m)).await.unwrap().unwrap());
        assert!(shown.contains("safety_net due 2026-11-26T10:15:00Z (5m30s late)"), "{shown}");
    }
    // Firing again, or restarting again, fires nothing.
    assert_eq!(e.fire_due(100).await.unwrap().0.timers_fired, 0);
    e.store().close().await;
    clock.set(t("11:00:00"));
    let e = engine(&db, Arc::new(clock.clone())).await;
    assert_eq!(e.fire_due(100).await.unwrap().0.timers_fired, 0);
    assert!(e.store().timers(None, 10).await.unwrap().is_empty(), "termination cancelled the caps");
    let effects = e.store().effects(None, None).await.unwrap();
    assert_eq!(effects.len(), 3, "one write-back each (no instances known)");
    assert!(effects.iter().all(|x| x.status == "pending" && x.kind == "write_back"));
}

#[tokio::test]
async fn duplicates_are_dropped_across_transactions_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let clock = ManualClock::new(Timestamp::EPOCH);
    let first =
        rec(Some("e1"), "INSERT", Some(t("10:00:00")), "m-1", img("10:00:00", json!({"status": {"S": "IN_PROGRESS"}})));
    let remove = rec(Some("e2"), "REMOVE", Some(t("10:05:00")), "m-1", img("10:00:00", json!({})));
    {
        let e = engine(&db, Arc::new(clock.clone())).await;
        // The same eventID twice in one batch: the second is a duplicate.
        let r = e.apply(items(&[first.clone(), first.clone()])).await.unwrap();
        assert_eq!((r.records, r.duplicates, r.created), (2, 1, 1));
        e.store().close().await;
    }
    let e = engine(&db, Arc::new(clock.clone())).await;
    // After a restart the eventIDs are still known; a REMOVE reusing e1's id is dropped.
    let reused = rec(Some("e1"), "REMOVE", Some(t("10:04:00")), "m-1", img("10:00:00", json!({})));
    let r = e.apply(items(&[reused])).await.unwrap();
    assert_eq!(r.duplicates, 1);
    assert_eq!(e.store().meeting(&id("m-1")).await.unwrap().unwrap().state, State::InProgress);
    let r = e.apply(items(&[remove.clone(), remove])).await.unwrap();
    assert_eq!(r.duplicates, 1);
    assert_eq!(e.store().meeting(&id("m-1")).await.unwrap().unwrap().ended.unwrap().reason, Reason::Cancelled);
    // A record without eventID is never a duplicate.
    let anon = rec(None, "MODIFY", Some(t("10:06:00")), "m-1", img("10:00:00", json!({})));
    let r = e.apply(items(&[anon.clone(), anon])).await.unwrap();
    assert_eq!((r.duplicates, r.ignored), (0, 2));
    let h = e.store().history(&id("m-1")).await.unwrap();
    assert_eq!(h.iter().filter(|h| h.cause == "duplicate").count(), 3, "each duplicate is noted");
}

#[tokio::test]
async fn a_dead_letter_is_not_remembered_and_does_not_move_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::EPOCH);
    let e = engine(&dir.path().join("s.db"), Arc::new(clock.clone())).await;
    let bad =
        rec(Some("e9"), "INSERT", Some(t("12:00:00")), "m-4", img("10:00:00", json!({"meet_time": {"S": "garbage"}})));
    let good = rec(Some("e9"), "INSERT", Some(t("10:00:00")), "m-4", img("10:00:00", json!({})));
    let r = e
        .apply(items(&[rec(Some("e0"), "INSERT", Some(t("10:00:00")), "m-0", img("10:00:00", json!({})))]))
        .await
        .unwrap();
    assert_eq!(r.created, 1);
    let r = e.apply(items(&[bad, good])).await.unwrap();
    assert_eq!(r.dead_letters.get("bad_time"), Some(&1));
    assert_eq!(r.duplicates, 0, "the dead letter's eventID was not remembered");
    assert_eq!(r.timers_fired, 0, "the dead letter at 12:00 did not move the clock past 10:15");
    assert_eq!(clock.now(), t("10:00:00"));
    let dead = e.store().dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("NewImage.meet_time") && dead[0].reason.contains("garbage"));
    assert!(String::from_utf8_lossy(&dead[0].raw).contains("garbage"), "raw input kept");
    assert_eq!(dead[0].event_id.as_deref(), Some("e9"));
}

#[tokio::test]
async fn equal_due_times_fire_safety_net_then_recheck_then_cap() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::EPOCH);
    let e = engine(&dir.path().join("s.db"), Arc::new(clock.clone())).await;
    // duration 0: cap = 10:00 + 0 + 15m grace = 10:15, the same instant as the safety net.
    let line = rec(
        Some("e1"),
        "INSERT",
        Some(t("10:00:00")),
        "m-1",
        img("10:00:00", json!({"status": {"S": "IN_PROGRESS"}, "duration_minutes": {"N": "0"}})),
    );
    e.apply(items(&[line])).await.unwrap();
    let timers = e.store().timers(None, 10).await.unwrap();
    let kinds: Vec<_> = timers.iter().map(|t| (t.kind.as_str(), t.due)).collect();
    assert_eq!(kinds, [("safety_net", t("10:15:00")), ("cap", t("10:15:00"))]);
    e.run_until(Timestamp::MAX).await.unwrap();
    let h = e.store().history(&id("m-1")).await.unwrap();
    let fired: Vec<_> =
        h.iter().filter(|h| h.cause == "timer").map(|h| h.cause_ref.split(' ').next().unwrap().to_string()).collect();
    assert_eq!(fired, ["safety_net", "cap"], "safety net first (arms a re-check), then the cap ends it");
    let m = e.store().meeting(&id("m-1")).await.unwrap().unwrap();
    assert_eq!(m.ended.unwrap().reason, Reason::MaxLifetime);
    assert!(e.store().timers(None, 10).await.unwrap().is_empty(), "the re-check was cancelled");
}

#[tokio::test]
async fn a_changed_meet_time_rearms_the_stored_timers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::EPOCH);
    let e = engine(&dir.path().join("s.db"), Arc::new(clock.clone())).await;
    e.apply(items(&[rec(Some("a"), "INSERT", Some(t("09:00:00")), "m-1", img("10:00:00", json!({})))])).await.unwrap();
    e.apply(items(&[rec(
        Some("b"),
        "MODIFY",
        Some(t("09:30:00")),
        "m-1",
        img("11:00:00", json!({"duration_minutes": {"N": "30"}})),
    )]))
    .await
    .unwrap();
    let timers = e.store().timers(None, 10).await.unwrap();
    let got: Vec<_> = timers.iter().map(|t| (t.kind.as_str(), t.due)).collect();
    assert_eq!(got, [("safety_net", t("11:15:00")), ("cap", t("11:45:00"))]);
    let h = e.store().history(&id("m-1")).await.unwrap();
    assert!(
        h[1].notes.iter().any(|n| n.contains("meet_time 2026-11-26T10:00:00Z → 2026-11-26T11:00:00Z")),
        "{:?}",
        h[1].notes
    );
    assert!(h[1].notes.iter().any(|n| n.contains("re-armed safety_net timer")));
}

#[tokio::test]
async fn manual_termination_and_schedule_commands() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::live(t("09:00:00"));
    let e = engine(&dir.path().join("s.db"), Arc::new(clock.clone())).await;
    let seen = |v: &str| SeenInstance { source: "teacher", value: v.to_string() };
    let r = e
        .command(
            &id("m-1"),
            Command::Schedule {
                id: id("m-1"),
                meet_time: t("10:00:00"),
                instances: vec![seen("i-0123456789abcdef0")],
                duration: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(r.state, State::Scheduled);
    let r = e.command(&id("m-1"), Command::Terminate).await.unwrap();
    assert_eq!(r.state, State::Terminated);
    let m = e.store().meeting(&id("m-1")).await.unwrap().unwrap();
    assert_eq!(m.ended.unwrap().reason, Reason::Manual);
    let kinds: Vec<_> = e.store().effects(Some(&id("m-1")), None).await.unwrap().into_iter().map(|x| x.kind).collect();
    assert_eq!(kinds, ["terminate", "write_back"]);
    assert!(matches!(
        e.command(&id("nope"), Command::Terminate).await,
        Err(spindown::engine::EngineError::UnknownMeeting(_))
    ));
}

#[tokio::test]
async fn the_timer_loop_sleeps_until_due_wakes_early_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(engine(&dir.path().join("s.db"), Arc::new(SystemClock)).await);
    let now = Timestamp::now();
    // A meeting whose safety net is an hour away: the loop sleeps on it.
    e.command(
        &id("far"),
        Command::Schedule {
            id: id("far"),
            meet_time: now.saturating_add(Span::from_mins(45)),
            instances: vec![],
            duration: None,
        },
    )
    .await
    .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let looper = {
        let e = e.clone();
        tokio::spawn(async move {
            e.run_timers(async {
                stop_rx.await.ok();
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Now arm one due in 300 ms: the loop must wake early for it.
    let meet = Timestamp::now().saturating_add(Span::from_micros(300_000)).saturating_add(Span::from_mins(-15));
    e.command(&id("soon"), Command::Schedule { id: id("soon"), meet_time: meet, instances: vec![], duration: None })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = e.store().meeting(&id("soon")).await.unwrap().unwrap();
        if let Some(end) = m.ended {
            assert_eq!(end.reason, Reason::NoShowTimeout);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the loop never woke for the earlier timer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        e.store().meeting(&id("far")).await.unwrap().unwrap().state,
        State::Scheduled,
        "the far one is untouched"
    );
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), looper).await.expect("loop stops on shutdown").unwrap().unwrap();
}

#[tokio::test]
async fn many_overdue_timers_page_through_in_order() {
    // More timers than one page (1024) and one transaction (2000).
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let clock = ManualClock::live(t("09:00:00"));
    let e = engine(&db, Arc::new(clock.clone())).await;
    let lines: Vec<String> = (0..2500)
        .map(|i| {
            let meet = format!("10:{:02}:{:02}", (i / 60) % 60, i % 60);
            rec(Some(&format!("e{i}")), "INSERT", Some(t("09:00:00")), &format!("m-{i:05}"), img(&meet, json!({})))
        })
        .collect();
    for chunk in lines.chunks(700) {
        e.apply(items(chunk)).await.unwrap();
    }
    clock.set(t("23:00:00"));
    let mut fired = 0;
    let mut rounds = 0;
    loop {
        let (r, more) = e.fire_due(2000).await.unwrap();
        fired += r.timers_fired;
        rounds += 1;
        if !more {
            break;
        }
    }
    assert_eq!(rounds, 2);
    assert_eq!(fired, 2500, "each safety net once; the caps were cancelled");
    let c = e.store().counts().await.unwrap();
    assert_eq!(c.timers_pending, 0);
    assert_eq!(c.terminated_by_reason, vec![("NO_SHOW_TIMEOUT".to_string(), 2500)]);
}

#[tokio::test]
async fn store_reopens_with_integrity() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let s = Store::open(&db, &StoreOptions::default()).await.unwrap();
    assert_eq!(s.integrity_check().await.unwrap(), "ok");
    s.close().await;
    let s = Store::open(&db, &StoreOptions::default()).await.unwrap();
    assert_eq!(s.integrity_check().await.unwrap(), "ok");
}

#[tokio::test]
async fn a_backlog_read_late_is_applied_in_event_time_order() {
    // The worker was down from 10:01 to 10:20; the teacher uploaded data at
    // 10:10, before the 10:15 safety net. Read late, the record must still
    // come before the timer: a partial no-show, as replay says — not a no-show.
    use spindown::engine::StreamGate;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::live(t("10:01:00"));
    let e = engine(&dir.path().join("s.db"), Arc::new(clock.clone())).await;
    e.set_gate(Arc::new(StreamGate::new(Span::from_hours(1))));
    e.apply(items(&[rec(Some("a"), "INSERT", Some(t("10:00:00")), "m-1", img("10:00:00", json!({})))])).await.unwrap();
    e.advance_gate(t("10:01:00"));
    clock.set(t("10:20:00"));
    let (r, _) = e.fire_due(100).await.unwrap();
    assert_eq!(r.timers_fired, 0, "the gate holds the 10:15 timer until the stream is read past it");
    let data = rec(
        Some("b"),
        "MODIFY",
        Some(t("10:10:00")),
        "m-1",
        img("10:00:00", json!({"teacher_session_data": {"S": "x"}})),
    );
    let r = e.apply(items(&[data])).await.unwrap();
    assert_eq!(r.timers_fired, 0, "only timers due by the record's event time fire before it");
    e.advance_gate(t("10:20:00"));
    let (r, _) = e.fire_due(100).await.unwrap();
    assert_eq!(r.timers_fired, 1);
    let m = e.store().meeting(&id("m-1")).await.unwrap().unwrap();
    assert_eq!(m.ended.unwrap().reason, Reason::PartialNoShowTimeout);
    assert_eq!(m.ended.unwrap().at, t("10:20:00"), "it fires late, at the real instant");
}

#[tokio::test]
async fn the_gate_never_holds_a_timer_past_its_limit() {
    use spindown::engine::StreamGate;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::live(t("10:00:00"));
    let e = engine(&dir.path().join("s.db"), Arc::new(clock.clone())).await;
    e.set_gate(Arc::new(StreamGate::new(Span::from_mins(2))));
    e.apply(items(&[rec(Some("a"), "INSERT", Some(t("10:00:00")), "m-1", img("10:00:00", json!({})))])).await.unwrap();
    // The stream is never read again (an outage): the 10:15 safety net waits 2 minutes, no more.
    clock.set(t("10:16:59"));
    assert_eq!(e.fire_due(100).await.unwrap().0.timers_fired, 0);
    clock.set(t("10:17:00"));
    assert_eq!(e.fire_due(100).await.unwrap().0.timers_fired, 1);
}

#[tokio::test]
async fn every_unit_of_work_is_counted_and_timed_by_phase() {
    use spindown::store::Phase;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::EPOCH);
    let e = engine(&dir.path().join("p.db"), Arc::new(clock.clone())).await;
    let lines: Vec<String> = (0..50)
        .map(|i| {
            rec(Some(&format!("e{i}")), "INSERT", Some(t("08:00:00")), &format!("m-{i}"), img("10:00:00", json!({})))
        })
        .collect();
    e.apply(items(&lines)).await.unwrap();
    e.run_until(Timestamp::MAX).await.unwrap();
    let c = e.store().write_counts();
    assert_eq!((c.meetings, c.seen), (100, 50), "50 created, 50 ended by their safety nets");
    assert_eq!(c.history, 100);
    let secs = |p: Phase| c.phase_secs[p as usize];
    for p in [Phase::Begin, Phase::Read, Phase::WriteMeetings, Phase::WriteHistory, Phase::Commit, Phase::Work] {
        assert!(secs(p) > 0.0, "{} was not timed", p.as_str());
    }
    let parts: f64 = Phase::ALL.iter().filter(|p| **p != Phase::Work).map(|p| secs(*p)).sum();
    assert!(
        parts <= secs(Phase::Work),
        "the phases ({parts}s) happen inside the units of work ({}s)",
        secs(Phase::Work)
    );
}
