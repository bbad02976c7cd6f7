//! `/metrics`: Prometheus text format, through `metrics-exporter-prometheus`.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::AppState;
use crate::inspect::MeetingStore;
use crate::meeting::State as MeetingState;
use crate::store::EffectStatus;
use crate::telemetry::{self, EFFECT_BUCKETS, LATENESS_BUCKETS};

/// The process's recorder, installed on first use (the `metrics` facade has one global recorder).
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("spindown_timer_lateness_seconds".into()), LATENESS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full("spindown_effect_duration_seconds".into()), EFFECT_BUCKETS)
                })
                .expect("the buckets are not empty");
            let handle = builder.install_recorder().expect("no other metrics recorder is installed");
            telemetry::describe();
            handle
        })
        .clone()
}

/// Read the gauges that live in the store, then render everything.
pub(super) async fn scrape(State(s): State<AppState>) -> Response {
    match s.store.counts().await {
        Ok(c) => {
            for state in MeetingState::ALL {
                metrics::gauge!("spindown_meetings", "state" => state.as_str()).set(c.in_state(*state) as f64);
            }
            for status in EffectStatus::ALL {
                metrics::gauge!("spindown_outbox", "status" => status.as_str()).set(c.effects(*status) as f64);
            }
            telemetry::timers(&c.timers_by_kind, c.next_timer_due, s.clock.now());
        }
        Err(e) => {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("the store does not answer: {e}\n")).into_response();
        }
    }
    // Held meetings: a range of the hold index (few rows), not a scan.
    match s.store.held(s.clock.now()).await {
        Ok(held) => metrics::gauge!("spindown_meetings_held").set(held.len() as f64),
        Err(e) => {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("the store does not answer: {e}\n")).into_response();
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.prometheus.render()).into_response()
}
