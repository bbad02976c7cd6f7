//! A network that black-holes one worker's connections to PostgreSQL in the
//! middle of a transaction (nothing reset, nothing answered), then lets them
//! through again.
//!
//! Worker A reaches the server through a TCP proxy, worker B directly. A is
//! held inside a unit of work that has locked its meetings' rows (a hold
//! point, `SPINDOWN_HOLD=in-transaction=…`), the proxy stops forwarding,
//! and A goes on into a commit that never gets an answer. Then:
//!
//! * B takes A's shard over within the lease TTL + 2 s (A's leases are renewed
//!   on a task of their own, which is cut off too);
//! * B is not blocked by A's row locks for longer than the server's
//!   `idle_in_transaction_session_timeout` + `lock_timeout` (the server ends
//!   A's session and B's waits give up and retry): a meeting written after
//!   the cut is applied by B within TTL + 2 s + those two timeouts;
//! * A, its calls past its own deadline, reports the outage in `/readyz` and
//!   recovers once the proxy lets traffic through again (within 30 s), still
//!   running;
//! * every meeting ends as `spindown replay` says, every timer fired once;
//! * cut off again and asked to stop, A exits within its `shutdown_timeout`.
//!
//! Time is shrunk: lease TTL 3 s, lock_timeout 2 s,
//! idle_in_transaction_session_timeout 4 s, statement timeout 5 s, call
//! timeout 8 s, acquire timeout 3 s; the meeting policy in seconds
//! (scenario::POLICY).

mod common;

use spindown::inspect::MeetingStore;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue as V;
use common::aws::Aws;
use common::moto::Moto;
use common::process::{sigterm, wait_started, worker_with};
use common::scenario::{self, POLICY};
use common::tcp::TcpProxy;
use common::web::{free_port, get};
use spindown::store::postgres::{PgOptions, PgStore};
use spindown::time::{Span, Timestamp};

const TTL: f64 = 3.0;
const LOCK_TIMEOUT: f64 = 2.0;
const IDLE_IN_TX: f64 = 4.0;

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
acquire_timeout = "3s"
statement_timeout = "5s"
lock_timeout = "2s"
idle_in_transaction_timeout = "4s"
call_timeout = "8s"
[worker]
shutdown_timeout = "5s"
[http]
listen = "127.0.0.1:{port}"
timer_stall = "600s"
reader_stall = "600s"
"#
    )
}

fn owner(url: &str) -> String {
    common::postgres::sql(
        url,
        "SELECT coalesce(string_agg(owner, ','), '') FROM shard_leases WHERE stream_arn NOT LIKE 'spindown:%' AND expires_at > spindown_now_us()",
    )
    .trim()
    .to_string()
}

