//! The worker: stream reader, timer loop, effect executor and housekeeping,
//! run together until shutdown.
//!
//! [`run`] takes its ports as trait objects and a shutdown future, so tests
//! (and embedding services) start the worker in-process; `spindown run`
//! wires in the AWS adapters and SIGTERM/SIGINT.
//!
//! **Database faults are weather.** Every loop — the stream reader, the
//! shard leases, the timer loop, the executor, housekeeping, the sweep, and
//! the start itself — waits out a database that fails in passing (down,
//! restarting, failing over, busy, not answering within its deadline) with
//! capped exponential backoff and jitter, and reports the outage in
//! `/readyz` and `spindown_store_errors_total` while it lasts. A unit of
//! work whose commit's outcome is unknown is read again from its checkpoint,
//! as after a crash. Only a failure that does not pass — the database
//! becomes read-only, the disk fills, the schema or a permission is wrong —
//! stops the worker: the others parts are stopped (within
//! `shutdown_timeout`) and the error returned; nothing committed is lost,
//! and a restart resumes from the checkpoints, the pending timers and the
//! outbox.
//!
//! * [`identity`] — one identity, one process;
//! * [`jobs`] — housekeeping, retention and the orphan sweep on a schedule.

mod identity;
mod jobs;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::backoff::Backoff;
use crate::engine::{EngineError, StreamGate};
use crate::operate::MeetingEngine;
use crate::outbox::{Ec2, Executor, MeetingTable, RetryPolicy};
use crate::source::stream::{ReaderError, ReaderOptions, StreamReader, StreamSource};
use crate::store::StoreError;
use crate::time::Span;

pub use crate::http::HttpOptions;
pub use identity::IdentityError;
pub use jobs::Retention;

/// Everything the worker needs besides its ports.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub stream_arn: String,
    pub reader: ReaderOptions,
    pub retry: RetryPolicy,
    /// How long claimed effects are held against other workers.
    pub effect_lease: Duration,
    /// Look at the due timers and the outbox at least this often, woken or
    /// not: with several workers on one database, another worker's timers
    /// and effects fall to this one when it dies. `None`: only when woken or due.
    pub poll_max: Option<Duration>,
    /// How long after a meeting ended its applied eventIDs are kept for dedupe.
    pub seen_retention: Duration,
    /// Cron expression for housekeeping.
    pub housekeeping: String,
    /// What housekeeping deletes, and after how long.
    pub retention: Retention,
    /// Longest a due timer waits for the stream to be read past it.
    pub timer_hold_max: Duration,
    /// A Unix datagram socket other `spindown` commands poke after they
    /// change the database (`schedule`, `terminate`, `retry`), so the worker
    /// notices new timers and effects at once. `None`: no socket.
    pub wake_socket: Option<PathBuf>,
    /// A file this process locks for as long as it runs (a SQLite database's
    /// `<db>.worker.lock`): a second worker on the same file refuses to start.
    pub lock_file: Option<PathBuf>,
    /// Serve metrics, health and the console here. `None`: no listener.
    pub http: Option<HttpOptions>,
    /// The recurring orphan sweep. `None`: off.
    pub sweep: Option<SweepJob>,
    /// The longest any one call of a loop waits for the database before it
    /// counts as lost (a peer that vanished) and is tried again.
    pub store_deadline: Duration,
    /// After a stop is asked for (SIGTERM) or a part failed, the longest the
    /// others get to finish; then the worker returns anyway (nothing
    /// committed is lost).
    pub shutdown_timeout: Duration,
}

/// The orphan sweep, every `every`, through `ec2` (which must guard by the meeting tag).
#[derive(Clone)]
pub struct SweepJob {
    pub every: Duration,
    pub options: crate::sweep::SweepOptions,
    pub ec2: Arc<dyn Ec2>,
}

impl std::fmt::Debug for SweepJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SweepJob").field("every", &self.every).field("options", &self.options).finish_non_exhaustive()
    }
}

/// Why the worker stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("stream reader: {0}")]
    Reader(#[from] ReaderError),
    #[error("timer loop: {0}")]
    Timers(#[from] EngineError),
    #[error("effect executor: {0}")]
    Effects(#[from] StoreError),
    #[error("housekeeping: {0}")]
    Housekeeping(String),
    #[error("http listener: {0}")]
    Http(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{0} task panicked")]
    Panicked(&'static str),
    #[error(
        "the worker's parts did not stop within {0:?} (shutdown_timeout); exiting anyway, nothing committed is lost"
    )]
    ShutdownTimeout(Duration),
}

/// The wake socket next to a database: `spindown.db` → `spindown.db.wake`.
pub fn wake_socket_for(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".wake");
    PathBuf::from(p)
}

/// The worker lock next to a SQLite database: `spindown.db` → `spindown.db.worker.lock`.
pub fn lock_file_for(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".worker.lock");
    PathBuf::from(p)
}

