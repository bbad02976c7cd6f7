//! The console's read-only pages.

use crate::inspect::MeetingStore;
use crate::meeting::{EffectFilter, EffectRow, MeetingFilter, TimerFilter};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::{message, render, store_error, timeline, PAGE};
use crate::http::AppState;
use crate::inspect::{self, HistoryView, MeetingView};
use crate::meeting::{InstanceId, MeetingId, Reason, State as MeetingState, SEARCH_INSTANCE};
use crate::store::EffectStatus;
use crate::time::{Span, Timestamp};

/// The overview (`/`): where to look first. Every figure comes from an
/// index or a small table (the store's `overview`, the hold index, the
/// checkpoints, the workers): no request scans the meetings.
pub(super) async fn home(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let now = s.clock.now();
    let read = async {
        let o = s.store.overview(now).await?;
        let held = s.store.held(now).await?;
        let checkpoints = s.store.checkpoints(None).await?;
        let workers = s.store.workers(inspect::LIVE_WITHIN).await?;
        Ok::<_, crate::store::StoreError>((o, held, checkpoints, workers))
    };
    let (o, held, checkpoints, workers) = match read.await {
        Ok(r) => r,
        Err(e) => return store_error(&s, &headers, e),
    };
    #[derive(Serialize)]
    struct Count {
        name: String,
        n: i64,
        href: String,
    }
    #[derive(Serialize)]
    struct Ended {
        reason: String,
        hour: i64,
        day: i64,
        href: String,
    }
    #[derive(Serialize)]
    struct Stuck {
        n: i64,
        oldest: Option<String>,
        error: String,
        since: String,
        href: String,
    }
    #[derive(Serialize)]
    struct Shard {
        shard: String,
        lag: String,
        state: &'static str,
    }
    #[derive(Serialize)]
    struct P {
        states: Vec<Count>,
        held: usize,
        held_next: Option<String>,
        ended: i64,
        reasons: Vec<Ended>,
        ended_hour: i64,
        ended_day: i64,
        failed: Stuck,
        retrying: Stuck,
        dead_day: i64,
        overdue: Option<String>,
        overdue_by: String,
        shards: Vec<Shard>,
        workers_live: usize,
        workers: Vec<String>,
        now: String,
    }
    let states = MeetingState::ALL
        .iter()
        .filter(|st| **st != MeetingState::Terminated)
        .map(|st| Count {
            name: st.as_str().to_string(),
            n: o.live_by_state.iter().find(|(n, _)| n == st.as_str()).map_or(0, |(_, n)| *n),
            href: format!("/meetings?state={}", st.as_str()),
        })
        .collect();
    let mut reasons: Vec<Ended> = Reason::ALL
        .iter()
        .map(|r| {
            let get = |v: &[(String, i64)]| v.iter().find(|(n, _)| n == r.as_str()).map_or(0, |(_, n)| *n);
            Ended {
                reason: r.as_str().to_string(),
                hour: get(&o.ended_hour),
                day: get(&o.ended_day),
                href: format!("/meetings?state=Terminated&reason={}", r.as_str()),
            }
        })
        .collect();
    reasons.retain(|r| r.day > 0);
    let stuck = |n: i64, row: &Option<crate::store::Stuck>, href: &str| Stuck {
        n,
        oldest: row.as_ref().map(|r| r.instance.clone()),
        error: row.as_ref().and_then(|r| r.error.clone()).unwrap_or_default(),
        since: row.as_ref().map(|r| format!("{} ({} ago)", r.at, words(now.since(r.at)))).unwrap_or_default(),
        href: href.to_string(),
    };
    let shards = checkpoints
        .iter()
        .filter(|c| !c.closed)
        .map(|c| Shard {
            shard: c.shard_id.clone(),
            lag: match (c.caught_up, c.last_event_at) {
                (true, _) | (_, None) => "0s".into(),
                (false, Some(t)) => words(now.since(t)),
            },
            state: if c.caught_up { "caught up" } else { "reading" },
        })
        .collect();
    let live: Vec<String> = workers.iter().filter(|w| w.live).map(|w| w.info.id.clone()).collect();
    let page = P {
        states,
        held: held.len(),
        held_next: held.iter().map(|(_, t)| *t).min().map(|t| t.to_rfc3339()),
        ended: o.ended,
        ended_hour: o.ended_hour.iter().map(|(_, n)| n).sum(),
        ended_day: o.ended_day.iter().map(|(_, n)| n).sum(),
        reasons,
        failed: stuck(o.failed, &o.failed_oldest, "/effects?status=failed"),
        retrying: stuck(o.retrying, &o.retrying_oldest, "/effects?status=pending"),
        dead_day: o.dead_letters_day,
        overdue: o.oldest_overdue.map(|t| t.to_rfc3339()),
        overdue_by: o.oldest_overdue.map(|t| words(now.since(t))).unwrap_or_default(),
        shards,
        workers_live: live.len(),
        workers: live,
        now: now.to_rfc3339(),
    };
    render(&s, &headers, "overview.html", page)
}

