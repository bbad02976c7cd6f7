//! The command line: every command, argument and help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use spindown::meeting::{Reason, State};
use spindown::source::stream::Start;
use spindown::store::sqlite::Durability;
use spindown::time::{Span, Timestamp};

/// spindown — a durable state machine that spins down meeting EC2 instances.
///
/// Each meeting is a persisted state machine in a SQLite file: DynamoDB Stream
/// records move it, durable timers (the old safety net) end it, and its
/// effects (terminate instances, write back to DynamoDB) run from an outbox.
#[derive(Parser, Debug)]
#[command(name = "spindown", version, propagate_version = true)]
pub struct Cli {
    /// The database: a SQLite file, created if missing, or a PostgreSQL URL
    /// (`postgres://USER:PASS@HOST:PORT/DB`, for several workers on one
    /// database) [default: spindown.db; `replay`: a temporary file].
    #[arg(long, global = true, env = "SPINDOWN_DB", value_name = "PATH|URL")]
    pub db: Option<PathBuf>,

    /// SQLite synchronous setting: `full` fsyncs every commit, `normal` only at
    /// checkpoints (a crash loses nothing, a power cut may lose the last
    /// commits), `off` never [default: full; `replay`: normal with --db, off on its temporary file].
    #[arg(long, global = true, value_name = "full|normal|off")]
    pub synchronous: Option<Durability>,

