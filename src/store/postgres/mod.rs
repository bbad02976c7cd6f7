//! PostgreSQL: one database shared by several workers.
//!
//! The schema is the SQLite backend's lean one (`migrations/postgres/`). What
//! changes is who else writes:
//!
//! * a unit of work **locks** the meetings it loads (`SELECT … FOR UPDATE`, in
//!   id order so that two workers cannot deadlock) and claims due timers with
//!   `FOR UPDATE SKIP LOCKED`: a timer is fired by whichever worker locked its
//!   meeting, inside the transaction of the transition it causes, so exactly
//!   once; meetings another worker holds are skipped, not waited for;
//! * a meeting row is still written fenced by the version it was loaded at
//!   (a new meeting inserted by two workers at once: the second gets
//!   [`StoreError::Conflict`] and nothing is written);
//! * effects are leased with `SKIP LOCKED`, their outcomes fenced by the lease.
//!
//! Bulk writes bind one array per column (`UNNEST`): one statement of one
//! shape per table and unit of work, whatever the number of rows.

mod read;
mod uow;

use crate::store::SweepFinding;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::meeting::{MeetingId, TimerKey};
use crate::store::rows;
use crate::store::stats::{Phase, Stats};
use crate::store::{
    Checkpoint, Claim, Clocks, Counts, DeadLetterRow, Deleted, EffectFilter, EffectOutcome, EffectRow, Fault, Gap,
    Hints, HistoryAppend, HistoryRecord, Lease, LeaseRow, MeetingFilter, OutcomeLine, Page, PruneLog, Requeue,
    Retained, Store, StoreError, StoredMeeting, TimerFilter, UnitOfWork, WorkerInfo, WorkerRow, WriteCounts,
};
use crate::time::{Span, Timestamp};
use uow::PgUnitOfWork;

/// The LISTEN/NOTIFY channel of [`Store::notify`].
const CHANNEL: &str = "spindown_wake";

/// `LISTEN spindown_wake` on a connection of its own (sqlx reconnects it
/// when it is lost, and listens again).
struct PgHints(PgListener);

#[async_trait]
impl Hints for PgHints {
    async fn recv(&mut self) -> Result<(), StoreError> {
        self.0.recv().await?;
        Ok(())
    }
}

/// Whether a `--db` value names a PostgreSQL database rather than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// How a [`PgStore`] connects, and the limits every session runs under.
///
/// The session limits are set at connection (the startup packet's
/// `options`), so they hold for every statement of the pool, and protect
/// the *other* workers too: a worker that freezes or is cut off mid
/// transaction holds its row locks at most `idle_in_transaction_timeout`,
/// and no one waits for a lock longer than `lock_timeout`.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections in this process's pool (each unit of work holds one).
    pub max_connections: u32,
    /// How long a statement may wait for a connection before the call fails;
    /// also the limit for connecting.
    pub acquire_timeout: Duration,
    /// `application_name`, shown in `pg_stat_activity` (the worker's identity).
    pub application_name: String,
    /// `statement_timeout`: the server cancels a statement running longer.
    pub statement_timeout: Duration,
    /// `lock_timeout`: the server gives up waiting for a row lock after this.
    pub lock_timeout: Duration,
    /// `idle_in_transaction_session_timeout`: the server ends a session that
    /// sits in an open transaction this long (its client froze or vanished),
    /// releasing its locks.
    pub idle_in_transaction_timeout: Duration,
    /// TCP keepalives on the server's side of each connection (idle time
    /// before the first probe; probes every third of it, 3 lost = gone).
    pub keepalive: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            application_name: "spindown".into(),
            statement_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(10),
            idle_in_transaction_timeout: Duration::from_secs(60),
            keepalive: Duration::from_secs(30),
        }
    }
}

