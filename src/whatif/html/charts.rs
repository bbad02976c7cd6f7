//! The report's charts, drawn with plotters into SVG strings.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// Tableau 10: distinguishable, and readable for most colour-blind readers.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(89, 161, 79),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
    RGBColor(186, 176, 172),
];

/// Grey: meetings still running at the horizon.
pub(super) const RUNNING: RGBColor = RGBColor(120, 120, 120);

pub(crate) fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

pub(crate) const FONT: &str = "sans-serif";

pub(crate) type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

pub(crate) fn svg(
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend, plotters::coord::Shift>) -> DrawResult<()>,
) -> String {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        let drawn = root.fill(&WHITE).map_err(Into::into).and_then(|()| draw(root.clone()));
        if let Err(e) = drawn.and_then(|()| root.present().map_err(Into::into)) {
            return format!("<p class=\"error\">chart not drawn: {}</p>", escape(&e.to_string()));
        }
    }
    out
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The label of a bar; bars are drawn top-down (the first name at the top).
fn name_at(names: &[String], v: &SegmentValue<usize>) -> String {
    match v {
        SegmentValue::CenterOf(i) if *i < names.len() => names[names.len() - 1 - *i].clone(),
        _ => String::new(),
    }
}

/// The segment of the `i`-th of `n` bars, top-down.
fn row(n: usize, i: usize) -> usize {
    n - 1 - i
}

/// One horizontal bar per model, its value written at its end.
pub(super) fn bars(names: &[String], values: &[f64], unit: &str, decimals: usize) -> String {
    let n = names.len();
    let height = 60 + 46 * n as u32;
    let max = values.iter().copied().fold(0.0, f64::max).max(1e-9);
    svg((860, height), |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(40)
            .x_label_area_size(36)
            .y_label_area_size(label_width(names))
            .build_cartesian_2d(0.0..max * 1.18, (0..n).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| name_at(names, v))
            .x_desc(unit)
            .x_label_formatter(&|v| axis(*v, max))
            .label_style((FONT, 14))
            .draw()?;
        chart.draw_series(values.iter().enumerate().map(|(i, &v)| {
            let y = row(n, i);
            let mut r = Rectangle::new(
                [(0.0, SegmentValue::Exact(y)), (v, SegmentValue::Exact(y + 1))],
                PALETTE[i % PALETTE.len()].filled(),
            );
            r.set_margin(7, 7, 0, 0);
            r
        }))?;
        chart.draw_series(values.iter().enumerate().map(|(i, &v)| {
            Text::new(
                format!(" {}", super::super::table::grouped(v, decimals)),
                (v, SegmentValue::CenterOf(row(n, i))),
                (FONT, 14).into_font().color(&BLACK).pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Center,
                )),
            )
        }))?;
        Ok(())
    })
}

/// An axis label: grouped digits, decimals only where the scale is small.
fn axis(v: f64, scale: f64) -> String {
    super::super::table::grouped(v, if scale < 10.0 { 1 } else { 0 })
}

fn label_width(names: &[String]) -> u32 {
    let longest = names.iter().map(|s| s.chars().count()).max().unwrap_or(4) as u32;
    (longest * 8 + 16).clamp(60, 260)
}

