//! The figures of `spec/whatif.md`: horizon, instance-seconds, cost, running
//! at the horizon, activity after the end — per model and per meeting.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Seen, WhatIf};
use crate::meeting::{Ended, Reason};
use crate::time::{Span, Timestamp};

/// USD per instance-hour when `--price` is not given.
pub const DEFAULT_PRICE: f64 = 0.0416;

/// A leaked instance is assumed to be noticed a day after the records end.
const HORIZON_AFTER_LAST: Span = Span::from_hours(24);

const MICROS_PER_SEC: f64 = 1e6;

/// One model's figures (a line of `--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub model: String,
    pub meetings: u64,
    /// Meetings by reason, reasons with none left out.
    #[serde(serialize_with = "by_reason_name")]
    pub terminated: BTreeMap<Reason, u64>,
    pub running_at_horizon: u64,
    /// Exact, in µs (the JSON gives seconds, at most 3 decimals).
    #[serde(rename = "instance_seconds", serialize_with = "micros_as_seconds")]
    pub instance_micros: i128,
    pub activity_after_end: u64,
    pub instance_hours: f64,
    pub cost_usd: f64,
    #[serde(serialize_with = "rfc3339_opt")]
    pub horizon: Option<Timestamp>,
    pub price: f64,
}

impl Summary {
    pub fn instance_seconds(&self) -> f64 {
        round(self.instance_micros as f64 / MICROS_PER_SEC, 3)
    }
}

/// One meeting in one model (a line of `--meetings`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeetingFigures<'a> {
    pub model: &'a str,
    pub id: &'a str,
    pub reason: Option<Reason>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub terminated_at: Option<Timestamp>,
    pub instances: usize,
    #[serde(rename = "instance_seconds", serialize_with = "micros_as_seconds")]
    pub instance_micros: i128,
    pub activity_after_end: bool,
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

fn by_reason_name<S: serde::Serializer>(m: &BTreeMap<Reason, u64>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(m.iter().map(|(r, n)| (r.as_str(), n)))
}

fn micros_as_seconds<S: serde::Serializer>(us: &i128, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round(*us as f64 / MICROS_PER_SEC, 3))
}

fn rfc3339_opt<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339()),
        None => s.serialize_none(),
    }
}

impl WhatIf {
    /// `given`, or the latest event time among the accepted records + 24 h
    /// (`None` when there were none).
    pub fn horizon(&self, given: Option<Timestamp>) -> Option<Timestamp> {
        given.or_else(|| self.latest_event.map(|t| t.saturating_add(HORIZON_AFTER_LAST)))
    }

    /// Meeting indices by id.
    pub fn by_id(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.meetings.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.meetings[a as usize].id.cmp(&self.meetings[b as usize].id));
        order
    }

    /// Meeting `i` in model `model` at horizon `h`.
    pub fn meeting(&self, model: usize, i: u32, h: Option<Timestamp>) -> MeetingFigures<'_> {
        let seen = &self.meetings[i as usize];
        let run = &self.models[model];
        let ended = run.ends[i as usize];
        let c = seen.cost(ended, h);
        MeetingFigures {
            model: &run.name,
            id: seen.id.as_str(),
            reason: ended.map(|e| e.reason),
            terminated_at: ended.map(|e| e.at),
            instances: seen.instances(),
            instance_micros: c.instance_micros,
            activity_after_end: c.activity_after_end,
        }
    }

    /// Every model's figures at horizon `h` and `price` USD per instance-hour.
    pub fn summaries(&self, h: Option<Timestamp>, price: f64) -> Vec<Summary> {
        (0..self.models.len())
            .map(|model| {
                let mut s = Summary {
                    model: self.models[model].name.clone(),
                    meetings: self.meetings.len() as u64,
                    terminated: BTreeMap::new(),
                    running_at_horizon: 0,
                    instance_micros: 0,
                    activity_after_end: 0,
                    instance_hours: 0.0,
                    cost_usd: 0.0,
                    horizon: h,
                    price,
                };
                for i in 0..self.meetings.len() as u32 {
                    let f = self.meeting(model, i, h);
                    if let Some(r) = f.reason {
                        *s.terminated.entry(r).or_default() += 1;
                    }
                    if f.terminated_at.is_none_or(|t| h.is_some_and(|h| t > h)) {
                        s.running_at_horizon += 1;
                    }
                    s.instance_micros += f.instance_micros;
                    s.activity_after_end += u64::from(f.activity_after_end);
                }
                let hours = s.instance_micros as f64 / MICROS_PER_SEC / 3600.0;
                s.instance_hours = round(hours, 3);
                s.cost_usd = round(hours * price, 2);
                s
            })
            .collect()
    }
}

/// What one meeting costs in one model: the spec's per-meeting figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// `|instance set| × max(0, min(end, horizon) − start)`, in µs.
    pub instance_micros: i128,
    pub activity_after_end: bool,
    /// Not terminated, or terminated after the horizon.
    pub running_at_horizon: bool,
}

impl Seen {
    /// This meeting's figures when the model ended it so (`None`: never), at horizon `h`.
    pub fn cost(&self, ended: Option<Ended>, h: Option<Timestamp>) -> Cost {
        let hz = h.unwrap_or(Timestamp::MAX);
        let end = ended.map_or(hz, |e| e.at.min(hz));
        let secs = i128::from(end.since(self.start()).as_micros().max(0));
        Cost {
            instance_micros: secs * self.instances() as i128,
            activity_after_end: activity_after_end(self.activity, ended),
            running_at_horizon: ended.is_none_or(|e| h.is_some_and(|h| e.at > h)),
        }
    }
}

/// The row kept changing after the instances were killed.
fn activity_after_end(latest_activity: Option<Timestamp>, ended: Option<Ended>) -> bool {
    matches!((latest_activity, ended), (Some(a), Some(e)) if a > e.at)
}
