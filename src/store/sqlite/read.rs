//! Reads: meetings and due timers for the engine, and the read models.

use serde::Deserialize;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::rows::meetings_from_doc;
use crate::meeting::history;
use crate::meeting::{MeetingId, Reason, State, TimerKey, TimerKind};
use crate::store::codec::decode_parts;
use crate::store::{
    Checkpoint, Clocks, Counts, DeadLetterRow, EffectFilter, EffectRow, EffectStatus, Gap, HistoryRecord,
    MeetingFilter, OutcomeLine, Page, StoreError, StoredMeeting, TimerFilter,
};
use crate::time::Timestamp;

/// Ids per statement (one JSON parameter each).
const IDS_PER_STATEMENT: usize = 2000;

fn json_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    serde_json::to_string(&items.collect::<Vec<_>>()).expect("strings serialize")
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_micros)
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// Meetings by id, in any order: one statement per chunk of ids, each
/// returning one JSON document (decoding a document is far cheaper than
/// decoding rows column by column through the driver).
pub(super) async fn load(conn: &mut SqliteConnection, ids: &[MeetingId]) -> Result<Vec<StoredMeeting>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let doc: Option<String> = sqlx::query_scalar(include_str!("queries/load_meetings.sql"))
            .bind(json_list(chunk.iter().map(MeetingId::as_str)))
            .fetch_one(&mut *conn)
            .await?;
        out.extend(meetings_from_doc(doc.as_deref())?);
    }
    Ok(out)
}

fn timer_key(row: &SqliteRow) -> Result<TimerKey, StoreError> {
    let rank: i64 = row.try_get(1)?;
    let kind = TimerKind::from_rank(rank).ok_or_else(|| corrupt("timer", format!("no timer kind has rank {rank}")))?;
    let id: String = row.try_get(2)?;
    Ok(TimerKey {
        due: Timestamp::from_micros(row.try_get(0)?),
        kind,
        meeting_id: MeetingId::new(id).ok_or_else(|| corrupt("timer", "empty meeting id"))?,
    })
}

pub(super) async fn due(
    conn: &mut SqliteConnection,
    after: Option<&TimerKey>,
    upto: Timestamp,
    limit: usize,
) -> Result<Vec<TimerKey>, StoreError> {
    let rows = match after {
        Some(a) => {
            sqlx::query(include_str!("queries/due_after.sql"))
                .bind(a.due.as_micros())
                .bind(a.kind.rank() as i64)
                .bind(a.meeting_id.as_str())
                .bind(upto.as_micros())
                .bind(limit as i64)
                .fetch_all(&mut *conn)
                .await?
        }
        None => {
            sqlx::query(include_str!("queries/due_first.sql"))
                .bind(upto.as_micros())
                .bind(limit as i64)
                .fetch_all(&mut *conn)
                .await?
        }
    };
    rows.iter().map(timer_key).collect()
}

pub(super) async fn clocks(pool: &SqlitePool) -> Result<Clocks, StoreError> {
    let row: Option<(Option<i64>, Option<i64>)> =
        sqlx::query_as(include_str!("queries/clocks.sql")).fetch_optional(pool).await?;
    let (last, event) = row.unwrap_or_default();
    Ok(Clocks { last_instant: ts(last), event_clock: ts(event) })
}

pub(super) async fn meetings(pool: &SqlitePool, f: &MeetingFilter) -> Result<Vec<StoredMeeting>, StoreError> {
    let doc: Option<String> = sqlx::query_scalar(include_str!("queries/list_meetings.sql"))
        .bind(f.state.map(State::as_str))
        .bind(f.reason.map(Reason::as_str))
        .bind(f.after.as_ref().map(MeetingId::as_str))
        .bind(f.limit.map_or(-1, |l| l as i64))
        .fetch_one(pool)
        .await?;
    meetings_from_doc(doc.as_deref())
}

type OutcomeDoc = (String, String, Option<String>, Option<i64>, Vec<String>);