/// One stacked horizontal bar per model: its meetings by how they ended.
/// `parts[i]` are model `i`'s counts, in the order of `colors`.
pub(super) fn stacked(names: &[String], parts: &[Vec<u64>], colors: &[RGBColor]) -> String {
    let n = names.len();
    let height = 60 + 46 * n as u32;
    let max = parts.iter().map(|p| p.iter().sum::<u64>()).max().unwrap_or(0).max(1) as f64;
    svg((860, height), |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(30)
            .x_label_area_size(36)
            .y_label_area_size(label_width(names))
            .build_cartesian_2d(0.0..max, (0..n).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| name_at(names, v))
            .x_desc("meetings")
            .x_label_formatter(&|v| axis(*v, max))
            .label_style((FONT, 14))
            .draw()?;
        for (i, counts) in parts.iter().enumerate() {
            let mut x = 0.0;
            let mut rects = Vec::new();
            for (k, &c) in counts.iter().enumerate() {
                if c == 0 {
                    continue;
                }
                let x1 = x + c as f64;
                let y = row(n, i);
                let mut r =
                    Rectangle::new([(x, SegmentValue::Exact(y)), (x1, SegmentValue::Exact(y + 1))], colors[k].filled());
                r.set_margin(7, 7, 0, 1);
                rects.push(r);
                x = x1;
            }
            chart.draw_series(rects)?;
        }
        Ok(())
    })
}

/// A histogram of per-meeting differences (model − first), in instance-hours.
pub(super) fn histogram(diffs: &[f64], color: RGBColor, caption: &str) -> String {
    const BINS: usize = 40;
    let lo = diffs.iter().copied().fold(f64::INFINITY, f64::min).min(0.0);
    let hi = diffs.iter().copied().fold(f64::NEG_INFINITY, f64::max).max(0.0);
    let (lo, hi) = if hi - lo < 1e-9 { (lo - 1.0, hi + 1.0) } else { (lo, hi) };
    let width = (hi - lo) / BINS as f64;
    let mut counts = [0u64; BINS];
    for &d in diffs {
        let b = (((d - lo) / width) as usize).min(BINS - 1);
        counts[b] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    // Counts on a log scale: a handful of leaked meetings must not vanish beside thousands of small ones.
    svg((860, 260), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, (0.8..top * 1.5).log_scale())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("difference in instance-hours per meeting (this model − the first)")
            .x_label_formatter(&|v| axis(*v, hi - lo))
            .y_desc("meetings")
            .label_style((FONT, 13))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        chart.draw_series(counts.iter().enumerate().filter(|(_, &c)| c > 0).map(|(b, &c)| {
            let x0 = lo + b as f64 * width;
            let mut r = Rectangle::new([(x0, 0.8), (x0 + width, c as f64)], color.filled());
            r.set_margin(0, 0, 1, 1);
            r
        }))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.8), (0.0, top * 1.5)],
            BLACK.stroke_width(1),
        )))?;
        Ok(())
    })
}

/// Diverging bars: how much later (+) or earlier (−) each meeting ends in a
/// model than in the first, in hours, labelled with the meeting's id.
pub(super) fn end_shifts(ids: &[String], hours: &[f64], color: RGBColor, caption: &str) -> String {
    let n = ids.len();
    let height = 70 + 26 * n as u32;
    let span = hours.iter().map(|h| h.abs()).fold(0.0, f64::max).max(0.1) * 1.1;
    let lo = if hours.iter().any(|&h| h < 0.0) { -span } else { 0.0 };
    let hi = if hours.iter().any(|&h| h > 0.0) { span } else { 0.0 };
    let (lo, hi) = if lo == hi { (-1.0, 1.0) } else { (lo, hi) };
    svg((860, height), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 16))
            .margin(12)
            .margin_right(30)
            .x_label_area_size(40)
            .y_label_area_size(label_width(ids))
            .build_cartesian_2d(lo..hi, (0..n).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| name_at(ids, v))
            .x_desc("end in this model − end in the first, hours")
            .x_label_formatter(&|v| axis(*v, hi - lo))
            .label_style((FONT, 12))
            .draw()?;
        chart.draw_series(hours.iter().enumerate().map(|(i, &h)| {
            let y = row(n, i);
            let mut r = Rectangle::new(
                [(0.0f64.min(h), SegmentValue::Exact(y)), (0.0f64.max(h), SegmentValue::Exact(y + 1))],
                color.filled(),
            );
            r.set_margin(4, 4, 0, 0);
            r
        }))?;
        Ok(())
    })
}
