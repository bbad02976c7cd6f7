//! `spindown migrate --from PATH.db --to postgres://…`: a SQLite database into an empty PostgreSQL one.

use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;
use spindown::store::copy::{copy, Copied};
use spindown::store::postgres::{self, PgOptions, PgStore};
use spindown::store::sqlite::{SqliteOptions, SqliteStore};
use spindown::store::Store;

use crate::cli::MigrateArgs;
use crate::output;

#[derive(Serialize)]
struct Report {
    #[serde(flatten)]
    copied: Copied,
    seconds: f64,
}

pub async fn run(args: &MigrateArgs) -> Result<()> {
    let started = Instant::now();
    ensure!(
        postgres::is_url(&args.to),
        "--to must be a PostgreSQL URL (postgres://USER:PASS@HOST:PORT/DB), not {:?}",
        args.to
    );
    if !args.from.exists() {
        bail!("no database at {} (--from names the SQLite file to copy)", args.from.display());
    }
    let from = SqliteStore::open(&args.from, &SqliteOptions::default())
        .await
        .with_context(|| format!("opening {}", args.from.display()))?;
    let to =
        PgStore::open(&args.to, &PgOptions { application_name: "spindown migrate".into(), ..PgOptions::default() })
            .await?;
    let mut shown = false;
    let copied = copy(&from, &to, spindown::meeting::stored::DECODER, &mut |done, total| {
        if total >= 10_000 {
            eprint!("\rmeetings {done}/{total}");
            shown = true;
        }
    })
    .await?;
    if shown {
        eprintln!();
    }
    let report = Report { copied, seconds: started.elapsed().as_secs_f64() };
    from.close().await;
    to.close().await;
    let copied = &report.copied;
    if args.json {
        output::json_lines([&report])
    } else {
        output::print(&format!(
            "copied {} into {} in {:.1} s: {} meetings ({} pending timers), {} history entries, {} effects, \
             {} dead letters, {} stream checkpoints, {} gaps, {} sweep log lines; counts match\n",
            args.from.display(),
            postgres::redact(&args.to),
            report.seconds,
            copied.meetings,
            copied.timers,
            copied.history_entries,
            copied.effects,
            copied.dead_letters,
            copied.checkpoints,
            copied.gaps,
            copied.sweep_log
        ))
    }
}
