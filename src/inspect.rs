//! Read models: what `replay --json`, `show`, `list` and `status` tell, as
//! data (the command line renders them as text or JSON).

use crate::meeting::{
    Counts, EffectFilter, EffectRow, HistoryRecord, MeetingFilter, MeetingStore, StoredMeeting, TimerFilter,
};
use std::io::Write;

use serde::Serialize;

use crate::meeting::history::{Entry, Outcome};
pub use crate::meeting::OutcomeLine;
use crate::meeting::{Meeting, MeetingId, Reason, State, TimerKey};
use crate::store::{Checkpoint, EffectStatus, Gap, LeaseRow, Store, StoreError, WorkerRow};
use crate::time::{Span, Timestamp};

/// Meetings per page when every meeting is read.
const PAGE: usize = 5000;

/// A meeting with its facts, for `show --json` and `list --json`.
#[derive(Debug, Clone, Serialize)]
pub struct MeetingView {
    #[serde(flatten)]
    pub outcome: OutcomeLine,
    pub meet_time: Option<Timestamp>,
    pub created_at: Option<Timestamp>,
    pub duration: Option<Span>,
    pub status: Option<String>,
    pub teacher_data: bool,
    pub student_data: bool,
    pub instances: Vec<String>,
    pub first_seen: Timestamp,
    pub version: i64,
}

impl From<&Meeting> for MeetingView {
    fn from(m: &Meeting) -> Self {
        MeetingView {
            outcome: m.into(),
            meet_time: m.facts.meet_time,
            created_at: m.facts.created_at,
            duration: m.facts.duration,
            status: m.facts.status.clone(),
            teacher_data: m.facts.teacher_data,
            student_data: m.facts.student_data,
            instances: m.instances.iter().map(|i| i.to_string()).collect(),
            first_seen: m.created,
            version: m.version,
        }
    }
}

/// A history entry as `show --json` prints it: the notes as sentences.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryView {
    pub seq: i64,
    pub at: Timestamp,
    /// `record`, `duplicate`, `timer`, `command` or `effect`.
    pub cause: &'static str,
    /// What exactly: `INSERT ev-1`, `safety_net due …`, `terminate #5`.
    pub cause_ref: String,
    pub from_state: Option<State>,
    pub to_state: Option<State>,
    pub outcome: Outcome,
    pub reason: Option<Reason>,
    pub lateness_us: Option<i64>,
    pub notes: Vec<String>,
}

impl From<&HistoryRecord> for HistoryView {
    fn from(h: &HistoryRecord) -> Self {
        let e: &Entry = &h.entry;
        let kind = e.cause.kind().as_str();
        let full = e.cause.to_string();
        HistoryView {
            seq: h.seq,
            at: e.at,
            cause: kind,
            cause_ref: full.strip_prefix(kind).unwrap_or(&full).trim_start().to_string(),
            from_state: e.from,
            to_state: e.to,
            outcome: e.outcome,
            reason: e.reason,
            lateness_us: e.lateness.map(Span::as_micros),
            notes: e.notes.iter().map(|n| n.to_string()).collect(),
        }
    }
}

/// Everything `spindown show ID` tells.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub meeting: MeetingView,
    pub timers: Vec<TimerKey>,
    pub effects: Vec<EffectRow>,
    #[serde(serialize_with = "history_views")]
    pub history: Vec<HistoryRecord>,
}

fn history_views<S: serde::Serializer>(h: &[HistoryRecord], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(h.iter().map(HistoryView::from))
}

/// Gather a meeting's facts, pending timers, effects and history.
///
/// # Errors
///
/// The store cannot be read.
pub async fn inspect(store: &dyn Store, id: &MeetingId) -> Result<Option<Inspection>, StoreError> {
    let Some(m) = store.meeting(id).await? else { return Ok(None) };
    Ok(Some(Inspection {
        meeting: (&m.meeting).into(),
        timers: store.timers(&TimerFilter { meeting: Some(id.clone()), limit: 10 }).await?,
        effects: store.effects(&EffectFilter { meeting: Some(id.clone()), ..EffectFilter::default() }).await?,
        history: store.history(id).await?,
    }))
}

