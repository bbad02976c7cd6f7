//! `spindown show ID`: a meeting's facts, timers, effects and whole story.

use anyhow::{bail, Result};
use spindown::inspect;

use crate::cli::{Cli, ShowArgs};
use crate::{db, output, render};

pub async fn run(cli: &Cli, args: &ShowArgs) -> Result<()> {
    let store = db::open_existing(cli).await?;
    let id = db::meeting_id(&args.id)?;
    let Some(i) = inspect::inspect(store.as_ref(), &id).await? else {
        bail!("no meeting {id} in {}", db::target(cli).describe())
    };
    if args.json {
        output::json_pretty(&i)
    } else {
        output::print(&render::show(&i))
    }
}
