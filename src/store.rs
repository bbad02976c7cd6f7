//! SQLite: migrations, one transaction per batch of inputs, timers, effects, history.
//!
//! The store is concrete (no trait): a real SQLite file in WAL mode, written
//! by one writer connection at a time (`BEGIN IMMEDIATE`) and read by a small
//! pool. Writes are buffered by the engine into a [`Writes`] and flushed with
//! multi-row statements, so many inputs share one transaction (group commit).
//! Every instant is bound as a parameter; no SQL `now()`.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use crate::machine::{Ended, Facts, InstanceId, Meeting, MeetingId, Reason, State, TimerKind, Timers};
use crate::time::{Span, Timestamp};

/// Rows per multi-row statement (keeps well under SQLite's parameter limit).
const CHUNK: usize = 400;

/// A store error, classified for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {}", describe_sql(.error))]
    Open { path: String, error: sqlx::Error },
    #[error("database {path}: the database file or its directory is read-only ({why})")]
    ReadOnly { path: String, why: String },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {}", describe_sql(.0))]
    Sql(#[from] sqlx::Error),
    #[error("meeting {0} was changed by another writer; retry")]
    Conflict(String),
    #[error("database holds an unreadable value: {0}")]
    Corrupt(String),
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

/// What an operator needs to hear about a SQLite failure, then SQLite's words.
fn describe_sql(e: &sqlx::Error) -> String {
    let code = e.as_database_error().and_then(|d| d.code()).and_then(|c| c.parse::<i64>().ok());
    let what = match code.map(|c| c & 0xff) {
        Some(13) => "the disk is full",
        Some(8) => "the database file or its directory is read-only",
        Some(5) | Some(6) => "the database is locked by another process (waited the busy timeout)",
        Some(14) => "cannot open the database file",
        Some(10) => "disk I/O error",
        Some(11) | Some(26) => "the database file is corrupt or not a database",
        _ => return e.to_string(),
    };
    let detail = e.as_database_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
    format!("{what} ({detail})")
}

impl StoreError {
    /// The SQLite extended result code, when the error came from SQLite.
    pub fn sqlite_code(&self) -> Option<String> {
        let e = match self {
            StoreError::Open { error, .. } | StoreError::Sql(error) => error,
            _ => return None,
        };
        e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned())
    }
}

/// How hard SQLite tries to keep a commit across power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = FULL`: every commit is fsynced (survives power loss).
    #[default]
    Full,
    /// `synchronous = NORMAL`: WAL is fsynced at checkpoints only; a process
    /// crash (SIGKILL) loses nothing, a power loss may lose the last commits.
    Normal,
}

impl FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            _ => Err(format!("unknown synchronous setting {s:?} (expected full or normal)")),
        }
    }
}

/// Options for [`Store::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub durability: Durability,
    /// How long a writer waits for another process holding the write lock.
    pub busy_timeout: Duration,
    /// SQLite page cache per connection, MiB (bulk loads into a big database
    /// run faster with more; a worker's resident memory grows with it).
    pub cache_mib: u32,
    /// SQLite's own checkpoint threshold, in pages of 4 KiB. A background task
    /// checkpoints the WAL every 250 ms off the write path; this backstop makes
    /// the committing writer checkpoint itself once the WAL passes it (it
    /// bounds the WAL file when the background task cannot keep up).
    pub wal_autocheckpoint: u32,
}

impl StoreOptions {
    /// The same options tuned for a bulk load (`replay`, `ingest`, back-fill):
    /// the writer lets the WAL grow to ~200 MB before it checkpoints on its
    /// own. Measured on W1 (1M records): about 20% faster than the worker's
    /// 40 MB, whose synchronous checkpoints doubled the commit time; a
    /// long-running worker keeps the smaller bound for a steadier resident
    /// size (W3 peaked at 241 MB once in three runs with the larger one).
    pub fn bulk(self) -> StoreOptions {
        StoreOptions { wal_autocheckpoint: 50_000, ..self }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            cache_mib: 64,
            wal_autocheckpoint: 10_000,
        }
    }
}

/// The engine's database.
#[derive(Clone, Debug)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
    stats: Arc<WriteStats>,
    _checkpointer: Arc<Checkpointer>,
}

/// The background WAL checkpoint task; stopped when the last `Store` clone goes.
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
    /// the writer's commits no longer stall on an automatic checkpoint
    /// (measured: it was the whole p99 of timer lateness).
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

/// Rows this process has written, by table (for benchmarks and `status`).
#[derive(Debug, Default)]
pub struct WriteStats {
    pub transactions: AtomicU64,
    pub meetings: AtomicU64,
    pub timers_inserted: AtomicU64,
    pub timer_deletes: AtomicU64,
    pub history: AtomicU64,
    pub effects: AtomicU64,
    pub seen: AtomicU64,
    pub dead: AtomicU64,
    pub checkpoints: AtomicU64,
    /// Wall time spent in each [`Phase`], nanoseconds.
    pub phase_ns: [AtomicU64; Phase::COUNT],
}

