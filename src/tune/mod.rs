//! `spindown tune`: the cheapest policy that cuts no more meetings short.
//! The contract is `spec/tune.md`.
//!
//! Every candidate of a [`Space`] over a base policy, and the base, is a
//! `whatif` policy model: the file is read, decoded, admitted and
//! deduplicated once, as `whatif` does, and every model runs the engine's
//! own machine on the engine's core (the code `replay` runs) — each meeting
//! alone under each candidate (`eval.rs` says why that is the same), the
//! meetings spread over the cores. What this module adds is arithmetic on
//! their per-meeting figures: the tuning and held-out split, the budget, the
//! recommendation and the frontier.

mod eval;
pub mod html;
mod space;

use std::io::Read;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::meeting::{Policy, POLICY_KEYS};
use crate::source::feed::LineFeed;
use crate::time::Timestamp;
use crate::whatif::{ModelRun, WhatIf, WhatIfError};

pub use space::{Space, SpaceError, DEFAULT_SPACE};

const MICROS_PER_SEC: f64 = 1e6;

/// The share of meetings held out, exactly as written (`0.3` is 3/10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Holdout {
    num: u128,
    den: u128,
}

impl Holdout {
    /// Parse a decimal in `[0, 1)`: `0`, `0.25`, `.3`.
    ///
    /// # Errors
    ///
    /// Anything else, said in one line.
    pub fn parse(s: &str) -> Result<Holdout, String> {
        let bad = || format!("--holdout must be a number in [0, 1) such as 0.25, not {s:?}");
        let t = s.trim();
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > 30
        {
            return Err(bad());
        }
        if int.bytes().any(|b| b != b'0') {
            return Err(bad());
        }
        let den = 10u128.pow(frac.len() as u32);
        let num = if frac.is_empty() { 0 } else { frac.parse::<u128>().map_err(|_| bad())? };
        Ok(Holdout { num, den })
    }

    /// How many of `n` meetings are held out: `floor(F × n)`, exactly.
    pub fn of(&self, n: usize) -> usize {
        if self.num == 0 {
            return 0;
        }
        (self.num * n as u128 / self.den) as usize
    }

    pub fn is_zero(&self) -> bool {
        self.num == 0
    }

    pub fn as_f64(&self) -> f64 {
        if self.num == 0 {
            0.0
        } else {
            self.num as f64 / self.den as f64
        }
    }
}

/// What to tune over and against.
#[derive(Debug, Clone)]
pub struct Options {
    pub base: Policy,
    pub candidates: Vec<Policy>,
    pub holdout: Holdout,
    /// `None`: the base's tuning `activity_after_end`.
    pub max_cut_short: Option<u64>,
    pub horizon: Option<Timestamp>,
    /// USD per instance-hour.
    pub price: f64,
}

/// Where a tune's time went.
#[derive(Debug, Clone, Copy, Default)]
pub struct TuneTimings {
    /// Reading, decoding, admitting and deduplicating the file.
    pub read: Duration,
    /// Every meeting under every model, wall time.
    pub evaluate: Duration,
    /// The models' threads, busy, summed.
    pub busy: Duration,
    pub timers_fired: u64,
}

/// Tune over `feed`: read it once, run every meeting under every candidate
/// and the base, and work out the figures. With `keep_ends`, the returned
/// what-if run holds every model's end of every meeting (models `1`, `2`,
/// …, `base`: `--meetings`); otherwise its models are empty.
///
/// # Errors
///
/// The input cannot be read.
pub fn run<R: Read + Send + 'static>(
    feed: LineFeed<R>,
    opts: &Options,
    keep_ends: bool,
) -> Result<(Tuned, WhatIf, TuneTimings), WhatIfError> {
    let started = Instant::now();
    let (mut w, events) = crate::whatif::read(feed)?;
    let read = started.elapsed();
    let horizon = w.horizon(opts.horizon);
    let held_out = held_out(&w, opts.holdout);
    let policies: Vec<Policy> = opts.candidates.iter().chain(std::iter::once(&opts.base)).cloned().collect();
    let t = Instant::now();
    let ev = eval::evaluate(&w, &events, &policies, &held_out, horizon, keep_ends);
    drop(events);
    let timings = TuneTimings { read, evaluate: t.elapsed(), busy: ev.busy, timers_fired: ev.timers_fired };
    let held = held_out.iter().filter(|h| **h).count();
    let tuned = figures(&ev.sets, opts, horizon, w.meetings.len(), held);
    if let Some(ends) = ev.ends {
        w.models = tuned
            .lines
            .iter()
            .zip(ends)
            .map(|(l, ends)| ModelRun { name: l.candidate.to_string(), ends, timers_fired: 0, busy: Duration::ZERO })
            .collect();
    }
    Ok((tuned, w, timings))
}

