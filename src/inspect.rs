//! Read models for people and scripts: the replay line, `show`, tables.

use std::fmt::Write as _;

use serde::Serialize;

use crate::machine::{Meeting, MeetingId};
use crate::store::{Checkpoint, Counts, DeadLetterRow, EffectRow, GapRow, HistoryEntry, Store, StoreError, TimerRow};
use crate::time::Timestamp;

/// The spec's per-meeting line (`spindown replay --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeLine {
    pub id: String,
    pub state: String,
    pub reason: Option<String>,
    pub terminated_at: Option<String>,
    pub terminated_instances: Vec<String>,
}

impl From<&Meeting> for OutcomeLine {
    fn from(m: &Meeting) -> Self {
        OutcomeLine {
            id: m.id.to_string(),
            state: m.state.to_string(),
            reason: m.ended.map(|e| e.reason.to_string()),
            terminated_at: m.ended.map(|e| e.at.to_rfc3339()),
            terminated_instances: match m.ended {
                Some(_) => m.instances.iter().map(|i| i.to_string()).collect(),
                None => Vec::new(),
            },
        }
    }
}

impl OutcomeLine {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain struct serializes")
    }
}

/// A meeting with its facts, for `show --json` and `list --json`.
#[derive(Debug, Clone, Serialize)]
pub struct MeetingView {
    #[serde(flatten)]
    pub outcome: OutcomeLine,
    pub meet_time: Option<Timestamp>,
    pub created_at: Option<Timestamp>,
    pub duration: Option<String>,
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
            duration: m.facts.duration.map(|d| d.to_string()),
            status: m.facts.status.clone(),
            teacher_data: m.facts.teacher_data,
            student_data: m.facts.student_data,
            instances: m.instances.iter().map(|i| i.to_string()).collect(),
            first_seen: m.created,
            version: m.version,
        }
    }
}

/// Everything `spindown show ID` tells.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub meeting: MeetingView,
    pub timers: Vec<TimerRow>,
    pub effects: Vec<EffectRow>,
    pub history: Vec<HistoryEntry>,
}

/// Gather a meeting's facts, pending timers, effects and history.
pub async fn inspect(store: &Store, id: &MeetingId) -> Result<Option<Inspection>, StoreError> {
    let Some(m) = store.meeting(id).await? else { return Ok(None) };
    Ok(Some(Inspection {
        meeting: (&m).into(),
        timers: store.timers(Some(id), 10).await?,
        effects: store.effects(Some(id), None).await?,
        history: store.history(id).await?,
    }))
}

