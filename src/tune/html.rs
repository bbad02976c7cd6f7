//! `tune --html`: one self-contained page — the frontier chart (every
//! candidate a point at instance-hours × meetings cut short, the frontier
//! joined, the base and the recommendation marked and labelled), the table,
//! and the held-out comparison. Drawn with plotters into inline SVG,
//! rendered from `report.html` beside this file (minijinja); nothing on the
//! page is loaded from elsewhere.

use minijinja::Environment;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;

use super::{changes, Label, Tuned};
use crate::whatif::html::charts::{svg, FONT, PALETTE};
use crate::whatif::table::grouped;

#[derive(Serialize)]
struct Page<'a> {
    style: &'static str,
    input: &'a str,
    version: &'static str,
    candidates: usize,
    meetings: usize,
    tuning: usize,
    held_out: usize,
    budget: u64,
    horizon: Option<String>,
    price: f64,
    chart: String,
    rows: Vec<Row>,
    verdict: Vec<String>,
    overfits: bool,
    holdout: Option<Vec<HeldOut>>,
    base_policy: String,
}

#[derive(Serialize)]
struct Row {
    name: String,
    changes: String,
    hours: String,
    hours_diff: String,
    cost: String,
    cost_diff: String,
    cut: String,
    cut_diff: String,
    running: String,
    running_diff: String,
    class: &'static str,
}

#[derive(Serialize)]
struct HeldOut {
    name: String,
    hours: String,
    cut: u64,
    running: u64,
}

fn signed(x: f64, decimals: usize) -> String {
    if x.abs() < 0.5 * 10f64.powi(-(decimals as i32)) {
        "±0".into()
    } else if x > 0.0 {
        format!("+{}", grouped(x, decimals))
    } else {
        format!("−{}", grouped(-x, decimals))
    }
}

/// The page for `t`, read from `input`.
pub fn report(t: &Tuned, input: &str) -> String {
    let rows = t
        .rows()
        .into_iter()
        .map(|r| Row {
            name: r.name.clone(),
            changes: if r.changes.is_empty() { "(the base policy)".into() } else { r.changes.join(", ") },
            hours: grouped(r.instance_hours.0, 2),
            hours_diff: signed(r.instance_hours.1, 2),
            cost: format!("${}", grouped(r.cost_usd.0, 2)),
            cost_diff: signed(r.cost_usd.1, 2),
            cut: r.cut_short.0.to_string(),
            cut_diff: signed(r.cut_short.1 as f64, 0),
            running: r.running.0.to_string(),
            running_diff: signed(r.running.1 as f64, 0),
            class: if r.recommended {
                "recommended"
            } else if t.lines[r.line].candidate == Label::Base {
                "base"
            } else {
                ""
            },
        })
        .collect();
    let holdout = (t.held_out > 0).then(|| {
        let mut v = vec![&t.lines[t.lines.len() - 1]];
        if let Some(r) = t.recommended {
            v.insert(0, &t.lines[r]);
        }
        v.into_iter()
            .map(|l| HeldOut {
                name: match l.candidate {
                    Label::Candidate(n) => format!("#{n} (recommended)"),
                    Label::Base => "base".into(),
                },
                hours: grouped(l.holdout.instance_hours(), 2),
                cut: l.holdout.activity_after_end,
                running: l.holdout.running_at_horizon,
            })
            .collect()
    });
    let page = Page {
        style: crate::whatif::html::STYLE,
        input,
        version: env!("CARGO_PKG_VERSION"),
        candidates: t.lines.len() - 1,
        meetings: t.tuning_meetings + t.held_out,
        tuning: t.tuning_meetings,
        held_out: t.held_out,
        budget: t.budget,
        horizon: t.horizon.map(|h| h.to_rfc3339()),
        price: t.price,
        chart: frontier_chart(t),
        rows,
        verdict: t.verdict(),
        overfits: t.overfits(),
        holdout,
        base_policy: t.base().policy.to_toml(),
    };
    let mut env = Environment::new();
    env.add_template("tune.html", include_str!("report.html")).expect("the tune template parses");
    env.get_template("tune.html")
        .expect("the template is added")
        .render(minijinja::value::Serde(&page))
        .unwrap_or_else(|e| format!("<!doctype html><title>error</title><p>the report could not be rendered: {e}"))
}

/// Every line a point at (instance-hours, cut short); the frontier joined.
pub fn frontier_chart(t: &Tuned) -> String {
    let pts: Vec<(f64, f64)> =
        t.lines.iter().map(|l| (l.tuning.instance_hours(), l.tuning.activity_after_end as f64)).collect();
    let (mut x0, mut x1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let ymax = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    if x1 - x0 < 1e-9 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    let pad = (x1 - x0) * 0.08;
    let (x0, x1) = ((x0 - pad).max(0.0), x1 + pad);
    let y1 = (ymax * 1.15).max(ymax + 2.0);
    let mut frontier: Vec<(f64, f64)> = t.lines.iter().zip(&pts).filter(|(l, _)| l.frontier).map(|(_, p)| *p).collect();
    frontier.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let blue = PALETTE[0];
    let orange = PALETTE[1];
    let green = PALETTE[2];
    let base_idx = t.lines.len() - 1;
    svg((900, 520), |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(16)
            .margin_right(30)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, 0.0..y1)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("instance-hours (tuning meetings)")
            .y_desc("meetings cut short")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .x_label_formatter(&|v| grouped(*v, 0))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        chart.draw_series(LineSeries::new(frontier.iter().copied(), blue.stroke_width(2)))?;
        chart.draw_series(t.lines.iter().zip(&pts).filter(|(l, _)| l.candidate != Label::Base).map(|(l, p)| {
            let style = if l.frontier { blue.filled() } else { RGBColor(170, 170, 170).filled() };
            Circle::new(*p, 4, style)
        }))?;
        let label_style = (FONT, 14).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Bottom));
        // The base: a square, labelled.
        let b = pts[base_idx];
        chart.draw_series(std::iter::once(Rectangle::new(
            [(b.0 - (x1 - x0) * 0.006, b.1 - y1 * 0.012), (b.0 + (x1 - x0) * 0.006, b.1 + y1 * 0.012)],
            orange.filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!(" base: {} h, {} cut short", grouped(b.0, 1), b.1),
            (b.0, b.1 + y1 * 0.02),
            label_style.clone(),
        )))?;
        if let Some(r) = t.recommended {
            let p = pts[r];
            chart.draw_series(std::iter::once(Circle::new(p, 8, green.stroke_width(3))))?;
            let what = changes(&t.base().policy, &t.lines[r].policy).join(", ");
            chart.draw_series(std::iter::once(Text::new(
                format!(" recommended #{}: {} h, {} cut short", t.lines[r].candidate, grouped(p.0, 1), p.1),
                (p.0, p.1 - y1 * 0.05),
                (FONT, 14).into_font().color(&green).pos(Pos::new(HPos::Left, VPos::Top)),
            )))?;
            if !what.is_empty() {
                chart.draw_series(std::iter::once(Text::new(
                    format!(" {what}"),
                    (p.0, p.1 - y1 * 0.10),
                    (FONT, 13).into_font().color(&green).pos(Pos::new(HPos::Left, VPos::Top)),
                )))?;
            }
        }
        Ok(())
    })
}
