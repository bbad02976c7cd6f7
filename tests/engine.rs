//! The engine on a real SQLite file: recovery, timer order, commands, the
//! timer loop, the stream gate, the resident engine.

mod common;

use spindown::inspect::MeetingStore;
use spindown::meeting::MeetingWorkflow;
use spindown::meeting::{EffectFilter, TimerFilter};
use std::sync::Arc;
use std::time::Duration;

use common::records::{id, img, items, rec, sqlite_engine, sqlite_engine_with, t};
use serde_json::json;
use spindown::clock::{Clock, ManualClock, SystemClock};
use spindown::engine::{EngineError, EngineOptions, StreamGate};
use spindown::meeting::history::{Cause, Outcome};
use spindown::meeting::{Command, InstanceSource, Policy, Reason, SeenInstance, State, TimerKind};
use spindown::store::sqlite::SqliteStore;
use spindown::store::{EffectStatus, Store};
use spindown::time::{Span, Timestamp};

async fn pending(store: &dyn Store) -> Vec<(TimerKind, Timestamp)> {
    store
        .timers(&TimerFilter { meeting: None, limit: 100 })
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kind, k.due))
        .collect()
}

#[tokio::test]
async fn overdue_timers_fire_once_after_a_restart_and_history_says_how_late() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let clock = ManualClock::live(t("10:00"));
    {
        let (e, store) = sqlite_engine(&db, Arc::new(clock.clone())).await;
        let lines: Vec<String> = ["m-1", "m-2", "m-3"]
            .iter()
            .map(|m| rec(Some(&format!("ev-{m}")), "INSERT", Some(t("10:00")), m, img("10:00", json!({}))))
            .collect();
        assert_eq!(e.apply(items(&lines)).await.unwrap().created, 3);
        assert_eq!(pending(store.as_ref()).await.len(), 6, "safety net + cap each");
        store.close().await;
    } // the engine is gone: nothing in memory survives

    // Reopen after the safety nets were due (10:15), at 10:20:30.
    clock.set(t("10:20:30"));
    let (e, store) = sqlite_engine(&db, Arc::new(clock.clone())).await;
    let (r, more) = e.fire_due(100).await.unwrap();
    assert_eq!((r.timers_fired, more), (3, false));
    assert_eq!(r.terminated.get(Reason::NoShowTimeout.as_str()), Some(&3));
    for m in ["m-1", "m-2", "m-3"] {
        let meeting = store.meeting(&id(m)).await.unwrap().unwrap().meeting;
        let ended = meeting.ended.unwrap();
        assert_eq!((ended.reason, ended.at), (Reason::NoShowTimeout, t("10:20:30")), "fires at the real instant");
        let h = store.history(&id(m)).await.unwrap();
        let fires: Vec<_> = h.iter().filter(|h| matches!(h.entry.cause, Cause::Timer { .. })).collect();
        assert_eq!(fires.len(), 1, "{m} fired exactly once");
        assert_eq!(fires[0].entry.lateness, Some(Span::from_secs(330)), "5m30s late");
        assert_eq!(fires[0].entry.cause.to_string(), "timer safety_net due 2026-11-26T10:15:00Z");
    }
    // Firing again, or restarting again, fires nothing.
    assert_eq!(e.fire_due(100).await.unwrap().0.timers_fired, 0);
    store.close().await;
    clock.set(t("11:00"));
    let (e, store) = sqlite_engine(&db, Arc::new(clock.clone())).await;
    assert_eq!(e.fire_due(100).await.unwrap().0.timers_fired, 0);
    assert!(pending(store.as_ref()).await.is_empty(), "termination cancelled the caps");
    let effects = store.effects(&EffectFilter::default()).await.unwrap();
    assert_eq!(effects.len(), 3, "one outbox row per termination");
    assert!(effects.iter().all(|x| x.status == EffectStatus::Pending && x.parts.len() == 1), "a write-back only");
}

