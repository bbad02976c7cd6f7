//! Clock faults, injected through the Clock abstraction: the wall clock steps
//! forward and back. Every timer fires exactly once; a backward step never
//! re-fires one; a forward step fires what it skipped, once, not a burst.

mod common;

use spindown::inspect::MeetingStore;
use spindown::operate::MeetingEngine;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::records::{insert, items, sqlite_engine, t};
use spindown::clock::{ManualClock, OffsetClock};
use spindown::meeting::history::Cause;
use spindown::meeting::TimerFilter;
use spindown::meeting::{Command, MeetingId, Reason};
use spindown::time::{Span, Timestamp};

/// A meeting's timer fires, as `timer <kind> due <instant>`.
async fn fires(e: &MeetingEngine, id: &str) -> Vec<String> {
    let h = e.store().history(&MeetingId::new(id).unwrap()).await.unwrap();
    h.into_iter().filter(|h| matches!(h.entry.cause, Cause::Timer { .. })).map(|h| h.entry.cause.to_string()).collect()
}

#[tokio::test]
async fn steps_of_the_clock_fire_each_timer_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::live(t("10:00"));
    let (e, _store) = sqlite_engine(&dir.path().join("c.db"), Arc::new(clock.clone())).await;
    e.apply(items(&[insert("m-1", "10:00", "IN_PROGRESS")])).await.unwrap();
    let steps = [
        ("10:20", 1), // the safety net, 5 min late; a re-check at 10:35
        ("10:00", 0), // back 20 min: nothing fires again
        ("10:36", 1), // the re-check; the next at 10:51
        ("13:36", 1), // forward 3 h: the 10:51 re-check once (not twelve times); the next at 13:51
        ("09:00", 0), // far back: nothing
        ("13:40", 0),
        ("14:00", 2), // the 13:51 re-check, then the 14:00 cap
        ("18:00", 0),
        ("10:00", 0),
    ];
    for (at, want) in steps {
        clock.set(t(at));
        let (r, _) = e.fire_due(100).await.unwrap();
        assert_eq!(r.timers_fired, want, "at {at}");
    }
    let f = fires(&e, "m-1").await;
    let mut seen = HashMap::new();
    for c in &f {
        *seen.entry(c.clone()).or_insert(0) += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "a timer fired twice: {f:?}");
    assert_eq!(f.len(), 5, "{f:?}");
    let m = e.store().meeting(&MeetingId::new("m-1").unwrap()).await.unwrap().unwrap().meeting;
    assert_eq!(m.ended.unwrap().reason, Reason::MaxLifetime);
    assert!(e.store().timers(&TimerFilter { meeting: None, limit: 10 }).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_timer_loop_notices_a_forward_step_while_asleep_and_ignores_a_backward_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = OffsetClock::new();
    let e = Arc::new(sqlite_engine(&dir.path().join("c.db"), Arc::new(clock.clone())).await.0);
    e.set_clock_check(Duration::from_millis(100));
    // Safety net due in 40 minutes; the loop goes to sleep on it.
    let meet = Timestamp::now().saturating_add(Span::from_mins(25));
    let id = MeetingId::new("m-1").unwrap();
    e.command(&id, Command::Schedule { id: id.clone(), meet_time: meet, instances: vec![], duration: None })
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
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(fires(&e, "m-1").await.is_empty());
    clock.jump(Span::from_hours(1).as_micros());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fires(&e, "m-1").await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the forward step went unnoticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    clock.jump(-Span::from_hours(3).as_micros());
    tokio::time::sleep(Duration::from_millis(500)).await;
    clock.jump(Span::from_hours(2).as_micros());
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_tx.send(()).unwrap();
    looper.await.unwrap().unwrap();
    let f = fires(&e, "m-1").await;
    assert_eq!(f.len(), 1, "the safety net fired once: {f:?}");
    let m = e.store().meeting(&id).await.unwrap().unwrap().meeting;
    assert_eq!(m.ended.unwrap().reason, Reason::NoShowTimeout);
}

#[tokio::test]
async fn random_steps_over_many_meetings_never_fire_a_timer_twice() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::live(t("09:00"));
    let (e, _store) = sqlite_engine(&dir.path().join("c.db"), Arc::new(clock.clone())).await;
    for i in 0..60 {
        let meet = format!("{:02}:{:02}", 10 + i / 30, (i * 2) % 60);
        let status = if i % 2 == 0 { "IN_PROGRESS" } else { "SCHEDULED" };
        e.apply(items(&[insert(&format!("m-{i:02}"), &meet, status)])).await.unwrap();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut now = t("09:00");
    for _ in 0..200 {
        now = now.saturating_add(Span::from_secs(rng.gen_range(-3600..5400)));
        clock.set(now);
        e.fire_due(10_000).await.unwrap();
    }
    clock.set(t("23:59"));
    e.fire_due(10_000).await.unwrap();
    for i in 0..60 {
        let f = fires(&e, &format!("m-{i:02}")).await;
        let mut seen = std::collections::HashSet::new();
        assert!(f.iter().all(|c| seen.insert(c.clone())), "m-{i:02}: {f:?}");
        let m = e.store().meeting(&MeetingId::new(format!("m-{i:02}")).unwrap()).await.unwrap().unwrap().meeting;
        assert!(m.ended.is_some(), "m-{i:02} ended");
    }
}