/// Which meetings are held out: the last `floor(F × N)` by (start, id).
fn held_out(w: &WhatIf, holdout: Holdout) -> Vec<bool> {
    let n = w.meetings.len();
    let held = holdout.of(n);
    let mut out = vec![false; n];
    if held > 0 {
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (&w.meetings[a as usize], &w.meetings[b as usize]);
            (a.start(), &a.id).cmp(&(b.start(), &b.id))
        });
        for &i in &order[n - held..] {
            out[i as usize] = true;
        }
    }
    out
}

/// A line's label: a candidate's number, or the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Label {
    Candidate(u32),
    Base,
}

impl Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Label::Candidate(n) => s.serialize_u32(*n),
            Label::Base => s.serialize_str("base"),
        }
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Candidate(n) => write!(f, "{n}"),
            Label::Base => f.write_str("base"),
        }
    }
}

/// A set of meetings' figures under one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SetFigures {
    /// Exact, in µs (the JSON gives seconds, 3 decimals).
    #[serde(rename = "instance_seconds", serialize_with = "micros_as_seconds")]
    pub instance_micros: i128,
    pub activity_after_end: u64,
    pub running_at_horizon: u64,
}

impl SetFigures {
    /// Instance-seconds rounded to the millisecond, as the spec compares them.
    pub fn millis(&self) -> i128 {
        (self.instance_micros + 500).div_euclid(1000)
    }

    pub fn instance_hours(&self) -> f64 {
        self.instance_micros as f64 / MICROS_PER_SEC / 3600.0
    }

    /// Dollars at `price`, from the exact seconds.
    pub fn cost(&self, price: f64) -> f64 {
        self.instance_hours() * price
    }
}

fn micros_as_seconds<S: serde::Serializer>(us: &i128, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round(*us as f64 / MICROS_PER_SEC, 3))
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// One line of `tune --json`: a candidate or the base.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub candidate: Label,
    pub policy: Policy,
    /// Over the tuning meetings.
    #[serde(flatten)]
    pub tuning: SetFigures,
    pub instance_hours: f64,
    pub cost_usd: f64,
    pub frontier: bool,
    pub recommended: bool,
    /// Over the held-out meetings.
    pub holdout: SetFigures,
}

/// A tune's result.
#[derive(Debug, Clone)]
pub struct Tuned {
    /// The candidates in order, then the base.
    pub lines: Vec<Line>,
    /// The recommended line, if any candidate fits the budget.
    pub recommended: Option<usize>,
    /// The candidate with the fewest `activity_after_end` (named when nothing fits).
    pub fewest_cut_short: Option<usize>,
    pub budget: u64,
    pub tuning_meetings: usize,
    pub held_out: usize,
    pub holdout: Holdout,
    pub horizon: Option<Timestamp>,
    pub price: f64,
}