/// Where a unit of work spends its time: the store's share by statement kind,
/// the rest (`Work`) is the whole unit from `BEGIN` to the end of `COMMIT`.
/// The engine's own computing is `Work` minus the others. Measured with
/// `Instant` around each call (a few per transaction), so always on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `BEGIN IMMEDIATE` (waiting for the write lock).
    Begin,
    /// Reads inside the transaction: meetings, seen eventIDs, due timers.
    Read,
    WriteMeetings,
    WriteTimers,
    WriteHistory,
    WriteEffects,
    WriteSeen,
    /// Dead letters, checkpoints, meta.
    WriteOther,
    Commit,
    /// The whole unit of work.
    Work,
}

impl Phase {
    pub const COUNT: usize = 10;
    pub const ALL: [Phase; Phase::COUNT] = [
        Phase::Begin,
        Phase::Read,
        Phase::WriteMeetings,
        Phase::WriteTimers,
        Phase::WriteHistory,
        Phase::WriteEffects,
        Phase::WriteSeen,
        Phase::WriteOther,
        Phase::Commit,
        Phase::Work,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Begin => "begin",
            Phase::Read => "read",
            Phase::WriteMeetings => "write meetings",
            Phase::WriteTimers => "write timers",
            Phase::WriteHistory => "write history",
            Phase::WriteEffects => "write effects",
            Phase::WriteSeen => "write seen ids",
            Phase::WriteOther => "write other",
            Phase::Commit => "commit",
            Phase::Work => "whole unit of work",
        }
    }
}

impl WriteStats {
    /// Add the time since `since` to `phase`.
    pub fn add_time(&self, phase: Phase, since: Instant) {
        self.phase_ns[phase as usize].fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// A copy of [`WriteStats`].
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct WriteCounts {
    pub transactions: u64,
    pub meetings: u64,
    pub timers_inserted: u64,
    pub timer_deletes: u64,
    pub history: u64,
    pub effects: u64,
    pub seen: u64,
    pub dead: u64,
    pub checkpoints: u64,
    /// Seconds spent in each [`Phase`], in [`Phase::ALL`] order.
    pub phase_secs: [f64; Phase::COUNT],
}

impl WriteCounts {
    /// Rows written, all tables (deletes count as rows).
    pub fn rows(&self) -> u64 {
        self.meetings
            + self.timers_inserted
            + self.timer_deletes
            + self.history
            + self.effects
            + self.seen
            + self.dead
            + self.checkpoints
    }
}

/// A pending timer's position in fire order: due, tie rank, meeting.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerKey {
    pub due: Timestamp,
    pub rank: i64,
    pub meeting_id: MeetingId,
}

impl TimerKey {
    pub fn new(meeting_id: MeetingId, kind: TimerKind, due: Timestamp) -> Self {
        TimerKey { due, rank: kind.rank(), meeting_id }
    }
    pub fn kind(&self) -> TimerKind {
        TimerKind::ALL.iter().copied().find(|k| k.rank() == self.rank).unwrap_or(TimerKind::Cap)
    }
}

/// One history row to write.
#[derive(Debug, Clone)]
pub struct NewHistory {
    pub meeting_id: MeetingId,
    pub at: Timestamp,
    pub cause: &'static str,
    pub cause_ref: String,
    pub from_state: Option<State>,
    pub to_state: State,
    pub outcome: &'static str,
    pub reason: Option<Reason>,
    pub lateness: Option<Span>,
    pub notes: Vec<String>,
}

/// One outbox row to write.
#[derive(Debug, Clone)]
pub struct NewEffect {
    pub key: String,
    pub meeting_id: MeetingId,
    pub kind: &'static str,
    pub payload: serde_json::Value,
    pub at: Timestamp,
}

/// One dead letter to write.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    pub at: Timestamp,
    pub origin: String,
    pub kind: &'static str,
    pub reason: String,
    pub event_id: Option<String>,
    pub raw: Vec<u8>,
}

/// A stream shard's position, written with the records it covers.
#[derive(Debug, Clone, Serialize)]
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
    /// When this was written (wall clock).
    pub at: Timestamp,
}

/// A trimmed-data gap as read back.
#[derive(Debug, Clone, Serialize)]
pub struct GapRow {
    pub stream_arn: String,
    pub shard_id: String,
    pub at: Timestamp,
    pub detail: String,
}

/// Everything one transaction writes, buffered by the engine.
#[derive(Debug, Default)]
pub struct Writes {
    /// Meetings to upsert, with the version they were loaded at (`None` = new).
    pub meetings: Vec<(Meeting, Option<i64>)>,
    /// Meetings whose pending timers are replaced by their `timers` field.
    pub timers: Vec<(MeetingId, Timers)>,
    pub history: Vec<NewHistory>,
    pub effects: Vec<NewEffect>,
    pub seen: Vec<(String, MeetingId, Timestamp)>,
    pub dead: Vec<NewDeadLetter>,
    /// The engine instant reached; the stored value only ever grows (a
    /// replay on an existing database resumes its virtual clock there).
    pub last_instant: Option<Timestamp>,
    /// The stream position these writes bring a shard to.
    pub checkpoint: Option<Checkpoint>,
    /// The latest record event time applied (only grows).
    pub event_clock: Option<Timestamp>,
}

impl Writes {
    pub fn is_empty(&self) -> bool {
        self.checkpoint.is_none()
            && self.meetings.is_empty()
            && self.timers.is_empty()
            && self.history.is_empty()
            && self.effects.is_empty()
            && self.seen.is_empty()
            && self.dead.is_empty()
    }
}