fn opt_ts(t: Option<Timestamp>) -> String {
    t.map_or("-".into(), |t| t.to_rfc3339())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `show` as text: facts, pending timers, effects, full history oldest first.
pub fn render_show(i: &Inspection) -> String {
    let m = &i.meeting;
    let mut s = String::new();
    let _ = writeln!(s, "meeting {}", m.outcome.id);
    match (&m.outcome.reason, &m.outcome.terminated_at) {
        (Some(r), Some(at)) => {
            let _ = writeln!(s, "  state        {} ({r} at {at})", m.outcome.state);
        }
        _ => {
            let _ = writeln!(s, "  state        {}", m.outcome.state);
        }
    }
    let _ = writeln!(s, "  meet_time    {}", opt_ts(m.meet_time));
    let _ = writeln!(s, "  created_at   {}", opt_ts(m.created_at));
    let _ = writeln!(s, "  duration     {}", m.duration.as_deref().unwrap_or("-"));
    let _ = writeln!(s, "  status       {}", m.status.as_deref().unwrap_or("-"));
    let _ = writeln!(s, "  session data teacher {}, student {}", yes(m.teacher_data), yes(m.student_data));
    let instances = if m.instances.is_empty() { "-".to_string() } else { m.instances.join(", ") };
    let _ = writeln!(s, "  instances    {instances}");
    let _ = writeln!(s, "  first seen   {}", m.first_seen);
    let _ = writeln!(s, "\npending timers");
    if i.timers.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for t in &i.timers {
        let _ = writeln!(s, "  {:<11} due {}", t.kind, t.due);
    }
    let _ = writeln!(s, "\neffects");
    if i.effects.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for e in &i.effects {
        let _ = writeln!(
            s,
            "  #{:<5} {:<10} {:<8} attempts {}  {}",
            e.id,
            e.kind,
            e.status,
            e.attempts,
            describe_payload(e)
        );
        if let Some(r) = &e.result {
            let _ = writeln!(s, "         result: {r}");
        }
        if let Some(err) = &e.last_error {
            let _ = writeln!(s, "         last error: {err}");
        }
        if e.status == "pending" && e.attempts > 0 {
            let _ = writeln!(s, "         next attempt at {}", e.next_attempt_at);
        }
    }
    let _ = writeln!(s, "\nhistory (oldest first)");
    for h in &i.history {
        let from = h.from_state.as_deref().unwrap_or("(new)");
        let arrow = if h.from_state.as_deref() == Some(h.to_state.as_str()) {
            h.to_state.clone()
        } else {
            format!("{from} → {}", h.to_state)
        };
        let reason = h.reason.as_deref().map(|r| format!(" {r}")).unwrap_or_default();
        let late = h.lateness_us.map(|l| format!(" ({} late)", crate::time::Span::from_micros(l))).unwrap_or_default();
        let _ = writeln!(s, "  {}  {} {}{late}: {arrow}, {}{reason}", h.at, h.cause, h.cause_ref, h.outcome);
        for n in &h.notes {
            let _ = writeln!(s, "      {n}");
        }
    }
    s
}

fn describe_payload(e: &EffectRow) -> String {
    match e.kind.as_str() {
        "terminate" => {
            let ids: Vec<&str> =
                e.payload["instances"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
            ids.join(", ")
        }
        "write_back" => format!(
            "{} at {}",
            e.payload["reason"].as_str().unwrap_or("?"),
            e.payload["terminated_at"].as_str().unwrap_or("?")
        ),
        _ => e.payload.to_string(),
    }
}

/// A plain table with a header and left-aligned columns.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut s = String::new();
    let line = |cells: Vec<&str>, s: &mut String| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = widths[i]);
            }
        }
        s.push_str(l.trim_end());
        s.push('\n');
    };
    line(header.to_vec(), &mut s);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut s);
    }
    s
}

/// Meetings as a table.
pub fn render_meetings(ms: &[Meeting]) -> String {
    let rows: Vec<Vec<String>> = ms
        .iter()
        .map(|m| {
            let o = OutcomeLine::from(m);
            vec![
                o.id,
                o.state,
                o.reason.unwrap_or_else(|| "-".into()),
                o.terminated_at.unwrap_or_else(|| "-".into()),
                if m.instances.is_empty() {
                    "-".into()
                } else {
                    m.instances.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(",")
                },
            ]
        })
        .collect();
    table(&["ID", "STATE", "REASON", "TERMINATED_AT", "INSTANCES"], &rows)
}

/// Pending timers as a table.
pub fn render_timers(ts: &[TimerRow], now: Timestamp) -> String {
    let rows: Vec<Vec<String>> = ts
        .iter()
        .map(|t| {
            let delta = t.due.since(now);
            let rel =
                if delta.as_micros() >= 0 { format!("in {delta}") } else { format!("overdue by {}", now.since(t.due)) };
            vec![t.due.to_rfc3339(), rel, t.kind.clone(), t.meeting_id.clone()]
        })
        .collect();
    table(&["DUE", "WHEN", "KIND", "MEETING"], &rows)
}

/// Dead letters as a table (raw input shortened).
pub fn render_dead_letters(ds: &[DeadLetterRow]) -> String {
    let rows: Vec<Vec<String>> = ds
        .iter()
        .map(|d| {
            let raw = String::from_utf8_lossy(&d.raw);
            let mut short: String = raw.chars().take(80).collect();
            if raw.chars().count() > 80 {
                short.push('…');
            }
            vec![d.id.to_string(), d.origin.clone(), d.kind.clone(), d.reason.clone(), short.replace('\n', "\\n")]
        })
        .collect();
    table(&["ID", "ORIGIN", "KIND", "REASON", "RAW"], &rows)
}