#[tokio::test]
async fn a_dead_letter_is_not_remembered_and_does_not_move_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::EPOCH);
    let (e, store) = sqlite_engine(&dir.path().join("s.db"), Arc::new(clock.clone())).await;
    let bad = rec(Some("e9"), "INSERT", Some(t("12:00")), "m-4", img("10:00", json!({"meet_time": {"S": "garbage"}})));
    let good = rec(Some("e9"), "INSERT", Some(t("10:00")), "m-4", img("10:00", json!({})));
    let first = rec(Some("e0"), "INSERT", Some(t("10:00")), "m-0", img("10:00", json!({})));
    assert_eq!(e.apply(items(&[first])).await.unwrap().created, 1);
    let r = e.apply(items(&[bad, good])).await.unwrap();
    assert_eq!(r.dead_letters.get("bad_time"), Some(&1));
    assert_eq!(r.duplicates, 0, "the dead letter's eventID was not remembered");
    assert_eq!(r.timers_fired, 0, "the dead letter at 12:00 did not move the clock past 10:15");
    assert_eq!(clock.now(), t("10:00"));
    let dead = store.dead_letters(&spindown::store::Page { after: None, limit: 10 }).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("NewImage.meet_time") && dead[0].reason.contains("garbage"));
    assert!(String::from_utf8_lossy(&dead[0].raw).contains("garbage"), "raw input kept");
    assert_eq!(dead[0].event_id.as_deref(), Some("e9"));
    // A new meeting without a start is a dead letter too (the machine's rule), and moves no clock.
    let no_start = rec(Some("e5"), "MODIFY", Some(t("11:00")), "m-5", json!({"status": {"S": "IN_PROGRESS"}}));
    let r = e.apply(items(&[no_start])).await.unwrap();
    assert_eq!((r.dead_letters.get("no_start"), r.timers_fired), (Some(&1), 0));
}

#[tokio::test]
async fn equal_due_times_fire_safety_net_then_recheck_then_cap() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::EPOCH);
    let (e, store) = sqlite_engine(&dir.path().join("s.db"), Arc::new(clock.clone())).await;
    // duration 0: cap = 10:00 + 0 + 15m grace = 10:15, the same instant as the safety net.
    let extra = json!({"status": {"S": "IN_PROGRESS"}, "duration_minutes": {"N": "0"}});
    e.apply(items(&[rec(Some("e1"), "INSERT", Some(t("10:00")), "m-1", img("10:00", extra))])).await.unwrap();
    assert_eq!(pending(store.as_ref()).await, [(TimerKind::SafetyNet, t("10:15")), (TimerKind::Cap, t("10:15"))]);
    e.run_until(Timestamp::MAX).await.unwrap();
    let fired: Vec<TimerKind> = store
        .history(&id("m-1"))
        .await
        .unwrap()
        .iter()
        .filter_map(|h| match h.entry.cause {
            Cause::Timer { kind, .. } => Some(kind),
            _ => None,
        })
        .collect();
    assert_eq!(fired, [TimerKind::SafetyNet, TimerKind::Cap], "safety net first (arms a re-check), then the cap");
    let m = store.meeting(&id("m-1")).await.unwrap().unwrap().meeting;
    assert_eq!(m.ended.unwrap().reason, Reason::MaxLifetime);
    assert!(pending(store.as_ref()).await.is_empty(), "the re-check was cancelled");
}

#[tokio::test]
async fn a_changed_meet_time_rearms_the_stored_timers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::EPOCH);
    let (e, store) = sqlite_engine(&dir.path().join("s.db"), Arc::new(clock.clone())).await;
    e.apply(items(&[rec(Some("a"), "INSERT", Some(t("09:00")), "m-1", img("10:00", json!({})))])).await.unwrap();
    let moved = img("11:00", json!({"duration_minutes": {"N": "30"}}));
    e.apply(items(&[rec(Some("b"), "MODIFY", Some(t("09:30")), "m-1", moved)])).await.unwrap();
    assert_eq!(pending(store.as_ref()).await, [(TimerKind::SafetyNet, t("11:15")), (TimerKind::Cap, t("11:45"))]);
    let h = store.history(&id("m-1")).await.unwrap();
    let notes: Vec<String> = h[1].entry.notes.iter().map(|n| n.to_string()).collect();
    assert!(notes.iter().any(|n| n == "meet_time 2026-11-26T10:00:00Z → 2026-11-26T11:00:00Z"), "{notes:?}");
    assert!(notes.iter().any(|n| n.starts_with("re-armed safety_net timer")), "{notes:?}");
}

