//! The data that crosses the storage seam.

use serde::Serialize;

use crate::time::{Span, Timestamp};

use crate::named::names;

names! {
    /// Where an outbox row is.
    pub EffectStatus ("effect status") {
        /// Waiting for its next attempt (or running under a lease).
        Pending = "pending",
        Done = "done",
        /// Out of attempts, or a permanent error: kept until an operator re-queues it.
        Failed = "failed",
    }
}

/// One instance of a machine as stored: its id, the version its writes are
/// fenced on, the dedupe keys it applied (a redelivered input is recognised
/// by its instance) and its state as the machine encoded it — the store
/// keeps `doc` as it is and never reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInstance {
    pub id: String,
    /// Bumped by every write; a write names the version it loaded.
    pub version: i64,
    pub keys: Vec<String>,
    /// The machine's encoded state (JSON).
    pub doc: String,
}

/// What the store indexes of an instance, derived by the engine from its
/// state as the machine declares it, written with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexed {
    /// The state's name (`list --state`, `status`).
    pub state: &'static str,
    /// How and when it ended (`None`: running).
    pub end: Option<(&'static str, Timestamp)>,
    /// Its pending timers as (tie rank, due), in fire order.
    pub timers: Vec<(u8, Timestamp)>,
    /// Its search attributes, as (name, value).
    pub attrs: Vec<(&'static str, String)>,
}

/// An instance to write, with the version it was loaded at (`None`: new).
#[derive(Debug, Clone)]
pub struct InstanceWrite {
    pub stored: StoredInstance,
    pub index: Indexed,
    pub loaded_version: Option<i64>,
    /// Its search attributes changed since they were indexed (a new
    /// instance, a value added): the store indexes them with the row.
    pub search_changed: bool,
}

/// A pending timer's place in fire order: due, then tie rank, then instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DueKey {
    pub due: Timestamp,
    pub rank: u8,
    pub id: String,
}

/// History entries to append to one instance's story, encoded (a store
/// keeps the bytes as they are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryAppend {
    pub id: String,
    pub bytes: Vec<u8>,
    /// How many entries the bytes hold.
    pub entries: usize,
}

/// A stored chunk of an instance's history; `seq` orders chunks across
/// instances (chunks written together are in input order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChunk {
    pub seq: i64,
    pub bytes: Vec<u8>,
}

/// One outbox row: the effects an instance asked for, run in order.
#[derive(Debug, Clone)]
pub struct NewEffect {
    /// Deterministic idempotency key: a second insert is a no-op.
    pub key: String,
    /// The instance that asked.
    pub subject: String,
    /// The effects, encoded by the machine (JSON).
    pub parts: String,
    /// How many effects `parts` holds.
    pub count: usize,
    pub at: Timestamp,
    /// Already done (a dry run completes its effects in the unit of work that queued them).
    pub completed: bool,
}

/// One dead letter to write.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    pub at: Timestamp,
    /// `file:line`, or `shard/sequence number`.
    pub origin: String,
    /// A short, stable name for counting (`not_json`, `bad_time`, …).
    pub kind: std::borrow::Cow<'static, str>,
    pub reason: String,
    pub event_id: Option<String>,
    pub raw: Vec<u8>,
}

/// The engine's clocks; stored values only ever grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Clocks {
    /// The last engine instant (a replay on an existing database resumes its virtual clock here).
    pub last_instant: Option<Timestamp>,
    /// The latest record event time applied (live mode).
    pub event_clock: Option<Timestamp>,
}

/// Everything one unit of work writes.
#[derive(Debug, Default)]
pub struct Changes {
    pub instances: Vec<InstanceWrite>,
    pub history: Vec<HistoryAppend>,
    pub effects: Vec<NewEffect>,
    pub dead_letters: Vec<NewDeadLetter>,
    /// The stream position these writes bring a shard to.
    pub checkpoint: Option<Checkpoint>,
    pub clocks: Clocks,
    /// Leave the instances' search attributes out: a bulk load indexes them
    /// at its end, in one sorted pass ([`Store::index_search`](crate::store::Store::index_search)).
    pub defer_search: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
            && self.history.is_empty()
            && self.effects.is_empty()
            && self.dead_letters.is_empty()
            && self.checkpoint.is_none()
    }
}

