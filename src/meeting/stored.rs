//! The meeting as the store keeps it, and the typed read models over the
//! store's generic rows.
//!
//! The store keeps a meeting as generic columns (state name, end reason
//! and instant, pending timers as tie ranks, search attributes) and the
//! meeting itself as a document it never reads ([`Durable`]). This module
//! is where that document is written and read, where an outbox row's
//! parts and a history chunk's entries are decoded, and where the
//! operator's views — a meeting, its history, its timers, the outbox,
//! the counts, `replay --json`'s outcome lines — are built from the rows
//! (typed rows; the async read models over a [`Store`](crate::store::Store)
//! are [`MeetingStore`](crate::inspect::MeetingStore), outside the pure model).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::history::{self, Cause, Chunk, Entry, Note, Outcome};
use super::record::{Item, RecordError};
use super::{
    Effect, EffectKind, Ended, EventName, Facts, Hold, Input, InstanceId, Meeting, MeetingId, MeetingWorkflow, Reason,
    Rejection, State, Step, TimerKey, TimerKind, Timers, SEARCH_INSTANCE,
};
use crate::machine::{Durable, Letter, Opened, Took};
use crate::store::copy::Decoder;
use crate::store::{
    DueKey, EffectStatus, HistoryAppend, OutboxFilter, OutboxOutcome, OutboxRow, StoreError, StoredInstance, Summary,
};
use crate::time::{Span, Timestamp};

/// A meeting as stored: the model's meeting and the `eventID`s it applied
/// (a redelivered record is recognised by its meeting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMeeting {
    pub meeting: Meeting,
    pub event_ids: Vec<String>,
}

// ---------------------------------------------------------------------------
// The document.

/// A meeting's document: a JSON array in this order (migration
/// `0010_generic_rows` writes the same from the columns of older rows).
type DocOut<'a> = (
    &'static str,
    Option<&'static str>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<&'a str>,
    u8,
    u8,
    &'a BTreeSet<InstanceId>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// The document as read: the sixteen values, then (a meeting an operator
/// extended or held; older documents stop at sixteen) its extension, its
/// hold's end and the timers the hold moved.
#[derive(serde::Deserialize)]
struct DocIn(
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
    #[serde(default)] Option<(Option<i64>, Option<i64>, Vec<String>)>,
);

fn us(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::as_micros)
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_micros)
}

/// A meeting as its document.
pub fn encode(m: &Meeting) -> String {
    let doc: DocOut<'_> = (
        m.state.as_str(),
        m.ended.map(|e| e.reason.as_str()),
        us(m.ended.map(|e| e.at)),
        us(m.facts.meet_time),
        us(m.facts.created_at),
        m.facts.duration.map(Span::as_micros),
        m.facts.status.as_deref(),
        u8::from(m.facts.teacher_data),
        u8::from(m.facts.student_data),
        &m.instances,
        m.created.as_micros(),
        m.version,
        us(m.timers.safety_net),
        us(m.timers.recheck),
        us(m.timers.cap),
        us(m.timers.fixed),
    );
    let mut out = serde_json::to_string(&doc).expect("a meeting serializes");
    if m.extended_until.is_some() || m.hold.is_some() {
        let moved: Vec<&str> =
            m.hold.as_ref().map(|h| h.moved.iter().map(|k| k.as_str()).collect()).unwrap_or_default();
        let kept = (us(m.extended_until), us(m.hold.as_ref().map(|h| h.until)), moved);
        out.pop(); // the closing bracket
        out.push(',');
        out.push_str(&serde_json::to_string(&kept).expect("numbers and names serialize"));
        out.push(']');
    }
    out
}