/// `/meetings` filters: all optional; an empty field is no filter.
#[derive(Debug, Default, Deserialize, Serialize)]
pub(super) struct MeetingQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    reason: String,
    /// Start at or after (RFC 3339).
    #[serde(default)]
    from: String,
    /// Start before (RFC 3339).
    #[serde(default)]
    to: String,
    /// A meeting id, or an instance id.
    #[serde(default)]
    q: String,
    /// Keyset paging: the last id of the previous page.
    #[serde(default)]
    after: String,
}

#[derive(Serialize)]
struct Row {
    id: String,
    state: String,
    reason: String,
    start: String,
    terminated_at: String,
    instances: String,
}

fn opt_ts(t: Option<Timestamp>) -> String {
    t.map_or_else(String::new, |t| t.to_rfc3339())
}

/// A time span in words: `4m 10s`, `2h 3m`, `12s`.
pub(super) fn words(span: Span) -> String {
    let secs = span.as_micros().abs() / 1_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m"),
    }
}

pub(super) async fn meetings(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<MeetingQuery>) -> Response {
    let bad = |what: &str| message(&s, &headers, StatusCode::BAD_REQUEST, "Bad filter", what);
    let state = match q.state.as_str() {
        "" => None,
        v => match v.parse::<MeetingState>() {
            Ok(st) => Some(st),
            Err(e) => return bad(&e.to_string()),
        },
    };
    let reason = match q.reason.as_str() {
        "" => None,
        v => match v.parse::<Reason>() {
            Ok(r) => Some(r),
            Err(e) => return bad(&e.to_string()),
        },
    };
    let time = |v: &str, name: &str| -> Result<Option<Timestamp>, Response> {
        match v.trim() {
            "" => Ok(None),
            v => Timestamp::parse_iso(v).map(Some).map_err(|e| bad(&format!("{name}: {v:?} is not a time: {e}"))),
        }
    };
    let (from, to) = match (time(&q.from, "from"), time(&q.to, "to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let needle = q.q.trim().to_string();
    // An exact meeting id goes straight to its page.
    if let Some(id) = MeetingId::new(needle.clone()) {
        if let Ok(Some(_)) = s.store.meeting(&id).await {
            return Redirect::to(&format!("/meetings/{}", urlencode(&needle))).into_response();
        }
    }
    // What a listed meeting must match besides state and reason (the store filters those).
    let keep = |m: &crate::meeting::Meeting, by_id: bool| -> Option<Row> {
        let start = m.facts.start();
        if from.is_some_and(|f| start.is_none_or(|st| st < f)) || to.is_some_and(|t| start.is_none_or(|st| st >= t)) {
            return None;
        }
        if by_id && !needle.is_empty() && !m.id.as_str().contains(needle.as_str()) {
            return None;
        }
        Some(Row {
            id: m.id.to_string(),
            state: m.state.to_string(),
            reason: m.ended.map(|e| e.reason.to_string()).unwrap_or_default(),
            start: opt_ts(start),
            terminated_at: opt_ts(m.ended.map(|e| e.at)),
            instances: m.instances.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(" "),
        })
    };
    let mut rows = Vec::new();
    let mut more = false;
    if InstanceId::parse(&needle).is_some() {
        // An instance id: the meetings indexed by it — a lookup, not a scan.
        let ids = match s.store.search(SEARCH_INSTANCE, &needle, PAGE + 1).await {
            Ok(ids) => ids,
            Err(e) => return store_error(&s, &headers, e),
        };
        let mut found = match crate::inspect::load_meetings(&*s.store, &ids).await {
            Ok(found) => found,
            Err(e) => return store_error(&s, &headers, e),
        };
        found.sort_by(|a, b| a.meeting.id.cmp(&b.meeting.id));
        for m in found {
            let m = m.meeting;
            if state.is_some_and(|st| m.state != st) || reason.is_some_and(|r| m.ended.map(|e| e.reason) != Some(r)) {
                continue;
            }
            if let Some(row) = keep(&m, false) {
                if rows.len() == PAGE {
                    more = true;
                    break;
                }
                rows.push(row);
            }
        }
    } else if needle.is_empty() && (from.is_some() || to.is_some()) {
        // A start range: the start index, in start order — a range, not a scan.
        // Paged after a meeting id (the last of the previous page), whose start places it.
        let mut after = match MeetingId::new(q.after.clone()) {
            Some(id) => match s.store.meeting(&id).await {
                Ok(m) => m,
                Err(e) => return store_error(&s, &headers, e),
            },
            None => None,
        };
        let lo = from.unwrap_or(Timestamp::EPOCH);
        // `to` is exclusive here, the index's end inclusive.
        let hi =
            to.map_or(Timestamp::from_micros(253_402_300_799_999_999), |t| Timestamp::from_micros(t.as_micros() - 1));
        'range: loop {
            let page = match s.store.starting(lo, hi, after.as_ref(), 500).await {
                Ok(p) => p,
                Err(e) => return store_error(&s, &headers, e),
            };
            let full = page.len() == 500;
            for m in &page {
                let st = state.is_none_or(|st| m.meeting.state == st);
                let why = reason.is_none_or(|r| m.meeting.ended.map(|e| e.reason) == Some(r));
                if let Some(row) = (st && why).then(|| keep(&m.meeting, false)).flatten() {
                    if rows.len() == PAGE {
                        more = true;
                        break 'range;
                    }
                    rows.push(row);
                }
            }
            match page.into_iter().last() {
                Some(last) if full => after = Some(last),
                _ => break,
            }
        }
    } else {
        let mut after = MeetingId::new(q.after.clone());
        // Keyset pages of the store, filtered further here (time range, meeting id search).
        'pages: loop {
            let filter = MeetingFilter { state, reason, after: after.clone(), limit: Some(500) };
            let page = match s.store.meetings(&filter).await {
                Ok(p) => p,
                Err(e) => return store_error(&s, &headers, e),
            };
            let Some(last) = page.last() else { break };
            after = Some(last.meeting.id.clone());
            let full = page.len() == 500;
            for m in page {
                if let Some(row) = keep(&m.meeting, true) {
                    if rows.len() == PAGE {
                        more = true;
                        break 'pages;
                    }
                    rows.push(row);
                }
            }
            if !full {
                break;
            }
        }
    }
    let next = if more { rows.last().map(|r| r.id.clone()) } else { None };
    #[derive(Serialize)]
    struct P<'a> {
        q: &'a MeetingQuery,
        rows: Vec<Row>,
        next: Option<String>,
        states: Vec<&'static str>,
        reasons: Vec<&'static str>,
        query: String,
    }
    let query = format!(
        "state={}&reason={}&from={}&to={}&q={}",
        urlencode(&q.state),
        urlencode(&q.reason),
        urlencode(&q.from),
        urlencode(&q.to),
        urlencode(&q.q)
    );
    let page = P {
        q: &q,
        rows,
        next,
        states: MeetingState::ALL.iter().map(|s| s.as_str()).collect(),
        reasons: Reason::ALL.iter().map(|r| r.as_str()).collect(),
        query,
    };
    render(&s, &headers, "meetings.html", page)
}

