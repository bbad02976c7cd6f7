//! The command line: every command on a real database file, and the same
//! commands on a real PostgreSQL server (`--db postgres://…`).

mod common;

use common::*;

#[test]
fn inspect_a_replayed_day() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("day.db");
    inspect(db.to_str().unwrap());
}

#[test]
fn inspect_a_replayed_day_on_postgres() {
    let url = common::postgres::database("cli_inspect");
    inspect(&url);
    // A replay into PostgreSQL wants an empty database.
    let again = run(spindown().args(["--db", &url, "replay"]).arg(fixture("day.jsonl")));
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already holds meetings") && !err.contains("PASS"), "{err}");
}

/// Replay the fixture day into `db`, then read it back with every read command.
fn inspect(db: &str) {
    run_ok(spindown().args(["--db", db, "replay"]).arg(fixture("day.jsonl")).arg("--json"));

    // show: facts, timers, effects with status, history oldest first.
    let show = run_ok(spindown().args(["--db", db, "show", "m-00004"]));
    assert!(show.contains("Terminated (SUCCESS at 2026-11-26T09:56:47Z)"), "{show}");
    assert!(show.contains("pending timers") && show.contains("effects") && show.contains("history (oldest first)"));
    assert!(show.contains("would terminate i-7a767c76fb008f86b (dry run)"), "{show}");
    let first = show.find("record INSERT").expect("the INSERT is in the history");
    let term = show.find("terminated SUCCESS").expect("the termination is in the history");
    assert!(first < term, "oldest first");

    let json: serde_json::Value =
        serde_json::from_str(&run_ok(spindown().args(["--db", db, "show", "m-00004", "--json"]))).unwrap();
    assert_eq!(json["meeting"]["reason"], "SUCCESS");
    let effects = json["effects"].as_array().unwrap();
    assert_eq!(effects.len(), 1, "one outbox row for the termination");
    assert_eq!((effects[0]["status"].as_str(), effects[0]["parts"].as_array().unwrap().len()), (Some("done"), 2));
    assert!(json["history"].as_array().unwrap().len() >= 2);

    // list with filters.
    let list = run_ok(spindown().args(["--db", db, "list", "--reason", "EXTERNAL", "--json"]));
    assert_eq!(list.lines().count(), 10);
    assert!(list.lines().all(|l| l.contains("\"reason\":\"EXTERNAL\"")));
    let table = run_ok(spindown().args(["--db", db, "list", "--state", "Terminated", "--limit", "3"]));
    assert_eq!(table.lines().count(), 4, "header + 3: {table}");

    // list by when meetings start: an index range, in start order, both ends
    // included, with the other filters; the same meetings a scan finds.
    let (from, until) = ("2026-11-26T09:00:00Z", "2026-11-26T10:00:00Z");
    let by_start =
        run_ok(spindown().args(["--db", db, "list", "--json", "--starts-from", from, "--starts-until", until]));
    let starts: Vec<String> = by_start
        .lines()
        .map(|l| {
            let v = serde_json::from_str::<serde_json::Value>(l).unwrap();
            v["meet_time"].as_str().or(v["created_at"].as_str()).unwrap().to_string()
        })
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "in start order: {starts:?}");
    let all = run_ok(spindown().args(["--db", db, "list", "--json"]));
    let mut scanned: Vec<&str> = all
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let start = v["meet_time"].as_str().or(v["created_at"].as_str());
            start.is_some_and(|s| s >= from && s <= until)
        })
        .collect();
    let mut indexed: Vec<&str> = by_start.lines().collect();
    scanned.sort();
    indexed.sort();
    assert!(indexed.len() > 5, "{} meetings start between {from} and {until}", indexed.len());
    assert_eq!(indexed, scanned, "the index finds what a scan finds");
    let limited =
        run_ok(spindown().args(["--db", db, "list", "--starts-from", from, "--state", "Terminated", "--limit", "2"]));
    assert_eq!(limited.lines().count(), 3, "header + 2: {limited}");

    // dead letters, with the reason and the raw line.
    let dead = run_ok(spindown().args(["--db", db, "dead-letters", "--json"]));
    assert_eq!(dead.lines().count(), 4);
    assert!(dead.contains("{not json"), "{dead}");
    assert!(dead.contains("UPSERT"), "{dead}");

    // status and timers.
    let status = run_ok(spindown().args(["--db", db, "status"]));
    assert!(status.contains("meetings      240"), "{status}");
    let timers = run_ok(spindown().args(["--db", db, "timers"]));
    assert_eq!(timers.lines().count(), 1, "only the header: replay ran every timer: {timers}");
}