/// Everything `spindown status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub counts: Counts,
    pub failed_effects: Vec<EffectRow>,
    pub next_effect_attempt: Option<Timestamp>,
    pub checkpoints: Vec<Checkpoint>,
    pub gaps: Vec<Gap>,
    /// Workers that ever ran on this database; `live` if seen within [`LIVE_WITHIN`].
    pub workers: Vec<WorkerRow>,
    /// Who reads which shard.
    pub leases: Vec<LeaseRow>,
    /// The orphan sweep's latest findings, newest first.
    pub sweep_log: Vec<crate::store::SweepFinding>,
}

/// How many sweep findings `status` shows.
pub const SWEEP_LOG_SHOWN: i64 = 20;

/// A worker that has not renewed its heartbeat for this long is reported as gone.
pub const LIVE_WITHIN: Span = Span::from_secs(15);

/// Gather the status screen.
///
/// # Errors
///
/// The store cannot be read.
pub async fn status(store: &dyn Store) -> Result<Status, StoreError> {
    let failed = EffectFilter { status: Some(EffectStatus::Failed), ..EffectFilter::default() };
    Ok(Status {
        counts: store.counts().await?,
        failed_effects: store.effects(&failed).await?,
        next_effect_attempt: store.next_effect_attempt().await?,
        checkpoints: store.checkpoints(None).await?,
        gaps: store.gaps().await?,
        workers: store.workers(LIVE_WITHIN).await?,
        leases: store.leases(None).await?,
        sweep_log: store.sweep_log(SWEEP_LOG_SHOWN).await?,
    })
}

/// Call `each` for every meeting starting from `from` to `until` (both
/// included) that `filter`'s state, reason and limit select, in start order,
/// a page of the start index at a time.
///
/// # Errors
///
/// The store cannot be read, or `each` fails.
pub async fn for_each_meeting_starting<E: From<StoreError>>(
    store: &dyn Store,
    (from, until): (Timestamp, Timestamp),
    filter: &MeetingFilter,
    mut each: impl FnMut(&StoredMeeting) -> Result<(), E>,
) -> Result<u64, E> {
    let mut n = 0u64;
    let mut after: Option<StoredMeeting> = None;
    loop {
        let page = store.starting(from, until, after.as_ref(), PAGE).await?;
        let full = page.len() == PAGE;
        for m in &page {
            let st = filter.state.is_none_or(|s| m.meeting.state == s);
            let why = filter.reason.is_none_or(|r| m.meeting.ended.map(|e| e.reason) == Some(r));
            if st && why {
                if filter.limit.is_some_and(|l| n as usize >= l) {
                    return Ok(n);
                }
                each(m)?;
                n += 1;
            }
        }
        match page.into_iter().last() {
            Some(last) if full => after = Some(last),
            _ => return Ok(n),
        }
    }
}

/// Call `each` for every meeting `filter` selects, in id order, a page at a
/// time (memory stays bounded by one page, whatever the number of meetings).
///
/// # Errors
///
/// The store cannot be read, or `each` fails.
pub async fn for_each_meeting<E: From<StoreError>>(
    store: &dyn Store,
    filter: &MeetingFilter,
    mut each: impl FnMut(&StoredMeeting) -> Result<(), E>,
) -> Result<u64, E> {
    let mut n = 0u64;
    let mut page = filter.clone();
    let mut left = filter.limit;
    loop {
        page.limit = Some(left.map_or(PAGE, |l| l.min(PAGE)));
        if page.limit == Some(0) {
            return Ok(n);
        }
        let ms = store.meetings(&page).await?;
        for m in &ms {
            each(m)?;
        }
        n += ms.len() as u64;
        if let Some(l) = left.as_mut() {
            *l -= ms.len();
        }
        match ms.last() {
            Some(last) if ms.len() == page.limit.unwrap_or(PAGE) => page.after = Some(last.meeting.id.clone()),
            _ => return Ok(n),
        }
    }
}

/// A failure writing outcome lines.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

/// Write the spec's line for every meeting, in id order, streamed page by page.
///
/// # Errors
///
/// The store cannot be read or `out` cannot be written.
pub async fn write_outcomes(store: &dyn Store, out: &mut impl Write) -> Result<u64, WriteError> {
    let mut after: Option<MeetingId> = None;
    let mut n = 0;
    loop {
        let page = store.outcomes(after.as_ref(), PAGE).await?;
        for line in &page {
            serde_json::to_writer(&mut *out, line).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
        }
        n += page.len() as u64;
        if page.len() < PAGE {
            return Ok(n);
        }
        after = page.last().map(|l| MeetingId::new(l.id.clone()).expect("stored ids are not empty"));
    }
}