/// The meeting [`encode`] wrote for `id`.
///
/// # Errors
///
/// What is wrong with the document.
pub fn decode(id: &str, doc: &str) -> Result<Meeting, String> {
    let d: DocIn = serde_json::from_str(doc).map_err(|e| e.to_string())?;
    let DocIn(
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
        kept,
    ) = d;
    let (extended_until, hold) = match kept {
        None => (None, None),
        Some((extended, held, moved)) => {
            let moved =
                moved.iter().map(|k| k.parse::<TimerKind>().map_err(|e| e.to_string())).collect::<Result<_, _>>()?;
            (ts(extended), ts(held).map(|until| Hold { until, moved }))
        }
    };
    let ended = match (reason, terminated_at) {
        (Some(r), Some(at)) => {
            Some(Ended { reason: r.parse::<Reason>().map_err(|e| e.to_string())?, at: Timestamp::from_micros(at) })
        }
        (None, None) => None,
        _ => return Err("reason and terminated_at disagree".into()),
    };
    let instances = instances
        .into_iter()
        .map(|i| InstanceId::try_from(i).map_err(|e| e.to_string()))
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok(Meeting {
        id: MeetingId::new(id).ok_or("an empty meeting id")?,
        facts: Facts {
            meet_time: ts(meet_time),
            created_at: ts(created_at),
            duration: duration.map(Span::from_micros),
            status,
            teacher_data: teacher != 0,
            student_data: student != 0,
        },
        instances,
        state: state.parse::<State>().map_err(|e| e.to_string())?,
        ended,
        timers: Timers { safety_net: ts(safety_net), recheck: ts(recheck), cap: ts(cap), fixed: ts(fixed) },
        created: Timestamp::from_micros(first_seen),
        version,
        extended_until,
        hold,
    })
}

impl Durable for MeetingWorkflow {
    type Id = MeetingId;
    type Effect = Effect;
    type Entry = Entry;
    type Item = Item;
    const NOUN: &'static str = "meeting";

    fn id(m: &Meeting) -> &MeetingId {
        &m.id
    }

    fn parse_id(id: &str) -> Option<MeetingId> {
        MeetingId::new(id)
    }

    fn subject(input: &Input) -> Option<&MeetingId> {
        match input {
            Input::Record(change) => Some(&change.meeting_id),
            _ => None,
        }
    }

    fn event_time(input: &Input) -> Option<Timestamp> {
        match input {
            Input::Record(change) => change.event_time,
            _ => None,
        }
    }

    fn open(item: Item) -> Opened<Self> {
        match item {
            Item::Record(d) => Opened::Input { input: Input::Record(d.change), raw: d.raw },
            Item::Dead(d) => Opened::Dead(Letter {
                kind: d.reason.kind(),
                reason: d.reason.to_string(),
                event_id: d.event_id,
                raw: d.raw,
            }),
        }
    }

    fn refusal(rejection: Rejection) -> (&'static str, String) {
        if let Rejection::Refused(why) = rejection {
            return ("refused", why);
        }
        let e = RecordError::Rejected(rejection);
        (e.kind(), e.to_string())
    }

    fn took(step: Step, input: &Input, now: Timestamp) -> Took<Self> {
        let Step { meeting, from, outcome, effects, timers: _, notes } = step;
        let reason = (outcome == Outcome::Terminated).then(|| meeting.ended.map(|e| e.reason)).flatten();
        let (cause, lateness) = match input {
            Input::Record(c) => (Cause::Record { event: c.event_name, event_id: c.event_id.clone() }, None),
            Input::Timer { kind, due } => (Cause::Timer { kind: *kind, due: *due }, Some(now.since(*due))),
            Input::Command(c) => (Cause::Command(c.kind()), None),
        };
        let entry = Entry { at: now, cause, from, to: Some(meeting.state), outcome, reason, lateness, notes };
        Took { state: meeting, entry, effects, changed: outcome != Outcome::Ignored, ended: reason.map(Reason::as_str) }
    }

    fn duplicate(m: &Meeting, input: &Input, key: &str, now: Timestamp) -> Entry {
        let event = match input {
            Input::Record(c) => c.event_name,
            // (Only records carry a dedupe key.)
            _ => EventName::Modify,
        };
        Entry {
            at: now,
            cause: Cause::Duplicate { event, event_id: key.to_string() },
            from: Some(m.state),
            to: Some(m.state),
            outcome: Outcome::Ignored,
            reason: None,
            lateness: None,
            notes: vec![Note::Duplicate { event_id: key.to_string() }],
        }
    }

    /// One outbox row per termination: `{id}/end`.
    fn outbox(m: &Meeting, effects: &[Effect]) -> (String, String) {
        (format!("{}/end", m.id), encode_parts(effects))
    }

