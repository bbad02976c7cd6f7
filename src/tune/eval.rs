//! Every meeting alone under every candidate.
//!
//! Meetings never interact: on the engine's core (the virtual clock and the
//! timer order of the durable engine) a meeting's timers fire at the same
//! instants, and its records apply at the same instants, whether the core
//! runs it among all the others or alone over its own records — each record
//! keeps the instant the front gave it in file order (the clock over every
//! meeting), a timer fires at its due (or right after the record that armed
//! it in the past), and the run-out fires what is left. So each meeting's
//! records are grouped once, and each is run alone under each candidate
//! while they sit in the cache: one small core per candidate, reset between
//! meetings, the meetings shared out to the cores of the machine. The tests
//! check the result against `whatif` (the models run over the whole file)
//! and against `replay --policy` of every candidate.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::SetFigures;
use crate::engine::core::Core;
use crate::meeting::{Ended, MeetingWorkflow, Policy};
use crate::time::Timestamp;
use crate::whatif::{Event, WhatIf};

/// Meetings a thread claims at a time.
const CHUNK: usize = 256;

/// What every candidate did with every meeting.
pub(crate) struct Evaluated {
    /// Per model (in the order given): its figures over the tuning
    /// meetings, then over the held-out ones.
    pub sets: Vec<[SetFigures; 2]>,
    /// Per model, each meeting's end — only when asked for (`--meetings`).
    pub ends: Option<Vec<Vec<Option<Ended>>>>,
    pub timers_fired: u64,
    /// Time the threads spent deciding, summed.
    pub busy: Duration,
}

/// Per thread: its sums, the ends it kept (first meeting, ends meeting by
/// meeting, model by model), its timers fired and its time.
type Part = (Vec<[SetFigures; 2]>, Vec<(usize, Vec<Option<Ended>>)>, u64, Duration);

/// Run each meeting of `w` (its records in `events`) alone under each of
/// `policies`; `held_out[i]`: meeting `i` counts in the held-out set.
pub(crate) fn evaluate(
    w: &WhatIf,
    events: &[Event],
    policies: &[Policy],
    held_out: &[bool],
    horizon: Option<Timestamp>,
    keep_ends: bool,
) -> Evaluated {
    let n = w.meetings.len();
    let models = policies.len();
    // Each meeting's records, in file order: a counting sort of their indices.
    let mut offsets = vec![0usize; n + 1];
    for e in events {
        offsets[e.meeting as usize + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut order = vec![0u32; events.len()];
    let mut next = offsets.clone();
    for (k, e) in events.iter().enumerate() {
        let m = e.meeting as usize;
        order[next[m]] = u32::try_from(k).expect("fewer than 4 billion records");
        next[m] += 1;
    }
    drop(next);

    let threads = std::thread::available_parallelism().map_or(2, |t| t.get()).clamp(1, n.max(1));
    let claim = AtomicUsize::new(0);
    let parts: Mutex<Vec<Part>> = Mutex::new(Vec::with_capacity(threads));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let started = Instant::now();
                let mut cores: Vec<Core<MeetingWorkflow>> =
                    policies.iter().map(|p| Core::new(MeetingWorkflow::new(p.clone()))).collect();
                let mut sets = vec![[SetFigures::default(); 2]; models];
                let mut kept = Vec::new();
                loop {
                    let first = claim.fetch_add(CHUNK, Ordering::Relaxed);
                    if first >= n {
                        break;
                    }
                    let last = (first + CHUNK).min(n);
                    let mut ends = Vec::with_capacity(if keep_ends { (last - first) * models } else { 0 });
                    for m in first..last {
                        let seen = &w.meetings[m];
                        let records = &order[offsets[m]..offsets[m + 1]];
                        let set = usize::from(held_out[m]);
                        for (core, sums) in cores.iter_mut().zip(&mut sets) {
                            core.reset();
                            for &k in records {
                                let e = &events[k as usize];
                                core.apply(0, &e.input, e.at);
                            }
                            let ended = core.run_out(0);
                            let c = seen.cost(ended, horizon);
                            let f = &mut sums[set];
                            f.instance_micros += c.instance_micros;
                            f.activity_after_end += u64::from(c.activity_after_end);
                            f.running_at_horizon += u64::from(c.running_at_horizon);
                            if keep_ends {
                                ends.push(ended);
                            }
                        }
                    }
                    if keep_ends {
                        kept.push((first, ends));
                    }
                }
                let fired = cores.iter().map(Core::fired).sum();
                parts.lock().unwrap_or_else(|p| p.into_inner()).push((sets, kept, fired, started.elapsed()));
            });
        }
    });

    let mut out = Evaluated {
        sets: vec![[SetFigures::default(); 2]; models],
        ends: keep_ends.then(|| vec![vec![None; n]; models]),
        timers_fired: 0,
        busy: Duration::ZERO,
    };
    for (sets, kept, fired, busy) in parts.into_inner().unwrap_or_else(|p| p.into_inner()) {
        for (total, part) in out.sets.iter_mut().zip(sets) {
            for (t, p) in total.iter_mut().zip(part) {
                t.instance_micros += p.instance_micros;
                t.activity_after_end += p.activity_after_end;
                t.running_at_horizon += p.running_at_horizon;
            }
        }
        if let Some(all) = &mut out.ends {
            for (first, ends) in kept {
                for (j, ended) in ends.into_iter().enumerate() {
                    all[j % models][first + j / models] = ended;
                }
            }
        }
        out.timers_fired += fired;
        out.busy += busy;
    }
    out
}
