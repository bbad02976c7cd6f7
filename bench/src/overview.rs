//! OV: the console's overview (`GET /`) on a database of a million meetings,
//! as an operator opens it: W1's generator writes three days (~1.04M
//! meetings, every one ended by the run-on), `spindown replay --db` keeps
//! them in a SQLite file, `spindown console` serves it, and the page is
//! requested over HTTP — the whole request, first byte to last, timed from
//! this process. Also `/metrics` (its gauges read the store too).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::w1::{ensure_day, replay, spindown_binary};
use crate::{Cli, Metric};

fn get(port: u16, path: &str) -> Result<(u16, usize)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let head = String::from_utf8_lossy(&buf[..buf.len().min(64)]).into_owned();
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((code, buf.len()))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn timed(port: u16, path: &str, n: usize) -> Result<Vec<f64>> {
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (code, len) = get(port, path)?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        ensure!(code == 200 && len > 500, "GET {path}: {code} ({len} bytes)");
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms)
}

pub fn run(cli: &Cli, dir: &Path, out: &mut Vec<Metric>) -> Result<()> {
    let bin = spindown_binary()?;
    let records = cli.size.sizes().w1_records * 3;
    let day = ensure_day(dir, records)?;
    let db = dir.join(format!("overview-{records}.db"));
    if !db.exists() {
        let r = replay(&bin, &day, Some(&db), dir)?;
        drop(r);
    }
    let port = free_port()?;
    let mut console = Command::new(&bin)
        .arg("--db")
        .arg(&db)
        .args(["console", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("SPINDOWN_CONSOLE_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the console")?;
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = console.kill();
            bail!("the console did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let result = (|| -> Result<()> {
        let meetings = rusqlite_free_count(&bin, &db)?;
        out.push(Metric::new("OV", "meetings in the database", meetings, "meetings"));
        let first = timed(port, "/", 1)?;
        out.push(Metric::new("OV", "GET / (overview), first request", first[0], "ms"));
        let ms = timed(port, "/", 50)?;
        out.push(Metric::new("OV", "GET / (overview), median of 50", ms[ms.len() / 2], "ms"));
        out.push(Metric::new("OV", "GET / (overview), slowest of 50", ms[ms.len() - 1], "ms"));
        let ms = timed(port, "/metrics", 10)?;
        out.push(Metric::new("OV", "GET /metrics, median of 10 (status counts: a scan)", ms[ms.len() / 2], "ms"));
        Ok(())
    })();
    let _ = console.kill();
    let _ = console.wait();
    result
}

/// The meetings in the database, as `status --json` counts them.
fn rusqlite_free_count(bin: &Path, db: &Path) -> Result<f64> {
    let out = Command::new(bin).arg("--db").arg(db).args(["status", "--json"]).output()?;
    ensure!(out.status.success(), "status failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    v["counts"]["meetings"].as_f64().or_else(|| v["meetings"].as_f64()).context("status --json counts meetings")
}
