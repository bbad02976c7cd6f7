//! `spindown timers`: pending timers, soonest first.

use anyhow::Result;
use spindown::inspect::MeetingStore;
use spindown::meeting::TimerFilter;
use spindown::time::Timestamp;

use crate::cli::{Cli, TimersArgs};
use crate::{db, output, render};

pub async fn run(cli: &Cli, args: &TimersArgs) -> Result<()> {
    let store = db::open_existing(cli).await?;
    let ts = store.timers(&TimerFilter { meeting: None, limit: args.limit }).await?;
    if args.json {
        output::json_lines(&ts)
    } else {
        output::print(&render::timers(&ts, Timestamp::now()))
    }
}