    fn encode(m: &Meeting) -> String {
        encode(m)
    }

    fn decode(id: &str, doc: &str) -> Result<Meeting, String> {
        decode(id, doc)
    }

    fn state_name(m: &Meeting) -> &'static str {
        m.state.as_str()
    }

    fn ended(m: &Meeting) -> Option<(&'static str, Timestamp)> {
        m.ended.map(|e| (e.reason.as_str(), e.at))
    }

    fn rank(kind: TimerKind) -> u8 {
        kind.rank()
    }

    fn timer(rank: u8) -> Option<TimerKind> {
        TimerKind::from_rank(i64::from(rank))
    }

    fn timer_name(kind: TimerKind) -> &'static str {
        kind.as_str()
    }

    fn search(m: &Meeting, found_by: &mut Vec<(&'static str, String)>) {
        found_by.extend(m.search_attributes());
    }

    /// Instance ids are only ever added, and the start moves: their count
    /// and the start say whether the attributes changed.
    fn search_stamp(m: &Meeting) -> u128 {
        let (n, start, held) = m.search_stamp();
        let start = start.map_or(0, |t| (1u128 << 64) | u128::from(t.as_micros() as u64));
        let stamp = ((n as u128) << 65) | start;
        // A hold (rare) flips the top bit and mixes in its end.
        held.map_or(stamp, |t| stamp ^ (1u128 << 127) ^ (u128::from(t.as_micros() as u64) << 62))
    }

    fn span(id: &MeetingId, input: &Input, lateness: Option<Span>) -> tracing::Span {
        match input {
            Input::Record(c) => tracing::info_span!(
                "record",
                meeting_id = %id,
                event_id = c.event_id.as_deref().unwrap_or(""),
                event = %c.event_name,
            ),
            Input::Timer { kind, .. } => tracing::info_span!(
                "timer",
                meeting_id = %id,
                kind = %kind,
                lateness_ms = lateness.unwrap_or_default().as_micros() / 1000,
            ),
            Input::Command(c) => tracing::info_span!("command", meeting_id = %id, command = %c.kind()),
        }
    }
}