/// The outcome of one effect attempt, for [`Tx::update_effect`].
#[derive(Debug, Clone, Copy)]
pub struct EffectUpdate<'a> {
    pub id: i64,
    pub status: &'a str,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<&'a str>,
    pub result: Option<&'a str>,
    pub now: Timestamp,
}

/// A history row as read back.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub seq: i64,
    pub at: Timestamp,
    pub cause: String,
    pub cause_ref: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub lateness_us: Option<i64>,
    pub notes: Vec<String>,
}

/// An outbox row as read back.
#[derive(Debug, Clone, Serialize)]
pub struct EffectRow {
    pub id: i64,
    pub key: String,
    pub meeting_id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub result: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A pending timer as read back.
#[derive(Debug, Clone, Serialize)]
pub struct TimerRow {
    pub meeting_id: String,
    pub kind: String,
    pub due: Timestamp,
}

/// A dead letter as read back.
#[derive(Debug, Clone, Serialize)]
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

/// Filters for [`Store::list_meetings`].
#[derive(Debug, Clone, Default)]
pub struct MeetingFilter {
    pub state: Option<State>,
    pub reason: Option<Reason>,
    pub limit: Option<i64>,
}

/// Counts for summaries and `status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub meetings_by_state: Vec<(String, i64)>,
    pub terminated_by_reason: Vec<(String, i64)>,
    pub timers_pending: i64,
    pub next_timer_due: Option<Timestamp>,
    pub effects_by_status: Vec<(String, i64)>,
    pub dead_letters: i64,
    pub dead_letters_by_kind: Vec<(String, i64)>,
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_micros)
}

fn meeting_from_row(row: &SqliteRow) -> Result<Meeting, StoreError> {
    let id: String = row.try_get("id")?;
    let bad = |what: &str| StoreError::Corrupt(format!("meeting {id}: {what}"));
    let state: String = row.try_get("state")?;
    let state = State::from_str(&state).map_err(|e| bad(&e))?;
    let reason: Option<String> = row.try_get("reason")?;
    let ended = match (reason, row.try_get::<Option<i64>, _>("terminated_at")?) {
        (Some(r), Some(at)) => {
            Some(Ended { reason: Reason::from_str(&r).map_err(|e| bad(&e))?, at: Timestamp::from_micros(at) })
        }
        (None, None) => None,
        _ => return Err(bad("reason and terminated_at disagree")),
    };
    let instances: String = row.try_get("instances")?;
    let instances: BTreeSet<InstanceId> =
        serde_json::from_str(&instances).map_err(|e| bad(&format!("instances: {e}")))?;
    Ok(Meeting {
        id: MeetingId::new(id.clone()).ok_or_else(|| bad("empty id"))?,
        facts: Facts {
            meet_time: ts(row.try_get("meet_time")?),
            created_at: ts(row.try_get("created_at")?),
            duration: row.try_get::<Option<i64>, _>("duration_us")?.map(Span::from_micros),
            status: row.try_get("status")?,
            teacher_data: row.try_get("teacher_data")?,
            student_data: row.try_get("student_data")?,
        },
        instances,
        state,
        ended,
        timers: Timers::default(),
        created: Timestamp::from_micros(row.try_get("first_seen")?),
        version: row.try_get("version")?,
    })
}

fn kind_from_str(s: &str) -> Result<TimerKind, StoreError> {
    TimerKind::from_str(s).map_err(StoreError::Corrupt)
}

/// A write transaction (`BEGIN IMMEDIATE`): holds the single write lock.
pub struct Tx {
    tx: sqlx::Transaction<'static, Sqlite>,
    stats: Arc<WriteStats>,
}

