//! PostgreSQL outages are weather: three `spindown run` workers on one
//! PostgreSQL server (started by the tests) and the local AWS endpoint ride
//! out the server stopped (`pg_ctl stop -m fast`) for longer than every pool,
//! acquire and call timeout — twice: once during a burst of records, once
//! during a burst of effects — a worker started while it is down, and a
//! `pg_ctl restart -m immediate`. Every worker is still running afterwards,
//! `/readyz` says 503 with the reason during an outage and 200 after, and
//! every meeting ends as `spindown replay` of the stream's records says
//! (a meeting whose timer fell due while nothing could run may end otherwise
//! only as the downtime explains, see `scenario::check`), every timer fired
//! once.
//!
//! This binary stops the tests' PostgreSQL server: it holds this one test.
//! Time is shrunk: a 4 s safety net and 16 s cap (scenario::POLICY); the
//! outages last 45 s, longer than the acquire timeout (5 s), the statement
//! timeout (10 s) and the call timeout (20 s) set here.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::aws::Aws;
use common::moto::Moto;
use common::process::{sigterm, wait_started, worker_with};
use common::proxy::{FaultProxy, Rates};
use common::scenario::{self, Plan, POLICY};
use common::web::{free_port, get};
use spindown::store::postgres::{PgOptions, PgStore};
use spindown::time::{Span, Timestamp};

const OUTAGE: Duration = Duration::from_secs(45);

fn config(port: u16) -> String {
    format!(
        r#"
[guard]
require_tag = "meeting_id"
[effects]
base_delay = "200ms"
max_delay = "2s"
lease = "5s"
[stream]
idle_poll = "100ms"
timer_hold_max = "30s"
lease_ttl = "3s"
[database]
acquire_timeout = "5s"
statement_timeout = "10s"
call_timeout = "20s"
[worker]
shutdown_timeout = "10s"
[http]
listen = "127.0.0.1:{port}"
timer_stall = "600s"
reader_stall = "600s"
"#
    )
}

struct Worker {
    child: Child,
    port: u16,
    /// `wN/worker.log` (each worker has a directory of its own for its settings).
    log: String,
    /// Whether `/readyz` answered 503 naming the store during an outage.
    saw_503: bool,
}

fn start(moto: &Moto, url: &str, dir: &Path, endpoint: &str, n: usize) -> Worker {
    let port = free_port();
    let id = format!("w{n}");
    let own = dir.join(&id);
    std::fs::create_dir_all(&own).unwrap();
    let env = [("AWS_ENDPOINT_URL", endpoint), ("SPINDOWN_WORKER_ID", id.as_str())];
    let child = worker_with(moto, Path::new(url), "elephant-meetings", &own, "worker.log", POLICY, &config(port), &env);
    Worker { child, port, log: format!("{id}/worker.log"), saw_503: false }
}

fn alive(w: &mut Worker, dir: &Path) {
    if let Some(status) = w.child.try_wait().unwrap() {
        panic!("{} exited ({status}):\n{}", w.log, std::fs::read_to_string(dir.join(&w.log)).unwrap_or_default());
    }
}