#[tokio::test]
async fn manual_termination_and_schedule_commands() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::live(t("09:00"));
    let (e, store) = sqlite_engine(&dir.path().join("s.db"), Arc::new(clock.clone())).await;
    let seen = SeenInstance { source: InstanceSource::Teacher, value: "i-0123456789abcdef0".to_string() };
    let schedule = Command::Schedule { id: id("m-1"), meet_time: t("10:00"), instances: vec![seen], duration: None };
    assert_eq!(e.command(&id("m-1"), schedule).await.unwrap().state, State::Scheduled);
    let r = e.command(&id("m-1"), Command::Terminate).await.unwrap();
    assert_eq!((r.state, r.outcome), (State::Terminated, Outcome::Terminated));
    let m = store.meeting(&id("m-1")).await.unwrap().unwrap().meeting;
    assert_eq!(m.ended.unwrap().reason, Reason::Manual);
    let effects = store.effects(&EffectFilter { meeting: Some(id("m-1")), ..EffectFilter::default() }).await.unwrap();
    let kinds: Vec<_> = effects[0].parts.iter().map(|p| p.kind().as_str()).collect();
    assert_eq!(kinds, ["terminate", "write_back"], "one row, terminate then write back");
    assert!(matches!(
        e.command(&id("nope"), Command::Terminate).await,
        Err(EngineError::Unknown { noun: "meeting", .. })
    ));
    let again = e.command(&id("m-1"), Command::Terminate).await.unwrap();
    assert_eq!(again.outcome, Outcome::Ignored);
}

#[tokio::test]
async fn the_timer_loop_sleeps_until_due_wakes_early_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (e, store) = sqlite_engine(&dir.path().join("s.db"), Arc::new(SystemClock)).await;
    let e = Arc::new(e);
    let now = Timestamp::now();
    // A meeting whose safety net is an hour away: the loop sleeps on it.
    let far = Command::Schedule {
        id: id("far"),
        meet_time: now.saturating_add(Span::from_mins(45)),
        instances: vec![],
        duration: None,
    };
    e.command(&id("far"), far).await.unwrap();
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
        if let Some(end) = store.meeting(&id("soon")).await.unwrap().unwrap().meeting.ended {
            assert_eq!(end.reason, Reason::NoShowTimeout);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the loop never woke for the earlier timer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let far = store.meeting(&id("far")).await.unwrap().unwrap().meeting;
    assert_eq!(far.state, State::Scheduled, "the far one is untouched");
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), looper).await.expect("loop stops on shutdown").unwrap().unwrap();
}

#[tokio::test]
async fn store_reopens_with_integrity() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    for _ in 0..2 {
        let s = SqliteStore::open(&db, &Default::default()).await.unwrap();
        assert_eq!(s.integrity_check().await.unwrap(), "ok");
        s.close().await;
    }
}

#[tokio::test]
async fn a_backlog_read_late_is_applied_in_event_time_order() {
    // The worker was down from 10:01 to 10:20; the teacher uploaded data at
    // 10:10, before the 10:15 safety net. Read late, the record must still
    // come before the timer: a partial no-show, as replay says — not a no-show.
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::live(t("10:01"));
    let (e, store) = sqlite_engine(&dir.path().join("s.db"), Arc::new(clock.clone())).await;
    e.set_gate(Arc::new(StreamGate::new(Span::from_hours(1))));
    e.apply(items(&[rec(Some("a"), "INSERT", Some(t("10:00")), "m-1", img("10:00", json!({})))])).await.unwrap();
    e.advance_gate(t("10:01"));
    clock.set(t("10:20"));
    assert_eq!(e.fire_due(100).await.unwrap().0.timers_fired, 0, "the gate holds the 10:15 timer");
    let data = img("10:00", json!({"teacher_session_data": {"S": "x"}}));
    let r = e.apply(items(&[rec(Some("b"), "MODIFY", Some(t("10:10")), "m-1", data)])).await.unwrap();
    assert_eq!(r.timers_fired, 0, "only timers due by the record's event time fire before it");
    e.advance_gate(t("10:20"));
    assert_eq!(e.fire_due(100).await.unwrap().0.timers_fired, 1);
    let m = store.meeting(&id("m-1")).await.unwrap().unwrap().meeting;
    assert_eq!(m.ended.unwrap().reason, Reason::PartialNoShowTimeout);
    assert_eq!(m.ended.unwrap().at, t("10:20"), "it fires late, at the real instant");
}

