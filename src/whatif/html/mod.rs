//! `--html`: one self-contained page — the summary table with differences
//! from the first model, and inline SVG charts (plotters) — rendered from a
//! template (minijinja, `report.html` beside this file). Nothing on the page
//! is loaded from elsewhere: no scripts, fonts or styles.

pub(crate) mod charts;

use minijinja::Environment;
use serde::Serialize;

use super::table::{grouped, table};
use super::{Summary, WhatIf};
use crate::meeting::Reason;
use crate::time::Timestamp;

use charts::{hex, PALETTE, RUNNING};

/// The reports' common style, inlined into each page (whatif's and tune's).
pub(crate) const STYLE: &str = include_str!("style.css");

/// How many meetings "whose end differs most" are shown per model.
const TOP: usize = 15;

/// Everything the template shows.
#[derive(Serialize)]
struct Page<'a> {
    style: &'static str,
    input: &'a str,
    version: &'static str,
    horizon: Option<String>,
    price: Option<f64>,
    first: Option<String>,
    records: u64,
    duplicates: u64,
    dead_letters: u64,
    meetings: usize,
    models: Vec<String>,
    figures: Vec<Figure>,
    headlines: Vec<Headline>,
    hours_chart: String,
    cost_chart: String,
    reasons_chart: String,
    legend: Vec<Legend>,
    comparisons: Vec<Comparison>,
    top: usize,
}

/// A row of the page's summary: one figure across the models.
#[derive(Serialize)]
struct Figure {
    name: String,
    cells: Vec<Cell>,
}

#[derive(Serialize)]
struct Cell {
    value: String,
    diff: Option<String>,
    /// `better`, `worse` or `` (no judgement, or no difference).
    class: &'static str,
}

#[derive(Serialize)]
struct Headline {
    model: String,
    text: String,
}

#[derive(Serialize)]
struct Legend {
    name: String,
    color: String,
}

#[derive(Serialize)]
struct Shift {
    id: String,
    first: String,
    this: String,
    hours: String,
}

#[derive(Serialize)]
struct Comparison {
    model: String,
    histogram: String,
    shifts_chart: String,
    shifts: Vec<Shift>,
    changed: u64,
}

fn end_text(reason: Option<Reason>, at: Option<Timestamp>, h: Option<Timestamp>) -> String {
    match (reason, at) {
        (Some(r), Some(t)) if h.is_none_or(|h| t <= h) => format!("{r} at {}", t.to_rfc3339()),
        (Some(r), Some(t)) => format!("{r} at {} (after the horizon)", t.to_rfc3339()),
        _ => "running at the horizon".into(),
    }
}

/// The page for `w`'s `summaries` at horizon `h`; `input` names the file read.
pub fn report(w: &WhatIf, summaries: &[Summary], h: Option<Timestamp>, input: &str) -> String {
    let names: Vec<String> = summaries.iter().map(|s| s.model.clone()).collect();
    // The summary, transposed for the page: a row per figure, a column per model.
    let (columns, rows) = table(summaries);
    let figures: Vec<Figure> = columns
        .iter()
        .enumerate()
        .skip(1)
        .map(|(k, col)| Figure {
            name: col.header.clone(),
            cells: rows
                .iter()
                .map(|r| {
                    let c = &r[k];
                    let class = match (col.lower_is_better, c.sign) {
                        (true, -1) => "better",
                        (true, 1) => "worse",
                        _ => "",
                    };
                    Cell { value: c.value.clone(), diff: c.diff.clone(), class }
                })
                .collect(),
        })
        .collect();

    // Per model: instance-hours of the meetings still running at the horizon (the leak).
    let order = w.by_id();
    let mut leak_hours = vec![0.0; w.models.len()];
    for (m, leak) in leak_hours.iter_mut().enumerate() {
        for &i in &order {
            let f = w.meeting(m, i, h);
            if f.terminated_at.is_none_or(|t| h.is_some_and(|h| t > h)) {
                *leak += f.instance_micros as f64 / 3.6e9;
            }
        }
    }
    let headlines = headlines(summaries, &leak_hours);

    let hours: Vec<f64> = summaries.iter().map(|s| s.instance_hours).collect();
    let hours_chart = charts::bars(&names, &hours, "instance-hours", 1);
    let costs: Vec<f64> = summaries.iter().map(|s| s.cost_usd).collect();
    let cost_chart = charts::bars(&names, &costs, "USD", 2);

    // Meetings by how they ended: every reason any model has, then "running at the horizon".
    let reasons: Vec<Reason> =
        Reason::ALL.iter().copied().filter(|r| summaries.iter().any(|s| s.terminated.contains_key(r))).collect();
    let mut colors: Vec<_> = (0..reasons.len()).map(|k| PALETTE[k % PALETTE.len()]).collect();
    colors.push(RUNNING);
    let parts: Vec<Vec<u64>> = (0..w.models.len())
        .map(|m| {
            let mut counts = vec![0u64; reasons.len() + 1];
            for i in 0..w.meetings.len() as u32 {
                let f = w.meeting(m, i, h);
                match f.reason {
                    Some(r) if f.terminated_at.is_some_and(|t| h.is_none_or(|h| t <= h)) => {
                        counts[reasons.iter().position(|x| *x == r).expect("a listed reason")] += 1;
                    }
                    _ => counts[reasons.len()] += 1,
                }
            }
            counts
        })
        .collect();
    let reasons_chart = charts::stacked(&names, &parts, &colors);
    let mut legend: Vec<Legend> =
        reasons.iter().zip(&colors).map(|(r, c)| Legend { name: r.to_string(), color: hex(*c) }).collect();
    legend.push(Legend { name: "running at the horizon".into(), color: hex(RUNNING) });

    let comparisons: Vec<Comparison> = (1..w.models.len()).map(|m| compare(w, m, h, &order)).collect();

    let env = environment();
    let page = Page {
        style: STYLE,
        input,
        version: env!("CARGO_PKG_VERSION"),
        horizon: h.map(|h| h.to_rfc3339()),
        price: summaries.first().map(|s| s.price),
        first: names.first().cloned(),
        records: w.read.records,
        duplicates: w.read.duplicates,
        dead_letters: w.read.dead(),
        meetings: w.meetings.len(),
        models: names.clone(),
        figures,
        headlines,
        hours_chart,
        cost_chart,
        reasons_chart,
        legend,
        comparisons,
        top: TOP,
    };
    let page = env.get_template("report.html").expect("the template is added").render(minijinja::value::Serde(&page));
    page.unwrap_or_else(|e| format!("<!doctype html><title>error</title><p>the report could not be rendered: {e}"))
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_template("report.html", include_str!("report.html")).expect("the report template parses");
    env
}

