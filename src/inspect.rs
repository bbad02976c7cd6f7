//! Read models: what `replay --json`, `show`, `list` and `status` tell, as
//! data (the command line renders them as text or JSON).

use std::io::Write;

use async_trait::async_trait;
use serde::Serialize;

use crate::meeting::history::{self, Entry, Outcome};
use crate::meeting::stored::{effect_of, meeting_of, outcome_of, parse_names, timer_of};
pub use crate::meeting::OutcomeLine;
use crate::meeting::{
    start_value, Counts, EffectFilter, EffectOutcome, EffectRow, HistoryRecord, Meeting, MeetingFilter, MeetingId,
    Reason, State, StoredMeeting, TimerFilter, TimerKey, TimerKind, SEARCH_HELD, SEARCH_START,
};
use crate::store::{
    Checkpoint, Claim, EffectStatus, Gap, InstanceFilter, LeaseRow, OutboxOutcome, PendingFilter, Store, StoreError,
    WorkerRow,
};
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
    /// The end of an operator's hold (`spindown hold`), while the meeting has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_until: Option<Timestamp>,
    /// How far an operator extended it (`spindown extend`): its end-of-life
    /// timer is never due before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_until: Option<Timestamp>,
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
            held_until: m.held_until(),
            extended_until: m.extended_until.filter(|_| m.ended.is_none()),
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

/// The stored meetings of `ids` (those stored), in no set order.
///
/// # Errors
///
/// A store failure, or a row that is not a meeting.
pub async fn load_meetings(store: &dyn Store, ids: &[MeetingId]) -> Result<Vec<StoredMeeting>, StoreError> {
    let ids: Vec<&str> = ids.iter().map(MeetingId::as_str).collect();
    store.load(&ids).await?.into_iter().map(meeting_of).collect()
}

/// The meeting workflow's read models on any store.
#[async_trait]
pub trait MeetingStore: Store {
    async fn meeting(&self, id: &MeetingId) -> Result<Option<StoredMeeting>, StoreError> {
        self.load(&[id.as_str()]).await?.pop().map(meeting_of).transpose()
    }

    /// Meetings in id order, after `filter.after`, at most `filter.limit`.
    async fn meetings(&self, f: &MeetingFilter) -> Result<Vec<StoredMeeting>, StoreError> {
        let filter = InstanceFilter {
            state: f.state.map(|s| s.as_str().to_string()),
            reason: f.reason.map(|r| r.as_str().to_string()),
            after: f.after.as_ref().map(MeetingId::to_string),
            limit: f.limit,
        };
        self.instances(&filter).await?.into_iter().map(meeting_of).collect()
    }

    /// Meetings whose search attribute `name` has `value` (see
    /// [`Meeting::search_attributes`]), in id order, at most `limit`: an index lookup.
    async fn search(&self, name: &str, value: &str, limit: usize) -> Result<Vec<MeetingId>, StoreError> {
        self.find(name, value, limit)
            .await?
            .into_iter()
            .map(|id| MeetingId::new(id).ok_or_else(|| StoreError::Corrupt("search: an empty meeting id".into())))
            .collect()
    }

    /// Meetings starting ([`Facts::start`](crate::meeting::Facts::start)) from `from` to `to`, both included, in
    /// start order (then id), strictly after `after` (a meeting a previous
    /// page ended with), at most `limit`: a range of the start index.
    async fn starting(
        &self,
        from: Timestamp,
        to: Timestamp,
        after: Option<&StoredMeeting>,
        limit: usize,
    ) -> Result<Vec<StoredMeeting>, StoreError> {
        let (from, to) = (start_value(from), start_value(to));
        let after = match after.map(|m| (m.meeting.facts.start(), m.meeting.id.as_str())) {
            Some((Some(start), id)) => (start_value(start), id.to_string()),
            _ => (from, String::new()),
        };
        let found = self.find_range(SEARCH_START, (&after.0, &after.1), &to, limit).await?;
        let ids: Vec<&str> = found.iter().map(|(_, id)| id.as_str()).collect();
        // The store loads in no set order: back into the index's.
        let place: std::collections::HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let mut rows = self.load(&ids).await?.into_iter().map(meeting_of).collect::<Result<Vec<_>, _>>()?;
        rows.sort_by_key(|m| place.get(m.meeting.id.as_str()).copied());
        Ok(rows)
    }

