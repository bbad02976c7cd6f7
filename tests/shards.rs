//! `spindown run` on a stream of two open shards read at different speeds,
//! with a backlog: moto's stream (one shard) is presented as two by a proxy
//! (`common::shards`), split by meeting id; the shard of the `*-slow`
//! meetings is served one record per `GetRecords`. Every record is written
//! before the worker starts, so everything is a backlog and many timers are
//! overdue. The outcome must equal `spindown replay` of the records merged by
//! event time — in particular the `*-slow` meetings whose both sides joined
//! 2–3 s after their start end 15_MIN_SUCCESS, not NO_SHOW_TIMEOUT (their
//! safety net used to fire the moment their INSERT was read, because the
//! fast shard had moved the event clock far ahead).
//!
//! Time is shrunk: a 4 s safety net, a 16 s cap (scenario::POLICY), leases
//! of 2 s, the gate holds a timer at most 30 s.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::aws::Aws;
use common::moto::Moto;
use common::process::{sigterm, wait_started, worker_with};
use common::scenario::{self, Op, Plan, POLICY};
use common::shards::ShardProxy;
use spindown::store::Store;
use spindown::time::{Span, Timestamp};

const CONFIG: &str = r#"
[guard]
require_tag = "meeting_id"
[effects]
base_delay = "200ms"
max_delay = "2s"
[stream]
idle_poll = "100ms"
timer_hold_max = "30s"
lease_ttl = "2s"
"#;

/// Meetings of both shards, starting over 6 s from `t0`.
async fn plans(aws: &Aws, t0: Timestamp) -> Vec<Plan> {
    use Op::*;
    let put = |status| Put { status, legacy: false, duration: None };
    /// A meeting: its id, its kind, its row's changes.
    type Spec = (String, &'static str, Vec<(f64, Op)>);
    let mut specs: Vec<Spec> = Vec::new();
    for i in 0..4 {
        // Both sides join 2 and 3 s in: complete by the safety net (4 s).
        let ops = vec![
            (-1.0, put("IN_PROGRESS")),
            (2.0, Set("teacher_session_data", "t")),
            (3.0, Set("student_session_data", "s")),
        ];
        specs.push((format!("joined-{i}-slow"), "joined", ops));
    }
    for i in 0..2 {
        let ops = vec![(-1.0, put("SCHEDULED")), (2.5, Set("teacher_session_data", "t"))];
        specs.push((format!("partial-{i}-slow"), "partial", ops));
    }
    for i in 0..12 {
        let ops = if i % 3 == 0 {
            vec![
                (-1.0, put("IN_PROGRESS")),
                (1.0, Set("teacher_session_data", "t")),
                (1.5, Set("student_session_data", "s")),
            ]
        } else {
            vec![(-1.0, put("SCHEDULED"))]
        };
        specs.push((format!("fast-{i}"), if i % 3 == 0 { "complete-early" } else { "no-show" }, ops));
    }
    let n = specs.len();
    let mut plans = Vec::new();
    for (k, (id, kind, ops)) in specs.into_iter().enumerate() {
        let start = t0.saturating_add(Span::from_micros((6e6 * k as f64 / n as f64) as i64));
        let (teacher, student) = (aws.instance(&id).await, aws.instance(&id).await);
        plans.push(Plan { id, kind, start, ops, teacher, student, foreign_student: false });
    }
    plans
}

async fn backlog(moto: &Moto) -> (Aws, Vec<Plan>) {
    let aws = Aws::new(moto, "elephant-meetings").await;
    let t0 = Timestamp::now().saturating_add(Span::from_secs(3));
    let plans = plans(&aws, t0).await;
    // Every record is written before any worker starts.
    scenario::spawn_writer(&aws, &plans).await.unwrap();
    (aws, plans)
}

async fn check(aws: &Aws, store: &dyn Store, plans: &[Plan], dir: &Path, what: &str) {
    scenario::converge(store, plans.len(), Duration::from_secs(90)).await;
    let checked = scenario::check(aws, store, plans, &[], dir).await;
    assert!(
        checked.late_outcomes.is_empty(),
        "{what}: every meeting ends as replay says, none excused by downtime: {:?}",
        checked.late_outcomes
    );
    assert_eq!(checked.by_reason.get("15_MIN_SUCCESS").copied().unwrap_or(0), 4 + 4, "{what}: {:?}", checked.by_reason);
    eprintln!("{what}: {} meetings on two shards ended as replay says: {:?}", plans.len(), checked.by_reason);
}

fn split() -> common::shards::Split {
    Arc::new(|id: &str| usize::from(id.ends_with("-slow")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_reads_a_backlog_on_two_shards_at_different_speeds_like_replay() {
    let moto = Moto::start();
    let (aws, plans) = backlog(&moto).await;
    let proxy = ShardProxy::start(&moto.endpoint, split(), Some(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("two.db");
    let env = [("AWS_ENDPOINT_URL", proxy.endpoint.as_str())];
    let mut w = worker_with(&moto, &db, "elephant-meetings", dir.path(), "w.log", POLICY, CONFIG, &env);
    let store = spindown::store::sqlite::SqliteStore::open(&db, &Default::default()).await.unwrap();
    check(&aws, &store, &plans, dir.path(), "one SQLite worker").await;
    let shards: Vec<String> = store.checkpoints(None).await.unwrap().into_iter().map(|c| c.shard_id).collect();
    assert_eq!(shards.len(), 2, "two shards read: {shards:?}");
    wait_started(&dir.path().join("w.log"));
    assert!(sigterm(&mut w).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_each_on_one_shard_read_a_backlog_like_replay() {
    let moto = Moto::start();
    let (aws, plans) = backlog(&moto).await;
    let proxy = ShardProxy::start(&moto.endpoint, split(), Some(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let url = common::postgres::database("two_shards");
    let mut workers = Vec::new();
    for k in 0..2 {
        let id = format!("w{k}");
        let env = [("AWS_ENDPOINT_URL", proxy.endpoint.as_str()), ("SPINDOWN_WORKER_ID", id.as_str())];
        let log = format!("{id}.log");
        workers.push((
            worker_with(&moto, Path::new(&url), "elephant-meetings", dir.path(), &log, POLICY, CONFIG, &env),
            log,
        ));
    }
    let store = spindown::store::postgres::PgStore::open(&url, &Default::default()).await.unwrap();
    check(&aws, &store, &plans, dir.path(), "two PostgreSQL workers").await;
    let owners: std::collections::BTreeSet<String> =
        store.leases(None).await.unwrap().into_iter().filter_map(|l| l.owner).collect();
    eprintln!("shard owners at the end: {owners:?}");
    for (mut w, log) in workers {
        wait_started(&dir.path().join(&log));
        assert!(sigterm(&mut w).success());
    }
}
