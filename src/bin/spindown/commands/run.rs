//! `spindown run --table T`: the worker, on AWS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use spindown::adapters::aws;
use spindown::clock::SystemClock;
use spindown::config::{Overrides, WorkerConfig};
use spindown::engine::{Engine, EngineOptions};
use spindown::store::WorkerInfo;
use spindown::worker;

use crate::cli::{Cli, RunArgs};
use crate::db;

pub async fn run(cli: &Cli, args: &RunArgs) -> Result<()> {
    // Catch SIGTERM/SIGINT from the very start: a stop during start-up is a clean stop too.
    // When a stop was asked for: the whole stop, closing the database
    // included, fits in shutdown_timeout from then.
    let asked: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    let signal = shutdown_signal()?;
    let shutdown = {
        let asked = asked.clone();
        async move {
            signal.await;
            let _ = asked.set(Instant::now());
        }
    };
    tokio::pin!(shutdown);
    let policy = db::load_policy(&args.policy)?;
    let policy_max_lifetime = policy.max_lifetime;
    let file = match &args.config {
        Some(p) => WorkerConfig::load(p)?,
        None => WorkerConfig::default(),
    };
    let overrides = Overrides {
        require_tag: args.require_tag.clone(),
        max_attempts: args.max_attempts,
        start: args.start,
        listen: args.listen.clone(),
    };
    let config = file.with(&overrides)?;
    let target = db::target(cli);
    let worker_id = match (&args.worker_id, &target) {
        (Some(id), _) => Some(id.clone()),
        (None, db::Target::Sqlite(_)) => Some("local".to_string()),
        (None, db::Target::Postgres(_)) => None,
    };
    let worker = WorkerInfo::this_process(worker_id);
    let sdk = aws::load_config_with(&config.aws()?, Some(&worker.id)).await;
    let table = aws::AwsTable::new(&sdk, &args.table);
    let stream_arn = match &args.stream_arn {
        Some(a) => a.clone(),
        None => table.latest_stream_arn().await?,
    };
    let mut options = config.worker_options(stream_arn.clone(), db::wake_socket(cli))?;
    if let Some(http) = &mut options.http {
        http.console_token = args.console_token.clone().filter(|t| !t.is_empty());
        http.console_private |= args.console_private;
    }
    options.reader.worker = worker;
    match &target {
        // Other workers' timers and effects fall to this one if they die.
        db::Target::Postgres(_) => options.poll_max = Some(std::time::Duration::from_secs(1)),
        // One worker per file: the second refuses to start.
        db::Target::Sqlite(path) => options.lock_file = Some(worker::lock_file_for(path)),
    }
    let pg = config.pg_options(&format!("spindown {}", options.reader.worker.id))?;
    tracing::info!(
        table = %args.table,
        stream = %stream_arn,
        db = %target.describe(),
        guard = ?config.guard.require_tag,
        worker = %options.reader.worker.id,
        "spindown worker starting"
    );
    // A database that is down or failing over at start is waited for.
    let sqlite = db::options(cli);
    let opened = worker::patiently("opening the database", &mut shutdown, || db::open_with(cli, &sqlite, &pg))
        .await
        .with_context(|| format!("opening {}", target.describe()))?;
    let Some(store) = opened else { return Ok(()) };
    let started = worker::patiently("reading the engine's clocks", &mut shutdown, || {
        Engine::start(store.clone(), policy.clone(), Arc::new(SystemClock), EngineOptions::default())
    })
    .await?;
    let Some(engine) = started else { return Ok(()) };
    let engine = Arc::new(engine);
    if let Some(every) = config.sweep_every()? {
        let sweep = config.sweep(policy_max_lifetime)?;
        tracing::info!(every = ?every, tag = %sweep.tag, grace = %sweep.grace, "orphan sweep on");
        // The sweep always goes through the tag guard.
        let ec2 = Arc::new(aws::AwsEc2::new(&sdk, Some(sweep.tag.clone())));
        options.sweep = Some(worker::SweepJob { every, options: sweep, ec2 });
    }
    let ec2 = Arc::new(aws::AwsEc2::new(&sdk, config.guard.require_tag.clone()));
    let streams = Arc::new(aws::AwsStreams::new(&sdk));
    let shutdown_timeout = options.shutdown_timeout;
    worker::run(engine, streams, ec2, Arc::new(table), options, shutdown).await?;
    // A database that is gone does not hold the exit: closing gets what is
    // left of shutdown_timeout (at least a moment to say goodbye).
    let left = asked.get().map_or(shutdown_timeout, |t| shutdown_timeout.saturating_sub(t.elapsed()));
    let _ = tokio::time::timeout(left.max(Duration::from_millis(200)), store.close()).await;
    tracing::info!("spindown worker stopped");
    Ok(())
}

/// A future that completes on SIGTERM or SIGINT; the handlers are installed now.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