fn headlines(summaries: &[Summary], leak_hours: &[f64]) -> Vec<Headline> {
    let Some(first) = summaries.first() else { return Vec::new() };
    summaries
        .iter()
        .zip(leak_hours)
        .enumerate()
        .map(|(i, (s, leak))| {
            let mut text = format!("{} instance-hours, {} USD", grouped(s.instance_hours, 1), grouped(s.cost_usd, 2));
            if i > 0 && first.instance_hours > 0.0 {
                let d = s.instance_hours - first.instance_hours;
                let pct = 100.0 * d / first.instance_hours;
                let (word, d, pct) = if d <= 0.0 { ("less", -d, -pct) } else { ("more", d, pct) };
                text.push_str(&format!(" — {} instance-hours ({pct:.0} %) {word} than {}", grouped(d, 1), first.model));
            }
            if s.running_at_horizon > 0 {
                text.push_str(&format!(
                    "; {} meetings still running at the horizon hold {} of them",
                    s.running_at_horizon,
                    grouped(*leak, 1)
                ));
            }
            if s.activity_after_end > 0 {
                text.push_str(&format!(
                    "; {} meetings kept changing after their instances were killed (cut short?)",
                    s.activity_after_end
                ));
            }
            Headline { model: s.model.clone(), text }
        })
        .collect()
}

/// Model `m` against the first: the distribution of per-meeting differences
/// and the meetings whose end moved most.
fn compare(w: &WhatIf, m: usize, h: Option<Timestamp>, order: &[u32]) -> Comparison {
    let horizon = h.unwrap_or(Timestamp::MAX);
    let end = |f: &super::MeetingFigures| f.terminated_at.map_or(horizon, |t| t.min(horizon));
    let mut diffs = Vec::with_capacity(order.len());
    let mut moved: Vec<(i64, u32)> = Vec::new();
    let mut changed = 0;
    for &i in order {
        let (a, b) = (w.meeting(0, i, h), w.meeting(m, i, h));
        diffs.push((b.instance_micros - a.instance_micros) as f64 / 3.6e9);
        let shift = end(&b).since(end(&a)).as_micros();
        if shift != 0 || a.reason != b.reason {
            changed += 1;
        }
        if shift != 0 {
            moved.push((shift, i));
        }
    }
    moved.sort_by_key(|&(s, i)| (std::cmp::Reverse(s.unsigned_abs()), w.meetings[i as usize].id.clone()));
    moved.truncate(TOP);
    let name = w.models[m].name.clone();
    let first = &w.models[0].name;
    let color = PALETTE[m % PALETTE.len()];
    let ids: Vec<String> = moved.iter().map(|&(_, i)| w.meetings[i as usize].id.to_string()).collect();
    let shift_hours: Vec<f64> = moved.iter().map(|&(s, _)| s as f64 / 3.6e9).collect();
    let shifts = moved
        .iter()
        .map(|&(s, i)| {
            let (a, b) = (w.meeting(0, i, h), w.meeting(m, i, h));
            Shift {
                id: a.id.to_string(),
                first: end_text(a.reason, a.terminated_at, h),
                this: end_text(b.reason, b.terminated_at, h),
                hours: format!("{:+.2}", s as f64 / 3.6e9),
            }
        })
        .collect();
    Comparison {
        histogram: charts::histogram(&diffs, color, &format!("{name} − {first}: instance-hours per meeting")),
        shifts_chart: charts::end_shifts(
            &ids,
            &shift_hours,
            color,
            &format!("{name}: meetings whose end moves most vs {first}"),
        ),
        shifts,
        changed,
        model: name,
    }
}
