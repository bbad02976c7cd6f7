//! A unit of work on PostgreSQL: one transaction (READ COMMITTED) whose
//! meetings are locked from `load` (or `due`) until it ends.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use sqlx::{PgConnection, Postgres, Transaction};

use super::read;
use crate::meeting::{MeetingId, TimerKey};
use crate::store::codec::encode_parts;
use crate::store::stats::{Phase, Stats};
use crate::store::{Changes, EffectStatus, HistoryAppend, StoreError, StoredMeeting, UnitOfWork};
use crate::time::{Span, Timestamp};

fn us(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::as_micros)
}

pub(super) struct PgUnitOfWork {
    tx: Transaction<'static, Postgres>,
    stats: Arc<Stats>,
}

impl PgUnitOfWork {
    pub(super) fn new(tx: Transaction<'static, Postgres>, stats: Arc<Stats>) -> Self {
        PgUnitOfWork { tx, stats }
    }
}

/// Append history chunks: one row per meeting and unit of work.
pub(super) async fn insert_history(
    conn: &mut PgConnection,
    appends: &[HistoryAppend],
) -> Result<(usize, usize), StoreError> {
    let appends: Vec<&HistoryAppend> = appends.iter().filter(|h| !h.chunk.is_empty()).collect();
    if appends.is_empty() {
        return Ok((0, 0));
    }
    let ids: Vec<&str> = appends.iter().map(|h| h.meeting_id.as_str()).collect();
    let chunks: Vec<&[u8]> = appends.iter().map(|h| h.chunk.as_bytes()).collect();
    sqlx::query(include_str!("queries/insert_history.sql")).bind(ids).bind(chunks).execute(&mut *conn).await?;
    Ok((appends.len(), appends.iter().map(|h| h.chunk.len()).sum()))
}

/// One array per column of the meetings to write.
#[derive(Default)]
struct MeetingColumns<'a> {
    id: Vec<&'a str>,
    state: Vec<&'static str>,
    reason: Vec<Option<&'static str>>,
    terminated_at: Vec<Option<i64>>,
    meet_time: Vec<Option<i64>>,
    created_at: Vec<Option<i64>>,
    duration: Vec<Option<i64>>,
    status: Vec<Option<&'a str>>,
    teacher: Vec<bool>,
    student: Vec<bool>,
    instances: Vec<String>,
    first_seen: Vec<i64>,
    version: Vec<i64>,
    safety_net: Vec<Option<i64>>,
    recheck: Vec<Option<i64>>,
    cap: Vec<Option<i64>>,
    fixed: Vec<Option<i64>>,
    next_due: Vec<Option<i64>>,
    next_kind: Vec<Option<i64>>,
    event_ids: Vec<String>,
    prev_version: Vec<i64>,
}

impl PgUnitOfWork {
    async fn write(&mut self, changes: &Changes) -> Result<(), StoreError> {
        let conn: &mut PgConnection = &mut self.tx;
        let t = Instant::now();
        if !changes.meetings.is_empty() {
            let mut c = MeetingColumns::default();
            for w in &changes.meetings {
                let m = &w.stored.meeting;
                let next = m.timers.next();
                c.id.push(m.id.as_str());
                c.state.push(m.state.as_str());
                c.reason.push(m.ended.map(|e| e.reason.as_str()));
                c.terminated_at.push(us(m.ended.map(|e| e.at)));
                c.meet_time.push(us(m.facts.meet_time));
                c.created_at.push(us(m.facts.created_at));
                c.duration.push(m.facts.duration.map(Span::as_micros));
                c.status.push(m.facts.status.as_deref());
                c.teacher.push(m.facts.teacher_data);
                c.student.push(m.facts.student_data);
                c.instances.push(serde_json::to_string(&m.instances).expect("ids serialize"));
                c.first_seen.push(m.created.as_micros());
                c.version.push(m.version);
                c.safety_net.push(us(m.timers.safety_net));
                c.recheck.push(us(m.timers.recheck));
                c.cap.push(us(m.timers.cap));
                c.fixed.push(us(m.timers.fixed));
                c.next_due.push(next.map(|(_, due)| due.as_micros()));
                c.next_kind.push(next.map(|(kind, _)| kind.rank() as i64));
                c.event_ids.push(serde_json::to_string(&w.stored.event_ids).expect("ids serialize"));
                c.prev_version.push(w.loaded_version.unwrap_or(-1));
            }
            let n = c.id.len();
            let first: Vec<&str> = c.id.iter().take(5).copied().collect();
            let done = sqlx::query(include_str!("queries/upsert_meetings.sql"))
                .bind(c.id)
                .bind(c.state)
                .bind(c.reason)
                .bind(c.terminated_at)
                .bind(c.meet_time)
                .bind(c.created_at)
                .bind(c.duration)
                .bind(c.status)
                .bind(c.teacher)
                .bind(c.student)
                .bind(c.instances)
                .bind(c.first_seen)
                .bind(c.version)
                .bind(c.safety_net)
                .bind(c.recheck)
                .bind(c.cap)
                .bind(c.fixed)
                .bind(c.next_due)
                .bind(c.next_kind)
                .bind(c.event_ids)
                .bind(c.prev_version)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if done != n as u64 {
                return Err(StoreError::Conflict(format!("one of {}", first.join(", "))));
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
        if !changes.effects.is_empty() {
            let (mut key, mut meeting, mut parts, mut done, mut status, mut attempts, mut at) =
                (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
            for e in &changes.effects {
                let (d, s, a) = if e.completed {
                    (e.parts.len() as i64, EffectStatus::Done, 1_i64)
                } else {
                    (0, EffectStatus::Pending, 0)
                };
                key.push(e.key.as_str());
                meeting.push(e.meeting_id.as_str());
                parts.push(encode_parts(&e.parts));
                done.push(d);
                status.push(s.as_str());
                attempts.push(a);
                at.push(e.at.as_micros());
            }
            sqlx::query(include_str!("queries/insert_outbox.sql"))
                .bind(key)
                .bind(meeting)
                .bind(parts)
                .bind(done)
                .bind(status)
                .bind(attempts)
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        self.stats.add(&self.stats.effects, changes.effects.len());
        self.stats.add_time(Phase::WriteEffects, t);

        let t = Instant::now();
        if !changes.dead_letters.is_empty() {
            let d = &changes.dead_letters;
            sqlx::query(include_str!("queries/insert_dead_letters.sql"))
                .bind(d.iter().map(|d| d.at.as_micros()).collect::<Vec<_>>())
                .bind(d.iter().map(|d| d.origin.as_str()).collect::<Vec<_>>())
                .bind(d.iter().map(|d| d.kind.as_ref()).collect::<Vec<_>>())
                .bind(d.iter().map(|d| d.reason.as_str()).collect::<Vec<_>>())
                .bind(d.iter().map(|d| d.event_id.as_deref()).collect::<Vec<_>>())
                .bind(d.iter().map(|d| d.raw.as_slice()).collect::<Vec<_>>())
                .execute(&mut *conn)
                .await?;
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
impl UnitOfWork for PgUnitOfWork {
    async fn load(&mut self, ids: &[MeetingId]) -> Result<Vec<StoredMeeting>, StoreError> {
        let t = Instant::now();
        let r = read::load(&mut self.tx, ids, true).await;
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
        let r = read::due(&mut self.tx, after, upto, limit, true).await;
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
