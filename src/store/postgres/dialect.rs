//! What PostgreSQL words its own way: lists as arrays (`ANY`, `UNNEST`),
//! one statement of one shape per table and unit of work whatever the number
//! of rows (one array per column), the instances a unit of work loads locked
//! (`FOR UPDATE`, in id order so that two workers cannot deadlock) and due
//! timers claimed with `SKIP LOCKED`, an advisory lock for a worker's
//! identity, and `LISTEN`/`NOTIFY` hints.

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgQueryResult};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::store::rows::{index_json, instances_from_doc};
use crate::store::sql::{Dialect, Q};
use crate::store::{
    EffectStatus, Hints, HistoryAppend, InstanceWrite, NewDeadLetter, NewEffect, StoreError, StoredInstance,
};

/// Ids per statement (one array parameter each).
const IDS_PER_STATEMENT: usize = 5000;

const CHANNEL: &str = "spindown_wake";

struct PgHints(PgListener);

#[async_trait]
impl Hints for PgHints {
    async fn recv(&mut self) -> Result<(), StoreError> {
        self.0.recv().await?;
        Ok(())
    }
}

/// The PostgreSQL dialect of the SQL store: one database, several workers.
#[derive(Debug)]
pub struct PgDialect {
    /// The server and database, without the password.
    pub(super) name: String,
}

/// One array per column of the instances to write.
#[derive(Default)]
struct InstanceColumns<'a> {
    id: Vec<&'a str>,
    state: Vec<&'static str>,
    reason: Vec<Option<&'static str>>,
    ended_at: Vec<Option<i64>>,
    version: Vec<i64>,
    prev_version: Vec<i64>,
    next_due: Vec<Option<i64>>,
    next_kind: Vec<Option<i64>>,
    timers: Vec<String>,
    event_ids: Vec<String>,
    attrs: Vec<String>,
    doc: Vec<&'a str>,
}

#[async_trait]
impl Dialect for PgDialect {
    type DB = Postgres;
    type Ints = Vec<i64>;
    type Texts = Vec<String>;

    fn ints(v: &[i64]) -> Vec<i64> {
        v.to_vec()
    }

