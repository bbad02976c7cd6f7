//! WT: `spindown tune DAY --json`, the whole command as a user runs it: W1's
//! day under the default space (51 candidates) and the base, then the same
//! with `--holdout 0.25 --html` (the page and the held-out split).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use crate::w1::{ensure_day, spindown_binary};
use crate::{Cli, Metric};

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// One run of the command; (wall seconds, its profile, its JSON lines).
fn tune(bin: &Path, day: &Path, dir: &Path, report: bool) -> Result<(f64, Value, usize)> {
    let profile = dir.join("tune-profile.json");
    let _ = std::fs::remove_file(&profile);
    let mut cmd = Command::new(bin);
    cmd.arg("tune").arg(day).arg("--json").arg("--profile").arg(&profile);
    if report {
        cmd.args(["--holdout", "0.25", "--html"]).arg(dir.join("tune.html"));
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let out = cmd.output().with_context(|| format!("running {}", bin.display()))?;
    let wall = started.elapsed().as_secs_f64();
    ensure!(out.status.success(), "tune failed: {}", String::from_utf8_lossy(&out.stderr));
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    ensure!(lines == 52, "tune printed {lines} lines, want 51 candidates and the base");
    let profile: Value = serde_json::from_slice(&std::fs::read(&profile)?).context("the tune profile")?;
    Ok((wall, profile, lines))
}

pub fn run(cli: &Cli, dir: &Path, out: &mut Vec<Metric>) -> Result<()> {
    let bin = spindown_binary()?;
    let day = ensure_day(dir, cli.size.sizes().w1_records)?;
    for (w, report) in [("WT", false), ("WThtml", true)] {
        let (wall, p, lines) = tune(&bin, &day, dir, report)?;
        let records = f(&p["records"]);
        out.push(Metric::new(w, "records", records, "records"));
        out.push(Metric::new(w, "meetings", f(&p["meetings"]), "meetings"));
        out.push(Metric::new(w, "models (candidates and the base)", lines as f64, "models"));
        out.push(Metric::new(w, "end to end (the whole command)", wall, "s"));
        out.push(Metric::new(w, "throughput", records / wall, "records/s"));
        out.push(Metric::new(w, "peak RSS", f(&p["peak_rss_mib"]), "MiB"));
        out.push(Metric::new(w, "read, decode, admit, dedupe (once)", f(&p["read_secs"]), "s"));
        out.push(Metric::new(w, "front (admission, dedupe, facts), busy", f(&p["front_secs"]), "s"));
        out.push(Metric::new(w, "every meeting under every model (wall)", f(&p["evaluate_secs"]), "s"));
        out.push(Metric::new(w, "models, busy (summed over threads)", f(&p["models_busy_secs"]), "s"));
        out.push(Metric::new(w, "timers fired (all models)", f(&p["timers_fired"]), "fires"));
        out.push(Metric::new(w, "figures and output", f(&p["output_secs"]), "s"));
    }
    Ok(())
}
