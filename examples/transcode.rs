//! A second workflow of another kind on the same core: a recording must be
//! transcoded within an hour of its upload, else the job is started again
//! (three tries), and a transcoded recording expires 30 days later.
//!
//! It is a [`Machine`]: its own state, inputs, timers and end, and a pure
//! `step`. [`Core`] — the engine's timer order on a virtual clock, the
//! runtime `whatif` and `tune` run the meeting on — runs it here over a
//! scripted day.
//!
//! ```sh
//! cargo run --example transcode
//! cargo test --example transcode
//! ```

use spindown::engine::core::Core;
use spindown::machine::{duplicate, Machine, StepResult};
use spindown::time::{Span, Timestamp};

/// How long a transcode may take before it is started again.
const DEADLINE: Span = Span::from_mins(60);
/// How long a transcoded recording is kept.
const KEEP: Span = Span::from_mins(30 * 24 * 60);
/// Transcode attempts before the recording is given up.
const TRIES: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Recording {
    /// A transcode job is running; `tries` started so far.
    Transcoding {
        tries: u32,
        deadline: Timestamp,
    },
    /// Ready to watch until it expires.
    Ready {
        expires: Timestamp,
    },
    Ended(End),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Expired(Timestamp),
    GaveUp(Timestamp),
}

#[derive(Debug)]
enum Input {
    /// An upload finished (`key`: the notification's id, redelivered at times).
    Uploaded {
        key: String,
    },
    /// The transcoder reported success.
    Transcoded {
        key: String,
    },
    Timer(Timer, Timestamp),
}

/// Tie order: a deadline fires before an expiry due at the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Deadline,
    Expiry,
}

/// What a step asks the world to do (an effect, run from an outbox in a durable engine).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Effect {
    StartTranscode { attempt: u32 },
    Delete,
}

struct Transcoding;

struct Step {
    state: Recording,
    effects: Vec<Effect>,
}

impl Machine for Transcoding {
    type State = Recording;
    type Input = Input;
    type Timer = Timer;
    type Step = Step;
    type End = End;
    type Rejection = &'static str;

    fn dedupe_key(input: &Input) -> Option<&str> {
        match input {
            Input::Uploaded { key } | Input::Transcoded { key } => Some(key),
            Input::Timer(..) => None,
        }
    }

    fn creates(&self, input: &Input) -> Result<(), &'static str> {
        match input {
            Input::Uploaded { .. } => Ok(()),
            _ => Err("no upload for this recording"),
        }
    }

    fn timer_input(&self, timer: Timer, due: Timestamp) -> Input {
        Input::Timer(timer, due)
    }

    fn step(&self, state: Option<Recording>, input: &Input, now: Timestamp) -> StepResult<Self> {
        let deadline = now.saturating_add(DEADLINE);
        let done = |state| Ok(Step { state, effects: Vec::new() });
        match (state, input) {
            // An upload (or a new one while the last is transcoding) starts a job.
            (None | Some(Recording::Transcoding { .. }), Input::Uploaded { .. }) => Ok(Step {
                state: Recording::Transcoding { tries: 1, deadline },
                effects: vec![Effect::StartTranscode { attempt: 1 }],
            }),
            (None, _) => Err(("no upload for this recording", None)),
            (Some(Recording::Transcoding { .. }), Input::Transcoded { .. }) => {
                done(Recording::Ready { expires: now.saturating_add(KEEP) })
            }
            // (A deadline that is not the current one — moved since — does nothing.)
            (Some(Recording::Transcoding { tries, deadline: d }), Input::Timer(Timer::Deadline, due)) if *due == d => {
                if tries == TRIES {
                    Ok(Step { state: Recording::Ended(End::GaveUp(now)), effects: vec![Effect::Delete] })
                } else {
                    Ok(Step {
                        state: Recording::Transcoding { tries: tries + 1, deadline },
                        effects: vec![Effect::StartTranscode { attempt: tries + 1 }],
                    })
                }
            }
            (Some(Recording::Ready { expires }), Input::Timer(Timer::Expiry, due)) if *due == expires => {
                Ok(Step { state: Recording::Ended(End::Expired(now)), effects: vec![Effect::Delete] })
            }
            // Anything else changes nothing (a late report, an upload again).
            (Some(state), _) => done(state),
        }
    }

    fn state(step: Step) -> Recording {
        step.state
    }

    fn timers(state: &Recording, armed: &mut Vec<(Timer, Timestamp)>) {
        match state {
            Recording::Transcoding { deadline, .. } => armed.push((Timer::Deadline, *deadline)),
            Recording::Ready { expires } => armed.push((Timer::Expiry, *expires)),
            Recording::Ended(_) => {}
        }
    }

    fn end(state: &Recording) -> Option<End> {
        match state {
            Recording::Ended(e) => Some(*e),
            _ => None,
        }
    }
}