/// Poke a running worker (best effort; no worker is fine).
pub fn poke(socket: &Path) {
    if let Ok(s) = std::os::unix::net::UnixDatagram::unbound() {
        let _ = s.send_to(b"wake", socket);
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Call `f` until it succeeds, waiting out a database that fails in passing
/// (capped exponential backoff with jitter, each failure logged); `None`
/// when `shutdown` completes first.
///
/// # Errors
///
/// `f`'s failure that does not pass.
pub async fn patiently<T, E, F, Fut>(
    what: &str,
    shutdown: &mut Pin<&mut impl Future<Output = ()>>,
    mut f: F,
) -> Result<Option<T>, E>
where
    E: std::fmt::Display + AsStoreError,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::store();
    loop {
        let r = tokio::select! {
            r = f() => r,
            _ = shutdown.as_mut() => return Ok(None),
        };
        match r {
            Ok(v) => {
                if backoff.failures() > 0 {
                    tracing::info!("{what}: the database answers again");
                }
                return Ok(Some(v));
            }
            Err(e) if e.store_error().is_some_and(StoreError::is_transient) => {
                let wait = backoff.next_delay();
                if let Some(se) = e.store_error() {
                    let kind = se.fault().map_or("other", |f| f.as_str());
                    metrics::counter!("spindown_store_errors_total", "kind" => kind).increment(1);
                }
                tracing::warn!(
                    "{what}: {e}; trying again in {wait:?} (the database may be restarting or failing over)"
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.as_mut() => return Ok(None),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// An error that may be the database's (for [`patiently`]).
pub trait AsStoreError {
    fn store_error(&self) -> Option<&StoreError>;
}

impl AsStoreError for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

impl AsStoreError for EngineError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            EngineError::Store(s) => Some(s),
            _ => None,
        }
    }
}

impl AsStoreError for ReaderError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            ReaderError::Engine(EngineError::Store(s)) | ReaderError::Store(s) => Some(s),
            _ => None,
        }
    }
}

impl AsStoreError for IdentityError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            IdentityError::Store(s) => Some(s),
            _ => None,
        }
    }
}