#[test]
fn ingest_then_terminate_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    ingest_then_terminate(&dir, db.to_str().unwrap());
}

#[test]
fn ingest_then_terminate_by_hand_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    ingest_then_terminate(&dir, &common::postgres::database("cli_ingest"));
}

fn ingest_then_terminate(dir: &tempfile::TempDir, db: &str) {
    // A meeting far in the future, so the system clock leaves it alone.
    let rec = r#"{"eventID":"x1","eventName":"INSERT","dynamodb":{"Keys":{"id":{"S":"m-future"}},"NewImage":{"meet_time":{"S":"2099-01-01T10:00:00Z"},"teacher_ec2_id":{"S":"i-0123456789abcdef0"}}}}"#;
    let file = dir.path().join("r.jsonl");
    std::fs::write(&file, format!("{rec}\nnot json\n")).unwrap();
    let out = run_ok(spindown().args(["--db", db, "ingest"]).arg(&file));
    assert!(out.contains("1 records applied") && out.contains("1 dead letters"), "{out}");
    let timers = run_ok(spindown().args(["--db", db, "timers", "--json"]));
    assert_eq!(timers.lines().count(), 2, "safety net and cap: {timers}");
    assert!(timers.contains("2099-01-01T10:15:00Z"));

    let out = run_ok(spindown().args(["--db", db, "terminate", "m-future"]));
    assert!(out.contains("Terminated"), "{out}");
    assert!(out.contains("queued terminate i-0123456789abcdef0"), "{out}");
    let show = run_ok(spindown().args(["--db", db, "show", "m-future"]));
    assert!(show.contains("MANUAL"), "{show}");
    assert!(show.contains("terminate  pending"), "effects wait for the worker: {show}");
    assert_eq!(run_ok(spindown().args(["--db", db, "timers", "--json"])).lines().count(), 0);

    // Again: nothing to do, said plainly.
    let out = run_ok(spindown().args(["--db", db, "terminate", "m-future"]));
    assert!(out.contains("already terminated"), "{out}");
    // Unknown meetings are errors.
    let res = run(spindown().args(["--db", db, "terminate", "m-nope"]));
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("no meeting m-nope"));
}

#[test]
fn read_commands_do_not_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missing.db");
    let res = run(spindown().arg("--db").arg(&db).args(["show", "m-1"]));
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("no database at"));
    assert!(!db.exists());
}

#[test]
#[cfg(feature = "mimalloc")]
fn freed_memory_goes_back_after_10_ms_unless_the_environment_says_otherwise() {
    // The binary sets mimalloc's purge delay through its option number; the
    // environment's value read back through the same number shows it is the
    // purge delay (and that the environment wins).
    let dir = tempfile::tempdir().unwrap();
    let day = fixture("edge/01_no_show.jsonl");
    let delay = |env: Option<&str>| {
        let mut cmd = spindown();
        cmd.arg("-vv").arg("--db").arg(dir.path().join(format!("{env:?}.db"))).arg("replay").arg(&day);
        if let Some(v) = env {
            cmd.env("MIMALLOC_PURGE_DELAY", v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = err.lines().find(|l| l.contains("allocator")).unwrap_or_else(|| panic!("no allocator line:\n{err}"));
        line.split("purge_delay_ms=").nth(1).unwrap().split_whitespace().next().unwrap().to_string()
    };
    assert_eq!(delay(None), "10");
    assert_eq!(delay(Some("7")), "7");
    assert_eq!(delay(Some("1000")), "1000");
}

#[test]
fn every_command_has_help() {
    for cmd in ["replay", "ingest", "show", "list", "timers", "dead-letters", "terminate", "status"] {
        let out = run_ok(spindown().args([cmd, "--help"]));
        assert!(out.contains("Usage: spindown"), "{cmd}: {out}");
        assert!(out.contains("--db"), "{cmd} documents --db");
    }
    let out = run_ok(spindown().arg("--help"));
    assert!(out.contains("replay") && out.contains("show"));
}

#[test]
fn bad_arguments_are_clear() {
    let res = run(spindown().args(["list", "--state", "Sleeping"]));
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("Scheduled"), "lists the valid states");
    let res = run(spindown().args(["replay", "/no/such/file.jsonl"]));
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("/no/such/file.jsonl"));
    let res = run(spindown().arg("replay").arg(fixture("day.jsonl")).args(["--until", "tomorrow"]));
    assert!(String::from_utf8_lossy(&res.stderr).contains("RFC 3339"));
}

