//! The `spindown` command line: parse, wire, run. Each command is a file in
//! `commands/`; text rendering is `render.rs`.

#[cfg(feature = "mimalloc")]
mod alloc;
mod cli;
mod commands;
mod db;
mod output;
mod render;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Cmd};

fn init_tracing(verbose: u8, daemon: bool, format: cli::LogFormat) {
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
    match format {
        cli::LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .init(),
        // One JSON object per line; each applied record, timer fire and effect
        // is a span (closed with its `meeting_id`, `event_id` and duration).
        cli::LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// A command given what it cannot use (a bad file, a bad value): one line, exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

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

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Cmd::Replay(a) => commands::replay::run(&cli, a).await,
        Cmd::Whatif(a) => commands::whatif::run(a).await,
        Cmd::Tune(a) => commands::tune::run(a).await,
        Cmd::Sweep(a) => commands::sweep::run(&cli, a).await,
        Cmd::Console(a) => commands::console::run(&cli, a).await,
        Cmd::Ingest(a) => commands::ingest::run(&cli, a).await,
        Cmd::Show(a) => commands::show::run(&cli, a).await,
        Cmd::List(a) => commands::list::run(&cli, a).await,
        Cmd::Timers(a) => commands::timers::run(&cli, a).await,
        Cmd::DeadLetters(a) => commands::dead_letters::run(&cli, a).await,
        Cmd::Terminate(a) => commands::terminate::run(&cli, a).await,
        Cmd::Extend(a) => commands::keep::extend(&cli, a).await,
        Cmd::Hold(a) => commands::keep::hold(&cli, a).await,
        Cmd::Release(a) => commands::keep::release(&cli, a).await,
        Cmd::Status(a) => commands::status::run(&cli, a).await,
        Cmd::Run(a) => commands::run::run(&cli, a).await,
        Cmd::Schedule(a) => commands::schedule::run(&cli, a).await,
        Cmd::Retry(a) => commands::retry::run(&cli, a).await,
        Cmd::Prune(a) => commands::prune::run(&cli, a).await,
        Cmd::Migrate(a) => commands::migrate::run(a).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, matches!(cli.command, Cmd::Run(_)), cli.log_format);
    #[cfg(feature = "mimalloc")]
    {
        // Called whatever the log level (a disabled event evaluates no field).
        let purge_delay_ms = alloc::return_freed_memory_promptly();
        tracing::debug!(purge_delay_ms, "allocator");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(run(cli));
    // Tasks still running (a worker that gave up waiting at shutdown) are not waited for.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            if e.chain().any(|c| c.is::<Usage>()) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
