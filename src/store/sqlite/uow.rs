//! A unit of work on SQLite: one `BEGIN IMMEDIATE` transaction.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, Transaction};

use super::rows::{encode_entries, encode_parts, meeting_rows};
use super::stats::{Phase, Stats};
use super::{read, describe};
use crate::meeting::history::Entry;
use crate::meeting::{MeetingId, TimerKey};
use crate::store::{Changes, EffectStatus, StoreError, StoredMeeting, UnitOfWork};
use crate::time::Timestamp;

/// Meeting rows per JSON document.
const MEETINGS_PER_STATEMENT: usize = 5000;
/// Rows per multi-row `VALUES` statement (two or six parameters each, well
/// under SQLite's limit of 32,766).
const ROWS_PER_INSERT: usize = 2000;

pub(super) struct SqliteUnitOfWork {
    tx: Transaction<'static, Sqlite>,
    stats: Arc<Stats>,
}

impl SqliteUnitOfWork {
    pub(super) fn new(tx: Transaction<'static, Sqlite>, stats: Arc<Stats>) -> Self {
        SqliteUnitOfWork { tx, stats }
    }
}

/// Append history chunks: one row per meeting and unit of work.
pub(super) async fn insert_history<'a>(
    conn: &mut SqliteConnection,
    chunks: impl Iterator<Item = (&'a MeetingId, &'a [Entry])>,
) -> Result<(usize, usize), StoreError> {
    let encoded: Vec<(&str, Vec<u8>, usize)> =
        chunks.filter(|(_, e)| !e.is_empty()).map(|(id, e)| (id.as_str(), encode_entries(e), e.len())).collect();
    for chunk in encoded.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO history (meeting_id, entries) ");
        q.push_values(chunk, |mut b, (id, bytes, _)| {
            b.push_bind(*id).push_bind(bytes.as_slice());
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok((encoded.len(), encoded.iter().map(|(_, _, n)| n).sum()))
}

fn conflict_on_insert(e: sqlx::Error, ids: &[&str]) -> StoreError {
    let unique = e.as_database_error().is_some_and(|d| d.is_unique_violation());
    if unique {
        StoreError::Conflict(format!("one of {} (created by another writer)", ids.iter().take(5).cloned().collect::<Vec<_>>().join(", ")))
    } else {
        let (message, transient) = describe(&e);
        StoreError::Backend { message, transient }
    }
}

impl SqliteUnitOfWork {
    async fn write(&mut self, changes: &Changes) -> Result<(), StoreError> {
        let conn: &mut SqliteConnection = &mut self.tx;
        let t = Instant::now();
        let (new, old): (Vec<_>, Vec<_>) = changes.meetings.iter().partition(|w| w.loaded_version.is_none());
        for chunk in new.chunks(MEETINGS_PER_STATEMENT) {
            sqlx::query(include_str!("queries/insert_meetings.sql"))
                .bind(meeting_rows(chunk))
                .execute(&mut *conn)
                .await
                .map_err(|e| {
                    let ids: Vec<&str> = chunk.iter().map(|w| w.stored.meeting.id.as_str()).collect();
                    conflict_on_insert(e, &ids)
                })?;
        }
        for chunk in old.chunks(MEETINGS_PER_STATEMENT) {
            let done = sqlx::query(include_str!("queries/update_meetings.sql"))
                .bind(meeting_rows(chunk))
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if done != chunk.len() as u64 {
                let ids: Vec<&str> = chunk.iter().map(|w| w.stored.meeting.id.as_str()).take(5).collect();
                return Err(StoreError::Conflict(format!("one of {}", ids.join(", "))));
            }
        }
        self.stats.add(&self.stats.meetings, changes.meetings.len());
        self.stats.add_time(Phase::WriteMeetings, t);

        let t = Instant::now();
        let (chunks, entries) =
            insert_history(conn, changes.history.iter().map(|h| (&h.meeting_id, h.entries.as_slice()))).await?;
        self.stats.add(&self.stats.history_chunks, chunks);
        self.stats.add(&self.stats.history_entries, entries);
        self.stats.add_time(Phase::WriteHistory, t);

        let t = Instant::now();
        if !changes.effects.is_empty() {
            let rows: Vec<serde_json::Value> = changes
                .effects
                .iter()
                .map(|e| {
                    let (done, status, attempts) = if e.completed {
                        (e.parts.len(), EffectStatus::Done, 1)
                    } else {
                        (0, EffectStatus::Pending, 0)
                    };
                    serde_json::json!([
                        e.key,
                        e.meeting_id.as_str(),
                        encode_parts(&e.parts),
                        done,
                        status.as_str(),
                        attempts,
                        e.at.as_micros()
                    ])
                })
                .collect();
            sqlx::query(include_str!("queries/insert_effects.sql"))
                .bind(serde_json::Value::Array(rows).to_string())
                .execute(&mut *conn)
                .await?;
        }
        self.stats.add(&self.stats.effects, changes.effects.len());
        self.stats.add_time(Phase::WriteEffects, t);

        let t = Instant::now();
        for chunk in changes.dead_letters.chunks(ROWS_PER_INSERT / 3) {
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT INTO dead_letters (at, origin, kind, reason, event_id, raw) ");
            q.push_values(chunk, |mut b, d| {
                b.push_bind(d.at.as_micros())
                    .push_bind(d.origin.as_str())
                    .push_bind(d.kind)
                    .push_bind(d.reason.as_str())
                    .push_bind(d.event_id.as_deref())
                    .push_bind(d.raw.as_slice());
            });
            q.build().execute(&mut *conn).await?;
        }
        self.stats.add(&self.stats.dead, changes.dead_letters.len());
        if let Some(c) = &changes.checkpoint {
            sqlx::query(include_str!("queries/upsert_checkpoint.sql"))
                .bind(&c.stream_arn)
                .bind(&c.shard_id)
                .bind(&c.parent_shard_id)
                .bind(&c.sequence_number)
                .bind(c.closed)
                .bind(c.records as i64)
                .bind(c.last_event_at.map(Timestamp::as_micros))
                .bind(c.caught_up)
                .bind(c.at.as_micros())
                .execute(&mut *conn)
                .await?;
        }
        let clocks = changes.clocks;
        if clocks.last_instant.is_some() || clocks.event_clock.is_some() {
            sqlx::query(include_str!("queries/advance_clocks.sql"))
                .bind(clocks.last_instant.map(Timestamp::as_micros))
                .bind(clocks.event_clock.map(Timestamp::as_micros))
                .execute(&mut *conn)
                .await?;
        }
        self.stats.add_time(Phase::WriteOther, t);
        Ok(())
    }
}

#[async_trait]
impl UnitOfWork for SqliteUnitOfWork {
    async fn load(&mut self, ids: &[MeetingId]) -> Result<Vec<StoredMeeting>, StoreError> {
        let t = Instant::now();
        let r = read::load(&mut self.tx, ids).await;
        self.stats.add_time(Phase::Read, t);
        r
    }

    async fn due(
        &mut self,
        after: Option<&TimerKey>,
        upto: Timestamp,
        limit: usize,
    ) -> Result<Vec<TimerKey>, StoreError> {
        let t = Instant::now();
        let r = read::due(&mut self.tx, after, upto, limit).await;
        self.stats.add_time(Phase::Read, t);
        r
    }

    async fn commit(mut self: Box<Self>, changes: Changes) -> Result<(), StoreError> {
        self.write(&changes).await?;
        crate::failpoint::hit("tx-before-commit");
        let t = Instant::now();
        let stats = self.stats.clone();
        self.tx.commit().await?;
        stats.add_time(Phase::Commit, t);
        stats.add(&stats.transactions, 1);
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}
