//! Crash points for the reliability tests.
//!
//! `SPINDOWN_FAILPOINTS="after-commit=0.02,effect-before-call=0.05"` makes the
//! process abort — no destructors, no graceful close, like a SIGKILL — with
//! that probability each time it passes the named point. Unset (always, in
//! production) it costs one relaxed load per point.
//!
//! `SPINDOWN_HOLD="timers=/tmp/hold"` makes the named loop wait, without
//! ticking, while that file exists (the readiness tests stop the timer loop
//! this way; `in-transaction` holds a unit of work that writes meetings with
//! its transaction open and its rows locked). Unset, [`hold`] costs one
//! relaxed load.
//!
//! Points: `stream-after-fetch` (records fetched, not yet applied),
//! `tx-before-commit` (inside a transaction, everything written),
//! `after-commit` (committed, effects not yet run), `effect-before-call` and
//! `effect-after-call` (an AWS call about to be made / made but its outcome
//! not yet recorded).

use std::collections::HashMap;
use std::sync::OnceLock;

fn points() -> &'static HashMap<String, f64> {
    static POINTS: OnceLock<HashMap<String, f64>> = OnceLock::new();
    POINTS.get_or_init(|| {
        let spec = std::env::var("SPINDOWN_FAILPOINTS").unwrap_or_default();
        spec.split(',')
            .filter_map(|p| {
                let (name, prob) = p.split_once('=')?;
                Some((name.trim().to_string(), prob.trim().parse().ok()?))
            })
            .collect()
    })
}

/// Abort here with the configured probability.
pub fn hit(name: &str) {
    let points = points();
    if points.is_empty() {
        return;
    }
    if let Some(&p) = points.get(name) {
        if rand::random::<f64>() < p {
            eprintln!("failpoint {name}: aborting");
            std::process::abort();
        }
    }
}

fn holds() -> &'static HashMap<String, std::path::PathBuf> {
    static HOLDS: OnceLock<HashMap<String, std::path::PathBuf>> = OnceLock::new();
    HOLDS.get_or_init(|| {
        let spec = std::env::var("SPINDOWN_HOLD").unwrap_or_default();
        spec.split(',')
            .filter_map(|p| {
                let (name, path) = p.split_once('=')?;
                Some((name.trim().to_string(), std::path::PathBuf::from(path.trim())))
            })
            .collect()
    })
}

/// Wait here while the file configured for `name` exists.
pub async fn hold(name: &str) {
    let holds = holds();
    if holds.is_empty() {
        return;
    }
    if let Some(path) = holds.get(name) {
        let mut said = false;
        while path.exists() {
            if !said {
                tracing::warn!("hold {name}: waiting while {} exists", path.display());
                said = true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
