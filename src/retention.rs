//! Retention: how long the database keeps what it no longer needs.
//!
//! A terminated meeting — its row, its history, its outbox rows — is kept
//! for `meetings` after its end (default 30 days); dead letters, the sweep
//! log, stream gaps and the checkpoints of shards read to their end for 30
//! days; the rows of workers that stopped for a day. A meeting whose effect
//! is not done (pending, or failed and waiting for an operator) is never
//! deleted.
//!
//! The worker's housekeeping job applies it ([`apply`]) in small batches —
//! one short transaction each, a pause between them — so a SQLite writer is
//! never held for long; `spindown prune` does the same at once, and can
//! first write each pruned meeting's story to an archive ([`prune_meetings`]
//! with an [`Archive`]): what is deleted is only what the operator chose to
//! lose. Every candidate is found through an index, never by a scan of every
//! meeting, so a database that runs for a year stays the size of its
//! retention window.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::meeting::MeetingId;
use crate::store::{Retained, Store, StoreError};
use crate::time::{Span, Timestamp};

/// How long each kind of row is kept (`None`: for ever).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Terminated meetings, with their histories and outbox rows, after their end.
    pub meetings: Option<Span>,
    pub dead_letters: Option<Span>,
    pub sweep_log: Option<Span>,
    /// Stream gaps, and the checkpoints of shards read to their end.
    pub stream: Option<Span>,
    /// Workers not seen for this long.
    pub workers: Option<Span>,
    /// Rows per batch (one transaction).
    pub batch: usize,
    /// Pause between batches (the SQLite writer is free meanwhile).
    pub pause: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        let days = |d: i64| Some(Span::from_hours(24 * d));
        Retention {
            meetings: days(30),
            dead_letters: days(30),
            sweep_log: days(30),
            stream: days(30),
            workers: days(1),
            batch: 500,
            pause: Duration::from_millis(20),
        }
    }
}

impl Retention {
    /// The cut-off of each kind of row at `now` (`None`: kept for ever).
    pub fn cutoffs(&self, now: Timestamp) -> Vec<(Kind, Timestamp)> {
        let before = |s: Option<Span>| s.map(|s| now.saturating_add(Span::from_micros(-s.as_micros())));
        [
            (Kind::Meetings, before(self.meetings)),
            (Kind::Rows(Retained::DeadLetters), before(self.dead_letters)),
            (Kind::Rows(Retained::SweepLog), before(self.sweep_log)),
            (Kind::Rows(Retained::StreamGaps), before(self.stream)),
            (Kind::Rows(Retained::ClosedShards), before(self.stream)),
            (Kind::Rows(Retained::Workers), before(self.workers)),
        ]
        .into_iter()
        .filter_map(|(k, b)| b.map(|b| (k, b)))
        .collect()
    }
}

/// A kind of row retention deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Meetings,
    Rows(Retained),
}

/// What one pass deleted (or, in a dry run, would delete).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub meetings: u64,
    /// History chunks of those meetings.
    pub history: u64,
    /// Outbox rows of those meetings.
    pub effects: u64,
    pub dead_letters: u64,
    pub sweep_log: u64,
    pub gaps: u64,
    pub shards: u64,
    pub workers: u64,
}

impl Applied {
    pub fn is_empty(&self) -> bool {
        *self == Applied::default()
    }

    fn add(&mut self, what: Retained, n: u64) {
        match what {
            Retained::DeadLetters => self.dead_letters += n,
            Retained::SweepLog => self.sweep_log += n,
            Retained::StreamGaps => self.gaps += n,
            Retained::ClosedShards => self.shards += n,
            Retained::Workers => self.workers += n,
        }
    }
}

/// Where pruned meetings' stories go before they are deleted: one `show
/// --json` object per line, flushed and synced to disk before each batch is
/// deleted.
pub struct Archive {
    out: std::io::BufWriter<std::fs::File>,
    pub written: u64,
}

impl Archive {
    /// Append to `file` (created by the caller).
    pub fn new(file: std::fs::File) -> Archive {
        Archive { out: std::io::BufWriter::new(file), written: 0 }
    }