    fn texts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn statement(q: Q) -> &'static str {
        super::statement(q)
    }

    fn affected(r: &PgQueryResult) -> u64 {
        r.rows_affected()
    }

    fn limit(limit: Option<usize>) -> Option<i64> {
        limit.map(|l| l as i64)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        pool.begin().await
    }

    async fn load(conn: &mut PgConnection, ids: &[&str], lock: bool) -> Result<Vec<StoredInstance>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let ids: Vec<&str> = chunk.to_vec();
            let doc: Option<String> = if lock {
                // Locking cannot be combined with an aggregate: one document a row.
                let docs: Vec<String> = sqlx::query_scalar(include_str!("queries/lock_instances.sql"))
                    .bind(ids)
                    .fetch_all(&mut *conn)
                    .await?;
                Some(format!("[{}]", docs.join(",")))
            } else {
                sqlx::query_scalar(super::statement(Q::LoadInstances)).bind(ids).fetch_one(&mut *conn).await?
            };
            out.extend(instances_from_doc(doc.as_deref())?);
        }
        Ok(out)
    }

    /// A unit of work claims: the instances of the timers it reads are locked
    /// until it ends, and those another transaction holds are skipped.
    fn due_statement(after: bool, claim: bool) -> &'static str {
        match (after, claim) {
            (true, true) => include_str!("queries/claim_due_after.sql"),
            (false, true) => include_str!("queries/claim_due_first.sql"),
            (true, false) => super::statement(Q::DueAfter),
            (false, false) => super::statement(Q::DueFirst),
        }
    }

    fn due_docs_statement(after: bool, claim: bool) -> &'static str {
        match (after, claim) {
            (true, true) => include_str!("queries/claim_due_docs_after.sql"),
            (false, true) => include_str!("queries/claim_due_docs_first.sql"),
            (true, false) => super::statement(Q::DueDocsAfter),
            (false, false) => super::statement(Q::DueDocsFirst),
        }
    }

    async fn write_instances(conn: &mut PgConnection, rows: &[InstanceWrite]) -> Result<u64, StoreError> {
        let mut c = InstanceColumns::default();
        for w in rows {
            let (i, x) = (&w.stored, &w.index);
            let (timers, attrs) = index_json(x);
            let next = x.timers.first();
            c.id.push(i.id.as_str());
            c.state.push(x.state);
            c.reason.push(x.end.map(|(reason, _)| reason));
            c.ended_at.push(x.end.map(|(_, at)| at.as_micros()));
            c.version.push(i.version);
            c.prev_version.push(w.loaded_version.unwrap_or(-1));
            c.next_due.push(next.map(|(_, due)| due.as_micros()));
            c.next_kind.push(next.map(|(rank, _)| i64::from(*rank)));
            c.timers.push(timers);
            c.event_ids.push(serde_json::to_string(&i.keys).expect("keys serialize"));
            c.attrs.push(attrs);
            c.doc.push(i.doc.as_str());
        }
        let done = sqlx::query(include_str!("queries/upsert_instances.sql"))
            .bind(c.id)
            .bind(c.state)
            .bind(c.reason)
            .bind(c.ended_at)
            .bind(c.version)
            .bind(c.prev_version)
            .bind(c.next_due)
            .bind(c.next_kind)
            .bind(c.timers)
            .bind(c.event_ids)
            .bind(c.attrs)
            .bind(c.doc)
            .execute(&mut *conn)
            .await?;
        Ok(done.rows_affected())
    }

    async fn insert_history(conn: &mut PgConnection, appends: &[&HistoryAppend]) -> Result<(), StoreError> {
        let ids: Vec<&str> = appends.iter().map(|h| h.id.as_str()).collect();
        let chunks: Vec<&[u8]> = appends.iter().map(|h| h.bytes.as_slice()).collect();
        sqlx::query(include_str!("queries/insert_history.sql")).bind(ids).bind(chunks).execute(&mut *conn).await?;
        Ok(())
    }

    async fn insert_effects(conn: &mut PgConnection, effects: &[NewEffect]) -> Result<(), StoreError> {
        let (mut key, mut subject, mut parts, mut done, mut status, mut attempts, mut at) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for e in effects {
            let (d, s, a) =
                if e.completed { (e.count as i64, EffectStatus::Done, 1_i64) } else { (0, EffectStatus::Pending, 0) };
            key.push(e.key.as_str());
            subject.push(e.subject.as_str());
            parts.push(e.parts.as_str());
            done.push(d);
            status.push(s.as_str());
            attempts.push(a);
            at.push(e.at.as_micros());
        }
        sqlx::query(include_str!("queries/insert_outbox.sql"))
            .bind(key)
            .bind(subject)
            .bind(parts)
            .bind(done)
            .bind(status)
            .bind(attempts)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn insert_search(conn: &mut PgConnection, name: &str, pairs: &[(&str, &str)]) -> Result<(), StoreError> {
        sqlx::query(include_str!("queries/insert_search.sql"))
            .bind(pairs.iter().map(|(v, _)| *v).collect::<Vec<_>>())
            .bind(pairs.iter().map(|(_, m)| *m).collect::<Vec<_>>())
            .bind(name)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn insert_dead_letters(conn: &mut PgConnection, d: &[NewDeadLetter]) -> Result<(), StoreError> {
        sqlx::query(include_str!("queries/insert_dead_letters.sql"))
            .bind(d.iter().map(|d| d.at.as_micros()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.origin.as_str()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.kind.as_ref()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.reason.as_str()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.event_id.as_deref()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.raw.as_slice()).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Two workers starting at once under one identity take turns here.
    async fn lock_identity(conn: &mut PgConnection, worker: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("spindown worker {worker}"))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Rows copied in with their ids: the id sequence moves past them.
    async fn after_copy_effects(conn: &mut PgConnection) -> Result<(), StoreError> {
        sqlx::query(include_str!("queries/outbox_ids_after_copy.sql")).execute(&mut *conn).await?;
        Ok(())
    }

    async fn notify(pool: &PgPool) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, '')").bind(CHANNEL).execute(pool).await?;
        Ok(())
    }

    async fn listen(pool: &PgPool) -> Result<Option<Box<dyn Hints>>, StoreError> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(Box::new(PgHints(listener))))
    }
}
