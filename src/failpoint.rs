//! Crash points for the reliability tests.
//!
//! `SPINDOWN_FAILPOINTS="after-commit=0.02,effect-before-call=0.05"` makes the
//! process abort — no destructors, no graceful close, like a SIGKILL — with
//! that probability each time it passes the named point. Unset (always, in
//! production) it costs one relaxed load per point.
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
