//! A backend with no database at all: everything in maps behind one lock.
//!
//! For tests and in-memory runs. A unit of work holds the lock from `begin`
//! to `commit` (as SQLite's write lock), so units of work take turns and a
//! commit is all or nothing. A [`MemoryStore`] handle can be cloned; the
//! clones share one state, as two processes share one database file.

use crate::store::SweepFinding;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{
    Changes, Checkpoint, Claim, Clocks, DeadLetterRow, Deleted, DueKey, EffectStatus, Gap, HistoryAppend, Indexed,
    InstanceFilter, Lease, LeaseRow, OutboxFilter, OutboxOutcome, OutboxRow, Overview, Page, PendingFilter, PruneLog,
    Requeue, Retained, Store, StoreError, StoredChunk, StoredInstance, Stuck, Summary, Tallies, UnitOfWork, WorkerInfo,
    WorkerRow,
};
use crate::time::{Span, Timestamp};

/// An instance as kept: the row and what is indexed of it.
#[derive(Clone)]
struct Row {
    stored: StoredInstance,
    index: Indexed,
}

#[derive(Default)]
struct Data {
    instances: BTreeMap<String, Row>,
    /// Each instance's first pending timer, in fire order.
    due: BTreeSet<DueKey>,
    /// Each instance's chunks, as written, with their seq.
    history: BTreeMap<String, Vec<StoredChunk>>,
    next_seq: i64,
    outbox: BTreeMap<i64, (OutboxRow, Option<(String, Timestamp)>)>,
    keys: BTreeSet<String>,
    dead: Vec<DeadLetterRow>,
    checkpoints: BTreeMap<(String, String), Checkpoint>,
    gaps: Vec<Gap>,
    sweep_log: Vec<SweepFinding>,
    clocks: Clocks,
    workers: BTreeMap<String, (WorkerInfo, Timestamp)>,
    /// (stream, shard) → (owner, epoch, expires at).
    leases: BTreeMap<(String, String), (Option<String>, i64, Timestamp)>,
    prune_log: Option<PruneLog>,
}

/// The in-memory backend.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<Data>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn first_timer(r: &Row) -> Option<DueKey> {
    r.index.timers.first().map(|&(rank, due)| DueKey { due, rank, id: r.stored.id.clone() })
}

fn due_after(s: &Data, after: Option<&DueKey>, upto: Timestamp, limit: usize) -> Vec<DueKey> {
    let iter: Box<dyn Iterator<Item = &DueKey>> = match after {
        Some(a) => Box::new(s.due.range((std::ops::Bound::Excluded(a.clone()), std::ops::Bound::Unbounded))),
        None => Box::new(s.due.iter()),
    };
    iter.take_while(|k| k.due <= upto).take(limit).cloned().collect()
}

fn max_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn append_history(s: &mut Data, h: HistoryAppend) {
    if h.entries == 0 {
        return;
    }
    s.next_seq += 1;
    let seq = s.next_seq;
    s.history.entry(h.id).or_default().push(StoredChunk { seq, bytes: h.bytes });
}

fn load(s: &Data, ids: &[&str]) -> Vec<StoredInstance> {
    ids.iter().filter_map(|id| s.instances.get(*id).map(|r| r.stored.clone())).collect()
}

