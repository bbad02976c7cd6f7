//! The `spindown` command line: a thin layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use spindown::aws;
use spindown::clock::{Clock, ManualClock, SystemClock};
use spindown::config::WorkerConfig;
use spindown::engine::Engine;
use spindown::feed::LineFeed;
use spindown::inspect::{self, OutcomeLine};
use spindown::machine::{Command, InstanceId, MeetingId, Reason, SeenInstance, State};
use spindown::policy::Policy;
use spindown::replay::{replay, ReplayOptions, ReplaySummary};
use spindown::store::{Durability, MeetingFilter, Store, StoreOptions};
use spindown::stream::Start;
use spindown::time::{Span, Timestamp};
use spindown::worker::{self, WorkerOptions};

/// spindown — a durable state machine that spins down meeting EC2 instances.
///
/// Each meeting is a persisted state machine in a SQLite file: DynamoDB Stream
/// records move it, durable timers (the old safety net) end it, and its
/// effects (terminate instances, write back to DynamoDB) run from an outbox.
#[derive(Parser, Debug)]
#[command(name = "spindown", version, propagate_version = true)]
struct Cli {
    /// SQLite database file (created if missing).
    #[arg(long, global = true, env = "SPINDOWN_DB", default_value = "spindown.db", value_name = "PATH")]
    db: PathBuf,

    /// SQLite synchronous setting: `full` fsyncs every commit, `normal` only
    /// at checkpoints (a crash loses nothing, a power cut may lose the last commits).
    #[arg(long, global = true, default_value = "full", value_name = "full|normal")]
    synchronous: Durability,

    /// More logging (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the engine on a virtual clock over a file of stream records and print each meeting's outcome.
    ///
    /// Records are applied in file order; the clock moves to each record's
    /// ApproximateCreationDateTime and timers due before it fire first. Then the
    /// clock runs on until no timer is pending (or --until). Effects are dry-run:
    /// each meeting's history says what would have been terminated and written.
    /// Malformed records are dead-lettered (see `dead-letters`), never fatal.
    /// Uses a temporary database unless --db is given explicitly.
    Replay(ReplayArgs),
    /// Apply a file of stream records to the database on the system clock (back-fill, migration).
    ///
    /// Timers that are already due fire at once. Effects are queued in the
    /// outbox for the worker to run.
    Ingest(IngestArgs),
    /// Show a meeting: facts, state, pending timers, effects and full history (oldest first).
    Show(ShowArgs),
    /// List meetings, optionally filtered by state or reason.
    List(ListArgs),
    /// List pending timers, soonest first.
    Timers(TimersArgs),
    /// List dead-lettered input with the reason and the raw record.
    DeadLetters(DeadLettersArgs),
    /// Terminate a meeting now (reason MANUAL); its effects are queued in the outbox.
    Terminate(TerminateArgs),
    /// One screen: meetings by state, timers, the outbox, stream checkpoints and lag, dead letters.
    Status(StatusArgs),
    /// Run the worker: read the table's DynamoDB Stream, fire timers, terminate instances and write back.
    ///
    /// Replaces the meeting-safety-net and terminator Lambdas, their EventBridge
    /// schedules and the Streams trigger. AWS settings come from the standard
    /// chain (environment, profile, instance role); AWS_ENDPOINT_URL points every
    /// client at another endpoint. Stops cleanly on SIGTERM/SIGINT; after a crash
    /// it resumes from its checkpoints, pending timers and outbox.
    Run(RunArgs),
    /// Register (or move) a meeting without the stream, as schedule-meeting used to call EventBridge.
    Schedule(ScheduleArgs),
    /// Re-queue failed effects so the worker runs them again.
    Retry(RetryArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The DynamoDB table of meetings (its stream must be enabled with NEW_AND_OLD_IMAGES).
    #[arg(long, env = "SPINDOWN_TABLE", value_name = "NAME")]
    table: String,
    /// Read this stream instead of the table's DescribeTable.LatestStreamArn.
    #[arg(long, value_name = "ARN")]
    stream_arn: Option<String>,
    #[command(flatten)]
    policy: PolicyArg,
    /// Worker settings: [guard], [effects], [stream], [housekeeping] (see deploy/spindown.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where to start on a stream never read before (later starts resume from checkpoints).
    #[arg(long, value_name = "trim-horizon|latest")]
    start: Option<Start>,
    /// Terminate an instance only if it carries this tag equal to the meeting id (overrides [guard] require_tag).
    #[arg(long, value_name = "TAG")]
    require_tag: Option<String>,
    /// Attempts before an effect is marked failed (overrides [effects] max_attempts).
    #[arg(long, value_name = "N")]
    max_attempts: Option<i64>,
}

#[derive(Args, Debug)]
struct ScheduleArgs {
    /// Meeting id.
    id: String,
    /// Scheduled start (RFC 3339; no zone means UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_instant)]
    meet_time: Timestamp,
    /// The teacher's EC2 instance.
    #[arg(long, value_name = "INSTANCE")]
    teacher_ec2: Option<String>,
    /// The student's EC2 instance.
    #[arg(long, value_name = "INSTANCE")]
    student_ec2: Option<String>,
    /// Declared duration in minutes (caps the meeting at start + duration + overrun_grace).
    #[arg(long, value_name = "MINUTES")]
    duration_minutes: Option<f64>,
    #[command(flatten)]
    policy: PolicyArg,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["effect_id", "all_failed"])))]
