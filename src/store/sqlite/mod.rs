//! The SQLite backend: one file in WAL mode, the embedded default.
//!
//! One writer connection (`BEGIN IMMEDIATE`: a unit of work holds the single
//! write lock) and a small pool of readers. A unit of work writes with a few
//! statements whatever its size: meetings go in as one JSON document read by
//! SQLite's `json_each`, history chunks and dead letters as multi-row inserts.
//! The fixed SQL is in `queries/*.sql`; every instant is a bound parameter,
//! never SQL `now()`. One worker per file: a second process may read and run
//! operator commands, but only one should run `spindown run`.

mod read;
mod uow;

use crate::store::SweepFinding;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Row, SqlitePool};

use super::{
    Checkpoint, Claim, Clocks, Counts, DeadLetterRow, Deleted, EffectFilter, EffectOutcome, EffectRow, Fault, Gap,
    HistoryAppend, HistoryRecord, Lease, LeaseRow, MeetingFilter, OutcomeLine, Page, PruneLog, Requeue, Retained,
    Store, StoreError, StoredMeeting, TimerFilter, UnitOfWork, WorkerInfo, WorkerRow,
};
use crate::meeting::{MeetingId, TimerKey};
use crate::named::names;
use crate::store::stats::{Phase, Stats};
use crate::store::WriteCounts;
use crate::time::{Span, Timestamp};
use uow::SqliteUnitOfWork;

names! {
    /// How hard SQLite tries to keep a commit across power loss.
    pub Durability ("synchronous setting") {
        /// `synchronous = FULL`: every commit is fsynced (survives power loss).
        Full = "full",
        /// `synchronous = NORMAL`: the WAL is fsynced at checkpoints only; a
        /// process crash (SIGKILL) loses nothing, a power loss may lose the last commits.
        Normal = "normal",
        /// `synchronous = OFF`: nothing is fsynced (a temporary database).
        Off = "off",
    }
}

/// Options for [`SqliteStore::open`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub durability: Durability,
    /// How long a writer waits for another process holding the write lock.
    pub busy_timeout: Duration,
    /// SQLite page cache per connection, MiB.
    pub cache_mib: u32,
    /// Memory-mapped reads per connection, MiB (0: none).
    pub mmap_mib: u32,
    /// Reader connections (besides the one writer).
    pub readers: u32,
    /// SQLite's own checkpoint threshold, in pages of 4 KiB. A background task
    /// checkpoints the WAL every 250 ms off the write path; this backstop makes
    /// the committing writer checkpoint itself once the WAL passes it.
    pub wal_autocheckpoint: u32,
}

impl SqliteOptions {
    /// The same options tuned for a bulk load (`replay`, `ingest`): the writer
    /// lets the WAL grow to ~200 MB before it checkpoints on its own.
    pub fn bulk(self) -> SqliteOptions {
        SqliteOptions { wal_autocheckpoint: 50_000, ..self }
    }

    /// For a resident engine (`replay`), which keeps what it works on in its
    /// own memory and mostly writes: small caches, no memory map, one reader,
    /// so that the process's memory does not grow with the database.
    pub fn lean(self) -> SqliteOptions {
        SqliteOptions { cache_mib: 8, mmap_mib: 0, readers: 1, ..self }
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            cache_mib: 64,
            mmap_mib: 64,
            readers: 4,
            wal_autocheckpoint: 10_000,
        }
    }
}

/// A spindown database in one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
    stats: Arc<Stats>,
    _checkpointer: Arc<Checkpointer>,
}

/// The background WAL checkpoint task; stopped when the last handle goes.
#[derive(Debug)]
struct Checkpointer(tokio::task::JoinHandle<()>);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Checkpointer {
    /// Copy committed WAL pages into the database file every 250 ms, on a
    /// reader connection: a `PASSIVE` checkpoint never blocks the writer, and
    /// the writer's commits do not stall on an automatic checkpoint.
    fn start(reader: SqlitePool) -> Checkpointer {
        Checkpointer(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if reader.is_closed() {
                    return;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&reader).await {
                    tracing::debug!("background checkpoint: {e}");
                }
            }
        }))
    }
}