impl PgOptions {
    /// The session settings, as `-c` options of the startup packet.
    fn session(&self) -> Vec<(&'static str, String)> {
        let ms = |d: Duration| format!("{}ms", d.as_millis().max(1));
        let secs = |d: Duration| d.as_secs().max(1).to_string();
        vec![
            ("statement_timeout", ms(self.statement_timeout)),
            ("lock_timeout", ms(self.lock_timeout)),
            ("idle_in_transaction_session_timeout", ms(self.idle_in_transaction_timeout)),
            ("tcp_keepalives_idle", secs(self.keepalive)),
            ("tcp_keepalives_interval", secs(self.keepalive / 3)),
            ("tcp_keepalives_count", "3".into()),
        ]
    }
}

/// A spindown database on a PostgreSQL server.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// The URL without its password.
    name: String,
    stats: Arc<Stats>,
}

/// What an operator needs to hear about a PostgreSQL failure, then the server's words.
pub(crate) fn describe(e: &sqlx::Error) -> (String, Option<Fault>) {
    let Some(d) = e.as_database_error() else { return crate::store::describe(e) };
    let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
    let (what, fault) = match code.as_str() {
        "40001" => ("a serialization failure (another transaction changed the same rows)", Some(Fault::Serialization)),
        "40P01" => ("a deadlock with another transaction", Some(Fault::Deadlock)),
        "55P03" => ("a lock could not be taken within lock_timeout", Some(Fault::LockTimeout)),
        "57014" => ("a statement was cancelled (statement_timeout)", Some(Fault::StatementTimeout)),
        "25P03" => {
            ("the server ended a transaction left idle (idle_in_transaction_session_timeout)", Some(Fault::Shutdown))
        }
        "57P01" | "57P02" => {
            ("the server ended the connection (shutdown or pg_terminate_backend)", Some(Fault::Shutdown))
        }
        "57P03" => ("the server is starting up or shutting down", Some(Fault::Shutdown)),
        "53300" => ("the server has too many connections", Some(Fault::TooManyConnections)),
        "53100" => ("the database server's disk is full", None),
        "25006" => ("the database is read-only (a standby, or default_transaction_read_only)", None),
        "42501" => ("permission denied to the database user", None),
        "3D000" => ("the database does not exist", None),
        "28P01" | "28000" => ("the server refused the user or password", None),
        "42P01" | "42703" => ("the schema is not what this spindown expects (a table or column is missing)", None),
        "XX001" | "XX002" => ("the database reports corrupt data", None),
        c if c.starts_with("08") => ("the connection to the server failed", Some(Fault::Connection)),
        _ => return (format!("{} (SQLSTATE {code})", d.message()), None),
    };
    (format!("{what} ({}; SQLSTATE {code})", d.message()), fault)
}

impl PgStore {
    /// Connect to `url` (`postgres://USER:PASS@HOST:PORT/DB`) and migrate it.
    /// Several workers may do so at once: migrations take an advisory lock.
    ///
    /// # Errors
    ///
    /// The URL is not valid, the server cannot be reached or refuses the user,
    /// or a migration fails.
    pub async fn open(url: &str, options: &PgOptions) -> Result<PgStore, StoreError> {
        let bad = |message: String| StoreError::Open { path: redact(url), message, fault: None };
        let unreachable =
            |(message, fault): (String, Option<Fault>)| StoreError::Open { path: redact(url), message, fault };
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| bad(format!("not a valid postgres:// URL: {e}")))?
            .application_name(&options.application_name)
            .options(options.session())
            // A slow statement under load is not the operator's news.
            .disable_statement_logging();
        let name = format!(
            "postgres://{}@{}:{}/{}",
            connect.get_username(),
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or(connect.get_username())
        );
        // One connection first: an unreachable server or a refused user is
        // reported at once, not after the pool's acquire timeout. It runs the
        // migrations, with no statement timeout (an index on a big table).
        let no_answer = || {
            unreachable((
                format!("no answer from the server within {:?}", options.acquire_timeout),
                Some(Fault::NoAnswer),
            ))
        };
        let mut first = tokio::time::timeout(options.acquire_timeout, connect.connect())
            .await
            .map_err(|_| no_answer())?
            .map_err(|e| unreachable(describe(&e)))?;
        let migrated = async {
            sqlx::query("SET statement_timeout = 0").execute(&mut first).await?;
            sqlx::migrate!("./migrations/postgres").run_direct(&mut first).await?;
            Ok::<(), sqlx::Error>(())
        }
        .await;
        let _ = first.close().await;
        if let Err(e) = migrated {
            return Err(match describe(&e) {
                (message, Some(fault)) => unreachable((message, Some(fault))),
                (message, None) => StoreError::Migrate(message),
            });
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
        Ok(PgStore { pool, name, stats: Arc::default() })
    }

