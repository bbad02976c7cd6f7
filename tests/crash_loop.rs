//! Crash loop: the worker is killed over and over while meetings live and die,
//! and nothing is lost or doubled.
//!
//! Against the local AWS endpoint: N meetings (default 200; every scenario kind
//! of the spec, timings in seconds) are written through their lives while
//! `spindown run` runs as a child process that is SIGKILLed at random moments
//! (at least K times, default 20) and restarted each time; crash points inside
//! the worker (`SPINDOWN_FAILPOINTS`) also abort it while a page of records is
//! in hand, inside a transaction, between a commit and its effects, and around
//! effect calls. Afterwards every meeting's state and reason must equal what
//! `spindown replay` computes from the records read back from the stream; the
//! instances, the write-backs, the histories and the database file are checked.
//!
//! Larger runs: `SPINDOWN_CRASH_MEETINGS=1000 SPINDOWN_CRASH_KILLS=60 scripts/test --test crash_loop -- --nocapture`

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue as V;
use common::aws::Aws;
use common::moto::Moto;
use common::process::{kill9, sigterm, worker_with};
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spindown::time::{Span, Timestamp};

const POLICY: &str = r#"
safety_net_delay = "4s"
min_success_duration = "4s"
keepalive_recheck = "3s"
max_lifetime = "16s"
overrun_grace = "2s"
"#;

const CONFIG: &str = r#"
[guard]
require_tag = "meeting_id"
[effects]
base_delay = "200ms"
max_delay = "2s"
[stream]
idle_poll = "100ms"
timer_hold_max = "30s"
"#;

const FAILPOINTS: &str =
    "stream-after-fetch=0.02,tx-before-commit=0.004,after-commit=0.004,effect-before-call=0.01,effect-after-call=0.01";

/// What happens to a meeting's row, and when (seconds from its start).
#[derive(Debug, Clone)]
enum Op {
    Put { status: &'static str, legacy: bool, duration: Option<&'static str> },
    Set(&'static str, &'static str),
    Delete,
}