#[tokio::test]
async fn the_gate_never_holds_a_timer_past_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::live(t("10:00"));
    let (e, _store) = sqlite_engine(&dir.path().join("s.db"), Arc::new(clock.clone())).await;
    e.set_gate(Arc::new(StreamGate::new(Span::from_mins(2))));
    e.apply(items(&[rec(Some("a"), "INSERT", Some(t("10:00")), "m-1", img("10:00", json!({})))])).await.unwrap();
    // The stream is never read again (an outage): the 10:15 safety net waits 2 minutes, no more.
    clock.set(t("10:16:59"));
    assert_eq!(e.fire_due(100).await.unwrap().0.timers_fired, 0);
    clock.set(t("10:17"));
    assert_eq!(e.fire_due(100).await.unwrap().0.timers_fired, 1);
}

#[tokio::test]
async fn writes_are_lean_one_row_per_meeting_per_unit_of_work() {
    // 50 meetings created in one unit of work, then ended by their safety nets in another.
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::EPOCH);
    let (e, store) = sqlite_engine(&dir.path().join("p.db"), Arc::new(clock.clone())).await;
    let lines: Vec<String> = (0..50)
        .map(|i| rec(Some(&format!("e{i}")), "INSERT", Some(t("08:00")), &format!("m-{i}"), img("10:00", json!({}))))
        .collect();
    e.apply(items(&lines)).await.unwrap();
    e.run_until(Timestamp::MAX).await.unwrap();
    let c = store.write_counts();
    assert_eq!(c.transactions, 2);
    assert_eq!(c.instances, 100, "50 created, 50 ended: the timers and eventIDs ride in the meeting row");
    assert_eq!((c.history_chunks, c.history_entries), (100, 100));
    assert_eq!(c.effects, 50, "one outbox row per termination");
    assert_eq!(c.rows(), 250);
}

