//! The orphan sweep against moto: `spindown sweep [--dry-run]` and the
//! worker's recurring job. An instance tagged for a meeting that ended is
//! terminated (and that is in the meeting's history); one tagged for a
//! meeting still running, one tagged for a meeting never seen, and an
//! untagged bystander are left alone; the dry run changes nothing.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::aws::Aws;
use common::moto::Moto;
use common::process::{sigterm, worker_with, POLICY};
use common::*;
use spindown::time::{Span, Timestamp};

fn cli(moto: &Moto, db: &Path) -> Command {
    let mut c = spindown();
    c.arg("--db").arg(db);
    for (k, v) in moto.env() {
        c.env(k, v);
    }
    c
}

const CONFIG: &str = r#"
[guard]
require_tag = "meeting_id"
[stream]
idle_poll = "100ms"
[sweep]
grace = "1s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_terminates_orphans_of_ended_meetings_and_nothing_else() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sweep.db");
    let config = dir.path().join("spindown.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let aws = Aws::new(&moto, "elephant-meetings").await;

    // The orphan: its meeting's row named a wrong instance id, so ending the
    // meeting never touched the real, tagged instance.
    let orphan = aws.instance("m-ended").await;
    let running = aws.instance("m-running").await;
    let unknown = aws.instance("m-never-seen").await;
    let bystander = aws.untagged_instance().await;
    let soon = Timestamp::now().saturating_add(Span::from_mins(30)).to_rfc3339();
    run_ok(cli(&moto, &db).args(["schedule", "m-ended", "--meet-time", &soon, "--teacher-ec2", "i-0123456789abcdef0"]));
    run_ok(cli(&moto, &db).args(["schedule", "m-running", "--meet-time", &soon, "--teacher-ec2", &running]));
    run_ok(cli(&moto, &db).args(["terminate", "m-ended"]));
    std::thread::sleep(Duration::from_millis(1500)); // past the 1 s grace

    // The dry run: says what it would do, changes nothing.
    let out = run_ok(cli(&moto, &db).args(["sweep", "--dry-run", "--json", "--config"]).arg(&config));
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["seen"], 3, "three tagged instances pending or running: {report}");
    assert_eq!(report["left_alone"], 1, "the running meeting's: {report}");
    let actions: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["instance_id"].as_str().unwrap().to_string(), f["action"].as_str().unwrap().to_string()))
        .collect();
    assert!(actions.contains(&(orphan.clone(), "would_terminate".into())), "{actions:?}");
    assert!(actions.contains(&(unknown.clone(), "reported".into())), "{actions:?}");
    for i in [&orphan, &running, &unknown, &bystander] {
        assert_eq!(aws.state(i).await, "running", "the dry run touches nothing ({i})");
    }
    assert!(!run_ok(cli(&moto, &db).arg("status")).contains("orphan sweep"), "a dry run writes no log");

    // The sweep.
    let out = run_ok(cli(&moto, &db).args(["sweep", "--config"]).arg(&config));
    assert!(out.contains("terminated") && out.contains(&orphan), "{out}");
    assert_eq!(aws.state(&orphan).await, "terminated", "the orphan of an ended meeting");
    assert_eq!(aws.state(&running).await, "running", "a running meeting's instance");
    assert_eq!(aws.state(&unknown).await, "running", "a meeting never seen: reported only");
    assert_eq!(aws.state(&bystander).await, "running", "no tag: never touched");
    let show = run_ok(cli(&moto, &db).args(["show", "m-ended"]));
    assert!(show.contains(&format!("instance {orphan} was still running after the meeting ended")), "{show}");
    assert!(show.contains("sweep orphans"), "the history names the sweep: {show}");
    let status = run_ok(cli(&moto, &db).arg("status"));
    assert!(status.contains(&format!("terminated {orphan} (tag m-ended)")), "{status}");
    assert!(status.contains(&format!("reported {unknown} (tag m-never-seen)")), "{status}");

    // The worker's recurring job does the same: another orphan of the ended meeting.
    let second = aws.instance("m-ended").await;
    let worker_config = format!("{CONFIG}every = \"1s\"\n");
    let mut w = worker_with(&moto, &db, "elephant-meetings", dir.path(), "worker.log", POLICY, &worker_config, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while aws.state(&second).await != "terminated" {
        assert!(
            Instant::now() < deadline,
            "the worker's sweep did not terminate {second}:\n{}",
            std::fs::read_to_string(dir.path().join("worker.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(sigterm(&mut w).success());
    assert_eq!(aws.state(&running).await, "running");
    assert_eq!(aws.state(&unknown).await, "running");
    assert_eq!(aws.state(&bystander).await, "running");
}

/// Three workers on one PostgreSQL database, each with the recurring sweep:
/// one sweeps at a time (the holder of the sweep's lease row), so a tagged
/// instance of a meeting never seen is reported once a second, not three
/// times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sweeper_at_a_time_across_workers() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let url = common::postgres::database("one_sweeper");
    let aws = Aws::new(&moto, "elephant-meetings").await;
    let unknown = aws.instance("m-never-seen").await;
    // The schema first (the test reads the sweep log from the start).
    let _store = spindown::store::postgres::PgStore::open(&url, &Default::default()).await.unwrap();
    let config = format!("{CONFIG}every = \"1s\"\n");
    let mut workers: Vec<_> = (0..3)
        .map(|k| {
            let id = format!("w{k}");
            let log = format!("{id}.log");
            worker_with(
                &moto,
                Path::new(&url),
                "elephant-meetings",
                dir.path(),
                &log,
                POLICY,
                &config,
                &[("SPINDOWN_WORKER_ID", id.as_str())],
            )
        })
        .collect();
    let reported = || -> usize {
        common::postgres::sql(&url, &format!("SELECT count(*) FROM sweep_log WHERE instance_id = '{unknown}'"))
            .trim()
            .parse()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while reported() == 0 {
        assert!(Instant::now() < deadline, "no sweep reported {unknown}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (t0, n0) = (Instant::now(), reported());
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (secs, n) = (t0.elapsed().as_secs_f64(), reported() - n0);
    assert!(n >= 4, "the sweep goes on: {n} reports in {secs:.1}s");
    assert!(
        (n as f64) <= secs + 2.0,
        "one sweeper at a time: {n} reports in {secs:.1}s (three would make ~{:.0})",
        3.0 * secs
    );
    let holder = common::postgres::sql(&url, "SELECT owner FROM shard_leases WHERE stream_arn = 'spindown:sweep'");
    assert!(["w0", "w1", "w2"].contains(&holder.trim()), "the sweep's lease: {holder:?}");
    for w in workers.iter_mut() {
        assert!(sigterm(w).success());
    }
    eprintln!("one sweeper: {n} reports in {secs:.1}s by {}", holder.trim());
}
