//! `spindown whatif FILE`: the recorded stream under other rules, in
//! instance-hours and dollars (`spec/whatif.md`).

use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use spindown::meeting::Policy;
use spindown::source::feed::LineFeed;
use spindown::whatif::{self, ModelKind, ModelSpec, WhatIf};

use crate::cli::WhatifArgs;
use crate::{db, output, render};

/// Where the time went, for `--profile` (the benchmark reads it).
#[derive(Serialize)]
struct Profile {
    lines: u64,
    records: u64,
    meetings: usize,
    run_secs: f64,
    front_secs: f64,
    /// Per model: its thread's busy time and timers fired.
    models: BTreeMap<String, (f64, u64)>,
    output_secs: f64,
    total_secs: f64,
    peak_rss_mib: Option<f64>,
}

/// The models, in the spec's order, each named.
fn models(args: &WhatifArgs) -> Result<Vec<ModelSpec>> {
    let mut specs = Vec::new();
    if args.legacy {
        specs.push(ModelSpec { name: "legacy".into(), kind: ModelKind::Legacy });
    }
    let mut named: BTreeMap<String, &PathBuf> = BTreeMap::new();
    for path in &args.policies {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .with_context(|| format!("policy {}: the file name gives no model name", path.display()))?;
        if let Some(other) = named.insert(name.clone(), path) {
            bail!(
                "two policies are named `{name}`: {} and {} (a model is named by its file's stem; rename one)",
                other.display(),
                path.display()
            );
        }
        if name == "legacy" && args.legacy {
            bail!("policy {} is named `legacy`, the name of the --legacy model: rename the file", path.display());
        }
        let policy = Policy::load(path).with_context(|| format!("policy {}", path.display()))?;
        specs.push(ModelSpec { name, kind: ModelKind::Policy(policy) });
    }
    if args.policies.is_empty() {
        specs.push(ModelSpec { name: "default".into(), kind: ModelKind::Policy(Policy::default()) });
    }
    Ok(specs)
}

/// A progress bar over the input's bytes when stderr is a terminal; nothing otherwise.
pub fn progress(path: &Path, command: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {
            let bar = indicatif::ProgressBar::new(m.len());
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_message(format!("{command}: reading"));
            bar
        }
        _ => {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg} {bytes} read").expect("valid"));
            bar.set_message(format!("{command}: reading"));
            bar
        }
    }
}

pub async fn run(args: &WhatifArgs) -> Result<()> {
    let started = Instant::now();
    let specs = models(args)?;
    let (input, name) = db::open_input(&args.input.file)?;
    let bar = progress(&args.input.file, "whatif");
    let reader = bar.wrap_read(input);
    let feed = LineFeed::new(reader, name.clone());
    let run_specs = specs.clone();
    let result = tokio::task::spawn_blocking(move || whatif::run(feed, &run_specs)).await?;
    bar.finish_and_clear();
    let w = result.with_context(|| format!("what-if over {name}"))?;

    let out_started = Instant::now();
    let horizon = w.horizon(args.input.horizon);
    let summaries = w.summaries(horizon, args.input.price);
    if args.json {
        output::json_lines(&summaries)?;
    } else {
        output::print(&render::whatif_table(&summaries))?;
    }
    if let Some(path) = &args.meetings {
        write_meetings(&w, horizon, path).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        let page = whatif::html::report(&w, &summaries, horizon, &name);
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
    }
    let output_secs = out_started.elapsed().as_secs_f64();
    eprint!("{}", render::whatif_summary(&name, &w));
    if let Some(p) = &args.input.profile {
        let profile = Profile {
            lines: w.read.lines,
            records: w.read.records,
            meetings: w.meetings.len(),
            run_secs: w.timings.run.as_secs_f64(),
            front_secs: w.timings.front.as_secs_f64(),
            models: w.models.iter().map(|m| (m.name.clone(), (m.busy.as_secs_f64(), m.timers_fired))).collect(),
            output_secs,
            total_secs: started.elapsed().as_secs_f64(),
            peak_rss_mib: super::peak_rss_mib(),
        };
        std::fs::write(p, serde_json::to_vec_pretty(&profile)?).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// `--meetings`: one line per model and meeting, models in order, meetings by id.
pub fn write_meetings(w: &WhatIf, horizon: Option<spindown::time::Timestamp>, path: &Path) -> Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, std::fs::File::create(path)?);
    let order = w.by_id();
    for model in 0..w.models.len() {
        for &i in &order {
            serde_json::to_writer(&mut out, &w.meeting(model, i, horizon))?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}
