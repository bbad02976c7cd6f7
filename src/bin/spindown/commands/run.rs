//! `spindown run --table T`: the worker, on AWS.

use std::sync::Arc;

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
    let shutdown = shutdown_signal()?;
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
    let sdk = aws::load_config_with(&config.aws()?).await;
    let table = aws::AwsTable::new(&sdk, &args.table);
    let stream_arn = match &args.stream_arn {
        Some(a) => a.clone(),
        None => table.latest_stream_arn().await?,
    };
    let target = db::target(cli);
    let mut options = config.worker_options(stream_arn.clone(), db::wake_socket(cli))?;
    if let Some(http) = &mut options.http {
        http.console_token = args.console_token.clone().filter(|t| !t.is_empty());
    }
    let worker_id = match (&args.worker_id, &target) {
        (Some(id), _) => Some(id.clone()),
        (None, db::Target::Sqlite(_)) => Some("local".to_string()),
        (None, db::Target::Postgres(_)) => None,
    };
    options.reader.worker = WorkerInfo::this_process(worker_id);
    if let db::Target::Postgres(_) = target {
        // Other workers' timers and effects fall to this one if they die.
        options.poll_max = Some(std::time::Duration::from_secs(1));
    }
    let store = db::open_as(cli, &db::options(cli), &format!("spindown {}", options.reader.worker.id)).await?;
    let engine = Arc::new(Engine::start(store.clone(), policy, Arc::new(SystemClock), EngineOptions::default()).await?);
    tracing::info!(
        table = %args.table,
        stream = %stream_arn,
        db = %target.describe(),
        guard = ?config.guard.require_tag,
        worker = %options.reader.worker.id,
        "spindown worker starting"
    );
    if let Some(every) = config.sweep_every()? {
        let sweep = config.sweep(policy_max_lifetime)?;
        tracing::info!(every = ?every, tag = %sweep.tag, grace = %sweep.grace, "orphan sweep on");
        // The sweep always goes through the tag guard.
        let ec2 = Arc::new(aws::AwsEc2::new(&sdk, Some(sweep.tag.clone())));
        options.sweep = Some(worker::SweepJob { every, options: sweep, ec2 });
    }
    let ec2 = Arc::new(aws::AwsEc2::new(&sdk, config.guard.require_tag.clone()));
    let streams = Arc::new(aws::AwsStreams::new(&sdk));
    worker::run(engine, streams, ec2, Arc::new(table), options, shutdown).await?;
    store.close().await;
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
