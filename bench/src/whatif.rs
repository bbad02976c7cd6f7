//! WI: `spindown whatif DAY --legacy --policy smart.toml --policy fixed.toml`,
//! the whole command as a user runs it: the acceptance's three models with
//! `--json`, then the same with `--meetings` and `--html` (the full report).

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

/// One run of the command; (wall seconds, its profile).
fn whatif(bin: &Path, day: &Path, dir: &Path, report: bool) -> Result<(f64, Value)> {
    let smart = dir.join("smart.toml");
    let fixed = dir.join("fixed.toml");
    std::fs::write(&smart, "# the default policy, under another name\n")?;
    std::fs::write(&fixed, "mode = \"fixed\"\n")?;
    let profile = dir.join("whatif-profile.json");
    let _ = std::fs::remove_file(&profile);
    let mut cmd = Command::new(bin);
    cmd.arg("whatif").arg(day).arg("--legacy").arg("--policy").arg(&smart).arg("--policy").arg(&fixed);
    cmd.arg("--json").arg("--profile").arg(&profile);
    if report {
        cmd.arg("--meetings").arg(dir.join("whatif-meetings.jsonl")).arg("--html").arg(dir.join("whatif.html"));
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let started = Instant::now();
    let out = cmd.output().with_context(|| format!("running {}", bin.display()))?;
    let wall = started.elapsed().as_secs_f64();
    ensure!(out.status.success(), "whatif failed: {}", String::from_utf8_lossy(&out.stderr));
    let profile: Value = serde_json::from_slice(&std::fs::read(&profile)?).context("the whatif profile")?;
    Ok((wall, profile))
}

pub fn run(cli: &Cli, dir: &Path, out: &mut Vec<Metric>) -> Result<()> {
    let bin = spindown_binary()?;
    let day = ensure_day(dir, cli.size.sizes().w1_records)?;
    for (w, report) in [("WI", false), ("WIhtml", true)] {
        let (wall, p) = whatif(&bin, &day, dir, report)?;
        let records = f(&p["records"]);
        out.push(Metric::new(w, "records", records, "records"));
        out.push(Metric::new(w, "meetings", f(&p["meetings"]), "meetings"));
        out.push(Metric::new(w, "end to end (the whole command, 3 models)", wall, "s"));
        out.push(Metric::new(w, "throughput", records / wall, "records/s"));
        out.push(Metric::new(w, "peak RSS", f(&p["peak_rss_mib"]), "MiB"));
        out.push(Metric::new(w, "read, decode and run every model", f(&p["run_secs"]), "s"));
        out.push(Metric::new(w, "front (admission, dedupe, facts), busy", f(&p["front_secs"]), "s"));
        for model in ["legacy", "smart", "fixed"] {
            let m = &p["models"][model];
            out.push(Metric::new(w, format!("model {model}: busy"), f(&m[0]), "s"));
            out.push(Metric::new(w, format!("model {model}: timer fires"), f(&m[1]), "fires"));
        }
        out.push(Metric::new(w, "output (table/JSON, --meetings, --html)", f(&p["output_secs"]), "s"));
    }
    Ok(())
}
