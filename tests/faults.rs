//! AWS faults: with a quarter of the worker's AWS calls failing — 500s, 503s,
//! throttling, throughput errors, calls held past the client timeout, reset
//! connections — every meeting still ends as the spec says, retries stay
//! bounded, and effects that run out of attempts are failed, visible, and
//! done after `spindown retry`.

mod common;

use spindown::inspect::MeetingStore;
use spindown::meeting::EffectFilter;
use std::time::{Duration, Instant};

use common::aws::Aws;
use common::moto::Moto;
use common::process::{sigterm, wait_started, worker_with};
use common::proxy::{FaultProxy, Rates};
use common::scenario::{self, env_usize, POLICY};
use common::*;
use spindown::store::EffectStatus;
use spindown::time::{Span, Timestamp};

const CONFIG: &str = r#"
[guard]
require_tag = "meeting_id"
[effects]
max_attempts = 30
base_delay = "100ms"
max_delay = "1s"
[stream]
idle_poll = "100ms"
timer_hold_max = "30s"
[aws]
connect_timeout = "1s"
attempt_timeout = "1s"
operation_timeout = "4s"
sdk_max_attempts = 3
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarter_of_aws_calls_failing_changes_no_outcome() {
    let n = env_usize("SPINDOWN_FAULT_MEETINGS", 52);
    let moto = Moto::start();
    let rates = Rates {
        http500: 0.05,
        http503: 0.05,
        throttle: 0.05,
        throughput: 0.04,
        delay: 0.03,
        reset: 0.03,
        delay_for: Duration::from_millis(1500),
        only: None,
    };
    let proxy = FaultProxy::start(&moto.endpoint, rates.clone(), 11).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("faults.db");
    let aws = Aws::new(&moto, "elephant-meetings").await;
    let t0 = Timestamp::now().saturating_add(Span::from_secs(4));
    let plans = scenario::meetings(&aws, n, t0, 15.0).await;
    let unrelated = vec![aws.instance("not-a-meeting").await];
    let writer = scenario::spawn_writer(&aws, &plans);

    // The worker talks to AWS only through the proxy.
    let endpoint = proxy.endpoint.clone();
    let env = [("AWS_ENDPOINT_URL", endpoint.as_str())];
    let mut w = worker_with(&moto, &db, "elephant-meetings", dir.path(), "worker.log", POLICY, CONFIG, &env);
    writer.await.unwrap();
    let store = spindown::store::sqlite::SqliteStore::open(&db, &Default::default()).await.unwrap();
    scenario::converge(&store, n, Duration::from_secs(180)).await;
    wait_started(&dir.path().join("worker.log"));
    assert!(sigterm(&mut w).success());

    let checked = scenario::check(&aws, &store, &plans, &unrelated, dir.path()).await;
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    let faults = proxy.faults();
    let requests = proxy.requests();
    let total: u64 = requests.values().sum();
    let injected: u64 = faults.values().sum();
    let share = injected as f64 / total as f64;
    assert!((0.15..=0.35).contains(&share), "{injected} of {total} calls failed ({share:.2})");
    let effects = store.effects(&EffectFilter::default()).await.unwrap();
    assert!(effects.iter().all(|e| e.status == EffectStatus::Done));
    let attempts: Vec<i64> = effects.iter().map(|e| e.attempts).collect();
    let max_attempts = *attempts.iter().max().unwrap();
    let retried = attempts.iter().filter(|a| **a > 1).count();
    assert!(max_attempts < 30, "retries stay bounded: {max_attempts}");
    let log = std::fs::read_to_string(dir.path().join("worker.log")).unwrap();
    let stream_failures = log.matches("stream call failed").count();
    eprintln!(
        "faults: {n} meetings converged ({:?}); {total} AWS calls through the proxy, {injected} failed ({:.0}%): {faults:?}; \
         calls by operation {requests:?}; {} effects, {retried} needed more than one attempt, at most {max_attempts}; \
         {stream_failures} stream calls failed and were retried; timers at most {} late, {} outcomes changed by it {:?}",
        checked.by_reason,
        share * 100.0,
        effects.len(),
        checked.max_lateness,
        checked.late_outcomes.len(),
        checked.late_outcomes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effects_that_run_out_of_attempts_fail_visibly_and_succeed_after_retry() {
    let moto = Moto::start();
    // Every TerminateInstances fails; everything else goes through.
    let down = Rates { http500: 1.0, only: Some("TerminateInstances".into()), ..Rates::default() };
    let proxy = FaultProxy::start(&moto.endpoint, down, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("retry.db");
    let dbs = db.to_str().unwrap().to_string();
    let aws = Aws::new(&moto, "elephant-meetings").await;
    let teacher = aws.instance("m-1").await;
    let student = aws.instance("m-1").await;
    let config = CONFIG.replace("max_attempts = 30", "max_attempts = 3");
    let endpoint = proxy.endpoint.clone();
    let env = [("AWS_ENDPOINT_URL", endpoint.as_str())];
    let mut w = worker_with(&moto, &db, "elephant-meetings", dir.path(), "worker.log", POLICY, &config, &env);
    wait_started(&dir.path().join("worker.log"));
    // A meeting first seen after its safety net: a no-show at once.
    let meet = Timestamp::now().saturating_add(Span::from_secs(-30)).to_rfc3339();
    use aws_sdk_dynamodb::types::AttributeValue as V;
    aws.put(&[
        ("id", V::S("m-1".into())),
        ("meet_time", V::S(meet)),
        ("teacher_ec2_id", V::S(teacher.clone())),
        ("student_ec2_id", V::S(student.clone())),
    ])
    .await;
    let store = spindown::store::sqlite::SqliteStore::open(&db, &Default::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while store
        .effects(&EffectFilter { status: Some(EffectStatus::Failed), ..EffectFilter::default() })
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "{:#?}", store.effects(&EffectFilter::default()).await.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failed =
        store.effects(&EffectFilter { status: Some(EffectStatus::Failed), ..EffectFilter::default() }).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].kind().as_str(), failed[0].attempts, failed[0].done), ("terminate", 3, 0));
    assert!(failed[0].last_error.as_deref().unwrap().contains("InternalError"), "{:?}", failed[0].last_error);
    let status = run_ok(spindown().args(["--db", &dbs, "status"]));
    assert!(status.contains(&format!("failed #{} terminate m-1 after 3 attempts", failed[0].id)), "{status}");
    let show = run_ok(spindown().args(["--db", &dbs, "show", "m-1"]));
    assert!(show.contains("effect marked failed"), "{show}");
    assert_eq!(aws.state(&teacher).await, "running");

    // EC2 recovers; an operator re-queues the effect; the running worker is woken and finishes it.
    proxy.set_rates(Rates::default());
    let out = run_ok(spindown().args(["--db", &dbs, "retry", &failed[0].id.to_string()]));
    assert!(out.contains("re-queued"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while store
        .effects(&EffectFilter { status: Some(EffectStatus::Done), ..EffectFilter::default() })
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "{:#?}", store.effects(&EffectFilter::default()).await.unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sigterm(&mut w).success());
    assert_eq!(aws.state(&teacher).await, "terminated");
    assert_eq!(aws.state(&student).await, "terminated");
    let show = run_ok(spindown().args(["--db", &dbs, "show", "m-1"]));
    assert!(show.contains("effect_failed") && show.contains("effect_done"), "{show}");
    eprintln!("retry: terminate failed after 3 attempts (InternalError), re-queued, done on the next attempt");
}