    /// More logging (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log lines as text, or as JSON objects (one per line, with a span per
    /// applied record, timer fire and effect carrying meeting_id and event_id).
    #[arg(long, global = true, value_enum, default_value = "text", env = "SPINDOWN_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run the engine on a virtual clock over a file of stream records and print each meeting's outcome.
    ///
    /// Records are applied in file order; the clock moves to each record's
    /// ApproximateCreationDateTime and timers due before it fire first. Then the
    /// clock runs on until no timer is pending (or --until). Effects are dry-run:
    /// each meeting's history says what would have been terminated and written.
    /// Malformed records are dead-lettered (see `dead-letters`), never fatal.
    /// Uses a temporary database unless --db is given.
    Replay(ReplayArgs),
    /// What would it cost? The same recorded records under the old Lambdas and other policies, in instance-hours and dollars.
    ///
    /// Models, in this order: `legacy` (with --legacy: the safety-net and
    /// terminator Lambdas as written, leaks included), then one per --policy
    /// file, named by the file's stem, or the built-in policy as `default`
    /// when no --policy is given. For each: meetings ended by reason, meetings
    /// still running at the horizon, instance-hours, cost, and meetings whose
    /// row kept changing after their instances were killed (cut short).
    /// Everything runs in memory, no database; malformed records are counted
    /// as dead letters, never fatal. The figures are defined in spec/whatif.md.
    #[command(after_help = "Examples:\n  \
        spindown whatif day.jsonl --legacy --policy smart.toml --policy fixed.toml\n  \
        spindown whatif day.jsonl --legacy --html report.html --meetings meetings.jsonl\n  \
        spindown whatif day.jsonl --policy fixed.toml --horizon 2026-11-27T00:00:00Z --price 0.0832 --json")]
    Whatif(WhatifArgs),
    /// Which policy is cheapest without cutting more meetings short? Searches a space of policies on recorded records.
    ///
    /// Every candidate of the space (--space, or the default space: 45 smart
    /// policies over max_lifetime, keepalive_recheck and safety_net_delay, and
    /// 6 fixed durations) and the base (--base, or the built-in policy) runs
    /// as a what-if policy model over the same records, in memory. Recommended:
    /// the candidate with the fewest instance-hours among those that cut at
    /// most --max-cut-short meetings short (default: as many as the base).
    /// Prints the frontier (no candidate cheaper without cutting more
    /// meetings short) with differences from the base, then what the
    /// recommendation saves. --holdout F keeps the last F of the meetings (by
    /// start) out of the choice and reports the recommendation on them. The
    /// contract is spec/tune.md.
    #[command(after_help = "Examples:\n  \
        spindown tune day.jsonl\n  \
        spindown tune week.jsonl --holdout 0.25 --out best.toml --html tune.html\n  \
        spindown tune day.jsonl --base workflows/meeting.toml --space space.toml --max-cut-short 20 --json\n\n\
        A space file holds [[space]] tables; each key a policy key, each value a list:\n  \
        [[space]]\n  \
        max_lifetime = [\"90m\", \"2h\", \"3h\"]\n  \
        keepalive_recheck = [\"10m\", \"15m\"]")]
    Tune(TuneArgs),
    /// Find instances that outlived their meeting and terminate them (once; the worker repeats it with [sweep] every).
    ///
    /// Lists every pending or running instance carrying the meeting tag (the
    /// key of [guard] require_tag, default meeting_id). An instance whose
    /// meeting ended more than [sweep] grace ago (default 10m) is terminated
    /// through the tag guard and that is recorded in the meeting's history;
    /// one tagged for a meeting spindown never saw is only reported (unless
    /// [sweep] unknown = "terminate", and then only when launched longer ago
    /// than max_lifetime + grace). Instances without the tag are never
    /// touched. Findings go to the sweep log (`spindown status`).
    Sweep(SweepArgs),
    /// Serve the console (every meeting's story in a browser) and /metrics for a database, without a worker.
    ///
    /// Read-only unless started with a token (--console-token or
    /// SPINDOWN_CONSOLE_TOKEN): then retry and terminate are enabled for a
    /// browser signed in with it (/login). Useful on a replay's or a copy's
    /// database, or beside a worker that runs elsewhere.
    Console(ConsoleArgs),
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
    /// Move a meeting's end-of-life timer (the cap, or the fixed timer) later: to --until T, or --by DURATION past its current due.
    ///
    /// T must be after now and after the current due, and at most 7 days
    /// past it: an extend never shortens a meeting. From then on a changed
    /// meet_time or duration moves that timer only later, never before T.
    /// Recorded in the meeting's history; a running worker picks it up at once.
    #[command(
        after_help = "Examples:\n  spindown extend m-42 --by 1h\n  spindown extend m-42 --until 2026-12-04T18:30:00Z --json"
    )]
    Extend(ExtendArgs),
    /// Keep a meeting alive until T (at most 24 h from now): no timer ends it before then.
    ///
    /// A safety net or re-check that falls due during the hold looks again at
    /// T instead; the end-of-life timer waits for T. Records still apply
    /// (REMOVE, TERMINATED, SUCCESS end a held meeting). A second hold
    /// replaces the first; `release` ends it early.
    #[command(after_help = "Example:\n  spindown hold m-42 --until 2026-12-04T19:00:00Z")]
    Hold(HoldArgs),
    /// End a meeting's hold now: the timers it had moved to its end fire now.
    Release(ReleaseArgs),
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
    /// Delete what the retention settings no longer keep, now (the worker's housekeeping does it every 10 minutes).
    ///
    /// Terminated meetings that ended before the cut-off (default: now minus
    /// [retention] meetings, 30 days), with their histories and outbox rows —
    /// never a meeting whose effect is not done —, then dead letters, the
    /// sweep log, stream gaps and closed shards' checkpoints older than theirs,
    /// and workers not seen for [retention] workers. With --archive each
    /// pruned meeting's `show --json` object is written to the file (and
    /// synced to disk) before it is deleted. `show` of a pruned meeting says
    /// it was pruned.
    #[command(after_help = "Examples:\n  \
        spindown prune --dry-run\n  \
        spindown prune --archive pruned-2026-11.jsonl\n  \
        spindown prune --before 2026-11-01T00:00:00Z --json")]
    Prune(PruneArgs),
    /// Copy a SQLite database into an empty PostgreSQL one (to run several workers).
    ///
    /// Meetings with their pending timers and applied eventIDs, every meeting's
    /// history, the outbox (ids, status, attempts and errors kept), dead
    /// letters, stream checkpoints and gaps, and the engine's clocks. Stop the
    /// SQLite worker first; start the PostgreSQL workers after. Refuses a
    /// target that already holds anything.
    Migrate(MigrateArgs),
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The SQLite database to copy (not changed).
    #[arg(long, value_name = "PATH")]
    pub from: PathBuf,
    /// The PostgreSQL database to copy into: postgres://USER:PASS@HOST:PORT/DB (must be empty).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Print a one-line JSON summary instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PolicyArg {
    /// Policy file (TOML, see workflows/meeting.toml). Default: the built-in policy, identical to that file.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Records, one JSON object (or {"Records": [...]}) per line. `-` reads standard input.
    pub file: PathBuf,
    #[command(flatten)]
    pub policy: PolicyArg,
    /// Stop the virtual clock at this instant (RFC 3339): later records are not applied, later timers do not fire.
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub until: Option<Timestamp>,
    /// Print the spec's JSON line per meeting instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Records per unit of work.
    #[arg(long, default_value_t = 5_000, hide = true)]
    pub batch: usize,
    /// Write where the time went (phases, rows written) to this file as JSON (benchmarks).
    #[arg(long, value_name = "FILE", hide = true)]
    pub profile: Option<PathBuf>,
}