struct RetryArgs {
    /// The effect to re-queue (its id is in `show` and `status`).
    effect_id: Option<i64>,
    /// Re-queue every failed effect.
    #[arg(long)]
    all_failed: bool,
}

#[derive(Args, Debug)]
struct PolicyArg {
    /// Policy file (TOML, see workflows/meeting.toml). Default: the built-in policy, identical to that file.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    /// Records, one JSON object (or {"Records": [...]}) per line. `-` reads standard input.
    file: PathBuf,
    #[command(flatten)]
    policy: PolicyArg,
    /// Stop the virtual clock at this instant (RFC 3339): later records are not applied, later timers do not fire.
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    until: Option<Timestamp>,
    /// Print the spec's JSON line per meeting instead of a table.
    #[arg(long)]
    json: bool,
    /// Records per transaction.
    #[arg(long, default_value_t = 5000, hide = true)]
    batch: usize,
}

#[derive(Args, Debug)]
struct IngestArgs {
    /// Records, one JSON object (or {"Records": [...]}) per line. `-` reads standard input.
    file: PathBuf,
    #[command(flatten)]
    policy: PolicyArg,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Records per transaction.
    #[arg(long, default_value_t = 5000, hide = true)]
    batch: usize,
}

#[derive(Args, Debug)]
struct ShowArgs {
    /// Meeting id.
    id: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ListArgs {
    /// Only meetings in this state (Scheduled, InProgress, Partial, Complete, Terminated).
    #[arg(long, value_parser = |s: &str| s.parse::<State>())]
    state: Option<State>,
    /// Only meetings terminated for this reason (e.g. NO_SHOW_TIMEOUT).
    #[arg(long, value_parser = |s: &str| s.parse::<Reason>())]
    reason: Option<Reason>,
    /// At most this many.
    #[arg(long)]
    limit: Option<i64>,
    /// One JSON object per meeting.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct TimersArgs {
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: i64,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct DeadLettersArgs {
    /// At most this many.
    #[arg(long, default_value_t = 1000)]
    limit: i64,
    /// One JSON object per dead letter, raw input included in full.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct TerminateArgs {
    /// Meeting id.
    id: String,
    #[command(flatten)]
    policy: PolicyArg,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct StatusArgs {
    #[arg(long)]
    json: bool,
}

fn parse_instant(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_iso(s).map_err(|e| format!("{s:?} is not an RFC 3339 instant: {e}"))
}

fn init_tracing(verbose: u8, daemon: bool) {
    let default = match verbose {
        0 if daemon => "info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default},sqlx=warn,tokio_cron_scheduler=warn"))
    });
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn load_policy(arg: &PolicyArg) -> Result<Policy> {
    match &arg.policy {
        Some(p) => Policy::load(p).with_context(|| format!("policy {}", p.display())),
        None => Ok(Policy::default()),
    }
}

fn open_input(path: &Path) -> Result<(Box<dyn std::io::Read + Send>, String)> {
    if path == Path::new("-") {
        return Ok((Box::new(std::io::stdin()), "stdin".into()));
    }
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    Ok((Box::new(f), name))
}

fn store_options(cli: &Cli) -> StoreOptions {
    StoreOptions { durability: cli.synchronous, ..StoreOptions::default() }
}

async fn open_store(cli: &Cli) -> Result<Store> {
    Ok(Store::open(&cli.db, &store_options(cli)).await?)
}

/// Read-only commands must not create a database by accident.
async fn open_existing(cli: &Cli) -> Result<Store> {
    if !cli.db.exists() {
        bail!("no database at {} (use --db PATH, or run `spindown ingest`/`run` first)", cli.db.display());
    }
    open_store(cli).await
}

fn db_given_explicitly() -> bool {
    std::env::args_os().any(|a| a == "--db" || a.to_string_lossy().starts_with("--db="))
        || std::env::var_os("SPINDOWN_DB").is_some()
}

async fn cmd_replay(cli: &Cli, args: &ReplayArgs) -> Result<()> {
    let policy = load_policy(&args.policy)?;
    let (input, name) = open_input(&args.file)?;
    let temp;
    let db = if db_given_explicitly() {
        cli.db.clone()
    } else {
        temp = tempfile::tempdir().context("creating a temporary directory")?;
        temp.path().join("replay.db")
    };
    let store = Store::open(&db, &StoreOptions { durability: Durability::Normal, ..store_options(cli).bulk() })
        .await
        .with_context(|| format!("opening {}", db.display()))?;
    let clock = ManualClock::new(Timestamp::EPOCH);
    if let Some(last) = store.meta("last_instant").await?.and_then(|v| v.parse::<i64>().ok()) {
        clock.advance_to(Timestamp::from_micros(last));
    }
    let engine = Engine::new(store.clone(), policy, Arc::new(clock.clone()));
    let options = ReplayOptions { until: args.until, batch: args.batch, dry_run_effects: true };
    let summary = replay(&engine, &clock, LineFeed::new(input, name.clone()), &options).await?;
    let meetings = store.list_meetings(&MeetingFilter::default()).await?;
    let mut out = String::new();
    if args.json {
        for m in &meetings {
            out.push_str(&OutcomeLine::from(m).to_json());
            out.push('\n');
        }
    } else {
        out = inspect::render_meetings(&meetings);
    }
    print_stdout(&out)?;
    eprint!("{}", replay_summary(&name, &summary, &store).await?);
    store.close().await;
    Ok(())
}

async fn replay_summary(name: &str, s: &ReplaySummary, store: &Store) -> Result<String> {
    let e = &s.engine;
    let counts = store.counts().await?;
    let pairs = |m: &std::collections::BTreeMap<String, u64>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        }
    };
    let mut out = format!(
        "{name}: {} lines, {} records applied ({} duplicates, {} after termination), {} dead letters ({})\n",
        s.lines,
        e.records,
        e.duplicates,
        e.ignored,
        e.dead_letter_total(),
        pairs(&e.dead_letters),
    );
    let total: i64 = counts.meetings_by_state.iter().map(|(_, n)| n).sum();
    out += &format!(
        "{total} meetings ({}); terminated by reason: {}\n",
        counts.meetings_by_state.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "),
        counts.terminated_by_reason.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "),
    );
    out += &format!(
        "{} timers fired, {} still pending; {} effects run (dry run); clock stopped at {}\n",
        e.timers_fired,
        counts.timers_pending,
        s.effects.done,
        s.clock.map_or("-".into(), |c| c.to_rfc3339())
    );
    if s.after_until > 0 {
        out += &format!("{} records after --until were not applied\n", s.after_until);
    }
    Ok(out)
}

