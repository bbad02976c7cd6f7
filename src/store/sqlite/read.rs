//! Reads: meetings and due timers for the engine, and the read models.

use sqlx::{SqliteConnection, SqlitePool};

use crate::meeting::{MeetingId, Reason, State, TimerKey};
use crate::store::rows::{self, meetings_from_doc};
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
    rows.iter().map(rows::timer_key).collect()
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
    rows::outcomes_from_doc(doc.as_deref())
}

pub(super) async fn history(pool: &SqlitePool, id: &MeetingId) -> Result<Vec<HistoryRecord>, StoreError> {
    let chunks: Vec<(i64, Vec<u8>)> =
        sqlx::query_as(include_str!("queries/history.sql")).bind(id.as_str()).fetch_all(pool).await?;
    rows::history_records(id, chunks)
}

pub(super) async fn timers(pool: &SqlitePool, f: &TimerFilter) -> Result<Vec<TimerKey>, StoreError> {
    let rows = sqlx::query(include_str!("queries/list_timers.sql"))
        .bind(f.meeting.as_ref().map(MeetingId::as_str))
        .bind(f.limit as i64)
        .fetch_all(pool)
        .await?;
    rows.iter().map(rows::timer_key).collect()
}

pub(super) async fn scalar_instant(pool: &SqlitePool, sql: &'static str) -> Result<Option<Timestamp>, StoreError> {
    let v: Option<i64> = sqlx::query_scalar(sql).fetch_one(pool).await?;
    Ok(ts(v))
}

pub(super) async fn effects(pool: &SqlitePool, f: &EffectFilter) -> Result<Vec<EffectRow>, StoreError> {
    let rows = sqlx::query(include_str!("queries/list_effects.sql"))
        .bind(f.meeting.as_ref().map(MeetingId::as_str))
        .bind(f.status.map(EffectStatus::as_str))
        .bind(f.id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(rows::effect_row).collect()
}

pub(super) async fn dead_letters(pool: &SqlitePool, page: &Page) -> Result<Vec<DeadLetterRow>, StoreError> {
    let rows = sqlx::query(include_str!("queries/dead_letters.sql"))
        .bind(page.after.unwrap_or(0))
        .bind(page.limit as i64)
        .fetch_all(pool)
        .await?;
    rows.iter().map(rows::dead_letter_row).collect()
}

pub(super) async fn counts(pool: &SqlitePool) -> Result<Counts, StoreError> {
    let doc: String = sqlx::query_scalar(include_str!("queries/counts.sql")).fetch_one(pool).await?;
    rows::counts_from_doc(&doc)
}

pub(super) async fn checkpoints(pool: &SqlitePool, stream_arn: Option<&str>) -> Result<Vec<Checkpoint>, StoreError> {
    let rows = sqlx::query(include_str!("queries/checkpoints.sql")).bind(stream_arn).fetch_all(pool).await?;
    rows.iter().map(rows::checkpoint_row).collect()
}

pub(super) async fn gaps(pool: &SqlitePool) -> Result<Vec<Gap>, StoreError> {
    let rows = sqlx::query(include_str!("queries/gaps.sql")).fetch_all(pool).await?;
    rows.iter().map(rows::gap_row).collect()
}
