//! Meetings through their lives on moto, and the checks that they ended right.

use spindown::inspect::MeetingStore;
use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue as V;
use spindown::meeting::history::Outcome;
use spindown::meeting::State;
use spindown::store::{EffectStatus, Store};
use spindown::time::{Span, Timestamp};

use super::aws::Aws;

/// The spec's policy in seconds, for live scenarios.
pub const POLICY: &str = r#"
safety_net_delay = "4s"
min_success_duration = "4s"
keepalive_recheck = "3s"
max_lifetime = "16s"
overrun_grace = "2s"
"#;

/// What happens to a meeting's row, and when (seconds from its start).
#[derive(Debug, Clone)]
pub enum Op {
    Put { status: &'static str, legacy: bool, duration: Option<&'static str> },
    Set(&'static str, &'static str),
    Delete,
}

#[derive(Clone)]
pub struct Plan {
    pub id: String,
    pub kind: &'static str,
    pub start: Timestamp,
    pub ops: Vec<(f64, Op)>,
    pub teacher: String,
    pub student: String,
    /// The student instance is tagged for another meeting: it must keep running.
    pub foreign_student: bool,
}

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn plan_ops(kind: usize) -> (&'static str, Vec<(f64, Op)>) {
    use Op::*;
    let put = |status| Put { status, legacy: false, duration: None };
    match kind {
        0 => ("no-show", vec![(-2.0, put("SCHEDULED"))]),
        1 => ("partial", vec![(-2.0, put("SCHEDULED")), (1.5, Set("teacher_session_data", "t"))]),
        2 => (
            "complete-early",
            vec![
                (-2.0, put("IN_PROGRESS")),
                (1.5, Set("teacher_session_data", "t")),
                (1.6, Set("student_session_data", "s")),
            ],
        ),
        3 => (
            "success",
            vec![
                (-2.0, put("IN_PROGRESS")),
                (5.4, Set("teacher_session_data", "t")),
                (5.5, Set("student_session_data", "s")),
            ],
        ),
        4 => ("cancelled", vec![(-2.0, put("SCHEDULED")), (1.5, Delete)]),
        5 => ("external", vec![(-2.0, put("SCHEDULED")), (1.5, Set("status", "TERMINATED"))]),
        6 => ("keepalive-cap", vec![(-2.0, put("IN_PROGRESS"))]),
        7 => ("keepalive-leave", vec![(-2.0, put("IN_PROGRESS")), (5.5, Set("status", "SCHEDULED"))]),
        8 => ("moved", vec![(-2.0, put("SCHEDULED")), (-1.0, Set("meet_time", "+5"))]),
        9 => ("declared", vec![(-2.0, Put { status: "IN_PROGRESS", legacy: false, duration: Some("0.1") })]),
        10 => ("legacy", vec![(-2.0, Put { status: "SCHEDULED", legacy: true, duration: None })]),
        11 => ("missing-teacher", vec![(-2.0, put("SCHEDULED"))]),
        _ => ("late-seen", vec![(6.0, put("SCHEDULED"))]),
    }
}

pub async fn apply_op(aws: &Aws, p: &Plan, op: &Op) {
    match op {
        Op::Put { status, legacy, duration } => {
            let mut item = vec![
                ("id", V::S(p.id.clone())),
                ("status", V::S(status.to_string())),
                ("teacher_ec2_id", V::S(p.teacher.clone())),
                ("student_ec2_id", V::S(p.student.clone())),
            ];
            if *legacy {
                item.push(("created_at", V::S(p.start.to_rfc3339())));
            } else {
                item.push(("meet_time", V::S(p.start.to_rfc3339())));
                item.push(("created_at", V::S(p.start.saturating_add(Span::from_hours(-2)).to_rfc3339())));
            }
            if let Some(d) = duration {
                item.push(("duration_minutes", V::N(d.to_string())));
            }
            aws.put(&item).await;
        }
        Op::Set("meet_time", shift) => {
            let secs: i64 = shift.trim_start_matches('+').parse().unwrap();
            aws.set(&p.id, "meet_time", V::S(p.start.saturating_add(Span::from_secs(secs)).to_rfc3339())).await;
        }
        Op::Set(attr, v) => aws.set(&p.id, attr, V::S(v.to_string())).await,
        Op::Delete => aws.delete(&p.id).await,
    }
}

/// Create `n` meetings (every kind in turn) with their instances, starting
/// from `t0` and spread over `spread` seconds; plus `unrelated` instances.
pub async fn meetings(aws: &Aws, n: usize, t0: Timestamp, spread: f64) -> Vec<Plan> {
    let mut plans = Vec::with_capacity(n);
    for i in 0..n {
        let (kind, ops) = plan_ops(i % 13);
        let id = format!("m-{i:05}");
        let teacher =
            if kind == "missing-teacher" { "i-0123456789abcdef0".to_string() } else { aws.instance(&id).await };
        let foreign_student = i % 26 == 0;
        let student = aws.instance(if foreign_student { "someone-else" } else { &id }).await;
        let start = t0.saturating_add(Span::from_micros((spread * 1e6 * i as f64 / n as f64) as i64));
        plans.push(Plan { id, kind, start, ops, teacher, student, foreign_student });
    }
    plans
}