/// Stop the server for [`OUTAGE`], watching the workers' readiness meanwhile.
fn outage(workers: &mut [Worker], dir: &Path, during: impl FnOnce(&mut Vec<Worker>)) -> Vec<Worker> {
    let server = common::postgres::server();
    server.stop_fast();
    let t0 = Instant::now();
    let mut late = Vec::new();
    let mut during = Some(during);
    while t0.elapsed() < OUTAGE {
        for w in workers.iter_mut() {
            alive(w, dir);
            if let Ok((503, body)) = get(w.port, "/readyz") {
                assert!(body.contains("store"), "{}: {body}", w.log);
                w.saw_503 = true;
            }
        }
        if t0.elapsed() > Duration::from_secs(5) {
            if let Some(f) = during.take() {
                f(&mut late);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    server.start_again();
    late
}

/// Seconds from now until every worker's `/readyz` answers 200.
fn ready_again(workers: &mut [Worker], dir: &Path) -> f64 {
    let t0 = Instant::now();
    for w in workers.iter_mut() {
        loop {
            alive(w, dir);
            if get(w.port, "/readyz").is_ok_and(|(c, _)| c == 200) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(90),
                "{} never ready again: {:?}\n{}",
                w.log,
                get(w.port, "/readyz"),
                std::fs::read_to_string(dir.join(&w.log)).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    t0.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_ride_out_postgresql_stopped_and_restarted() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let url = common::postgres::database("outage");
    let aws = Aws::new(&moto, "elephant-meetings").await;
    let proxy = FaultProxy::start(&moto.endpoint, Rates::default(), 1).await;

    // Records flow: meetings of every kind start over the first 20 s.
    let t0 = Timestamp::now().saturating_add(Span::from_secs(8));
    let mut plans: Vec<Plan> = scenario::meetings(&aws, 26, t0, 20.0).await;
    let mut workers: Vec<Worker> = (0..3).map(|n| start(&moto, &url, dir.path(), &proxy.endpoint, n)).collect();
    for w in &workers {
        wait_started(&dir.path().join(&w.log));
    }
    ready_again(&mut workers, dir.path());
    let writer = scenario::spawn_writer(&aws, &plans);

    // 1. Down while the records come in (the writer goes on); a fourth worker starts meanwhile.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (m, u, d) = (&moto, url.clone(), dir.path().to_path_buf());
    let endpoint = proxy.endpoint.clone();
    let late = outage(&mut workers, dir.path(), |late| late.push(start(m, &u, &d, &endpoint, 3)));
    workers.extend(late);
    let first = ready_again(&mut workers, dir.path());
    writer.await.unwrap();

    // 2. Down while a burst of meetings ends: 20 no-shows whose safety nets
    // fall due together, their effects queued just before the stop.
    let t1 = Timestamp::now().saturating_add(Span::from_secs(2));
    let mut burst = Vec::new();
    for i in 0..20 {
        let id = format!("burst-{i:02}");
        let (teacher, student) = (aws.instance(&id).await, aws.instance(&id).await);
        let start = t1.saturating_add(Span::from_millis(25 * i));
        let ops = scenario::plan_ops(0).1;
        burst.push(Plan { id, kind: "no-show", start, ops, teacher, student, foreign_student: false });
    }
    scenario::spawn_writer(&aws, &burst).await.unwrap();
    // The nets fall due 4 s after the starts: stop as the terminations are being carried out.
    common::records::sleep_until(t1.saturating_add(Span::from_millis(4300))).await;
    outage(&mut workers, dir.path(), |_| {});
    let second = ready_again(&mut workers, dir.path());
    plans.extend(burst);

    // 3. Killed and recovered from its WAL.
    common::postgres::server().restart_immediate();
    let third = ready_again(&mut workers, dir.path());

    let store = PgStore::open(&url, &PgOptions::default()).await.unwrap();
    scenario::converge(&store, plans.len(), Duration::from_secs(120)).await;
    for w in workers.iter_mut() {
        alive(w, dir.path());
    }
    for w in &workers[..3] {
        assert!(w.saw_503, "{}: /readyz said 503 during the outages", w.log);
    }
    let checked = scenario::check(&aws, &store, &plans, &[], dir.path()).await;
    let errors: usize = workers
        .iter()
        .map(|w| {
            std::fs::read_to_string(dir.path().join(&w.log)).unwrap_or_default().matches("database unavailable").count()
        })
        .sum();
    let calls = proxy.requests().iter().filter(|(k, _)| k.contains("TerminateInstances")).map(|(_, n)| *n).sum::<u64>();
    for mut w in workers {
        wait_started(&dir.path().join(&w.log));
        let status = sigterm(&mut w.child);
        assert!(status.success(), "{} stops cleanly: {status}", w.log);
    }
    eprintln!(
        "outage: {} meetings ({:?}) on 3+1 workers; two {}s stops and an immediate restart; every worker ready again \
         {first:.1}s, {second:.1}s and {third:.1}s after the server came back; {errors} outages noticed; {} timer fires, \
         each once; {} ended otherwise than replay because nothing could run when their timer was due: {:?}; \
         {calls} TerminateInstances calls",
        plans.len(),
        checked.by_reason,
        OUTAGE.as_secs(),
        checked.timer_fires,
        checked.late_outcomes.len(),
        checked.late_outcomes,
    );
}
