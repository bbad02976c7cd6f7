//! Text for people: `show`, tables, summaries, the status screen.

use spindown::meeting::{Counts, EffectRow};
use std::fmt::Write as _;

use spindown::engine::Report;
use spindown::inspect::{Inspection, OutcomeLine, Status};
use spindown::meeting::history::{Cause, Note};
use spindown::meeting::{Effect, Meeting};
use spindown::operate::CommandResult;
use spindown::source::replay::ReplaySummary;
use spindown::store::{DeadLetterRow, EffectStatus};
use spindown::time::Timestamp;

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn pairs<K: std::fmt::Display>(v: impl IntoIterator<Item = (K, impl std::fmt::Display)>) -> String {
    let parts: Vec<String> = v.into_iter().map(|(k, n)| format!("{k} {n}")).collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// A part of an effect row, described.
fn describe_part(e: &Effect) -> String {
    match e {
        Effect::Terminate { instances } => instances.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(", "),
        Effect::WriteBack { reason, terminated_at } => format!("{reason} at {terminated_at}"),
    }
}

/// The lines of one outbox row: one per part.
fn effect_lines(s: &mut String, e: &EffectRow) {
    for (i, part) in e.parts.iter().enumerate() {
        let status = if i < e.done { EffectStatus::Done } else { e.status };
        let id = if i == 0 { format!("#{}", e.id) } else { String::new() };
        let attempts = if i == 0 { format!("attempts {}", e.attempts) } else { String::new() };
        let _ = writeln!(s, "  {id:<6} {:<10} {:<8} {attempts:<11} {}", part.kind(), status, describe_part(part));
    }
    if let Some(err) = &e.last_error {
        let _ = writeln!(s, "         last error: {err}");
    }
    if e.status == EffectStatus::Pending && e.attempts > 0 {
        let _ = writeln!(s, "         next attempt at {}", e.next_attempt_at);
    }
    if e.status == EffectStatus::Failed {
        let _ = writeln!(s, "         re-queue with `spindown retry {}`", e.id);
    }
}

/// `show` as text: facts, pending timers, effects, full history oldest first.
pub fn show(i: &Inspection, now: Timestamp) -> String {
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
    let _ = writeln!(s, "  meet_time    {}", opt(m.meet_time));
    let _ = writeln!(s, "  created_at   {}", opt(m.created_at));
    let _ = writeln!(s, "  duration     {}", opt(m.duration));
    let _ = writeln!(s, "  status       {}", m.status.as_deref().unwrap_or("-"));
    let _ = writeln!(s, "  session data teacher {}, student {}", yes(m.teacher_data), yes(m.student_data));
    let instances = if m.instances.is_empty() { "-".to_string() } else { m.instances.join(", ") };
    let _ = writeln!(s, "  instances    {instances}");
    let _ = writeln!(s, "  first seen   {}", m.first_seen);
    match m.held_until {
        Some(t) if now < t => {
            let _ = writeln!(s, "  held         until {t} (no timer ends it before; `spindown release` ends the hold)");
        }
        Some(t) => {
            let _ = writeln!(s, "  held         no longer: the hold ended at {t}");
        }
        None => {}
    }
    if let Some(t) = m.extended_until {
        let _ = writeln!(s, "  extended     until {t} (its end-of-life timer is never due before)");
    }
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
        effect_lines(&mut s, e);
    }
    let _ = writeln!(s, "\nhistory (oldest first)");
    for h in &i.history {
        let e = &h.entry;
        let change = match (e.from, e.to) {
            (from, Some(to)) if from == Some(to) => format!("{to}, "),
            (Some(from), Some(to)) => format!("{from} → {to}, "),
            (None, Some(to)) => format!("(new) → {to}, "),
            (_, None) => String::new(),
        };
        let reason = e.reason.map(|r| format!(" {r}")).unwrap_or_default();
        let late = e.lateness.map(|l| format!(" ({l} late)")).unwrap_or_default();
        let _ = writeln!(s, "  {}  {}{late}: {change}{}{reason}", e.at, e.cause, e.outcome);
        for n in &e.notes {
            match (n, &e.cause) {
                (Note::GaveUp { .. }, Cause::Effect { effect: Some(id), .. }) => {
                    let _ = writeln!(s, "      {n} (re-queue with `spindown retry {id}`)");
                }
                _ => {
                    let _ = writeln!(s, "      {n}");
                }
            }
        }
    }
    s
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

pub const MEETING_HEADER: [&str; 5] = ["ID", "STATE", "REASON", "TERMINATED_AT", "INSTANCES"];

/// A meeting as a table row.
pub fn meeting_row(m: &Meeting) -> Vec<String> {
    let o = OutcomeLine::from(m);
    vec![
        o.id,
        o.state.to_string(),
        opt(o.reason),
        opt(o.terminated_at),
        if m.instances.is_empty() {
            "-".into()
        } else {
            m.instances.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(",")
        },
    ]
}

/// Pending timers as a table.
/// Pending timers as a table; a held meeting's rows say until when.
pub fn timers(
    ts: &[spindown::meeting::TimerKey],
    held: &std::collections::BTreeMap<spindown::meeting::MeetingId, Timestamp>,
    now: Timestamp,
) -> String {
    let rows: Vec<Vec<String>> = ts
        .iter()
        .map(|t| {
            let delta = t.due.since(now);
            let rel =
                if delta.as_micros() >= 0 { format!("in {delta}") } else { format!("overdue by {}", now.since(t.due)) };
            let hold = held.get(&t.meeting_id).map(|u| format!("until {u}")).unwrap_or_default();
            vec![t.due.to_rfc3339(), rel, t.kind.to_string(), t.meeting_id.to_string(), hold]
        })
        .collect();
    table(&["DUE", "WHEN", "KIND", "MEETING", "HELD"], &rows)
}

/// Dead letters as a table (raw input shortened).
pub fn dead_letters(ds: &[DeadLetterRow]) -> String {
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
pub fn counts(c: &Counts) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "meetings      {} ({})", c.meetings, pairs(c.meetings_by_state.iter().cloned()));
    let _ = writeln!(s, "terminated    {}", pairs(c.terminated_by_reason.iter().cloned()));
    let _ = writeln!(s, "timers        {} pending, next due {}", c.timers_pending, opt(c.next_timer_due));
    let _ = writeln!(s, "effects       {}", pairs(c.effects_by_status.iter().cloned()));
    let _ = writeln!(s, "dead letters  {} ({})", c.dead_letters, pairs(c.dead_letters_by_kind.iter().cloned()));
    s
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
pub fn status(st: &Status, now: Timestamp) -> String {
    let mut s = String::new();
    for line in counts(&st.counts).lines() {
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
                    e.kind(),
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
        let lease = st.leases.iter().find(|l| l.stream_arn == c.stream_arn && l.shard_id == c.shard_id);
        let reader = match lease {
            Some(l) if l.owner.is_some() && !l.expired => {
                format!(", read by {} (lease epoch {})", l.owner.as_deref().unwrap_or("-"), l.epoch)
            }
            Some(l) if l.owner.is_some() => {
                format!(", lease of {} expired {}", l.owner.as_deref().unwrap_or("-"), ago(now, l.expires_at))
            }
            Some(_) if !c.closed => ", lease free".to_string(),
            _ => String::new(),
        };
        let _ = writeln!(s, "  {}  at {position}, {} records, {state}{reader}", c.shard_id, c.records);
    }
    if !st.workers.is_empty() {
        let live = st.workers.iter().filter(|w| w.live).count();
        let _ = writeln!(s, "workers       {live} live of {} known", st.workers.len());
        for w in &st.workers {
            let held: Vec<&str> = st
                .leases
                .iter()
                .filter(|l| !l.expired && l.owner.as_deref() == Some(w.info.id.as_str()))
                .map(|l| l.shard_id.as_str())
                .collect();
            let _ = writeln!(
                s,
                "  {}  {} (host {}, pid {}), seen {}{}",
                w.info.id,
                if w.live { "live" } else { "gone" },
                if w.info.host.is_empty() { "-" } else { w.info.host.as_str() },
                w.info.pid,
                ago(now, w.last_seen),
                if held.is_empty() { String::new() } else { format!(", reads {}", held.join(", ")) }
            );
        }
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
    if !st.sweep_log.is_empty() {
        let _ = writeln!(s, "orphan sweep  latest {} finding(s), newest first:", st.sweep_log.len());
        for f in &st.sweep_log {
            let _ = writeln!(s, "  {}  {} {} (tag {}): {}", f.at, f.action, f.instance_id, f.meeting_id, f.detail);
        }
    }
    s
}

/// What `spindown sweep` found.
pub fn sweep_report(r: &spindown::sweep::SweepReport, dry_run: bool) -> String {
    let mut s = format!(
        "{} tagged instance(s) pending or running; {} left alone (meeting running or ended within the grace){}\n",
        r.seen,
        r.left_alone,
        if dry_run { "; dry run: nothing changed" } else { "" }
    );
    if !r.findings.is_empty() {
        let rows: Vec<Vec<String>> = r
            .findings
            .iter()
            .map(|f| {
                vec![
                    f.action.to_string(),
                    f.instance_id.clone(),
                    f.meeting_id.clone(),
                    opt(f.launched_at),
                    f.detail.clone(),
                ]
            })
            .collect();
        s.push_str(&table(&["ACTION", "INSTANCE", "MEETING_TAG", "LAUNCHED", "DETAIL"], &rows));
    }
    s
}

/// What `replay` says on stderr when it is done.
pub fn replay_summary(name: &str, s: &ReplaySummary, c: &Counts) -> String {
    let e = s.total();
    let mut out = format!(
        "{name}: {} lines, {} records applied ({} duplicates, {} after termination), {} dead letters ({})\n",
        s.lines,
        e.records,
        e.duplicates,
        e.ignored,
        e.dead_letter_total(),
        pairs(e.dead_letters.iter()),
    );
    let _ = writeln!(
        out,
        "{} meetings ({}); terminated by reason: {}",
        c.meetings,
        pairs(c.meetings_by_state.iter().cloned()),
        pairs(c.terminated_by_reason.iter().cloned()),
    );
    let _ = writeln!(
        out,
        "{} timers fired, {} still pending; {} effects run (dry run); clock stopped at {}",
        e.timers_fired,
        c.timers_pending,
        e.effects_completed,
        opt(s.clock)
    );
    if s.after_until > 0 {
        let _ = writeln!(out, "{} records after --until were not applied", s.after_until);
    }
    out
}

/// What `ingest` says when it is done.
pub fn ingest_summary(name: &str, lines: u64, r: &Report) -> String {
    format!(
        "{name}: {lines} lines, {} records applied ({} duplicates, {} after termination, {} new meetings), {} dead letters, {} timers fired, {} effects queued\n",
        r.records,
        r.duplicates,
        r.ignored,
        r.created,
        r.dead_letter_total(),
        r.timers_fired,
        r.effects_queued
    )
}

/// What `terminate` and `schedule` say.
pub fn command_result(r: &CommandResult) -> String {
    let mut s = format!("{}: {} ({})\n", r.meeting_id, r.state, r.outcome);
    for n in &r.notes {
        let _ = writeln!(s, "  {n}");
    }
    s
}

/// `whatif`'s table: one row per model, numbers right-aligned, each with its
/// difference from the first model; then the horizon and the price.
pub fn whatif_table(summaries: &[spindown::whatif::Summary]) -> String {
    let (columns, rows) = spindown::whatif::table::table(summaries);
    let header: Vec<String> =
        columns.iter().map(|c| c.header.to_uppercase().replace([' ', '-'], "_").replace(['(', ')'], "")).collect();
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| c.text()).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &cells {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths[i];
            if columns[i].numeric {
                let _ = write!(l, "{c:>w$}  ");
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for r in &cells {
        line(r);
    }
    if let Some(s) = summaries.first() {
        let _ = writeln!(
            out,
            "horizon {}; price {} USD per instance-hour; (differences from {})",
            opt(s.horizon.map(|h| h.to_rfc3339())),
            s.price,
            s.model
        );
    }
    out
}

/// What `whatif` says on stderr when it is done.
pub fn whatif_summary(name: &str, w: &spindown::whatif::WhatIf) -> String {
    let models: Vec<String> = w
        .models
        .iter()
        .map(|m| format!("{} {:.2} s ({} timers)", m.name, m.busy.as_secs_f64(), m.timers_fired))
        .collect();
    format!("{} — {}\n", read_summary(name, w), models.join(", "))
}

/// What `tune` says on stderr when it is done (dozens of models: their total).
pub fn tune_summary(
    name: &str,
    w: &spindown::whatif::WhatIf,
    t: &spindown::tune::TuneTimings,
    candidates: usize,
) -> String {
    format!(
        "{} — {candidates} candidates and the base, every meeting under each: {:.2} s ({:.2} s deciding), {} timers fired\n",
        read_summary(name, w),
        t.evaluate.as_secs_f64(),
        t.busy.as_secs_f64(),
        t.timers_fired
    )
}

fn read_summary(name: &str, w: &spindown::whatif::WhatIf) -> String {
    let r = &w.read;
    format!(
        "{name}: {} lines, {} records ({} duplicates), {} dead letters ({}); {} meetings; {:.2} s",
        r.lines,
        r.records,
        r.duplicates,
        r.dead(),
        pairs(r.dead_letters.iter()),
        w.meetings.len(),
        w.timings.run.as_secs_f64(),
    )
}

/// `tune`'s table: the frontier (with the base and the recommendation), by
/// instance-hours, each figure with its difference from the base.
pub fn tune_table(t: &spindown::tune::Tuned) -> String {
    let signed = |x: f64, d: usize| {
        if x.abs() < 0.5 * 10f64.powi(-(d as i32)) {
            "±0".to_string()
        } else if x > 0.0 {
            format!("+{x:.d$}")
        } else {
            format!("{x:.d$}")
        }
    };
    let rows: Vec<Vec<String>> = t
        .rows()
        .into_iter()
        .map(|r| {
            let mark = if r.recommended { " *" } else { "" };
            vec![
                format!("{}{mark}", r.name),
                if r.changes.is_empty() { "(base policy)".into() } else { r.changes.join(", ") },
                format!("{:.2} ({})", r.instance_hours.0, signed(r.instance_hours.1, 2)),
                format!("{:.2} ({})", r.cost_usd.0, signed(r.cost_usd.1, 2)),
                format!("{} ({})", r.cut_short.0, signed(r.cut_short.1 as f64, 0)),
                format!("{} ({})", r.running.0, signed(r.running.1 as f64, 0)),
            ]
        })
        .collect();
    let mut out =
        table(&["CANDIDATE", "CHANGES_FROM_BASE", "INSTANCE_HOURS", "COST_USD", "CUT_SHORT", "RUNNING"], &rows);
    let _ = writeln!(
        out,
        "the frontier of {} candidates and the base on {} tuning meetings{}; * recommended (budget: {} cut short); horizon {}; price {} USD per instance-hour; (differences from the base)",
        t.lines.len() - 1,
        t.tuning_meetings,
        if t.held_out > 0 { format!(" ({} held out)", t.held_out) } else { String::new() },
        t.budget,
        opt(t.horizon.map(|h| h.to_rfc3339())),
        t.price,
    );
    out
}
