//! Users keep their data: a database written by the previous release is
//! converted in place, on both backends, with every meeting, timer, history
//! entry, outbox row, checkpoint and dead letter read back the same.
//!
//! `tests/fixtures/upgrade/` holds what the previous release left: a SQLite
//! file (`sqlite-v9.db`, migrations through 0009) and a `pg_dump` of a
//! PostgreSQL database (`postgres-v5.sql`, through 0005), each half the
//! fixture day replayed (`replay --until 2026-11-26T09:30:00Z day.jsonl`:
//! meetings live with pending timers, others ended with their effects, dead
//! letters), and what that release's `list`, `show`, `timers`, `status` and
//! `dead-letters` printed of them (`read1.json` … `read6.json`, the same for
//! both). The release since keeps a meeting as generic columns and its
//! document (SQLite 0010 / PostgreSQL 0006): the first command on the old
//! database migrates it, and every read must print what the old one did.

mod common;

use common::*;
use spindown::inspect::MeetingStore;
use spindown::meeting::{MeetingId, SEARCH_INSTANCE};
use spindown::store::Store;

/// What an operator reads: every meeting, one meeting whole, the timers, the status.
const READS: [&[&str]; 6] = [
    &["list", "--json", "--limit", "1000"],
    &["show", "m-00004", "--json"],
    &["show", "m-00002", "--json"],
    &["timers", "--json", "--limit", "1000"],
    &["status", "--json"],
    &["dead-letters", "--json"],
];

/// Every read of `db` prints what the previous release printed.
fn reads_as_before(db: &str) {
    for (i, args) in READS.iter().enumerate() {
        let got = run_ok(spindown().args(["--db", db]).args(*args));
        let want = std::fs::read_to_string(fixture(&format!("upgrade/read{}.json", i + 1))).unwrap();
        assert_eq!(got, want, "`spindown {}` reads the same after the upgrade", args.join(" "));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_of_the_previous_release_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    std::fs::copy(fixture("upgrade/sqlite-v9.db"), &db).unwrap();
    reads_as_before(db.to_str().unwrap());
    let store = spindown::store::sqlite::SqliteStore::open(&db, &Default::default()).await.unwrap();
    found_by_instance(&store).await;
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    store.close().await;
    upgraded_database_runs_on(db.to_str().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_of_the_previous_release_is_upgraded_in_place() {
    let url = common::postgres::database("upgrade");
    common::postgres::sql_file(&url, &fixture("upgrade/postgres-v5.sql"));
    let before = common::postgres::sql(&url, "SELECT max(version) FROM _sqlx_migrations");
    assert_eq!(before.trim(), "5", "the dump is of the previous schema");
    reads_as_before(&url);
    let store = spindown::store::postgres::PgStore::open(&url, &Default::default()).await.unwrap();
    found_by_instance(&store).await;
    store.close().await;
}

/// Meetings written before the upgrade are found by their instance ids.
async fn found_by_instance(store: &dyn Store) {
    let m4 = MeetingId::new("m-00004").unwrap();
    assert_eq!(store.search(SEARCH_INSTANCE, "i-7a767c76fb008f86b", 10).await.unwrap(), [m4]);
    let m2 = MeetingId::new("m-00002").unwrap();
    for i in ["i-4770f58904dba41ec", "i-7ccf25ec84d8dbc74"] {
        assert_eq!(store.search(SEARCH_INSTANCE, i, 10).await.unwrap(), std::slice::from_ref(&m2), "{i}");
    }
    // Every stored meeting's every instance, and its start (an index the
    // upgrade builds: the previous release had none).
    let all = store.meetings(&Default::default()).await.unwrap();
    assert_eq!(all.len(), 109);
    let mut with_start = 0;
    for m in all {
        for i in &m.meeting.instances {
            let found = store.search(SEARCH_INSTANCE, i.as_str(), 10).await.unwrap();
            assert!(found.contains(&m.meeting.id), "{} by {i}", m.meeting.id);
        }
        if let Some(start) = m.meeting.facts.start() {
            let found = store.starting(start, start, None, 1000).await.unwrap();
            assert!(found.iter().any(|f| f.meeting.id == m.meeting.id), "{} by its start {start}", m.meeting.id);
            with_start += 1;
        }
    }
    assert!(with_start > 100, "{with_start} meetings with a start");
}

/// The rest of the day replayed on the upgraded file ends every meeting
/// as a replay of the whole day on a new one does: the converted rows are
/// meetings the engine goes on with (their timers fire, their records apply).
fn upgraded_database_runs_on(db: &str) {
    run_ok(spindown().args(["--db", db, "replay", "--json"]).arg(fixture("day.jsonl")));
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.db");
    let fresh = fresh.to_str().unwrap();
    run_ok(spindown().args(["--db", fresh, "replay", "--json"]).arg(fixture("day.jsonl")));
    // (Not `status`: the day's two dead letters are dead-lettered again, having no meeting to be known by.)
    for args in [&["list", "--json", "--limit", "1000"][..], &["timers", "--json"]] {
        let a = run_ok(spindown().args(["--db", db]).args(args));
        let b = run_ok(spindown().args(["--db", fresh]).args(args));
        assert_eq!(a, b, "`spindown {}` after the rest of the day", args.join(" "));
    }
}
