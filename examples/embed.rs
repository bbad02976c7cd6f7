//! Embedding spindown in another Rust service.
//!
//! Opens an engine on a database, feeds it a stream record and a command,
//! runs the timer loop and a dry-run effect executor under this program's own
//! tokio runtime with a shutdown signal, then reads a meeting's state and
//! history back.
//!
//! ```sh
//! cargo run --example embed            # uses a temporary database
//! cargo run --example embed -- my.db   # or a file of yours
//! ```

use std::sync::Arc;
use std::time::Duration;

use spindown::clock::SystemClock;
use spindown::effects::Executor;
use spindown::engine::{Engine, Incoming};
use spindown::inspect;
use spindown::machine::{Command, MeetingId, SeenInstance};
use spindown::policy::Policy;
use spindown::record::decode_line;
use spindown::store::StoreOptions;
use spindown::time::{Span, Timestamp};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let db = std::env::args().nth(1).map(Into::into).unwrap_or_else(|| temp.path().join("embed.db"));

    // A policy with a short safety net, so the demo ends in seconds.
    let policy = Policy::from_toml_str("safety_net_delay = \"3s\"")?;
    let engine = Arc::new(Engine::open(&db, policy, Arc::new(SystemClock), &StoreOptions::default()).await?);

    // 1. A stream record, exactly as Lambda would have received it.
    let now = Timestamp::now();
    let line = serde_json::json!({
        "eventID": "demo-1", "eventName": "INSERT",
        "dynamodb": {"ApproximateCreationDateTime": now.as_micros() / 1_000_000, "Keys": {"id": {"S": "m-demo"}},
            "NewImage": {"id": {"S": "m-demo"}, "meet_time": {"S": now.to_rfc3339()},
                "teacher_ec2_id": {"S": "i-0123456789abcdef0"}, "student_ec2_id": {"S": "i-89abcdef"}}}
    })
    .to_string();
    let items = decode_line(line.as_bytes()).into_iter().map(|item| Incoming { item, origin: "demo".into() }).collect();
    let report = engine.apply(items).await?;
    println!("applied {} record(s), {} new meeting(s)", report.records, report.created);

    // 2. A command: register another meeting directly (no stream), starting in 1 s.
    let other = MeetingId::new("m-direct").expect("non-empty");
    let start = Timestamp::now().saturating_add(Span::from_secs(1));
    let instances = vec![SeenInstance { source: "teacher", value: "i-fedcba98".into() }];
    engine
        .command(&other, Command::Schedule { id: other.clone(), meet_time: start, instances, duration: None })
        .await?;

    // 3. The timer loop and the effect executor, until shutdown (here: 6 s).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let timers = {
        let (engine, rx) = (engine.clone(), stop_rx.clone());
        tokio::spawn(async move { engine.run_timers(shutdown(rx)).await })
    };
    let effects = {
        let executor = Executor::dry_run(engine.store().clone(), engine.clock().clone());
        let (wake, rx) = (engine.effects_notify(), stop_rx.clone());
        tokio::spawn(async move { executor.run(wake, shutdown(rx)).await })
    };
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop_tx.send(true)?;
    timers.await??;
    effects.await??;

    // 4. Read the meetings back.
    for id in ["m-demo", "m-direct"] {
        let id: MeetingId = id.parse()?;
        if let Some(i) = inspect::inspect(engine.store(), &id).await? {
            println!("\n{}", inspect::render_show(&i));
        }
    }
    Ok(())
}
