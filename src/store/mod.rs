//! The storage seam: what the engine, the outbox executor, the stream reader
//! and the read models need from a database, and nothing about the rules.
//!
//! A backend implements [`Store`] (committed reads, the outbox, the read
//! models) and [`UnitOfWork`] (one transaction: load — and, where the backend
//! has several writers, lock — the instances an input touches, page through
//! due timers, and commit everything the engine decided together with the
//! stream checkpoint, or nothing).
//!
//! The store knows no machine. An instance is a [`StoredInstance`] — its id,
//! the version writes are fenced on, the dedupe keys it applied, and its
//! state as the machine encoded it (a document the store keeps and never
//! reads) — written with what the engine derived of it for indexing
//! ([`Indexed`]: its state's name, how and when it ended, its pending timers
//! as tie ranks and due instants, its search attributes; see
//! [`machine::Durable`](crate::machine::Durable)). Effects and history
//! entries are the machine's bytes too. Typed views over these rows are the
//! machine's (the meeting's: [`inspect::MeetingStore`](crate::inspect::MeetingStore)).
//! Every backend must pass the conformance suite in
//! `tests/common/conformance.rs`.
//!
//! * [`sql`] — the one SQL store over sqlx, generic over a small [`Dialect`]:
//! * [`sqlite`] — the embedded default: one file, WAL, one writer at a time.
//! * [`postgres`] — PostgreSQL (`postgres://…`), for several workers on one
//!   database: the instances a unit of work touches are locked (`FOR
//!   UPDATE`), due timers and effects are claimed with `SKIP LOCKED`.
//! * [`memory`] — no database at all: maps behind a lock (tests).
//! * [`copy`] — one database into another, empty one (`spindown migrate`).

pub mod copy;
pub mod memory;
pub mod postgres;
pub(crate) mod rows;
pub mod sql;
pub mod sqlite;
mod stats;
mod types;

use async_trait::async_trait;

pub use sql::{Dialect, SqlStore};
pub use stats::{Phase, WriteCounts};
pub use types::*;

use crate::named::names;
use crate::time::{Span, Timestamp};

/// A storage failure, classified for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be opened (`fault`: why, when waiting may help —
    /// a server that is down or starting up).
    #[error("database {path}: {message}")]
    Open { path: String, message: String, fault: Option<Fault> },
    /// Nothing there may be written (a read-only file system or file).
    #[error("database {path}: the database file or its directory is read-only ({why})")]
    ReadOnly { path: String, why: String },
    #[error("database migration failed: {0}")]
    Migrate(String),
    /// The backend's own error, described for an operator.
    #[error("database: {message}")]
    Backend {
        message: String,
        /// What kind of passing trouble this is; `None`: waiting will not help
        /// (a schema, a permission, corruption, a full disk).
        fault: Option<Fault>,
    },
    /// A fenced write found the instance changed since it was loaded.
    #[error("{0} was changed by another writer")]
    Conflict(String),
    /// A checkpoint's lease is no longer held (another worker took the
    /// shard): nothing was written.
    #[error("the lease on shard {0} was lost to another worker")]
    LeaseLost(String),
    #[error("database holds an unreadable value: {0}")]
    Corrupt(String),
}

names! {
    /// A database failure that passes: the worker waits and tries again
    /// (`spindown_store_errors_total{kind}` counts them).
    pub Fault ("database fault") {
        /// The connection was refused, reset or lost (a server down, a failover, a network cut).
        Connection = "connection",
        /// The server is shutting down, starting up or ended the session (`pg_ctl stop`, a restart,
        /// `pg_terminate_backend`, `idle_in_transaction_session_timeout`).
        Shutdown = "shutdown",
        /// Another transaction changed the same rows (serialization failure).
        Serialization = "serialization",
        Deadlock = "deadlock",
        /// A lock was not had within `lock_timeout` (or at once, `NOWAIT`).
        LockTimeout = "lock_timeout",
        /// A statement ran past `statement_timeout`.
        StatementTimeout = "statement_timeout",
        /// No connection of the pool came free within its acquire timeout.
        PoolTimeout = "pool_timeout",
        /// The server has no connection slot left.
        TooManyConnections = "too_many_connections",
        /// SQLite: another process holds the write lock (past the busy timeout).
        Busy = "busy",
        /// No answer within the client's own deadline (a peer that vanished).
        NoAnswer = "no_answer",
    }
}

impl StoreError {
    /// Whether the same call may succeed later: the database is down, busy,
    /// restarting, or another transaction got in the way.
    pub fn is_transient(&self) -> bool {
        self.fault().is_some()
    }