/// The lines, budget, recommendation and frontier from each model's figures
/// (`sets`: the candidates in order, then the base; tuning, then held out).
fn figures(sets: &[[SetFigures; 2]], opts: &Options, horizon: Option<Timestamp>, n: usize, held: usize) -> Tuned {
    let labels: Vec<(Label, &Policy)> = opts
        .candidates
        .iter()
        .enumerate()
        .map(|(i, p)| (Label::Candidate(i as u32 + 1), p))
        .chain(std::iter::once((Label::Base, &opts.base)))
        .collect();
    assert_eq!(labels.len(), sets.len(), "one set of figures per model");
    let mut lines: Vec<Line> = labels
        .iter()
        .zip(sets)
        .map(|(&(label, policy), &[tuning, holdout])| Line {
            candidate: label,
            policy: policy.clone(),
            tuning,
            instance_hours: round(tuning.instance_hours(), 3),
            cost_usd: round(tuning.cost(opts.price), 2),
            frontier: false,
            recommended: false,
            holdout,
        })
        .collect();

    // The frontier: not dominated on the tuning meetings.
    let key = |l: &Line| (l.tuning.millis(), l.tuning.activity_after_end);
    let dominated: Vec<bool> = lines
        .iter()
        .map(|a| {
            let (am, aa) = key(a);
            lines.iter().any(|b| {
                let (bm, ba) = key(b);
                bm <= am && ba <= aa && (bm < am || ba < aa)
            })
        })
        .collect();
    for (l, d) in lines.iter_mut().zip(dominated) {
        l.frontier = !d;
    }

    let base = lines.last().expect("the base is a line");
    let budget = opts.max_cut_short.unwrap_or(base.tuning.activity_after_end);
    let candidates = 0..lines.len() - 1;
    let recommended = candidates
        .clone()
        .filter(|&i| lines[i].tuning.activity_after_end <= budget)
        .min_by_key(|&i| (lines[i].tuning.millis(), lines[i].tuning.activity_after_end, i));
    let fewest_cut_short =
        candidates.min_by_key(|&i| (lines[i].tuning.activity_after_end, lines[i].tuning.millis(), i));
    if let Some(r) = recommended {
        lines[r].recommended = true;
    }
    Tuned {
        lines,
        recommended,
        fewest_cut_short,
        budget,
        tuning_meetings: n - held,
        held_out: held,
        holdout: opts.holdout,
        horizon,
        price: opts.price,
    }
}

/// A row of the table: a line's figures with their differences from the base.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Index into [`Tuned::lines`].
    pub line: usize,
    /// `#7`, or `base`.
    pub name: String,
    /// The keys that differ from the base, `key = value`, in policy-file order.
    pub changes: Vec<String>,
    pub instance_hours: (f64, f64),
    pub cost_usd: (f64, f64),
    pub cut_short: (u64, i64),
    pub running: (u64, i64),
    pub frontier: bool,
    pub recommended: bool,
}

impl Tuned {
    pub fn base(&self) -> &Line {
        self.lines.last().expect("the base is a line")
    }

    /// The table: the frontier, plus the base and the recommendation when
    /// they are not on it, by instance-hours (then fewer cut short, then order).
    pub fn rows(&self) -> Vec<Row> {
        let mut shown: Vec<usize> = (0..self.lines.len())
            .filter(|&i| self.lines[i].frontier || self.lines[i].recommended || i == self.lines.len() - 1)
            .collect();
        shown.sort_by_key(|&i| (self.lines[i].tuning.millis(), self.lines[i].tuning.activity_after_end, i));
        let base = self.base();
        shown
            .into_iter()
            .map(|i| {
                let l = &self.lines[i];
                let hours = l.tuning.instance_hours();
                let cost = l.tuning.cost(self.price);
                Row {
                    line: i,
                    name: match l.candidate {
                        Label::Candidate(n) => format!("#{n}"),
                        Label::Base => "base".into(),
                    },
                    changes: changes(&base.policy, &l.policy),
                    instance_hours: (hours, hours - base.tuning.instance_hours()),
                    cost_usd: (cost, cost - base.tuning.cost(self.price)),
                    cut_short: (
                        l.tuning.activity_after_end,
                        l.tuning.activity_after_end as i64 - base.tuning.activity_after_end as i64,
                    ),
                    running: (
                        l.tuning.running_at_horizon,
                        l.tuning.running_at_horizon as i64 - base.tuning.running_at_horizon as i64,
                    ),
                    frontier: l.frontier,
                    recommended: l.recommended,
                }
            })
            .collect()
    }