/// A worker's hold on a shard: its checkpoints are written fenced by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub owner: String,
    /// Grows by one each time the lease is taken.
    pub epoch: i64,
}

/// A shard's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseRow {
    pub stream_arn: String,
    pub shard_id: String,
    /// `None`: free.
    pub owner: Option<String>,
    pub epoch: i64,
    pub expires_at: Timestamp,
    /// By the database's clock, now.
    pub expired: bool,
}

/// A worker, as it announces itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerInfo {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub started_at: Timestamp,
}

impl WorkerInfo {
    /// Whether `other` is this very process (the same start on the same host).
    pub fn same_process(&self, other: &WorkerInfo) -> bool {
        self.host == other.host && self.pid == other.pid && self.started_at == other.started_at
    }
}

/// A worker as last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerRow {
    #[serde(flatten)]
    pub info: WorkerInfo,
    pub last_seen: Timestamp,
    /// Seen within the time-to-live asked for, by the database's clock.
    pub live: bool,
}

/// A stream shard's position, written with the records it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub stream_arn: String,
    pub shard_id: String,
    pub parent_shard_id: Option<String>,
    /// The last record applied; `None` keeps the stored one.
    pub sequence_number: Option<String>,
    pub closed: bool,
    /// Records covered by this write (added to the stored count).
    pub records: u64,
    pub last_event_at: Option<Timestamp>,
    pub caught_up: bool,
    /// When this was written.
    pub at: Timestamp,
    /// The lease this write is fenced by (`None`: not fenced). Not stored
    /// with the checkpoint: read back, it is `None`.
    #[serde(skip)]
    pub lease: Option<Lease>,
}

/// Records lost to the stream's retention before they were read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub stream_arn: String,
    pub shard_id: String,
    pub at: Timestamp,
    pub detail: String,
}

names! {
    /// What the orphan sweep did with an instance.
    pub SweepAction ("sweep action") {
        /// Tagged for a meeting that ended longer ago than the grace: terminated.
        Terminated = "terminated",
        /// The same, in a dry run.
        WouldTerminate = "would_terminate",
        /// Tagged for a meeting spindown never saw: only reported.
        Reported = "reported",
        /// The tag guard refused it.
        Refused = "refused",
        /// The call failed (the next sweep tries again).
        Failed = "failed",
    }
}

/// One line of the sweep log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SweepFinding {
    pub at: Timestamp,
    pub instance_id: String,
    /// The instance's meeting tag.
    pub meeting_id: String,
    pub launched_at: Option<Timestamp>,
    pub action: SweepAction,
    pub detail: String,
}

/// An outbox row as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// The id operators use (`spindown retry ID`).
    pub id: i64,
    pub key: String,
    pub subject: String,
    /// The effects as the machine encoded them, run in order.
    pub parts: String,
    /// How many of them are done.
    pub done: usize,
    pub status: EffectStatus,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What one attempt at an outbox row did, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxOutcome {
    pub id: i64,
    pub subject: String,
    /// Parts done after the attempt.
    pub done: usize,
    pub status: EffectStatus,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub at: Timestamp,
    /// Entries for the instance's history (encoded; one per part attempted).
    pub history: HistoryAppend,
}

/// A dead letter as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetterRow {
    pub id: i64,
    pub at: Timestamp,
    pub origin: String,
    pub kind: String,
    pub reason: String,
    pub event_id: Option<String>,
    #[serde(serialize_with = "raw_as_text")]
    pub raw: Vec<u8>,
}

fn raw_as_text<S: serde::Serializer>(raw: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(raw))
}

/// Which instances to list.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    /// Only in this state (by name).
    pub state: Option<String>,
    /// Only ended this way (by name).
    pub reason: Option<String>,
    /// Only instances whose id sorts after this one (keyset paging).
    pub after: Option<String>,
    pub limit: Option<usize>,
}