async fn cmd_ingest(cli: &Cli, args: &IngestArgs) -> Result<()> {
    let policy = load_policy(&args.policy)?;
    let (input, name) = open_input(&args.file)?;
    let store = Store::open(&cli.db, &store_options(cli).bulk()).await?;
    let engine = Engine::new(store, policy, Arc::new(SystemClock));
    let (mut batches, reader) = spindown::replay::read_ahead(LineFeed::new(input, name.clone()), args.batch.max(1));
    let mut report = spindown::engine::Report::default();
    while let Some(batch) = batches.recv().await {
        report.merge(&engine.apply(batch?).await?);
    }
    let lines = reader.join().map_err(|_| anyhow::anyhow!("the input reader panicked"))?;
    loop {
        let (r, more) = engine.fire_due(2000).await?;
        report.merge(&r);
        if !more {
            break;
        }
    }
    if args.json {
        print_stdout(&(serde_json::to_string(&report)? + "\n"))?;
    } else {
        let counts = engine.store().counts().await?;
        println!(
            "{name}: {} lines, {} records applied ({} duplicates, {} after termination, {} new meetings), {} dead letters, {} timers fired, {} effects queued",
            lines,
            report.records,
            report.duplicates,
            report.ignored,
            report.created,
            report.dead_letter_total(),
            report.timers_fired,
            report.effects_queued
        );
        print!("{}", inspect::render_counts(&counts));
    }
    engine.store().close().await;
    Ok(())
}

