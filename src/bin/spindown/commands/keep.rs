//! `spindown extend | hold | release ID`: keep a meeting alive, on the
//! record (spec/meeting-workflow.md, "Operator commands that keep a meeting
//! alive"). A refusal — the meeting has ended, a time out of bounds, a
//! release without a hold — is one line and exit 2; nothing changes.

use anyhow::Result;
use spindown::engine::EngineError;
use spindown::meeting::{Command, Extend};

use crate::cli::{Cli, ExtendArgs, HoldArgs, ReleaseArgs};
use crate::{db, output, render, Usage};

async fn send(cli: &Cli, id: &str, policy: &crate::cli::PolicyArg, json: bool, cmd: Command) -> Result<()> {
    let policy = db::load_policy(policy)?;
    let store = db::open_existing(cli).await?;
    let engine = db::operator_engine(store, policy).await?;
    let id = db::meeting_id(id)?;
    let r = match engine.command(&id, cmd).await {
        Ok(r) => r,
        Err(e @ (EngineError::Refused { .. } | EngineError::Unknown { .. })) => return Err(Usage(e.to_string()).into()),
        Err(e) => return Err(e.into()),
    };
    // A running worker re-reads its timers now (as after `terminate`).
    db::poke(cli, engine.store().as_ref()).await;
    if json {
        output::json_lines([&r])
    } else {
        output::print(&render::command_result(&r))
    }
}

pub async fn extend(cli: &Cli, args: &ExtendArgs) -> Result<()> {
    let how = match (args.until, args.by) {
        (Some(t), None) => Extend::Until(t),
        (None, Some(d)) => Extend::By(d),
        _ => return Err(Usage("give one of --until T or --by DURATION".into()).into()),
    };
    send(cli, &args.id, &args.policy, args.json, Command::Extend(how)).await
}

pub async fn hold(cli: &Cli, args: &HoldArgs) -> Result<()> {
    send(cli, &args.id, &args.policy, args.json, Command::Hold { until: args.until }).await
}

pub async fn release(cli: &Cli, args: &ReleaseArgs) -> Result<()> {
    send(cli, &args.id, &args.policy, args.json, Command::Release).await
}
