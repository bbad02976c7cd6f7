//! Stream records, instants and engines for tests, written once.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use spindown::clock::Clock;
use spindown::engine::{Engine, EngineOptions, Incoming};
use spindown::meeting::record::decode_line;
use spindown::meeting::MeetingWorkflow;
use spindown::meeting::{MeetingId, Policy};
use spindown::operate::MeetingEngine;
use spindown::store::sqlite::{SqliteOptions, SqliteStore};
use spindown::store::Store;
use spindown::time::Timestamp;

/// Sleep until the wall clock reads `t`.
pub async fn sleep_until(t: Timestamp) {
    let us = t.as_micros() - Timestamp::now().as_micros();
    if us > 0 {
        tokio::time::sleep(std::time::Duration::from_micros(us as u64)).await;
    }
}

/// An instant on the fixture day: `t("10:15")` or `t("10:15:30")` is 2026-11-26T10:15(:30)Z.
pub fn t(hh_mm_ss: &str) -> Timestamp {
    let full = if hh_mm_ss.len() == 5 { format!("{hh_mm_ss}:00") } else { hh_mm_ss.to_string() };
    Timestamp::parse_iso(&format!("2026-11-26T{full}Z")).unwrap()
}

pub fn id(s: &str) -> MeetingId {
    MeetingId::new(s).unwrap()
}

/// A stream record line: `name` is INSERT/MODIFY/REMOVE; the image goes to
/// `OldImage` for a REMOVE, `NewImage` otherwise.
pub fn rec(event_id: Option<&str>, name: &str, at: Option<Timestamp>, meeting: &str, image: Value) -> String {
    let mut ddb = json!({"Keys": {"id": {"S": meeting}}});
    if let Some(at) = at {
        ddb["ApproximateCreationDateTime"] = json!(at.as_micros() as f64 / 1e6);
    }
    ddb[if name == "REMOVE" { "OldImage" } else { "NewImage" }] = image;
    let mut r = json!({"eventName": name, "dynamodb": ddb});
    if let Some(e) = event_id {
        r["eventID"] = json!(e);
    }
    r.to_string()
}

/// An image with `meet_time` at `t(meet)` and these extra attributes.
pub fn img(meet: &str, extra: Value) -> Value {
    let mut i = json!({"meet_time": {"S": t(meet).to_rfc3339()}});
    for (k, v) in extra.as_object().unwrap() {
        i[k] = v.clone();
    }
    i
}

/// An INSERT of `meeting` starting at `meet` with this status (event time: the start).
pub fn insert(meeting: &str, meet: &str, status: &str) -> String {
    rec(Some(&format!("ins-{meeting}")), "INSERT", Some(t(meet)), meeting, img(meet, json!({"status": {"S": status}})))
}

/// Lines decoded as the engine takes them.
pub fn items(lines: &[String]) -> Vec<Incoming<MeetingWorkflow>> {
    lines
        .iter()
        .enumerate()
        .flat_map(|(n, l)| {
            decode_line(l.as_bytes())
                .into_iter()
                .map(move |item| Incoming { item, origin: format!("test:{}", n + 1).into() })
        })
        .collect()
}

/// A worker-mode engine (effects queued) on a SQLite file.
pub async fn sqlite_engine(path: &Path, clock: Arc<dyn Clock>) -> (MeetingEngine, Arc<SqliteStore>) {
    sqlite_engine_with(path, clock, Policy::default(), EngineOptions::default()).await
}

pub async fn sqlite_engine_with(
    path: &Path,
    clock: Arc<dyn Clock>,
    policy: Policy,
    options: EngineOptions<MeetingWorkflow>,
) -> (MeetingEngine, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open(path, &SqliteOptions::default()).await.unwrap());
    let engine = Engine::start(store.clone() as Arc<dyn Store>, policy, clock, options).await.unwrap();
    (engine, store)
}
