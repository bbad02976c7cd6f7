//! End to end on the real AWS SDK against a local AWS endpoint (moto): a table
//! with a NEW_AND_OLD_IMAGES stream, tagged instances, rows written through
//! their life, `spindown run` as a child process — SIGKILLed mid-way and
//! restarted — and then the instances, the table and `spindown show` checked.

mod common;

use spindown::inspect::MeetingStore;
use spindown::meeting::EffectFilter;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue as V;
use common::aws::Aws;
use common::moto::Moto;
use common::process::{kill9, sigterm, sleep_until, worker, CONFIG, POLICY};
use common::*;
use spindown::meeting::history::Outcome;
use spindown::meeting::State;
use spindown::store::{EffectStatus, Store};
use spindown::time::{Span, Timestamp};

fn s(v: &str) -> V {
    V::S(v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_replaces_the_lambdas_end_to_end() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("worker.db");
    let aws = Aws::new(&moto, "elephant-meetings").await;

    // Instances: two per meeting, tagged with its id; a few special cases.
    let ids = [
        "m-noshow",
        "m-partial",
        "m-15min",
        "m-success",
        "m-cancel",
        "m-external",
        "m-keepalive",
        "m-noteacher",
        "m-guard",
    ];
    let mut inst: BTreeMap<&str, (String, String)> = BTreeMap::new();
    for id in ids {
        let teacher = match id {
            "m-noteacher" => "i-0123456789abcdef0".to_string(),
            "m-guard" => aws.untagged_instance().await,
            _ => aws.instance(id).await,
        };
        let student = if id == "m-guard" { aws.instance("m-someone-else").await } else { aws.instance(id).await };
        inst.insert(id, (teacher, student));
    }
    let unrelated = aws.instance("m-unrelated").await;

    let t0 = Timestamp::now().saturating_add(Span::from_secs(2));
    let at = |secs: f64| t0.saturating_add(Span::from_micros((secs * 1e6) as i64));
    for id in ids {
        let (teacher, student) = &inst[id];
        let status = if matches!(id, "m-15min" | "m-success" | "m-keepalive") { "IN_PROGRESS" } else { "SCHEDULED" };
        aws.put(&[
            ("id", s(id)),
            ("meet_time", s(&t0.to_rfc3339())),
            ("created_at", s(&Timestamp::now().to_rfc3339())),
            ("status", s(status)),
            ("teacher_ec2_id", s(teacher)),
            ("student_ec2_id", s(student)),
        ])
        .await;
    }

    let mut w = worker(&moto, &db, "elephant-meetings", dir.path(), "worker-1.log");
    sleep_until(at(1.0)).await;
    aws.set("m-partial", "teacher_session_data", s("blob")).await;
    aws.set("m-15min", "teacher_session_data", s("t")).await;
    aws.set("m-15min", "student_session_data", s("s")).await;
    aws.delete("m-cancel").await;
    aws.set("m-external", "status", s("TERMINATED")).await;

    // Crash mid-way, before any safety net is due; stay down while several fall due.
    sleep_until(at(2.5)).await;
    kill9(&mut w);
    sleep_until(at(5.0)).await;
    aws.set("m-success", "teacher_session_data", s("t")).await;
    aws.set("m-success", "student_session_data", s("s")).await;
    sleep_until(at(6.0)).await;
    let mut w = worker(&moto, &db, "elephant-meetings", dir.path(), "worker-2.log");

    // Wait for every meeting to end (the keep-alive one hits its 14 s cap).
    let store = spindown::store::sqlite::SqliteStore::open(&db, &Default::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = store.counts().await.unwrap();
        let pending = c.effects(EffectStatus::Pending) > 0;
        if c.in_state(State::Terminated) == ids.len() as i64 && c.meetings == ids.len() as i64 && !pending {
            break;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.path().join("worker-2.log")).unwrap_or_default();
            panic!("meetings did not converge: {c:?}\nworker log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = sigterm(&mut w);
    assert!(status.success(), "SIGTERM is a clean exit: {status}");

    // Reasons, as the spec says.
    let want = [
        ("m-noshow", "NO_SHOW_TIMEOUT"),
        ("m-partial", "PARTIAL_NO_SHOW_TIMEOUT"),
        ("m-15min", "15_MIN_SUCCESS"),
        ("m-success", "SUCCESS"),
        ("m-cancel", "CANCELLED"),
        ("m-external", "EXTERNAL"),
        ("m-keepalive", "MAX_LIFETIME"),
        ("m-noteacher", "NO_SHOW_TIMEOUT"),
        ("m-guard", "NO_SHOW_TIMEOUT"),
    ];
    let dbs = db.to_str().unwrap();
    for (id, reason) in want {
        let m = store.meeting(&id.parse().unwrap()).await.unwrap().unwrap().meeting;
        let ended = m.ended.unwrap_or_else(|| panic!("{id} not terminated"));
        assert_eq!(ended.reason.as_str(), reason, "{id}");

        // Instances: terminated, except the ones the guard refused and the missing one.
        let (teacher, student) = &inst[id];
        if id == "m-guard" {
            assert_eq!(aws.state(teacher).await, "running", "an untagged instance is never terminated");
        } else if id != "m-noteacher" {
            assert_eq!(aws.state(teacher).await, "terminated", "{id} teacher");
        }
        let student_state = aws.state(student).await;
        if id == "m-guard" {
            assert_eq!(student_state, "running", "an instance tagged for another meeting is never terminated");
        } else {
            assert_eq!(student_state, "terminated", "{id} student");
        }

        // The write-back, exactly as specified.
        let item = aws.item(id).await;
        match reason {
            "CANCELLED" => assert_eq!(item, None, "the deleted row is not recreated"),
            "EXTERNAL" => {
                let item = item.unwrap();
                assert_eq!(item["status"], "TERMINATED");
                assert!(!item.contains_key("termination_reason"), "no write-back for EXTERNAL");
            }
            _ => {
                let item = item.unwrap_or_else(|| panic!("{id} row missing"));
                assert_eq!(item["status"], "TERMINATED", "{id}");
                assert_eq!(item["termination_reason"], reason, "{id}");
                assert_eq!(item["terminated_at"], ended.at.to_rfc3339(), "{id}");
            }
        }

        // The story, once: exactly one termination in the history.
        let history = store.history(&id.parse().unwrap()).await.unwrap();
        let ends = history.iter().filter(|h| h.entry.outcome == Outcome::Terminated).count();
        assert_eq!(ends, 1, "{id}: {ends} terminations in history");
        let show = run_ok(spindown().args(["--db", dbs, "show", id]));
        assert!(show.contains(reason), "{id}: {show}");
        assert!(show.contains("effect terminate"), "{id}: the effect outcome is in the history: {show}");
    }
    assert_eq!(aws.state(&unrelated).await, "running", "an unrelated instance still runs");

    let show = run_ok(spindown().args(["--db", dbs, "show", "m-noteacher"]));
    assert!(show.contains("already gone (InvalidInstanceID.NotFound): i-0123456789abcdef0"), "{show}");
    assert!(show.contains(&format!("terminated {}", inst["m-noteacher"].1)), "{show}");
    let show = run_ok(spindown().args(["--db", dbs, "show", "m-guard"]));
    assert!(show.contains(&format!("refused to terminate {}", inst["m-guard"].1)), "{show}");
    assert!(show.contains("does not name meeting m-guard"), "{show}");
    assert!(
        show.contains(&format!("refused to terminate {}: instance has no meeting_id tag", inst["m-guard"].0)),
        "{show}"
    );
    let show = run_ok(spindown().args(["--db", dbs, "show", "m-success"]));
    assert!(show.contains("late)"), "the safety net fired late after the restart: {show}");

    // Nothing failed, nothing left behind; the checkpoint moved.
    let effects = store.effects(&EffectFilter::default()).await.unwrap();
    assert!(effects.iter().all(|e| e.status == EffectStatus::Done), "{effects:#?}");
    let cps = store.checkpoints(None).await.unwrap();
    assert_eq!(cps.len(), 1);
    assert!(cps[0].records >= 20, "{cps:?}");
    let status = run_ok(spindown().args(["--db", dbs, "status"]));
    assert!(status.contains("stream") && status.contains(&cps[0].shard_id), "{status}");
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_without_a_stream_and_retry_failed_effects() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let dbs = db.to_str().unwrap();
    let aws = Aws::new(&moto, "meetings-2").await;
    let teacher = aws.instance("m-direct").await;
    let student = aws.instance("m-direct").await;
    let stream_arn = {
        let t = aws.ddb.describe_table().table_name("meetings-2").send().await.unwrap();
        t.table().unwrap().latest_stream_arn().unwrap().to_string()
    };

    // A meeting registered directly, as schedule-meeting used to call EventBridge.
    let meet = Timestamp::now().saturating_add(Span::from_secs(-3));
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let out = run_ok(
        spindown()
            .args(["--db", dbs, "schedule", "m-direct", "--meet-time", &meet.to_rfc3339(), "--teacher-ec2", &teacher])
            .args(["--student-ec2", &student, "--policy"])
            .arg(&policy),
    );
    assert!(out.contains("armed safety_net timer"), "{out}");
    let bad = run(spindown().args([
        "--db",
        dbs,
        "schedule",
        "m-x",
        "--meet-time",
        "2026-11-26T10:00:00Z",
        "--teacher-ec2",
        "i-NOPE",
    ]));
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--teacher-ec2"));

    // First the worker cannot reach AWS: the termination's effects fail twice and are marked failed.
    let dead = format!("http://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spindown"));
    cmd.args(["--db", dbs, "run", "--table", "meetings-2", "--stream-arn", &stream_arn, "--max-attempts", "2"]);
    cmd.arg("--policy").arg(&policy).arg("--config").arg(dir.path().join("dead.toml"));
    // The stream is unreadable too: due timers wait for it at most half a second.
    std::fs::write(dir.path().join("dead.toml"), format!("{CONFIG}timer_hold_max = \"500ms\"\n")).unwrap();
    for (k, v) in moto.env() {
        cmd.env(k, v);
    }
    cmd.env("AWS_ENDPOINT_URL", &dead).stderr(std::fs::File::create(dir.path().join("dead.log")).unwrap());
    let mut w = cmd.spawn().unwrap();
    let store = spindown::store::sqlite::SqliteStore::open(&db, &Default::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while store
        .effects(&EffectFilter { status: Some(EffectStatus::Failed), ..EffectFilter::default() })
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "effects never failed: {:#?}",
            store.effects(&EffectFilter::default()).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sigterm(&mut w).success());
    let status = run_ok(spindown().args(["--db", dbs, "status"]));
    assert!(status.contains("failed #") && status.contains("spindown retry"), "{status}");
    assert!(status.contains("cannot reach the endpoint"), "the error says why: {status}");
    assert_eq!(aws.state(&teacher).await, "running", "nothing happened yet");

    // `retry` re-queues them; a worker that can reach AWS completes them.
    let out = run_ok(spindown().args(["--db", dbs, "retry", "--all-failed"]));
    assert!(out.contains("1 failed effect(s) re-queued"), "{out}");
    let mut w = worker(&moto, &db, "meetings-2", dir.path(), "w.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while store
        .effects(&EffectFilter { status: Some(EffectStatus::Done), ..EffectFilter::default() })
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "effects not run: {:#?}",
            store.effects(&EffectFilter::default()).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sigterm(&mut w).success());
    assert_eq!(aws.state(&teacher).await, "terminated");
    assert_eq!(aws.state(&student).await, "terminated");
    assert_eq!(aws.item("m-direct").await, None, "the write-back never creates a row");
    let show = run_ok(spindown().args(["--db", dbs, "show", "m-direct"]));
    assert!(show.contains("row already TERMINATED (or gone)"), "{show}");
    assert!(show.contains("effect_failed") && show.contains("effect_done"), "the whole story: {show}");

    let not_failed = run(spindown().args(["--db", dbs, "retry", "1"]));
    assert!(!not_failed.status.success());
    assert!(String::from_utf8_lossy(&not_failed.stderr).contains("is done, not failed"));
}

#[tokio::test]
async fn unreachable_or_misconfigured_aws_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = spindown()
        .arg("--db")
        .arg(&db)
        .args(["run", "--table", "t"])
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap();
    assert!(last.contains("cannot reach the endpoint") && last.contains("Connection refused"), "{err}");
    assert!(!err.contains("dispatch failure"), "{err}");

    let out = spindown()
        .arg("--db")
        .arg(&db)
        .args(["run", "--table", "t"])
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().last().unwrap().contains("no AWS credentials found"), "{err}");
}