/// Percent-encode a query value.
pub(super) fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Serialize)]
struct TimerRow {
    meeting: String,
    kind: String,
    due: String,
    left: String,
    overdue: bool,
}

#[derive(Serialize)]
struct EffectView {
    id: i64,
    meeting: String,
    kind: String,
    parts: Vec<String>,
    status: String,
    attempts: i64,
    next_attempt_at: String,
    last_error: String,
    failed: bool,
}

fn part(p: &crate::meeting::Effect) -> String {
    match p {
        crate::meeting::Effect::Terminate { instances } => {
            format!("terminate {}", instances.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "))
        }
        crate::meeting::Effect::WriteBack { reason, terminated_at } => {
            format!("write back {reason} at {terminated_at}")
        }
    }
}

fn effect_view(e: &EffectRow) -> EffectView {
    EffectView {
        id: e.id,
        meeting: e.meeting_id.to_string(),
        kind: e.kind().to_string(),
        parts: e.parts.iter().map(part).collect(),
        status: e.status.to_string(),
        attempts: e.attempts,
        next_attempt_at: e.next_attempt_at.to_rfc3339(),
        last_error: e.last_error.clone().unwrap_or_default(),
        failed: e.status == EffectStatus::Failed,
    }
}

fn timer_row(k: &crate::meeting::TimerKey, now: Timestamp) -> TimerRow {
    let overdue = k.due <= now;
    TimerRow {
        meeting: k.meeting_id.to_string(),
        kind: k.kind.to_string(),
        due: k.due.to_rfc3339(),
        left: if overdue {
            format!("{} overdue", words(now.since(k.due)))
        } else {
            format!("in {}", words(k.due.since(now)))
        },
        overdue,
    }
}

pub(super) async fn meeting(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(mid) = MeetingId::new(id.clone()) else {
        return message(&s, &headers, StatusCode::NOT_FOUND, "No such meeting", "a meeting id is not empty");
    };
    let i = match inspect::inspect(s.store.as_ref(), &mid).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            return message(&s, &headers, StatusCode::NOT_FOUND, "No such meeting", &format!("no meeting {id}"))
        }
        Err(e) => return store_error(&s, &headers, e),
    };
    let now = s.clock.now();
    let history: Vec<HistoryView> = i.history.iter().map(HistoryView::from).collect();
    let svg = timeline::draw(&i.history, i.meeting.outcome.terminated_at, now);
    #[derive(Serialize)]
    struct P {
        m: MeetingView,
        timers: Vec<TimerRow>,
        effects: Vec<EffectView>,
        history: Vec<HistoryView>,
        timeline: String,
        ended: bool,
        /// A hold keeps it alive now.
        held: bool,
        /// What the hold form offers: an hour from now.
        hold_default: String,
    }
    let ended = i.meeting.outcome.terminated_at.is_some();
    let held = i.meeting.held_until.is_some_and(|t| now < t);
    let hour = Timestamp::from_micros(now.as_micros() / 1_000_000 * 1_000_000)
        .saturating_add(crate::time::Span::from_hours(1));
    let page = P {
        held,
        hold_default: hour.to_rfc3339(),
        timers: i.timers.iter().map(|k| timer_row(k, now)).collect(),
        effects: i.effects.iter().map(effect_view).collect(),
        history,
        timeline: svg,
        ended,
        m: i.meeting,
    };
    render(&s, &headers, "meeting.html", page)
}