/// When opening failed: is it because nothing there may be written? SQLite
/// says only "unable to open database file" for a WAL database on a
/// read-only file system.
fn read_only_probe(path: &Path) -> Option<StoreError> {
    let ro = |why: std::io::Error| StoreError::ReadOnly { path: path.display().to_string(), why: why.to_string() };
    if path.exists() {
        if let Err(e) = std::fs::OpenOptions::new().append(true).open(path) {
            return Some(ro(e));
        }
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match tempfile::NamedTempFile::new_in(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Some(ro(e)),
        _ => None,
    }
}

/// Two processes opening one new file at once (a worker and its console, or
/// `run` started twice) would both run the migrations, and the second would
/// fail on `table … already exists` (or find the file locked while the other
/// turns WAL on): SQLite has no lock sqlx's migrator can take. So creating
/// and migrating run under an advisory lock on `<db>.migrate.lock`,
/// waited for (the kernel drops it with its holder, so a killed process never
/// leaves it held). Where the lock file cannot be created (a read-only
/// directory) migrating goes on without it and fails, if it must, for its own
/// reason.
async fn migration_lock(path: &Path) -> Option<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".migrate.lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&name).ok()?;
    let started = std::time::Instant::now();
    let mut warned = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Some(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                if !warned && started.elapsed() > Duration::from_secs(10) {
                    tracing::warn!(lock = %Path::new(&name).display(), "waiting for another process to finish migrating the database");
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(std::fs::TryLockError::Error(_)) => return None,
        }
    }
}

/// What an operator needs to hear about a SQLite failure, then SQLite's words.
pub(crate) fn describe(e: &sqlx::Error) -> (String, Option<Fault>) {
    let code = e.as_database_error().and_then(|d| d.code()).and_then(|c| c.parse::<i64>().ok());
    let (what, fault) = match code.map(|c| c & 0xff) {
        Some(13) => ("the disk is full", None),
        Some(8) => ("the database file or its directory is read-only", None),
        Some(5) | Some(6) => ("the database is locked by another process (waited the busy timeout)", Some(Fault::Busy)),
        Some(14) => ("cannot open the database file", None),
        Some(10) => ("disk I/O error", None),
        Some(11) | Some(26) => ("the database file is corrupt or not a database", None),
        _ => return (e.to_string(), None),
    };
    let detail = e.as_database_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
    (format!("{what} ({detail})"), fault)
}

