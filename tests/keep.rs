//! `spindown extend | hold | release` through the real binary, on a SQLite
//! file and on a real PostgreSQL server: every rule of the spec's "Operator
//! commands that keep a meeting alive", on the system clock.
//!
//! Time scale: the policy is the default one (a 15-minute safety net), but
//! the meetings are placed so their timers fall a few seconds from now: a
//! meeting that started 14 min 57 s ago, holds of 6–8 s. Nothing else is
//! shrunk (no lease or timeout is involved: every command is its own
//! process and fires what is due when it runs).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;
use spindown::time::{Span, Timestamp};

fn at(t: Timestamp) -> String {
    t.to_rfc3339()
}

fn secs(n: i64) -> Span {
    Span::from_micros(n * 1_000_000)
}

fn sp(db: &str, args: &[&str]) -> String {
    run_ok(spindown().arg("--db").arg(db).args(args))
}

/// A refused command: exit 2, nothing on stdout, one line on stderr.
fn refused(db: &str, args: &[&str]) -> String {
    let out = run(spindown().arg("--db").arg(db).args(args));
    assert_eq!(out.status.code(), Some(2), "{args:?} must be refused with exit 2: {out:?}");
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line: {err}");
    err
}

fn show(db: &str, id: &str) -> Value {
    serde_json::from_str(&sp(db, &["show", id, "--json"])).unwrap()
}

