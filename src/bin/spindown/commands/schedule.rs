//! `spindown schedule ID --meet-time …`: register or move a meeting without the stream.

use anyhow::{ensure, Context, Result};
use spindown::meeting::{Command, InstanceId, InstanceSource, SeenInstance};
use spindown::time::Span;

use crate::cli::{Cli, ScheduleArgs};
use crate::{db, output, render};

pub async fn run(cli: &Cli, args: &ScheduleArgs) -> Result<()> {
    let policy = db::load_policy(&args.policy)?;
    let id = db::meeting_id(&args.id)?;
    let mut instances = Vec::new();
    for (source, value) in [(InstanceSource::Teacher, &args.teacher_ec2), (InstanceSource::Student, &args.student_ec2)]
    {
        if let Some(v) = value {
            ensure!(InstanceId::parse(v).is_some(), "{source} {}", v.parse::<InstanceId>().unwrap_err());
            instances.push(SeenInstance { source, value: v.clone() });
        }
    }
    let duration = match args.duration_minutes {
        Some(m) => Some(Span::from_minutes_f64(m).context("--duration-minutes must be a finite number")?),
        None => None,
    };
    let store = db::open(cli, &db::options(cli)).await?;
    let engine = db::operator_engine(store, policy).await?;
    let cmd = Command::Schedule { id: id.clone(), meet_time: args.meet_time, instances, duration };
    let r = engine.command(&id, cmd).await?;
    db::poke(cli, engine.store().as_ref()).await;
    if args.json {
        output::json_lines([&r])
    } else {
        output::print(&render::command_result(&r))
    }
}