impl Store {
    /// How every connection is opened: WAL, the chosen `synchronous`, a busy
    /// timeout, a page cache (64 MiB by default) and memory-mapped reads (a batch's pages
    /// stay in memory instead of being spilled and read back), in-memory temp
    /// storage. (The cache and the map together keep a restart over a million
    /// timers near 110 MB resident.) WAL checkpoints are taken off the write
    /// path by a background task every 250 ms, so a commit never waits for one.
    pub fn connect_options(path: &Path, options: &StoreOptions) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(options.busy_timeout)
            .foreign_keys(false)
            .pragma("cache_size", format!("-{}", options.cache_mib.max(1) as u64 * 1024))
            .pragma("mmap_size", "67108864")
            .pragma("temp_store", "MEMORY")
            // Checkpoints are taken by a background task (see `checkpointer`);
            // this is only the backstop, should that task fall behind.
            .pragma("wal_autocheckpoint", options.wal_autocheckpoint.to_string())
    }

    /// Open (creating if missing) and migrate the database at `path`.
    pub async fn open(path: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        match Store::open_inner(path, options).await {
            Ok(s) => Ok(s),
            Err(e) => Err(read_only_probe(path).unwrap_or(e)),
        }
    }

    async fn open_inner(path: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        let open_err = |error| StoreError::Open { path: path.display().to_string(), error };
        let connect = Store::connect_options(path, options);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(3600))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect.clone())
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(connect)
            .await
            .map_err(|error| StoreError::Open { path: path.display().to_string(), error })?;
        let checkpointer = Arc::new(Checkpointer::start(reader.clone()));
        Ok(Store { writer, reader, path: path.to_path_buf(), stats: Arc::default(), _checkpointer: checkpointer })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows this process has written so far.
    pub fn write_counts(&self) -> WriteCounts {
        let s = &self.stats;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WriteCounts {
            transactions: l(&s.transactions),
            meetings: l(&s.meetings),
            timers_inserted: l(&s.timers_inserted),
            timer_deletes: l(&s.timer_deletes),
            history: l(&s.history),
            effects: l(&s.effects),
            seen: l(&s.seen),
            dead: l(&s.dead),
            checkpoints: l(&s.checkpoints),
            phase_secs: std::array::from_fn(|i| l(&s.phase_ns[i]) as f64 / 1e9),
        }
    }

    /// The counters, for timing a unit of work.
    pub fn stats(&self) -> &Arc<WriteStats> {
        &self.stats
    }

    /// Begin a write transaction, waiting for the write lock.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let t = Instant::now();
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        self.stats.add_time(Phase::Begin, t);
        Ok(Tx { tx, stats: self.stats.clone() })
    }

    /// Close both pools (flushes the WAL on last close).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// `PRAGMA integrity_check` — `"ok"` for a healthy file.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let rows = sqlx::query("PRAGMA integrity_check").fetch_all(&self.reader).await?;
        let lines: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
        Ok(lines.join("\n"))
    }

    /// A meeting with its pending timers.
    pub async fn meeting(&self, id: &MeetingId) -> Result<Option<Meeting>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        Ok(load_meetings(&mut conn, std::slice::from_ref(id)).await?.pop())
    }

    /// Meetings in id order (timers not loaded).
    pub async fn list_meetings(&self, filter: &MeetingFilter) -> Result<Vec<Meeting>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM meetings WHERE 1 = 1");
        if let Some(s) = filter.state {
            q.push(" AND state = ").push_bind(s.as_str());
        }
        if let Some(r) = filter.reason {
            q.push(" AND reason = ").push_bind(r.as_str());
        }
        q.push(" ORDER BY id");
        if let Some(l) = filter.limit {
            q.push(" LIMIT ").push_bind(l);
        }
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter().map(meeting_from_row).collect()
    }

    /// A meeting's history, oldest first.
    pub async fn history(&self, id: &MeetingId) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = sqlx::query("SELECT * FROM history WHERE meeting_id = ? ORDER BY at, seq")
            .bind(id.as_str())
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| {
                let details: String = r.try_get("details")?;
                Ok(HistoryEntry {
                    seq: r.try_get("seq")?,
                    at: Timestamp::from_micros(r.try_get("at")?),
                    cause: r.try_get("cause")?,
                    cause_ref: r.try_get("cause_ref")?,
                    from_state: r.try_get("from_state")?,
                    to_state: r.try_get("to_state")?,
                    outcome: r.try_get("outcome")?,
                    reason: r.try_get("reason")?,
                    lateness_us: r.try_get("lateness_us")?,
                    notes: serde_json::from_str(&details).map_err(|e| StoreError::Corrupt(format!("history: {e}")))?,
                })
            })
            .collect()
    }

    /// Effects of one meeting (or every effect with `None`), oldest first.
    pub async fn effects(
        &self,
        meeting: Option<&MeetingId>,
        status: Option<&str>,
    ) -> Result<Vec<EffectRow>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM effects WHERE 1 = 1");
        if let Some(m) = meeting {
            // Keys are "<meeting id>/<kind>": a range scan of the key index.
            q.push(" AND key >= ").push_bind(format!("{m}/")).push(" AND key < ").push_bind(format!("{m}0"));
            q.push(" AND meeting_id = ").push_bind(m.as_str());
        }
        if let Some(s) = status {
            q.push(" AND status = ").push_bind(s);
        }
        q.push(" ORDER BY id");
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter().map(effect_from_row).collect()
    }

    /// Pending timers, soonest first.
    pub async fn timers(&self, meeting: Option<&MeetingId>, limit: i64) -> Result<Vec<TimerRow>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT meeting_id, kind, due FROM timers WHERE 1 = 1");
        if let Some(m) = meeting {
            q.push(" AND meeting_id = ").push_bind(m.as_str());
        }
        q.push(" ORDER BY due, rank, meeting_id LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter()
            .map(|r| {
                Ok(TimerRow {
                    meeting_id: r.try_get("meeting_id")?,
                    kind: r.try_get("kind")?,
                    due: Timestamp::from_micros(r.try_get("due")?),
                })
            })
            .collect()
    }

    /// The due instant of the soonest pending timer.
    pub async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar("SELECT MIN(due) FROM timers").fetch_one(&self.reader).await?;
        Ok(ts(due))
    }

    /// Dead letters, newest last.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetterRow>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM dead_letters ORDER BY id LIMIT ?").bind(limit).fetch_all(&self.reader).await?;
        rows.iter()
            .map(|r| {
                Ok(DeadLetterRow {
                    id: r.try_get("id")?,
                    at: Timestamp::from_micros(r.try_get("at")?),
                    origin: r.try_get("origin")?,
                    kind: r.try_get("kind")?,
                    reason: r.try_get("reason")?,
                    event_id: r.try_get("event_id")?,
                    raw: r.try_get("raw")?,
                })
            })
            .collect()
    }

    /// Counts for summaries.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let pairs = |rows: Vec<SqliteRow>| -> Vec<(String, i64)> {
            rows.iter().map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1))).collect()
        };
        let by_state = sqlx::query("SELECT state, COUNT(*) FROM meetings GROUP BY state ORDER BY state")
            .fetch_all(&self.reader)
            .await?;
        let by_reason = sqlx::query(
            "SELECT reason, COUNT(*) FROM meetings WHERE reason IS NOT NULL GROUP BY reason ORDER BY reason",
        )
        .fetch_all(&self.reader)
        .await?;
        let effects = sqlx::query("SELECT status, COUNT(*) FROM effects GROUP BY status ORDER BY status")
            .fetch_all(&self.reader)
            .await?;
        let dead = sqlx::query("SELECT kind, COUNT(*) FROM dead_letters GROUP BY kind ORDER BY kind")
            .fetch_all(&self.reader)
            .await?;
        let (timers, next): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(due) FROM timers").fetch_one(&self.reader).await?;
        let dead = pairs(dead);
        Ok(Counts {
            meetings_by_state: pairs(by_state),
            terminated_by_reason: pairs(by_reason),
            timers_pending: timers,
            next_timer_due: ts(next),
            effects_by_status: pairs(effects),
            dead_letters: dead.iter().map(|(_, n)| n).sum(),
            dead_letters_by_kind: dead,
        })
    }

    /// Up to `limit` pending effects due at `now`, oldest first.
    pub async fn due_effects(&self, now: Timestamp, limit: i64) -> Result<Vec<EffectRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM effects WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
        )
        .bind(now.as_micros())
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(effect_from_row).collect()
    }

    /// When the soonest pending effect is due.
    pub async fn next_effect_attempt(&self) -> Result<Option<Timestamp>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM effects WHERE status = 'pending'")
            .fetch_one(&self.reader)
            .await?;
        Ok(ts(at))
    }

    /// Stream checkpoints (of one stream, or all), by stream and shard.
    pub async fn checkpoints(&self, stream_arn: Option<&str>) -> Result<Vec<Checkpoint>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM checkpoints WHERE 1 = 1");
        if let Some(a) = stream_arn {
            q.push(" AND stream_arn = ").push_bind(a);
        }
        q.push(" ORDER BY stream_arn, shard_id");
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter()
            .map(|r| {
                Ok(Checkpoint {
                    stream_arn: r.try_get("stream_arn")?,
                    shard_id: r.try_get("shard_id")?,
                    parent_shard_id: r.try_get("parent_shard_id")?,
                    sequence_number: r.try_get("sequence_number")?,
                    closed: r.try_get("closed")?,
                    records: r.try_get::<i64, _>("records")? as u64,
                    last_event_at: ts(r.try_get("last_event_at")?),
                    caught_up: r.try_get("caught_up")?,
                    at: Timestamp::from_micros(r.try_get("updated_at")?),
                })
            })
            .collect()
    }

    /// Forget a stream's checkpoints: the next reader starts over (at its
    /// start position); records it re-reads are dropped by eventID.
    pub async fn forget_checkpoints(&self, stream_arn: &str) -> Result<u64, StoreError> {
        let r =
            sqlx::query("DELETE FROM checkpoints WHERE stream_arn = ?").bind(stream_arn).execute(&self.writer).await?;
        Ok(r.rows_affected())
    }

    /// Forget applied eventIDs recorded before `before`. Returns how many.
    pub async fn prune_seen(&self, before: Timestamp) -> Result<u64, StoreError> {
        let r =
            sqlx::query("DELETE FROM seen_events WHERE at < ?").bind(before.as_micros()).execute(&self.writer).await?;
        Ok(r.rows_affected())
    }

    /// Record a trimmed-data gap.
    pub async fn record_gap(
        &self,
        stream_arn: &str,
        shard_id: &str,
        at: Timestamp,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO stream_gaps (stream_arn, shard_id, at, detail) VALUES (?, ?, ?, ?)")
            .bind(stream_arn)
            .bind(shard_id)
            .bind(at.as_micros())
            .bind(detail)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Trimmed-data gaps, oldest first.
    pub async fn gaps(&self) -> Result<Vec<GapRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM stream_gaps ORDER BY id").fetch_all(&self.reader).await?;
        rows.iter()
            .map(|r| {
                Ok(GapRow {
                    stream_arn: r.try_get("stream_arn")?,
                    shard_id: r.try_get("shard_id")?,
                    at: Timestamp::from_micros(r.try_get("at")?),
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Re-queue failed effects (all, or one id), due now. Returns how many.
    pub async fn requeue_failed(&self, id: Option<i64>, now: Timestamp) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let n = tx.requeue_failed(id, now).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// A value from the `meta` table.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?").bind(key).fetch_optional(&self.reader).await?)
    }
}

fn effect_from_row(r: &SqliteRow) -> Result<EffectRow, StoreError> {
    let payload: String = r.try_get("payload")?;
    Ok(EffectRow {
        id: r.try_get("id")?,
        key: r.try_get("key")?,
        meeting_id: r.try_get("meeting_id")?,
        kind: r.try_get("kind")?,
        payload: serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("effect payload: {e}")))?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: Timestamp::from_micros(r.try_get("next_attempt_at")?),
        last_error: r.try_get("last_error")?,
        result: r.try_get("result")?,
        created_at: Timestamp::from_micros(r.try_get("created_at")?),
        updated_at: Timestamp::from_micros(r.try_get("updated_at")?),
    })
}

/// Load meetings and their pending timers, in any order.
/// A meeting row with its timers, as the bulk query returns it.
type MeetingTuple = (
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
    i64,
    BTreeSet<InstanceId>,
    i64,
    i64,
    Vec<(String, i64)>,
);

fn meeting_from_tuple(t: MeetingTuple) -> Result<Meeting, StoreError> {
    let (
        id,
        state,
        reason,
        terminated_at,
        meet_time,
        created_at,
        duration,
        status,
        teacher,
        student,
        instances,
        first,
        version,
        timers,
    ) = t;
    let bad = |what: &str| StoreError::Corrupt(format!("meeting {id}: {what}"));
    let ended = match (reason, terminated_at) {
        (Some(r), Some(at)) => {
            Some(Ended { reason: Reason::from_str(&r).map_err(|e| bad(&e))?, at: Timestamp::from_micros(at) })
        }
        (None, None) => None,
        _ => return Err(bad("reason and terminated_at disagree")),
    };
    let mut m = Meeting {
        id: MeetingId::new(id.clone()).ok_or_else(|| bad("empty id"))?,
        facts: Facts {
            meet_time: ts(meet_time),
            created_at: ts(created_at),
            duration: duration.map(Span::from_micros),
            status,
            teacher_data: teacher != 0,
            student_data: student != 0,
        },
        instances,
        state: State::from_str(&state).map_err(|e| bad(&e))?,
        ended,
        timers: Timers::default(),
        created: Timestamp::from_micros(first),
        version,
    };
    for (kind, due) in timers {
        *m.timers.slot(kind_from_str(&kind)?) = Some(Timestamp::from_micros(due));
    }
    Ok(m)
}

/// Ids as one JSON array: bound as a single parameter and read by SQLite's
/// `json_each` (one bind per statement instead of one per id).
fn json_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    serde_json::to_string(&items.collect::<Vec<_>>()).expect("strings serialize")
}