/// The meeting's pending timers by kind, from `timers --json` (with `held_until`).
fn timers(db: &str, id: &str) -> Vec<Value> {
    sp(db, &["timers", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|t| t["meeting_id"] == id)
        .collect()
}

fn due(db: &str, id: &str, kind: &str) -> Option<Timestamp> {
    timers(db, id).iter().find(|t| t["kind"] == kind).map(|t| Timestamp::parse_iso(t["due"].as_str().unwrap()).unwrap())
}

fn notes(m: &Value) -> String {
    m["history"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["notes"].as_array().unwrap().clone())
        .map(|n| n.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Let every command fire what is due: an empty ingest runs the engine once.
fn tick(db: &str, dir: &Path, policy: Option<&Path>) {
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let mut cmd = spindown();
    cmd.arg("--db").arg(db).arg("ingest").arg(&empty);
    if let Some(p) = policy {
        cmd.arg("--policy").arg(p);
    }
    run_ok(&mut cmd);
}

fn sleep_until(t: Timestamp) {
    let wait = t.since(Timestamp::now()).as_micros();
    if wait > 0 {
        std::thread::sleep(Duration::from_micros(wait as u64));
    }
}

fn keep_alive_rules(db: &str) {
    let dir = tempfile::tempdir().unwrap();
    // Whole seconds: the instants given on the command line say no more.
    let now = Timestamp::from_micros((Timestamp::now().as_micros() / 1_000_000 + 1) * 1_000_000);
    let i = "i-0123456789abcdef0";

    // --- hold: a safety net that falls during it looks again at its end; release fires it now.
    let start_a = now.saturating_add(Span::from_mins(-15)).saturating_add(secs(3));
    sp(db, &["schedule", "m-a", "--meet-time", &at(start_a), "--teacher-ec2", i]);
    let hold_end = now.saturating_add(secs(30));
    let r: Value = serde_json::from_str(&sp(db, &["hold", "m-a", "--until", &at(hold_end), "--json"])).unwrap();
    assert_eq!((r["outcome"].as_str(), r["state"].as_str()), (Some("updated"), Some("Scheduled")), "{r}");
    assert!(r["notes"][0].as_str().unwrap().starts_with("held until"), "{r}");
    assert_eq!(show(db, "m-a")["meeting"]["held_until"], at(hold_end).as_str(), "show --json names the hold's end");
    assert!(timers(db, "m-a").iter().all(|t| t["held_until"] == at(hold_end).as_str()), "timers --json: held");
    let text = sp(db, &["show", "m-a"]);
    assert!(text.contains(&format!("held         until {}", at(hold_end))), "{text}");
    let table = sp(db, &["timers"]);
    assert!(table.lines().any(|l| l.contains("m-a") && l.ends_with(&format!("until {}", at(hold_end)))), "{table}");

    // --- the cap falls during a hold: it waits for the hold's end (a 4 s lifetime).
    let short = dir.path().join("short.toml");
    std::fs::write(&short, "max_lifetime = \"4s\"\n").unwrap();
    let short_s = short.to_str().unwrap();
    sp(db, &["schedule", "m-d", "--meet-time", &at(now), "--teacher-ec2", i, "--policy", short_s]);
    let hold_d = now.saturating_add(secs(8));
    sp(db, &["hold", "m-d", "--until", &at(hold_d), "--policy", short_s]);

    // --- extend: later, never earlier; a later start change cannot pull it back.
    let start_b = now.saturating_add(Span::from_hours(1));
    sp(db, &["schedule", "m-b", "--meet-time", &at(start_b), "--teacher-ec2", i]);
    let cap = due(db, "m-b", "cap").unwrap();
    assert_eq!(cap, start_b.saturating_add(Span::from_hours(4)));
    let r: Value = serde_json::from_str(&sp(db, &["extend", "m-b", "--by", "1h", "--json"])).unwrap();
    let t = cap.saturating_add(Span::from_hours(1));
    assert_eq!(due(db, "m-b", "cap"), Some(t), "{r}");
    assert!(r["notes"][0].as_str().unwrap().starts_with("extended by 1h"), "{r}");
    assert_eq!(show(db, "m-b")["meeting"]["extended_until"], at(t).as_str());
    let err = refused(db, &["extend", "m-b", "--until", &at(cap)]);
    assert!(err.contains("never shortens"), "{err}");
    let err = refused(db, &["extend", "m-b", "--until", &at(now.saturating_add(Span::from_mins(-5)))]);
    assert!(err.contains("not after now"), "{err}");
    let err = refused(db, &["extend", "m-b", "--until", &at(t.saturating_add(Span::from_hours(7 * 24 + 1)))]);
    assert!(err.contains("more than 7 days"), "{err}");
    assert_eq!(due(db, "m-b", "cap"), Some(t), "a refusal changes nothing");
    sp(db, &["schedule", "m-b", "--meet-time", &at(start_b.saturating_add(Span::from_mins(-30))), "--teacher-ec2", i]);
    assert_eq!(due(db, "m-b", "cap"), Some(t), "an earlier start does not pull the cap before T");
    let later = start_b.saturating_add(Span::from_hours(2));
    sp(db, &["schedule", "m-b", "--meet-time", &at(later), "--teacher-ec2", i]);
    assert_eq!(due(db, "m-b", "cap"), Some(later.saturating_add(Span::from_hours(4))), "a later start moves it later");
    let until = at(now.saturating_add(Span::from_hours(12)));
    let both = run(spindown().arg("--db").arg(db).args(["extend", "m-b", "--until", &until, "--by", "1h"]));
    assert_eq!(both.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&both.stderr).contains("--by"), "{both:?}");

    // --- a REMOVE still ends a held meeting.
    sp(db, &["schedule", "m-c", "--meet-time", &at(start_b), "--teacher-ec2", i]);
    sp(db, &["hold", "m-c", "--until", &at(now.saturating_add(Span::from_hours(2)))]);
    let remove = format!(
        r#"{{"eventID":"rm-1","eventName":"REMOVE","dynamodb":{{"ApproximateCreationDateTime":{},"Keys":{{"id":{{"S":"m-c"}}}},"OldImage":{{"id":{{"S":"m-c"}},"meet_time":{{"S":"{}"}}}}}}}}"#,
        Timestamp::now().as_micros() / 1_000_000,
        at(start_b)
    );
    let file = dir.path().join("remove.jsonl");
    std::fs::write(&file, remove + "\n").unwrap();
    run_ok(spindown().arg("--db").arg(db).arg("ingest").arg(&file));
    let c = show(db, "m-c");
    assert_eq!(c["meeting"]["reason"], "CANCELLED", "{c}");
    assert!(c["meeting"].get("held_until").is_none(), "an ended meeting is not held");

    // --- refusals, each one line and exit 2.
    let err = refused(db, &["hold", "m-b", "--until", &at(now.saturating_add(Span::from_mins(-1)))]);
    assert!(err.contains("not after now"), "{err}");
    let err = refused(db, &["hold", "m-b", "--until", &at(now.saturating_add(Span::from_hours(25)))]);
    assert!(err.contains("more than 24 h"), "{err}");
    let err = refused(db, &["release", "m-b"]);
    assert!(err.contains("m-b is not held"), "{err}");
    for args in [vec!["extend", "m-c", "--by", "1h"], vec!["hold", "m-c", "--until", &until], vec!["release", "m-c"]] {
        let err = refused(db, &args);
        assert!(err.contains("m-c was terminated at") && err.contains("CANCELLED"), "{args:?}: {err}");
    }
    assert!(refused(db, &["release", "m-nope"]).contains("no meeting m-nope"));

    // /metrics counts the held meetings (m-a and m-d; m-c ended): from the hold index.
    let port = common::web::free_port();
    let mut console = std::process::Command::new(env!("CARGO_BIN_EXE_spindown"))
        .arg("--db")
        .arg(db)
        .args(["console", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("SPINDOWN_CONSOLE_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        if let Ok((200, body)) = common::web::get(port, "/metrics") {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "the console did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = console.kill();
    let _ = console.wait();
    let held =
        metrics.lines().find(|l| l.starts_with("spindown_meetings_held ")).unwrap_or_else(|| panic!("{metrics}"));
    assert_eq!(held, "spindown_meetings_held 2", "{metrics}");

    // The safety net of m-a (due now + 3 s) and the cap of m-d (now + 4 s) fall during their holds.
    sleep_until(now.saturating_add(secs(5)));
    tick(db, dir.path(), Some(&short));
    let a = show(db, "m-a");
    assert_eq!(a["meeting"]["state"], "Scheduled", "not ended during the hold: {a}");
    assert!(notes(&a).contains("fell during the hold"), "{}", notes(&a));
    assert_eq!(due(db, "m-a", "recheck"), Some(hold_end), "a re-check at the hold's end");
    assert_eq!(due(db, "m-a", "safety_net"), None);
    assert_eq!(due(db, "m-d", "cap"), Some(hold_d), "the cap waits for the hold's end");
    assert_eq!(show(db, "m-d")["meeting"]["state"], "Scheduled");

    // Release: what the hold moved fires right after the command.
    let r: Value = serde_json::from_str(&sp(db, &["release", "m-a", "--json"])).unwrap();
    assert!(r["notes"][0].as_str().unwrap().contains("re-armed now: recheck"), "{r}");
    let a = show(db, "m-a");
    assert_eq!(a["meeting"]["reason"], "NO_SHOW_TIMEOUT", "the re-check judged it at once: {a}");
    let released = Timestamp::parse_iso(a["meeting"]["terminated_at"].as_str().unwrap()).unwrap();
    assert!(released < hold_end, "ended at the release, not at the hold's end");
    assert!(refused(db, &["release", "m-a"]).contains("was terminated at"));

    // m-d's cap fires at the hold's end.
    sleep_until(hold_d.saturating_add(secs(1)));
    tick(db, dir.path(), Some(&short));
    let d = show(db, "m-d");
    assert_eq!(d["meeting"]["reason"], "MAX_LIFETIME", "{d}");
    let ended = Timestamp::parse_iso(d["meeting"]["terminated_at"].as_str().unwrap()).unwrap();
    assert!(ended >= hold_d, "not before the hold's end: {ended} < {hold_d}");
}

#[test]
fn extend_hold_and_release_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keep.db");
    keep_alive_rules(db.to_str().unwrap());
}

#[test]
fn extend_hold_and_release_on_postgres() {
    keep_alive_rules(&common::postgres::database("keep"));
}