    /// Meetings held at `now` ([`Meeting::held_at`]) with their hold's end,
    /// soonest end first: a range of the hold index, no scan.
    async fn held(&self, now: Timestamp) -> Result<Vec<(MeetingId, Timestamp)>, StoreError> {
        const PAGE: usize = 1000;
        let mut out = Vec::new();
        let mut after = (start_value(now.saturating_add(Span::from_micros(1))), String::new());
        loop {
            let page = self.find_range(SEARCH_HELD, (&after.0, &after.1), "~", PAGE).await?;
            for (value, id) in &page {
                let until = Timestamp::parse_iso(value)
                    .map_err(|e| StoreError::Corrupt(format!("held_until {value:?} of {id}: {e}")))?;
                let id = MeetingId::new(id.clone())
                    .ok_or_else(|| StoreError::Corrupt("held: an empty meeting id".into()))?;
                out.push((id, until));
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = last.clone(),
                _ => return Ok(out),
            }
        }
    }

    /// The spec's outcome lines in id order, after `after`, at most `limit`.
    async fn outcomes(&self, after: Option<&MeetingId>, limit: usize) -> Result<Vec<OutcomeLine>, StoreError> {
        self.summaries(after.map(MeetingId::as_str), limit).await?.into_iter().map(outcome_of).collect()
    }

    /// A meeting's history, oldest first.
    async fn history(&self, id: &MeetingId) -> Result<Vec<HistoryRecord>, StoreError> {
        let mut out = Vec::new();
        for c in self.chunks(id.as_str()).await? {
            let entries = history::decode(&c.bytes).map_err(|e| StoreError::Corrupt(format!("meeting {id}: {e}")))?;
            out.extend(entries.into_iter().map(|entry| HistoryRecord { seq: c.seq, entry }));
        }
        Ok(out)
    }

    /// Pending timers, soonest first (in fire order).
    async fn timers(&self, f: &TimerFilter) -> Result<Vec<TimerKey>, StoreError> {
        let filter = PendingFilter { id: f.meeting.as_ref().map(MeetingId::to_string), limit: f.limit };
        self.pending(&filter).await?.into_iter().map(timer_of).collect()
    }

    /// Outbox rows, oldest first.
    async fn effects(&self, f: &EffectFilter) -> Result<Vec<EffectRow>, StoreError> {
        self.outbox(&f.into()).await?.into_iter().map(effect_of).collect()
    }

    /// Outbox rows matching `filter` with an id below `before`, newest first,
    /// at most `limit` (the console's pages).
    async fn recent_effects(
        &self,
        f: &EffectFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<EffectRow>, StoreError> {
        self.recent_outbox(&f.into(), before, limit).await?.into_iter().map(effect_of).collect()
    }

    /// Counts for summaries and `status`.
    async fn counts(&self) -> Result<Counts, StoreError> {
        let t = self.tallies().await?;
        let by_kind = TimerKind::ALL
            .iter()
            .map(|&k| (k, t.timers_by_rank.iter().find(|(r, _)| *r == k.rank()).map_or(0, |(_, n)| *n)))
            .collect();
        Ok(Counts {
            meetings: t.instances,
            meetings_by_state: parse_names(t.by_state)?,
            terminated_by_reason: parse_names(t.by_reason)?,
            timers_pending: t.timers_pending,
            timers_by_kind: by_kind,
            next_timer_due: t.next_timer_due,
            effects_by_status: t.effects_by_status,
            dead_letters: t.dead_letters,
            dead_letters_by_kind: t.dead_letters_by_kind,
        })
    }

    /// [`Store::claim_outbox`], the parts decoded.
    async fn claim_effects(&self, claim: &Claim) -> Result<Vec<EffectRow>, StoreError> {
        self.claim_outbox(claim).await?.into_iter().map(effect_of).collect()
    }

    /// [`Store::finish_outbox`] of attempts at meetings' effects.
    async fn finish_effects(&self, owner: &str, outcomes: &[EffectOutcome]) -> Result<(), StoreError> {
        let outcomes: Vec<OutboxOutcome> = outcomes.iter().map(OutboxOutcome::from).collect();
        self.finish_outbox(owner, &outcomes).await
    }
}

impl<S: Store + ?Sized> MeetingStore for S {}