/// Load meetings and their pending timers, in any order: one statement per
/// chunk, returning one JSON document (decoding a document is far cheaper
/// than decoding rows column by column through the driver).
async fn load_meetings(conn: &mut sqlx::SqliteConnection, ids: &[MeetingId]) -> Result<Vec<Meeting>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(4 * CHUNK) {
        let doc: Option<String> = sqlx::query_scalar(
            "SELECT json_group_array(json_array(m.id, m.state, m.reason, m.terminated_at, m.meet_time, m.created_at, \
             m.duration_us, m.status, m.teacher_data, m.student_data, json(m.instances), m.first_seen, m.version, \
             (SELECT json_group_array(json_array(t.kind, t.due)) FROM timers t WHERE t.meeting_id = m.id))) \
             FROM meetings m WHERE m.id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json_list(chunk.iter().map(MeetingId::as_str)))
        .fetch_one(&mut *conn)
        .await?;
        let rows: Vec<MeetingTuple> = serde_json::from_str(doc.as_deref().unwrap_or("[]"))
            .map_err(|e| StoreError::Corrupt(format!("meetings: {e}")))?;
        for t in rows {
            out.push(meeting_from_tuple(t)?);
        }
    }
    Ok(out)
}

impl Tx {
    /// Load meetings (with timers) inside the transaction.
    pub async fn load_meetings(&mut self, ids: &[MeetingId]) -> Result<Vec<Meeting>, StoreError> {
        let t = Instant::now();
        let out = load_meetings(&mut self.tx, ids).await;
        self.stats.add_time(Phase::Read, t);
        out
    }