    fn write(&mut self, value: &impl Serialize) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    /// Flush and fsync: what was written survives a crash from here on.
    fn sync(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

/// A retention failure.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the archive: {0} (nothing of this batch was deleted)")]
    Archive(#[from] std::io::Error),
}

/// Apply `retention` at `now`: every kind, in batches.
///
/// # Errors
///
/// A store failure (what was deleted before it stays deleted; the next pass
/// goes on).
pub async fn apply(store: &dyn Store, retention: &Retention, now: Timestamp) -> Result<Applied, StoreError> {
    let mut done = Applied::default();
    for (kind, before) in retention.cutoffs(now) {
        match kind {
            Kind::Meetings => {
                let pruned = prune_meetings(store, before, now, retention, None, &mut |_| {}).await;
                match pruned {
                    Ok(p) => {
                        done.meetings += p.meetings;
                        done.history += p.history;
                        done.effects += p.effects;
                    }
                    Err(RetentionError::Store(e)) => return Err(e),
                    Err(RetentionError::Archive(_)) => unreachable!("no archive"),
                }
            }
            Kind::Rows(what) => done.add(what, prune_rows(store, what, before, retention).await?),
        }
    }
    Ok(done)
}

/// Delete every row of `what` older than `before`, a batch at a time.
///
/// # Errors
///
/// A store failure.
pub async fn prune_rows(
    store: &dyn Store,
    what: Retained,
    before: Timestamp,
    retention: &Retention,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let n = store.prune(what, before, retention.batch.max(1)).await?;
        total += n;
        if n < retention.batch.max(1) as u64 {
            return Ok(total);
        }
        tokio::time::sleep(retention.pause).await;
    }
}

/// Delete every terminated meeting that ended before `before` and whose
/// effects are all done — its row, history and outbox rows — a batch at a
/// time; with an `archive`, each batch's stories are written and synced to
/// it first. `progress` hears how many meetings each batch deleted.
///
/// # Errors
///
/// A store failure, or the archive cannot be written (then nothing of that
/// batch is deleted).
pub async fn prune_meetings(
    store: &dyn Store,
    before: Timestamp,
    now: Timestamp,
    retention: &Retention,
    mut archive: Option<&mut Archive>,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Applied, RetentionError> {
    let mut done = Applied::default();
    let mut after: Option<(Timestamp, String)> = None;
    loop {
        let page = store.ended_before(before, after.as_ref(), retention.batch.max(1)).await?;
        let Some(last) = page.last().cloned() else { return Ok(done) };
        let ids: Vec<String> = page.into_iter().map(|(_, id)| id).collect();
        if let Some(a) = archive.as_deref_mut() {
            for id in ids.iter().filter_map(|id| MeetingId::new(id.as_str())) {
                if let Some(story) = crate::inspect::inspect(store, &id).await? {
                    a.write(&story)?;
                }
            }
            a.sync()?;
        }
        let d = store.delete_instances(&ids, before, now).await?;
        done.meetings += d.meetings;
        done.history += d.history;
        done.effects += d.effects;
        progress(d.meetings);
        if ids.len() < retention.batch.max(1) {
            return Ok(done);
        }
        after = Some(last);
        tokio::time::sleep(retention.pause).await;
    }
}

/// What [`apply`] would delete at `now`, deleting nothing.
///
/// # Errors
///
/// A store failure.
pub async fn would_apply(store: &dyn Store, retention: &Retention, now: Timestamp) -> Result<Applied, StoreError> {
    let mut done = Applied::default();
    for (kind, before) in retention.cutoffs(now) {
        match kind {
            Kind::Meetings => {
                let mut after: Option<(Timestamp, String)> = None;
                loop {
                    let page = store.ended_before(before, after.as_ref(), 10_000).await?;
                    done.meetings += page.len() as u64;
                    match page.last() {
                        Some(last) if page.len() == 10_000 => after = Some(last.clone()),
                        _ => break,
                    }
                }
            }
            Kind::Rows(what) => done.add(what, store.prunable(what, before).await?),
        }
    }
    Ok(done)
}
