//! `spindown prune`: delete what the retention settings no longer keep, now.

use anyhow::{Context, Result};
use serde::Serialize;
use spindown::config::WorkerConfig;
use spindown::retention::{self, Applied, Archive, Kind, Retention};
use spindown::time::Timestamp;

use crate::cli::{Cli, PruneArgs};
use crate::{db, output};

#[derive(Serialize)]
struct Report<'a> {
    dry_run: bool,
    /// The meetings' cut-off: those that ended before it were pruned.
    before: Timestamp,
    #[serde(flatten)]
    applied: &'a Applied,
    /// Meetings written to the archive.
    archived: Option<u64>,
}

pub async fn run(cli: &Cli, args: &PruneArgs) -> Result<()> {
    let config = match &args.config {
        Some(p) => WorkerConfig::load(p)?,
        None => WorkerConfig::default(),
    };
    let mut retention = config.retention()?;
    let now = Timestamp::now();
    if let Some(before) = args.before {
        // One cut-off for meetings and the logs; workers keep their own.
        let keep = Some(now.since(before));
        retention = Retention { meetings: keep, dead_letters: keep, sweep_log: keep, stream: keep, ..retention };
    }
    let meetings_before = retention
        .cutoffs(now)
        .into_iter()
        .find(|(k, _)| *k == Kind::Meetings)
        .map(|(_, b)| b)
        .unwrap_or(Timestamp::MIN);
    let store = db::open_existing(cli).await?;
    let would = retention::would_apply(store.as_ref(), &retention, now).await?;
    if args.dry_run {
        let r = Report { dry_run: true, before: meetings_before, applied: &would, archived: None };
        return print(args.json, &r);
    }
    let mut archive = match &args.archive {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the archive {}", path.display()))?;
            Some(Archive::new(f))
        }
        None => None,
    };
    let bar = progress(would.meetings);
    let mut applied = Applied::default();
    if retention.meetings.is_some() {
        applied =
            retention::prune_meetings(store.as_ref(), meetings_before, now, &retention, archive.as_mut(), &mut |n| {
                if let Some(b) = &bar {
                    b.inc(n);
                }
            })
            .await?;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    retention.meetings = None;
    let rest = retention::apply(store.as_ref(), &retention, now).await?;
    let applied = Applied { meetings: applied.meetings, history: applied.history, effects: applied.effects, ..rest };
    db::poke(cli, store.as_ref()).await;
    let r = Report { dry_run: false, before: meetings_before, applied: &applied, archived: archive.map(|a| a.written) };
    print(args.json, &r)
}

/// A progress bar over the meetings to prune, on a terminal only.
fn progress(total: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if total < 1000 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("prune: {bar:40} {pos}/{len} meetings ({eta} left)")
            .expect("a valid template"),
    );
    Some(bar)
}

fn print(json: bool, r: &Report) -> Result<()> {
    if json {
        return output::json_lines([r]);
    }
    let a = r.applied;
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    let mut text = format!(
        "prune {verb}: {} meetings that ended before {} ({} history chunks, {} outbox rows), {} dead letters, \
         {} sweep log lines, {} stream gaps, {} closed shards' checkpoints, {} workers not seen for long\n",
        a.meetings, r.before, a.history, a.effects, a.dead_letters, a.sweep_log, a.gaps, a.shards, a.workers
    );
    if r.dry_run {
        text = text.replace(" (0 history chunks, 0 outbox rows)", "");
    }
    if let Some(n) = r.archived {
        text.push_str(&format!("archived {n} meetings' stories first\n"));
    }
    output::print(&text)
}
