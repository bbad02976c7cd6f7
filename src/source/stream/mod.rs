//! The DynamoDB Streams reader: shards, lineage, checkpoints.
//!
//! The reader lists the stream's shards (all pages), reads a parent shard to
//! its end before its children, and hands each page of records to the engine
//! together with the shard's checkpoint, so the records and the position they
//! bring the shard to commit in one transaction: a crash re-reads at most the
//! page in flight, and its records are dropped as duplicates by `eventID`.
//!
//! It resumes with `AFTER_SEQUENCE_NUMBER`, starts new shards at
//! `TRIM_HORIZON` (or, on a stream it has never read, at `LATEST` if asked),
//! re-acquires expired iterators, survives trimmed data (logged loudly,
//! recorded as a gap, reading continues from the oldest record available),
//! polls an idle stream about four times a second (as Lambda does) and backs
//! off when throttled.
//!
//! The AWS SDK sits behind [`StreamSource`], so shard splits, expired
//! iterators and trimmed data — which the local endpoint cannot produce — are
//! tested against a scripted source.
//!
//! * `port` — [`StreamSource`] and what crosses it ([`Page`]: each record as
//!   JSON text, decoded once by the reader);
//! * `shards` — lineage and positions, and how far the stream is read
//!   through (the gate's input), pure;
//! * `page` — reading one shard: a page applied with its checkpoint in one
//!   unit of work, a shard read to its end, trimmed data, passing failures;
//! * this file — the reader: shard lists, leases, rounds, the run loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::leases::Leases;
use crate::engine::{EngineError, Incoming};
use crate::meeting::MeetingWorkflow;
use crate::operate::MeetingEngine;
use crate::store::{Checkpoint, StoreError, WorkerInfo};

mod page;
mod port;
mod shards;

pub use port::{Page, Position, ShardInfo, ShardPage, Start, StreamError, StreamSource};
use shards::{Shard, Shards};

/// Reader settings.
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    pub start: Start,
    /// Pause after a round in which no shard had records (Lambda polls ~4/s).
    pub idle_delay: Duration,
    /// Longest pause when throttled or failing.
    pub max_backoff: Duration,
    /// How often the shard list is refreshed (new shards after a split).
    pub refresh_every: Duration,
    /// `GetRecords` limit.
    pub page_limit: i32,
    /// Who reads: the identity the shard leases are held under.
    pub worker: WorkerInfo,
    /// How long a shard lease lasts unless renewed (renewed every third of it).
    pub lease_ttl: Duration,
    /// The longest one round may spend reading before the others' turn
    /// (shards not read in time are read first in the next round).
    pub round_budget: Duration,
    /// The longest the reader waits for the database in one round before it
    /// treats it as gone and reads again from its checkpoints (`None`: no limit).
    pub store_deadline: Option<Duration>,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            start: Start::TrimHorizon,
            idle_delay: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            refresh_every: Duration::from_secs(30),
            page_limit: 1000,
            worker: WorkerInfo::this_process(Some("local".into())),
            lease_ttl: Duration::from_secs(10),
            round_budget: Duration::from_secs(2),
            store_deadline: None,
        }
    }
}

/// A reader failure: the database failed in passing (the reader waits and
/// reads again from its checkpoints), or something that stops the worker.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stream {0}: {1}")]
    Stream(String, StreamError),
}

impl ReaderError {
    /// The database failed in passing.
    pub fn is_transient(&self) -> bool {
        match self {
            ReaderError::Engine(e) => e.is_transient(),
            ReaderError::Store(e) => e.is_transient(),
            ReaderError::Stream(..) => false,
        }
    }
}

/// What one reading round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub records: u64,
    pub pages: u64,
    pub throttled: u64,
    pub expired: u64,
    pub trimmed: u64,
    pub closed: u64,
}

/// Reads one stream into the engine.
pub struct StreamReader {
    source: Arc<dyn StreamSource>,
    engine: Arc<MeetingEngine>,
    arn: String,
    options: ReaderOptions,
    shards: Shards,
    last_refresh: Option<std::time::Instant>,
    backoff: Duration,
    fresh_stream: bool,
    leases: Leases,
    /// The shard a round starts with (rounds cut short by their budget take turns).
    turn: usize,
}

impl StreamReader {
    /// A reader that resumes from the checkpoints stored for `stream_arn`.
    pub async fn new(
        source: Arc<dyn StreamSource>,
        engine: Arc<MeetingEngine>,
        stream_arn: String,
        options: ReaderOptions,
    ) -> Result<Self, ReaderError> {
        let stored = engine.store().checkpoints(Some(&stream_arn)).await?;
        let fresh_stream = stored.is_empty();
        let mut shards = Shards::default();
        for c in stored {
            shards.insert(
                c.shard_id.clone(),
                Shard {
                    parent: c.parent_shard_id,
                    closed: c.closed,
                    sequence: c.sequence_number,
                    caught_up: c.caught_up,
                    ..Shard::default()
                },
            );
        }
        let leases = Leases::new(options.worker.clone(), options.lease_ttl);
        Ok(StreamReader {
            source,
            engine,
            arn: stream_arn,
            leases,
            options,
            shards,
            last_refresh: None,
            backoff: Duration::ZERO,
            fresh_stream,
            turn: 0,
        })
    }