fn meeting_id(s: &str) -> Result<MeetingId> {
    MeetingId::new(s).context("meeting id must not be empty")
}

async fn cmd_show(cli: &Cli, args: &ShowArgs) -> Result<()> {
    let store = open_existing(cli).await?;
    let id = meeting_id(&args.id)?;
    let Some(i) = inspect::inspect(&store, &id).await? else { bail!("no meeting {id} in {}", cli.db.display()) };
    if args.json {
        print_stdout(&(serde_json::to_string_pretty(&i)? + "\n"))?;
    } else {
        print_stdout(&inspect::render_show(&i))?;
    }
    Ok(())
}

async fn cmd_list(cli: &Cli, args: &ListArgs) -> Result<()> {
    let store = open_existing(cli).await?;
    let ms = store.list_meetings(&MeetingFilter { state: args.state, reason: args.reason, limit: args.limit }).await?;
    if args.json {
        let mut out = String::new();
        for m in &ms {
            out += &serde_json::to_string(&inspect::MeetingView::from(m))?;
            out.push('\n');
        }
        print_stdout(&out)
    } else {
        print_stdout(&inspect::render_meetings(&ms))
    }
}

async fn cmd_timers(cli: &Cli, args: &TimersArgs) -> Result<()> {
    let store = open_existing(cli).await?;
    let ts = store.timers(None, args.limit).await?;
    if args.json {
        let mut out = String::new();
        for t in &ts {
            out += &serde_json::to_string(t)?;
            out.push('\n');
        }
        print_stdout(&out)
    } else {
        print_stdout(&inspect::render_timers(&ts, Timestamp::now()))
    }
}

async fn cmd_dead_letters(cli: &Cli, args: &DeadLettersArgs) -> Result<()> {
    let store = open_existing(cli).await?;
    let ds = store.dead_letters(args.limit).await?;
    if args.json {
        let mut out = String::new();
        for d in &ds {
            out += &serde_json::to_string(d)?;
            out.push('\n');
        }
        print_stdout(&out)
    } else {
        print_stdout(&inspect::render_dead_letters(&ds))
    }
}

async fn cmd_terminate(cli: &Cli, args: &TerminateArgs) -> Result<()> {
    let policy = load_policy(&args.policy)?;
    let store = open_existing(cli).await?;
    let engine = Engine::new(store, policy, Arc::new(SystemClock));
    let id = meeting_id(&args.id)?;
    let r = engine.command(&id, Command::Terminate).await?;
    worker::poke(&worker::wake_socket_for(&cli.db));
    if args.json {
        print_stdout(&(serde_json::to_string(&r)? + "\n"))?;
    } else {
        println!("{}: {} ({:?})", r.meeting_id, r.state, r.outcome);
        for n in &r.notes {
            println!("  {n}");
        }
    }
    Ok(())
}

async fn cmd_status(cli: &Cli, args: &StatusArgs) -> Result<()> {
    let store = open_existing(cli).await?;
    let status = inspect::status(&store).await?;
    if args.json {
        print_stdout(&(serde_json::to_string_pretty(&status)? + "\n"))
    } else {
        print_stdout(&inspect::render_status(&status, Timestamp::now()))
    }
}

async fn cmd_run(cli: &Cli, args: &RunArgs) -> Result<()> {
    // Catch SIGTERM/SIGINT from the very start: a stop during start-up is a clean stop too.
    let shutdown = shutdown_signal()?;
    let policy = load_policy(&args.policy)?;
    let mut config = match &args.config {
        Some(p) => WorkerConfig::load(p)?,
        None => WorkerConfig::default(),
    };
    if let Some(tag) = &args.require_tag {
        config.guard.require_tag = Some(tag.clone());
    }
    if let Some(n) = args.max_attempts {
        anyhow::ensure!(n >= 1, "--max-attempts must be at least 1");
        config.effects.max_attempts = n;
    }
    let mut reader = config.reader().map_err(anyhow::Error::msg)?;
    if let Some(start) = args.start {
        reader.start = start;
    }
    let sdk = aws::load_config_with(&config.aws().map_err(anyhow::Error::msg)?).await;
    let table = aws::AwsTable::new(&sdk, &args.table);
    let stream_arn = match &args.stream_arn {
        Some(a) => a.clone(),
        None => table.latest_stream_arn().await.map_err(anyhow::Error::msg)?,
    };
    let engine = Arc::new(Engine::new(open_store(cli).await?, policy, Arc::new(SystemClock)));
    let options = WorkerOptions {
        stream_arn: stream_arn.clone(),
        reader,
        retry: config.retry().map_err(anyhow::Error::msg)?,
        seen_retention: config.seen_retention().map_err(anyhow::Error::msg)?,
        housekeeping: config.housekeeping.schedule.clone(),
        timer_hold_max: config.timer_hold_max().map_err(anyhow::Error::msg)?,
        wake_socket: Some(worker::wake_socket_for(&cli.db)),
    };
    tracing::info!(
        table = %args.table,
        stream = %stream_arn,
        db = %cli.db.display(),
        guard = ?config.guard.require_tag,
        "spindown worker starting"
    );
    let ec2 = Arc::new(aws::AwsEc2::new(&sdk, config.guard.require_tag.clone()));
    let streams = Arc::new(aws::AwsStreams::new(&sdk));
    worker::run(engine.clone(), streams, ec2, Arc::new(table), options, shutdown).await?;
    engine.store().close().await;
    tracing::info!("spindown worker stopped");
    Ok(())
}