#[tokio::test]
async fn a_resident_engine_gives_the_same_story_with_dry_run_effects_done_inline() {
    // The same day, once on a worker-style engine and once resident (as replay runs).
    let lines: Vec<String> = (0..30)
        .flat_map(|i| {
            let m = format!("m-{i:02}");
            let meet = format!("10:{:02}", i);
            let mut v = vec![rec(
                Some(&format!("a{i}")),
                "INSERT",
                Some(t("09:00")),
                &m,
                img(&meet, json!({"teacher_ec2_id": {"S": "i-0123456789abcdef0"}})),
            )];
            if i % 3 == 0 {
                v.push(rec(
                    Some(&format!("b{i}")),
                    "MODIFY",
                    Some(t(&meet)),
                    &m,
                    img(&meet, json!({"status": {"S": "IN_PROGRESS"}})),
                ));
            }
            v
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &'static str, options: EngineOptions<MeetingWorkflow>| {
        let path = dir.path().join(name);
        let lines = lines.clone();
        async move {
            let clock = ManualClock::new(Timestamp::EPOCH);
            let (e, store) = sqlite_engine_with(&path, Arc::new(clock), Policy::default(), options).await;
            for chunk in lines.chunks(7) {
                e.apply(items(chunk)).await.unwrap();
            }
            e.run_until(Timestamp::MAX).await.unwrap();
            e.flush().await.unwrap();
            store
        }
    };
    let worker = run("worker.db", EngineOptions::default()).await;
    let resident = run("resident.db", spindown::source::replay::engine_options()).await;
    for i in 0..30 {
        let m = id(&format!("m-{i:02}"));
        let a = worker.meeting(&m).await.unwrap().unwrap();
        let b = resident.meeting(&m).await.unwrap().unwrap();
        assert_eq!(a, b, "{m}");
        let ha: Vec<_> = worker.history(&m).await.unwrap().into_iter().map(|h| h.entry).collect();
        let hb: Vec<_> = resident.history(&m).await.unwrap().into_iter().map(|h| h.entry).collect();
        let machine_only: Vec<_> = hb.iter().filter(|e| !matches!(e.cause, Cause::Effect { .. })).cloned().collect();
        assert_eq!(ha, machine_only, "{m}: the same steps");
        let effects: Vec<_> = hb.iter().filter(|e| matches!(e.cause, Cause::Effect { .. })).collect();
        assert_eq!(effects.len(), 2, "{m}: terminate and write-back, completed by the dry run");
        assert!(effects.iter().all(|e| e.outcome == Outcome::EffectDone && e.at == b.meeting.ended.unwrap().at));
    }
    let done = resident.effects(&EffectFilter::default()).await.unwrap();
    assert!(done.iter().all(|e| e.status == EffectStatus::Done && e.done == e.parts.len()));
    assert_eq!(worker.effects(&EffectFilter::default()).await.unwrap().len(), done.len());
}

/// Two workers' engines on one PostgreSQL database create the same meetings
/// at the same moment (the stream delivered to both, or `schedule` raced the
/// stream): a unit of work that lost the race to a new row is applied again,
/// not failed — each meeting is created once, the other record is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_creating_the_same_meetings_on_postgres_both_succeed() {
    use spindown::engine::Engine;
    use spindown::store::postgres::{PgOptions, PgStore};
    let url = common::postgres::database("engine_race");
    let clock = Arc::new(ManualClock::live(t("10:00")));
    let mut engines = Vec::new();
    for _ in 0..2 {
        let store: Arc<dyn Store> = Arc::new(PgStore::open(&url, &PgOptions::default()).await.unwrap());
        engines.push(Arc::new(
            Engine::start(store, Policy::default(), clock.clone(), EngineOptions::default()).await.unwrap(),
        ));
    }
    for round in 0..20 {
        let lines: Vec<String> = (0..50)
            .map(|i| {
                let m = format!("m-{round}-{i}");
                rec(Some(&format!("ev-{m}")), "INSERT", Some(t("10:00")), &m, img("11:00", json!({})))
            })
            .collect();
        let (a, b) = (engines[0].clone(), engines[1].clone());
        let (la, lb) = (lines.clone(), lines);
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { a.apply(items(&la)).await }),
            tokio::spawn(async move { b.apply(items(&lb)).await })
        );
        let (ra, rb) = (ra.unwrap().unwrap(), rb.unwrap().unwrap());
        assert_eq!(ra.created + rb.created, 50, "round {round}: each meeting created once");
        assert_eq!(ra.duplicates + rb.duplicates, 50, "round {round}: the other copy is a duplicate");
    }
    let store = engines[0].store();
    assert_eq!(store.counts().await.unwrap().meetings, 1000);
    let h = store.history(&id("m-7-7")).await.unwrap();
    assert_eq!(h.iter().filter(|e| e.entry.outcome == Outcome::Created).count(), 1, "{h:?}");
}

