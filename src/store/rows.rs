//! How SQL backends' rows are encoded: a meeting as a JSON array (the order
//! of the `meeting_docs` view, the same in SQLite and PostgreSQL), and
//! multi-row statements cut into a few prepared shapes. (Effect parts: [`crate::store::codec`]; history
//! chunks are the model's own bytes, kept as they are.)

use std::collections::BTreeSet;

use serde::Deserialize;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::meeting::history;
use crate::meeting::{Ended, Facts, InstanceId, Meeting, MeetingId, Reason, State, TimerKey, TimerKind, Timers};
use crate::store::codec::decode_parts;
use crate::store::{
    Checkpoint, Counts, DeadLetterRow, EffectRow, EffectStatus, Gap, HistoryRecord, LeaseRow, OutcomeLine, StoreError,
    StoredMeeting, SweepFinding, WorkerInfo, WorkerRow,
};
use crate::time::{Span, Timestamp};

/// A meeting row as `meeting_docs` returns it.
#[derive(Deserialize)]
pub(crate) struct MeetingDoc(
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
    i64,
    Vec<String>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Vec<String>,
);

/// Rows per multi-row `VALUES` statement (at most 22 parameters each: well
/// under SQLite's limit of 32,766 and PostgreSQL's of 65,535). A write of n rows is cut into statements
/// of these sizes, largest first, so that only four shapes of each statement
/// exist and every one is prepared once and kept.
pub(crate) const SHAPES: [usize; 4] = [500, 50, 5, 1];

/// `rows` cut into runs of [`SHAPES`] sizes.
pub(crate) fn shaped<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        let n = *SHAPES.iter().find(|s| **s <= rest.len())?;
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_micros)
}

/// Decode a JSON document of meeting rows.
pub(crate) fn meetings_from_doc(doc: Option<&str>) -> Result<Vec<StoredMeeting>, StoreError> {
    let docs: Vec<MeetingDoc> =
        serde_json::from_str(doc.unwrap_or("[]")).map_err(|e| StoreError::Corrupt(format!("meetings: {e}")))?;
    docs.into_iter().map(meeting_from_doc).collect()
}

/// Decode a page of due timers with their meetings' documents: a JSON array
/// of `[next_due, next_kind, id, doc]`.
pub(crate) fn due_docs(doc: Option<&str>) -> Result<(Vec<TimerKey>, Vec<StoredMeeting>), StoreError> {
    let page: Vec<(i64, i64, String, MeetingDoc)> =
        serde_json::from_str(doc.unwrap_or("[]")).map_err(|e| StoreError::Corrupt(format!("due timers: {e}")))?;
    let mut keys = Vec::with_capacity(page.len());
    let mut meetings = Vec::with_capacity(page.len());
    for (due, rank, id, d) in page {
        let kind =
            TimerKind::from_rank(rank).ok_or_else(|| corrupt("timer", format!("no timer kind has rank {rank}")))?;
        let meeting_id = MeetingId::new(id).ok_or_else(|| corrupt("timer", "empty meeting id"))?;
        keys.push(TimerKey { due: Timestamp::from_micros(due), kind, meeting_id });
        meetings.push(meeting_from_doc(d)?);
    }
    Ok((keys, meetings))
}

/// Decode one meeting row's document (a JSON array in `meeting_docs`' order).
pub(crate) fn meeting_from_text(doc: &str) -> Result<StoredMeeting, StoreError> {
    let d: MeetingDoc = serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("meeting: {e}")))?;
    meeting_from_doc(d)
}

fn meeting_from_doc(d: MeetingDoc) -> Result<StoredMeeting, StoreError> {
    let MeetingDoc(
        id,
        state,
        reason,
        terminated_at,
        meet_time,
        created_at,
        duration,
        status,
        teacher,
        student,
        instances,
        first_seen,
        version,
        safety_net,
        recheck,
        cap,
        fixed,
        event_ids,
    ) = d;
    let bad = |what: String| StoreError::Corrupt(format!("meeting {id}: {what}"));
    let ended = match (reason, terminated_at) {
        (Some(r), Some(at)) => {
            Some(Ended { reason: r.parse::<Reason>().map_err(|e| bad(e.to_string()))?, at: Timestamp::from_micros(at) })
        }
        (None, None) => None,
        _ => return Err(bad("reason and terminated_at disagree".into())),
    };
    let instances = instances
        .into_iter()
        .map(|i| InstanceId::try_from(i).map_err(|e| bad(e.to_string())))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let meeting = Meeting {
        id: MeetingId::new(id.clone()).ok_or_else(|| bad("empty id".into()))?,
        facts: Facts {
            meet_time: ts(meet_time),
            created_at: ts(created_at),
            duration: duration.map(Span::from_micros),
            status,
            teacher_data: teacher != 0,
            student_data: student != 0,
        },
        instances,
        state: state.parse::<State>().map_err(|e| bad(e.to_string()))?,
        ended,
        timers: Timers { safety_net: ts(safety_net), recheck: ts(recheck), cap: ts(cap), fixed: ts(fixed) },
        created: Timestamp::from_micros(first_seen),
        version,
    };
    Ok(StoredMeeting { meeting, event_ids })
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// A timer as (due, rank, meeting id) at columns 0, 1, 2.
pub(crate) fn timer_key<'r, R: Row>(row: &'r R) -> Result<TimerKey, StoreError>
where
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let rank: i64 = row.try_get(1)?;
    let kind = TimerKind::from_rank(rank).ok_or_else(|| corrupt("timer", format!("no timer kind has rank {rank}")))?;
    let id: String = row.try_get(2)?;
    Ok(TimerKey {
        due: Timestamp::from_micros(row.try_get(0)?),
        kind,
        meeting_id: MeetingId::new(id).ok_or_else(|| corrupt("timer", "empty meeting id"))?,
    })
}