fn wait(what: &str, within: Duration, mut ok: impl FnMut() -> bool) -> f64 {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    t0.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_cut_off_mid_transaction_holds_nobody_up_and_comes_back() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let url = common::postgres::database("blackhole");
    let aws = Aws::new(&moto, "elephant-meetings").await;
    let pg = url.trim_start_matches("postgres://spindown@").split('/').next().unwrap().to_string();
    let proxy = TcpProxy::start(&pg).await;
    let url_a = url.replace(&pg, &format!("127.0.0.1:{}", proxy.port));
    let hold = dir.path().join("hold");
    // The schema first (the test reads the lease table from the start).
    let store = PgStore::open(&url, &PgOptions::default()).await.unwrap();

    let (port_a, port_b) = (free_port(), free_port());
    for d in ["a", "b"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    let spec = format!("in-transaction={}", hold.display());
    let env_a = [("SPINDOWN_WORKER_ID", "a"), ("SPINDOWN_HOLD", spec.as_str())];
    let mut a = worker_with(
        &moto,
        Path::new(&url_a),
        "elephant-meetings",
        &dir.path().join("a"),
        "a.log",
        POLICY,
        &config(port_a),
        &env_a,
    );
    wait("A to hold the shard", Duration::from_secs(30), || owner(&url) == "a");
    let mut b = worker_with(
        &moto,
        Path::new(&url),
        "elephant-meetings",
        &dir.path().join("b"),
        "b.log",
        POLICY,
        &config(port_b),
        &[("SPINDOWN_WORKER_ID", "b")],
    );
    wait("both ready", Duration::from_secs(30), || {
        [port_a, port_b].iter().all(|p| get(*p, "/readyz").is_ok_and(|(c, _)| c == 200))
    });
    assert_eq!(owner(&url), "a", "one shard: A keeps it");

    let t0 = Timestamp::now().saturating_add(Span::from_secs(3));
    let mut plans = scenario::meetings(&aws, 13, t0, 8.0).await;
    let writer = scenario::spawn_writer(&aws, &plans);
    wait("A to apply records", Duration::from_secs(30), || {
        futures_lite_block(store.counts()).map(|c| c.meetings > 2).unwrap_or(false)
    });

    // A stops inside a unit of work that writes meetings (their rows locked) …
    std::fs::write(&hold, "").unwrap();
    let log_a = dir.path().join("a").join("a.log");
    wait("A held in its transaction", Duration::from_secs(30), || {
        std::fs::read_to_string(&log_a).unwrap_or_default().contains("hold in-transaction: waiting")
    });
    // … the network swallows everything, and A goes on into a commit that gets no answer.
    proxy.hold();
    std::fs::remove_file(&hold).unwrap();
    let cut = Instant::now();

    // A meeting written after the cut: B applies it once it has taken the shard over.
    let late_id = "after-the-cut";
    let (late_t, late_s) = (aws.instance(late_id).await, aws.instance(late_id).await);
    let start = Timestamp::now().saturating_add(Span::from_secs(1));
    aws.put(&[
        ("id", V::S(late_id.into())),
        ("status", V::S("SCHEDULED".into())),
        ("meet_time", V::S(start.to_rfc3339())),
        ("teacher_ec2_id", V::S(late_t.clone())),
        ("student_ec2_id", V::S(late_s.clone())),
    ])
    .await;
    plans.push(scenario::Plan {
        id: late_id.into(),
        kind: "no-show",
        start,
        ops: scenario::plan_ops(0).1,
        teacher: late_t,
        student: late_s,
        foreign_student: false,
    });
    wait("B to take the shard over", Duration::from_secs(30), || owner(&url) == "b");
    let takeover = cut.elapsed().as_secs_f64();
    assert!(takeover <= TTL + 2.0, "B took the shard over {takeover:.1}s after the cut (TTL {TTL}s + 2s)");
    wait("B to apply the record written after the cut", Duration::from_secs(60), || {
        futures_lite_block(store.meeting(&late_id.parse().unwrap())).is_ok_and(|m| m.is_some())
    });
    let applied = cut.elapsed().as_secs_f64();
    let bound = TTL + 2.0 + IDLE_IN_TX + LOCK_TIMEOUT + 2.0;
    assert!(applied <= bound, "B applied a record {applied:.1}s after the cut (bound {bound}s): held up by A's locks?");
    // A knows it is cut off.
    let noticed = wait("A's /readyz to say the store is away", Duration::from_secs(30), || {
        get(port_a, "/readyz").is_ok_and(|(c, body)| c == 503 && body.contains("store"))
    });
    assert!(a.try_wait().unwrap().is_none(), "A is still running");

    // The network comes back: A recovers on its own.
    std::thread::sleep(Duration::from_secs(5));
    proxy.release();
    let recovered =
        wait("A ready again", Duration::from_secs(30), || get(port_a, "/readyz").is_ok_and(|(c, _)| c == 200));
    assert!(a.try_wait().unwrap().is_none(), "A is still running");

    writer.await.unwrap();
    scenario::converge(&store, plans.len(), Duration::from_secs(90)).await;
    let checked = scenario::check(&aws, &store, &plans, &[], dir.path()).await;
    assert!(checked.late_outcomes.is_empty(), "{:?}", checked.late_outcomes);
    assert!(sigterm(&mut b).success(), "B stops cleanly");
    // Cut off again, A is asked to stop: it does within its shutdown_timeout
    // (5 s), whatever its calls in flight are waiting for.
    wait_started(&log_a);
    proxy.hold();
    std::thread::sleep(Duration::from_secs(1));
    let asked = Instant::now();
    let status = sigterm(&mut a);
    let stopped = asked.elapsed().as_secs_f64();
    assert!(stopped <= 5.0 + 3.0, "A stopped {stopped:.1}s after SIGTERM while cut off ({status})");
    proxy.release();
    eprintln!(
        "black hole: B took the shard over {takeover:.1}s after A was cut off mid-transaction and applied a new record \
         {applied:.1}s after (bound {bound}s); A reported the outage after {noticed:.1}s and was ready again \
         {recovered:.1}s after the network came back, and stopped {stopped:.1}s after SIGTERM when cut off again; {} \
         meetings ended as replay says ({:?})",
        plans.len(),
        checked.by_reason
    );
}

/// Run a store future to completion from a synchronous wait loop.
fn futures_lite_block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