pub(super) async fn timers(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let now = s.clock.now();
    let list = match s.store.timers(&TimerFilter { meeting: None, limit: 500 }).await {
        Ok(t) => t,
        Err(e) => return store_error(&s, &headers, e),
    };
    // Held meetings (the hold index): their timers say until when.
    let held: std::collections::HashMap<MeetingId, Timestamp> = match s.store.held(now).await {
        Ok(h) => h.into_iter().collect(),
        Err(e) => return store_error(&s, &headers, e),
    };
    #[derive(Serialize)]
    struct P {
        rows: Vec<(TimerRow, Option<String>)>,
        overdue: usize,
        shown: usize,
        held: usize,
    }
    let rows: Vec<(TimerRow, Option<String>)> =
        list.iter().map(|k| (timer_row(k, now), held.get(&k.meeting_id).map(|t| t.to_rfc3339()))).collect();
    let page = P { overdue: rows.iter().filter(|r| r.0.overdue).count(), shown: rows.len(), held: held.len(), rows };
    render(&s, &headers, "timers.html", page)
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub(super) struct EffectQuery {
    #[serde(default)]
    pub(super) status: String,
    #[serde(default)]
    pub(super) kind: String,
    /// Keyset paging, newest first: rows with an id below this.
    #[serde(default)]
    pub(super) before: Option<i64>,
}

/// The effects an effect filter selects (status and kind; kind is filtered here).
/// The failed effects of a kind (for "retry the failed ones"), at most [`RETRY_AT_ONCE`].
pub(super) async fn matching(s: &AppState, q: &EffectQuery) -> Result<Vec<EffectRow>, String> {
    let status = match q.status.as_str() {
        "" => None,
        v => Some(v.parse::<EffectStatus>().map_err(|e| e.to_string())?),
    };
    let filter = EffectFilter { status, ..EffectFilter::default() };
    let mut out = Vec::new();
    let mut before = None;
    // Newest first, a page at a time, filtered by kind, bounded.
    loop {
        let rows = s.store.recent_effects(&filter, before, 1000).await.map_err(|e| e.to_string())?;
        let Some(last) = rows.last().map(|r| r.id) else { return Ok(out) };
        out.extend(rows.into_iter().filter(|e| q.kind.is_empty() || e.kind().as_str() == q.kind));
        if out.len() >= RETRY_AT_ONCE {
            out.truncate(RETRY_AT_ONCE);
            return Ok(out);
        }
        before = Some(last);
    }
}

/// Failed effects re-queued by one "retry all", at most.
pub(super) const RETRY_AT_ONCE: usize = 10_000;

/// The outbox, newest first, a page at a time (it holds one row per
/// termination: hundreds of thousands on a busy day).
pub(super) async fn effects(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<EffectQuery>) -> Response {
    let status = match q.status.as_str() {
        "" => None,
        v => match v.parse::<EffectStatus>() {
            Ok(st) => Some(st),
            Err(e) => return message(&s, &headers, StatusCode::BAD_REQUEST, "Bad filter", &e.to_string()),
        },
    };
    if !q.kind.is_empty() && !crate::meeting::EffectKind::ALL.iter().any(|k| k.as_str() == q.kind) {
        let text = format!("{:?} is not an effect kind", q.kind);
        return message(&s, &headers, StatusCode::BAD_REQUEST, "Bad filter", &text);
    }
    let filter = EffectFilter { status, ..EffectFilter::default() };
    let mut rows = Vec::new();
    let mut before = q.before;
    let mut next = None;
    // A page of rows of the kind asked for (the kind is each row's current part).
    for _ in 0..20 {
        let got = match s.store.recent_effects(&filter, before, PAGE * 4).await {
            Ok(r) => r,
            Err(e) => return store_error(&s, &headers, e),
        };
        let full = got.len() == PAGE * 4;
        before = got.last().map(|r| r.id);
        for r in got {
            if q.kind.is_empty() || r.kind().as_str() == q.kind {
                if rows.len() == PAGE {
                    next = rows.last().map(|r: &EffectRow| r.id);
                    break;
                }
                rows.push(r);
            }
        }
        if next.is_some() || !full {
            break;
        }
    }
    let failed = match s
        .store
        .recent_effects(&EffectFilter { status: Some(EffectStatus::Failed), ..EffectFilter::default() }, None, 1)
        .await
    {
        Ok(r) => !r.is_empty(),
        Err(e) => return store_error(&s, &headers, e),
    };
    #[derive(Serialize)]
    struct P<'a> {
        q: &'a EffectQuery,
        rows: Vec<EffectView>,
        failed: bool,
        next: Option<i64>,
        statuses: Vec<&'static str>,
        kinds: Vec<&'static str>,
    }
    let page = P {
        q: &q,
        rows: rows.iter().map(effect_view).collect(),
        failed,
        next,
        statuses: EffectStatus::ALL.iter().map(|s| s.as_str()).collect(),
        kinds: crate::meeting::EffectKind::ALL.iter().map(|k| k.as_str()).collect(),
    };
    render(&s, &headers, "effects.html", page)
}

