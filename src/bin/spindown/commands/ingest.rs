//! `spindown ingest FILE`: records applied on the system clock; effects queued for the worker.

use spindown::inspect::MeetingStore;
use std::sync::Arc;

use anyhow::Result;
use spindown::clock::SystemClock;
use spindown::engine::{Engine, EngineOptions, Report};
use spindown::source::feed::LineFeed;
use spindown::source::replay::read_ahead;

use crate::cli::{Cli, IngestArgs};
use crate::{db, output, render};

pub async fn run(cli: &Cli, args: &IngestArgs) -> Result<()> {
    let policy = db::load_policy(&args.policy)?;
    let (input, name) = db::open_input(&args.file)?;
    let store = db::open(cli, &db::options(cli).bulk()).await?;
    let engine = Engine::start(store.clone(), policy, Arc::new(SystemClock), EngineOptions::default()).await?;
    let (mut batches, reader) = read_ahead(LineFeed::new(input, name.clone()), args.batch.max(1));
    let mut report = Report::default();
    while let Some(batch) = batches.recv().await {
        report.merge(&engine.apply(batch?).await?);
    }
    let lines = reader.join().map_err(|_| anyhow::anyhow!("the input reader panicked"))?;
    loop {
        let (r, more) = engine.fire_due(2000).await?;
        report.merge(&r);
        if !more {
            break;
        }
    }
    if args.json {
        output::json_lines([&report])?;
    } else {
        let counts = store.counts().await?;
        output::print(&(render::ingest_summary(&name, lines, &report) + &render::counts(&counts)))?;
    }
    store.close().await;
    Ok(())
}