    /// Which of these event ids were already applied.
    pub async fn seen(&mut self, event_ids: &[&str]) -> Result<HashSet<String>, StoreError> {
        let t = Instant::now();
        let mut out = HashSet::new();
        for chunk in event_ids.chunks(4 * CHUNK) {
            let doc: Option<String> = sqlx::query_scalar(
                "SELECT json_group_array(event_id) FROM seen_events WHERE event_id IN (SELECT value FROM json_each(?1))",
            )
            .bind(json_list(chunk.iter().copied()))
            .fetch_one(&mut *self.tx)
            .await?;
            let ids: Vec<String> =
                serde_json::from_str(doc.as_deref().unwrap_or("[]")).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            out.extend(ids);
        }
        self.stats.add_time(Phase::Read, t);
        Ok(out)
    }

    /// Pending timers strictly after `after` (in fire order) and due at or
    /// before `upto`, at most `limit`, in fire order.
    pub async fn due_timers(
        &mut self,
        after: Option<&TimerKey>,
        upto: Timestamp,
        limit: i64,
    ) -> Result<Vec<TimerKey>, StoreError> {
        let t = Instant::now();
        let rows =
            match after {
                Some(a) => sqlx::query(
                    "SELECT due, rank, meeting_id FROM timers WHERE (due, rank, meeting_id) > (?, ?, ?) AND due <= ? \
                     ORDER BY due, rank, meeting_id LIMIT ?",
                )
                .bind(a.due.as_micros())
                .bind(a.rank)
                .bind(a.meeting_id.as_str())
                .bind(upto.as_micros())
                .bind(limit)
                .fetch_all(&mut *self.tx)
                .await?,
                None => sqlx::query(
                    "SELECT due, rank, meeting_id FROM timers WHERE due <= ? ORDER BY due, rank, meeting_id LIMIT ?",
                )
                .bind(upto.as_micros())
                .bind(limit)
                .fetch_all(&mut *self.tx)
                .await?,
            };
        self.stats.add_time(Phase::Read, t);
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(2)?;
                Ok(TimerKey {
                    due: Timestamp::from_micros(r.try_get(0)?),
                    rank: r.try_get(1)?,
                    meeting_id: MeetingId::new(id)
                        .ok_or_else(|| StoreError::Corrupt("timer without meeting".into()))?,
                })
            })
            .collect()
    }

    /// Flush buffered writes with multi-row statements.
    pub async fn write(&mut self, w: &Writes) -> Result<(), StoreError> {
        let st = &self.stats;
        let add = |a: &AtomicU64, n: usize| a.fetch_add(n as u64, Ordering::Relaxed);
        add(&st.meetings, w.meetings.len());
        add(&st.timer_deletes, w.timers.len());
        add(&st.timers_inserted, w.timers.iter().map(|(_, t)| t.pending().count()).sum());
        add(&st.history, w.history.len());
        add(&st.effects, w.effects.len());
        add(&st.seen, w.seen.len());
        add(&st.dead, w.dead.len());
        add(&st.checkpoints, usize::from(w.checkpoint.is_some()));
        let t = Instant::now();
        self.write_meetings(&w.meetings).await?;
        self.stats.add_time(Phase::WriteMeetings, t);
        let t = Instant::now();
        self.write_timers(&w.timers).await?;
        self.stats.add_time(Phase::WriteTimers, t);
        let t = Instant::now();
        // Multi-row VALUES statements: for inserts they beat unpacking one JSON
        // document with json_each (measured: the per-column JSON extraction
        // costs more than the driver's per-parameter binding).
        for chunk in w.history.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO history (meeting_id, at, cause, cause_ref, from_state, to_state, outcome, reason, lateness_us, details) ",
            );
            q.push_values(chunk, |mut b, h| {
                b.push_bind(h.meeting_id.as_str())
                    .push_bind(h.at.as_micros())
                    .push_bind(h.cause)
                    .push_bind(h.cause_ref.as_str())
                    .push_bind(h.from_state.map(State::as_str))
                    .push_bind(h.to_state.as_str())
                    .push_bind(h.outcome)
                    .push_bind(h.reason.map(Reason::as_str))
                    .push_bind(h.lateness.map(Span::as_micros))
                    .push_bind(serde_json::to_string(&h.notes).unwrap_or_else(|_| "[]".into()));
            });
            q.build().execute(&mut *self.tx).await?;
        }
        self.stats.add_time(Phase::WriteHistory, t);
        let t = Instant::now();
        for chunk in w.effects.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO effects (key, meeting_id, kind, payload, status, attempts, next_attempt_at, created_at, updated_at) ",
            );
            q.push_values(chunk, |mut b, e| {
                b.push_bind(e.key.as_str())
                    .push_bind(e.meeting_id.as_str())
                    .push_bind(e.kind)
                    .push_bind(e.payload.to_string())
                    .push_bind("pending")
                    .push_bind(0_i64)
                    .push_bind(e.at.as_micros())
                    .push_bind(e.at.as_micros())
                    .push_bind(e.at.as_micros());
            });
            q.push(" ON CONFLICT (key) DO NOTHING");
            q.build().execute(&mut *self.tx).await?;
        }
        self.stats.add_time(Phase::WriteEffects, t);
        let t = Instant::now();
        for chunk in w.seen.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO seen_events (event_id, meeting_id, at) ");
            q.push_values(chunk, |mut b, (e, m, at)| {
                b.push_bind(e.as_str()).push_bind(m.as_str()).push_bind(at.as_micros());
            });
            q.push(" ON CONFLICT (event_id) DO NOTHING");
            q.build().execute(&mut *self.tx).await?;
        }
        self.stats.add_time(Phase::WriteSeen, t);
        let t = Instant::now();
        for chunk in w.dead.chunks(CHUNK) {
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT INTO dead_letters (at, origin, kind, reason, event_id, raw) ");
            q.push_values(chunk, |mut b, d| {
                b.push_bind(d.at.as_micros())
                    .push_bind(d.origin.as_str())
                    .push_bind(d.kind)
                    .push_bind(d.reason.as_str())
                    .push_bind(d.event_id.as_deref())
                    .push_bind(d.raw.as_slice());
            });
            q.build().execute(&mut *self.tx).await?;
        }
        if let Some(c) = &w.checkpoint {
            sqlx::query(
                "INSERT INTO checkpoints (stream_arn, shard_id, parent_shard_id, sequence_number, closed, records, \
                 last_event_at, caught_up, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (stream_arn, shard_id) DO UPDATE SET \
                 parent_shard_id = COALESCE(excluded.parent_shard_id, parent_shard_id), \
                 sequence_number = COALESCE(excluded.sequence_number, sequence_number), \
                 closed = MAX(closed, excluded.closed), records = records + excluded.records, \
                 last_event_at = COALESCE(excluded.last_event_at, last_event_at), \
                 caught_up = excluded.caught_up, updated_at = excluded.updated_at",
            )
            .bind(&c.stream_arn)
            .bind(&c.shard_id)
            .bind(&c.parent_shard_id)
            .bind(&c.sequence_number)
            .bind(c.closed)
            .bind(c.records as i64)
            .bind(c.last_event_at.map(Timestamp::as_micros))
            .bind(c.caught_up)
            .bind(c.at.as_micros())
            .execute(&mut *self.tx)
            .await?;
        }
        for (key, value) in [("last_instant", w.last_instant), ("event_clock", w.event_clock)] {
            let Some(value) = value else { continue };
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = \
                 CASE WHEN CAST(excluded.value AS INTEGER) > CAST(value AS INTEGER) THEN excluded.value ELSE value END",
            )
            .bind(key)
            .bind(value.as_micros().to_string())
            .execute(&mut *self.tx)
            .await?;
        }
        self.stats.add_time(Phase::WriteOther, t);
        Ok(())
    }

    /// Run a statement whose one parameter is `rows` as a JSON document.
    async fn exec_json<T: Serialize>(&mut self, sql: &'static str, rows: &T) -> Result<u64, StoreError> {
        let doc = serde_json::to_string(rows).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(sqlx::query(sql).bind(doc).execute(&mut *self.tx).await?.rows_affected())
    }

    async fn write_meetings(&mut self, meetings: &[(Meeting, Option<i64>)]) -> Result<(), StoreError> {
        for chunk in meetings.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO meetings (id, state, reason, terminated_at, meet_time, created_at, duration_us, status, \
                 teacher_data, student_data, instances, first_seen, updated_at, version, prev_version) ",
            );
            q.push_values(chunk, |mut b, (m, loaded)| {
                b.push_bind(m.id.as_str())
                    .push_bind(m.state.as_str())
                    .push_bind(m.ended.map(|e| e.reason.as_str()))
                    .push_bind(m.ended.map(|e| e.at.as_micros()))
                    .push_bind(m.facts.meet_time.map(Timestamp::as_micros))
                    .push_bind(m.facts.created_at.map(Timestamp::as_micros))
                    .push_bind(m.facts.duration.map(Span::as_micros))
                    .push_bind(m.facts.status.clone())
                    .push_bind(m.facts.teacher_data)
                    .push_bind(m.facts.student_data)
                    .push_bind(serde_json::to_string(&m.instances).unwrap_or_else(|_| "[]".into()))
                    .push_bind(m.created.as_micros())
                    .push_bind(m.created.as_micros())
                    .push_bind(m.version)
                    .push_bind(loaded.unwrap_or(-1));
            });
            // Fenced upsert: an existing row is replaced only if it still has
            // the version this transaction loaded.
            q.push(
                " ON CONFLICT (id) DO UPDATE SET state = excluded.state, reason = excluded.reason, \
                 terminated_at = excluded.terminated_at, meet_time = excluded.meet_time, \
                 created_at = excluded.created_at, duration_us = excluded.duration_us, status = excluded.status, \
                 teacher_data = excluded.teacher_data, student_data = excluded.student_data, \
                 instances = excluded.instances, updated_at = excluded.updated_at, version = excluded.version, \
                 prev_version = excluded.prev_version WHERE meetings.version = excluded.prev_version",
            );
            let done = q.build().execute(&mut *self.tx).await?.rows_affected();
            if done != chunk.len() as u64 {
                let ids: Vec<&str> = chunk.iter().map(|(m, _)| m.id.as_str()).take(10).collect();
                return Err(StoreError::Conflict(format!("one of {}", ids.join(", "))));
            }
        }
        Ok(())
    }

    async fn write_timers(&mut self, timers: &[(MeetingId, Timers)]) -> Result<(), StoreError> {
        if timers.is_empty() {
            return Ok(());
        }
        self.exec_json(
            "DELETE FROM timers WHERE meeting_id IN (SELECT value FROM json_each(?1))",
            &timers.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        )
        .await?;
        let rows: Vec<(&str, TimerKind, Timestamp)> =
            timers.iter().flat_map(|(id, t)| t.pending().map(move |(k, d)| (id.as_str(), k, d))).collect();
        for chunk in rows.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO timers (meeting_id, kind, rank, due) ");
            q.push_values(chunk, |mut b, (id, kind, due)| {
                b.push_bind(*id).push_bind(kind.as_str()).push_bind(kind.rank()).push_bind(due.as_micros());
            });
            q.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Record an effect attempt's outcome.
    pub async fn update_effect(&mut self, u: &EffectUpdate<'_>) -> Result<(), StoreError> {
        let EffectUpdate { id, status, attempts, next_attempt_at, last_error, result, now } = *u;
        sqlx::query(
            "UPDATE effects SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, \
             result = COALESCE(?, result), updated_at = ? WHERE id = ?",
        )
        .bind(status)
        .bind(attempts)
        .bind(next_attempt_at.as_micros())
        .bind(last_error)
        .bind(result)
        .bind(now.as_micros())
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Re-queue failed effects (all, or one id). Returns how many.
    pub async fn requeue_failed(&mut self, id: Option<i64>, now: Timestamp) -> Result<u64, StoreError> {
        let mut q =
            QueryBuilder::<Sqlite>::new("UPDATE effects SET status = 'pending', attempts = 0, next_attempt_at = ");
        q.push_bind(now.as_micros()).push(", updated_at = ").push_bind(now.as_micros());
        q.push(" WHERE status = 'failed'");
        if let Some(id) = id {
            q.push(" AND id = ").push_bind(id);
        }
        Ok(q.build().execute(&mut *self.tx).await?.rows_affected())
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        let t = Instant::now();
        self.tx.commit().await?;
        self.stats.add_time(Phase::Commit, t);
        self.stats.transactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Tx>();
    is_send::<Store>();
}
