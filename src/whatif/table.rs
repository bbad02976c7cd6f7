//! The summary as a table — one row per model, each figure with its
//! difference from the first model — shared by the terminal and the HTML page.

use crate::meeting::Reason;

use super::Summary;

/// A column: its header, and whether it holds numbers (right-aligned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub header: String,
    pub numeric: bool,
    /// Less is better (hours, cost, meetings left running or cut short);
    /// `false` for counts that are neither.
    pub lower_is_better: bool,
}

/// One cell: the figure, and its difference from the first model's
/// (`None` on the first row, and where there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub value: String,
    pub diff: Option<String>,
    /// The difference's sign: -1 less than the first model, 0 same, 1 more.
    pub sign: i8,
}

impl Cell {
    /// The value with its difference in parentheses.
    pub fn text(&self) -> String {
        match &self.diff {
            Some(d) => format!("{} ({d})", self.value),
            None => self.value.clone(),
        }
    }
}

/// The table of `summaries`: its columns and one row per model.
pub fn table(summaries: &[Summary]) -> (Vec<Column>, Vec<Vec<Cell>>) {
    let reasons: Vec<Reason> =
        Reason::ALL.iter().copied().filter(|r| summaries.iter().any(|s| s.terminated.contains_key(r))).collect();
    let mut columns = vec![Column { header: "model".into(), numeric: false, lower_is_better: false }];
    let num = |h: &str, lower_is_better| Column { header: h.into(), numeric: true, lower_is_better };
    columns.push(num("meetings", false));
    columns.extend(reasons.iter().map(|r| num(r.as_str(), false)));
    columns.extend(
        ["running at horizon", "instance-hours", "cost (USD)", "activity after end"].into_iter().map(|h| num(h, true)),
    );
    let figures = |s: &Summary| -> Vec<(f64, usize)> {
        let mut v = vec![(s.meetings as f64, 0)];
        v.extend(reasons.iter().map(|r| (s.terminated.get(r).copied().unwrap_or(0) as f64, 0)));
        v.push((s.running_at_horizon as f64, 0));
        v.push((s.instance_hours, 3));
        v.push((s.cost_usd, 2));
        v.push((s.activity_after_end as f64, 0));
        v
    };
    let first = summaries.first().map(figures);
    let rows = summaries
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut row = vec![Cell { value: s.model.clone(), diff: None, sign: 0 }];
            for (k, (v, decimals)) in figures(s).into_iter().enumerate() {
                let base = first.as_ref().map(|f| f[k].0).filter(|_| i > 0);
                let (diff, sign) = match base {
                    Some(b) => {
                        let d = round_to(v - b, decimals);
                        (
                            Some(signed(d, decimals)),
                            if d > 0.0 {
                                1
                            } else if d < 0.0 {
                                -1
                            } else {
                                0
                            },
                        )
                    }
                    None => (None, 0),
                };
                row.push(Cell { value: grouped(v, decimals), diff, sign });
            }
            row
        })
        .collect();
    (columns, rows)
}

fn round_to(x: f64, decimals: usize) -> f64 {
    let f = 10f64.powi(decimals as i32);
    (x * f).round() / f
}

/// `1234567.891` → `1,234,567.891`.
pub fn grouped(x: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = s.split_once('.').map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    if x < 0.0 && out.chars().any(|c| c.is_ascii_digit() && c != '0') {
        out.insert(0, '-');
    }
    out
}

fn signed(d: f64, decimals: usize) -> String {
    if d == 0.0 {
        "=".into()
    } else if d > 0.0 {
        format!("+{}", grouped(d, decimals))
    } else {
        grouped(d, decimals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_and_signed() {
        assert_eq!(grouped(6022.2411, 3), "6,022.241");
        assert_eq!(grouped(240.0, 0), "240");
        assert_eq!(grouped(-5553.345, 3), "-5,553.345");
        assert_eq!(grouped(1_000_000.0, 0), "1,000,000");
        assert_eq!(signed(3.0, 0), "+3");
        assert_eq!(signed(-231.02, 2), "-231.02");
        assert_eq!(signed(0.0, 2), "=");
    }
}
