//! The worker: stream reader, timer loop, effect executor and housekeeping,
//! run together until shutdown.
//!
//! [`run`] takes its ports as trait objects and a shutdown future, so tests
//! (and embedding services) start the worker in-process; `spindown run`
//! wires in the AWS adapters and SIGTERM/SIGINT. If one part fails — the
//! database becomes read-only, the disk fills — the others are stopped and
//! the error is returned; nothing committed is lost, and a restart resumes
//! from the checkpoints, the pending timers and the outbox.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::engine::{Engine, EngineError, StreamGate};
use crate::outbox::{Ec2, Executor, MeetingTable, RetryPolicy};
use crate::source::stream::{ReaderError, ReaderOptions, StreamReader, StreamSource};
use crate::store::StoreError;
use crate::time::Span;

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
    /// Longest a due timer waits for the stream to be read past it.
    pub timer_hold_max: Duration,
    /// A Unix datagram socket other `spindown` commands poke after they
    /// change the database (`schedule`, `terminate`, `retry`), so the worker
    /// notices new timers and effects at once. `None`: no socket.
    pub wake_socket: Option<PathBuf>,
    /// Serve metrics, health and the console here. `None`: no listener.
    pub http: Option<HttpOptions>,
    /// The recurring orphan sweep. `None`: off.
    pub sweep: Option<SweepJob>,
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

/// The operator's listener.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub listen: std::net::SocketAddr,
    /// `/readyz` fails when the timer loop has not run for this long.
    pub timer_stall: Duration,
    /// `/readyz` fails when the stream reader has not finished a round for this long.
    pub reader_stall: Duration,
    /// Write actions in the console need this token; `None`: read-only.
    pub console_token: Option<String>,
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
    #[error("{0} task panicked")]
    Panicked(&'static str),
}

/// The wake socket next to a database: `spindown.db` → `spindown.db.wake`.
pub fn wake_socket_for(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".wake");
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

/// Run the worker until `shutdown` completes or a part fails.
pub async fn run(
    engine: Arc<Engine>,
    source: Arc<dyn StreamSource>,
    ec2: Arc<dyn Ec2>,
    table: Arc<dyn MeetingTable>,
    options: WorkerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    engine.set_gate(Arc::new(StreamGate::new(Span::from_micros(options.timer_hold_max.as_micros() as i64))));
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
        .owned_by(options.reader.worker.id.clone())
        .lease(Span::from_micros(options.effect_lease.as_micros() as i64));
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

    // The stream.
    let mut reader =
        StreamReader::new(source, engine.clone(), options.stream_arn.clone(), options.reader.clone()).await?;
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
    if let Some(mut hints) = engine.store().listen().await? {
        let (e, rx) = (engine.clone(), stop_rx.clone());
        tasks.spawn(async move {
            let stop = stopped(rx);
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    r = hints.recv() => match r {
                        Ok(()) => {
                            e.wake_timers();
                            e.effects_notify().notify_one();
                        }
                        Err(err) => {
                            tracing::warn!("listening for hints: {err}; polling meanwhile");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    },
                    _ = &mut stop => break,
                }
            }
            ("hints", Ok(()))
        });
    }

    // Housekeeping on a cron schedule: forget the eventIDs of meetings that ended
    // longer ago than the stream can redeliver a record.
    let mut scheduler = housekeeping(engine.clone(), &options).await?;

    let shutdown = async {
        shutdown.await;
    };
    tokio::pin!(shutdown);
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
    let _ = stop_tx.send(true);
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
    let _ = scheduler.shutdown().await;
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn housekeeping(
    engine: Arc<Engine>,
    options: &WorkerOptions,
) -> Result<tokio_cron_scheduler::JobScheduler, WorkerError> {
    use tokio_cron_scheduler::{Job, JobScheduler};
    let err = |e: tokio_cron_scheduler::JobSchedulerError| WorkerError::Housekeeping(e.to_string());
    let scheduler = JobScheduler::new().await.map_err(err)?;
    let retention = Span::from_micros(options.seen_retention.as_micros() as i64);
    let (sweep_store, sweep_clock) = (engine.store().clone(), engine.clock().clone());
    let job = Job::new_async(options.housekeeping.as_str(), move |_id, _sched| {
        let engine = engine.clone();
        Box::pin(async move {
            let before = engine.clock().now().saturating_add(Span::from_micros(-retention.as_micros()));
            match engine.store().forget_event_ids(before).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(meetings = n, before = %before, "forgot the eventIDs of meetings ended long ago")
                }
                Err(e) => tracing::warn!("forgetting old eventIDs failed: {e}"),
            }
        })
    })
    .map_err(|e| WorkerError::Housekeeping(format!("schedule {:?}: {e}", options.housekeeping)))?;
    scheduler.add(job).await.map_err(err)?;
    if let Some(sweep) = options.sweep.clone() {
        let (store, clock) = (sweep_store, sweep_clock);
        let job = Job::new_repeated_async(sweep.every, move |_id, _sched| {
            let (store, clock, sweep) = (store.clone(), clock.clone(), sweep.clone());
            Box::pin(async move {
                match crate::sweep::sweep(&store, &sweep.ec2, &clock, &sweep.options).await {
                    Ok(r) if r.findings.is_empty() => tracing::debug!(seen = r.seen, "orphan sweep: nothing to do"),
                    Ok(r) => {
                        for f in &r.findings {
                            tracing::info!(instance = %f.instance_id, meeting_id = %f.meeting_id, action = %f.action, "orphan sweep: {}", f.detail);
                        }
                    }
                    Err(e) => tracing::warn!("orphan sweep failed: {e}"),
                }
            })
        })
        .map_err(err)?;
        scheduler.add(job).await.map_err(err)?;
    }
    scheduler.start().await.map_err(err)?;
    Ok(scheduler)
}
