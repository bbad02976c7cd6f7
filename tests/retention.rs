//! Retention: `spindown prune` (with an archive) and the worker's
//! housekeeping job delete terminated meetings past their retention — row,
//! history, outbox rows — and old log rows, on SQLite and PostgreSQL, and
//! nothing else.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The fixture day replayed into `db` (a SQLite path or a PostgreSQL URL).
fn replayed_day(db: &str) {
    run_ok(spindown().arg("--db").arg(db).arg("replay").arg(fixture("day.jsonl")).arg("--json"));
}

fn status(db: &str) -> Value {
    serde_json::from_str(&run_ok(spindown().arg("--db").arg(db).args(["status", "--json"]))).unwrap()
}

fn count(status: &Value, state: &str) -> i64 {
    status["counts"]["meetings_by_state"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == state)
        .map_or(0, |p| p[1].as_i64().unwrap())
}

/// `id → show --json` of every meeting.
fn shows(db: &str) -> BTreeMap<String, Value> {
    let list = run_ok(spindown().arg("--db").arg(db).args(["list", "--json"]));
    list.lines()
        .map(|l| {
            let id = serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_string();
            let show = run_ok(spindown().arg("--db").arg(db).args(["show", &id, "--json"]));
            (id, serde_json::from_str(&show).unwrap())
        })
        .collect()
}

#[test]
fn prune_with_an_archive_deletes_exactly_the_ended_meetings_it_archived() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("day.db");
    let db = db.to_str().unwrap();
    replayed_day(db);
    let before = status(db);
    let all = shows(db);
    let cut = "2026-11-26T14:00:00Z";
    let cut_at = spindown::time::Timestamp::parse_iso(cut).unwrap();
    let want_pruned: BTreeSet<String> = all
        .iter()
        .filter(|(_, s)| {
            s["meeting"]["terminated_at"]
                .as_str()
                .is_some_and(|t| spindown::time::Timestamp::parse_iso(t).unwrap() < cut_at)
        })
        .map(|(id, _)| id.clone())
        .collect();
    assert!(want_pruned.len() > 50 && want_pruned.len() < all.len(), "a cut-off inside the day: {}", want_pruned.len());

    // A dry run counts, deletes nothing.
    let dry: Value = serde_json::from_str(&run_ok(spindown().arg("--db").arg(db).args([
        "prune",
        "--before",
        cut,
        "--dry-run",
        "--json",
    ])))
    .unwrap();
    assert_eq!(dry["meetings"], want_pruned.len() as u64);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(status(db)["counts"], before["counts"], "a dry run changes nothing");

    let archive = dir.path().join("pruned.jsonl");
    let out: Value = serde_json::from_str(&run_ok(
        spindown().arg("--db").arg(db).args(["prune", "--before", cut, "--json", "--archive"]).arg(&archive),
    ))
    .unwrap();
    assert_eq!(out["meetings"], want_pruned.len() as u64, "{out}");
    assert_eq!(out["archived"], want_pruned.len() as u64);
    // The archive holds exactly the pruned meetings, each as `show --json` had it.
    let archived: BTreeMap<String, Value> = std::fs::read_to_string(&archive)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["meeting"]["id"].as_str().unwrap().to_string(), v)
        })
        .collect();
    assert_eq!(archived.keys().cloned().collect::<BTreeSet<_>>(), want_pruned);
    for (id, a) in &archived {
        assert_eq!(a, &all[id], "{id}: the archive is its whole story");
        assert!(!a["history"].as_array().unwrap().is_empty());
    }
    // The rest is untouched; the counts add up.
    let after = shows(db);
    for (id, s) in &after {
        assert!(!want_pruned.contains(id));
        assert_eq!(s, &all[id], "{id} untouched");
    }
    assert_eq!(after.len() + want_pruned.len(), all.len());
    let st = status(db);
    assert_eq!(st["counts"]["meetings"].as_i64().unwrap(), (all.len() - want_pruned.len()) as i64);
    assert_eq!(count(&st, "Terminated") + want_pruned.len() as i64, count(&before, "Terminated"));
    let outbox = |s: &Value| {
        s["counts"]["effects_by_status"].as_array().unwrap().iter().map(|p| p[1].as_i64().unwrap()).sum::<i64>()
    };
    assert_eq!(outbox(&st) + want_pruned.len() as i64, outbox(&before), "one outbox row per pruned meeting went");
    // `show` of a pruned meeting says so.
    let gone = want_pruned.iter().next().unwrap();
    let res = run(spindown().arg("--db").arg(db).args(["show", gone]));
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("pruned") && err.contains("2026-11-26T14:00:00Z"), "{err}");
    // A second prune deletes nothing.
    let again: Value =
        serde_json::from_str(&run_ok(spindown().arg("--db").arg(db).args(["prune", "--before", cut, "--json"])))
            .unwrap();
    assert_eq!(again["meetings"], 0);
    assert_eq!(again["history"], 0);
}

/// The worker's housekeeping job applies retention on its own, in batches:
/// a replayed day (every meeting ended more than 7 days ago) is deleted with
/// its dead letters, on SQLite and on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_housekeeping_job_applies_retention_on_both_backends() {
    use common::aws::Aws;
    use common::moto::Moto;
    use common::process::{sigterm, wait_started, worker_with, CONFIG, POLICY};
    let moto = Moto::start();
    let _aws = Aws::new(&moto, "elephant-meetings").await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("hk.db").to_str().unwrap().to_string();
    let pg = common::postgres::database("housekeeping");
    let config = format!(
        "{CONFIG}[housekeeping]\nschedule = \"*/1 * * * * *\"\n[retention]\nmeetings = \"7d\"\ndead_letters = \"7d\"\nbatch = 50\n"
    );
    for (name, db) in [("sqlite", &sqlite), ("postgres", &pg)] {
        replayed_day(db);
        let st = status(db);
        let meetings = st["counts"]["meetings"].as_i64().unwrap();
        assert!(meetings > 200 && st["counts"]["dead_letters"].as_i64().unwrap() > 0);
        let log = format!("{name}.log");
        let mut w =
            worker_with(&moto, Path::new(db.as_str()), "elephant-meetings", dir.path(), &log, POLICY, &config, &[]);
        wait_started(&dir.path().join(&log));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let st = status(db);
            let c = &st["counts"];
            if c["meetings"] == 0 && c["dead_letters"] == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{name}: retention did not finish: {c}");
            std::thread::sleep(Duration::from_millis(500));
        }
        assert!(sigterm(&mut w).success());
        let text = std::fs::read_to_string(dir.path().join(&log)).unwrap();
        assert!(text.contains("retention: deleted what is no longer kept"), "{name}: {text}");
        let res = run(spindown().arg("--db").arg(db.as_str()).args(["show", "m-0001"]));
        assert!(String::from_utf8_lossy(&res.stderr).contains("pruned"), "{name}");
        eprintln!("housekeeping on {name}: {meetings} meetings of a replayed day deleted by the job");
    }
}
