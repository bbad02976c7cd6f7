//! `spindown console`: the console and /metrics for a database, without a worker.

use std::sync::Arc;

use anyhow::{Context, Result};
use spindown::clock::{Clock, SystemClock};
use spindown::http::{self, AppState};

use crate::cli::{Cli, ConsoleArgs};
use crate::db;

pub async fn run(cli: &Cli, args: &ConsoleArgs) -> Result<()> {
    let store = db::open_existing(cli).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let token = args.console_token.clone().filter(|t| !t.is_empty());
    // With a token, `terminate` runs through an engine on the same database
    // (its effects wait in the outbox for the worker).
    let engine = match &token {
        Some(_) => Some(Arc::new(db::operator_engine(store.clone(), Default::default()).await?)),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "spindown console on http://{addr}/ for {} ({}); Ctrl-C stops it",
        db::target(cli).describe(),
        if token.is_some() { "retry and terminate need the token" } else { "read-only" }
    );
    let state = AppState::database(store.clone(), clock, token, engine)
        .private(args.console_private)
        .allow_hosts(args.allowed_hosts.clone())
        .secure_cookies(args.secure_cookies);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    http::serve(listener, state, shutdown).await?;
    store.close().await;
    Ok(())
}