impl SqliteStore {
    /// How every connection is opened: WAL, the chosen `synchronous`, a busy
    /// timeout, a page cache, memory-mapped reads, in-memory temp storage.
    fn connect_options(path: &Path, options: &SqliteOptions) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
                Durability::Off => SqliteSynchronous::Off,
            })
            .busy_timeout(options.busy_timeout)
            .foreign_keys(false)
            .pragma("cache_size", format!("-{}", options.cache_mib.max(1) as u64 * 1024))
            .pragma("mmap_size", (options.mmap_mib as u64 * 1024 * 1024).to_string())
            .pragma("temp_store", "MEMORY")
            .pragma("wal_autocheckpoint", options.wal_autocheckpoint.to_string())
            // A slow checkpoint under load is not the operator's news.
            .disable_statement_logging()
    }

    /// Open (creating if missing) and migrate the database at `path`.
    ///
    /// # Errors
    ///
    /// The file cannot be opened or written (the error says why: read-only,
    /// full, locked, not a database), or a migration fails.
    pub async fn open(path: &Path, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        match SqliteStore::open_inner(path, options).await {
            Ok(s) => Ok(s),
            Err(e) => Err(read_only_probe(path).unwrap_or(e)),
        }
    }

    async fn open_inner(path: &Path, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        let open_err = |error: sqlx::Error| {
            let (message, fault) = describe(&error);
            StoreError::Open { path: path.display().to_string(), message, fault }
        };
        let connect = SqliteStore::connect_options(path, options);
        // Creating the file, turning WAL on and migrating, one process at a time.
        let migrating = migration_lock(path).await;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(3600))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect.clone())
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await.map_err(|e| StoreError::Migrate(e.to_string()))?;
        drop(migrating);
        let reader = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .connect_with(connect)
            .await
            .map_err(open_err)?;
        let checkpointer = Arc::new(Checkpointer::start(reader.clone()));
        Ok(SqliteStore { writer, reader, path: path.to_path_buf(), stats: Arc::default(), _checkpointer: checkpointer })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows this process has written and where the time went (benchmarks).
    pub fn write_counts(&self) -> WriteCounts {
        self.stats.counts()
    }

    /// `PRAGMA integrity_check` — `"ok"` for a healthy file.
    ///
    /// # Errors
    ///
    /// The file cannot be read.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let rows = sqlx::query("PRAGMA integrity_check").fetch_all(&self.reader).await?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect::<Vec<_>>().join("\n"))
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        let t = Instant::now();
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        self.stats.add_time(Phase::Begin, t);
        Ok(Box::new(SqliteUnitOfWork::new(tx, self.stats.clone())))
    }

    async fn load(&self, ids: &[MeetingId]) -> Result<Vec<StoredMeeting>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        read::load(&mut conn, ids).await
    }

    async fn due(&self, after: Option<&TimerKey>, upto: Timestamp, limit: usize) -> Result<Vec<TimerKey>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        read::due(&mut conn, after, upto, limit).await
    }

    async fn clocks(&self) -> Result<Clocks, StoreError> {
        read::clocks(&self.reader).await
    }

    async fn meeting(&self, id: &MeetingId) -> Result<Option<StoredMeeting>, StoreError> {
        Ok(self.load(std::slice::from_ref(id)).await?.pop())
    }

    async fn meetings(&self, filter: &MeetingFilter) -> Result<Vec<StoredMeeting>, StoreError> {
        read::meetings(&self.reader, filter).await
    }

    async fn outcomes(&self, after: Option<&MeetingId>, limit: usize) -> Result<Vec<OutcomeLine>, StoreError> {
        read::outcomes(&self.reader, after, limit).await
    }

    async fn history(&self, id: &MeetingId) -> Result<Vec<HistoryRecord>, StoreError> {
        read::history(&self.reader, id).await
    }

    async fn timers(&self, filter: &TimerFilter) -> Result<Vec<TimerKey>, StoreError> {
        read::timers(&self.reader, filter).await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        read::scalar_instant(&self.reader, include_str!("queries/next_due.sql")).await
    }

    async fn effects(&self, filter: &EffectFilter) -> Result<Vec<EffectRow>, StoreError> {
        read::effects(&self.reader, filter).await
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
                    .fetch_all(&self.reader)
                    .await?
            }
            (None, Some(status)) => {
                sqlx::query(include_str!("queries/recent_effects_by_status.sql"))
                    .bind(status.as_str())
                    .bind(before)
                    .bind(limit as i64)
                    .fetch_all(&self.reader)
                    .await?
            }
            (None, None) => {
                sqlx::query(include_str!("queries/recent_effects.sql"))
                    .bind(before)
                    .bind(limit as i64)
                    .fetch_all(&self.reader)
                    .await?
            }
        };
        rows.iter().map(crate::store::rows::effect_row).collect()
    }

    async fn recent_dead_letters(&self, before: Option<i64>, limit: usize) -> Result<Vec<DeadLetterRow>, StoreError> {
        let rows = sqlx::query(include_str!("queries/recent_dead_letters.sql"))
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit as i64)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(crate::store::rows::dead_letter_row).collect()
    }

    async fn dead_letters(&self, page: &Page) -> Result<Vec<DeadLetterRow>, StoreError> {
        read::dead_letters(&self.reader, page).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        read::counts(&self.reader).await
    }

    async fn checkpoints(&self, stream_arn: Option<&str>) -> Result<Vec<Checkpoint>, StoreError> {
        read::checkpoints(&self.reader, stream_arn).await
    }

    async fn gaps(&self) -> Result<Vec<Gap>, StoreError> {
        read::gaps(&self.reader).await
    }

    async fn claim_effects(&self, claim: &Claim) -> Result<Vec<EffectRow>, StoreError> {
        let rows = sqlx::query(include_str!("queries/claim_effects.sql"))
            .bind(&claim.owner)
            .bind(claim.lease.as_micros())
            .bind(claim.now.as_micros())
            .bind(claim.limit as i64)
            .bind(serde_json::to_string(&claim.running).expect("ids serialize"))
            .fetch_all(&self.writer)
            .await?;
        let mut out = rows.iter().map(crate::store::rows::effect_row).collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|e| (e.next_attempt_at, e.id));
        Ok(out)
    }

    async fn renew_effect_leases(&self, owner: &str, ids: &[i64], lease: Span) -> Result<Vec<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64,)> = sqlx::query_as(include_str!("queries/renew_effect_leases.sql"))
            .bind(owner)
            .bind(serde_json::to_string(ids).expect("ids serialize"))
            .bind(lease.as_micros())
            .fetch_all(&self.writer)
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn finish_effects(&self, owner: &str, outcomes: &[EffectOutcome]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    async fn copy_effects(&self, rows: &[EffectRow]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
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
        tx.commit().await?;
        Ok(())
    }

    async fn next_effect_attempt(&self) -> Result<Option<Timestamp>, StoreError> {
        read::scalar_instant(&self.reader, include_str!("queries/next_effect_attempt.sql")).await
    }

    async fn record_gap(&self, gap: &Gap) -> Result<(), StoreError> {
        sqlx::query(include_str!("queries/record_gap.sql"))
            .bind(&gap.stream_arn)
            .bind(&gap.shard_id)
            .bind(gap.at.as_micros())
            .bind(&gap.detail)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn sweep_log(&self, limit: i64) -> Result<Vec<SweepFinding>, StoreError> {
        let rows = sqlx::query(include_str!("queries/sweep_log.sql")).bind(limit).fetch_all(&self.reader).await?;
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
                .execute(&self.writer)
                .await?;
        }
        Ok(())
    }

    async fn forget_checkpoints(&self, stream_arn: &str) -> Result<u64, StoreError> {
        let r =
            sqlx::query(include_str!("queries/forget_checkpoints.sql")).bind(stream_arn).execute(&self.writer).await?;
        Ok(r.rows_affected())
    }

    async fn heartbeat(&self, worker: &WorkerInfo, ttl: Span) -> Result<Vec<WorkerRow>, StoreError> {
        sqlx::query(include_str!("queries/heartbeat.sql"))
            .bind(&worker.id)
            .bind(&worker.host)
            .bind(worker.pid)
            .bind(worker.started_at.as_micros())
            .execute(&self.writer)
            .await?;
        self.workers(ttl).await
    }

    async fn claim_worker(
        &self,
        worker: &WorkerInfo,
        ttl: Span,
        take_over: bool,
    ) -> Result<Option<WorkerRow>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
        let rows =
            sqlx::query(include_str!("queries/workers.sql")).bind(ttl.as_micros()).fetch_all(&self.reader).await?;
        rows.iter().map(crate::store::rows::worker_row).collect()
    }

    async fn leases(&self, stream_arn: Option<&str>) -> Result<Vec<LeaseRow>, StoreError> {
        let rows = sqlx::query(include_str!("queries/leases.sql")).bind(stream_arn).fetch_all(&self.reader).await?;
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
            .fetch_optional(&self.writer)
            .await?;
        Ok(row.map(|(owner, epoch)| Lease { owner, epoch }))
    }

    async fn renew_leases(&self, stream_arn: &str, owner: &str, ttl: Span) -> Result<Vec<(String, Lease)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(include_str!("queries/renew_leases.sql"))
            .bind(stream_arn)
            .bind(owner)
            .bind(ttl.as_micros())
            .fetch_all(&self.writer)
            .await?;
        Ok(rows.into_iter().map(|(shard, epoch)| (shard, Lease { owner: owner.to_string(), epoch })).collect())
    }

    async fn release_lease(&self, stream_arn: &str, shard_id: &str, lease: &Lease) -> Result<(), StoreError> {
        sqlx::query(include_str!("queries/release_lease.sql"))
            .bind(stream_arn)
            .bind(shard_id)
            .bind(&lease.owner)
            .bind(lease.epoch)
            .execute(&self.writer)
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
            .fetch_all(&self.reader)
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
        let list =
            serde_json::to_string(&ids.iter().map(MeetingId::as_str).collect::<Vec<_>>()).expect("ids serialize");
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
        let n =
            sqlx::query(sql).bind(before.as_micros()).bind(limit as i64).execute(&self.writer).await?.rows_affected();
        if what == Retained::ClosedShards && n > 0 {
            sqlx::query(include_str!("queries/prune_free_leases.sql")).execute(&self.writer).await?;
        }
        Ok(n)
    }

    async fn prunable(&self, what: Retained, before: Timestamp) -> Result<u64, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(include_str!("queries/prunable.sql"))
            .bind(before.as_micros())
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().find(|(k, _)| k == what.as_str()).map_or(0, |(_, n)| n.max(0) as u64))
    }

    async fn prune_log(&self) -> Result<Option<PruneLog>, StoreError> {
        let row: Option<(i64, i64, i64)> =
            sqlx::query_as(include_str!("queries/prune_log.sql")).fetch_optional(&self.reader).await?;
        Ok(row.map(|(through, meetings, last_at)| PruneLog {
            through: Timestamp::from_micros(through),
            meetings,
            last_at: Timestamp::from_micros(last_at),
        }))
    }

    async fn forget_event_ids(&self, before: Timestamp) -> Result<u64, StoreError> {
        let r = sqlx::query(include_str!("queries/forget_event_ids.sql"))
            .bind(before.as_micros())
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

include!(concat!(env!("OUT_DIR"), "/sqlite_queries.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_fixed_statement_prepares_against_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("q.db"), &SqliteOptions::default()).await.unwrap();
        for (name, sql) in QUERIES {
            let explain = format!("EXPLAIN {sql}");
            let mut conn = store.reader.acquire().await.unwrap();
            // Preparing checks every table, column and function the statement names.
            let r = sqlx::query(&explain).fetch_all(&mut *conn).await;
            if let Err(e) = r {
                let msg = e.to_string();
                assert!(!msg.contains("no such") && !msg.contains("syntax error"), "{name}: {msg}");
            }
        }
        store.close().await;
    }
}
