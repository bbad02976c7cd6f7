//! `spindown timers`: pending timers, soonest first.

use std::collections::BTreeMap;

use anyhow::Result;
use spindown::inspect::MeetingStore;
use spindown::meeting::TimerFilter;
use spindown::time::Timestamp;

use crate::cli::{Cli, TimersArgs};
use crate::{db, output, render};

pub async fn run(cli: &Cli, args: &TimersArgs) -> Result<()> {
    let store = db::open_existing(cli).await?;
    let ts = store.timers(&TimerFilter { meeting: None, limit: args.limit }).await?;
    let now = Timestamp::now();
    let held: BTreeMap<_, _> = store.held(now).await?.into_iter().collect();
    if args.json {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            #[serde(flatten)]
            timer: &'a spindown::meeting::TimerKey,
            #[serde(skip_serializing_if = "Option::is_none")]
            held_until: Option<Timestamp>,
        }
        output::json_lines(ts.iter().map(|t| Line { timer: t, held_until: held.get(&t.meeting_id).copied() }))
    } else {
        output::print(&render::timers(&ts, &held, now))
    }
}