/// A due timer the store names but the meeting no longer has (its row's
/// index of the next due timer disagrees with its timers — another writer
/// moved it between the read and the load, or an old bug wrote it) fires
/// nothing and is dropped once: the row is written again, and the real
/// timer fires once at its time. (It used to be fired as if it were real —
/// a re-check that did not exist ended a scheduled meeting — and then again
/// on every pass.)
#[tokio::test]
async fn a_stale_timer_key_fires_nothing_and_is_dropped_once() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stale.db");
    let clock = ManualClock::live(t("10:00"));
    let (e, store) = sqlite_engine(&db, Arc::new(clock.clone())).await;
    e.apply(items(&[rec(Some("ev-1"), "INSERT", Some(t("10:00")), "m-1", img("10:00", json!({})))])).await.unwrap();
    assert_eq!(pending(store.as_ref()).await, vec![(TimerKind::SafetyNet, t("10:15")), (TimerKind::Cap, t("14:00"))]);
    // The row's due-timer index says "a re-check at 10:05", which the meeting does not have.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    sqlx::query("UPDATE instances SET next_due = ?1, next_kind = 1 WHERE id = 'm-1'")
        .bind(t("10:05").as_micros())
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    clock.set(t("10:10"));
    let (report, more) = e.fire_due(100).await.unwrap();
    assert_eq!((report.timers_fired, more), (0, false), "nothing real is due at 10:10");
    let m = store.meeting(&id("m-1")).await.unwrap().unwrap().meeting;
    assert_eq!(m.state, State::Scheduled, "not ended by a timer it does not have");
    assert_eq!(store.next_due().await.unwrap(), Some(t("10:15")), "the row was written again: the index agrees");
    let (again, _) = e.fire_due(100).await.unwrap();
    assert_eq!(again.timers_fired, 0);
    clock.set(t("10:16"));
    let (report, _) = e.fire_due(100).await.unwrap();
    assert_eq!(report.timers_fired, 1, "the safety net fires once");
    let m = store.meeting(&id("m-1")).await.unwrap().unwrap().meeting;
    assert_eq!(m.ended.unwrap().reason, Reason::NoShowTimeout);
    let fires = store
        .history(&id("m-1"))
        .await
        .unwrap()
        .iter()
        .filter(|h| matches!(h.entry.cause, Cause::Timer { .. }))
        .count();
    assert_eq!(fires, 1, "one timer fire in the story");
}

/// PostgreSQL sessions run under the configured limits: a frozen peer holds
/// its locks at most `idle_in_transaction_session_timeout`, nobody waits for
/// a lock longer than `lock_timeout`, a statement runs at most
/// `statement_timeout`, and the server probes dead clients.
#[tokio::test]
async fn postgresql_sessions_run_under_their_timeouts() {
    use spindown::store::postgres::{PgOptions, PgStore};
    let url = common::postgres::database("session_limits");
    let options = PgOptions {
        statement_timeout: Duration::from_secs(7),
        lock_timeout: Duration::from_millis(1500),
        idle_in_transaction_timeout: Duration::from_secs(9),
        keepalive: Duration::from_secs(12),
        ..PgOptions::default()
    };
    let store = PgStore::open(&url, &options).await.unwrap();
    let show = |name: &'static str| {
        let pool = store.pool().clone();
        async move { sqlx::query_scalar::<_, String>(&format!("SHOW {name}")).fetch_one(&pool).await.unwrap() }
    };
    assert_eq!(show("statement_timeout").await, "7s");
    assert_eq!(show("lock_timeout").await, "1500ms");
    assert_eq!(show("idle_in_transaction_session_timeout").await, "9s");
    assert_eq!(show("tcp_keepalives_idle").await, "12");
    assert_eq!(show("tcp_keepalives_interval").await, "4");
    // A lock held by another session is waited for lock_timeout, then the
    // call fails as a passing fault (the worker waits and tries again).
    let mut holder = store.pool().begin().await.unwrap();
    sqlx::query("LOCK TABLE instances IN ACCESS EXCLUSIVE MODE").execute(&mut *holder).await.unwrap();
    let t0 = std::time::Instant::now();
    let e = store.meeting(&id("m-1")).await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(5), "gave up after lock_timeout, not later: {:?}", t0.elapsed());
    assert_eq!(e.fault(), Some(spindown::store::Fault::LockTimeout), "{e}");
    assert!(e.is_transient());
    holder.rollback().await.unwrap();
}