#[derive(Deserialize)]
pub(super) struct DeadLetterQuery {
    /// Keyset paging, newest first: rows with an id below this.
    #[serde(default)]
    before: Option<i64>,
}

/// Dead letters, newest first, a page at a time.
pub(super) async fn dead_letters(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DeadLetterQuery>,
) -> Response {
    let mut rows = match s.store.recent_dead_letters(q.before, PAGE + 1).await {
        Ok(r) => r,
        Err(e) => return store_error(&s, &headers, e),
    };
    let next = (rows.len() > PAGE).then(|| rows[PAGE - 1].id);
    rows.truncate(PAGE);
    #[derive(Serialize)]
    struct D {
        id: i64,
        at: String,
        origin: String,
        kind: String,
        reason: String,
        event_id: String,
        raw: String,
    }
    #[derive(Serialize)]
    struct P {
        rows: Vec<D>,
        next: Option<i64>,
    }
    let rows = rows
        .into_iter()
        .map(|d| D {
            id: d.id,
            at: d.at.to_rfc3339(),
            origin: d.origin,
            kind: d.kind,
            reason: d.reason,
            event_id: d.event_id.unwrap_or_default(),
            raw: String::from_utf8_lossy(&d.raw).into_owned(),
        })
        .collect();
    render(&s, &headers, "dead_letters.html", P { rows, next })
}