/// Every row change, in time order: (when, plan index, op index).
pub fn timeline(plans: &[Plan]) -> Vec<(Timestamp, usize, usize)> {
    let mut t: Vec<_> = plans
        .iter()
        .enumerate()
        .flat_map(|(pi, p)| {
            p.ops
                .iter()
                .enumerate()
                .map(move |(oi, (at, _))| (p.start.saturating_add(Span::from_micros((at * 1e6) as i64)), pi, oi))
        })
        .collect();
    t.sort();
    t
}

/// Write every row change at its time.
pub fn spawn_writer(aws: &Aws, plans: &[Plan]) -> tokio::task::JoinHandle<()> {
    let (aws, plans) = (aws.clone(), plans.to_vec());
    tokio::spawn(async move {
        for (at, pi, oi) in timeline(&plans) {
            super::process::sleep_until(at).await;
            apply_op(&aws, &plans[pi], &plans[pi].ops[oi].1).await;
        }
    })
}

/// When the last meeting of these plans ends at the latest (cap + margin).
pub fn end_of_life(plans: &[Plan]) -> Timestamp {
    plans.iter().map(|p| p.start).max().unwrap_or(Timestamp::EPOCH).saturating_add(Span::from_secs(18))
}

/// Wait until every meeting is terminated and no effect is pending.
pub async fn converge(store: &dyn Store, n: usize, within: std::time::Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let c = store.counts().await.unwrap();
        if c.in_state(State::Terminated) == n as i64 && c.meetings == n as i64 && c.effects(EffectStatus::Pending) == 0
        {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no convergence: {c:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// What the checks counted.
#[derive(Debug, Default)]
pub struct Checked {
    pub by_reason: BTreeMap<String, usize>,
    pub records: usize,
    pub terminated_instances: usize,
    pub left_running: usize,
    /// Timer fires in all the histories (each checked to be the only fire of its timer).
    pub timer_fires: usize,
    /// The latest any timer fired.
    pub max_lateness: Span,
    /// Meetings that ended otherwise than replay because the worker was down
    /// when their timer was due, and why.
    pub late_outcomes: Vec<String>,
}

/// The lateness beyond which a timer that fires late may legitimately end a
/// meeting otherwise than replay under [`POLICY`]: a safety net that finds a
/// meeting `InProgress` arms its re-check at the instant it *fired* plus
/// `keepalive_recheck` (the spec), and once that lands after the cap the cap
/// ends the meeting first — late by more than `max_lifetime −
/// safety_net_delay − keepalive_recheck` = 16 − 4 − 3 s.
pub const DOWNTIME_SLACK: Span = Span::from_secs(9);

/// Whether a live story that ended otherwise than replay is explained by a
/// worker that was down: nothing lost (every stream record of the meeting is
/// in the story, none applied twice), nothing out of order (no timer fired
/// before a record with an earlier event time), and a timer fired more than
/// [`DOWNTIME_SLACK`] late.
fn explained_by_downtime(
    meeting: &str,
    story: &[spindown::meeting::HistoryRecord],
    events: &BTreeMap<String, (String, Timestamp)>,
) -> Result<String, String> {
    use spindown::meeting::history::Cause;
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut applied: BTreeMap<&str, usize> = BTreeMap::new();
    let mut fired: Vec<(Timestamp, Span)> = Vec::new();
    for h in story {
        match &h.entry.cause {
            Cause::Record { event_id: Some(e), .. } => {
                *seen.entry(e).or_default() += 1;
                *applied.entry(e).or_default() += 1;
                let (_, at) = events.get(e).ok_or_else(|| format!("record {e} is not on the stream"))?;
                if let Some((due, _)) = fired.iter().find(|(due, _)| due > at) {
                    return Err(format!("record {e} (event time {at}) applied after a timer due {due}"));
                }
            }
            Cause::Duplicate { event_id, .. } => *seen.entry(event_id).or_default() += 1,
            Cause::Timer { due, .. } => fired.push((*due, h.entry.lateness.unwrap_or_default())),
            _ => {}
        }
    }
    for (e, (id, _)) in events {
        if id == meeting && !seen.contains_key(e.as_str()) {
            return Err(format!("record {e} is missing from the story"));
        }
    }
    if let Some((e, n)) = applied.iter().find(|(_, n)| **n > 1) {
        return Err(format!("record {e} applied {n} times"));
    }
    match fired.iter().max_by_key(|(_, late)| *late) {
        Some((due, late)) if *late > DOWNTIME_SLACK => Ok(format!("its timer due {due} fired {late} late")),
        _ => Err(format!("no timer fired more than {DOWNTIME_SLACK} late")),
    }
}

/// The checks: outcomes equal `spindown replay` of the stream's records, the
/// instances, the write-backs, one termination per history, a sound file.
pub async fn check(
    aws: &Aws,
    store: &dyn Store,
    plans: &[Plan],
    unrelated: &[String],
    dir: &std::path::Path,
) -> Checked {
    let mut out = Checked::default();
    let lines = aws.stream_lines().await;
    out.records = lines.len();
    let file = dir.join("stream.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let policy = dir.join("check-policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let replayed = super::outcomes(&super::run_ok(
        super::spindown().arg("replay").arg(&file).arg("--policy").arg(&policy).arg("--json"),
    ));
    // Each record's meeting and event time, by eventID.
    let mut events: BTreeMap<String, (String, Timestamp)> = BTreeMap::new();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let id = v["dynamodb"]["Keys"]["id"]["S"].as_str().unwrap().to_string();
        let at = Timestamp::from_epoch_seconds(v["dynamodb"]["ApproximateCreationDateTime"].as_f64().unwrap()).unwrap();
        events.insert(v["eventID"].as_str().unwrap().to_string(), (id, at));
    }
    let mut mismatches = Vec::new();
    for p in plans {
        let m =
            store.meeting(&p.id.parse().unwrap()).await.unwrap().unwrap_or_else(|| panic!("{} missing", p.id)).meeting;
        let ended = m.ended.unwrap_or_else(|| panic!("{} not terminated", p.id));
        *out.by_reason.entry(ended.reason.to_string()).or_default() += 1;
        let story = store.history(&m.id).await.unwrap();
        let worst = story.iter().filter_map(|h| h.entry.lateness).max().unwrap_or_default();
        out.max_lateness = out.max_lateness.max(worst);
        let r = &replayed[&p.id];
        if r["state"] == "Terminated" && r["reason"] == ended.reason.as_str() {
            continue;
        }
        match explained_by_downtime(&p.id, &story, &events) {
            Ok(why) => out
                .late_outcomes
                .push(format!("{} ({}): {} instead of {}: {why}", p.id, p.kind, ended.reason, r["reason"])),
            Err(why) => {
                let story: Vec<String> =
                    story.iter().map(|h| format!("    {}", serde_json::to_string(&h.entry).unwrap())).collect();
                mismatches.push(format!(
                    "{} ({}): live {} / replay {} {} ({why})\n{}",
                    p.id,
                    p.kind,
                    ended.reason,
                    r["state"],
                    r["reason"],
                    story.join("\n")
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} meetings differ from replay:\n{}",
        mismatches.len(),
        plans.len(),
        mismatches.join("\n")
    );

    for p in plans {
        if p.kind != "missing-teacher" {
            assert_eq!(aws.state(&p.teacher).await, "terminated", "{} ({}) teacher", p.id, p.kind);
            out.terminated_instances += 1;
        }
        let s = aws.state(&p.student).await;
        if p.foreign_student {
            assert_eq!(s, "running", "{}: an instance tagged for another meeting was touched", p.id);
            out.left_running += 1;
        } else {
            assert_eq!(s, "terminated", "{} ({}) student", p.id, p.kind);
            out.terminated_instances += 1;
        }
    }
    for u in unrelated {
        assert_eq!(aws.state(u).await, "running", "an unrelated instance was touched");
        out.left_running += 1;
    }

    for p in plans {
        let m = store.meeting(&p.id.parse().unwrap()).await.unwrap().unwrap().meeting;
        let ended = m.ended.unwrap();
        let item = aws.item(&p.id).await;
        match ended.reason.as_str() {
            "CANCELLED" => assert_eq!(item, None, "{}: a deleted row was recreated", p.id),
            "EXTERNAL" => assert!(!item.unwrap().contains_key("termination_reason"), "{}: EXTERNAL written back", p.id),
            reason => {
                let item = item.unwrap();
                assert_eq!(item["status"], "TERMINATED", "{}", p.id);
                assert_eq!(item["termination_reason"], reason, "{}", p.id);
                assert_eq!(item["terminated_at"], ended.at.to_rfc3339(), "{}", p.id);
            }
        }
        let h = store.history(&p.id.parse().unwrap()).await.unwrap();
        let ends = h.iter().filter(|h| h.entry.outcome == Outcome::Terminated).count();
        assert_eq!(ends, 1, "{}: {ends} terminations in its history", p.id);
        // Every timer fired once: no (kind, due) twice in a story.
        let mut fired = std::collections::BTreeSet::new();
        for e in &h {
            if let spindown::meeting::history::Cause::Timer { kind, due } = &e.entry.cause {
                assert!(fired.insert((kind.to_string(), *due)), "{}: timer {kind} due {due} fired twice", p.id);
                out.timer_fires += 1;
            }
        }
    }
    out
}
