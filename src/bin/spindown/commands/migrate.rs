//! `spindown migrate --from PATH.db --to postgres://…`: a SQLite database into an empty PostgreSQL one.

use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;
use spindown::meeting::history::Chunk;
use spindown::store::postgres::{self, PgOptions, PgStore};
use spindown::store::sqlite::{SqliteOptions, SqliteStore};
use spindown::store::{
    Changes, Counts, EffectFilter, HistoryAppend, MeetingFilter, MeetingWrite, NewDeadLetter, Page, Store,
};

use crate::cli::MigrateArgs;
use crate::output;

/// Meetings (with their histories) per transaction.
const PAGE: usize = 1000;

#[derive(Serialize)]
struct Copied {
    meetings: u64,
    history_entries: u64,
    timers: i64,
    effects: u64,
    dead_letters: u64,
    checkpoints: u64,
    gaps: u64,
    seconds: f64,
}

/// Nothing to overwrite: no meeting, effect, dead letter, checkpoint or gap.
async fn is_empty(store: &dyn Store) -> Result<bool> {
    let c = store.counts().await?;
    Ok(c.meetings == 0
        && c.effects_by_status.iter().all(|(_, n)| *n == 0)
        && c.dead_letters == 0
        && store.checkpoints(None).await?.is_empty()
        && store.gaps().await?.is_empty())
}

/// What must match between the two databases afterwards.
fn essentials(c: &Counts) -> impl PartialEq + std::fmt::Debug {
    (
        c.meetings,
        c.meetings_by_state.clone(),
        c.terminated_by_reason.clone(),
        c.timers_pending,
        c.next_timer_due,
        c.effects_by_status.clone(),
        c.dead_letters_by_kind.clone(),
    )
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
    if !is_empty(&to).await? {
        bail!(
            "{} is not empty (it holds meetings, effects, dead letters or stream positions): \
             spindown migrate copies only into an empty database",
            to.describe()
        );
    }
    let mut copied = Copied {
        meetings: 0,
        history_entries: 0,
        timers: 0,
        effects: 0,
        dead_letters: 0,
        checkpoints: 0,
        gaps: 0,
        seconds: 0.0,
    };
    let total = from.counts().await?.meetings.max(0) as u64;

    // Meetings and their stories, a page per transaction.
    let mut filter = MeetingFilter { limit: Some(PAGE), ..MeetingFilter::default() };
    loop {
        let page = from.meetings(&filter).await?;
        let Some(last) = page.last() else { break };
        filter.after = Some(last.meeting.id.clone());
        let mut changes = Changes::default();
        for m in page {
            let story = from.history(&m.meeting.id).await?;
            copied.history_entries += story.len() as u64;
            // One chunk per stored chunk: entries written together stay together.
            let mut chunks: Vec<(i64, Vec<_>)> = Vec::new();
            for h in story {
                match chunks.last_mut() {
                    Some((seq, entries)) if *seq == h.seq => entries.push(h.entry),
                    _ => chunks.push((h.seq, vec![h.entry])),
                }
            }
            for (_, entries) in chunks {
                changes.history.push(HistoryAppend {
                    meeting_id: m.meeting.id.clone(),
                    chunk: entries.iter().cloned().collect::<Chunk>(),
                });
            }
            changes.meetings.push(MeetingWrite { stored: m, loaded_version: None });
        }
        copied.meetings += changes.meetings.len() as u64;
        to.begin().await?.commit(changes).await?;
        if total >= 10 * PAGE as u64 {
            eprint!("\rmeetings {}/{total}", copied.meetings);
        }
    }
    if total >= 10 * PAGE as u64 {
        eprintln!();
    }

    // The outbox as it is, then dead letters, stream positions, gaps and clocks.
    let effects = from.effects(&EffectFilter::default()).await?;
    copied.effects = effects.len() as u64;
    for rows in effects.chunks(PAGE) {
        to.copy_effects(rows).await?;
    }
    let mut after = None;
    loop {
        let page = from.dead_letters(&Page { after, limit: PAGE }).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        copied.dead_letters += page.len() as u64;
        let dead_letters = page
            .into_iter()
            .map(|d| NewDeadLetter {
                at: d.at,
                origin: d.origin,
                kind: d.kind.into(),
                reason: d.reason,
                event_id: d.event_id,
                raw: d.raw,
            })
            .collect();
        to.begin().await?.commit(Changes { dead_letters, ..Changes::default() }).await?;
    }
    for c in from.checkpoints(None).await? {
        to.begin().await?.commit(Changes { checkpoint: Some(c), ..Changes::default() }).await?;
        copied.checkpoints += 1;
    }
    for g in from.gaps().await? {
        to.record_gap(&g).await?;
        copied.gaps += 1;
    }
    let clocks = from.clocks().await?;
    to.begin().await?.commit(Changes { clocks, ..Changes::default() }).await?;

    // Both sides must now count the same.
    let (a, b) = (from.counts().await?, to.counts().await?);
    ensure!(
        essentials(&a) == essentials(&b),
        "the copy does not match its source:\n  {}: {a:?}\n  {}: {b:?}",
        from.describe(),
        to.describe()
    );
    copied.timers = b.timers_pending;
    copied.seconds = started.elapsed().as_secs_f64();
    from.close().await;
    to.close().await;
    if args.json {
        output::json_lines([&copied])
    } else {
        output::print(&format!(
            "copied {} into {} in {:.1} s: {} meetings ({} pending timers), {} history entries, {} effects, \
             {} dead letters, {} stream checkpoints, {} gaps; counts match\n",
            args.from.display(),
            postgres::redact(&args.to),
            copied.seconds,
            copied.meetings,
            copied.timers,
            copied.history_entries,
            copied.effects,
            copied.dead_letters,
            copied.checkpoints,
            copied.gaps
        ))
    }
}
