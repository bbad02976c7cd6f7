//! A second workflow of another kind on the same engine: a recording must be
//! transcoded within an hour of its upload, else the job is started again
//! (three tries), and a transcoded recording is deleted 30 days later.
//!
//! It is a [`Machine`] (its own state, inputs, timers and end, and a pure
//! `step`) and [`Durable`] (how the store keeps it, what its history says,
//! what its effects are). The durable [`Engine`] runs it exactly as it runs
//! the meeting: its state in a SQLite file, its timers durable across a
//! restart (an overdue one fires once), its effects queued in the outbox in
//! the unit of work that asked for them, its history read back with
//! [`show`]. The same machine also runs on the engine's in-memory [`Core`]
//! (how `whatif` and `tune` run the meeting's policies).
//!
//! ```sh
//! cargo run --example transcode            # the story below, in a temp dir
//! cargo run --example transcode -- rec.db  # …kept in rec.db
//! cargo test --example transcode
//! ```

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use spindown::clock::ManualClock;
use spindown::engine::core::Core;
use spindown::engine::{Engine, EngineOptions, Incoming};
use spindown::machine::{decode_chunk, duplicate, Chunk, Durable, Machine, Opened, StepResult, Took};
use spindown::store::sqlite::{SqliteOptions, SqliteStore};
use spindown::store::{Claim, EffectStatus, OutboxOutcome, Store};
use spindown::time::{Span, Timestamp};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long a transcode may take before it is started again.
const DEADLINE: Span = Span::from_mins(60);
/// How long a transcoded recording is kept.
const KEEP: Span = Span::from_mins(30 * 24 * 60);
/// Transcode attempts before the recording is given up.
const TRIES: u32 = 3;

/// One recording: its id and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Recording {
    id: String,
    phase: Phase,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum End {
    Expired(Timestamp),
    GaveUp(Timestamp),
}

/// What the machine reads: notifications (each with an id, redelivered at
/// times, and the instant it happened) and its own timers.
#[derive(Debug, Clone)]
enum Input {
    /// An upload finished.
    Uploaded {
        recording: String,
        key: String,
        at: Timestamp,
    },
    /// The transcoder reported success.
    Transcoded {
        recording: String,
        key: String,
        at: Timestamp,
    },
    Timer(Timer, Timestamp),
}

/// Tie order: a deadline fires before an expiry due at the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Deadline,
    Expiry,
}

/// What a step asks the world to do (run from the outbox after the commit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Effect {
    StartTranscode { attempt: u32 },
    Delete,
}

/// One line of a recording's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    at: Timestamp,
    what: String,
}

struct Transcoding;

struct Step {
    state: Recording,
    effects: Vec<Effect>,
    /// What happened, for the history (`None`: nothing changed).
    what: Option<String>,
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
            Input::Uploaded { key, .. } | Input::Transcoded { key, .. } => Some(key),
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
        let id = match (&state, input) {
            (Some(r), _) => r.id.clone(),
            (None, Input::Uploaded { recording, .. }) => recording.clone(),
            (None, _) => return Err(("no upload for this recording", None)),
        };
        let to = |phase: Phase, effects: Vec<Effect>, what: String| {
            Ok(Step { state: Recording { id: id.clone(), phase }, effects, what: Some(what) })
        };
        let phase = state.as_ref().map(|r| r.phase.clone());
        match (phase, input) {
            // An upload (or a new one while the last is transcoding) starts a job.
            (None | Some(Phase::Transcoding { .. }), Input::Uploaded { .. }) => to(
                Phase::Transcoding { tries: 1, deadline },
                vec![Effect::StartTranscode { attempt: 1 }],
                format!("uploaded: transcode attempt 1, deadline {deadline}"),
            ),
            (Some(Phase::Transcoding { .. }), Input::Transcoded { .. }) => {
                let expires = now.saturating_add(KEEP);
                to(Phase::Ready { expires }, Vec::new(), format!("transcoded: ready until {expires}"))
            }
            // (A deadline that is not the current one — moved since — does nothing.)
            (Some(Phase::Transcoding { tries, deadline: d }), Input::Timer(Timer::Deadline, due)) if *due == d => {
                if tries == TRIES {
                    to(
                        Phase::Ended(End::GaveUp(now)),
                        vec![Effect::Delete],
                        format!("deadline missed {tries} times: given up"),
                    )
                } else {
                    to(
                        Phase::Transcoding { tries: tries + 1, deadline },
                        vec![Effect::StartTranscode { attempt: tries + 1 }],
                        format!("deadline missed: transcode attempt {}, deadline {deadline}", tries + 1),
                    )
                }
            }
            (Some(Phase::Ready { expires }), Input::Timer(Timer::Expiry, due)) if *due == expires => {
                to(Phase::Ended(End::Expired(now)), vec![Effect::Delete], "expired: deleted".into())
            }
            // Anything else changes nothing (a late report, an upload again).
            _ => Ok(Step { state: state.expect("exists"), effects: Vec::new(), what: None }),
        }
    }

    fn state(step: Step) -> Recording {
        step.state
    }

    fn timers(state: &Recording, armed: &mut Vec<(Timer, Timestamp)>) {
        match state.phase {
            Phase::Transcoding { deadline, .. } => armed.push((Timer::Deadline, deadline)),
            Phase::Ready { expires } => armed.push((Timer::Expiry, expires)),
            Phase::Ended(_) => {}
        }
    }

    fn end(state: &Recording) -> Option<End> {
        match state.phase {
            Phase::Ended(e) => Some(e),
            _ => None,
        }
    }
}