pub(super) async fn outcomes(
    pool: &SqlitePool,
    after: Option<&MeetingId>,
    limit: usize,
) -> Result<Vec<OutcomeLine>, StoreError> {
    let doc: Option<String> = sqlx::query_scalar(include_str!("queries/outcomes.sql"))
        .bind(after.map(MeetingId::as_str))
        .bind(limit as i64)
        .fetch_one(pool)
        .await?;
    let rows: Vec<OutcomeDoc> =
        serde_json::from_str(doc.as_deref().unwrap_or("[]")).map_err(|e| corrupt("outcomes", e))?;
    rows.into_iter()
        .map(|(id, state, reason, terminated_at, instances)| {
            let ended = terminated_at.is_some();
            Ok(OutcomeLine {
                id,
                state: state.parse().map_err(|e| corrupt("outcomes", e))?,
                reason: reason.map(|r| r.parse().map_err(|e| corrupt("outcomes", e))).transpose()?,
                terminated_at: ts(terminated_at),
                terminated_instances: if ended { instances } else { Vec::new() },
            })
        })
        .collect()
}

pub(super) async fn history(pool: &SqlitePool, id: &MeetingId) -> Result<Vec<HistoryRecord>, StoreError> {
    let rows = sqlx::query(include_str!("queries/history.sql")).bind(id.as_str()).fetch_all(pool).await?;
    let mut out = Vec::new();
    for r in rows {
        let seq: i64 = r.try_get(0)?;
        let bytes: Vec<u8> = r.try_get(1)?;
        let entries = history::decode(&bytes).map_err(|e| corrupt(&format!("meeting {id}"), e))?;
        out.extend(entries.into_iter().map(|entry| HistoryRecord { seq, entry }));
    }
    Ok(out)
}

pub(super) async fn timers(pool: &SqlitePool, f: &TimerFilter) -> Result<Vec<TimerKey>, StoreError> {
    let rows = sqlx::query(include_str!("queries/list_timers.sql"))
        .bind(f.meeting.as_ref().map(MeetingId::as_str))
        .bind(f.limit as i64)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            let id: String = r.try_get(0)?;
            let rank: i64 = r.try_get(1)?;
            Ok(TimerKey {
                due: Timestamp::from_micros(r.try_get(2)?),
                kind: TimerKind::from_rank(rank).ok_or_else(|| corrupt("timer", rank))?,
                meeting_id: MeetingId::new(id).ok_or_else(|| corrupt("timer", "empty meeting id"))?,
            })
        })
        .collect()
}

pub(super) async fn scalar_instant(pool: &SqlitePool, sql: &'static str) -> Result<Option<Timestamp>, StoreError> {
    let v: Option<i64> = sqlx::query_scalar(sql).fetch_one(pool).await?;
    Ok(ts(v))
}

pub(super) fn effect_row(r: &SqliteRow) -> Result<EffectRow, StoreError> {
    let meeting: String = r.try_get("meeting_id")?;
    let status: String = r.try_get("status")?;
    let parts: String = r.try_get("parts")?;
    let done: i64 = r.try_get("done")?;
    Ok(EffectRow {
        id: r.try_get("id")?,
        key: r.try_get("key")?,
        meeting_id: MeetingId::new(meeting).ok_or_else(|| corrupt("effect", "empty meeting id"))?,
        parts: decode_parts(&parts)?,
        done: done.max(0) as usize,
        status: status.parse::<EffectStatus>().map_err(|e| corrupt("effect", e))?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: Timestamp::from_micros(r.try_get("next_attempt_at")?),
        last_error: r.try_get("last_error")?,
        created_at: Timestamp::from_micros(r.try_get("created_at")?),
        updated_at: Timestamp::from_micros(r.try_get("updated_at")?),
    })
}