fn apply(s: &mut Data, changes: Changes) -> Result<(), StoreError> {
    // Check every fence first: all or nothing.
    for w in &changes.instances {
        let stored = s.instances.get(&w.stored.id).map(|r| r.stored.version);
        if stored != w.loaded_version {
            return Err(StoreError::Conflict(w.stored.id.clone()));
        }
    }
    if let Some(Checkpoint { stream_arn, shard_id, lease: Some(lease), .. }) = &changes.checkpoint {
        let held = s.leases.get(&(stream_arn.clone(), shard_id.clone()));
        if held.is_none_or(|(owner, epoch, _)| owner.as_deref() != Some(lease.owner.as_str()) || *epoch != lease.epoch)
        {
            return Err(StoreError::LeaseLost(shard_id.clone()));
        }
    }
    for w in changes.instances {
        let id = w.stored.id.clone();
        if let Some(old) = s.instances.get(&id).and_then(first_timer) {
            s.due.remove(&old);
        }
        let row = Row { stored: w.stored, index: w.index };
        if let Some(new) = first_timer(&row) {
            s.due.insert(new);
        }
        s.instances.insert(id, row);
    }
    for h in changes.history {
        append_history(s, h);
    }
    for e in changes.effects {
        if !s.keys.insert(e.key.clone()) {
            continue;
        }
        let id = s.outbox.keys().next_back().map_or(1, |k| k + 1);
        let (done, status, attempts) =
            if e.completed { (e.count, EffectStatus::Done, 1) } else { (0, EffectStatus::Pending, 0) };
        let row = OutboxRow {
            id,
            key: e.key,
            subject: e.subject,
            parts: e.parts,
            done,
            status,
            attempts,
            next_attempt_at: e.at,
            last_error: None,
            created_at: e.at,
            updated_at: e.at,
        };
        s.outbox.insert(id, (row, None));
    }
    for d in changes.dead_letters {
        let id = s.dead.len() as i64 + 1;
        s.dead.push(DeadLetterRow {
            id,
            at: d.at,
            origin: d.origin,
            kind: d.kind.to_string(),
            reason: d.reason,
            event_id: d.event_id,
            raw: d.raw,
        });
    }
    if let Some(c) = changes.checkpoint {
        let key = (c.stream_arn.clone(), c.shard_id.clone());
        match s.checkpoints.get_mut(&key) {
            Some(old) => {
                old.parent_shard_id = c.parent_shard_id.or(old.parent_shard_id.take());
                old.sequence_number = c.sequence_number.or(old.sequence_number.take());
                old.closed |= c.closed;
                old.records += c.records;
                old.last_event_at = c.last_event_at.or(old.last_event_at);
                old.caught_up = c.caught_up;
                old.at = c.at;
            }
            None => {
                s.checkpoints.insert(key, Checkpoint { lease: None, ..c });
            }
        }
    }
    s.clocks.last_instant = max_opt(s.clocks.last_instant, changes.clocks.last_instant);
    s.clocks.event_clock = max_opt(s.clocks.event_clock, changes.clocks.event_clock);
    Ok(())
}

struct MemoryUnitOfWork {
    state: OwnedMutexGuard<Data>,
}

#[async_trait]
impl UnitOfWork for MemoryUnitOfWork {
    async fn load(&mut self, ids: &[&str]) -> Result<Vec<StoredInstance>, StoreError> {
        Ok(load(&self.state, ids))
    }

    async fn due(&mut self, after: Option<&DueKey>, upto: Timestamp, limit: usize) -> Result<Vec<DueKey>, StoreError> {
        Ok(due_after(&self.state, after, upto, limit))
    }

    async fn commit(mut self: Box<Self>, changes: Changes) -> Result<(), StoreError> {
        apply(&mut self.state, changes)
    }

    async fn rollback(self: Box<Self>) -> Result<(), StoreError> {
        Ok(())
    }
}

fn grouped<K: Ord>(items: impl Iterator<Item = K>) -> Vec<(K, i64)> {
    let mut m = BTreeMap::new();
    for k in items {
        *m.entry(k).or_insert(0) += 1;
    }
    m.into_iter().collect()
}

