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
    Changes, Checkpoint, Claim, Clocks, Counts, DeadLetterRow, Deleted, EffectFilter, EffectOutcome, EffectRow,
    EffectStatus, Gap, HistoryRecord, Lease, LeaseRow, MeetingFilter, OutcomeLine, Page, PruneLog, Requeue, Retained,
    Store, StoreError, StoredMeeting, TimerFilter, UnitOfWork, WorkerInfo, WorkerRow,
};
use crate::meeting::{Chunk, MeetingId, Reason, State, TimerKey, TimerKind};
use crate::time::{Span, Timestamp};

#[derive(Default)]
struct Data {
    meetings: BTreeMap<MeetingId, StoredMeeting>,
    /// Each meeting's first pending timer, in fire order.
    due: BTreeSet<TimerKey>,
    /// Each meeting's chunks, as written, with their seq.
    history: BTreeMap<MeetingId, Vec<(i64, Chunk)>>,
    next_seq: i64,
    outbox: BTreeMap<i64, (EffectRow, Option<(String, Timestamp)>)>,
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

fn first_timer(m: &StoredMeeting) -> Option<TimerKey> {
    m.meeting.timers.next().map(|(kind, due)| TimerKey::new(m.meeting.id.clone(), kind, due))
}

fn due_after(s: &Data, after: Option<&TimerKey>, upto: Timestamp, limit: usize) -> Vec<TimerKey> {
    let iter: Box<dyn Iterator<Item = &TimerKey>> = match after {
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

fn append_history(s: &mut Data, id: &MeetingId, chunk: Chunk) {
    if chunk.is_empty() {
        return;
    }
    s.next_seq += 1;
    let seq = s.next_seq;
    s.history.entry(id.clone()).or_default().push((seq, chunk));
}

fn apply(s: &mut Data, changes: Changes) -> Result<(), StoreError> {
    // Check every fence first: all or nothing.
    for w in &changes.meetings {
        let stored = s.meetings.get(&w.stored.meeting.id).map(|m| m.meeting.version);
        if stored != w.loaded_version {
            return Err(StoreError::Conflict(w.stored.meeting.id.to_string()));
        }
    }
    if let Some(Checkpoint { stream_arn, shard_id, lease: Some(lease), .. }) = &changes.checkpoint {
        let held = s.leases.get(&(stream_arn.clone(), shard_id.clone()));
        if held.is_none_or(|(owner, epoch, _)| owner.as_deref() != Some(lease.owner.as_str()) || *epoch != lease.epoch)
        {
            return Err(StoreError::LeaseLost(shard_id.clone()));
        }
    }
    for w in changes.meetings {
        let id = w.stored.meeting.id.clone();
        if let Some(old) = s.meetings.get(&id).and_then(first_timer) {
            s.due.remove(&old);
        }
        if let Some(new) = first_timer(&w.stored) {
            s.due.insert(new);
        }
        s.meetings.insert(id, w.stored);
    }
    for h in changes.history {
        append_history(s, &h.meeting_id, h.chunk);
    }
    for e in changes.effects {
        if !s.keys.insert(e.key.clone()) {
            continue;
        }
        let id = s.outbox.keys().next_back().map_or(1, |k| k + 1);
        let (done, status, attempts) =
            if e.completed { (e.parts.len(), EffectStatus::Done, 1) } else { (0, EffectStatus::Pending, 0) };
        let row = EffectRow {
            id,
            key: e.key,
            meeting_id: e.meeting_id,
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
    async fn load(&mut self, ids: &[MeetingId]) -> Result<Vec<StoredMeeting>, StoreError> {
        Ok(ids.iter().filter_map(|id| self.state.meetings.get(id).cloned()).collect())
    }

    async fn due(
        &mut self,
        after: Option<&TimerKey>,
        upto: Timestamp,
        limit: usize,
    ) -> Result<Vec<TimerKey>, StoreError> {
        Ok(due_after(&self.state, after, upto, limit))
    }

    async fn commit(mut self: Box<Self>, changes: Changes) -> Result<(), StoreError> {
        apply(&mut self.state, changes)
    }

    async fn rollback(self: Box<Self>) -> Result<(), StoreError> {
        Ok(())
    }
}

fn grouped<K: Ord + Copy>(items: impl Iterator<Item = K>) -> Vec<(K, i64)> {
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

    async fn load(&self, ids: &[MeetingId]) -> Result<Vec<StoredMeeting>, StoreError> {
        let s = self.state.lock().await;
        Ok(ids.iter().filter_map(|id| s.meetings.get(id).cloned()).collect())
    }

    async fn due(&self, after: Option<&TimerKey>, upto: Timestamp, limit: usize) -> Result<Vec<TimerKey>, StoreError> {
        Ok(due_after(&*self.state.lock().await, after, upto, limit))
    }

    async fn clocks(&self) -> Result<Clocks, StoreError> {
        Ok(self.state.lock().await.clocks)
    }

    async fn meeting(&self, id: &MeetingId) -> Result<Option<StoredMeeting>, StoreError> {
        Ok(self.state.lock().await.meetings.get(id).cloned())
    }

    async fn meetings(&self, f: &MeetingFilter) -> Result<Vec<StoredMeeting>, StoreError> {
        let s = self.state.lock().await;
        let from = match &f.after {
            Some(a) => std::ops::Bound::Excluded(a.clone()),
            None => std::ops::Bound::Unbounded,
        };
        Ok(s.meetings
            .range((from, std::ops::Bound::Unbounded))
            .map(|(_, m)| m)
            .filter(|m| f.state.is_none_or(|st| m.meeting.state == st))
            .filter(|m| f.reason.is_none_or(|r| m.meeting.ended.map(|e| e.reason) == Some(r)))
            .take(f.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn search(&self, name: &str, value: &str, limit: usize) -> Result<Vec<MeetingId>, StoreError> {
        // No index here (tests): every meeting's attributes, in id order.
        let s = self.state.lock().await;
        Ok(s.meetings
            .values()
            .filter(|m| m.meeting.search_attributes().any(|(n, v)| n == name && v == value))
            .map(|m| m.meeting.id.clone())
            .take(limit)
            .collect())
    }

    async fn index_search(&self) -> Result<u64, StoreError> {
        Ok(0) // computed at each search
    }

    async fn outcomes(&self, after: Option<&MeetingId>, limit: usize) -> Result<Vec<OutcomeLine>, StoreError> {
        let page = MeetingFilter { after: after.cloned(), limit: Some(limit), ..MeetingFilter::default() };
        Ok(self.meetings(&page).await?.iter().map(|m| OutcomeLine::from(&m.meeting)).collect())
    }

    async fn history(&self, id: &MeetingId) -> Result<Vec<HistoryRecord>, StoreError> {
        let s = self.state.lock().await;
        let chunks = s.history.get(id).map(Vec::as_slice).unwrap_or_default();
        Ok(chunks
            .iter()
            .flat_map(|(seq, chunk)| chunk.entries().into_iter().map(|entry| HistoryRecord { seq: *seq, entry }))
            .collect())
    }

    async fn timers(&self, f: &TimerFilter) -> Result<Vec<TimerKey>, StoreError> {
        let s = self.state.lock().await;
        let mut all: Vec<TimerKey> = s
            .meetings
            .values()
            .filter(|m| f.meeting.as_ref().is_none_or(|id| *id == m.meeting.id))
            .flat_map(|m| m.meeting.timers.pending().map(|(k, d)| TimerKey::new(m.meeting.id.clone(), k, d)))
            .collect();
        all.sort();
        all.truncate(f.limit);
        Ok(all)
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.state.lock().await.due.first().map(|k| k.due))
    }

    async fn effects(&self, f: &EffectFilter) -> Result<Vec<EffectRow>, StoreError> {
        let s = self.state.lock().await;
        Ok(s.outbox
            .values()
            .map(|(row, _)| row)
            .filter(|r| f.meeting.as_ref().is_none_or(|m| *m == r.meeting_id))
            .filter(|r| f.status.is_none_or(|st| r.status == st))
            .filter(|r| f.id.is_none_or(|id| r.id == id))
            .cloned()
            .collect())
    }

    async fn recent_effects(
        &self,
        f: &EffectFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<EffectRow>, StoreError> {
        let s = self.state.lock().await;
        Ok(s.outbox
            .range(..before.unwrap_or(i64::MAX))
            .rev()
            .map(|(_, (r, _))| r)
            .filter(|r| {
                f.meeting.as_ref().is_none_or(|m| *m == r.meeting_id) && f.status.is_none_or(|st| st == r.status)
            })
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

    async fn counts(&self) -> Result<Counts, StoreError> {
        let s = self.state.lock().await;
        let ms = s.meetings.values().map(|m| &m.meeting);
        let dead: BTreeMap<String, i64> = s.dead.iter().fold(BTreeMap::new(), |mut acc, d| {
            *acc.entry(d.kind.clone()).or_insert(0) += 1;
            acc
        });
        Ok(Counts {
            meetings: s.meetings.len() as i64,
            meetings_by_state: grouped::<State>(ms.clone().map(|m| m.state)),
            terminated_by_reason: grouped::<Reason>(ms.clone().filter_map(|m| m.ended.map(|e| e.reason))),
            timers_pending: ms.clone().map(|m| m.timers.pending().count() as i64).sum(),
            timers_by_kind: TimerKind::ALL
                .iter()
                .map(|&k| (k, ms.clone().filter(|m| m.timers.get(k).is_some()).count() as i64))
                .collect(),
            next_timer_due: s.due.first().map(|k| k.due),
            effects_by_status: grouped::<EffectStatus>(s.outbox.values().map(|(r, _)| r.status)),
            dead_letters: s.dead.len() as i64,
            dead_letters_by_kind: dead.into_iter().collect(),
        })
    }

    async fn checkpoints(&self, stream_arn: Option<&str>) -> Result<Vec<Checkpoint>, StoreError> {
        let s = self.state.lock().await;
        Ok(s.checkpoints.values().filter(|c| stream_arn.is_none_or(|a| c.stream_arn == a)).cloned().collect())
    }

    async fn gaps(&self) -> Result<Vec<Gap>, StoreError> {
        Ok(self.state.lock().await.gaps.clone())
    }

    async fn claim_effects(&self, claim: &Claim) -> Result<Vec<EffectRow>, StoreError> {
        let mut s = self.state.lock().await;
        // Leases are judged by "the database's clock": this process's.
        let db_now = Timestamp::now();
        let until = db_now.saturating_add(claim.lease);
        let mut due: Vec<&mut (EffectRow, Option<(String, Timestamp)>)> = s
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

    async fn finish_effects(&self, owner: &str, outcomes: &[EffectOutcome]) -> Result<(), StoreError> {
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
            let chunk = o.history.iter().cloned().collect();
            append_history(&mut s, &o.meeting_id, chunk);
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

    async fn copy_effects(&self, rows: &[EffectRow]) -> Result<(), StoreError> {
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
        after: Option<&(Timestamp, MeetingId)>,
        limit: usize,
    ) -> Result<Vec<(Timestamp, MeetingId)>, StoreError> {
        let s = self.state.lock().await;
        let open: BTreeSet<&MeetingId> =
            s.outbox.values().filter(|(r, _)| r.status != EffectStatus::Done).map(|(r, _)| &r.meeting_id).collect();
        let mut ended: Vec<(Timestamp, MeetingId)> = s
            .meetings
            .values()
            .filter_map(|m| m.meeting.ended.map(|e| (e.at, m.meeting.id.clone())))
            .filter(|(at, id)| *at < before && !open.contains(id))
            .filter(|k| after.is_none_or(|a| k > a))
            .collect();
        ended.sort();
        ended.truncate(limit);
        Ok(ended)
    }

    async fn delete_meetings(
        &self,
        ids: &[MeetingId],
        before: Timestamp,
        now: Timestamp,
    ) -> Result<Deleted, StoreError> {
        let mut s = self.state.lock().await;
        let mut d = Deleted::default();
        for id in ids {
            d.history += s.history.remove(id).map_or(0, |h| h.len() as u64);
            let rows: Vec<i64> = s
                .outbox
                .iter()
                .filter(|(_, (r, _))| r.meeting_id == *id && r.status == EffectStatus::Done)
                .map(|(k, _)| *k)
                .collect();
            for k in rows {
                s.outbox.remove(&k);
                d.effects += 1;
            }
            if s.meetings.get(id).is_some_and(|m| m.meeting.ended.is_some_and(|e| e.at < before)) {
                s.meetings.remove(id);
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
        for m in s.meetings.values_mut() {
            if m.meeting.ended.is_some_and(|e| e.at < before) && !m.event_ids.is_empty() {
                m.event_ids.clear();
                n += 1;
            }
        }
        Ok(n)
    }

    async fn close(&self) {}
}