    /// The pool, for the statements of other layers built on this store.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Rows this process has written and where the time went (benchmarks).
    pub fn write_counts(&self) -> WriteCounts {
        self.stats.counts()
    }
}

/// `url` with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[async_trait]
impl Store for PgStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        let t = Instant::now();
        let tx = self.pool.begin().await?;
        self.stats.add_time(Phase::Begin, t);
        Ok(Box::new(PgUnitOfWork::new(tx, self.stats.clone())))
    }

    async fn load(&self, ids: &[MeetingId]) -> Result<Vec<StoredMeeting>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read::load(&mut conn, ids, false).await
    }

    async fn due(&self, after: Option<&TimerKey>, upto: Timestamp, limit: usize) -> Result<Vec<TimerKey>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read::due(&mut conn, after, upto, limit, false).await
    }

    async fn clocks(&self) -> Result<Clocks, StoreError> {
        read::clocks(&self.pool).await
    }

    async fn meeting(&self, id: &MeetingId) -> Result<Option<StoredMeeting>, StoreError> {
        Ok(self.load(std::slice::from_ref(id)).await?.pop())
    }

    async fn meetings(&self, filter: &MeetingFilter) -> Result<Vec<StoredMeeting>, StoreError> {
        read::meetings(&self.pool, filter).await
    }

    async fn outcomes(&self, after: Option<&MeetingId>, limit: usize) -> Result<Vec<OutcomeLine>, StoreError> {
        read::outcomes(&self.pool, after, limit).await
    }

    async fn history(&self, id: &MeetingId) -> Result<Vec<HistoryRecord>, StoreError> {
        read::history(&self.pool, id).await
    }

    async fn timers(&self, filter: &TimerFilter) -> Result<Vec<TimerKey>, StoreError> {
        read::timers(&self.pool, filter).await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        read::scalar_instant(&self.pool, include_str!("queries/next_due.sql")).await
    }

    async fn effects(&self, filter: &EffectFilter) -> Result<Vec<EffectRow>, StoreError> {
        read::effects(&self.pool, filter).await
    }

    async fn recent_effects(
        &self,
        f: &EffectFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<EffectRow>, StoreError> {
        // One statement per filter, so each reads its own index (never a scan of the outbox).
        let before = before.unwrap_or(i64::MAX);
        let rows = match (&f.meeting, f.status) {
            (Some(m), status) => {
                sqlx::query(include_str!("queries/recent_effects_by_meeting.sql"))
                    .bind(m.as_str())
                    .bind(status.map(|s| s.as_str()))
                    .bind(before)
                    .bind(limit as i64)
                    .fetch_all(&self.pool)
                    .await?
            }
            (None, Some(status)) => {
                sqlx::query(include_str!("queries/recent_effects_by_status.sql"))
                    .bind(status.as_str())
                    .bind(before)
                    .bind(limit as i64)
                    .fetch_all(&self.pool)
                    .await?
            }
            (None, None) => {
                sqlx::query(include_str!("queries/recent_effects.sql"))
                    .bind(before)
                    .bind(limit as i64)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(crate::store::rows::effect_row).collect()
    }

    async fn recent_dead_letters(&self, before: Option<i64>, limit: usize) -> Result<Vec<DeadLetterRow>, StoreError> {
        let rows = sqlx::query(include_str!("queries/recent_dead_letters.sql"))
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(crate::store::rows::dead_letter_row).collect()
    }

    async fn dead_letters(&self, page: &Page) -> Result<Vec<DeadLetterRow>, StoreError> {
        read::dead_letters(&self.pool, page).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        read::counts(&self.pool).await
    }

    async fn checkpoints(&self, stream_arn: Option<&str>) -> Result<Vec<Checkpoint>, StoreError> {
        read::checkpoints(&self.pool, stream_arn).await
    }

    async fn gaps(&self) -> Result<Vec<Gap>, StoreError> {
        read::gaps(&self.pool).await
    }

    async fn claim_effects(&self, claim: &Claim) -> Result<Vec<EffectRow>, StoreError> {
        let rows = sqlx::query(include_str!("queries/claim_effects.sql"))
            .bind(&claim.owner)
            .bind(claim.lease.as_micros())
            .bind(claim.now.as_micros())
            .bind(claim.limit as i64)
            .bind(&claim.running)
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows.iter().map(rows::effect_row).collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|e| (e.next_attempt_at, e.id));
        Ok(out)
    }

    async fn renew_effect_leases(&self, owner: &str, ids: &[i64], lease: Span) -> Result<Vec<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64,)> = sqlx::query_as(include_str!("queries/renew_effect_leases.sql"))
            .bind(owner)
            .bind(ids)
            .bind(lease.as_micros())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn finish_effects(&self, owner: &str, outcomes: &[EffectOutcome]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut history = Vec::new();
        for o in outcomes {
            let updated = sqlx::query(include_str!("queries/finish_effect.sql"))
                .bind(o.id)
                .bind(o.done as i64)
                .bind(o.status.as_str())
                .bind(o.attempts)
                .bind(o.next_attempt_at.as_micros())
                .bind(o.last_error.as_deref())
                .bind(o.at.as_micros())
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated == 0 {
                tracing::warn!(effect = o.id, "effect no longer held by this executor; its outcome is not recorded");
                continue;
            }
            history
                .push(HistoryAppend { meeting_id: o.meeting_id.clone(), chunk: o.history.iter().cloned().collect() });
        }
        uow::insert_history(&mut tx, &history).await?;
        crate::failpoint::hit("tx-before-commit");
        tx.commit().await?;
        Ok(())
    }

    async fn requeue_failed(&self, which: Requeue, now: Timestamp) -> Result<u64, StoreError> {
        let id = match which {
            Requeue::One(id) => Some(id),
            Requeue::All => None,
        };
        let r = sqlx::query(include_str!("queries/requeue_failed.sql"))
            .bind(now.as_micros())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn copy_effects(&self, rows: &[EffectRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for r in rows {
            sqlx::query(include_str!("queries/copy_effect.sql"))
                .bind(r.id)
                .bind(&r.key)
                .bind(r.meeting_id.as_str())
                .bind(crate::store::codec::encode_parts(&r.parts))
                .bind(r.done as i64)
                .bind(r.status.as_str())
                .bind(r.attempts)
                .bind(r.next_attempt_at.as_micros())
                .bind(r.last_error.as_deref())
                .bind(r.created_at.as_micros())
                .bind(r.updated_at.as_micros())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(include_str!("queries/outbox_ids_after_copy.sql")).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn next_effect_attempt(&self) -> Result<Option<Timestamp>, StoreError> {
        read::scalar_instant(&self.pool, include_str!("queries/next_effect_attempt.sql")).await
    }

    async fn record_gap(&self, gap: &Gap) -> Result<(), StoreError> {
        sqlx::query(include_str!("queries/record_gap.sql"))
            .bind(&gap.stream_arn)
            .bind(&gap.shard_id)
            .bind(gap.at.as_micros())
            .bind(&gap.detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn sweep_log(&self, limit: i64) -> Result<Vec<SweepFinding>, StoreError> {
        let rows = sqlx::query(include_str!("queries/sweep_log.sql")).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(crate::store::rows::sweep_row).collect()
    }

    async fn record_sweep(&self, findings: &[SweepFinding]) -> Result<(), StoreError> {
        for f in findings {
            sqlx::query(include_str!("queries/record_sweep.sql"))
                .bind(f.at.as_micros())
                .bind(&f.instance_id)
                .bind(&f.meeting_id)
                .bind(f.launched_at.map(|t| t.as_micros()))
                .bind(f.action.as_str())
                .bind(&f.detail)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    async fn forget_checkpoints(&self, stream_arn: &str) -> Result<u64, StoreError> {
        let r =
            sqlx::query(include_str!("queries/forget_checkpoints.sql")).bind(stream_arn).execute(&self.pool).await?;
        Ok(r.rows_affected())
    }

    async fn heartbeat(&self, worker: &WorkerInfo, ttl: Span) -> Result<Vec<WorkerRow>, StoreError> {
        sqlx::query(include_str!("queries/heartbeat.sql"))
            .bind(&worker.id)
            .bind(&worker.host)
            .bind(worker.pid)
            .bind(worker.started_at.as_micros())
            .execute(&self.pool)
            .await?;
        self.workers(ttl).await
    }

    async fn claim_worker(
        &self,
        worker: &WorkerInfo,
        ttl: Span,
        take_over: bool,
    ) -> Result<Option<WorkerRow>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Two workers starting at once under one identity take turns here.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("spindown worker {}", worker.id))
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(include_str!("queries/worker_row.sql"))
            .bind(&worker.id)
            .bind(ttl.as_micros())
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row.as_ref().map(crate::store::rows::worker_row).transpose()? {
            if row.live && !take_over && !row.info.same_process(worker) {
                tx.rollback().await?;
                return Ok(Some(row));
            }
        }
        sqlx::query(include_str!("queries/heartbeat.sql"))
            .bind(&worker.id)
            .bind(&worker.host)
            .bind(worker.pid)
            .bind(worker.started_at.as_micros())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(None)
    }

    async fn workers(&self, ttl: Span) -> Result<Vec<WorkerRow>, StoreError> {
        let rows = sqlx::query(include_str!("queries/workers.sql")).bind(ttl.as_micros()).fetch_all(&self.pool).await?;
        rows.iter().map(crate::store::rows::worker_row).collect()
    }

    async fn leases(&self, stream_arn: Option<&str>) -> Result<Vec<LeaseRow>, StoreError> {
        let rows = sqlx::query(include_str!("queries/leases.sql")).bind(stream_arn).fetch_all(&self.pool).await?;
        rows.iter().map(crate::store::rows::lease_row).collect()
    }

    async fn acquire_lease(
        &self,
        stream_arn: &str,
        shard_id: &str,
        owner: &str,
        ttl: Span,
    ) -> Result<Option<Lease>, StoreError> {
        let row: Option<(String, i64)> = sqlx::query_as(include_str!("queries/acquire_lease.sql"))
            .bind(stream_arn)
            .bind(shard_id)
            .bind(owner)
            .bind(ttl.as_micros())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(owner, epoch)| Lease { owner, epoch }))
    }

    async fn renew_leases(&self, stream_arn: &str, owner: &str, ttl: Span) -> Result<Vec<(String, Lease)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(include_str!("queries/renew_leases.sql"))
            .bind(stream_arn)
            .bind(owner)
            .bind(ttl.as_micros())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(shard, epoch)| (shard, Lease { owner: owner.to_string(), epoch })).collect())
    }

    async fn release_lease(&self, stream_arn: &str, shard_id: &str, lease: &Lease) -> Result<(), StoreError> {
        sqlx::query(include_str!("queries/release_lease.sql"))
            .bind(stream_arn)
            .bind(shard_id)
            .bind(&lease.owner)
            .bind(lease.epoch)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn ended_before(
        &self,
        before: Timestamp,
        after: Option<&(Timestamp, MeetingId)>,
        limit: usize,
    ) -> Result<Vec<(Timestamp, MeetingId)>, StoreError> {
        let (at, id) = after.map_or((i64::MIN, ""), |(t, id)| (t.as_micros(), id.as_str()));
        let rows: Vec<(i64, String)> = sqlx::query_as(include_str!("queries/ended_before.sql"))
            .bind(before.as_micros())
            .bind(at)
            .bind(id)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(t, id)| {
                let id = MeetingId::new(id).ok_or_else(|| StoreError::Corrupt("an empty meeting id".into()))?;
                Ok((Timestamp::from_micros(t), id))
            })
            .collect()
    }

    async fn delete_meetings(
        &self,
        ids: &[MeetingId],
        before: Timestamp,
        now: Timestamp,
    ) -> Result<Deleted, StoreError> {
        if ids.is_empty() {
            return Ok(Deleted::default());
        }
        let list = ids.iter().map(MeetingId::as_str).collect::<Vec<_>>();
        let mut tx = self.pool.begin().await?;
        let history = sqlx::query(include_str!("queries/delete_history.sql"))
            .bind(&list)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let effects =
            sqlx::query(include_str!("queries/delete_outbox.sql")).bind(&list).execute(&mut *tx).await?.rows_affected();
        let meetings = sqlx::query(include_str!("queries/delete_meetings.sql"))
            .bind(&list)
            .bind(before.as_micros())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(include_str!("queries/log_prune.sql"))
            .bind(before.as_micros())
            .bind(meetings as i64)
            .bind(now.as_micros())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Deleted { meetings, history, effects })
    }

    async fn prune(&self, what: Retained, before: Timestamp, limit: usize) -> Result<u64, StoreError> {
        let sql = match what {
            Retained::DeadLetters => include_str!("queries/prune_dead_letters.sql"),
            Retained::SweepLog => include_str!("queries/prune_sweep_log.sql"),
            Retained::StreamGaps => include_str!("queries/prune_stream_gaps.sql"),
            Retained::Workers => include_str!("queries/prune_workers.sql"),
            Retained::ClosedShards => include_str!("queries/prune_closed_shards.sql"),
        };
        let n = sqlx::query(sql).bind(before.as_micros()).bind(limit as i64).execute(&self.pool).await?.rows_affected();
        if what == Retained::ClosedShards && n > 0 {
            sqlx::query(include_str!("queries/prune_free_leases.sql")).execute(&self.pool).await?;
        }
        Ok(n)
    }

    async fn prunable(&self, what: Retained, before: Timestamp) -> Result<u64, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as(include_str!("queries/prunable.sql")).bind(before.as_micros()).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().find(|(k, _)| k == what.as_str()).map_or(0, |(_, n)| n.max(0) as u64))
    }

    async fn prune_log(&self) -> Result<Option<PruneLog>, StoreError> {
        let row: Option<(i64, i64, i64)> =
            sqlx::query_as(include_str!("queries/prune_log.sql")).fetch_optional(&self.pool).await?;
        Ok(row.map(|(through, meetings, last_at)| PruneLog {
            through: Timestamp::from_micros(through),
            meetings,
            last_at: Timestamp::from_micros(last_at),
        }))
    }

    async fn forget_event_ids(&self, before: Timestamp) -> Result<u64, StoreError> {
        let r = sqlx::query(include_str!("queries/forget_event_ids.sql"))
            .bind(before.as_micros())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn notify(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, '')").bind(CHANNEL).execute(&self.pool).await?;
        Ok(())
    }

    async fn listen(&self) -> Result<Option<Box<dyn Hints>>, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(Box::new(PgHints(listener))))
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

include!(concat!(env!("OUT_DIR"), "/postgres_queries.rs"));

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redact("postgres://me:secret@db:5432/x"), "postgres://me:***@db:5432/x");
        assert_eq!(redact("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
    }
}
