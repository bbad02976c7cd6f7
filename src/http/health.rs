//! `/livez` and `/readyz`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;
use crate::time::Timestamp;

/// How long the store has to answer a readiness check.
const STORE_ANSWERS_WITHIN: Duration = Duration::from_secs(2);

/// The process is serving.
pub(super) async fn livez() -> &'static str {
    "ok\n"
}

fn age(now: Timestamp, then: Timestamp) -> Duration {
    Duration::from_micros(now.since(then).as_micros().max(0) as u64)
}

/// Ready: the store answers, the timer loop ran recently, the stream reader is alive.
/// Otherwise 503, one reason per line.
pub(super) async fn readyz(State(s): State<AppState>) -> (StatusCode, String) {
    let mut problems = Vec::new();
    match tokio::time::timeout(STORE_ANSWERS_WITHIN, s.store.clocks()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => problems.push(format!("store: {e}")),
        Err(_) => problems.push(format!("store: no answer within {}s", STORE_ANSWERS_WITHIN.as_secs())),
    }
    if let Some(live) = &s.liveness {
        let now = s.clock.now();
        // The worker's own parts failed to reach the database (they wait and retry).
        if let Some(o) = live.outage() {
            problems.push(format!(
                "store: unavailable to the worker for {:.1}s ({} failures); last: {}",
                age(now, o.since).as_secs_f64(),
                o.failures,
                o.reason
            ));
        }
        match live.last_timer_tick() {
            None => problems.push("timer loop: has not run yet".into()),
            Some(t) if age(now, t) > s.timer_stall => problems.push(format!(
                "timer loop: last ran {:.1}s ago (limit {:?})",
                age(now, t).as_secs_f64(),
                s.timer_stall
            )),
            Some(_) => {}
        }
        match live.last_reader_tick() {
            None => problems.push("stream reader: has not finished a round yet".into()),
            Some(t) if age(now, t) > s.reader_stall => problems.push(format!(
                "stream reader: last round {:.1}s ago (limit {:?})",
                age(now, t).as_secs_f64(),
                s.reader_stall
            )),
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready\n{}\n", problems.join("\n")))
    }
}
