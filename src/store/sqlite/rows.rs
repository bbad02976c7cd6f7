//! How SQLite rows are encoded: a meeting as a JSON array (the order of the
//! `meeting_docs` view), a history chunk as a compact binary list, effect
//! parts as JSON.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::meeting::history::Entry;
use crate::meeting::{Effect, Ended, Facts, InstanceId, Meeting, MeetingId, Reason, State, Timers};
use crate::store::{MeetingWrite, StoreError, StoredMeeting};
use crate::time::{Span, Timestamp};

/// The first byte of a history chunk in spindown's own encoding (postcard).
const CHUNK_POSTCARD: u8 = 1;

/// A meeting row as `meeting_docs` returns it.
#[derive(Deserialize)]
pub(super) struct MeetingDoc(
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

/// A meeting row to write: the `meeting_docs` order, then the first timer and
/// the version the row must still have.
#[derive(Serialize)]
struct MeetingRow<'a>(
    &'a str,
    &'a str,
    Option<&'a str>,
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
    &'a [String],
    Option<i64>,
    Option<u8>,
    i64,
);

fn us(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::as_micros)
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_micros)
}

/// Meetings to write as one JSON document (an array of rows).
pub(super) fn meeting_rows(writes: &[&MeetingWrite]) -> String {
    let rows: Vec<MeetingRow> = writes
        .iter()
        .map(|w| {
            let m = &w.stored.meeting;
            let next = m.timers.next();
            MeetingRow(
                m.id.as_str(),
                m.state.as_str(),
                m.ended.map(|e| e.reason.as_str()),
                us(m.ended.map(|e| e.at)),
                us(m.facts.meet_time),
                us(m.facts.created_at),
                m.facts.duration.map(Span::as_micros),
                m.facts.status.as_deref(),
                m.facts.teacher_data as u8,
                m.facts.student_data as u8,
                &m.instances,
                m.created.as_micros(),
                m.version,
                us(m.timers.safety_net),
                us(m.timers.recheck),
                us(m.timers.cap),
                us(m.timers.fixed),
                &w.stored.event_ids,
                next.map(|(_, due)| due.as_micros()),
                next.map(|(kind, _)| kind.rank()),
                w.loaded_version.unwrap_or(-1),
            )
        })
        .collect();
    serde_json::to_string(&rows).expect("meeting rows serialize")
}

/// Decode a JSON document of meeting rows.
pub(super) fn meetings_from_doc(doc: Option<&str>) -> Result<Vec<StoredMeeting>, StoreError> {
    let docs: Vec<MeetingDoc> = serde_json::from_str(doc.unwrap_or("[]"))
        .map_err(|e| StoreError::Corrupt(format!("meetings: {e}")))?;
    docs.into_iter().map(meeting_from_doc).collect()
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
        (Some(r), Some(at)) => Some(Ended {
            reason: r.parse::<Reason>().map_err(|e| bad(e.to_string()))?,
            at: Timestamp::from_micros(at),
        }),
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

/// A history chunk: the first byte says the encoding.
pub(super) fn encode_entries(entries: &[Entry]) -> Vec<u8> {
    let out = vec![CHUNK_POSTCARD];
    postcard::to_extend(entries, out).expect("history entries serialize")
}

/// Decode a history chunk: spindown's binary list, or a JSON array (converted history).
pub(super) fn decode_entries(bytes: &[u8]) -> Result<Vec<Entry>, StoreError> {
    let bad = |e: String| StoreError::Corrupt(format!("history: {e}"));
    match bytes.first() {
        Some(&CHUNK_POSTCARD) => postcard::from_bytes(&bytes[1..]).map_err(|e| bad(e.to_string())),
        Some(b'[') => serde_json::from_slice(bytes).map_err(|e| bad(e.to_string())),
        _ => Err(bad("unknown encoding".into())),
    }
}

/// Effect parts as stored (JSON).
pub(super) fn encode_parts(parts: &[Effect]) -> serde_json::Value {
    serde_json::to_value(parts).expect("effects serialize")
}

pub(super) fn decode_parts(text: &str) -> Result<Vec<Effect>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("effect parts: {e}")))
}
