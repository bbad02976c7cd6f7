//! What SQLite words its own way: lists as JSON arrays read by `json_each`,
//! instances loaded as one JSON document per chunk of ids, bulk writes as
//! multi-row `VALUES` (in chunks of one shape, so each statement is prepared
//! once), and the one write lock taken at `BEGIN IMMEDIATE` (which also makes
//! two processes registering one identity take turns).

use std::path::PathBuf;

use async_trait::async_trait;
use sqlx::sqlite::SqliteQueryResult;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool, Transaction};

use super::Checkpointer;
use crate::store::rows::{index_json, instances_from_doc, shaped};
use crate::store::sql::{Dialect, Q};
use crate::store::{EffectStatus, HistoryAppend, InstanceWrite, NewDeadLetter, NewEffect, StoreError, StoredInstance};

/// Ids per statement (one JSON parameter each).
const IDS_PER_STATEMENT: usize = 2000;

/// One multi-row upsert writes new and changed instances alike, fenced: an
/// existing row is replaced only if it still has the version this unit of
/// work loaded (`prev_version`; -1 for an instance it created, which no
/// stored row has). The caller checks that every row was written.
const UPSERT_INSTANCES: &str = "INSERT INTO instances (id, state, reason, ended_at, version, prev_version, \
    next_due, next_kind, timers, event_ids, attrs, doc) ";
const UPSERT_INSTANCES_ON_CONFLICT: &str = " ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
    reason = excluded.reason, ended_at = excluded.ended_at, version = excluded.version, \
    prev_version = excluded.prev_version, next_due = excluded.next_due, next_kind = excluded.next_kind, \
    timers = excluded.timers, event_ids = excluded.event_ids, attrs = excluded.attrs, doc = excluded.doc \
    WHERE instances.version = excluded.prev_version";

fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("lists serialize")
}

/// The SQLite dialect of the SQL store: one file.
#[derive(Debug)]
pub struct SqliteDialect {
    pub(super) path: PathBuf,
    /// The background WAL checkpoint task, stopped with the last handle.
    pub(super) _checkpointer: Checkpointer,
}

#[async_trait]
impl Dialect for SqliteDialect {
    type DB = Sqlite;
    type Ints = String;
    type Texts = String;

    fn ints(v: &[i64]) -> String {
        json(v)
    }

    fn texts(v: &[&str]) -> String {
        json(v)
    }

    fn statement(q: Q) -> &'static str {
        super::statement(q)
    }

    fn affected(r: &SqliteQueryResult) -> u64 {
        r.rows_affected()
    }

    fn limit(limit: Option<usize>) -> Option<i64> {
        Some(limit.map_or(-1, |l| l as i64))
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// One statement per chunk of ids, each returning one JSON document
    /// (decoding a document is far cheaper than decoding rows column by
    /// column through the driver). One writer: nothing to lock.
    async fn load(conn: &mut SqliteConnection, ids: &[&str], _lock: bool) -> Result<Vec<StoredInstance>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let doc: Option<String> =
                sqlx::query_scalar(super::statement(Q::LoadInstances)).bind(json(chunk)).fetch_one(&mut *conn).await?;
            out.extend(instances_from_doc(doc.as_deref())?);
        }
        Ok(out)
    }

    fn due_statement(after: bool, _claim: bool) -> &'static str {
        if after {
            super::statement(Q::DueAfter)
        } else {
            super::statement(Q::DueFirst)
        }
    }

    const DUE_DOCS_IN_ONE_ROW: bool = true;

    fn due_docs_statement(after: bool, _claim: bool) -> &'static str {
        if after {
            super::statement(Q::DueDocsAfter)
        } else {
            super::statement(Q::DueDocsFirst)
        }
    }

    async fn write_instances(conn: &mut SqliteConnection, rows: &[InstanceWrite]) -> Result<u64, StoreError> {
        let mut written = 0;
        for chunk in shaped(rows) {
            let mut q = QueryBuilder::<Sqlite>::new(UPSERT_INSTANCES);
            q.push_values(chunk, |mut b, w| {
                let (i, x) = (&w.stored, &w.index);
                let (timers, attrs) = index_json(x);
                let next = x.timers.first();
                b.push_bind(i.id.as_str())
                    .push_bind(x.state)
                    .push_bind(x.end.map(|(reason, _)| reason))
                    .push_bind(x.end.map(|(_, at)| at.as_micros()))
                    .push_bind(i.version)
                    .push_bind(w.loaded_version.unwrap_or(-1))
                    .push_bind(next.map(|(_, due)| due.as_micros()))
                    .push_bind(next.map(|(rank, _)| i64::from(*rank)))
                    .push_bind(timers)
                    .push_bind(json(&i.keys))
                    .push_bind(attrs)
                    .push_bind(i.doc.as_str());
            });
            q.push(UPSERT_INSTANCES_ON_CONFLICT);
            written += q.build().execute(&mut *conn).await?.rows_affected();
        }
        Ok(written)
    }

    /// One row per instance and unit of work.
    async fn insert_history(conn: &mut SqliteConnection, appends: &[&HistoryAppend]) -> Result<(), StoreError> {
        for rows in shaped(appends) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO history (instance, entries) ");
            q.push_values(rows, |mut b, h| {
                b.push_bind(h.id.as_str()).push_bind(h.bytes.as_slice());
            });
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn insert_effects(conn: &mut SqliteConnection, effects: &[NewEffect]) -> Result<(), StoreError> {
        for chunk in shaped(effects) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO outbox (key, instance, parts, done, status, attempts, next_attempt_at, created_at, updated_at) ",
            );
            q.push_values(chunk, |mut b, e| {
                let (done, status, attempts) =
                    if e.completed { (e.count as i64, EffectStatus::Done, 1) } else { (0, EffectStatus::Pending, 0) };
                b.push_bind(e.key.as_str())
                    .push_bind(e.subject.as_str())
                    .push_bind(e.parts.as_str())
                    .push_bind(done)
                    .push_bind(status.as_str())
                    .push_bind(attempts)
                    .push_bind(e.at.as_micros())
                    .push_bind(e.at.as_micros())
                    .push_bind(e.at.as_micros());
            });
            // The idempotency key: a row already queued is left alone.
            q.push(" ON CONFLICT (key) DO NOTHING");
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    fn around_index_search() -> Option<(&'static str, &'static str)> {
        // Connections keep their temporary tables and sorts in memory
        // (`temp_store = MEMORY`, see `mod.rs`); the one large sort of a bulk
        // load's index pass goes to a temporary file instead.
        Some(("PRAGMA temp_store = FILE", "PRAGMA temp_store = MEMORY"))
    }

    async fn insert_search(conn: &mut SqliteConnection, name: &str, pairs: &[(&str, &str)]) -> Result<(), StoreError> {
        for chunk in shaped(pairs) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO search (name, value, instance) ");
            q.push_values(chunk, |mut b, (value, id)| {
                b.push_bind(name).push_bind(*value).push_bind(*id);
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn insert_dead_letters(conn: &mut SqliteConnection, dead: &[NewDeadLetter]) -> Result<(), StoreError> {
        for chunk in shaped(dead) {
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT INTO dead_letters (at, origin, kind, reason, event_id, raw) ");
            q.push_values(chunk, |mut b, d| {
                b.push_bind(d.at.as_micros())
                    .push_bind(d.origin.as_str())
                    .push_bind(d.kind.as_ref())
                    .push_bind(d.reason.as_str())
                    .push_bind(d.event_id.as_deref())
                    .push_bind(d.raw.as_slice());
            });
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }
}
