//! Failover: the worker holding the stream's shard is SIGKILLed; how long
//! until another worker applies the next record, and fires a timer that fell
//! due after the kill? Target: at most the lease TTL + 1 s.
//!
//! Two `spindown run` processes on a real PostgreSQL server and moto, with
//! `[stream] lease_ttl = "3s"`: the dead worker's lease runs out at most 3 s
//! after its last renewal (it renews every 1 s); the survivor, which has seen
//! when that lease runs out, looks again then and takes the shard over.

mod common;

use spindown::inspect::MeetingStore;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue as V;
use common::aws::Aws;
use common::moto::Moto;
use common::process::{kill9, sigterm, worker_with};
use spindown::meeting::history::Cause;
use spindown::store::postgres::{PgOptions, PgStore};
use spindown::time::{Span, Timestamp};

const TTL_SECS: u64 = 3;

const CONFIG: &str = r#"
[effects]
base_delay = "200ms"
[stream]
idle_poll = "100ms"
timer_hold_max = "60s"
lease_ttl = "3s"
"#;

const POLICY: &str = r#"
safety_net_delay = "4s"
min_success_duration = "4s"
keepalive_recheck = "3s"
max_lifetime = "60s"
overrun_grace = "2s"
"#;

async fn meeting(aws: &Aws, id: &str, start: Timestamp) {
    let (t, s) = (aws.instance(id).await, aws.instance(id).await);
    aws.put(&[
        ("id", V::S(id.into())),
        ("status", V::S("SCHEDULED".into())),
        ("teacher_ec2_id", V::S(t)),
        ("student_ec2_id", V::S(s)),
        ("meet_time", V::S(start.to_rfc3339())),
        ("created_at", V::S(start.saturating_add(Span::from_hours(-1)).to_rfc3339())),
    ])
    .await;
}

/// Poll until `f` holds; the time it took.
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) -> Duration {
    let started = Instant::now();
    while !f().await {
        assert!(started.elapsed() < Duration::from_secs(30), "{what}: not within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

fn holder(url: &str) -> String {
    common::postgres::sql(
        url,
        "SELECT COALESCE(max(owner), '') FROM shard_leases WHERE owner IS NOT NULL AND expires_at > spindown_now_us()",
    )
    .trim()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_shard_reader_dies_another_worker_takes_over_within_the_lease_ttl() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let url = common::postgres::database("failover");
    let aws = Aws::new(&moto, "elephant-meetings").await;
    let spawn = |id: &str| {
        worker_with(
            &moto,
            Path::new(&url),
            "elephant-meetings",
            dir.path(),
            &format!("{id}.log"),
            POLICY,
            CONFIG,
            &[("SPINDOWN_WORKER_ID", id)],
        )
    };
    let mut a = spawn("a");
    let store = PgStore::open(&url, &PgOptions::default()).await.unwrap();
    meeting(&aws, "m-warmup", Timestamp::now().saturating_add(Span::from_secs(600))).await;
    until("the first worker reads the stream", || async {
        store.meeting(&"m-warmup".parse().unwrap()).await.unwrap().is_some()
    })
    .await;
    let mut b = spawn("b");
    tokio::time::sleep(Duration::from_secs(2)).await; // b announces itself and settles
    assert_eq!(holder(&url), "a", "a keeps the only shard");

    // A meeting whose safety net falls due 0.5 s after the kill.
    let kill_at = Timestamp::now().saturating_add(Span::from_secs(2));
    meeting(&aws, "m-timer", kill_at.saturating_add(Span::from_millis(500)).saturating_add(Span::from_secs(-4))).await;
    until("m-timer applied", || async { store.meeting(&"m-timer".parse().unwrap()).await.unwrap().is_some() }).await;
    common::process::sleep_until(kill_at).await;
    kill9(&mut a);
    let killed = Timestamp::now();
    meeting(&aws, "m-next", Timestamp::now().saturating_add(Span::from_secs(600))).await;

    // When each happened, by the instants recorded in the histories.
    until("another worker applies the next record", || async {
        store.meeting(&"m-next".parse().unwrap()).await.unwrap().is_some()
    })
    .await;
    let applied = store.history(&"m-next".parse().unwrap()).await.unwrap()[0].entry.at;
    until("the timer due after the kill fires", || async {
        let h = store.history(&"m-timer".parse().unwrap()).await.unwrap();
        h.iter().any(|e| matches!(e.entry.cause, Cause::Timer { .. }))
    })
    .await;
    let h = store.history(&"m-timer".parse().unwrap()).await.unwrap();
    let fired = h.iter().find(|e| matches!(e.entry.cause, Cause::Timer { .. })).unwrap().entry.at;
    let secs = |t: Timestamp| t.since(killed).as_micros() as f64 / 1e6;
    let (record, timer) = (secs(applied), secs(fired));
    assert_eq!(holder(&url), "b", "b took the shard over");
    let budget = TTL_SECS as f64 + 1.5;
    eprintln!(
        "failover: lease TTL {TTL_SECS} s; after SIGKILL of the shard's reader, the next record was applied by \
         the other worker after {:.2} s and the timer due 0.5 s after the kill fired {:.2} s after the kill \
         (target: TTL + 1 s = {} s)",
        record,
        timer,
        TTL_SECS + 1
    );
    assert!(record <= budget, "record applied {record:.2} s after the kill");
    assert!(timer <= budget, "timer fired {timer:.2} s after the kill");
    assert!(sigterm(&mut b).success());
}