impl Durable for Transcoding {
    type Id = String;
    type Effect = Effect;
    type Entry = Entry;
    /// A source hands the engine inputs as they are (a real one would decode
    /// bytes and hand over what it could not read as a dead letter).
    type Item = Input;
    const NOUN: &'static str = "recording";

    fn id(state: &Recording) -> &String {
        &state.id
    }

    fn parse_id(id: &str) -> Option<String> {
        (!id.is_empty()).then(|| id.to_string())
    }

    fn subject(input: &Input) -> Option<&String> {
        match input {
            Input::Uploaded { recording, .. } | Input::Transcoded { recording, .. } => Some(recording),
            Input::Timer(..) => None,
        }
    }

    fn event_time(input: &Input) -> Option<Timestamp> {
        match input {
            Input::Uploaded { at, .. } | Input::Transcoded { at, .. } => Some(*at),
            Input::Timer(..) => None,
        }
    }

    fn open(item: Input) -> Opened<Self> {
        // What a dead letter keeps should the machine refuse it.
        let raw = format!("{item:?}").into_bytes();
        Opened::Input { input: item, raw }
    }

    fn refusal(rejection: &'static str) -> (&'static str, String) {
        ("rejected", rejection.to_string())
    }

    fn took(step: Step, _input: &Input, now: Timestamp) -> Took<Self> {
        let changed = step.what.is_some();
        let ended = match (changed, &step.state.phase) {
            (true, Phase::Ended(End::Expired(_))) => Some("EXPIRED"),
            (true, Phase::Ended(End::GaveUp(_))) => Some("GAVE_UP"),
            _ => None,
        };
        let entry = Entry { at: now, what: step.what.unwrap_or_else(|| "nothing to do".into()) };
        Took { state: step.state, entry, effects: step.effects, changed, ended }
    }

    fn duplicate(_: &Recording, _: &Input, key: &str, now: Timestamp) -> Entry {
        Entry { at: now, what: format!("notification {key} again: dropped") }
    }

    /// One outbox row per attempt (`rec-1/transcode-2`), or per deletion.
    fn outbox(state: &Recording, effects: &[Effect]) -> (String, String) {
        let what = match effects.first() {
            Some(Effect::StartTranscode { attempt }) => format!("transcode-{attempt}"),
            _ => "delete".into(),
        };
        (format!("{}/{what}", state.id), serde_json::to_string(effects).expect("effects encode"))
    }

    fn encode(state: &Recording) -> String {
        serde_json::to_string(&state.phase).expect("a phase encodes")
    }

    fn decode(id: &str, doc: &str) -> Result<Recording, String> {
        let phase = serde_json::from_str(doc).map_err(|e| e.to_string())?;
        Ok(Recording { id: id.to_string(), phase })
    }

