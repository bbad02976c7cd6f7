//! Embedding spindown in another Rust service.
//!
//! Opens an engine on a SQLite database, feeds it a stream record and a
//! command, runs the timer loop and the outbox executor — with an EC2 port of
//! this program's own and the dry-run table port — under this program's tokio
//! runtime with a shutdown signal, then reads the meetings' stories back.
//!
//! ```sh
//! cargo run --example embed            # uses a temporary database
//! cargo run --example embed -- my.db   # or a file of yours
//! ```

use spindown::inspect::MeetingStore;
use std::sync::Arc;
use std::time::Duration;

use spindown::clock::SystemClock;
use spindown::engine::{Engine, EngineOptions, Incoming};
use spindown::meeting::record::decode_line;
use spindown::meeting::{Command, InstanceId, InstanceSource, MeetingId, Policy, SeenInstance};
use spindown::outbox::dry_run::DryRun;
use spindown::outbox::{Ec2, EffectError, Executor, RetryPolicy, TerminateReport};
use spindown::store::sqlite::{SqliteOptions, SqliteStore};
use spindown::store::Store;
use spindown::time::{Span, Timestamp};
use spindown::BoxFuture;

/// Your own EC2 port: here it only says what it would terminate.
struct PrintingEc2;

impl Ec2 for PrintingEc2 {
    fn terminate<'a>(
        &'a self,
        meeting: &'a MeetingId,
        instances: &'a [InstanceId],
    ) -> BoxFuture<'a, Result<TerminateReport, EffectError>> {
        Box::pin(async move {
            println!("  (EC2 port) terminate {instances:?} for {meeting}");
            Ok(TerminateReport { terminated: instances.to_vec(), ..TerminateReport::default() })
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let db = std::env::args().nth(1).map(Into::into).unwrap_or_else(|| temp.path().join("embed.db"));
    let store = Arc::new(SqliteStore::open(&db, &SqliteOptions::default()).await?);

    // A policy with a short safety net, so the demo ends in seconds.
    let policy = Policy::from_toml_str("safety_net_delay = \"3s\"")?;
    let engine = Arc::new(Engine::start(store.clone(), policy, Arc::new(SystemClock), EngineOptions::default()).await?);

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
    let other: MeetingId = "m-direct".parse()?;
    let start = Timestamp::now().saturating_add(Span::from_secs(1));
    let instances = vec![SeenInstance { source: InstanceSource::Teacher, value: "i-fedcba98".into() }];
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
        let executor = Executor::new(
            store.clone(),
            Arc::new(PrintingEc2),
            Arc::new(DryRun),
            engine.clock().clone(),
            RetryPolicy::default(),
        );
        let (wake, rx) = (engine.effects_notify(), stop_rx.clone());
        tokio::spawn(async move { executor.run(wake, shutdown(rx)).await })
    };
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop_tx.send(true)?;
    timers.await??;
    effects.await??;

    // 4. Read the meetings and their stories back.
    for id in ["m-demo", "m-direct"] {
        let id: MeetingId = id.parse()?;
        let Some(m) = store.meeting(&id).await? else { continue };
        let m = m.meeting;
        println!("\n{id}: {} {}", m.state, m.ended.map(|e| format!("({} at {})", e.reason, e.at)).unwrap_or_default());
        for h in store.history(&id).await? {
            let e = h.entry;
            println!("  {}  {}: {}", e.at, e.cause, e.outcome);
            for n in &e.notes {
                println!("      {n}");
            }
        }
    }
    let done = store.counts().await?;
    println!("\noutbox: {:?}", done.effects_by_status);
    store.close().await;
    Ok(())
}