#[test]
fn an_unreachable_postgres_is_one_clear_line_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://me:s3cret@127.0.0.1:{port}/nothing");
    let started = std::time::Instant::now();
    let out = run(spindown().args(["--db", &url, "status"]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("postgres://me:***@127.0.0.1"), "{err}");
    assert!(!err.contains("s3cret"), "the password is in the message: {err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
}

#[test]
fn migrate_a_sqlite_database_into_postgres_and_refuse_a_full_target() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("day.db");
    let db = db.to_str().unwrap();
    run_ok(spindown().args(["--db", db, "replay"]).arg(fixture("day.jsonl")));
    // A live meeting with pending timers and an effect waiting for the worker.
    let rec = r#"{"eventID":"x1","eventName":"INSERT","dynamodb":{"Keys":{"id":{"S":"m-future"}},"NewImage":{"meet_time":{"S":"2099-01-01T10:00:00Z"},"teacher_ec2_id":{"S":"i-0123456789abcdef0"}}}}"#;
    let file = dir.path().join("r.jsonl");
    let rec2 = rec.replace("m-future", "m-ended").replace("x1", "x2");
    std::fs::write(&file, format!("{rec}\n{rec2}\n")).unwrap();
    run_ok(spindown().args(["--db", db, "ingest"]).arg(&file));
    run_ok(spindown().args(["--db", db, "terminate", "m-ended"]));
    let url = common::postgres::database("cli_migrate");
    let out = run_ok(spindown().args(["migrate", "--from", db, "--to", &url, "--json"]));
    let copied: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((copied["meetings"].as_i64(), copied["effects"].as_i64()), (Some(242), Some(241)), "{copied}");
    assert!(copied["timers"].as_i64().unwrap() >= 2, "m-future's timers came along: {copied}");
    // Every read command tells the same story on both.
    for args in [
        vec!["show", "m-00004", "--json"],
        vec!["show", "m-future", "--json"],
        vec!["show", "m-ended", "--json"],
        vec!["list", "--json"],
        vec!["timers", "--json"],
        vec!["dead-letters", "--json"],
    ] {
        // (History `seq` numbers are the database's own: only their order is kept.)
        let read = |db: &str| -> Vec<serde_json::Value> {
            let text = run_ok(spindown().args(["--db", db]).args(&args));
            let mut docs: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&text)
                .into_iter::<serde_json::Value>()
                .map(|v| v.unwrap())
                .collect();
            for d in &mut docs {
                for h in d.get_mut("history").and_then(|h| h.as_array_mut()).into_iter().flatten() {
                    h.as_object_mut().unwrap().remove("seq");
                }
            }
            docs
        };
        assert_eq!(read(db), read(&url), "{args:?} differs after the migration");
    }
    // A second copy into the same database is refused, naming why.
    let again = run(spindown().args(["migrate", "--from", db, "--to", &url]));
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("is not empty"), "{err}");
    // Neither a missing source nor a SQLite target is taken.
    let res = run(spindown().args(["migrate", "--from", "nope.db", "--to", &url]));
    assert!(String::from_utf8_lossy(&res.stderr).contains("no database at nope.db"));
    let res = run(spindown().args(["migrate", "--from", db, "--to", "other.db"]));
    assert!(String::from_utf8_lossy(&res.stderr).contains("must be a PostgreSQL URL"));
}