/// Which pending timers to list.
#[derive(Debug, Clone)]
pub struct PendingFilter {
    pub id: Option<String>,
    pub limit: usize,
}

/// Which outbox rows to list.
#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    pub subject: Option<String>,
    pub status: Option<EffectStatus>,
    pub id: Option<i64>,
}

/// A page of rows with integer ids.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Only rows with a larger id.
    pub after: Option<i64>,
    pub limit: usize,
}

/// A lease on due effects, for [`Store::claim_outbox`](super::Store::claim_outbox).
#[derive(Debug, Clone)]
pub struct Claim {
    pub owner: String,
    /// Effects whose next attempt is due by this instant (the engine's clock).
    pub now: Timestamp,
    /// How long the lease lasts, by the database's clock; an unfinished
    /// effect can then be claimed again.
    pub lease: Span,
    pub limit: usize,
    /// Rows the claimer is running now (its own leases are otherwise
    /// returned again: a worker restarted under its identity takes them back).
    pub running: Vec<i64>,
}

/// Which failed effects to re-queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    One(i64),
    All,
}

/// Counts for summaries and `status`, by the names the store indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tallies {
    pub instances: i64,
    /// By state name, in name order.
    pub by_state: Vec<(String, i64)>,
    /// Ended instances by end reason, in name order.
    pub by_reason: Vec<(String, i64)>,
    pub timers_pending: i64,
    /// Pending timers by tie rank (ranks with none left out).
    pub timers_by_rank: Vec<(u8, i64)>,
    pub next_timer_due: Option<Timestamp>,
    pub effects_by_status: Vec<(EffectStatus, i64)>,
    pub dead_letters: i64,
    pub dead_letters_by_kind: Vec<(String, i64)>,
}

/// The console's overview, each figure read from an index (never a scan of
/// every instance): what runs now, what ended lately, what is stuck.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overview {
    /// Live (not ended) instances by state name, in name order.
    pub live_by_state: Vec<(String, i64)>,
    /// Instances that ended, in all.
    pub ended: i64,
    /// Instances that ended in the last hour, by end reason, in name order.
    pub ended_hour: Vec<(String, i64)>,
    /// The same over the last day.
    pub ended_day: Vec<(String, i64)>,
    pub failed: i64,
    /// The oldest failed outbox row.
    pub failed_oldest: Option<Stuck>,
    /// Pending outbox rows that failed at least once and wait to be tried again.
    pub retrying: i64,
    pub retrying_oldest: Option<Stuck>,
    /// Dead letters in the last day.
    pub dead_letters_day: i64,
    /// The earliest due of a timer that is overdue.
    pub oldest_overdue: Option<Timestamp>,
}

/// An outbox row that is not done: which, whose, its last error and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    pub id: i64,
    pub instance: String,
    pub error: Option<String>,
    pub at: Timestamp,
}

/// An instance's line in a listing of every instance: what the store
/// indexes (`replay --json`'s outcome lines are built from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub id: String,
    pub state: String,
    pub reason: Option<String>,
    pub ended_at: Option<Timestamp>,
    pub attrs: Vec<(String, String)>,
}

names! {
    /// What retention deletes besides instances.
    pub Retained ("retained rows") {
        DeadLetters = "dead_letters",
        SweepLog = "sweep_log",
        StreamGaps = "stream_gaps",
        /// Workers not seen for long (each start under a new identity leaves one).
        Workers = "workers",
        /// Checkpoints (and free lease rows) of shards read to their end long ago.
        ClosedShards = "closed_shards",
    }
}

/// What deleting instances removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Deleted {
    pub meetings: u64,
    /// History chunks (a unit of work writes one per instance it touched).
    pub history: u64,
    /// Outbox rows.
    pub effects: u64,
}

/// What retention has deleted so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PruneLog {
    /// Instances that ended before this may have been deleted.
    pub through: Timestamp,
    /// How many were, in all.
    pub meetings: i64,
    /// When the last ones were.
    pub last_at: Timestamp,
}