#[derive(Clone)]
struct Plan {
    id: String,
    kind: &'static str,
    start: Timestamp,
    ops: Vec<(f64, Op)>,
    teacher: String,
    student: String,
    /// The student instance is tagged for another meeting: it must keep running.
    foreign_student: bool,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn plan_ops(kind: usize) -> (&'static str, Vec<(f64, Op)>) {
    use Op::*;
    let put = |status| Put { status, legacy: false, duration: None };
    match kind {
        0 => ("no-show", vec![(-2.0, put("SCHEDULED"))]),
        1 => ("partial", vec![(-2.0, put("SCHEDULED")), (1.5, Set("teacher_session_data", "t"))]),
        2 => (
            "complete-early",
            vec![
                (-2.0, put("IN_PROGRESS")),
                (1.5, Set("teacher_session_data", "t")),
                (1.6, Set("student_session_data", "s")),
            ],
        ),
        3 => (
            "success",
            vec![
                (-2.0, put("IN_PROGRESS")),
                (5.4, Set("teacher_session_data", "t")),
                (5.5, Set("student_session_data", "s")),
            ],
        ),
        4 => ("cancelled", vec![(-2.0, put("SCHEDULED")), (1.5, Delete)]),
        5 => ("external", vec![(-2.0, put("SCHEDULED")), (1.5, Set("status", "TERMINATED"))]),
        6 => ("keepalive-cap", vec![(-2.0, put("IN_PROGRESS"))]),
        7 => ("keepalive-leave", vec![(-2.0, put("IN_PROGRESS")), (5.5, Set("status", "SCHEDULED"))]),
        8 => ("moved", vec![(-2.0, put("SCHEDULED")), (-1.0, Set("meet_time", "+5"))]),
        9 => ("declared", vec![(-2.0, Put { status: "IN_PROGRESS", legacy: false, duration: Some("0.1") })]),
        10 => ("legacy", vec![(-2.0, Put { status: "SCHEDULED", legacy: true, duration: None })]),
        11 => ("missing-teacher", vec![(-2.0, put("SCHEDULED"))]),
        _ => ("late-seen", vec![(6.0, put("SCHEDULED"))]),
    }
}

async fn apply_op(aws: &Aws, p: &Plan, op: &Op) {
    match op {
        Op::Put { status, legacy, duration } => {
            let mut item = vec![
                ("id", V::S(p.id.clone())),
                ("status", V::S(status.to_string())),
                ("teacher_ec2_id", V::S(p.teacher.clone())),
                ("student_ec2_id", V::S(p.student.clone())),
            ];
            if *legacy {
                item.push(("created_at", V::S(p.start.to_rfc3339())));
            } else {
                item.push(("meet_time", V::S(p.start.to_rfc3339())));
                item.push(("created_at", V::S(p.start.saturating_add(Span::from_hours(-2)).to_rfc3339())));
            }
            if let Some(d) = duration {
                item.push(("duration_minutes", V::N(d.to_string())));
            }
            aws.put(&item).await;
        }
        Op::Set("meet_time", shift) => {
            let secs: i64 = shift.trim_start_matches('+').parse().unwrap();
            aws.set(&p.id, "meet_time", V::S(p.start.saturating_add(Span::from_secs(secs)).to_rfc3339())).await;
        }
        Op::Set(attr, v) => aws.set(&p.id, attr, V::S(v.to_string())).await,
        Op::Delete => aws.delete(&p.id).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_again_and_again_the_worker_loses_nothing_and_doubles_nothing() {
    let n = env_usize("SPINDOWN_CRASH_MEETINGS", 200);
    let min_kills = env_usize("SPINDOWN_CRASH_KILLS", 20);
    let seed = env_usize("SPINDOWN_CRASH_SEED", 7) as u64;
    let mut rng = StdRng::seed_from_u64(seed);
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let aws = Aws::new(&moto, "elephant-meetings").await;

    // Meetings and their instances.
    let mut plans = Vec::with_capacity(n);
    for i in 0..n {
        let (kind, ops) = plan_ops(i % 13);
        let id = format!("m-{i:05}");
        let teacher =
            if kind == "missing-teacher" { "i-0123456789abcdef0".to_string() } else { aws.instance(&id).await };
        let foreign_student = i % 26 == 0;
        let student = aws.instance(if foreign_student { "someone-else" } else { &id }).await;
        plans.push(Plan { id, kind, start: Timestamp::EPOCH, ops, teacher, student, foreign_student });
    }
    let mut unrelated = Vec::new();
    for i in 0..5 {
        unrelated.push(aws.instance(&format!("not-a-meeting-{i}")).await);
    }
    let t0 = Timestamp::now().saturating_add(Span::from_secs(4));
    let spread = 20.0;
    for (i, p) in plans.iter_mut().enumerate() {
        p.start = t0.saturating_add(Span::from_micros((spread * 1e6 * i as f64 / n as f64) as i64));
    }
    let mut timeline: Vec<(Timestamp, usize, usize)> = Vec::new();
    for (pi, p) in plans.iter().enumerate() {
        for (oi, (at, _)) in p.ops.iter().enumerate() {
            timeline.push((p.start.saturating_add(Span::from_micros((at * 1e6) as i64)), pi, oi));
        }
    }
    timeline.sort();
    let end_of_life = t0.saturating_add(Span::from_secs(spread as i64 + 18));

    // The writer: every row change at its time.
    let writer = {
        let (aws, plans, timeline) = (aws.clone(), plans.clone(), timeline.clone());
        tokio::spawn(async move {
            for (at, pi, oi) in timeline {
                common::process::sleep_until(at).await;
                apply_op(&aws, &plans[pi], &plans[pi].ops[oi].1).await;
            }
        })
    };

    // The killer: run, SIGKILL at a random moment, restart; again and again.
    let env = [("SPINDOWN_FAILPOINTS", FAILPOINTS)];
    let spawn = |n: usize| {
        worker_with(&moto, &db, "elephant-meetings", dir.path(), &format!("run-{n:03}.log"), POLICY, CONFIG, &env)
    };
    let mut runs = 0;
    let mut child = spawn(runs);
    let mut kills = 0;
    let mut self_aborts = 0;
    loop {
        let wait = Duration::from_millis(rng.gen_range(300..1600));
        let until = Instant::now() + wait;
        let mut exited = false;
        while Instant::now() < until {
            if child.try_wait().unwrap().is_some() {
                exited = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if exited {
            self_aborts += 1;
        } else {
            kill9(&mut child);
            kills += 1;
        }
        if Timestamp::now() > end_of_life && kills >= min_kills {
            break;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..600))).await;
        runs += 1;
        child = spawn(runs);
    }
    writer.await.unwrap();

    // A last, undisturbed run until every meeting has ended and every effect ran.
    runs += 1;
    let mut last = worker_with(&moto, &db, "elephant-meetings", dir.path(), "final.log", POLICY, CONFIG, &[]);
    let store = spindown::store::Store::open(&db, &Default::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let c = store.counts().await.unwrap();
        let pending = c.effects_by_status.iter().any(|(s, _)| s == "pending");
        if c.meetings_by_state == vec![("Terminated".to_string(), n as i64)] && !pending {
            break;
        }
        assert!(Instant::now() < deadline, "no convergence: {c:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    common::process::wait_started(&dir.path().join("final.log"));
    let status = sigterm(&mut last);
    let final_log = std::fs::read_to_string(dir.path().join("final.log")).unwrap_or_default();
    assert!(status.success(), "clean shutdown, not {status}:\n{final_log}");

    // Crash points actually hit, by name.
    let mut aborts: BTreeMap<String, usize> = BTreeMap::new();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "log") {
            for line in std::fs::read_to_string(&path).unwrap_or_default().lines() {
                if let Some(rest) = line.strip_prefix("failpoint ") {
                    *aborts.entry(rest.split(':').next().unwrap().to_string()).or_default() += 1;
                }
            }
        }
    }

    // 1. Outcomes equal replay of the same records, read back from the stream.
    let lines = aws.stream_lines().await;
    let file = dir.path().join("stream.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let policy = dir.path().join("policy.toml");
    let replayed = outcomes(&run_ok(spindown().arg("replay").arg(&file).arg("--policy").arg(&policy).arg("--json")));
    let mut mismatches = Vec::new();
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    for p in &plans {
        let m = store.meeting(&p.id.parse().unwrap()).await.unwrap().unwrap_or_else(|| panic!("{} missing", p.id));
        let ended = m.ended.unwrap_or_else(|| panic!("{} not terminated", p.id));
        *by_reason.entry(ended.reason.to_string()).or_default() += 1;
        let r = &replayed[&p.id];
        if r["state"] != "Terminated" || r["reason"] != ended.reason.as_str() {
            mismatches
                .push(format!("{} ({}): live {} / replay {} {}", p.id, p.kind, ended.reason, r["state"], r["reason"]));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {n} meetings differ from replay:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );

    // 2. Instances: terminated when they must be, untouched when they must run.
    let mut terminated = 0;
    for p in &plans {
        if p.kind != "missing-teacher" {
            assert_eq!(aws.state(&p.teacher).await, "terminated", "{} ({}) teacher", p.id, p.kind);
            terminated += 1;
        }
        let s = aws.state(&p.student).await;
        if p.foreign_student {
            assert_eq!(s, "running", "{}: an instance tagged for another meeting was touched", p.id);
        } else {
            assert_eq!(s, "terminated", "{} ({}) student", p.id, p.kind);
            terminated += 1;
        }
    }
    for u in &unrelated {
        assert_eq!(aws.state(u).await, "running", "an unrelated instance was touched");
    }

    // 3. Write-backs exactly as specified; 4. one termination per history.
    let mut termination_rows: HashMap<String, usize> = HashMap::new();
    for p in &plans {
        let m = store.meeting(&p.id.parse().unwrap()).await.unwrap().unwrap();
        let ended = m.ended.unwrap();
        let item = aws.item(&p.id).await;
        match ended.reason.as_str() {
            "CANCELLED" => assert_eq!(item, None, "{}: a deleted row was recreated", p.id),
            "EXTERNAL" => assert!(!item.unwrap().contains_key("termination_reason"), "{}: EXTERNAL written back", p.id),
            reason => {
                let item = item.unwrap();
                assert_eq!(item["status"], "TERMINATED", "{}", p.id);
                assert_eq!(item["termination_reason"], reason, "{}", p.id);
                assert_eq!(item["terminated_at"], ended.at.to_rfc3339(), "{}", p.id);
            }
        }
        let h = store.history(&p.id.parse().unwrap()).await.unwrap();
        let ends = h.iter().filter(|h| h.outcome == "terminated").count();
        termination_rows.insert(p.id.clone(), ends);
        assert_eq!(ends, 1, "{}: {ends} terminations in its history", p.id);
    }
    let effects = store.effects(None, None).await.unwrap();
    assert!(effects.iter().all(|e| e.status == "done"), "every effect done");
    let retried: i64 = effects.iter().map(|e| e.attempts - 1).sum();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");

    eprintln!(
        "crash loop: {n} meetings checked ({by_reason:?}); {kills} SIGKILLs + {self_aborts} crash-point aborts {aborts:?} \
         over {runs} worker runs; {} stream records replayed; {terminated} instances terminated, {} left running as required; \
         {} effects, {retried} re-attempts; integrity ok",
        lines.len(),
        unrelated.len() + plans.iter().filter(|p| p.foreign_student).count(),
        effects.len()
    );
    assert!(kills >= min_kills, "{kills} SIGKILLs");
}