/// A one-screen count summary.
pub fn render_counts(c: &Counts) -> String {
    let pairs = |v: &[(String, i64)]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
        }
    };
    let total: i64 = c.meetings_by_state.iter().map(|(_, n)| n).sum();
    let mut s = String::new();
    let _ = writeln!(s, "meetings      {total} ({})", pairs(&c.meetings_by_state));
    let _ = writeln!(s, "terminated    {}", pairs(&c.terminated_by_reason));
    let _ = writeln!(s, "timers        {} pending, next due {}", c.timers_pending, opt_ts(c.next_timer_due));
    let _ = writeln!(s, "effects       {}", pairs(&c.effects_by_status));
    let _ = writeln!(s, "dead letters  {} ({})", c.dead_letters, pairs(&c.dead_letters_by_kind));
    s
}

/// Everything `spindown status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub counts: Counts,
    pub failed_effects: Vec<EffectRow>,
    pub next_effect_attempt: Option<Timestamp>,
    pub checkpoints: Vec<Checkpoint>,
    pub gaps: Vec<GapRow>,
}

/// Gather the status screen.
pub async fn status(store: &Store) -> Result<Status, StoreError> {
    Ok(Status {
        counts: store.counts().await?,
        failed_effects: store.effects(None, Some("failed")).await?,
        next_effect_attempt: store.next_effect_attempt().await?,
        checkpoints: store.checkpoints(None).await?,
        gaps: store.gaps().await?,
    })
}

fn ago(now: Timestamp, t: Timestamp) -> String {
    let d = now.since(t);
    if d.as_micros() >= 0 {
        format!("{d} ago")
    } else {
        format!("in {}", t.since(now))
    }
}

/// The status screen as text.
pub fn render_status(st: &Status, now: Timestamp) -> String {
    let mut s = String::new();
    for line in render_counts(&st.counts).lines() {
        let mut line = line.to_string();
        if let (true, Some(next)) = (line.starts_with("timers"), st.counts.next_timer_due) {
            line = format!("{line} ({})", ago(now, next));
        }
        let _ = writeln!(s, "{line}");
        if line.starts_with("effects") {
            if let Some(at) = st.next_effect_attempt {
                let _ = writeln!(s, "              next attempt {at} ({})", ago(now, at));
            }
            for e in &st.failed_effects {
                let _ = writeln!(
                    s,
                    "  failed #{} {} {} after {} attempts: {}  (spindown retry {})",
                    e.id,
                    e.kind,
                    e.meeting_id,
                    e.attempts,
                    e.last_error.as_deref().unwrap_or("-"),
                    e.id
                );
            }
        }
    }
    if st.checkpoints.is_empty() {
        let _ = writeln!(s, "stream        not read yet");
    }
    let mut last_arn = "";
    for c in &st.checkpoints {
        if c.stream_arn != last_arn {
            let _ = writeln!(s, "stream        {}", c.stream_arn);
            last_arn = &c.stream_arn;
        }
        let position = c.sequence_number.as_deref().unwrap_or("(start)");
        let state = if c.closed {
            "closed, fully read".to_string()
        } else if c.caught_up {
            format!("caught up (checked {})", ago(now, c.at))
        } else {
            match c.last_event_at {
                Some(t) => format!("behind by {} (last record's event time)", now.since(t)),
                None => "reading".to_string(),
            }
        };
        let _ = writeln!(s, "  {}  at {position}, {} records, {state}", c.shard_id, c.records);
    }
    if !st.gaps.is_empty() {
        let _ = writeln!(
            s,
            "gaps          {} trimmed-data gap(s) — records were lost before they were read:",
            st.gaps.len()
        );
        for g in &st.gaps {
            let _ = writeln!(s, "  {} {}: {}", g.at, g.shard_id, g.detail);
        }
    }
    s
}