/// A future that completes on SIGTERM or SIGINT; the handlers are installed now.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

async fn cmd_schedule(cli: &Cli, args: &ScheduleArgs) -> Result<()> {
    let policy = load_policy(&args.policy)?;
    let id = meeting_id(&args.id)?;
    let mut instances = Vec::new();
    for (source, value) in [("--teacher-ec2", &args.teacher_ec2), ("--student-ec2", &args.student_ec2)] {
        if let Some(v) = value {
            anyhow::ensure!(
                InstanceId::parse(v).is_some(),
                "{source} {v:?} is not an EC2 instance id (i- followed by 8 or 17 lowercase hex digits)"
            );
            instances.push(SeenInstance { source, value: v.clone() });
        }
    }
    let duration = match args.duration_minutes {
        Some(m) => Some(Span::from_minutes_f64(m).context("--duration-minutes must be a finite number")?),
        None => None,
    };
    let engine = Engine::new(open_store(cli).await?, policy, Arc::new(SystemClock));
    let cmd = Command::Schedule { id: id.clone(), meet_time: args.meet_time, instances, duration };
    let r = engine.command(&id, cmd).await?;
    worker::poke(&worker::wake_socket_for(&cli.db));
    if args.json {
        print_stdout(&(serde_json::to_string(&r)? + "\n"))?;
    } else {
        println!("{}: {} ({:?})", r.meeting_id, r.state, r.outcome);
        for n in &r.notes {
            println!("  {n}");
        }
    }
    Ok(())
}

async fn cmd_retry(cli: &Cli, args: &RetryArgs) -> Result<()> {
    let store = open_existing(cli).await?;
    let n = store.requeue_failed(args.effect_id, Timestamp::now()).await?;
    match (args.effect_id, n) {
        (Some(id), 0) => {
            let known = store.effects(None, None).await?.into_iter().find(|e| e.id == id);
            match known {
                Some(e) => bail!("effect #{id} is {}, not failed: nothing to retry", e.status),
                None => bail!("no effect #{id}"),
            }
        }
        (Some(id), _) => println!("effect #{id} re-queued"),
        (None, n) => println!("{n} failed effect(s) re-queued"),
    }
    worker::poke(&worker::wake_socket_for(&cli.db));
    Ok(())
}

/// Print to stdout, treating a closed pipe (`| head`) as success.
fn print_stdout(s: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Cmd::Replay(a) => cmd_replay(&cli, a).await,
        Cmd::Ingest(a) => cmd_ingest(&cli, a).await,
        Cmd::Show(a) => cmd_show(&cli, a).await,
        Cmd::List(a) => cmd_list(&cli, a).await,
        Cmd::Timers(a) => cmd_timers(&cli, a).await,
        Cmd::DeadLetters(a) => cmd_dead_letters(&cli, a).await,
        Cmd::Terminate(a) => cmd_terminate(&cli, a).await,
        Cmd::Status(a) => cmd_status(&cli, a).await,
        Cmd::Run(a) => cmd_run(&cli, a).await,
        Cmd::Schedule(a) => cmd_schedule(&cli, a).await,
        Cmd::Retry(a) => cmd_retry(&cli, a).await,
    }
}

/// The error and its causes on one line, without repeating a cause that a
/// message already quotes.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg = format!("{msg}: {c}");
        }
    }
    msg
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, matches!(cli.command, Cmd::Run(_)));
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}
