//! W1 and W2 on PostgreSQL, next to the SQLite figures.
//!
//! * **W1pg** — `spindown --db postgres://… replay DAY --json`, end to end, the
//!   release binary into a fresh database (one process: a replay is one
//!   writer).
//! * **W2pg×k** — 100,000 safety nets due within one second, fired by k
//!   workers' timer loops on one database (k engines in this process, each
//!   with its own connection pool, claiming with `SKIP LOCKED`).
//!
//! The server is the caller's (`scripts/pg-server start` starts one on this
//! machine and prints its settings): server and workers share the cores.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use spindown::clock::SystemClock;
use spindown::engine::{Engine, EngineOptions};
use spindown::meeting::history::{self, Cause};
use spindown::meeting::Policy;
use spindown::store::postgres::{PgOptions, PgStore};
use spindown::store::Store;
use spindown::time::{Span, Timestamp};
use sqlx::{Connection, PgConnection};

use crate::records::sleep_until;
use crate::timers::{push_lateness, push_profile_pub, seed_into};
use crate::w1::{ensure_day, replay, report, spindown_binary};
use crate::{Cli, Metric};

/// A fresh, empty database `name` on the server of `admin` (a URL ending in a database name).
async fn fresh(admin: &str, name: &str) -> Result<String> {
    let mut conn = PgConnection::connect(admin).await.with_context(|| format!("connecting to {admin}"))?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    conn.close().await?;
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// The server's settings that matter for these numbers.
async fn settings(admin: &str) -> Result<String> {
    let mut conn = PgConnection::connect(admin).await?;
    let mut out = Vec::new();
    for s in ["server_version", "shared_buffers", "synchronous_commit", "fsync", "max_connections"] {
        let v: String = sqlx::query_scalar(&format!("SHOW {s}")).fetch_one(&mut conn).await?;
        out.push(format!("{s}={v}"));
    }
    conn.close().await?;
    Ok(out.join(" "))
}

pub async fn run(
    cli: &Cli,
    dir: &Path,
    admin: &str,
    workers: &[usize],
    no_w1: bool,
    out: &mut Vec<Metric>,
) -> Result<()> {
    eprintln!("PostgreSQL: {}", settings(admin).await?);
    let sizes = cli.size.sizes();

    // W1: the whole replay command into PostgreSQL.
    if !no_w1 {
        let bin = spindown_binary()?;
        let day = ensure_day(dir, sizes.w1_records)?;
        let url = fresh(admin, "bench_w1").await?;
        let run = replay(&bin, &day, Some(Path::new(&url)), dir)?;
        report(out, "W1pg", &run);
    }

    // W2 with k workers.
    for &k in workers {
        let w: &'static str = Box::leak(format!("W2pg×{k}").into_boxed_str());
        w2(&url_for(admin, k).await?, sizes.w2_timers, k, w, out).await?;
    }
    Ok(())
}

async fn url_for(admin: &str, k: usize) -> Result<String> {
    fresh(admin, &format!("bench_w2_{k}")).await
}

async fn w2(url: &str, n: usize, k: usize, w: &'static str, out: &mut Vec<Metric>) -> Result<()> {
    let store: Arc<dyn Store> = Arc::new(PgStore::open(url, &PgOptions::default()).await?);
    let t0 = Timestamp::now().saturating_add(Span::from_secs(10 + n as i64 / 5_000));
    let setup =
        seed_into(store.clone(), n, |i| t0.saturating_add(Span::from_micros((1_000_000 * i / n) as i64))).await?;
    ensure!(Timestamp::now() < t0, "setup took {setup:?}, past the storm's start");
    let pool = PgStore::open(url, &PgOptions::default()).await?;
    let base: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM history").fetch_one(pool.pool()).await?;
    sleep_until(t0.saturating_add(Span::from_millis(-300))).await;

    let mut engines = Vec::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut loops = Vec::new();
    for i in 0..k {
        let s = Arc::new(
            PgStore::open(url, &PgOptions { application_name: format!("bench worker {i}"), ..PgOptions::default() })
                .await?,
        );
        let e = Arc::new(
            Engine::start(s.clone(), Policy::default(), Arc::new(SystemClock), EngineOptions::default()).await?,
        );
        let mut rx = stop_rx.clone();
        let looper = e.clone();
        loops.push(tokio::spawn(async move {
            looper
                .run_timers(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
        }));
        engines.push((e, s));
    }
    let started = Instant::now();
    loop {
        let fired: i64 =
            sqlx::query_scalar("SELECT count(*) FROM history WHERE seq > $1").bind(base).fetch_one(pool.pool()).await?;
        if fired >= n as i64 {
            break;
        }
        ensure!(started.elapsed() < Duration::from_secs(600), "only {fired} of {n} fired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = Timestamp::now();
    let _ = stop_tx.send(true);
    for l in loops {
        l.await??;
    }
    let rows: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT entries FROM history WHERE seq > $1").bind(base).fetch_all(pool.pool()).await?;
    let mut late = Vec::new();
    let mut fires = 0usize;
    for bytes in rows {
        for e in history::decode(&bytes)? {
            if let (Cause::Timer { .. }, Some(l)) = (&e.cause, e.lateness) {
                fires += 1;
                late.push(l.as_micros());
            }
        }
    }
    late.sort_unstable();
    ensure!(fires == n, "{fires} fires recorded for {n} timers");
    let span = done.since(t0).as_micros() as f64 / 1e6;
    out.push(Metric::new(w, "timers", n as f64, "timers"));
    out.push(Metric::new(w, "workers", k as f64, "workers"));
    out.push(Metric::new(w, "all fired after the first due", span, "s"));
    out.push(Metric::new(w, "throughput", n as f64 / span.max(1.0), "fires/s"));
    push_lateness(out, w, &late);
    let mut total = spindown::store::WriteCounts::default();
    for (_, s) in &engines {
        let c = s.write_counts();
        total.transactions += c.transactions;
        total.instances += c.instances;
        total.history_chunks += c.history_chunks;
        total.effects += c.effects;
        for (t, x) in total.phase_secs.iter_mut().zip(c.phase_secs) {
            *t += x;
        }
    }
    push_profile_pub(out, w, &total);
    for (_, s) in engines {
        s.close().await;
    }
    pool.close().await;
    store.close().await;
    Ok(())
}