    pub fn stream_arn(&self) -> &str {
        &self.arn
    }

    /// The shards this worker holds leases on now.
    pub fn held_shards(&self) -> Vec<String> {
        self.leases.held().map(String::from).collect()
    }

    /// Renew and take shard leases; learn from the other workers' checkpoints
    /// how far the shards they read are read, and which are closed.
    async fn maintain_leases(&mut self) -> Result<(), ReaderError> {
        let readable = self.readable();
        let open = self.shards.values().filter(|s| !s.closed && s.listed).count();
        let store = self.engine.store().clone();
        let changes = self.leases.maintain(store.as_ref(), &self.arn, &readable, open).await?;
        for shard in &changes.lost {
            tracing::warn!(shard = %shard, "shard lease lost to another worker; no longer reading it");
        }
        let stored = store.checkpoints(Some(&self.arn)).await?;
        for c in stored {
            let held = self.leases.holds(&c.shard_id);
            let taken = changes.taken.contains(&c.shard_id);
            let Some(s) = self.shards.get_mut(&c.shard_id) else { continue };
            if !held || taken {
                // Another worker's position (or ours to resume from): as stored.
                s.closed = c.closed;
                s.sequence = c.sequence_number.clone();
                s.caught_up = c.caught_up;
                s.iterator = None;
            }
            s.elsewhere = crate::engine::read_through(&c);
        }
        for shard in changes.lost.into_iter().chain(changes.released).chain(changes.taken) {
            if let Some(s) = self.shards.get_mut(&shard) {
                s.iterator = None;
                s.progress = None;
            }
        }
        Ok(())
    }

    /// Learn how far the shards other workers read are read (their stored
    /// checkpoints), for the stream gate.
    async fn refresh_elsewhere(&mut self) -> Result<(), ReaderError> {
        let stored = self.engine.store().checkpoints(Some(&self.arn)).await?;
        for c in stored {
            if self.leases.holds(&c.shard_id) {
                continue;
            }
            if let Some(s) = self.shards.get_mut(&c.shard_id) {
                s.closed = c.closed;
                s.elsewhere = crate::engine::read_through(&c);
            }
        }
        Ok(())
    }

    /// After a failed unit of work (its commit's outcome unknown) or a
    /// database outage: forget every position not known to be committed and
    /// read again from the stored checkpoints, as after a crash. Records
    /// read twice are dropped by `eventID`.
    pub async fn resync(&mut self) -> Result<(), ReaderError> {
        let stored = self.engine.store().checkpoints(Some(&self.arn)).await?;
        self.shards.reset_to(stored);
        self.leases.poke();
        Ok(())
    }

    /// A fenced write found the lease gone: stop reading the shard.
    fn lease_lost(&mut self, shard_id: &str) {
        tracing::warn!(shard = shard_id, "shard lease lost to another worker; its last page is left to the new owner");
        self.leases.lost(shard_id);
        if let Some(s) = self.shards.get_mut(shard_id) {
            s.iterator = None;
            s.progress = None;
        }
    }

