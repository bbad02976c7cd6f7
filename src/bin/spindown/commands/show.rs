//! `spindown show ID`: a meeting's facts, timers, effects and whole story.

use anyhow::{bail, Result};
use spindown::inspect;

use crate::cli::{Cli, ShowArgs};
use crate::{db, output, render};

pub async fn run(cli: &Cli, args: &ShowArgs) -> Result<()> {
    let store = db::open_existing(cli).await?;
    let id = db::meeting_id(&args.id)?;
    let Some(i) = inspect::inspect(store.as_ref(), &id).await? else {
        // Retention may have deleted it: say so rather than "unknown".
        if let Some(log) = store.prune_log().await? {
            bail!(
                "no meeting {id} in {}: it was pruned, or never seen — meetings that ended before {} are deleted \
                 by retention ({} so far, the last at {}); `spindown prune --archive` keeps their stories in a file",
                db::target(cli).describe(),
                log.through,
                log.meetings,
                log.last_at
            )
        }
        bail!("no meeting {id} in {}", db::target(cli).describe())
    };
    if args.json {
        output::json_pretty(&i)
    } else {
        output::print(&render::show(&i, spindown::time::Timestamp::now()))
    }
}