    /// What the recommendation saves, in plain sentences (or why there is none).
    pub fn verdict(&self) -> Vec<String> {
        let base = self.base();
        let Some(r) = self.recommended else {
            let mut s = format!(
                "No candidate cuts at most {} meeting{} short on the tuning meetings: no recommendation.",
                self.budget,
                plural(self.budget)
            );
            if let Some(f) = self.fewest_cut_short {
                let l = &self.lines[f];
                s += &format!(
                    " The fewest is candidate {} ({}) with {} cut short.",
                    l.candidate,
                    describe(&base.policy, &l.policy),
                    l.tuning.activity_after_end
                );
            }
            return vec![s];
        };
        let l = &self.lines[r];
        let mut out = vec![format!(
            "Recommended: candidate {} ({}) — on the {} tuning meeting{} {}, and cuts {} short (base {}, budget {}).",
            l.candidate,
            describe(&base.policy, &l.policy),
            self.tuning_meetings,
            plural(self.tuning_meetings as u64),
            saving(&l.tuning, &base.tuning, self.price),
            l.tuning.activity_after_end,
            base.tuning.activity_after_end,
            self.budget,
        )];
        if self.held_out > 0 {
            out.push(format!(
                "On the {} held-out meeting{} it {}, and cuts {} short (base {}).",
                self.held_out,
                plural(self.held_out as u64),
                saving(&l.holdout, &base.holdout, self.price),
                l.holdout.activity_after_end,
                base.holdout.activity_after_end,
            ));
            if self.overfits() {
                out.push(format!(
                    "Warning: on the held-out meetings the recommendation cuts more meetings short than the base ({} against {}): it may fit the tuning meetings only. Tune on more days, or hold out more, before using it.",
                    l.holdout.activity_after_end, base.holdout.activity_after_end
                ));
            }
        }
        out
    }

    /// The recommendation cuts more held-out meetings short than the base.
    pub fn overfits(&self) -> bool {
        self.recommended.is_some_and(|r| {
            self.held_out > 0 && self.lines[r].holdout.activity_after_end > self.base().holdout.activity_after_end
        })
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `saves 158.10 instance-hours (33.7%, $6.58)` or `costs … more`.
fn saving(l: &SetFigures, base: &SetFigures, price: f64) -> String {
    let (h, bh) = (l.instance_hours(), base.instance_hours());
    let pct = if bh > 0.0 { (bh - h) / bh * 100.0 } else { 0.0 };
    let dollars = (bh - h) * price;
    if h <= bh {
        format!("saves {:.2} instance-hours ({pct:.1}%, ${dollars:.2}): {h:.2} against {bh:.2}", bh - h)
    } else {
        format!("costs {:.2} instance-hours more ({:.1}%, ${:.2}): {h:.2} against {bh:.2}", h - bh, -pct, -dollars)
    }
}

/// The keys of `p` that differ from `base`, `key = value`, in policy-file order.
pub fn changes(base: &Policy, p: &Policy) -> Vec<String> {
    POLICY_KEYS
        .iter()
        .filter_map(|k| {
            let v = p.value(k)?;
            (base.value(k)? != v).then(|| format!("{k} = {v}"))
        })
        .collect()
}

fn describe(base: &Policy, p: &Policy) -> String {
    let c = changes(base, p);
    if c.is_empty() {
        "the base policy".into()
    } else {
        c.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_is_exact_for_the_decimal_given() {
        let h = Holdout::parse("0.3").unwrap();
        assert_eq!(h.of(240), 72);
        assert_eq!(h.of(10), 3);
        assert_eq!(Holdout::parse("0.25").unwrap().of(7), 1);
        assert_eq!(Holdout::parse(".5").unwrap().of(3), 1);
        assert_eq!(Holdout::parse("0").unwrap().of(100), 0);
        assert_eq!(Holdout::parse("0.0").unwrap().of(100), 0);
        for bad in ["1", "1.0", "-0.1", "0.3.1", "", ".", "abc", "0,3", "1e-1"] {
            assert!(Holdout::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn changes_name_only_the_keys_that_differ() {
        let base = Policy::default();
        let mut p = base.clone();
        p.max_lifetime = crate::time::Span::from_hours(2);
        assert_eq!(changes(&base, &p), vec!["max_lifetime = 2h".to_string()]);
        assert!(changes(&base, &base).is_empty());
    }
}
