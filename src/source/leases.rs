//! Which shards this worker reads: one lease per shard, in the store.
//!
//! Modelled on the Kinesis Client Library's lease table. Every
//! [`Leases::maintain`] (about three times per time-to-live) the worker
//! announces itself, renews the leases it holds, and — while it holds fewer
//! than its fair share of the open shards (open shards ÷ live workers,
//! rounded up) — takes free leases, and **at most one** expired lease (of a
//! worker that stopped renewing); holding more than its share (a worker
//! joined), it gives one back. Expiry is judged by the store's clock, never
//! the worker's. A checkpoint is written fenced by the lease it was read
//! under, so a worker that lost a lease (paused past its expiry, cut off from
//! the database) cannot commit records of that shard again: its unit of work
//! fails with [`StoreError::LeaseLost`] and it stops reading the shard.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::store::{Lease, Store, StoreError, WorkerInfo};
use crate::time::{Span, Timestamp};

/// What changed in one maintenance.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LeaseChanges {
    /// Shards taken now (their checkpoints must be read again).
    pub taken: Vec<String>,
    /// Shards held before and lost now.
    pub lost: Vec<String>,
    /// Shards given back to share the stream with more workers.
    pub released: Vec<String>,
}

/// This worker's leases on one stream.
#[derive(Debug)]
pub struct Leases {
    pub worker: WorkerInfo,
    pub ttl: Duration,
    held: BTreeMap<String, Lease>,
    last: Option<Instant>,
    live_workers: usize,
    /// When the soonest lease another worker holds on a shard we could read
    /// runs out (by this machine's clock: a hint for when to look again).
    next_expiry: Option<Instant>,
}

impl Leases {
    pub fn new(worker: WorkerInfo, ttl: Duration) -> Leases {
        Leases { worker, ttl, held: BTreeMap::new(), last: None, live_workers: 1, next_expiry: None }
    }

    fn span(&self) -> Span {
        Span::from_micros(self.ttl.as_micros() as i64)
    }

    /// The lease a checkpoint of `shard` is written under.
    pub fn lease(&self, shard: &str) -> Option<&Lease> {
        self.held.get(shard)
    }

    pub fn holds(&self, shard: &str) -> bool {
        self.held.contains_key(shard)
    }

    pub fn held(&self) -> impl Iterator<Item = &str> {
        self.held.keys().map(String::as_str)
    }

    /// Workers seen alive at the last maintenance (at least this one).
    pub fn live_workers(&self) -> usize {
        self.live_workers
    }

    /// A lease was found lost by a fenced write.
    pub fn lost(&mut self, shard: &str) {
        self.held.remove(shard);
    }

    /// Whether [`Leases::maintain`] is due (a third of the time-to-live, or
    /// sooner after [`Leases::poke`]).
    pub fn due(&self) -> bool {
        self.last.is_none_or(|t| t.elapsed() >= self.ttl / 3) || self.next_expiry.is_some_and(|t| Instant::now() >= t)
    }

    /// The shards changed (one closed, new ones listed): maintain at the next round.
    pub fn poke(&mut self) {
        self.last = None;
    }

