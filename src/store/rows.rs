//! How SQL backends' rows are encoded: an instance as a JSON array (the order
//! of the `instance_docs` view, the same in SQLite and PostgreSQL), and
//! multi-row statements cut into a few prepared shapes. (The machine's own
//! values — its state, its effects, its history — are kept as they were given.)

use serde::Deserialize;
use serde_json::value::RawValue;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::store::{
    Checkpoint, DeadLetterRow, DueKey, EffectStatus, Gap, Indexed, LeaseRow, OutboxRow, Overview, StoreError,
    StoredInstance, Stuck, Summary, SweepFinding, Tallies, WorkerInfo, WorkerRow,
};
use crate::time::Timestamp;

/// An instance row as `instance_docs` returns it: id, version, applied keys, the machine's document.
#[derive(Deserialize)]
pub(crate) struct InstanceDoc<'a>(String, i64, Vec<String>, #[serde(borrow)] &'a RawValue);

impl InstanceDoc<'_> {
    fn stored(self) -> StoredInstance {
        let InstanceDoc(id, version, keys, doc) = self;
        StoredInstance { id, version, keys, doc: doc.get().to_string() }
    }
}

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

/// Decode a JSON document of instance rows.
pub(crate) fn instances_from_doc(doc: Option<&str>) -> Result<Vec<StoredInstance>, StoreError> {
    let docs: Vec<InstanceDoc<'_>> =
        serde_json::from_str(doc.unwrap_or("[]")).map_err(|e| StoreError::Corrupt(format!("instances: {e}")))?;
    Ok(docs.into_iter().map(InstanceDoc::stored).collect())
}

/// Decode a page of due timers with their instances' documents: a JSON array
/// of `[next_due, next_kind, id, doc]`.
pub(crate) fn due_docs(doc: Option<&str>) -> Result<(Vec<DueKey>, Vec<StoredInstance>), StoreError> {
    let page: Vec<(i64, i64, String, InstanceDoc<'_>)> =
        serde_json::from_str(doc.unwrap_or("[]")).map_err(|e| StoreError::Corrupt(format!("due timers: {e}")))?;
    let mut keys = Vec::with_capacity(page.len());
    let mut instances = Vec::with_capacity(page.len());
    for (due, rank, id, d) in page {
        keys.push(DueKey { due: Timestamp::from_micros(due), rank: rank_of(rank)?, id });
        instances.push(d.stored());
    }
    Ok((keys, instances))
}

/// Decode one instance row's document (a JSON array in `instance_docs`' order).
pub(crate) fn instance_from_text(doc: &str) -> Result<StoredInstance, StoreError> {
    let d: InstanceDoc<'_> = serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("instance: {e}")))?;
    Ok(d.stored())
}

/// An instance's pending timers and search attributes as the JSON the store keeps.
pub(crate) fn index_json(index: &Indexed) -> (String, String) {
    let timers: Vec<(u8, i64)> = index.timers.iter().map(|(r, due)| (*r, due.as_micros())).collect();
    let timers = serde_json::to_string(&timers).expect("timers serialize");
    (timers, serde_json::to_string(&index.attrs).expect("attributes serialize"))
}

fn rank_of(rank: i64) -> Result<u8, StoreError> {
    u8::try_from(rank).map_err(|_| corrupt("timer", format!("no timer has rank {rank}")))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// A timer as (due, rank, instance id) at columns 0, 1, 2.
pub(crate) fn due_key<'r, R: Row>(row: &'r R) -> Result<DueKey, StoreError>
where
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(DueKey { due: Timestamp::from_micros(row.try_get(0)?), rank: rank_of(row.try_get(1)?)?, id: row.try_get(2)? })
}

/// An outbox row, by column name.
pub(crate) fn outbox_row<'r, R: Row>(r: &'r R) -> Result<OutboxRow, StoreError>
where
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let status: String = r.try_get("status")?;
    let done: i64 = r.try_get("done")?;
    Ok(OutboxRow {
        id: r.try_get("id")?,
        key: r.try_get("key")?,
        subject: r.try_get("instance")?,
        parts: r.try_get("parts")?,
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

/// Every instance's summary from a JSON document of
/// `[id, state, reason, ended_at, attrs]` arrays.
pub(crate) fn summaries_from_doc(doc: Option<&str>) -> Result<Vec<Summary>, StoreError> {
    type SummaryDoc = (String, String, Option<String>, Option<i64>, Vec<(String, String)>);
    let rows: Vec<SummaryDoc> = serde_json::from_str(doc.unwrap_or("[]")).map_err(|e| corrupt("summaries", e))?;
    Ok(rows
        .into_iter()
        .map(|(id, state, reason, ended_at, attrs)| Summary { id, state, reason, ended_at: ts(ended_at), attrs })
        .collect())
}

#[derive(Deserialize)]
struct TalliesDoc {
    instances: i64,
    by_state: Vec<(String, i64)>,
    by_reason: Vec<(String, i64)>,
    timers: i64,
    /// Pending timers per rank, as [rank, count].
    timers_by_kind: Vec<(i64, i64)>,
    next_due: Option<i64>,
    effects: Vec<(String, i64)>,
    dead: Vec<(String, i64)>,
}

/// `status`'s counts from the JSON document each backend's `counts.sql` returns.
pub(crate) fn tallies_from_doc(doc: &str) -> Result<Tallies, StoreError> {
    let d: TalliesDoc = serde_json::from_str(doc).map_err(|e| corrupt("counts", e))?;
    let mut effects = Vec::with_capacity(d.effects.len());
    for (k, n) in d.effects {
        effects.push((k.parse::<EffectStatus>().map_err(|e| corrupt("counts", e))?, n));
    }
    effects.sort_by_key(|e| e.0);
    let mut by_rank = Vec::with_capacity(d.timers_by_kind.len());
    for (rank, n) in d.timers_by_kind {
        by_rank.push((rank_of(rank)?, n));
    }
    by_rank.sort();
    Ok(Tallies {
        instances: d.instances,
        by_state: d.by_state,
        by_reason: d.by_reason,
        timers_pending: d.timers,
        timers_by_rank: by_rank,
        next_timer_due: ts(d.next_due),
        effects_by_status: effects,
        dead_letters: d.dead.iter().map(|(_, n)| n).sum(),
        dead_letters_by_kind: d.dead,
    })
}

#[derive(serde::Deserialize)]
struct OverviewDoc {
    live: Vec<(String, i64)>,
    ended: i64,
    hour: Vec<(String, i64)>,
    day: Vec<(String, i64)>,
    failed: i64,
    failed_oldest: Option<(i64, String, Option<String>, i64)>,
    retrying: i64,
    retrying_oldest: Option<(i64, String, Option<String>, i64)>,
    dead_day: i64,
    overdue: Option<i64>,
}

/// The overview statement's one JSON document.
pub(crate) fn overview_from_doc(doc: &str) -> Result<Overview, StoreError> {
    let d: OverviewDoc = serde_json::from_str(doc).map_err(|e| corrupt("overview", e))?;
    let stuck = |r: Option<(i64, String, Option<String>, i64)>| {
        r.map(|(id, instance, error, at)| Stuck { id, instance, error, at: Timestamp::from_micros(at) })
    };
    Ok(Overview {
        live_by_state: d.live,
        ended: d.ended,
        ended_hour: d.hour,
        ended_day: d.day,
        failed: d.failed,
        failed_oldest: stuck(d.failed_oldest),
        retrying: d.retrying,
        retrying_oldest: stuck(d.retrying_oldest),
        dead_letters_day: d.dead_day,
        oldest_overdue: ts(d.overdue),
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
