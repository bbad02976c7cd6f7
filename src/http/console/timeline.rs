//! A meeting's history on a time axis, from its first entry to its
//! termination (or now): records, timer fires (with their lateness), effects
//! and operators' actions in lanes, drawn with plotters into SVG.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::meeting::history::{Cause, Outcome};
use crate::meeting::HistoryRecord;
use crate::time::Timestamp;

const LANES: [&str; 4] = ["operator", "effects", "timers", "records"];
const FONT: &str = "sans-serif";

fn lane(cause: &Cause) -> usize {
    match cause {
        Cause::Record { .. } | Cause::Duplicate { .. } => 3,
        Cause::Timer { .. } => 2,
        Cause::Effect { .. } => 1,
        Cause::Command(_) | Cause::Sweep | Cause::Operator { .. } => 0,
    }
}

fn label(h: &HistoryRecord) -> String {
    let e = &h.entry;
    let mut l = match &e.cause {
        Cause::Record { event, .. } => event.to_string(),
        Cause::Duplicate { event, .. } => format!("{event} (dup)"),
        Cause::Timer { kind, .. } => match e.lateness {
            Some(l) if l.as_micros() >= 1000 => format!("{kind} +{:.1}s", l.as_micros() as f64 / 1e6),
            _ => kind.to_string(),
        },
        Cause::Effect { kind, .. } => match e.outcome {
            Outcome::EffectDone => format!("{kind} ✓"),
            Outcome::EffectRetry => format!("{kind} retry"),
            Outcome::EffectFailed => format!("{kind} failed"),
            _ => kind.to_string(),
        },
        Cause::Command(c) => c.to_string(),
        Cause::Sweep => "sweep".into(),
        Cause::Operator { action, by } => format!("{action} ({by})"),
    };
    if let Some(r) = e.reason {
        l.push_str(&format!(" → {r}"));
    }
    l
}

fn clock(t: Timestamp) -> String {
    let s = t.to_rfc3339();
    s.get(11..19).unwrap_or(&s).to_string()
}

/// The timeline as an SVG string (empty history: a sentence).
pub(super) fn draw(history: &[HistoryRecord], terminated_at: Option<Timestamp>, now: Timestamp) -> String {
    let Some(first) = history.iter().map(|h| h.entry.at).min() else {
        return "<p>No history yet.</p>".into();
    };
    let last = history.iter().map(|h| h.entry.at).max().unwrap_or(first).max(terminated_at.unwrap_or(first));
    let end = if terminated_at.is_some() { last } else { last.max(now) };
    let span = (end.since(first).as_micros() as f64 / 1e6).max(1.0);
    let x = |t: Timestamp| t.since(first).as_micros() as f64 / 1e6;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (1000, 300)).into_drawing_area();
        let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(14)
                .margin_right(120)
                .x_label_area_size(34)
                .y_label_area_size(80)
                .build_cartesian_2d(-span * 0.02..span * 1.04, (0..LANES.len()).into_segmented())?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(LANES.len())
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => LANES.get(*i).copied().unwrap_or("").to_string(),
                    _ => String::new(),
                })
                .x_labels(8)
                .x_label_formatter(&|s| clock(first.saturating_add(crate::time::Span::from_micros((s * 1e6) as i64))))
                .x_desc("UTC")
                .label_style((FONT, 13))
                .draw()?;
            let colors =
                [RGBColor(176, 122, 161), RGBColor(89, 161, 79), RGBColor(242, 142, 43), RGBColor(78, 121, 167)];
            // Labels alternate above and below their marker so neighbours do not overlap.
            for (n, h) in history.iter().enumerate() {
                let l = lane(&h.entry.cause);
                let (at, color) = (x(h.entry.at), colors[l]);
                let y = SegmentValue::CenterOf(l);
                chart.draw_series(std::iter::once(Circle::new((at, y.clone()), 5, color.filled())))?;
                let (dy, v) = if n % 2 == 0 { (-9, VPos::Bottom) } else { (9, VPos::Top) };
                let style = (FONT, 11).into_font().color(&BLACK).pos(Pos::new(HPos::Left, v));
                chart.draw_series(std::iter::once(EmptyElement::at((at, y)) + Text::new(label(h), (4, dy), style)))?;
            }
            if let Some(t) = terminated_at {
                let at = x(t);
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(at, SegmentValue::Exact(0)), (at, SegmentValue::Exact(LANES.len()))],
                    RGBColor(207, 34, 46).stroke_width(2),
                )))?;
            }
            root.present()?;
            Ok(())
        })();
        if let Err(e) = drawn {
            return format!("<p>timeline not drawn: {e}</p>");
        }
    }
    out
}