pub(super) async fn stream(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let st = match inspect::status(s.store.as_ref()).await {
        Ok(st) => st,
        Err(e) => return store_error(&s, &headers, e),
    };
    let now = s.clock.now();
    #[derive(Serialize)]
    struct Shard {
        stream: String,
        shard: String,
        position: String,
        records: i64,
        state: String,
        lag: String,
        reader: String,
    }
    let shards = st
        .checkpoints
        .iter()
        .map(|c| {
            let lease = st.leases.iter().find(|l| l.stream_arn == c.stream_arn && l.shard_id == c.shard_id);
            Shard {
                stream: c.stream_arn.clone(),
                shard: c.shard_id.clone(),
                position: c.sequence_number.clone().unwrap_or_else(|| "(start)".into()),
                records: c.records as i64,
                state: if c.closed {
                    "closed, fully read".into()
                } else if c.caught_up {
                    "caught up".into()
                } else {
                    "reading".into()
                },
                lag: match (c.caught_up, c.last_event_at) {
                    (true, _) | (_, None) => "0s".into(),
                    (false, Some(t)) => words(now.since(t)),
                },
                reader: lease
                    .and_then(|l| l.owner.clone().map(|o| if l.expired { format!("{o} (lease expired)") } else { o }))
                    .unwrap_or_default(),
            }
        })
        .collect::<Vec<_>>();
    #[derive(Serialize)]
    struct P {
        shards: Vec<Shard>,
        gaps: Vec<crate::store::Gap>,
        sweep: Vec<crate::store::SweepFinding>,
        workers: Vec<(String, bool, String)>,
    }
    let workers = st.workers.iter().map(|w| (w.info.id.clone(), w.live, w.last_seen.to_rfc3339())).collect();
    render(&s, &headers, "stream.html", P { shards, gaps: st.gaps, sweep: st.sweep_log, workers })
}