    /// What kind of passing trouble this is (`None`: not passing).
    pub fn fault(&self) -> Option<Fault> {
        match self {
            StoreError::Backend { fault, .. } | StoreError::Open { fault, .. } => *fault,
            _ => None,
        }
    }

    /// No answer from the database within `within` (the client's own deadline).
    pub fn no_answer(what: &str, within: std::time::Duration) -> StoreError {
        StoreError::Backend {
            message: format!("no answer from the database within {within:?} ({what})"),
            fault: Some(Fault::NoAnswer),
        }
    }
}

/// Run `f`, failing with [`Fault::NoAnswer`] if it takes longer than
/// `within`: a server that vanished mid-call (a black-holed network) does
/// not hold the caller forever. What the call had in flight is abandoned
/// (a transaction is rolled back by the server or never committed).
///
/// # Errors
///
/// `f`'s own error, or [`Fault::NoAnswer`].
pub async fn deadline<T, E: From<StoreError>>(
    what: &str,
    within: std::time::Duration,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    match tokio::time::timeout(within, f).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::no_answer(what, within).into()),
    }
}

impl From<sqlx::Error> for StoreError {
    /// Each SQL backend describes its own database's errors; a lost
    /// connection or a full pool passes.
    fn from(e: sqlx::Error) -> Self {
        let (message, fault) = describe(&e);
        StoreError::Backend { message, fault }
    }
}

/// An operator's words for a sqlx error, and whether (and how) it passes.
pub(crate) fn describe(e: &sqlx::Error) -> (String, Option<Fault>) {
    match e {
        sqlx::Error::Database(d) if d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() => {
            postgres::describe(e)
        }
        sqlx::Error::Database(_) => sqlite::describe(e),
        sqlx::Error::Io(io) => (format!("the connection to the database failed ({io})"), Some(Fault::Connection)),
        sqlx::Error::Tls(t) => (format!("the connection to the database failed (TLS: {t})"), Some(Fault::Connection)),
        // A connection that breaks mid-message (a server killed, a proxy cut).
        sqlx::Error::Protocol(p) => (format!("the connection to the database broke ({p})"), Some(Fault::Connection)),
        sqlx::Error::PoolTimedOut => (
            "no database connection came free within the acquire timeout (is the server reachable?)".into(),
            Some(Fault::PoolTimeout),
        ),
        sqlx::Error::WorkerCrashed => (e.to_string(), Some(Fault::Connection)),
        sqlx::Error::Migrate(m) => match &**m {
            sqlx::migrate::MigrateError::Execute(inner) => describe(inner),
            _ => (e.to_string(), None),
        },
        _ => (e.to_string(), None),
    }
}