fn at(hm: &str) -> Timestamp {
    Timestamp::parse_iso(&format!("2026-12-01T{hm}:00Z")).expect("a time")
}

/// Run a script of `(recording, input, instant)` and return how each ended.
fn run(script: Vec<(u32, Input, Timestamp)>) -> Vec<Option<End>> {
    let machine = Transcoding;
    let mut core = Core::new(machine);
    let mut seen: Vec<Option<Vec<String>>> = Vec::new();
    for (i, input, t) in script {
        let idx = i as usize;
        if seen.len() <= idx {
            seen.resize(idx + 1, None);
        }
        // The runtime's admission and dedupe, by the machine's own rules.
        match &mut seen[idx] {
            None if Transcoding.creates(&input).is_err() => continue,
            None => seen[idx] = Some(Transcoding::dedupe_key(&input).into_iter().map(String::from).collect()),
            Some(applied) => {
                if duplicate::<Transcoding, _>(applied, &input).is_some() {
                    continue;
                }
                applied.extend(Transcoding::dedupe_key(&input).map(String::from));
            }
        }
        core.apply(i, &input, t);
    }
    core.finish().0
}

fn main() {
    // One step by hand: the machine's effects are data (a durable engine
    // runs them from its outbox after the step commits).
    match Transcoding.step(None, &Input::Uploaded { key: "u0".into() }, at("09:00")) {
        Ok(s) => println!("an upload at 09:00 asks for {:?}; its timers: {:?}", s.effects, {
            let mut t = Vec::new();
            Transcoding::timers(&s.state, &mut t);
            t
        }),
        Err((why, _)) => println!("refused: {why}"),
    }
    let ends = run(vec![
        (0, Input::Uploaded { key: "u0".into() }, at("09:00")),
        (1, Input::Uploaded { key: "u1".into() }, at("09:05")),
        (0, Input::Transcoded { key: "t0".into() }, at("09:40")),
    ]);
    for (i, end) in ends.iter().enumerate() {
        println!("recording {i}: {end:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_transcoded_in_time_expires_thirty_days_later() {
        let ends = run(vec![
            (0, Input::Uploaded { key: "u".into() }, at("09:00")),
            (0, Input::Transcoded { key: "t".into() }, at("09:40")),
        ]);
        assert_eq!(ends, vec![Some(End::Expired(at("09:40").saturating_add(KEEP)))]);
    }

    #[test]
    fn a_transcode_that_misses_its_deadline_is_retried_then_given_up() {
        let ends = run(vec![(0, Input::Uploaded { key: "u".into() }, at("09:00"))]);
        // Deadlines at 10:00 and 11:00 start it again; the third, at 12:00, gives up.
        assert_eq!(ends, vec![Some(End::GaveUp(at("12:00")))]);
    }

    #[test]
    fn a_retry_succeeds_when_the_report_comes_before_its_deadline() {
        let ends = run(vec![
            (0, Input::Uploaded { key: "u".into() }, at("09:00")),
            (0, Input::Transcoded { key: "t".into() }, at("10:30")),
        ]);
        assert_eq!(ends, vec![Some(End::Expired(at("10:30").saturating_add(KEEP)))]);
    }

    #[test]
    fn a_redelivered_upload_is_dropped_and_an_unknown_report_refused() {
        let ends = run(vec![
            (0, Input::Transcoded { key: "t".into() }, at("08:00")),
            (0, Input::Uploaded { key: "u".into() }, at("09:00")),
            (0, Input::Uploaded { key: "u".into() }, at("09:59")),
        ]);
        // The report before any upload created nothing; the redelivery did
        // not restart the job (a new upload would), so the deadlines stay at
        // 10:00, 11:00, 12:00.
        assert_eq!(ends, vec![Some(End::GaveUp(at("12:00")))]);
        let again = run(vec![
            (0, Input::Uploaded { key: "u".into() }, at("09:00")),
            (0, Input::Uploaded { key: "u2".into() }, at("09:59")),
        ]);
        assert_eq!(again, vec![Some(End::GaveUp(at("12:59")))], "a new upload restarts the job");
    }

    #[test]
    fn each_step_asks_for_its_effects() {
        let m = Transcoding;
        let s = m.step(None, &Input::Uploaded { key: "u".into() }, at("09:00")).unwrap();
        assert_eq!(s.effects, vec![Effect::StartTranscode { attempt: 1 }]);
        let s = m.step(Some(s.state), &Input::Timer(Timer::Deadline, at("10:00")), at("10:00")).unwrap();
        assert_eq!(s.effects, vec![Effect::StartTranscode { attempt: 2 }]);
        let ready = Recording::Ready { expires: at("11:00") };
        let s = m.step(Some(ready), &Input::Timer(Timer::Expiry, at("11:00")), at("11:00")).unwrap();
        assert_eq!((s.state, s.effects), (Recording::Ended(End::Expired(at("11:00"))), vec![Effect::Delete]));
    }
}