pub(super) async fn effects(pool: &SqlitePool, f: &EffectFilter) -> Result<Vec<EffectRow>, StoreError> {
    let rows = sqlx::query(include_str!("queries/list_effects.sql"))
        .bind(f.meeting.as_ref().map(MeetingId::as_str))
        .bind(f.status.map(EffectStatus::as_str))
        .bind(f.id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(effect_row).collect()
}

pub(super) async fn dead_letters(pool: &SqlitePool, page: &Page) -> Result<Vec<DeadLetterRow>, StoreError> {
    let rows = sqlx::query(include_str!("queries/dead_letters.sql"))
        .bind(page.after.unwrap_or(0))
        .bind(page.limit as i64)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DeadLetterRow {
                id: r.try_get("id")?,
                at: Timestamp::from_micros(r.try_get("at")?),
                origin: r.try_get("origin")?,
                kind: r.try_get("kind")?,
                reason: r.try_get("reason")?,
                event_id: r.try_get("event_id")?,
                raw: r.try_get("raw")?,
            })
        })
        .collect()
}

/// Counts by name, in the names' own order (every backend orders them alike).
fn parse_names<T: std::str::FromStr + Ord>(v: Vec<(String, i64)>) -> Result<Vec<(T, i64)>, StoreError>
where
    T::Err: std::fmt::Display,
{
    let mut out = Vec::with_capacity(v.len());
    for (k, n) in v {
        out.push((k.parse::<T>().map_err(|e| corrupt("counts", e))?, n));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[derive(Deserialize)]
struct CountsDoc {
    meetings: i64,
    by_state: Vec<(String, i64)>,
    by_reason: Vec<(String, i64)>,
    timers: i64,
    next_due: Option<i64>,
    effects: Vec<(String, i64)>,
    dead: Vec<(String, i64)>,
}

pub(super) async fn counts(pool: &SqlitePool) -> Result<Counts, StoreError> {
    let doc: String = sqlx::query_scalar(include_str!("queries/counts.sql")).fetch_one(pool).await?;
    let d: CountsDoc = serde_json::from_str(&doc).map_err(|e| corrupt("counts", e))?;
    let by_state: Vec<(State, i64)> = parse_names(d.by_state)?;
    let by_reason: Vec<(Reason, i64)> = parse_names(d.by_reason)?;
    let effects: Vec<(EffectStatus, i64)> = parse_names(d.effects)?;
    Ok(Counts {
        meetings: d.meetings,
        meetings_by_state: by_state,
        terminated_by_reason: by_reason,
        timers_pending: d.timers,
        next_timer_due: ts(d.next_due),
        effects_by_status: effects,
        dead_letters: d.dead.iter().map(|(_, n)| n).sum(),
        dead_letters_by_kind: d.dead,
    })
}

pub(super) async fn checkpoints(pool: &SqlitePool, stream_arn: Option<&str>) -> Result<Vec<Checkpoint>, StoreError> {
    let rows = sqlx::query(include_str!("queries/checkpoints.sql")).bind(stream_arn).fetch_all(pool).await?;
    rows.iter()
        .map(|r| {
            Ok(Checkpoint {
                stream_arn: r.try_get("stream_arn")?,
                shard_id: r.try_get("shard_id")?,
                parent_shard_id: r.try_get("parent_shard_id")?,
                sequence_number: r.try_get("sequence_number")?,
                closed: r.try_get("closed")?,
                records: r.try_get::<i64, _>("records")? as u64,
                last_event_at: ts(r.try_get("last_event_at")?),
                caught_up: r.try_get("caught_up")?,
                at: Timestamp::from_micros(r.try_get("updated_at")?),
            })
        })
        .collect()
}

pub(super) async fn gaps(pool: &SqlitePool) -> Result<Vec<Gap>, StoreError> {
    let rows = sqlx::query(include_str!("queries/gaps.sql")).fetch_all(pool).await?;
    rows.iter()
        .map(|r| {
            Ok(Gap {
                stream_arn: r.try_get("stream_arn")?,
                shard_id: r.try_get("shard_id")?,
                at: Timestamp::from_micros(r.try_get("at")?),
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}
