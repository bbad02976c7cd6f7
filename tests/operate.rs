//! Operating a worker: `spindown run --listen` against moto — `/metrics` read
//! with a real Prometheus text-format parser and checked against what
//! happened (and by `promtool`), `/readyz` turning 503 when the timer loop
//! stops and back, and the shipped alerting rules checked by `promtool`.

mod common;

use spindown::inspect::MeetingStore;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue as V;
use common::aws::Aws;
use common::moto::Moto;
use common::process::{sigterm, worker_with, POLICY};
use common::web::{free_port, get, which};
use spindown::meeting::history::Cause;
use spindown::meeting::State;
use spindown::store::EffectStatus;
use spindown::time::{Span, Timestamp};

fn s(v: &str) -> V {
    V::S(v.to_string())
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The scrape, parsed: every sample as (name, labels) → value.
struct Scrape {
    samples: Vec<prometheus_parse::Sample>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text format");
        Scrape { samples: scrape.samples }
    }

    /// The value of `name` with exactly these labels (0 when absent, as Prometheus reads a missing counter).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&prometheus_parse::Sample> = self
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .collect();
        match found.first().map(|s| &s.value) {
            None => 0.0,
            Some(prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v)) => *v,
            Some(prometheus_parse::Value::Untyped(v)) => *v,
            Some(other) => panic!("{name}: not a single number: {other:?}"),
        }
    }

    /// A histogram's total count, over every label set matching `labels`.
    fn histogram_count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.iter().map(|b| b.count).fold(0.0, f64::max) as u64
                }
                other => panic!("{name}: not a histogram: {other:?}"),
            })
            .sum()
    }

    fn sum_by(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.metric == name) {
            if let (Some(l), prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v)) =
                (s.labels.get(label), &s.value)
            {
                *out.entry(l.to_string()).or_default() += v;
            }
        }
        out
    }
}

/// promtool, or a failure that says how to get it.
fn need_promtool() -> std::path::PathBuf {
    which("promtool").expect(
        "the promtool checks cannot run here: no promtool on PATH — run scripts/test-deps (or apt-get install prometheus)",
    )
}

#[test]
fn the_shipped_alerting_rules_pass_promtool() {
    let promtool = need_promtool();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/alerts.yml");
    let out = std::process::Command::new(promtool).args(["check", "rules"]).arg(&rules).output().unwrap();
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("SUCCESS: 8 rules found"), "{said}");
}

