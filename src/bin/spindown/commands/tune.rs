//! `spindown tune FILE`: the cheapest policy that cuts no more meetings
//! short, on the user's own recorded traffic (`spec/tune.md`).

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use spindown::meeting::Policy;
use spindown::source::feed::LineFeed;
use spindown::tune::{self, Options, Space};

use super::whatif::{progress, write_meetings};
use crate::cli::TuneArgs;
use crate::{db, output, render, Usage};

/// Where the time went, for `--profile` (the benchmark reads it).
#[derive(Serialize)]
struct Profile {
    lines: u64,
    records: u64,
    meetings: usize,
    candidates: usize,
    /// Reading, decoding, admitting and deduplicating the file.
    read_secs: f64,
    front_secs: f64,
    /// Every meeting under every model (wall).
    evaluate_secs: f64,
    /// The models' threads, busy, summed (CPU seconds deciding).
    models_busy_secs: f64,
    timers_fired: u64,
    output_secs: f64,
    total_secs: f64,
    peak_rss_mib: Option<f64>,
}

/// The base and the candidates, or a usage error naming what is wrong.
fn options(args: &TuneArgs) -> Result<Options> {
    let base = match &args.base {
        Some(path) => Policy::load(path).map_err(|e| Usage(format!("--base {}: {e}", path.display())))?,
        None => Policy::default(),
    };
    let space = match &args.space {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Usage(format!("--space {}: cannot read it: {e}", path.display())))?;
            Space::parse(&text).map_err(|e| Usage(format!("--space {}: {e}", path.display())))?
        }
        None => Space::default_space(),
    };
    let holdout = match &args.holdout {
        Some(h) => tune::Holdout::parse(h).map_err(Usage)?,
        None => tune::Holdout::default(),
    };
    let max_cut_short = match &args.max_cut_short {
        Some(s) => Some(
            s.trim()
                .parse::<u64>()
                .map_err(|_| Usage(format!("--max-cut-short must be a whole number of meetings >= 0, not {s:?}")))?,
        ),
        None => None,
    };
    let candidates = space.candidates(&base);
    Ok(Options { base, candidates, holdout, max_cut_short, horizon: args.input.horizon, price: args.input.price })
}

pub async fn run(args: &TuneArgs) -> Result<()> {
    let started = Instant::now();
    let opts = options(args)?;
    let (input, name) = db::open_input(&args.input.file).map_err(|e| Usage(format!("{e:#}")))?;
    let bar = progress(&args.input.file, "tune");
    let reader = bar.wrap_read(input);
    let feed = LineFeed::new(reader, name.clone());
    let keep_ends = args.meetings.is_some();
    let run_opts = opts.clone();
    let result = tokio::task::spawn_blocking(move || tune::run(feed, &run_opts, keep_ends)).await?;
    bar.finish_and_clear();
    let (t, w, timings) = result.with_context(|| format!("tuning over {name}"))?;

    let out_started = Instant::now();
    if args.json {
        output::json_lines(&t.lines)?;
    } else {
        output::print(&render::tune_table(&t))?;
    }
    let verdict = t.verdict();
    match t.recommended {
        Some(r) => {
            if !args.json {
                output::print(&(verdict.join("\n") + "\n"))?;
            }
            if let Some(path) = &args.out {
                let l = &t.lines[r];
                let text = format!(
                    "# Written by `spindown tune` over {name}: candidate {} ({} instance-hours, {} meetings cut short on {} tuning meetings).\n{}",
                    l.candidate,
                    l.instance_hours,
                    l.tuning.activity_after_end,
                    t.tuning_meetings,
                    l.policy.to_toml()
                );
                std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            }
        }
        None => {
            // One line; on stderr when stdout carries the JSON lines.
            if args.json {
                eprintln!("{}", verdict.join(" "));
            } else {
                output::print(&(verdict.join(" ") + "\n"))?;
            }
        }
    }
    if let Some(path) = &args.meetings {
        write_meetings(&w, t.horizon, path).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, tune::html::report(&t, &name)).with_context(|| format!("writing {}", path.display()))?;
    }
    let output_secs = out_started.elapsed().as_secs_f64();
    eprint!("{}", render::tune_summary(&name, &w, &timings, t.lines.len() - 1));
    std::io::stderr().flush().ok();
    if let Some(p) = &args.input.profile {
        let profile = Profile {
            lines: w.read.lines,
            records: w.read.records,
            meetings: w.meetings.len(),
            candidates: t.lines.len() - 1,
            read_secs: timings.read.as_secs_f64(),
            front_secs: w.timings.front.as_secs_f64(),
            evaluate_secs: timings.evaluate.as_secs_f64(),
            models_busy_secs: timings.busy.as_secs_f64(),
            timers_fired: timings.timers_fired,
            output_secs,
            total_secs: started.elapsed().as_secs_f64(),
            peak_rss_mib: super::peak_rss_mib(),
        };
        std::fs::write(p, serde_json::to_vec_pretty(&profile)?).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