#[async_trait]
impl Store for MemoryStore {
    fn describe(&self) -> String {
        "memory".into()
    }

    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        Ok(Box::new(MemoryUnitOfWork { state: self.state.clone().lock_owned().await }))
    }

    async fn load(&self, ids: &[&str]) -> Result<Vec<StoredInstance>, StoreError> {
        Ok(load(&*self.state.lock().await, ids))
    }

    async fn due(&self, after: Option<&DueKey>, upto: Timestamp, limit: usize) -> Result<Vec<DueKey>, StoreError> {
        Ok(due_after(&*self.state.lock().await, after, upto, limit))
    }

    async fn clocks(&self) -> Result<Clocks, StoreError> {
        Ok(self.state.lock().await.clocks)
    }

    async fn instances(&self, f: &InstanceFilter) -> Result<Vec<StoredInstance>, StoreError> {
        let s = self.state.lock().await;
        let from = match &f.after {
            Some(a) => std::ops::Bound::Excluded(a.clone()),
            None => std::ops::Bound::Unbounded,
        };
        Ok(s.instances
            .range((from, std::ops::Bound::Unbounded))
            .map(|(_, r)| r)
            .filter(|r| f.state.as_deref().is_none_or(|st| r.index.state == st))
            .filter(|r| f.reason.as_deref().is_none_or(|x| r.index.end.is_some_and(|(e, _)| e == x)))
            .take(f.limit.unwrap_or(usize::MAX))
            .map(|r| r.stored.clone())
            .collect())
    }

    async fn find(&self, name: &str, value: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        // No index here (tests): every instance's attributes, in id order.
        let s = self.state.lock().await;
        Ok(s.instances
            .values()
            .filter(|r| r.index.attrs.iter().any(|(n, v)| *n == name && v == value))
            .map(|r| r.stored.id.clone())
            .take(limit)
            .collect())
    }

    async fn find_range(
        &self,
        name: &str,
        after: (&str, &str),
        to: &str,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let s = self.state.lock().await;
        let mut found: Vec<(&str, &str)> = s
            .instances
            .values()
            .flat_map(|r| r.index.attrs.iter().map(move |(n, v)| (*n, v.as_str(), r.stored.id.as_str())))
            .filter(|&(n, v, id)| n == name && (v, id) > after && v <= to)
            .map(|(_, v, id)| (v, id))
            .collect();
        found.sort_unstable();
        Ok(found.into_iter().take(limit).map(|(v, id)| (v.to_string(), id.to_string())).collect())
    }

    async fn index_search(&self) -> Result<u64, StoreError> {
        Ok(0) // computed at each search
    }

    async fn summaries(&self, after: Option<&str>, limit: usize) -> Result<Vec<Summary>, StoreError> {
        let s = self.state.lock().await;
        let from = match after {
            Some(a) => std::ops::Bound::Excluded(a.to_string()),
            None => std::ops::Bound::Unbounded,
        };
        Ok(s.instances
            .range((from, std::ops::Bound::Unbounded))
            .take(limit)
            .map(|(id, r)| Summary {
                id: id.clone(),
                state: r.index.state.to_string(),
                reason: r.index.end.map(|(e, _)| e.to_string()),
                ended_at: r.index.end.map(|(_, at)| at),
                attrs: r.index.attrs.iter().map(|(n, v)| (n.to_string(), v.clone())).collect(),
            })
            .collect())
    }

    async fn chunks(&self, id: &str) -> Result<Vec<StoredChunk>, StoreError> {
        Ok(self.state.lock().await.history.get(id).cloned().unwrap_or_default())
    }

    async fn pending(&self, f: &PendingFilter) -> Result<Vec<DueKey>, StoreError> {
        let s = self.state.lock().await;
        let mut all: Vec<DueKey> = s
            .instances
            .values()
            .filter(|r| f.id.as_ref().is_none_or(|id| *id == r.stored.id))
            .flat_map(|r| r.index.timers.iter().map(|&(rank, due)| DueKey { due, rank, id: r.stored.id.clone() }))
            .collect();
        all.sort();
        all.truncate(f.limit);
        Ok(all)
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.state.lock().await.due.first().map(|k| k.due))
    }

    async fn outbox(&self, f: &OutboxFilter) -> Result<Vec<OutboxRow>, StoreError> {
        let s = self.state.lock().await;
        Ok(s.outbox
            .values()
            .map(|(row, _)| row)
            .filter(|r| f.subject.as_ref().is_none_or(|m| *m == r.subject))
            .filter(|r| f.status.is_none_or(|st| r.status == st))
            .filter(|r| f.id.is_none_or(|id| r.id == id))
            .cloned()
            .collect())
    }

    async fn recent_outbox(
        &self,
        f: &OutboxFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let s = self.state.lock().await;
        Ok(s.outbox
            .range(..before.unwrap_or(i64::MAX))
            .rev()
            .map(|(_, (r, _))| r)
            .filter(|r| f.subject.as_ref().is_none_or(|m| *m == r.subject) && f.status.is_none_or(|st| st == r.status))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn recent_dead_letters(&self, before: Option<i64>, limit: usize) -> Result<Vec<DeadLetterRow>, StoreError> {
        let s = self.state.lock().await;
        Ok(s.dead.iter().rev().filter(|d| d.id < before.unwrap_or(i64::MAX)).take(limit).cloned().collect())
    }

    async fn dead_letters(&self, page: &Page) -> Result<Vec<DeadLetterRow>, StoreError> {
        let s = self.state.lock().await;
        Ok(s.dead.iter().filter(|d| d.id > page.after.unwrap_or(0)).take(page.limit).cloned().collect())
    }

    async fn tallies(&self) -> Result<Tallies, StoreError> {
        let s = self.state.lock().await;
        let rows = s.instances.values().map(|r| &r.index);
        let dead: BTreeMap<String, i64> = s.dead.iter().fold(BTreeMap::new(), |mut acc, d| {
            *acc.entry(d.kind.clone()).or_insert(0) += 1;
            acc
        });
        Ok(Tallies {
            instances: s.instances.len() as i64,
            by_state: grouped(rows.clone().map(|x| x.state.to_string())),
            by_reason: grouped(rows.clone().filter_map(|x| x.end.map(|(e, _)| e.to_string()))),
            timers_pending: rows.clone().map(|x| x.timers.len() as i64).sum(),
            timers_by_rank: grouped(rows.clone().flat_map(|x| x.timers.iter().map(|(rank, _)| *rank))),
            next_timer_due: s.due.first().map(|k| k.due),
            effects_by_status: grouped::<EffectStatus>(s.outbox.values().map(|(r, _)| r.status)),
            dead_letters: s.dead.len() as i64,
            dead_letters_by_kind: dead.into_iter().collect(),
        })
    }

    async fn overview(&self, now: Timestamp) -> Result<Overview, StoreError> {
        let s = self.state.lock().await;
        let rows = s.instances.values().map(|r| &r.index);
        let since = |h: i64| {
            let from = now.saturating_add(Span::from_hours(-h));
            grouped(rows.clone().filter_map(|x| x.end.filter(|(_, at)| *at >= from).map(|(e, _)| e.to_string())))
        };
        let stuck = |f: &dyn Fn(&OutboxRow) -> bool| {
            let mut rows: Vec<&OutboxRow> = s.outbox.values().map(|(r, _)| r).filter(|r| f(r)).collect();
            rows.sort_by_key(|r| r.id);
            let oldest = rows.first().map(|r| Stuck {
                id: r.id,
                instance: r.subject.clone(),
                error: r.last_error.clone(),
                at: r.updated_at,
            });
            (rows.len() as i64, oldest)
        };
        let (failed, failed_oldest) = stuck(&|r| r.status == EffectStatus::Failed);
        let (retrying, retrying_oldest) = stuck(&|r| r.status == EffectStatus::Pending && r.attempts > 0);
        let day = now.saturating_add(Span::from_hours(-24));
        Ok(Overview {
            live_by_state: grouped(rows.clone().filter(|x| x.end.is_none()).map(|x| x.state.to_string())),
            ended: rows.clone().filter(|x| x.end.is_some()).count() as i64,
            ended_hour: since(1),
            ended_day: since(24),
            failed,
            failed_oldest,
            retrying,
            retrying_oldest,
            dead_letters_day: s.dead.iter().filter(|d| d.at >= day).count() as i64,
            oldest_overdue: s.due.first().map(|k| k.due).filter(|d| *d <= now),
        })
    }

    async fn checkpoints(&self, stream_arn: Option<&str>) -> Result<Vec<Checkpoint>, StoreError> {
        let s = self.state.lock().await;
        Ok(s.checkpoints.values().filter(|c| stream_arn.is_none_or(|a| c.stream_arn == a)).cloned().collect())
    }

    async fn gaps(&self) -> Result<Vec<Gap>, StoreError> {
        Ok(self.state.lock().await.gaps.clone())
    }

    async fn claim_outbox(&self, claim: &Claim) -> Result<Vec<OutboxRow>, StoreError> {
        let mut s = self.state.lock().await;
        // Leases are judged by "the database's clock": this process's.
        let db_now = Timestamp::now();
        let until = db_now.saturating_add(claim.lease);
        let mut due: Vec<&mut (OutboxRow, Option<(String, Timestamp)>)> = s
            .outbox
            .values_mut()
            .filter(|(r, _)| r.status == EffectStatus::Pending && r.next_attempt_at <= claim.now)
            .filter(|(r, _)| !claim.running.contains(&r.id))
            .filter(|(_, lease)| match lease {
                None => true,
                Some((owner, until)) => *owner == claim.owner || *until <= db_now,
            })
            .collect();
        due.sort_by_key(|(r, _)| (r.next_attempt_at, r.id));
        Ok(due
            .into_iter()
            .take(claim.limit)
            .map(|(r, lease)| {
                *lease = Some((claim.owner.clone(), until));
                r.clone()
            })
            .collect())
    }

    async fn renew_effect_leases(&self, owner: &str, ids: &[i64], lease: Span) -> Result<Vec<i64>, StoreError> {
        let mut s = self.state.lock().await;
        let until = Timestamp::now().saturating_add(lease);
        let mut held = Vec::new();
        for id in ids {
            if let Some((row, Some((o, u)))) = s.outbox.get_mut(id) {
                if o == owner && row.status == EffectStatus::Pending {
                    *u = until;
                    held.push(*id);
                }
            }
        }
        Ok(held)
    }

    async fn finish_outbox(&self, owner: &str, outcomes: &[OutboxOutcome]) -> Result<(), StoreError> {
        let mut s = self.state.lock().await;
        for o in outcomes {
            let Some((row, lease)) = s.outbox.get_mut(&o.id) else { continue };
            if lease.as_ref().map(|(w, _)| w.as_str()) != Some(owner) {
                continue;
            }
            *lease = None;
            row.done = o.done;
            row.status = o.status;
            row.attempts = o.attempts;
            row.next_attempt_at = o.next_attempt_at;
            row.last_error.clone_from(&o.last_error);
            row.updated_at = o.at;
            append_history(&mut s, o.history.clone());
        }
        Ok(())
    }

    async fn requeue_failed(&self, which: Requeue, now: Timestamp) -> Result<u64, StoreError> {
        let mut s = self.state.lock().await;
        let mut n = 0;
        for (row, _) in s.outbox.values_mut() {
            if row.status == EffectStatus::Failed && (which == Requeue::All || which == Requeue::One(row.id)) {
                row.status = EffectStatus::Pending;
                row.attempts = 0;
                row.next_attempt_at = now;
                row.updated_at = now;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn copy_outbox(&self, rows: &[OutboxRow]) -> Result<(), StoreError> {
        let mut s = self.state.lock().await;
        for r in rows {
            s.keys.insert(r.key.clone());
            s.outbox.insert(r.id, (r.clone(), None));
        }
        Ok(())
    }

    async fn next_effect_attempt(&self) -> Result<Option<Timestamp>, StoreError> {
        let s = self.state.lock().await;
        Ok(s.outbox
            .values()
            .filter(|(r, _)| r.status == EffectStatus::Pending)
            .map(|(r, lease)| lease.as_ref().map_or(r.next_attempt_at, |(_, until)| r.next_attempt_at.max(*until)))
            .min())
    }

    async fn record_gap(&self, gap: &Gap) -> Result<(), StoreError> {
        self.state.lock().await.gaps.push(gap.clone());
        Ok(())
    }

    async fn sweep_log(&self, limit: i64) -> Result<Vec<SweepFinding>, StoreError> {
        let s = self.state.lock().await;
        Ok(s.sweep_log.iter().rev().take(limit.max(0) as usize).cloned().collect())
    }

    async fn record_sweep(&self, findings: &[SweepFinding]) -> Result<(), StoreError> {
        self.state.lock().await.sweep_log.extend_from_slice(findings);
        Ok(())
    }

    async fn forget_checkpoints(&self, stream_arn: &str) -> Result<u64, StoreError> {
        let mut s = self.state.lock().await;
        let before = s.checkpoints.len();
        s.checkpoints.retain(|(arn, _), _| arn != stream_arn);
        Ok((before - s.checkpoints.len()) as u64)
    }

    async fn heartbeat(&self, worker: &WorkerInfo, ttl: Span) -> Result<Vec<WorkerRow>, StoreError> {
        self.state.lock().await.workers.insert(worker.id.clone(), (worker.clone(), Timestamp::now()));
        self.workers(ttl).await
    }

    async fn claim_worker(
        &self,
        worker: &WorkerInfo,
        ttl: Span,
        take_over: bool,
    ) -> Result<Option<WorkerRow>, StoreError> {
        let mut s = self.state.lock().await;
        let now = Timestamp::now();
        let since = now.saturating_add(Span::from_micros(-ttl.as_micros()));
        if let Some((info, seen)) = s.workers.get(&worker.id) {
            if *seen >= since && !take_over && !info.same_process(worker) {
                return Ok(Some(WorkerRow { info: info.clone(), last_seen: *seen, live: true }));
            }
        }
        s.workers.insert(worker.id.clone(), (worker.clone(), now));
        Ok(None)
    }

    async fn workers(&self, ttl: Span) -> Result<Vec<WorkerRow>, StoreError> {
        let s = self.state.lock().await;
        let since = Timestamp::now().saturating_add(Span::from_micros(-ttl.as_micros()));
        Ok(s.workers
            .values()
            .map(|(info, seen)| WorkerRow { info: info.clone(), last_seen: *seen, live: *seen >= since })
            .collect())
    }

    async fn leases(&self, stream_arn: Option<&str>) -> Result<Vec<LeaseRow>, StoreError> {
        let s = self.state.lock().await;
        let now = Timestamp::now();
        Ok(s.leases
            .iter()
            .filter(|((arn, _), _)| stream_arn.is_none_or(|a| a == arn))
            .map(|((arn, shard), (owner, epoch, expires))| LeaseRow {
                stream_arn: arn.clone(),
                shard_id: shard.clone(),
                owner: owner.clone(),
                epoch: *epoch,
                expires_at: *expires,
                expired: *expires <= now,
            })
            .collect())
    }

    async fn acquire_lease(
        &self,
        stream_arn: &str,
        shard_id: &str,
        owner: &str,
        ttl: Span,
    ) -> Result<Option<Lease>, StoreError> {
        let mut s = self.state.lock().await;
        let now = Timestamp::now();
        let until = now.saturating_add(ttl);
        let entry = s.leases.entry((stream_arn.to_string(), shard_id.to_string())).or_insert((None, 0, now));
        let (held_by, epoch, expires) = entry.clone();
        let live = expires > now;
        let epoch = match held_by.as_deref() {
            Some(o) if o == owner && live => epoch,
            Some(_) if live => return Ok(None),
            _ => epoch + 1,
        };
        *entry = (Some(owner.to_string()), epoch, until);
        Ok(Some(Lease { owner: owner.to_string(), epoch }))
    }

    async fn renew_leases(&self, stream_arn: &str, owner: &str, ttl: Span) -> Result<Vec<(String, Lease)>, StoreError> {
        let mut s = self.state.lock().await;
        let now = Timestamp::now();
        let mut out = Vec::new();
        for ((arn, shard), (held_by, epoch, expires)) in s.leases.iter_mut() {
            if arn == stream_arn && held_by.as_deref() == Some(owner) && *expires > now {
                *expires = now.saturating_add(ttl);
                out.push((shard.clone(), Lease { owner: owner.to_string(), epoch: *epoch }));
            }
        }
        Ok(out)
    }

    async fn release_lease(&self, stream_arn: &str, shard_id: &str, lease: &Lease) -> Result<(), StoreError> {
        let mut s = self.state.lock().await;
        if let Some((held_by, epoch, expires)) = s.leases.get_mut(&(stream_arn.to_string(), shard_id.to_string())) {
            if held_by.as_deref() == Some(lease.owner.as_str()) && *epoch == lease.epoch {
                *held_by = None;
                *expires = Timestamp::now();
            }
        }
        Ok(())
    }

    async fn ended_before(
        &self,
        before: Timestamp,
        after: Option<&(Timestamp, String)>,
        limit: usize,
    ) -> Result<Vec<(Timestamp, String)>, StoreError> {
        let s = self.state.lock().await;
        let open: BTreeSet<&String> =
            s.outbox.values().filter(|(r, _)| r.status != EffectStatus::Done).map(|(r, _)| &r.subject).collect();
        let mut ended: Vec<(Timestamp, String)> = s
            .instances
            .values()
            .filter_map(|r| r.index.end.map(|(_, at)| (at, r.stored.id.clone())))
            .filter(|(at, id)| *at < before && !open.contains(id))
            .filter(|k| after.is_none_or(|a| k > a))
            .collect();
        ended.sort();
        ended.truncate(limit);
        Ok(ended)
    }

    async fn delete_instances(&self, ids: &[String], before: Timestamp, now: Timestamp) -> Result<Deleted, StoreError> {
        let mut s = self.state.lock().await;
        let mut d = Deleted::default();
        for id in ids {
            d.history += s.history.remove(id).map_or(0, |h| h.len() as u64);
            let rows: Vec<i64> = s
                .outbox
                .iter()
                .filter(|(_, (r, _))| r.subject == *id && r.status == EffectStatus::Done)
                .map(|(k, _)| *k)
                .collect();
            for k in rows {
                s.outbox.remove(&k);
                d.effects += 1;
            }
            if s.instances.get(id).is_some_and(|r| r.index.end.is_some_and(|(_, at)| at < before)) {
                s.instances.remove(id);
                d.meetings += 1;
            }
        }
        let log = s.prune_log.get_or_insert(PruneLog { through: before, meetings: 0, last_at: now });
        log.through = log.through.max(before);
        log.meetings += d.meetings as i64;
        log.last_at = now;
        Ok(d)
    }

    async fn prune(&self, what: Retained, before: Timestamp, limit: usize) -> Result<u64, StoreError> {
        let mut s = self.state.lock().await;
        fn oldest<T>(rows: &mut Vec<T>, at: impl Fn(&T) -> Timestamp, before: Timestamp, limit: usize) -> u64 {
            let mut old: Vec<usize> = (0..rows.len()).filter(|&i| at(&rows[i]) < before).collect();
            old.sort_by_key(|&i| at(&rows[i]));
            old.truncate(limit);
            let gone: BTreeSet<usize> = old.into_iter().collect();
            let mut i = 0;
            rows.retain(|_| {
                i += 1;
                !gone.contains(&(i - 1))
            });
            gone.len() as u64
        }
        Ok(match what {
            Retained::DeadLetters => oldest(&mut s.dead, |d| d.at, before, limit),
            Retained::SweepLog => oldest(&mut s.sweep_log, |f| f.at, before, limit),
            Retained::StreamGaps => oldest(&mut s.gaps, |g| g.at, before, limit),
            Retained::Workers => {
                let old: Vec<String> = s
                    .workers
                    .iter()
                    .filter(|(_, (_, seen))| *seen < before)
                    .map(|(k, _)| k.clone())
                    .take(limit)
                    .collect();
                for k in &old {
                    s.workers.remove(k);
                }
                old.len() as u64
            }
            Retained::ClosedShards => {
                let old: Vec<(String, String)> = s
                    .checkpoints
                    .iter()
                    .filter(|(_, c)| c.closed && c.at < before)
                    .map(|(k, _)| k.clone())
                    .take(limit)
                    .collect();
                for k in &old {
                    s.checkpoints.remove(k);
                    if s.leases.get(k).is_some_and(|(owner, ..)| owner.is_none()) {
                        s.leases.remove(k);
                    }
                }
                old.len() as u64
            }
        })
    }

    async fn prunable(&self, what: Retained, before: Timestamp) -> Result<u64, StoreError> {
        let s = self.state.lock().await;
        Ok(match what {
            Retained::DeadLetters => s.dead.iter().filter(|d| d.at < before).count(),
            Retained::SweepLog => s.sweep_log.iter().filter(|f| f.at < before).count(),
            Retained::StreamGaps => s.gaps.iter().filter(|g| g.at < before).count(),
            Retained::Workers => s.workers.values().filter(|(_, seen)| *seen < before).count(),
            Retained::ClosedShards => s.checkpoints.values().filter(|c| c.closed && c.at < before).count(),
        } as u64)
    }

    async fn prune_log(&self) -> Result<Option<PruneLog>, StoreError> {
        Ok(self.state.lock().await.prune_log)
    }

    async fn forget_event_ids(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut s = self.state.lock().await;
        let mut n = 0;
        for r in s.instances.values_mut() {
            if r.index.end.is_some_and(|(_, at)| at < before) && !r.stored.keys.is_empty() {
                r.stored.keys.clear();
                n += 1;
            }
        }
        Ok(n)
    }

    async fn close(&self) {}
}