/// An outbox row, by column name.
pub(crate) fn effect_row<'r, R: Row>(r: &'r R) -> Result<EffectRow, StoreError>
where
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
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

/// A dead letter, by column name.
pub(crate) fn dead_letter_row<'r, R: Row>(r: &'r R) -> Result<DeadLetterRow, StoreError>
where
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(DeadLetterRow {
        id: r.try_get("id")?,
        at: Timestamp::from_micros(r.try_get("at")?),
        origin: r.try_get("origin")?,
        kind: r.try_get("kind")?,
        reason: r.try_get("reason")?,
        event_id: r.try_get("event_id")?,
        raw: r.try_get("raw")?,
    })
}

/// A stream checkpoint, by column name.
pub(crate) fn checkpoint_row<'r, R: Row>(r: &'r R) -> Result<Checkpoint, StoreError>
where
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
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
        lease: None,
    })
}

/// A trimmed-data gap, by column name.
pub(crate) fn sweep_row<'r, R: Row>(r: &'r R) -> Result<SweepFinding, StoreError>
where
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let action: String = r.try_get("action")?;
    Ok(SweepFinding {
        at: Timestamp::from_micros(r.try_get("at")?),
        instance_id: r.try_get("instance_id")?,
        meeting_id: r.try_get("meeting_id")?,
        launched_at: r.try_get::<Option<i64>, _>("launched_at")?.map(Timestamp::from_micros),
        action: action.parse().map_err(|e| corrupt("sweep_log", e))?,
        detail: r.try_get("detail")?,
    })
}

pub(crate) fn gap_row<'r, R: Row>(r: &'r R) -> Result<Gap, StoreError>
where
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Gap {
        stream_arn: r.try_get("stream_arn")?,
        shard_id: r.try_get("shard_id")?,
        at: Timestamp::from_micros(r.try_get("at")?),
        detail: r.try_get("detail")?,
    })
}

/// A meeting's history chunks as (seq, entries) rows, decoded.
pub(crate) fn history_records(id: &MeetingId, chunks: Vec<(i64, Vec<u8>)>) -> Result<Vec<HistoryRecord>, StoreError> {
    let mut out = Vec::new();
    for (seq, bytes) in chunks {
        let entries = history::decode(&bytes).map_err(|e| corrupt(&format!("meeting {id}"), e))?;
        out.extend(entries.into_iter().map(|entry| HistoryRecord { seq, entry }));
    }
    Ok(out)
}

/// The spec's outcome lines from a JSON document of
/// `[id, state, reason, terminated_at, instances]` arrays.
pub(crate) fn outcomes_from_doc(doc: Option<&str>) -> Result<Vec<OutcomeLine>, StoreError> {
    type OutcomeDoc = (String, String, Option<String>, Option<i64>, Vec<String>);
    let rows: Vec<OutcomeDoc> = serde_json::from_str(doc.unwrap_or("[]")).map_err(|e| corrupt("outcomes", e))?;
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
    /// Pending timers per kind, in `TimerKind::ALL` order.
    timers_by_kind: Vec<i64>,
    next_due: Option<i64>,
    effects: Vec<(String, i64)>,
    dead: Vec<(String, i64)>,
}

/// `status`'s counts from the JSON document each backend's `counts.sql` returns.
pub(crate) fn counts_from_doc(doc: &str) -> Result<Counts, StoreError> {
    let d: CountsDoc = serde_json::from_str(doc).map_err(|e| corrupt("counts", e))?;
    Ok(Counts {
        meetings: d.meetings,
        meetings_by_state: parse_names(d.by_state)?,
        terminated_by_reason: parse_names(d.by_reason)?,
        timers_pending: d.timers,
        timers_by_kind: TimerKind::ALL.iter().copied().zip(d.timers_by_kind).collect(),
        next_timer_due: ts(d.next_due),
        effects_by_status: parse_names(d.effects)?,
        dead_letters: d.dead.iter().map(|(_, n)| n).sum(),
        dead_letters_by_kind: d.dead,
    })
}

/// A shard lease, by column name.
pub(crate) fn lease_row<'r, R: Row>(r: &'r R) -> Result<LeaseRow, StoreError>
where
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(LeaseRow {
        stream_arn: r.try_get("stream_arn")?,
        shard_id: r.try_get("shard_id")?,
        owner: r.try_get("owner")?,
        epoch: r.try_get("epoch")?,
        expires_at: Timestamp::from_micros(r.try_get("expires_at")?),
        expired: r.try_get("expired")?,
    })
}

/// A worker, by column name.
pub(crate) fn worker_row<'r, R: Row>(r: &'r R) -> Result<WorkerRow, StoreError>
where
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(WorkerRow {
        info: WorkerInfo {
            id: r.try_get("id")?,
            host: r.try_get("host")?,
            pid: r.try_get("pid")?,
            started_at: Timestamp::from_micros(r.try_get("started_at")?),
        },
        last_seen: Timestamp::from_micros(r.try_get("last_seen")?),
        live: r.try_get("live")?,
    })
}
