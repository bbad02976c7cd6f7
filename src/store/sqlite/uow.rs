//! A unit of work on SQLite: one `BEGIN IMMEDIATE` transaction.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, Transaction};

use super::read;
use crate::meeting::{MeetingId, TimerKey};
use crate::store::codec::encode_parts;
use crate::store::rows::shaped;
use crate::store::stats::{Phase, Stats};
use crate::store::{Changes, EffectStatus, HistoryAppend, StoreError, StoredMeeting, UnitOfWork};
use crate::time::{Span, Timestamp};

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
pub(super) async fn insert_history(
    conn: &mut SqliteConnection,
    appends: &[HistoryAppend],
) -> Result<(usize, usize), StoreError> {
    let appends: Vec<&HistoryAppend> = appends.iter().filter(|h| !h.chunk.is_empty()).collect();
    for rows in shaped(&appends) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO history (meeting_id, entries) ");
        q.push_values(rows, |mut b, h| {
            b.push_bind(h.meeting_id.as_str()).push_bind(h.chunk.as_bytes());
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok((appends.len(), appends.iter().map(|h| h.chunk.len()).sum()))
}

impl SqliteUnitOfWork {
    async fn write(&mut self, changes: &Changes) -> Result<(), StoreError> {
        let conn: &mut SqliteConnection = &mut self.tx;
        let t = Instant::now();
        for chunk in shaped(&changes.meetings) {
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
                    .push_bind(serde_json::to_string(&m.instances).expect("ids serialize"))
                    .push_bind(m.created.as_micros())
                    .push_bind(m.version)
                    .push_bind(us(m.timers.safety_net))
                    .push_bind(us(m.timers.recheck))
                    .push_bind(us(m.timers.cap))
                    .push_bind(us(m.timers.fixed))
                    .push_bind(next.map(|(_, due)| due.as_micros()))
                    .push_bind(next.map(|(kind, _)| kind.rank() as i64))
                    .push_bind(serde_json::to_string(&w.stored.event_ids).expect("ids serialize"))
                    .push_bind(w.loaded_version.unwrap_or(-1));
            });
            q.push(UPSERT_MEETINGS_ON_CONFLICT);
            let done = q.build().execute(&mut *conn).await?.rows_affected();
            if done != chunk.len() as u64 {
                let ids: Vec<&str> = chunk.iter().map(|w| w.stored.meeting.id.as_str()).take(5).collect();
                return Err(StoreError::Conflict(format!("one of {}", ids.join(", "))));
            }
        }
        self.stats.add(&self.stats.meetings, changes.meetings.len());
        self.stats.add_time(Phase::WriteMeetings, t);

        let t = Instant::now();
        let (chunks, entries) = insert_history(conn, &changes.history).await?;
        self.stats.add(&self.stats.history_chunks, chunks);
        self.stats.add(&self.stats.history_entries, entries);
        self.stats.add_time(Phase::WriteHistory, t);

        let t = Instant::now();
        for chunk in shaped(&changes.effects) {
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
        self.stats.add(&self.stats.effects, changes.effects.len());
        self.stats.add_time(Phase::WriteEffects, t);

        let t = Instant::now();
        for chunk in shaped(&changes.dead_letters) {
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
        self.stats.add(&self.stats.dead, changes.dead_letters.len());
        if let Some(c) = &changes.checkpoint {
            if let Some(lease) = &c.lease {
                let held = sqlx::query(include_str!("queries/fence_lease.sql"))
                    .bind(&c.stream_arn)
                    .bind(&c.shard_id)
                    .bind(&lease.owner)
                    .bind(lease.epoch)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                if held == 0 {
                    return Err(StoreError::LeaseLost(c.shard_id.clone()));
                }
            }
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
