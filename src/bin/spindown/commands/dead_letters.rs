//! `spindown dead-letters`: input that could not be applied, with why and the raw record.

use anyhow::Result;
use spindown::store::Page;

use crate::cli::{Cli, DeadLettersArgs};
use crate::{db, output, render};

pub async fn run(cli: &Cli, args: &DeadLettersArgs) -> Result<()> {
    let store = db::open_existing(cli).await?;
    let ds = store.dead_letters(&Page { after: None, limit: args.limit }).await?;
    if args.json {
        output::json_lines(&ds)
    } else {
        output::print(&render::dead_letters(&ds))
    }
}