/// The committed state and everything outside a unit of work.
///
/// Methods take `now` where they need an instant: no backend reads a clock.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// What this is, for messages (`sqlite:/var/lib/spindown/spindown.db`).
    fn describe(&self) -> String;

    /// Begin a unit of work.
    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError>;

    /// Instances as last committed, without locking them (an engine that is the
    /// only writer keeps its own cache and reads through this).
    async fn load(&self, ids: &[&str]) -> Result<Vec<StoredInstance>, StoreError>;

    /// [`UnitOfWork::due`] on the committed state, without claiming.
    async fn due(&self, after: Option<&DueKey>, upto: Timestamp, limit: usize) -> Result<Vec<DueKey>, StoreError>;

    /// The engine's clocks as last committed.
    async fn clocks(&self) -> Result<Clocks, StoreError>;

    // The read models.

    /// Instances in id order, after `filter.after`, at most `filter.limit`.
    async fn instances(&self, filter: &InstanceFilter) -> Result<Vec<StoredInstance>, StoreError>;
    /// Instances whose search attribute `name` has `value`, in id order, at
    /// most `limit`: an index lookup.
    async fn find(&self, name: &str, value: &str, limit: usize) -> Result<Vec<String>, StoreError>;
    /// (value, instance id) of search attribute `name`, strictly after
    /// `after` in (value, id) order (`(from, "")`: from the value `from`,
    /// included) and with a value at most `to` (compared as text), at most
    /// `limit`: an index range, paged by its last pair.
    async fn find_range(
        &self,
        name: &str,
        after: (&str, &str),
        to: &str,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError>;
    /// Index every stored instance's search attributes not indexed yet, in one
    /// pass (after units of work that deferred them); how many were added.
    async fn index_search(&self) -> Result<u64, StoreError>;
    /// Every instance's summary in id order, after `after`, at most `limit`.
    async fn summaries(&self, after: Option<&str>, limit: usize) -> Result<Vec<Summary>, StoreError>;
    /// An instance's history chunks, oldest first.
    async fn chunks(&self, id: &str) -> Result<Vec<StoredChunk>, StoreError>;
    /// Pending timers, soonest first (in fire order).
    async fn pending(&self, filter: &PendingFilter) -> Result<Vec<DueKey>, StoreError>;
    /// The due instant of the soonest pending timer.
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Outbox rows, oldest first.
    async fn outbox(&self, filter: &OutboxFilter) -> Result<Vec<OutboxRow>, StoreError>;
    /// Outbox rows matching `filter` (its subject and status) with an id
    /// below `before`, newest first, at most `limit` (the console's pages).
    async fn recent_outbox(
        &self,
        filter: &OutboxFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError>;
    /// Dead letters with an id below `before`, newest first, at most `limit`.
    async fn recent_dead_letters(&self, before: Option<i64>, limit: usize) -> Result<Vec<DeadLetterRow>, StoreError>;
    /// Dead letters, oldest first.
    async fn dead_letters(&self, filter: &Page) -> Result<Vec<DeadLetterRow>, StoreError>;
    async fn tallies(&self) -> Result<Tallies, StoreError>;
    /// The console's overview at `now`, every figure from an index.
    async fn overview(&self, now: Timestamp) -> Result<Overview, StoreError>;
    /// Stream checkpoints (of one stream, or all), by stream and shard.
    async fn checkpoints(&self, stream_arn: Option<&str>) -> Result<Vec<Checkpoint>, StoreError>;
    /// Trimmed-data gaps, oldest first.
    async fn gaps(&self) -> Result<Vec<Gap>, StoreError>;
    /// The orphan sweep's log, newest first, at most `limit` lines.
    async fn sweep_log(&self, limit: i64) -> Result<Vec<SweepFinding>, StoreError>;
    /// Append to the sweep log.
    async fn record_sweep(&self, findings: &[SweepFinding]) -> Result<(), StoreError>;

    // The outbox.

    /// Lease up to `claim.limit` pending effects due at `claim.now` to
    /// `claim.owner` for `claim.lease` of the database's clock, oldest
    /// first. A row another owner holds is returned only once its lease has
    /// run out (by the database's clock); a row the same owner holds is
    /// returned again (a restarted worker takes its own back).
    async fn claim_outbox(&self, claim: &Claim) -> Result<Vec<OutboxRow>, StoreError>;
    /// Extend `owner`'s leases on the effects `ids` it is running by `lease`
    /// of the database's clock (a heartbeat while calls are in flight);
    /// returns the ids it still held.
    async fn renew_effect_leases(&self, owner: &str, ids: &[i64], lease: Span) -> Result<Vec<i64>, StoreError>;
    /// Record attempts' outcomes (and their history entries), fenced by the lease.
    async fn finish_outbox(&self, owner: &str, outcomes: &[OutboxOutcome]) -> Result<(), StoreError>;
    /// Re-queue failed effects, due `now`. Returns how many.
    async fn requeue_failed(&self, which: Requeue, now: Timestamp) -> Result<u64, StoreError>;
    /// Copy outbox rows as they are — ids, status, attempts, errors; no lease
    /// (`spindown migrate` into an empty database).
    async fn copy_outbox(&self, rows: &[OutboxRow]) -> Result<(), StoreError>;
    /// When the soonest pending effect may be claimed (its next attempt, or
    /// the end of the lease another executor holds on it).
    async fn next_effect_attempt(&self) -> Result<Option<Timestamp>, StoreError>;

    // The stream and housekeeping.

    async fn record_gap(&self, gap: &Gap) -> Result<(), StoreError>;
    /// Forget a stream's checkpoints: the next reader starts over; what it
    /// re-reads is dropped by eventID. Returns how many.
    async fn forget_checkpoints(&self, stream_arn: &str) -> Result<u64, StoreError>;
    // Several workers: identities and shard leases, judged by the backend's clock.

    /// Record that `worker` is alive; returns every worker known, `live` if
    /// seen within `ttl`.
    async fn heartbeat(&self, worker: &WorkerInfo, ttl: Span) -> Result<Vec<WorkerRow>, StoreError>;
    /// Register `worker` (as [`Store::heartbeat`]) unless another process
    /// is registered live (seen within `ttl`) under its identity: then
    /// return that registration and change nothing. `take_over`: register
    /// anyway (the caller knows the other is gone). Checked and written in
    /// one transaction, so two that start at once cannot both pass.
    async fn claim_worker(
        &self,
        worker: &WorkerInfo,
        ttl: Span,
        take_over: bool,
    ) -> Result<Option<WorkerRow>, StoreError>;
    /// Every worker known, `live` if seen within `ttl` (for `status`).
    async fn workers(&self, ttl: Span) -> Result<Vec<WorkerRow>, StoreError>;
    /// Shard leases (of one stream, or all), by stream and shard.
    async fn leases(&self, stream_arn: Option<&str>) -> Result<Vec<LeaseRow>, StoreError>;
    /// Take the lease on a shard for `owner` until `ttl` from now, if it is
    /// free, expired or already `owner`'s and live (then renewed, epoch
    /// kept); a lease taken anew gets the next epoch. `None`: another worker
    /// holds it.
    async fn acquire_lease(
        &self,
        stream_arn: &str,
        shard_id: &str,
        owner: &str,
        ttl: Span,
    ) -> Result<Option<Lease>, StoreError>;
    /// Extend every unexpired lease `owner` holds on a stream; returns them (shard, lease).
    async fn renew_leases(&self, stream_arn: &str, owner: &str, ttl: Span) -> Result<Vec<(String, Lease)>, StoreError>;
    /// Give a lease up (a clean stop, or a shard read to its end), fenced by it.
    async fn release_lease(&self, stream_arn: &str, shard_id: &str, lease: &Lease) -> Result<(), StoreError>;

    /// Forget the applied eventIDs of instances that ended before `before`
    /// (the stream cannot deliver their records again). Returns how many instances.
    async fn forget_event_ids(&self, before: Timestamp) -> Result<u64, StoreError>;

    // Retention.

    /// Terminated instances that ended before `before` and whose outbox rows
    /// are all done, in (end, id) order after `after`, at most `limit`.
    async fn ended_before(
        &self,
        before: Timestamp,
        after: Option<&(Timestamp, String)>,
        limit: usize,
    ) -> Result<Vec<(Timestamp, String)>, StoreError>;
    /// Delete the instances `ids` that ended before `before`, with their
    /// histories and done outbox rows, in one transaction, and note it in
    /// the prune log at `now`.
    async fn delete_instances(&self, ids: &[String], before: Timestamp, now: Timestamp) -> Result<Deleted, StoreError>;
    /// Delete at most `limit` rows of `what` older than `before`; returns how many.
    async fn prune(&self, what: Retained, before: Timestamp, limit: usize) -> Result<u64, StoreError>;
    /// How many rows of `what` are older than `before` (what [`Store::prune`] would delete).
    async fn prunable(&self, what: Retained, before: Timestamp) -> Result<u64, StoreError>;
    /// What retention has deleted so far (`None`: nothing yet).
    async fn prune_log(&self) -> Result<Option<PruneLog>, StoreError>;

    /// Hint every worker on this database to look again at its timers and
    /// effects (an operator command changed them). A hint only: workers also
    /// poll. Backends without a way to tell other processes do nothing.
    async fn notify(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Hints sent by [`Store::notify`] from any process (`None`: this backend has none).
    async fn listen(&self) -> Result<Option<Box<dyn Hints>>, StoreError> {
        Ok(None)
    }

    /// Release connections (a SQLite WAL is checkpointed on the last close).
    async fn close(&self);
}

/// A subscription to [`Store::notify`]'s hints.
#[async_trait]
pub trait Hints: Send {
    /// The next hint (after a lost connection: once reconnected).
    async fn recv(&mut self) -> Result<(), StoreError>;
}

/// One transaction: everything in it commits together, or nothing does.
#[async_trait]
pub trait UnitOfWork: Send {
    /// Instances this unit of work touches (and, for a backend with several
    /// writers, locks until it ends).
    async fn load(&mut self, ids: &[&str]) -> Result<Vec<StoredInstance>, StoreError>;

    /// Instances' next pending timers strictly after `after` in fire order and
    /// due at or before `upto`, at most `limit`, in fire order — one key per
    /// instance, the instance's first timer (its later ones come with the
    /// instance). A backend with several writers skips instances another holds.
    async fn due(&mut self, after: Option<&DueKey>, upto: Timestamp, limit: usize) -> Result<Vec<DueKey>, StoreError>;

    /// [`UnitOfWork::due`] with the instances those timers belong to, loaded
    /// (and locked, where [`UnitOfWork::load`] locks) in the same call: a
    /// page of fires in one round trip. A key's instance may be missing from
    /// the instances (deleted meanwhile); the instances come in no set order.
    async fn due_loaded(
        &mut self,
        after: Option<&DueKey>,
        upto: Timestamp,
        limit: usize,
    ) -> Result<(Vec<DueKey>, Vec<StoredInstance>), StoreError> {
        let keys = self.due(after, upto, limit).await?;
        let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        let instances = self.load(&ids).await?;
        Ok((keys, instances))
    }

    /// Write `changes` and commit.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] (nothing written) when an instance's stored
    /// version is not the one it was loaded at.
    async fn commit(self: Box<Self>, changes: Changes) -> Result<(), StoreError>;

    /// End without writing.
    async fn rollback(self: Box<Self>) -> Result<(), StoreError>;
}
