//! `spindown status`: one screen of counts, failures and stream positions.

use anyhow::Result;
use spindown::inspect;
use spindown::time::Timestamp;

use crate::cli::{Cli, StatusArgs};
use crate::{db, output, render};

pub async fn run(cli: &Cli, args: &StatusArgs) -> Result<()> {
    let store = db::open_existing(cli).await?;
    let status = inspect::status(store.as_ref()).await?;
    if args.json {
        output::json_pretty(&status)
    } else {
        output::print(&render::status(&status, Timestamp::now()))
    }
}
