//! `spindown terminate ID`: end a meeting now (MANUAL); the worker runs its effects.

use anyhow::Result;
use spindown::meeting::Command;

use crate::cli::{Cli, TerminateArgs};
use crate::{db, output, render};

pub async fn run(cli: &Cli, args: &TerminateArgs) -> Result<()> {
    let policy = db::load_policy(&args.policy)?;
    let store = db::open_existing(cli).await?;
    let engine = db::operator_engine(store, policy).await?;
    let id = db::meeting_id(&args.id)?;
    let r = engine.command(&id, Command::Terminate).await?;
    db::poke(cli, engine.store().as_ref()).await;
    if args.json {
        output::json_lines([&r])
    } else {
        output::print(&render::command_result(&r))
    }
}