/// The tests' worker settings, with the listener (its port filled in per test).
fn config(listen: &str, timer_stall: &str) -> String {
    format!(
        "{}[http]\nlisten = \"{listen}\"\ntimer_stall = \"{timer_stall}\"\nreader_stall = \"10s\"\n",
        common::process::CONFIG
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_tell_what_happened_and_readiness_follows_the_timer_loop() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("worker.db");
    let aws = Aws::new(&moto, "elephant-meetings").await;
    let ids = ["m-noshow", "m-partial", "m-success", "m-cancel"];
    let mut inst = BTreeMap::new();
    for id in ids {
        inst.insert(id, (aws.instance(id).await, aws.instance(id).await));
    }
    let t0 = Timestamp::now().saturating_add(Span::from_secs(1));
    for id in ids {
        let (teacher, student) = &inst[id];
        aws.put(&[
            ("id", s(id)),
            ("meet_time", s(&t0.to_rfc3339())),
            ("status", s(if id == "m-success" { "IN_PROGRESS" } else { "SCHEDULED" })),
            ("teacher_ec2_id", s(teacher)),
            ("student_ec2_id", s(student)),
        ])
        .await;
    }
    // A row the engine cannot read: a dead letter, by reason.
    aws.put(&[("id", s("m-bad")), ("meet_time", s("next tuesday")), ("status", s("SCHEDULED"))]).await;

    let port = free_port();
    let hold = dir.path().join("hold-timers");
    let listen = format!("127.0.0.1:{port}");
    let hold_env = format!("timers={}", hold.display());
    let config = config(&listen, "1500ms");
    let mut w = worker_with(
        &moto,
        &db,
        "elephant-meetings",
        dir.path(),
        "worker.log",
        POLICY,
        &config,
        &[("SPINDOWN_HOLD", &hold_env), ("SPINDOWN_LOG_FORMAT", "json")],
    );
    wait_for("the listener", Duration::from_secs(30), || get(port, "/livez").is_ok_and(|(c, _)| c == 200));
    wait_for("ready", Duration::from_secs(30), || get(port, "/readyz").is_ok_and(|(c, _)| c == 200));

    aws.set("m-partial", "teacher_session_data", s("blob")).await;
    aws.delete("m-cancel").await;
    tokio::time::sleep(Duration::from_secs(5)).await; // past the 4 s safety nets and the 4 s success minimum
    aws.set("m-success", "teacher_session_data", s("t")).await;
    aws.set("m-success", "student_session_data", s("s")).await;

    let store = spindown::store::sqlite::SqliteStore::open(&db, &Default::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = store.counts().await.unwrap();
        if c.in_state(State::Terminated) == 4 && c.effects(EffectStatus::Pending) == 0 && c.dead_letters == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the meetings did not end: {c:?}\n{}",
            std::fs::read_to_string(dir.path().join("worker.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // What happened, from the database: timer fires and reasons.
    let mut fired = 0u64;
    for id in ids {
        for h in store.history(&id.parse().unwrap()).await.unwrap() {
            if matches!(h.entry.cause, Cause::Timer { .. }) {
                fired += 1;
            }
        }
    }
    assert!(fired >= 2, "the safety nets fired ({fired})");

    let (code, text) = get(port, "/metrics").unwrap();
    assert_eq!(code, 200);
    let m = Scrape::parse(&text);
    assert_eq!(m.value("spindown_meetings", &[("state", "Terminated")]), 4.0);
    for state in ["Scheduled", "InProgress", "Partial", "Complete"] {
        assert_eq!(m.value("spindown_meetings", &[("state", state)]), 0.0, "{state}");
    }
    let reasons = m.sum_by("spindown_terminations_total", "reason");
    let want: BTreeMap<String, f64> =
        [("CANCELLED", 1.0), ("NO_SHOW_TIMEOUT", 1.0), ("PARTIAL_NO_SHOW_TIMEOUT", 1.0), ("SUCCESS", 1.0)]
            .into_iter()
            .map(|(r, n)| (r.to_string(), n))
            .collect();
    assert_eq!(reasons, want, "terminations by reason");
    assert_eq!(m.value("spindown_effects_total", &[("kind", "terminate"), ("outcome", "done")]), 4.0);
    assert_eq!(
        m.value("spindown_effects_total", &[("kind", "write_back"), ("outcome", "done")]),
        3.0,
        "no write-back for a deleted row"
    );
    assert_eq!(m.value("spindown_outbox", &[("status", "done")]), 4.0);
    assert_eq!(m.value("spindown_outbox", &[("status", "pending")]), 0.0);
    assert_eq!(m.histogram_count("spindown_timer_lateness_seconds", &[]), fired, "one lateness sample per timer fired");
    assert_eq!(m.histogram_count("spindown_effect_duration_seconds", &[("kind", "terminate")]), 4);
    assert_eq!(m.value("spindown_dead_letters_total", &[("reason", "bad_time")]), 1.0);
    assert_eq!(m.value("spindown_records_total", &[("outcome", "dead_letter")]), 1.0);
    assert!(
        m.value("spindown_records_total", &[("outcome", "applied")]) >= 8.0,
        "4 inserts, 3 updates, 1 delete at least"
    );
    assert_eq!(m.value("spindown_timers_pending", &[("kind", "cap")]), 0.0);
    assert_eq!(m.value("spindown_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    let tick = m.value("spindown_timer_loop_last_tick_timestamp_seconds", &[]);
    assert!((Timestamp::now().as_micros() as f64 / 1e6 - tick).abs() < 5.0, "the timer loop ticked just now ({tick})");
    assert!(!text.contains("meeting_id") && !text.contains("m-noshow") && !text.contains("i-"), "no ids in labels");
    use std::io::Write;
    let promtool = need_promtool();
    let mut p = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Readiness follows the timer loop: stopped → 503 with the reason, running again → 200.
    std::fs::write(&hold, "").unwrap();
    wait_for("503 while the timer loop is stopped", Duration::from_secs(20), || {
        get(port, "/readyz").is_ok_and(|(c, body)| c == 503 && body.contains("timer loop: last ran"))
    });
    assert_eq!(get(port, "/livez").unwrap().0, 200, "alive all the same");
    std::fs::remove_file(&hold).unwrap();
    wait_for("200 once the timer loop runs again", Duration::from_secs(20), || {
        get(port, "/readyz").is_ok_and(|(c, _)| c == 200)
    });

    assert!(sigterm(&mut w).success());

    // `--log-format json`: one object per line; a span per applied record,
    // timer fire and effect, carrying the meeting (and the record's eventID).
    let log = std::fs::read_to_string(dir.path().join("worker.log")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line that is not JSON: {l:?}: {e}")))
        .collect();
    let spans = |name: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["span"]["name"] == name && l["fields"]["message"] == "close")
            .map(|l| &l["span"])
            .collect()
    };
    let records = spans("record");
    assert!(
        records.iter().any(|s| s["meeting_id"] == "m-partial" && s["event_id"].as_str().is_some_and(|e| !e.is_empty())),
        "a record span with meeting_id and event_id: {records:?}"
    );
    assert!(spans("timer").iter().any(|s| s["meeting_id"] == "m-noshow" && s["kind"] == "safety_net"), "a timer span");
    assert!(
        spans("effect").iter().any(|s| s["meeting_id"] == "m-cancel" && s["kind"] == "terminate"),
        "an effect span"
    );
}

/// Every process of the test's PostgreSQL server: the postmaster and its children.
fn postgres_processes() -> Vec<u32> {
    let data = &common::postgres::server().data;
    let pid_file = std::fs::read_to_string(data.join("postmaster.pid")).expect("the server's postmaster.pid");
    let postmaster: u32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
    let mut pids = vec![postmaster];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid …`: comm may hold spaces, so read after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(postmaster) {
            pids.push(pid);
        }
    }
    pids
}

fn signal_all(pids: &[u32], signal: &str) {
    for pid in pids {
        let _ = std::process::Command::new("kill").args([signal, &pid.to_string()]).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_the_store_does_not_answer_and_recovers() {
    assert!(
        std::env::var_os("SPINDOWN_PG_URL").is_none(),
        "this test pauses every process of the PostgreSQL server: it needs the server the tests start, \
         not the one SPINDOWN_PG_URL names (unset it to run this test)"
    );
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let url = common::postgres::database("operate_readyz");
    let _aws = Aws::new(&moto, "elephant-meetings").await;
    let port = free_port();
    let config = config(&format!("127.0.0.1:{port}"), "30s");
    let mut w =
        worker_with(&moto, Path::new(&url), "elephant-meetings", dir.path(), "worker.log", POLICY, &config, &[]);
    wait_for("ready", Duration::from_secs(30), || get(port, "/readyz").is_ok_and(|(c, _)| c == 200));

    // The database stops answering (every server process paused).
    let pids = postgres_processes();
    signal_all(&pids, "-STOP");
    let mut said = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok((503, body)) = get(port, "/readyz") {
            said = body;
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(port, "/livez").map(|(c, _)| c).ok(), Some(200), "alive all the same");
    signal_all(&pids, "-CONT");
    assert!(said.contains("store: no answer within 2s"), "503 with the reason while the store is paused: {said:?}");
    wait_for("200 once the store answers again", Duration::from_secs(30), || {
        get(port, "/readyz").is_ok_and(|(c, _)| c == 200)
    });
    assert!(sigterm(&mut w).success());
}

#[test]
fn the_readme_documents_every_metric() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for (name, kind, _) in spindown::telemetry::METRICS {
        assert!(readme.contains(&format!("| `{name}` | {kind} |")), "README's metrics table lacks {name}");
    }
}
