//! What SQLite words its own way: lists as JSON arrays read by `json_each`,
//! meetings loaded as one JSON document per chunk of ids, bulk writes as
//! multi-row `VALUES` (in chunks of one shape, so each statement is prepared
//! once), and the one write lock taken at `BEGIN IMMEDIATE` (which also makes
//! two processes registering one identity take turns).

use std::path::PathBuf;

use async_trait::async_trait;
use sqlx::sqlite::SqliteQueryResult;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool, Transaction};

use super::Checkpointer;
use crate::meeting::MeetingId;
use crate::store::codec::encode_parts;
use crate::store::rows::{meetings_from_doc, shaped};
use crate::store::sql::{Dialect, Q};
use crate::store::{EffectStatus, HistoryAppend, MeetingWrite, NewDeadLetter, NewEffect, StoreError, StoredMeeting};
use crate::time::{Span, Timestamp};

/// Ids per statement (one JSON parameter each).
const IDS_PER_STATEMENT: usize = 2000;

/// One multi-row upsert writes new and changed meetings alike, fenced: an
/// existing row is replaced only if it still has the version this unit of
/// work loaded (`prev_version`; -1 for a meeting it created, which no stored
/// row has). The caller checks that every row was written.
const UPSERT_MEETINGS: &str = "INSERT INTO meetings (id, state, reason, terminated_at, meet_time, created_at, \
    duration_us, status, teacher_data, student_data, instances, first_seen, version, safety_net, recheck, cap, \
    fixed, next_due, next_kind, event_ids, prev_version) ";
const UPSERT_MEETINGS_ON_CONFLICT: &str = " ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
    reason = excluded.reason, terminated_at = excluded.terminated_at, meet_time = excluded.meet_time, \
    created_at = excluded.created_at, duration_us = excluded.duration_us, status = excluded.status, \
    teacher_data = excluded.teacher_data, student_data = excluded.student_data, instances = excluded.instances, \
    version = excluded.version, safety_net = excluded.safety_net, recheck = excluded.recheck, cap = excluded.cap, \
    fixed = excluded.fixed, next_due = excluded.next_due, next_kind = excluded.next_kind, \
    event_ids = excluded.event_ids, prev_version = excluded.prev_version \
    WHERE meetings.version = excluded.prev_version";

fn us(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::as_micros)
}

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
    async fn load(
        conn: &mut SqliteConnection,
        ids: &[MeetingId],
        _lock: bool,
    ) -> Result<Vec<StoredMeeting>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let list: Vec<&str> = chunk.iter().map(MeetingId::as_str).collect();
            let doc: Option<String> =
                sqlx::query_scalar(super::statement(Q::LoadMeetings)).bind(json(&list)).fetch_one(&mut *conn).await?;
            out.extend(meetings_from_doc(doc.as_deref())?);
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

    async fn write_meetings(conn: &mut SqliteConnection, rows: &[MeetingWrite]) -> Result<u64, StoreError> {
        let mut written = 0;
        for chunk in shaped(rows) {
            let mut q = QueryBuilder::<Sqlite>::new(UPSERT_MEETINGS);
            q.push_values(chunk, |mut b, w| {
                let m = &w.stored.meeting;
                let next = m.timers.next();
                b.push_bind(m.id.as_str())
                    .push_bind(m.state.as_str())
                    .push_bind(m.ended.map(|e| e.reason.as_str()))
                    .push_bind(us(m.ended.map(|e| e.at)))
                    .push_bind(us(m.facts.meet_time))
                    .push_bind(us(m.facts.created_at))
                    .push_bind(m.facts.duration.map(Span::as_micros))
                    .push_bind(m.facts.status.as_deref())
                    .push_bind(m.facts.teacher_data)
                    .push_bind(m.facts.student_data)
                    .push_bind(json(&m.instances))
                    .push_bind(m.created.as_micros())
                    .push_bind(m.version)
                    .push_bind(us(m.timers.safety_net))
                    .push_bind(us(m.timers.recheck))
                    .push_bind(us(m.timers.cap))
                    .push_bind(us(m.timers.fixed))
                    .push_bind(next.map(|(_, due)| due.as_micros()))
                    .push_bind(next.map(|(kind, _)| kind.rank() as i64))
                    .push_bind(json(&w.stored.event_ids))
                    .push_bind(w.loaded_version.unwrap_or(-1));
            });
            q.push(UPSERT_MEETINGS_ON_CONFLICT);
            written += q.build().execute(&mut *conn).await?.rows_affected();
        }
        Ok(written)
    }

    /// One row per meeting and unit of work.
    async fn insert_history(conn: &mut SqliteConnection, appends: &[&HistoryAppend]) -> Result<(), StoreError> {
        for rows in shaped(appends) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO history (meeting_id, entries) ");
            q.push_values(rows, |mut b, h| {
                b.push_bind(h.meeting_id.as_str()).push_bind(h.chunk.as_bytes());
            });
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn insert_effects(conn: &mut SqliteConnection, effects: &[NewEffect]) -> Result<(), StoreError> {
        for chunk in shaped(effects) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO outbox (key, meeting_id, parts, done, status, attempts, next_attempt_at, created_at, updated_at) ",
            );
            q.push_values(chunk, |mut b, e| {
                let (done, status, attempts) = if e.completed {
                    (e.parts.len() as i64, EffectStatus::Done, 1)
                } else {
                    (0, EffectStatus::Pending, 0)
                };
                b.push_bind(e.key.as_str())
                    .push_bind(e.meeting_id.as_str())
                    .push_bind(encode_parts(&e.parts))
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
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO search (name, value, meeting_id) ");
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