    fn state_name(state: &Recording) -> &'static str {
        match state.phase {
            Phase::Transcoding { .. } => "TRANSCODING",
            Phase::Ready { .. } => "READY",
            Phase::Ended(_) => "ENDED",
        }
    }

    fn ended(state: &Recording) -> Option<(&'static str, Timestamp)> {
        match state.phase {
            Phase::Ended(End::Expired(t)) => Some(("EXPIRED", t)),
            Phase::Ended(End::GaveUp(t)) => Some(("GAVE_UP", t)),
            _ => None,
        }
    }

    fn rank(timer: Timer) -> u8 {
        timer as u8
    }

    fn timer(rank: u8) -> Option<Timer> {
        [Timer::Deadline, Timer::Expiry].get(usize::from(rank)).copied()
    }

    fn timer_name(timer: Timer) -> &'static str {
        match timer {
            Timer::Deadline => "deadline",
            Timer::Expiry => "expiry",
        }
    }

    fn search(_: &Recording, _: &mut Vec<(&'static str, String)>) {}
}

fn at(day_hm: &str) -> Timestamp {
    Timestamp::parse_iso(&format!("2026-12-{day_hm}:00Z")).expect("a time")
}

fn uploaded(recording: &str, key: &str, t: Timestamp) -> Incoming<Transcoding> {
    Incoming { item: Input::Uploaded { recording: recording.into(), key: key.into(), at: t }, origin: key.into() }
}

fn transcoded(recording: &str, key: &str, t: Timestamp) -> Incoming<Transcoding> {
    Incoming { item: Input::Transcoded { recording: recording.into(), key: key.into(), at: t }, origin: key.into() }
}

/// One process's engine over the database at `db`, on a virtual clock at `now`.
async fn open(db: &Path, now: Timestamp) -> Result<(Engine<Transcoding>, Arc<SqliteStore>), Error> {
    let store = Arc::new(SqliteStore::open(db, &SqliteOptions::default()).await?);
    let clock = Arc::new(ManualClock::new(now));
    let engine = Engine::resume(Transcoding, store.clone(), clock, EngineOptions::default()).await?;
    Ok((engine, store))
}

/// A recording's history, a line per entry: `spindown show` for this machine.
async fn show(store: &dyn Store, id: &str) -> Result<Vec<String>, Error> {
    let mut lines = Vec::new();
    for chunk in store.chunks(id).await? {
        for e in decode_chunk::<Entry>(&chunk.bytes)? {
            lines.push(format!("{}  {}", e.at, e.what));
        }
    }
    Ok(lines)
}

/// The outbox executor of this machine: claim what is due, "run" it, and
/// write what was done (the row done, a history entry) — once.
async fn run_effects(store: &dyn Store, now: Timestamp) -> Result<Vec<String>, Error> {
    let claim = Claim { owner: "example".into(), now, lease: Span::from_mins(1), limit: 100, running: Vec::new() };
    let mut ran = Vec::new();
    let mut outcomes = Vec::new();
    for row in store.claim_outbox(&claim).await? {
        let effects: Vec<Effect> = serde_json::from_str(&row.parts)?;
        let entries: Vec<Entry> = effects.iter().map(|e| Entry { at: now, what: format!("ran {e:?}") }).collect();
        ran.push(format!("{} {effects:?}", row.key));
        outcomes.push(OutboxOutcome {
            id: row.id,
            subject: row.subject.clone(),
            done: effects.len(),
            status: EffectStatus::Done,
            attempts: row.attempts + 1,
            next_attempt_at: now,
            last_error: None,
            at: now,
            history: entries.into_iter().collect::<Chunk>().append_to(&row.subject),
        });
    }
    store.finish_outbox("example", &outcomes).await?;
    Ok(ran)
}

/// Where each recording is, by the store.
async fn states(store: &dyn Store, ids: &[&str]) -> Result<Vec<(String, Phase)>, Error> {
    let mut out = Vec::new();
    for row in store.load(ids).await? {
        let r = Transcoding::decode(&row.id, &row.doc)?;
        out.push((r.id, r.phase));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The story: two uploads (one notification redelivered); the process
/// stops; the next one, started after rec-1's deadline, fires it once and
/// starts attempt 2; the effects run from the outbox; rec-1 is transcoded;
/// thirty days later both are deleted.
async fn story(db: &Path) -> Result<String, Error> {
    let mut out = String::new();
    {
        let (engine, store) = open(db, at("01T09:00")).await?;
        engine
            .apply(vec![
                uploaded("rec-1", "n1", at("01T09:00")),
                uploaded("rec-2", "n2", at("01T09:05")),
                uploaded("rec-1", "n1", at("01T09:06")),
            ])
            .await?;
        engine.apply(vec![transcoded("rec-2", "n3", at("01T09:40"))]).await?;
        out += "process 1 stops at 09:40 with rec-1's deadline (10:00) pending\n";
        store.close().await;
    }
    // A new process, started at 10:30: nothing of the first is in memory.
    let (engine, store) = open(db, at("01T10:30")).await?;
    let fired = engine.run_until(at("01T10:30")).await?.timers_fired;
    let again = engine.run_until(at("01T10:30")).await?.timers_fired;
    out += &format!("process 2 at 10:30: {fired} overdue timer fired, then {again}\n");
    for line in run_effects(&*store, at("01T10:30")).await? {
        out += &format!("outbox: {line}\n");
    }
    engine.apply(vec![transcoded("rec-1", "n4", at("01T10:45"))]).await?;
    engine.run_until(at("31T12:00")).await?;
    for line in run_effects(&*store, at("31T12:00")).await? {
        out += &format!("outbox: {line}\n");
    }
    for (id, phase) in states(&*store, &["rec-1", "rec-2"]).await? {
        out += &format!("{id}: {phase:?}\n");
    }
    out += "\nspindown show rec-1\n";
    for line in show(&*store, "rec-1").await? {
        out += &format!("  {line}\n");
    }
    store.close().await;
    Ok(out)
}

/// Run a script of `(recording, input, instant)` on the in-memory core and
/// return how each ended (recordings numbered by first sight).
fn on_core(script: Vec<(u32, Input, Timestamp)>) -> Vec<Option<End>> {
    let mut core = Core::new(Transcoding);
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

#[tokio::main]
async fn main() -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let db = match std::env::args().nth(1) {
        Some(path) => path.into(),
        None => dir.path().join("transcode.db"),
    };
    print!("{}", story(&db).await?);
    // The same machine on the in-memory core, as `whatif` runs a policy: an
    // upload never reported transcoded is retried twice, then given up.
    let up = Input::Uploaded { recording: "rec-3".into(), key: "n5".into(), at: at("01T09:00") };
    println!(
        "\non the core: rec-3 uploaded at 09:00, never transcoded: {:?}",
        on_core(vec![(0, up, at("01T09:00"))])[0]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(r: &str, key: &str, t: Timestamp) -> Input {
        Input::Uploaded { recording: r.into(), key: key.into(), at: t }
    }

    fn done(r: &str, key: &str, t: Timestamp) -> Input {
        Input::Transcoded { recording: r.into(), key: key.into(), at: t }
    }

    #[tokio::test]
    async fn on_the_durable_engine_timers_survive_a_restart_effects_run_once_and_history_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let out = story(&db).await.unwrap();
        assert!(
            out.contains("1 overdue timer fired, then 0"),
            "the overdue deadline fired once after the restart:\n{out}"
        );
        // Every effect ran once, in the order it was queued: attempt 1 of both,
        // attempt 2 of rec-1 (queued after the restart), then the deletions.
        let ran: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("outbox: ")).collect();
        let keys: Vec<&str> = ran.iter().map(|l| l.split(' ').next().unwrap()).collect();
        assert_eq!(
            keys,
            ["rec-1/transcode-1", "rec-2/transcode-1", "rec-1/transcode-2", "rec-2/delete", "rec-1/delete"]
        );
        assert!(out.contains(&format!("rec-1: Ended(Expired({}))", at("01T10:45").saturating_add(KEEP))), "{out}");
        assert!(out.contains(&format!("rec-2: Ended(Expired({}))", at("01T09:40").saturating_add(KEEP))), "{out}");
        // The history, read back from the file.
        let store = SqliteStore::open(&db, &SqliteOptions::default()).await.unwrap();
        let story = show(&store, "rec-1").await.unwrap();
        let whats: Vec<&str> = story.iter().map(|l| l.split_once("  ").unwrap().1).collect();
        assert_eq!(
            whats,
            [
                format!("uploaded: transcode attempt 1, deadline {}", at("01T10:00")).as_str(),
                "notification n1 again: dropped",
                format!("deadline missed: transcode attempt 2, deadline {}", at("01T11:30")).as_str(),
                "ran StartTranscode { attempt: 1 }",
                "ran StartTranscode { attempt: 2 }",
                format!("transcoded: ready until {}", at("01T10:45").saturating_add(KEEP)).as_str(),
                "expired: deleted",
                "ran Delete",
            ]
        );
        // Nothing is left to run.
        assert!(run_effects(&store, at("31T13:00")).await.unwrap().is_empty());
        let rows = store.outbox(&spindown::store::OutboxFilter::default()).await.unwrap();
        assert!(rows.iter().all(|r| r.status == EffectStatus::Done), "every outbox row is done");
    }

    #[tokio::test]
    async fn a_report_for_an_unknown_recording_is_dead_lettered_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, store) = open(&dir.path().join("t.db"), at("01T09:00")).await.unwrap();
        let r = engine.apply(vec![transcoded("rec-9", "n9", at("01T09:00"))]).await.unwrap();
        assert_eq!(r.dead_letter_total(), 1);
        let dead = store.recent_dead_letters(None, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].reason, "no upload for this recording");
        assert!(states(&*store, &["rec-9"]).await.unwrap().is_empty(), "nothing was created");
    }

    #[test]
    fn a_recording_transcoded_in_time_expires_thirty_days_later() {
        let ends = on_core(vec![
            (0, up("r", "u", at("01T09:00")), at("01T09:00")),
            (0, done("r", "t", at("01T09:40")), at("01T09:40")),
        ]);
        assert_eq!(ends, vec![Some(End::Expired(at("01T09:40").saturating_add(KEEP)))]);
    }

    #[test]
    fn a_transcode_that_misses_its_deadline_is_retried_then_given_up() {
        let ends = on_core(vec![(0, up("r", "u", at("01T09:00")), at("01T09:00"))]);
        // Deadlines at 10:00 and 11:00 start it again; the third, at 12:00, gives up.
        assert_eq!(ends, vec![Some(End::GaveUp(at("01T12:00")))]);
    }

    #[test]
    fn a_redelivered_upload_is_dropped_and_an_unknown_report_refused() {
        let ends = on_core(vec![
            (0, done("r", "t", at("01T08:00")), at("01T08:00")),
            (0, up("r", "u", at("01T09:00")), at("01T09:00")),
            (0, up("r", "u", at("01T09:59")), at("01T09:59")),
        ]);
        // The report before any upload created nothing; the redelivery did
        // not restart the job (a new upload would).
        assert_eq!(ends, vec![Some(End::GaveUp(at("01T12:00")))]);
        let again = on_core(vec![
            (0, up("r", "u", at("01T09:00")), at("01T09:00")),
            (0, up("r", "u2", at("01T09:59")), at("01T09:59")),
        ]);
        assert_eq!(again, vec![Some(End::GaveUp(at("01T12:59")))], "a new upload restarts the job");
    }

    #[test]
    fn each_step_asks_for_its_effects() {
        let m = Transcoding;
        let s = m.step(None, &up("r", "u", at("01T09:00")), at("01T09:00")).unwrap();
        assert_eq!(s.effects, vec![Effect::StartTranscode { attempt: 1 }]);
        let s = m.step(Some(s.state), &Input::Timer(Timer::Deadline, at("01T10:00")), at("01T10:00")).unwrap();
        assert_eq!(s.effects, vec![Effect::StartTranscode { attempt: 2 }]);
        let ready = Recording { id: "r".into(), phase: Phase::Ready { expires: at("01T11:00") } };
        let s = m.step(Some(ready), &Input::Timer(Timer::Expiry, at("01T11:00")), at("01T11:00")).unwrap();
        assert_eq!((s.state.phase, s.effects), (Phase::Ended(End::Expired(at("01T11:00"))), vec![Effect::Delete]));
    }
}