/// Run the worker until `shutdown` completes or a part fails for good.
///
/// # Errors
///
/// A part failed with an error that does not pass, another process runs
/// under this worker's identity, or the parts did not stop within
/// `shutdown_timeout`.
pub async fn run(
    engine: Arc<MeetingEngine>,
    source: Arc<dyn StreamSource>,
    ec2: Arc<dyn Ec2>,
    table: Arc<dyn MeetingTable>,
    options: WorkerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    tokio::pin!(shutdown);
    let gate = StreamGate::new(Span::from_micros(options.timer_hold_max.as_micros() as i64));
    // Until the reader's first round, timers wait for it (a worker back from downtime).
    gate.reader_stopped();
    engine.set_gate(Arc::new(gate));
    engine.set_store_deadline(options.store_deadline);
    let store = engine.store().clone();
    let worker = options.reader.worker.clone();

    // One identity, one process: a second worker under this name refuses to start.
    let _lock = match &options.lock_file {
        Some(path) => Some(identity::lock_file(path)?),
        None => None,
    };
    let ttl = Span::from_micros(options.reader.lease_ttl.as_micros() as i64);
    let owns_file = options.lock_file.is_some();
    let claimed =
        patiently("registering the worker", &mut shutdown, || identity::claim(store.as_ref(), &worker, ttl, owns_file))
            .await?;
    if claimed.is_none() {
        return Ok(()); // stopped while waiting for the database
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks: JoinSet<(&'static str, Result<(), WorkerError>)> = JoinSet::new();

    // The operator's listener, first: a port that cannot be had stops the start.
    if let Some(http) = &options.http {
        let listener = tokio::net::TcpListener::bind(http.listen)
            .await
            .map_err(|e| WorkerError::Http(format!("cannot listen on {}: {e}", http.listen)))?;
        // The timer loop must tick often enough for `/readyz` to tell a stall.
        let tick = (http.timer_stall / 3).max(Duration::from_millis(100));
        if options.poll_max.is_none_or(|p| p > tick) {
            engine.set_clock_check(tick);
        }
        let state = crate::http::AppState::worker(engine.clone(), http.clone());
        let rx = stop_rx.clone();
        tracing::info!(listen = %http.listen, "serving /metrics, /livez, /readyz and the console");
        tasks.spawn(async move {
            (
                "http",
                crate::http::serve(listener, state, stopped(rx)).await.map_err(|e| WorkerError::Http(e.to_string())),
            )
        });
    }

    // Effects first: anything left pending by a crash runs now.
    let executor = Executor::new(engine.store().clone(), ec2, table, engine.clock().clone(), options.retry.clone())
        .owned_by(worker.id.clone())
        .lease(Span::from_micros(options.effect_lease.as_micros() as i64))
        .store_deadline(options.store_deadline)
        .liveness(engine.liveness().clone());
    let executor = match options.poll_max {
        Some(every) => {
            engine.set_clock_check(every);
            executor.max_wait(every)
        }
        None => executor,
    };
    let wake = engine.effects_notify();
    let rx = stop_rx.clone();
    tasks.spawn(async move { ("effects", executor.run(wake, stopped(rx)).await.map_err(WorkerError::from)) });

    // Timers: overdue ones fire at once, each exactly once.
    let e = engine.clone();
    let rx = stop_rx.clone();
    tasks.spawn(async move { ("timers", e.run_timers(stopped(rx)).await.map_err(WorkerError::from)) });

    // The shard leases, renewed on their own task whatever the reader is doing.
    let (s, arn, w, l, rx) =
        (store.clone(), options.stream_arn.clone(), worker.clone(), engine.liveness().clone(), stop_rx.clone());
    let lease_ttl = options.reader.lease_ttl;
    tasks.spawn(async move {
        let r = crate::source::leases::keep_renewed(s, arn, w, lease_ttl, l, stopped(rx)).await;
        ("shard leases", r.map_err(WorkerError::from))
    });

    // The stream.
    let mut reader_options = options.reader.clone();
    reader_options.store_deadline = Some(options.store_deadline);
    let reader = patiently("reading the stream's checkpoints", &mut shutdown, || {
        StreamReader::new(source.clone(), engine.clone(), options.stream_arn.clone(), reader_options.clone())
    })
    .await?;
    let Some(mut reader) = reader else {
        return finish(tasks, stop_tx, None, options.shutdown_timeout).await;
    };
    let rx = stop_rx.clone();
    tasks.spawn(async move { ("stream", reader.run(stopped(rx)).await.map_err(WorkerError::from)) });

    // Other processes' changes.
    if let Some(path) = &options.wake_socket {
        let _ = std::fs::remove_file(path);
        match tokio::net::UnixDatagram::bind(path) {
            Ok(sock) => {
                let (e, rx, path) = (engine.clone(), stop_rx.clone(), path.clone());
                tasks.spawn(async move {
                    let mut buf = [0u8; 16];
                    let stop = stopped(rx);
                    tokio::pin!(stop);
                    loop {
                        tokio::select! {
                            r = sock.recv(&mut buf) => if r.is_ok() {
                                e.wake_timers();
                                e.effects_notify().notify_one();
                            },
                            _ = &mut stop => break,
                        }
                    }
                    let _ = std::fs::remove_file(&path);
                    ("wake socket", Ok(()))
                });
            }
            Err(err) => tracing::warn!(
                "cannot bind wake socket {}: {err}; changes made by other spindown commands are picked up at the next timer or effect",
                path.display()
            ),
        }
    }

    // Hints from other processes through the database (PostgreSQL: LISTEN/NOTIFY).
    let (e, rx) = (engine.clone(), stop_rx.clone());
    tasks.spawn(async move { ("hints", jobs::hints(e, stopped(rx)).await) });

    // Housekeeping on a cron schedule: forget eventIDs, apply retention, sweep.
    let mut scheduler = jobs::schedule(engine.clone(), &options).await?;

    let mut first_error = None;
    tokio::select! {
        _ = &mut shutdown => tracing::info!("shutting down: finishing the current transactions"),
        Some(joined) = tasks.join_next() => {
            match joined {
                Ok((name, Err(e))) => { tracing::error!("{name} failed: {e}"); first_error = Some(e) }
                Ok((name, Ok(()))) => tracing::warn!("{name} stopped"),
                Err(_) => first_error = Some(WorkerError::Panicked("a worker")),
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), scheduler.shutdown()).await;
    finish(tasks, stop_tx, first_error, options.shutdown_timeout).await
}

/// Stop every part and wait for them, at most `within`.
async fn finish(
    mut tasks: JoinSet<(&'static str, Result<(), WorkerError>)>,
    stop_tx: watch::Sender<bool>,
    mut first_error: Option<WorkerError>,
    within: Duration,
) -> Result<(), WorkerError> {
    let _ = stop_tx.send(true);
    let joined = tokio::time::timeout(within, async {
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((name, Err(e))) => {
                    tracing::error!("{name} failed while stopping: {e}");
                    first_error.get_or_insert(e);
                }
                Ok(_) => {}
                Err(_) => {
                    first_error.get_or_insert(WorkerError::Panicked("a worker"));
                }
            }
        }
    })
    .await;
    if joined.is_err() {
        tasks.abort_all();
        tracing::error!("the worker's parts did not stop within {within:?}; exiting anyway");
        return Err(first_error.unwrap_or(WorkerError::ShutdownTimeout(within)));
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