/// The records `whatif` and `tune` read, and how they cost them.
#[derive(Args, Debug)]
pub struct PricedInput {
    /// Records, one JSON object (or {"Records": [...]}) per line. `-` reads standard input.
    pub file: PathBuf,
    /// Cost instances up to this instant (RFC 3339) [default: the latest record's time + 24 h].
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub horizon: Option<Timestamp>,
    /// USD per instance-hour.
    #[arg(long, value_name = "USD", default_value_t = spindown::whatif::DEFAULT_PRICE, value_parser = parse_price)]
    pub price: f64,
    /// Write where the time went to this file as JSON (benchmarks).
    #[arg(long, value_name = "FILE", hide = true)]
    pub profile: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct WhatifArgs {
    #[command(flatten)]
    pub input: PricedInput,
    /// A policy model (TOML, see workflows/meeting.toml), named by the file's stem; repeat for more.
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<PathBuf>,
    /// Add the `legacy` model first: the two Lambdas as written.
    #[arg(long)]
    pub legacy: bool,
    /// One JSON object per model instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write one JSON object per model and meeting to this file.
    #[arg(long, value_name = "OUT.jsonl")]
    pub meetings: Option<PathBuf>,
    /// Also write a self-contained HTML report (table and charts) to this file.
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TuneArgs {
    #[command(flatten)]
    pub input: PricedInput,
    /// The policy to beat (TOML, see workflows/meeting.toml) [default: the built-in policy].
    #[arg(long, value_name = "P.toml")]
    pub base: Option<PathBuf>,
    /// The candidates: [[space]] tables of policy keys, each with a list of values [default: the default space, 51 candidates].
    #[arg(long, value_name = "S.toml")]
    pub space: Option<PathBuf>,
    /// Recommend only candidates that cut at most N tuning meetings short [default: as many as the base].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub max_cut_short: Option<String>,
    /// Hold out the last F of the meetings by start (0 <= F < 1) and report the recommendation on them.
    #[arg(long, value_name = "F", allow_hyphen_values = true)]
    pub holdout: Option<String>,
    /// One JSON object per candidate, then one for the base, instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write the recommended policy to this file (all seven keys); nothing is written without a recommendation.
    #[arg(long, value_name = "BEST.toml")]
    pub out: Option<PathBuf>,
    /// Also write a self-contained HTML page: the frontier chart, the table, the held-out comparison.
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
    /// Also write one JSON object per model and meeting, as `whatif --meetings` (models `1`, `2`, …, `base`).
    #[arg(long, value_name = "OUT.jsonl")]
    pub meetings: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// HOST:PORT to serve on.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9464")]
    pub listen: String,
    /// Enable write actions for a browser signed in with this token.
    #[arg(long, env = "SPINDOWN_CONSOLE_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub console_token: Option<String>,
    /// Reading the console needs the token too (sign in at /login); /metrics and the health checks never do.
    #[arg(long, requires = "console_token")]
    pub console_private: bool,
    /// A Host name the console answers to besides IP addresses and localhost (repeat for more).
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Mark the session cookie Secure (the console is served over TLS by a proxy in front of it).
    #[arg(long)]
    pub secure_cookies: bool,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Decide and report, change nothing (no termination, no history, no log).
    #[arg(long)]
    pub dry_run: bool,
    /// Worker settings: [guard] require_tag, [sweep] grace and unknown, [aws].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The meeting tag's key (overrides [guard] require_tag).
    #[arg(long, value_name = "TAG")]
    pub require_tag: Option<String>,
    #[command(flatten)]
    pub policy: PolicyArg,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Records, one JSON object (or {"Records": [...]}) per line. `-` reads standard input.
    pub file: PathBuf,
    #[command(flatten)]
    pub policy: PolicyArg,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Records per unit of work.
    #[arg(long, default_value_t = 5000, hide = true)]
    pub batch: usize,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Delete meetings that ended, and log rows written, before this instant
    /// (RFC 3339) [default: now minus each kind's retention].
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub before: Option<Timestamp>,
    /// First append each pruned meeting's `show --json` object to this file (one per line, synced before deleting).
    #[arg(long, value_name = "OUT.jsonl")]
    pub archive: Option<PathBuf>,
    /// Count what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Worker settings: the [retention] section.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print what was deleted as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Meeting id.
    pub id: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only meetings in this state (Scheduled, InProgress, Partial, Complete, Terminated).
    #[arg(long)]
    pub state: Option<State>,
    /// Only meetings terminated for this reason (e.g. NO_SHOW_TIMEOUT).
    #[arg(long)]
    pub reason: Option<Reason>,
    /// Only meetings starting (meet_time, else created_at) at or after this instant, in start
    /// order (an index range, not a scan). E.g. 2026-11-26T09:00:00Z.
    #[arg(long, value_name = "INSTANT")]
    pub starts_from: Option<Timestamp>,
    /// Only meetings starting at or before this instant, in start order.
    #[arg(long, value_name = "INSTANT")]
    pub starts_until: Option<Timestamp>,
    /// At most this many.
    #[arg(long)]
    pub limit: Option<usize>,
    /// One JSON object per meeting.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TimersArgs {
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DeadLettersArgs {
    /// At most this many.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    /// One JSON object per dead letter, raw input included in full.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TerminateArgs {
    /// Meeting id.
    pub id: String,
    #[command(flatten)]
    pub policy: PolicyArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ExtendArgs {
    /// Meeting id.
    pub id: String,
    /// The new end (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant, conflicts_with = "by", required_unless_present = "by")]
    pub until: Option<Timestamp>,
    /// How far past the current end, e.g. 30m or 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = parse_span)]
    pub by: Option<Span>,
    #[command(flatten)]
    pub policy: PolicyArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct HoldArgs {
    /// Meeting id.
    pub id: String,
    /// The hold's end (RFC 3339), at most 24 h from now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub until: Timestamp,
    #[command(flatten)]
    pub policy: PolicyArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ReleaseArgs {
    /// Meeting id.
    pub id: String,
    #[command(flatten)]
    pub policy: PolicyArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The DynamoDB table of meetings (its stream must be enabled with NEW_AND_OLD_IMAGES).
    #[arg(long, env = "SPINDOWN_TABLE", value_name = "NAME")]
    pub table: String,
    /// Read this stream instead of the table's DescribeTable.LatestStreamArn.
    #[arg(long, value_name = "ARN")]
    pub stream_arn: Option<String>,
    #[command(flatten)]
    pub policy: PolicyArg,
    /// Worker settings: [guard], [effects], [stream], [housekeeping], [retention], [aws], [http], [database], [worker] (see deploy/spindown.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where to start on a stream never read before (later starts resume from checkpoints).
    #[arg(long, value_name = "trim-horizon|latest")]
    pub start: Option<Start>,
    /// Terminate an instance only if it carries this tag equal to the meeting id (overrides [guard] require_tag).
    #[arg(long, value_name = "TAG")]
    pub require_tag: Option<String>,
    /// Attempts before an effect is marked failed (overrides [effects] max_attempts).
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<i64>,
    /// This worker's identity in the shard leases and the outbox [default:
    /// `local` on a SQLite file; on PostgreSQL a random one per process — give
    /// a stable one (a pod name) so a restarted worker takes its leases back at once].
    #[arg(long, env = "SPINDOWN_WORKER_ID", value_name = "ID")]
    pub worker_id: Option<String>,
    /// Serve /metrics (Prometheus), /livez, /readyz and the console on HOST:PORT,
    /// e.g. 127.0.0.1:9464 (overrides [http] listen; off unless given).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Console write actions (retry, terminate) need this token; without one the console is read-only.
    #[arg(long, env = "SPINDOWN_CONSOLE_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub console_token: Option<String>,
    /// Reading the console needs the token too (overrides [http] console_private).
    #[arg(long, requires = "console_token")]
    pub console_private: bool,
}

#[derive(Args, Debug)]
pub struct ScheduleArgs {
    /// Meeting id.
    pub id: String,
    /// Scheduled start (RFC 3339; no zone means UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_instant)]
    pub meet_time: Timestamp,
    /// The teacher's EC2 instance.
    #[arg(long, value_name = "INSTANCE")]
    pub teacher_ec2: Option<String>,
    /// The student's EC2 instance.
    #[arg(long, value_name = "INSTANCE")]
    pub student_ec2: Option<String>,
    /// Declared duration in minutes (caps the meeting at start + duration + overrun_grace).
    #[arg(long, value_name = "MINUTES")]
    pub duration_minutes: Option<f64>,
    #[command(flatten)]
    pub policy: PolicyArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["effect_id", "all_failed"])))]
pub struct RetryArgs {
    /// The effect to re-queue (its id is in `show` and `status`).
    pub effect_id: Option<i64>,
    /// Re-queue every failed effect.
    #[arg(long)]
    pub all_failed: bool,
}

fn parse_price(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p),
        Ok(_) => Err(format!("{s:?} is not a price: give USD per instance-hour, a number >= 0 such as 0.0416")),
        Err(_) => Err(format!("{s:?} is not a number: give USD per instance-hour, such as 0.0416")),
    }
}

fn parse_span(s: &str) -> Result<Span, String> {
    match Span::parse_policy(s) {
        Ok(d) if d.is_positive() => Ok(d),
        Ok(_) => Err(format!("{s:?} is not a positive duration")),
        Err(e) => Err(format!("{s:?} is not a duration such as 30m or 1h30m: {e}")),
    }
}

fn parse_instant(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_iso(s).map_err(|e| format!("{s:?} is not an RFC 3339 instant: {e}"))
}