    /// Announce, renew, and take what this worker's share allows of
    /// `readable` (shards that may be read now, parents first), given
    /// `open` shards in all.
    pub async fn maintain(
        &mut self,
        store: &dyn Store,
        stream_arn: &str,
        readable: &[String],
        open: usize,
    ) -> Result<LeaseChanges, StoreError> {
        let ttl = self.span();
        let workers = store.heartbeat(&self.worker, ttl).await?;
        self.live_workers = workers.iter().filter(|w| w.live).count().max(1);
        let renewed: BTreeMap<String, Lease> =
            store.renew_leases(stream_arn, &self.worker.id, ttl).await?.into_iter().collect();
        let mut changes = LeaseChanges::default();
        for (shard, lease) in &self.held {
            if renewed.get(shard) != Some(lease) {
                changes.lost.push(shard.clone());
            }
        }
        // A renewed lease under another epoch was taken and given back meanwhile: not ours to trust.
        self.held = renewed.into_iter().filter(|(s, _)| !changes.lost.contains(s)).collect();
        let fair = open.div_ceil(self.live_workers);
        // More workers than when we took our share: give one back per
        // maintenance, so the newcomer gets its share without a steal.
        if self.held.len() > fair.max(1) {
            if let Some((shard, lease)) = self.held.pop_last() {
                store.release_lease(stream_arn, &shard, &lease).await?;
                tracing::info!(shard = %shard, live_workers = self.live_workers, "gave a shard lease back to share the stream");
                changes.released.push(shard);
            }
        }
        let rows = store.leases(Some(stream_arn)).await?;
        let by_shard: BTreeMap<&str, _> = rows.iter().map(|r| (r.shard_id.as_str(), r)).collect();
        let mut took_expired = false;
        // Look again as soon as a lease we could take runs out, not a whole period later.
        let now = Timestamp::now();
        self.next_expiry = rows
            .iter()
            .filter(|r| !r.expired && r.owner.as_deref().is_some_and(|o| o != self.worker.id))
            .filter(|r| readable.contains(&r.shard_id))
            .map(|r| Instant::now() + Duration::from_micros(r.expires_at.since(now).as_micros().max(0) as u64 + 50_000))
            .min();
        let wanted: BTreeSet<&str> = readable.iter().map(String::as_str).collect();
        for shard in wanted {
            if self.held.len() >= fair {
                break;
            }
            if self.held.contains_key(shard) {
                continue;
            }
            let free = match by_shard.get(shard) {
                None => true,
                Some(r) if r.owner.is_none() => true,
                Some(r) if r.owner.as_deref() == Some(self.worker.id.as_str()) => true,
                Some(r) if r.expired && !took_expired => false,
                Some(_) => continue,
            };
            if let Some(lease) = store.acquire_lease(stream_arn, shard, &self.worker.id, ttl).await? {
                if !free {
                    took_expired = true;
                    tracing::info!(shard, epoch = lease.epoch, "took over an expired shard lease");
                }
                self.held.insert(shard.to_string(), lease);
                changes.taken.push(shard.to_string());
            }
        }
        self.last = Some(Instant::now());
        Ok(changes)
    }

    /// Give up a lease (a shard read to its end).
    pub async fn release(&mut self, store: &dyn Store, stream_arn: &str, shard: &str) -> Result<(), StoreError> {
        if let Some(lease) = self.held.remove(shard) {
            store.release_lease(stream_arn, shard, &lease).await?;
        }
        Ok(())
    }

    /// Give up every lease (a clean stop: another worker may take them at once).
    pub async fn release_all(&mut self, store: &dyn Store, stream_arn: &str) -> Result<(), StoreError> {
        for (shard, lease) in std::mem::take(&mut self.held) {
            store.release_lease(stream_arn, &shard, &lease).await?;
        }
        Ok(())
    }
}

/// Keep this worker's shard leases alive on a task of their own, every
/// third of their time-to-live, whatever the stream reader is doing: a slow
/// round (a large backlog, a slow database) does not lose the leases, and a
/// shard does not move back and forth between workers. Announces the worker
/// too. A database that fails in passing is retried (the leases then run out
/// only if it stays down for their time-to-live).
///
/// # Errors
///
/// A failure that does not pass.
pub async fn keep_renewed(
    store: std::sync::Arc<dyn Store>,
    stream_arn: String,
    worker: WorkerInfo,
    ttl: Duration,
    liveness: std::sync::Arc<crate::telemetry::Liveness>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StoreError> {
    tokio::pin!(shutdown);
    let span = Span::from_micros(ttl.as_micros() as i64);
    let every = ttl / 3;
    let mut backoff = crate::backoff::Backoff::new(every / 4, every);
    loop {
        let renew = async {
            store.heartbeat(&worker, span).await?;
            store.renew_leases(&stream_arn, &worker.id, span).await
        };
        let wait = match tokio::time::timeout(every, renew).await {
            Ok(Ok(_)) => {
                backoff.reset();
                every
            }
            Ok(Err(e)) if e.is_transient() => {
                liveness.store_failed("shard leases", &e, Timestamp::now());
                backoff.next_delay()
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                liveness.store_failed(
                    "shard leases",
                    &StoreError::no_answer("renewing shard leases", every),
                    Timestamp::now(),
                );
                backoff.next_delay()
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut shutdown => return Ok(()),
        }
    }
}

impl WorkerInfo {
    /// This process, under `id` (or a random one).
    pub fn this_process(id: Option<String>) -> WorkerInfo {
        let id = id.unwrap_or_else(|| format!("w-{:012x}", rand::random::<u64>() >> 16));
        let host =
            std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
        WorkerInfo { id, host, pid: std::process::id() as i64, started_at: Timestamp::now() }
    }
}
