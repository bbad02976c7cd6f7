//! `spindown sweep [--dry-run]`: the orphan sweep, once.

use std::sync::Arc;

use anyhow::Result;
use spindown::adapters::aws;
use spindown::clock::{Clock, SystemClock};
use spindown::config::{Overrides, WorkerConfig};
use spindown::outbox::Ec2;
use spindown::sweep;

use crate::cli::{Cli, SweepArgs};
use crate::{db, output, render};

pub async fn run(cli: &Cli, args: &SweepArgs) -> Result<()> {
    let policy = db::load_policy(&args.policy)?;
    let file = match &args.config {
        Some(p) => WorkerConfig::load(p)?,
        None => WorkerConfig::default(),
    };
    let config = file.with(&Overrides { require_tag: args.require_tag.clone(), ..Overrides::default() })?;
    let mut options = config.sweep(policy.max_lifetime)?;
    options.dry_run = args.dry_run;
    let sdk = aws::load_config_with(&config.aws()?, Some("sweep")).await;
    // Always through the tag guard, whatever [guard] says.
    let ec2: Arc<dyn Ec2> = Arc::new(aws::AwsEc2::new(&sdk, Some(options.tag.clone())));
    let store = db::open_existing(cli).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let report = sweep::sweep(&store, &ec2, &clock, &options).await?;
    if args.json {
        output::json_lines([&report])?;
    } else {
        output::print(&render::sweep_report(&report, args.dry_run))?;
    }
    store.close().await;
    Ok(())
}
