//! How SQLite rows are encoded: a meeting as a JSON array (the order of the
//! `meeting_docs` view). (Effect parts: [`crate::store::codec`]; history
//! chunks are the model's own bytes, kept as they are.)

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::meeting::{Ended, Facts, InstanceId, Meeting, MeetingId, Reason, State, Timers};
use crate::store::{StoreError, StoredMeeting};
use crate::time::{Span, Timestamp};

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

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_micros)
}

/// Decode a JSON document of meeting rows.
pub(super) fn meetings_from_doc(doc: Option<&str>) -> Result<Vec<StoredMeeting>, StoreError> {
    let docs: Vec<MeetingDoc> =
        serde_json::from_str(doc.unwrap_or("[]")).map_err(|e| StoreError::Corrupt(format!("meetings: {e}")))?;
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
        (Some(r), Some(at)) => {
            Some(Ended { reason: r.parse::<Reason>().map_err(|e| bad(e.to_string()))?, at: Timestamp::from_micros(at) })
        }
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