/// Found by fuzzing the machine: a meeting in progress without data whose
/// `meet_time` is moved years ahead (a typo of the year) is re-checked every
/// 15 minutes until its cap — tens of thousands of fires in one replay. A
/// resident engine (replay) used to hold a live meeting's history until the
/// end, so a far enough move built one chunk larger than SQLite stores
/// ("string or blob too big") and the replay failed. A long story is now
/// written as it grows, in bounded chunks, and reads back whole.
#[tokio::test]
async fn a_resident_engine_writes_a_long_story_as_it_grows_in_bounded_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.db");
    let clock = ManualClock::new(Timestamp::EPOCH);
    let options = spindown::source::replay::engine_options();
    let (e, store) = sqlite_engine_with(&path, Arc::new(clock), Policy::default(), options).await;
    let in_progress = json!({"status": {"S": "IN_PROGRESS"}});
    let later = Timestamp::parse_iso("2036-11-26T10:00:00Z").unwrap();
    let moved = json!({"meet_time": {"S": later.to_rfc3339()}, "status": {"S": "IN_PROGRESS"}});
    let lines = vec![
        rec(Some("a"), "INSERT", Some(t("09:00")), "m-long", img("10:00", in_progress)),
        rec(Some("b"), "MODIFY", Some(t("10:20")), "m-long", moved),
    ];
    e.apply(items(&lines)).await.unwrap();
    let report = e.run_until(Timestamp::MAX).await.unwrap();
    e.flush().await.unwrap();
    let m = id("m-long");
    let meeting = store.meeting(&m).await.unwrap().unwrap().meeting;
    assert_eq!(meeting.ended.map(|e| e.reason), Some(Reason::MaxLifetime));
    let history = store.history(&m).await.unwrap();
    assert!(history.len() > 350_000, "ten years of re-checks: {} entries", history.len());
    assert!(report.timers_fired as usize + 2 <= history.len());
    assert!(history.windows(2).all(|w| w[0].entry.at <= w[1].entry.at), "read back in order");
    store.close().await;
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path).read_only(true))
        .await
        .unwrap();
    let (chunks, largest): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), MAX(length(entries)) FROM history WHERE instance = 'm-long'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(chunks >= 3, "written as it grew: {chunks} chunks");
    assert!(largest < 4 << 20, "each chunk bounded: the largest is {largest} bytes");
}

/// On PostgreSQL a page of due timers and their meetings is read in one
/// statement and claimed with them: a second unit of work reading at the
/// same moment skips what the first holds and gets the next meetings, each
/// with its document, until the first ends.
#[tokio::test]
async fn two_units_of_work_on_postgresql_claim_disjoint_pages_of_due_meetings() {
    use spindown::store::postgres::{PgOptions, PgStore};
    let url = common::postgres::database("due_loaded_claims");
    let clock = Arc::new(ManualClock::live(t("09:00")));
    let store: Arc<dyn Store> = Arc::new(PgStore::open(&url, &PgOptions::default()).await.unwrap());
    let e = spindown::engine::Engine::start(store.clone(), Policy::default(), clock, EngineOptions::default())
        .await
        .unwrap();
    let lines: Vec<String> = (0..6)
        .map(|i| rec(Some(&format!("ev-{i}")), "INSERT", Some(t("09:00")), &format!("m-{i}"), img("10:00", json!({}))))
        .collect();
    e.apply(items(&lines)).await.unwrap();
    let mut a = store.begin().await.unwrap();
    let mut b = store.begin().await.unwrap();
    let (ka, ma) = a.due_loaded(None, t("11:00"), 3).await.unwrap();
    let (kb, mb) = b.due_loaded(None, t("11:00"), 3).await.unwrap();
    let ids = |keys: &[spindown::store::DueKey]| keys.iter().map(|k| k.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&ka), ["m-0", "m-1", "m-2"]);
    assert_eq!(ids(&kb), ["m-3", "m-4", "m-5"], "the first unit's meetings are skipped, not waited for");
    let meetings = ma.iter().chain(&mb).map(|s| spindown::meeting::stored::meeting_of(s.clone()).unwrap().meeting);
    assert!(meetings.into_iter().all(|m| m.timers.safety_net == Some(t("10:15"))));
    assert_eq!((ma.len(), mb.len()), (3, 3));
    a.rollback().await.unwrap();
    let (kb2, _) = b.due_loaded(None, t("11:00"), 6).await.unwrap();
    assert_eq!(ids(&kb2), ["m-0", "m-1", "m-2", "m-3", "m-4", "m-5"], "released when the first ends");
    b.rollback().await.unwrap();
}