    /// Apply a page (or a bare checkpoint) under the shard's lease.
    async fn commit(
        &mut self,
        shard_id: &str,
        items: Vec<Incoming<MeetingWorkflow>>,
        mut c: Checkpoint,
    ) -> Result<bool, ReaderError> {
        c.lease = self.leases.lease(shard_id).cloned();
        match self.engine.apply_with_checkpoint(items, Some(c)).await {
            Ok(_) => Ok(true),
            Err(EngineError::Store(StoreError::LeaseLost(_))) => {
                self.lease_lost(shard_id);
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Give every lease back (a clean stop: another worker takes over at once).
    pub async fn release_leases(&mut self) -> Result<(), ReaderError> {
        let store = self.engine.store().clone();
        self.leases.release_all(store.as_ref(), &self.arn).await?;
        Ok(())
    }

    /// List every shard (all pages) and learn new ones.
    async fn refresh(&mut self) -> Result<(), ReaderError> {
        let mut after: Option<String> = None;
        let mut listed = Vec::new();
        loop {
            let (page, last) = self
                .source
                .describe(&self.arn, after.as_deref())
                .await
                .map_err(|e| ReaderError::Stream(self.arn.clone(), e))?;
            listed.extend(page);
            match last {
                Some(l) if after.as_deref() != Some(l.as_str()) => after = Some(l),
                _ => break,
            }
        }
        for s in self.shards.values_mut() {
            s.listed = false;
        }
        for info in listed {
            let start = if self.fresh_stream && self.options.start == Start::Latest {
                Position::Latest
            } else {
                Position::TrimHorizon
            };
            if !self.shards.contains_key(&info.shard_id) {
                self.leases.poke();
            }
            let shard = self.shards.entry(info.shard_id.clone()).or_insert_with(|| Shard {
                parent: info.parent_shard_id.clone(),
                start: Some(start),
                ..Shard::default()
            });
            shard.listed = true;
            if shard.parent.is_none() {
                shard.parent = info.parent_shard_id;
            }
        }
        self.fresh_stream = false;
        self.last_refresh = Some(std::time::Instant::now());
        Ok(())
    }

    /// Shards that may be read now: open, and whose parent is fully read
    /// (or gone from the stream), parents first.
    fn readable(&self) -> Vec<String> {
        self.shards.readable()
    }

    /// Read one page from every readable shard.
    pub async fn round(&mut self) -> Result<RoundReport, ReaderError> {
        let mut report = RoundReport::default();
        let due = self.last_refresh.is_none_or(|t| t.elapsed() >= self.options.refresh_every);
        if due || self.readable().is_empty() {
            match self.refresh().await {
                Ok(()) => {}
                Err(ReaderError::Stream(_, e)) if !matches!(e, StreamError::Fatal(_) | StreamError::NotFound(_)) => {
                    self.transient(e, &mut report).await?;
                    return Ok(report);
                }
                Err(e) => return Err(e),
            }
        }
        if self.leases.due() {
            self.maintain_leases().await?;
        }
        let round_start = self.engine.clock().now();
        let began = std::time::Instant::now();
        let mine: Vec<String> = self.readable().into_iter().filter(|s| self.leases.holds(s)).collect();
        // Shards take turns at the head of a round, so one cut short by its
        // budget does not always starve the same shards.
        let n = mine.len().max(1);
        let start = self.turn % n;
        self.turn = self.turn.wrapping_add(1);
        for (i, shard_id) in mine.iter().cycle().skip(start).take(mine.len()).enumerate() {
            if i > 0 && began.elapsed() >= self.options.round_budget {
                tracing::debug!(read = i, of = mine.len(), "round budget spent; the other shards next round");
                break;
            }
            self.read_shard(shard_id, round_start, &mut report).await?;
        }
        // Every open shard read (here, or by another worker as its checkpoint
        // says)? Then the stream is read through the least of their
        // positions: timers due before that may fire.
        let others = self.shards.iter().any(|(id, s)| !s.closed && s.listed && !self.leases.holds(id));
        if others {
            self.refresh_elsewhere().await?;
        }
        let leases = &self.leases;
        let through = self.shards.read_through(round_start, |id| leases.holds(id));
        if let Some(t) = through {
            self.engine.advance_gate(t);
        }
        Ok(report)
    }

    /// Read until `shutdown`: rounds back to back while records flow, a short
    /// idle pause otherwise, longer after failures. A round is never cut
    /// short: shutdown is honoured between rounds, after their commits.
    ///
    /// A database that fails in passing is waited out (capped exponential
    /// backoff, the outage in the engine's liveness for `/readyz`); then the
    /// reader reads again from its stored checkpoints, as after a crash.
    ///
    /// # Errors
    ///
    /// A failure that does not pass: the stream cannot be read at all, or the
    /// database refuses for good (a schema, a permission, a full disk).
    pub async fn run(&mut self, shutdown: impl Future<Output = ()>) -> Result<(), ReaderError> {
        tokio::pin!(shutdown);
        let mut backoff = crate::backoff::Backoff::store();
        let mut resync = false;
        loop {
            let deadline = self.options.store_deadline;
            let result = async {
                if resync {
                    self.resync().await?;
                }
                self.round().await
            };
            let result = match deadline {
                Some(d) => tokio::time::timeout(d, result)
                    .await
                    .unwrap_or_else(|_| Err(StoreError::no_answer("stream reader", d).into())),
                None => result.await,
            };
            let pause = match result {
                Ok(round) => {
                    resync = false;
                    backoff.reset();
                    let now = self.engine.clock().now();
                    self.engine.liveness().store_ok(now);
                    self.engine.liveness().reader_tick(now);
                    self.engine.reader_running(now);
                    let idle = if round.records == 0 { self.options.idle_delay } else { Duration::ZERO };
                    idle.max(self.backoff)
                }
                Err(e) if e.is_transient() => {
                    self.engine.reader_stopped();
                    if let Some(se) = crate::worker::AsStoreError::store_error(&e) {
                        self.engine.liveness().store_failed("stream reader", se, self.engine.clock().now());
                    }
                    resync = true;
                    backoff.next_delay()
                }
                Err(e) => return Err(e),
            };
            tokio::select! {
                biased;
                _ = &mut shutdown => return self.stop().await,
                _ = tokio::time::sleep(pause), if !pause.is_zero() => {}
                _ = std::future::ready(()), if pause.is_zero() => {}
            }
        }
    }

    /// A clean stop: give the leases back (best effort — a database that is
    /// down lets them expire instead).
    async fn stop(&mut self) -> Result<(), ReaderError> {
        let release = self.release_leases();
        match tokio::time::timeout(Duration::from_secs(5), release).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("giving the shard leases back failed ({e}); they expire on their own"),
            Err(_) => tracing::warn!("giving the shard leases back took too long; they expire on their own"),
        }
        Ok(())
    }
}