fn corrupt(what: impl std::fmt::Display, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// A stored row as a meeting, with the row's version.
///
/// # Errors
///
/// The row's document is not a meeting.
pub fn versioned(row: StoredInstance) -> Result<(StoredMeeting, i64), StoreError> {
    let version = row.version;
    Ok((meeting_of(row)?, version))
}

/// A stored row as a meeting.
///
/// # Errors
///
/// The row's document is not a meeting.
pub fn meeting_of(row: StoredInstance) -> Result<StoredMeeting, StoreError> {
    let meeting = decode(&row.id, &row.doc).map_err(|e| corrupt(format!("meeting {}", row.id), e))?;
    Ok(StoredMeeting { meeting, event_ids: row.keys })
}

/// A stored timer as the meeting's.
///
/// # Errors
///
/// No timer kind has the stored rank, or the id is empty.
pub fn timer_of(key: DueKey) -> Result<TimerKey, StoreError> {
    let kind = TimerKind::from_rank(i64::from(key.rank))
        .ok_or_else(|| corrupt("timer", format!("no timer kind has rank {}", key.rank)))?;
    let meeting_id = MeetingId::new(key.id).ok_or_else(|| corrupt("timer", "an empty meeting id"))?;
    Ok(TimerKey { due: key.due, kind, meeting_id })
}

/// A meeting's timer as the store keys it.
pub fn due_key(key: &TimerKey) -> DueKey {
    DueKey { due: key.due, rank: key.kind.rank(), id: key.meeting_id.to_string() }
}

/// How `spindown migrate` copies meetings: re-indexed from their documents,
/// chunks counted by their entries.
pub const DECODER: Decoder = Decoder {
    index: |row| {
        let m = decode(&row.id, &row.doc).map_err(|e| corrupt(format!("meeting {}", row.id), e))?;
        Ok(MeetingWorkflow::index(&m))
    },
    entries: |bytes| Ok(history::decode(bytes).map_err(|e| corrupt("history", e))?.len()),
};

// ---------------------------------------------------------------------------
// Effects.

#[derive(Serialize)]
enum PartOut<'a> {
    Terminate { instances: &'a [InstanceId] },
    WriteBack { reason: Reason, terminated_at: i64 },
}

#[derive(Deserialize)]
enum PartIn {
    Terminate { instances: Vec<InstanceId> },
    WriteBack { reason: Reason, terminated_at: Instant },
}

/// An instant as stored: microseconds, or RFC 3339 text from older rows.
#[derive(Deserialize)]
#[serde(untagged)]
enum Instant {
    Micros(i64),
    Text(Timestamp),
}

/// Effect parts as a JSON array, exactly.
///
/// An effect's parts are kept as JSON so that an operator can read them with
/// the database's own tools, but JSON is where the model's human-readable
/// serialisation would round instants to the millisecond (the output rule).
/// Stored parts must come back exactly as they were queued — the write-back
/// writes `terminated_at` as the meeting's `show` prints it — so instants are
/// stored as integer microseconds. Rows written before this encoding (RFC
/// 3339 text, from migration 0005) still decode.
pub fn encode_parts(parts: &[Effect]) -> String {
    let out: Vec<PartOut<'_>> = parts
        .iter()
        .map(|p| match p {
            Effect::Terminate { instances } => PartOut::Terminate { instances },
            Effect::WriteBack { reason, terminated_at } => {
                PartOut::WriteBack { reason: *reason, terminated_at: terminated_at.as_micros() }
            }
        })
        .collect();
    serde_json::to_string(&out).expect("effect parts serialize")
}

/// The parts [`encode_parts`] wrote (or an older row held).
///
/// # Errors
///
/// The text is not a list of effects.
pub fn decode_parts(text: &str) -> Result<Vec<Effect>, StoreError> {
    let parts: Vec<PartIn> = serde_json::from_str(text).map_err(|e| corrupt(format!("effect parts {text:?}"), e))?;
    Ok(parts
        .into_iter()
        .map(|p| match p {
            PartIn::Terminate { instances } => Effect::Terminate { instances },
            PartIn::WriteBack { reason, terminated_at } => Effect::WriteBack {
                reason,
                terminated_at: match terminated_at {
                    Instant::Micros(us) => Timestamp::from_micros(us),
                    Instant::Text(t) => t,
                },
            },
        })
        .collect())
}

/// An outbox row as read back, its parts decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectRow {
    /// The id operators use (`spindown retry ID`).
    pub id: i64,
    pub key: String,
    pub meeting_id: MeetingId,
    /// The effects, run in order.
    pub parts: Vec<Effect>,
    /// How many of `parts` are done.
    pub done: usize,
    pub status: EffectStatus,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl EffectRow {
    /// The part to run next (`None` once all are done).
    pub fn current(&self) -> Option<&Effect> {
        self.parts.get(self.done)
    }

    /// The kind of the part to run next, or of the last part once done.
    pub fn kind(&self) -> EffectKind {
        self.current().or(self.parts.last()).map_or(EffectKind::Terminate, Effect::kind)
    }

    /// The row as the store keeps it.
    pub fn to_outbox(&self) -> OutboxRow {
        OutboxRow {
            id: self.id,
            key: self.key.clone(),
            subject: self.meeting_id.to_string(),
            parts: encode_parts(&self.parts),
            done: self.done,
            status: self.status,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A stored outbox row with its parts decoded.
///
/// # Errors
///
/// The parts or the subject are not a meeting's.
pub fn effect_of(r: OutboxRow) -> Result<EffectRow, StoreError> {
    Ok(EffectRow {
        id: r.id,
        meeting_id: MeetingId::new(r.subject).ok_or_else(|| corrupt("effect", "an empty meeting id"))?,
        parts: decode_parts(&r.parts)?,
        key: r.key,
        done: r.done,
        status: r.status,
        attempts: r.attempts,
        next_attempt_at: r.next_attempt_at,
        last_error: r.last_error,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

/// What one attempt at an effect did, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectOutcome {
    pub id: i64,
    pub meeting_id: MeetingId,
    /// Parts done after the attempt.
    pub done: usize,
    pub status: EffectStatus,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub at: Timestamp,
    /// Entries for the meeting's history: one per part attempted.
    pub history: Vec<Entry>,
}

/// A meeting's history entries as the store appends them.
pub fn append(id: &MeetingId, chunk: Chunk) -> HistoryAppend {
    chunk.append_to(id.as_str())
}

impl From<&EffectOutcome> for OutboxOutcome {
    fn from(o: &EffectOutcome) -> Self {
        OutboxOutcome {
            id: o.id,
            subject: o.meeting_id.to_string(),
            done: o.done,
            status: o.status,
            attempts: o.attempts,
            next_attempt_at: o.next_attempt_at,
            last_error: o.last_error.clone(),
            at: o.at,
            history: append(&o.meeting_id, o.history.iter().cloned().collect()),
        }
    }
}

// ---------------------------------------------------------------------------
// The read models.

/// A history entry as read back; `seq` orders entries across meetings
/// (entries written together share it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRecord {
    pub seq: i64,
    pub entry: Entry,
}

/// Which meetings to list.
#[derive(Debug, Clone, Default)]
pub struct MeetingFilter {
    pub state: Option<State>,
    pub reason: Option<Reason>,
    /// Only meetings whose id sorts after this one (keyset paging).
    pub after: Option<MeetingId>,
    pub limit: Option<usize>,
}

/// Which timers to list.
#[derive(Debug, Clone)]
pub struct TimerFilter {
    pub meeting: Option<MeetingId>,
    pub limit: usize,
}

/// Which outbox rows to list.
#[derive(Debug, Clone, Default)]
pub struct EffectFilter {
    pub meeting: Option<MeetingId>,
    pub status: Option<EffectStatus>,
    pub id: Option<i64>,
}

impl From<&EffectFilter> for OutboxFilter {
    fn from(f: &EffectFilter) -> Self {
        OutboxFilter { subject: f.meeting.as_ref().map(MeetingId::to_string), status: f.status, id: f.id }
    }
}

/// Counts for summaries and `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub meetings: i64,
    pub meetings_by_state: Vec<(State, i64)>,
    pub terminated_by_reason: Vec<(Reason, i64)>,
    pub timers_pending: i64,
    /// Pending timers by kind (every kind, zeros included).
    pub timers_by_kind: Vec<(TimerKind, i64)>,
    pub next_timer_due: Option<Timestamp>,
    pub effects_by_status: Vec<(EffectStatus, i64)>,
    pub dead_letters: i64,
    pub dead_letters_by_kind: Vec<(String, i64)>,
}

impl Counts {
    pub fn in_state(&self, state: State) -> i64 {
        self.meetings_by_state.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n)
    }

    pub fn effects(&self, status: EffectStatus) -> i64 {
        self.effects_by_status.iter().find(|(s, _)| *s == status).map_or(0, |(_, n)| *n)
    }
}

/// Counts by name, in the names' own order.
pub(crate) fn parse_names<T: std::str::FromStr + Ord>(v: Vec<(String, i64)>) -> Result<Vec<(T, i64)>, StoreError>
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

/// The spec's per-meeting line (`spindown replay --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeLine {
    pub id: String,
    pub state: State,
    pub reason: Option<Reason>,
    pub terminated_at: Option<Timestamp>,
    pub terminated_instances: Vec<String>,
}

impl From<&Meeting> for OutcomeLine {
    fn from(m: &Meeting) -> Self {
        OutcomeLine {
            id: m.id.to_string(),
            state: m.state,
            reason: m.ended.map(|e| e.reason),
            terminated_at: m.ended.map(|e| e.at),
            terminated_instances: match m.ended {
                Some(_) => m.instances.iter().map(|i| i.to_string()).collect(),
                None => Vec::new(),
            },
        }
    }
}

pub fn outcome_of(s: Summary) -> Result<OutcomeLine, StoreError> {
    let ended = s.ended_at.is_some();
    Ok(OutcomeLine {
        state: s.state.parse().map_err(|e| corrupt("outcomes", e))?,
        reason: s.reason.map(|r| r.parse().map_err(|e| corrupt("outcomes", e))).transpose()?,
        terminated_at: s.ended_at,
        terminated_instances: if ended {
            s.attrs.into_iter().filter(|(n, _)| n == SEARCH_INSTANCE).map(|(_, v)| v).collect()
        } else {
            Vec::new()
        },
        id: s.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_come_back_to_the_microsecond() {
        let parts = vec![
            Effect::Terminate { instances: vec![InstanceId::parse("i-0123456789abcdef0").unwrap()] },
            Effect::WriteBack {
                reason: Reason::NoShowTimeout,
                terminated_at: Timestamp::from_micros(1_764_152_100_000_400),
            },
        ];
        let text = encode_parts(&parts);
        assert_eq!(decode_parts(&text).unwrap(), parts);
    }

    #[test]
    fn older_rows_with_text_instants_still_decode() {
        let old = r#"[{"WriteBack":{"reason":"MAX_LIFETIME","terminated_at":"2026-11-26T10:15:00.250Z"}}]"#;
        assert_eq!(
            decode_parts(old).unwrap(),
            vec![Effect::WriteBack {
                reason: Reason::MaxLifetime,
                terminated_at: "2026-11-26T10:15:00.250Z".parse().unwrap()
            }]
        );
    }

    #[test]
    fn a_damaged_row_is_named() {
        let e = decode_parts(r#"[{"Explode":{}}]"#).unwrap_err().to_string();
        assert!(e.contains("effect parts") && e.contains("Explode"), "{e}");
    }

    #[test]
    fn a_meeting_comes_back_from_its_document_exactly() {
        let mut m = Meeting::new(MeetingId::new("m-1").unwrap(), Timestamp::from_micros(1_764_100_000_123_456));
        m.facts.meet_time = Some(Timestamp::from_micros(1_764_152_100_000_001));
        m.facts.status = Some("IN_PROGRESS".into());
        m.facts.teacher_data = true;
        m.instances.insert(InstanceId::parse("i-0123456789abcdef0").unwrap());
        m.state = State::InProgress;
        m.timers.recheck = Some(Timestamp::from_micros(1_764_153_000_000_000));
        m.version = 3;
        let doc = encode(&m);
        assert_eq!(decode("m-1", &doc).unwrap(), m);
        assert_eq!(doc.matches(',').count(), 15, "sixteen values while nobody held or extended it: {doc}");
        // Held and extended: three more values, read back; the older form still reads.
        m.extended_until = Some(Timestamp::from_micros(1_764_160_000_000_000));
        m.hold = Some(Hold { until: Timestamp::from_micros(1_764_155_000_000_000), moved: vec![TimerKind::Recheck] });
        let kept = encode(&m);
        assert!(kept.ends_with(r#",[1764160000000000,1764155000000000,["recheck"]]]"#), "{kept}");
        assert_eq!(decode("m-1", &kept).unwrap(), m);
        m.state = State::Terminated;
        m.ended = Some(Ended { reason: Reason::Manual, at: Timestamp::from_micros(1_764_153_000_000_007) });
        assert_eq!(decode("m-1", &encode(&m)).unwrap(), m);
    }

    #[test]
    fn start_values_sort_as_the_instants_do() {
        use super::super::model::start_value;
        let ts = [0, 1, 999_999, 1_000_000, 1_764_152_100_000_000, 1_764_152_100_000_001, 1_764_152_100_500_000];
        let values: Vec<String> = ts.iter().map(|&us| start_value(Timestamp::from_micros(us))).collect();
        assert_eq!(values[4], "2025-11-26T10:15:00.000000Z");
        assert_eq!(values[5], "2025-11-26T10:15:00.000001Z");
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
        assert!(values.iter().all(|v| v.len() == 27), "{values:?}");
    }

    #[test]
    fn a_damaged_document_is_named() {
        let e = decode("m-1", r#"["Nowhere",null]"#).unwrap_err();
        assert!(!e.is_empty(), "{e}");
        let e = meeting_of(StoredInstance { id: "m-1".into(), version: 1, keys: vec![], doc: "[1]".into() })
            .unwrap_err()
            .to_string();
        assert!(e.contains("meeting m-1"), "{e}");
    }
}
