//! Users keep their data: a database written before a migration is converted
//! in place, on both backends, with every meeting, timer, history entry,
//! outbox row, checkpoint and dead letter read back the same.
//!
//! The previous schema is made exactly: half the fixture day is replayed
//! (meetings live with pending timers, others ended with their effects, dead
//! letters), then the newest migration is undone — its table dropped and its
//! row removed from `_sqlx_migrations` — which is what a database written by
//! the previous release holds. The next command migrates it in place. The
//! newest migration today indexes every stored meeting's instance ids
//! (`search`, SQLite 0009 / PostgreSQL 0005): after the upgrade, a meeting
//! written before it is found by its instance id.

mod common;

use common::*;
use spindown::meeting::{MeetingId, SEARCH_INSTANCE};
use spindown::store::Store;

const UNTIL: &str = "2026-11-26T09:30:00Z";

/// What an operator reads: every meeting, one meeting whole, the timers, the status.
fn reads(db: &str) -> Vec<String> {
    let mut out = Vec::new();
    for args in [
        vec!["list", "--json", "--limit", "1000"],
        vec!["show", "m-00004", "--json"],
        vec!["show", "m-00002", "--json"],
        vec!["timers", "--json", "--limit", "1000"],
        vec!["status", "--json"],
        vec!["dead-letters", "--json"],
    ] {
        out.push(run_ok(spindown().args(["--db", db]).args(&args)));
    }
    out
}

fn assert_same(before: &[String], after: &[String]) {
    for (b, a) in before.iter().zip(after) {
        assert_eq!(b, a, "read the same after the upgrade");
    }
    assert!(before[0].lines().count() > 100 && before[3].lines().count() > 10, "a database with meetings and timers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_of_the_previous_schema_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    let dbs = db.to_str().unwrap();
    run_ok(spindown().args(["--db", dbs, "replay", "--until", UNTIL]).arg(fixture("day.jsonl")));
    let before = reads(dbs);
    {
        // A replay kept in a file indexes its meetings at its end.
        let store = spindown::store::sqlite::SqliteStore::open(&db, &Default::default()).await.unwrap();
        found_by_instance(&store).await;
        store.close().await;
    }
    {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&db).connect().await.unwrap();
        sqlx::query("DROP TABLE search").execute(&mut conn).await.unwrap();
        let undone = sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 9").execute(&mut conn).await.unwrap();
        assert_eq!(undone.rows_affected(), 1, "0009_search is the newest migration");
    }
    let after = reads(dbs);
    assert_same(&before, &after);
    let store = spindown::store::sqlite::SqliteStore::open(&db, &Default::default()).await.unwrap();
    found_by_instance(&store).await;
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_of_the_previous_schema_is_upgraded_in_place() {
    let url = common::postgres::database("upgrade");
    run_ok(spindown().args(["--db", &url, "replay", "--until", UNTIL]).arg(fixture("day.jsonl")));
    let before = reads(&url);
    let undone = common::postgres::sql(
        &url,
        "DROP TABLE search; WITH d AS (DELETE FROM _sqlx_migrations WHERE version = 5 RETURNING 1) SELECT count(*) FROM d",
    );
    assert_eq!(undone.trim(), "1", "0005_search is the newest migration");
    let after = reads(&url);
    assert_same(&before, &after);
    let store = spindown::store::postgres::PgStore::open(&url, &Default::default()).await.unwrap();
    found_by_instance(&store).await;
}

/// Meetings written before the upgrade are found by their instance ids.
async fn found_by_instance(store: &dyn Store) {
    let m4 = MeetingId::new("m-00004").unwrap();
    assert_eq!(store.search(SEARCH_INSTANCE, "i-7a767c76fb008f86b", 10).await.unwrap(), [m4]);
    let m2 = MeetingId::new("m-00002").unwrap();
    for i in ["i-4770f58904dba41ec", "i-7ccf25ec84d8dbc74"] {
        assert_eq!(store.search(SEARCH_INSTANCE, i, 10).await.unwrap(), std::slice::from_ref(&m2), "{i}");
    }
    // Every stored meeting's every instance.
    for m in store.meetings(&Default::default()).await.unwrap() {
        for i in &m.meeting.instances {
            let found = store.search(SEARCH_INSTANCE, i.as_str(), 10).await.unwrap();
            assert!(found.contains(&m.meeting.id), "{} by {i}", m.meeting.id);
        }
    }
}
