//! The backend conformance suite: what every [`Store`] must do, checked the
//! same way for each backend (`tests/conformance.rs` runs it on SQLite and on
//! the in-memory store).
//!
//! A [`Backend`] opens its storage; opening it again is a *reopen* (a
//! restart): it must see everything committed before, and nothing else.

use spindown::inspect::MeetingStore;
use spindown::meeting::{EffectFilter, EffectOutcome, MeetingFilter, StoredMeeting, TimerFilter};
use spindown::operate::MeetingEngine;
use std::sync::Arc;

use serde_json::json;
use spindown::clock::ManualClock;
use spindown::engine::{Engine, EngineOptions};
use spindown::machine::Durable;
use spindown::meeting::history::{Cause, Entry, FactChange, Ignored, Note, Outcome};
use spindown::meeting::stored::{self, append};
use spindown::meeting::MeetingWorkflow;
use spindown::meeting::{
    CommandKind, Effect, EffectKind, Ended, EventName, Facts, InstanceId, InstanceSource, Meeting, Policy, Reason,
    State, TimerKey, TimerKind,
};
use spindown::store::{
    Changes, Checkpoint, Claim, Clocks, DueKey, EffectStatus, Gap, InstanceWrite, Lease, NewDeadLetter, NewEffect,
    Page, Requeue, Store, StoreError, StoredInstance, WorkerInfo,
};
use spindown::time::{Span, Timestamp};
use spindown::BoxFuture;

use super::records::{id, img, insert, items, rec, t};

/// A backend under test.
pub trait Backend: Send + Sync {
    /// Open the backend's storage; again for a reopen.
    fn open(&self) -> BoxFuture<'_, Arc<dyn Store>>;
}

/// Run every conformance test for a backend, as one `#[tokio::test]` each.
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr) => {
        $crate::conformance_tests!(@each $backend;
            units_of_work_are_all_or_nothing, fenced_writes_refuse_stale_versions, meetings_round_trip,
            history_appends_in_order_and_keeps_every_note, dedupe_survives_a_reopen,
            timers_page_in_fire_order, timers_fire_in_order_exactly_once_across_reopens,
            effects_claim_complete_retry_fail_requeue, effects_come_back_exactly, effect_leases_fence_other_owners,
            checkpoints_accumulate_and_gaps_are_kept, dead_letters_keep_their_raw_bytes,
            clocks_only_grow, counts_and_read_models, forget_event_ids_of_meetings_ended_long_ago,
            shard_leases_fence_checkpoints, workers_are_live_while_they_heartbeat,
            the_sweep_log_keeps_findings_newest_first, one_identity_one_process,
            retention_deletes_ended_meetings_and_old_rows_only, recent_rows_come_newest_first,
            meetings_are_found_by_their_search_attributes, a_bulk_load_indexes_its_search_attributes_at_its_end,
            the_engine_indexes_a_meeting_when_it_gains_an_instance, meetings_are_found_by_when_they_start,
            the_engine_reindexes_a_meeting_whose_start_moves, the_overview_reads_what_runs_what_ended_and_what_is_stuck,
            held_meetings_are_read_from_the_hold_index);
    };
    (@each $backend:expr; $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let backend = $backend;
                $crate::common::conformance::$name(&backend).await;
            }
        )+
    };
}

fn meeting(name: &str, created: Timestamp) -> Meeting {
    let mut m = Meeting::new(id(name), created);
    m.facts.meet_time = Some(created);
    m.version = 1;
    m
}

/// A meeting to write as the engine writes it: its document, what is indexed
/// of it, and its version as the row's.
fn write(m: &Meeting, loaded: Option<i64>) -> InstanceWrite {
    write_keys(m, vec![], loaded)
}

/// [`write`], with the eventIDs it applied.
fn write_keys(m: &Meeting, keys: Vec<String>, loaded: Option<i64>) -> InstanceWrite {
    InstanceWrite {
        stored: StoredInstance { id: m.id.to_string(), version: m.version, keys, doc: stored::encode(m) },
        index: MeetingWorkflow::index(m),
        loaded_version: loaded,
        search_changed: true,
    }
}

fn entry(at: Timestamp, outcome: Outcome, notes: Vec<Note>) -> Entry {
    Entry {
        at,
        cause: Cause::Command(CommandKind::Schedule),
        from: None,
        to: Some(State::Scheduled),
        outcome,
        reason: None,
        lateness: None,
        notes,
    }
}

async fn commit(store: &dyn Store, changes: Changes) -> Result<(), StoreError> {
    store.begin().await?.commit(changes).await
}

fn checkpoint(shard: &str, seq: Option<&str>, records: u64, at: Timestamp) -> Checkpoint {
    Checkpoint {
        stream_arn: "arn:s".into(),
        shard_id: shard.into(),
        parent_shard_id: None,
        sequence_number: seq.map(Into::into),
        closed: false,
        records,
        last_event_at: Some(at),
        caught_up: false,
        at,
        lease: None,
    }
}

fn dead(raw: &[u8], at: Timestamp) -> NewDeadLetter {
    NewDeadLetter {
        at,
        origin: "f:1".into(),
        kind: "not_json".into(),
        reason: "line is not JSON".into(),
        event_id: None,
        raw: raw.to_vec(),
    }
}

fn terminate_parts(at: Timestamp) -> Vec<Effect> {
    vec![
        Effect::Terminate { instances: vec![InstanceId::parse("i-0123456789abcdef0").unwrap()] },
        Effect::WriteBack { reason: Reason::NoShowTimeout, terminated_at: at },
    ]
}

fn terminate_effect(meeting: &str, at: Timestamp) -> NewEffect {
    NewEffect {
        key: format!("{meeting}/end"),
        subject: meeting.to_string(),
        parts: stored::encode_parts(&terminate_parts(at)),
        count: 2,
        at,
        completed: false,
    }
}

pub async fn units_of_work_are_all_or_nothing(b: &dyn Backend) {
    let store = b.open().await;
    let m1 = meeting("m-1", t("10:00"));
    let changes = Changes {
        instances: vec![write(&m1, None)],
        history: vec![append(&id("m-1"), [entry(t("10:00"), Outcome::Created, vec![])].into_iter().collect())],
        effects: vec![terminate_effect("m-1", t("10:00"))],
        dead_letters: vec![dead(b"x", t("10:00"))],
        checkpoint: Some(checkpoint("s-0", Some("1"), 1, t("10:00"))),
        clocks: Clocks { last_instant: Some(t("10:00")), event_clock: Some(t("10:00")) },
        ..Changes::default()
    };
    commit(store.as_ref(), changes).await.unwrap();

    // A unit of work whose fence fails writes nothing at all.
    let m2 = meeting("m-2", t("10:01"));
    let stale = Changes {
        instances: vec![write(&m2, None), write(&m1, Some(7))],
        history: vec![append(&id("m-2"), [entry(t("10:01"), Outcome::Created, vec![])].into_iter().collect())],
        effects: vec![terminate_effect("m-2", t("10:01"))],
        dead_letters: vec![dead(b"y", t("10:01"))],
        checkpoint: Some(checkpoint("s-0", Some("2"), 1, t("10:01"))),
        clocks: Clocks { last_instant: Some(t("11:00")), event_clock: None },
        ..Changes::default()
    };
    assert!(matches!(commit(store.as_ref(), stale).await, Err(StoreError::Conflict(_))));
    // Nor does one that is rolled back.
    let uow = store.begin().await.unwrap();
    uow.rollback().await.unwrap();

    for s in [store.clone(), b.open().await] {
        assert!(s.meeting(&id("m-2")).await.unwrap().is_none(), "the conflicting unit wrote a meeting");
        assert!(s.history(&id("m-2")).await.unwrap().is_empty());
        assert_eq!(s.effects(&EffectFilter::default()).await.unwrap().len(), 1);
        assert_eq!(s.dead_letters(&Page { after: None, limit: 10 }).await.unwrap().len(), 1);
        let cps = s.checkpoints(None).await.unwrap();
        assert_eq!((cps.len(), cps[0].sequence_number.as_deref(), cps[0].records), (1, Some("1"), 1));
        assert_eq!(s.clocks().await.unwrap().last_instant, Some(t("10:00")));
        assert_eq!(s.meeting(&id("m-1")).await.unwrap().unwrap().meeting, m1);
    }
}

pub async fn fenced_writes_refuse_stale_versions(b: &dyn Backend) {
    let store = b.open().await;
    let mut m = meeting("m-1", t("10:00"));
    commit(store.as_ref(), Changes { instances: vec![write(&m, None)], ..Changes::default() }).await.unwrap();
    // Creating it again is a conflict (another writer created it first).
    let again = Changes { instances: vec![write(&m, None)], ..Changes::default() };
    assert!(matches!(commit(store.as_ref(), again).await, Err(StoreError::Conflict(_))));
    // An update fenced on the stored version goes through; a second one on the same base does not.
    m.version = 2;
    m.state = State::InProgress;
    commit(store.as_ref(), Changes { instances: vec![write(&m, Some(1))], ..Changes::default() }).await.unwrap();
    let lost = Changes { instances: vec![write(&m, Some(1))], ..Changes::default() };
    assert!(matches!(commit(store.as_ref(), lost).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.meeting(&id("m-1")).await.unwrap().unwrap().meeting.state, State::InProgress);
}

pub async fn meetings_round_trip(b: &dyn Backend) {
    let store = b.open().await;
    let mut m = meeting("m-é/1", t("10:00"));
    m.facts = Facts {
        meet_time: Some(t("10:00")),
        created_at: Some(t("08:00")),
        duration: Some(Span::from_micros(450_000_001)),
        status: Some("IN_PROGRESS".into()),
        teacher_data: true,
        student_data: false,
    };
    m.instances = ["i-0123456789abcdef0", "i-89abcdef"].iter().map(|i| InstanceId::parse(i).unwrap()).collect();
    m.state = State::Partial;
    m.timers.safety_net = Some(t("10:15"));
    m.timers.cap = Some(t("14:00"));
    m.created = Timestamp::from_micros(1_795_687_200_123_456);
    let stored = StoredMeeting { meeting: m.clone(), event_ids: vec!["e-1".into(), "e\n\"2\"".into()] };
    let w = write_keys(&m, stored.event_ids.clone(), None);
    commit(store.as_ref(), Changes { instances: vec![w], ..Changes::default() }).await.unwrap();
    let mut ended = meeting("m-2", t("09:00"));
    ended.state = State::Terminated;
    ended.ended = Some(Ended { reason: Reason::FifteenMinSuccess, at: t("09:15") });
    commit(store.as_ref(), Changes { instances: vec![write(&ended, None)], ..Changes::default() }).await.unwrap();
    let store = b.open().await;
    assert_eq!(store.meeting(&m.id).await.unwrap(), Some(stored.clone()));
    let mut loaded = store.load(&["m-2", m.id.as_str(), "nope"]).await.unwrap();
    loaded.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(loaded.len(), 2);
    let mut uow = store.begin().await.unwrap();
    let rows = uow.load(&[m.id.as_str()]).await.unwrap();
    assert_eq!(rows.into_iter().map(|r| stored::meeting_of(r).unwrap()).collect::<Vec<_>>(), vec![stored]);
    uow.rollback().await.unwrap();
    assert_eq!(store.meeting(&id("m-2")).await.unwrap().unwrap().meeting, ended);
}

/// One entry with every kind of note, to prove the history encoding keeps them all.
fn every_note(at: Timestamp) -> Entry {
    let i = InstanceId::parse("i-0123456789abcdef0").unwrap();
    let notes = vec![
        Note::Created(Facts { meet_time: Some(at), status: Some("S".into()), ..Facts::default() }),
        Note::Changed(FactChange::MeetTime(None, Some(at))),
        Note::Changed(FactChange::Duration(Some(Span::from_secs(1)), None)),
        Note::Changed(FactChange::Status(None, Some("x".into()))),
        Note::Changed(FactChange::TeacherData(false, true)),
        Note::Instance { id: i.clone(), source: InstanceSource::OldStudent },
        Note::SkippedInstance { value: "i-NOPE".into(), source: InstanceSource::Teacher },
        Note::NoImage(EventName::Modify),
        Note::Armed { kind: TimerKind::Recheck, due: at },
        Note::Rearmed { kind: TimerKind::Cap, from: at, to: at.saturating_add(Span::from_mins(1)) },
        Note::Cancelled(vec![TimerKind::SafetyNet, TimerKind::Fixed]),
        Note::RowDeleted,
        Note::TerminatedElsewhere,
        Note::BothSides { event_time: at, past_start: Span::from_mins(15) },
        Note::LookingAgain,
        Note::ByOperator,
        Note::NoInstances,
        Note::QueuedTerminate(vec![i.clone()]),
        Note::QueuedWriteBack(Reason::Manual),
        Note::AfterTermination(Ignored::Record(EventName::Remove)),
        Note::AfterTermination(Ignored::Schedule),
        Note::AlreadyTerminated(Ended { reason: Reason::External, at }),
        Note::StaleTimer { kind: TimerKind::Fixed, due: at },
        Note::Duplicate { event_id: "ev".into() },
        Note::WouldTerminate(vec![i.clone()]),
        Note::TerminatedInstances(vec![i.clone()]),
        Note::Gone(vec![i.clone()]),
        Note::Refused { id: i, why: "no tag".into() },
        Note::WroteBack { reason: Reason::Success, terminated_at: at },
        Note::WouldWriteBack { reason: Reason::Success, terminated_at: at },
        Note::AlreadyWritten,
        Note::AttemptFailed { attempt: 2, error: "throttled".into(), retry_at: at },
        Note::GaveUp { attempt: 3, error: "denied".into() },
        Note::Text("from an older database".into()),
    ];
    Entry {
        at,
        cause: Cause::Timer { kind: TimerKind::SafetyNet, due: at },
        from: Some(State::InProgress),
        to: Some(State::Terminated),
        outcome: Outcome::Terminated,
        reason: Some(Reason::PartialNoShowTimeout),
        lateness: Some(Span::from_micros(1)),
        notes,
    }
}

pub async fn history_appends_in_order_and_keeps_every_note(b: &dyn Backend) {
    let store = b.open().await;
    let first = entry(t("10:00"), Outcome::Created, vec![Note::LookingAgain]);
    let effect = Entry {
        at: t("10:16"),
        cause: Cause::Effect { kind: EffectKind::WriteBack, effect: Some(3) },
        from: None,
        to: None,
        outcome: Outcome::EffectRetry,
        reason: None,
        lateness: None,
        notes: vec![],
    };
    let record = Entry {
        cause: Cause::Record { event: EventName::Insert, event_id: None },
        ..entry(t("10:17"), Outcome::Ignored, vec![])
    };
    let chunks = [vec![first.clone()], vec![every_note(t("10:15")), effect.clone()], vec![record.clone()]];
    for c in &chunks {
        let h = append(&id("m-1"), c.iter().cloned().collect());
        commit(store.as_ref(), Changes { history: vec![h], ..Changes::default() }).await.unwrap();
    }
    let other = append(&id("m-0"), [first.clone()].into_iter().collect());
    commit(store.as_ref(), Changes { history: vec![other], ..Changes::default() }).await.unwrap();
    let store = b.open().await;
    let h = store.history(&id("m-1")).await.unwrap();
    let entries: Vec<Entry> = h.iter().map(|r| r.entry.clone()).collect();
    assert_eq!(entries, [first, every_note(t("10:15")), effect, record]);
    assert!(h.windows(2).all(|w| w[0].seq <= w[1].seq), "oldest first");
    assert!(h[0].seq < h[1].seq && h[1].seq == h[2].seq && h[2].seq < h[3].seq, "one seq per unit of work");
    assert!(store.history(&id("m-0")).await.unwrap()[0].seq > h[3].seq, "seq orders units of work across meetings");
}

/// A replay-like engine over a backend, on a virtual clock.
async fn engine(store: Arc<dyn Store>, clock: &ManualClock) -> MeetingEngine {
    Engine::start(store, Policy::default(), Arc::new(clock.clone()), EngineOptions::default()).await.unwrap()
}

pub async fn dedupe_survives_a_reopen(b: &dyn Backend) {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let first =
        rec(Some("e1"), "INSERT", Some(t("10:00")), "m-1", img("10:00", json!({"status": {"S": "IN_PROGRESS"}})));
    {
        let e = engine(b.open().await, &clock).await;
        let r = e.apply(items(&[first.clone(), first.clone()])).await.unwrap();
        assert_eq!((r.records, r.duplicates, r.created), (2, 1, 1), "the same eventID twice in one unit of work");
        e.store().close().await;
    }
    let e = engine(b.open().await, &clock).await;
    let reused = rec(Some("e1"), "REMOVE", Some(t("10:04")), "m-1", img("10:00", json!({})));
    assert_eq!(e.apply(items(&[reused])).await.unwrap().duplicates, 1, "remembered across a reopen");
    assert_eq!(e.store().meeting(&id("m-1")).await.unwrap().unwrap().meeting.state, State::InProgress);
    // A record without an eventID is never a duplicate; a dead letter's eventID is not remembered.
    let anon = rec(None, "MODIFY", Some(t("10:05")), "m-1", img("10:00", json!({})));
    assert_eq!(e.apply(items(&[anon.clone(), anon])).await.unwrap().duplicates, 0);
    let bad = rec(Some("e9"), "INSERT", Some(t("10:06")), "m-9", json!({"meet_time": {"S": "garbage"}}));
    let good = rec(Some("e9"), "INSERT", Some(t("10:06")), "m-9", img("10:30", json!({})));
    let r = e.apply(items(&[bad, good])).await.unwrap();
    assert_eq!((r.dead_letter_total(), r.duplicates, r.created), (1, 0, 1));
    let h = e.store().history(&id("m-1")).await.unwrap();
    assert_eq!(h.iter().filter(|h| matches!(h.entry.cause, Cause::Duplicate { .. })).count(), 2);
}

pub async fn timers_page_in_fire_order(b: &dyn Backend) {
    let store = b.open().await;
    // Meetings with several timers each; the store pages each meeting's first one.
    let mut ms = Vec::new();
    for (i, (net, cap)) in
        [("10:15", "14:00"), ("10:15", "10:15"), ("10:05", "11:00"), ("12:00", "12:30")].iter().enumerate()
    {
        let mut m = meeting(&format!("m-{i}"), t("10:00"));
        m.timers.safety_net = Some(t(net));
        m.timers.cap = Some(t(cap));
        ms.push(write(&m, None));
    }
    let mut done = meeting("m-done", t("09:00"));
    done.ended = Some(Ended { reason: Reason::Manual, at: t("09:00") });
    done.state = State::Terminated;
    ms.push(write(&done, None));
    commit(store.as_ref(), Changes { instances: ms, ..Changes::default() }).await.unwrap();
    let key = |m: &str, k: TimerKind, due: &str| stored::due_key(&TimerKey::new(id(m), k, t(due)));
    let want = [
        key("m-2", TimerKind::SafetyNet, "10:05"),
        key("m-0", TimerKind::SafetyNet, "10:15"),
        key("m-1", TimerKind::SafetyNet, "10:15"),
        key("m-3", TimerKind::SafetyNet, "12:00"),
    ];
    // In pages of two, strictly after the last key, up to an instant.
    let mut got = Vec::new();
    let mut after: Option<DueKey> = None;
    loop {
        let page = store.due(after.as_ref(), t("13:00"), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        got.extend(page);
    }
    assert_eq!(got, want);
    assert_eq!(store.due(None, t("10:10"), 10).await.unwrap(), want[..1]);
    let mut uow = store.begin().await.unwrap();
    assert_eq!(uow.due(Some(&want[1]), t("23:00"), 10).await.unwrap(), want[2..]);
    // With their meetings, in one call: the same keys, each key's meeting as stored.
    let (keys, loaded) = uow.due_loaded(None, t("13:00"), 3).await.unwrap();
    assert_eq!(keys, want[..3]);
    let mut loaded_ids: Vec<_> = loaded.iter().map(|s| s.id.clone()).collect();
    loaded_ids.sort();
    assert_eq!(loaded_ids, ["m-0", "m-1", "m-2"]);
    let m0 = loaded.iter().find(|s| s.id == "m-0").cloned().map(|r| stored::meeting_of(r).unwrap()).unwrap();
    assert_eq!((m0.meeting.timers.safety_net, m0.meeting.timers.cap), (Some(t("10:15")), Some(t("14:00"))));
    let (keys, loaded) = uow.due_loaded(Some(&want[2]), t("13:00"), 3).await.unwrap();
    assert_eq!((keys.as_slice(), loaded.len()), (&want[3..], 1));
    uow.rollback().await.unwrap();
    assert_eq!(store.next_due().await.unwrap(), Some(t("10:05")));
    // Every pending timer, soonest first; m-1's safety net ties with its cap and fires first.
    let all = store.timers(&TimerFilter { meeting: None, limit: 100 }).await.unwrap();
    assert_eq!(all.len(), 8);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "fire order: {all:?}");
    let all: Vec<DueKey> = all.iter().map(stored::due_key).collect();
    assert_eq!(all[1..3], [key("m-0", TimerKind::SafetyNet, "10:15"), key("m-1", TimerKind::SafetyNet, "10:15")]);
    let one = store.timers(&TimerFilter { meeting: Some(id("m-1")), limit: 100 }).await.unwrap();
    let one: Vec<DueKey> = one.iter().map(stored::due_key).collect();
    assert_eq!(one, [key("m-1", TimerKind::SafetyNet, "10:15"), key("m-1", TimerKind::Cap, "10:15")]);
}

pub async fn timers_fire_in_order_exactly_once_across_reopens(b: &dyn Backend) {
    let clock = ManualClock::live(t("09:00"));
    {
        let e = engine(b.open().await, &clock).await;
        // Equal due times across meetings and kinds; 2,500 meetings: more than a page and a unit of work.
        let mut lines: Vec<String> = (0..2500).map(|i| insert(&format!("m-{i:05}"), "10:00", "IN_PROGRESS")).collect();
        let tie = img("10:00", json!({"duration_minutes": {"N": "0"}, "status": {"S": "IN_PROGRESS"}}));
        lines.push(rec(Some("d"), "INSERT", Some(t("09:00")), "m-tie", tie));
        for chunk in lines.chunks(700) {
            e.apply(items(chunk)).await.unwrap();
        }
        e.store().close().await;
    }
    // Reopened after the safety nets (10:15) were due: each fires once, late, in order.
    clock.set(t("10:20"));
    let e = engine(b.open().await, &clock).await;
    let mut fired = 0;
    loop {
        let (r, more) = e.fire_due(2000).await.unwrap();
        fired += r.timers_fired;
        if !more {
            break;
        }
    }
    assert_eq!(
        fired, 2502,
        "2,501 safety nets and m-tie's cap (due at 10:15 too: it arms a re-check, then the cap ends it)"
    );
    let h = e.store().history(&id("m-tie")).await.unwrap();
    let fires: Vec<TimerKind> = h
        .iter()
        .filter_map(|h| match h.entry.cause {
            Cause::Timer { kind, .. } => Some(kind),
            _ => None,
        })
        .collect();
    assert_eq!(fires, [TimerKind::SafetyNet, TimerKind::Cap], "equal due times: safety net, then cap");
    assert_eq!(h.last().unwrap().entry.lateness, Some(Span::from_mins(5)), "fired at the real instant");
    assert_eq!(e.fire_due(10_000).await.unwrap().0.timers_fired, 0, "nothing fires twice");
    e.store().close().await;
    let e = engine(b.open().await, &clock).await;
    assert_eq!(e.fire_due(10_000).await.unwrap().0.timers_fired, 0, "nor after another reopen");
    let m = e.store().meeting(&id("m-00042")).await.unwrap().unwrap().meeting;
    assert_eq!(m.timers.recheck, Some(t("10:35")), "in progress: a re-check from the instant it fired");
    let counts = e.store().counts().await.unwrap();
    assert_eq!(counts.in_state(State::InProgress), 2500);
    assert_eq!(counts.timers_pending, 5000, "a re-check and a cap each");
}

pub async fn effects_claim_complete_retry_fail_requeue(b: &dyn Backend) {
    let store = b.open().await;
    let mut e1 = terminate_effect("m-1", t("10:00"));
    let e2 = terminate_effect("m-2", t("10:01"));
    let dup = terminate_effect("m-1", t("10:05"));
    e1.completed = false;
    commit(store.as_ref(), Changes { effects: vec![e1, e2], ..Changes::default() }).await.unwrap();
    commit(store.as_ref(), Changes { effects: vec![dup], ..Changes::default() }).await.unwrap();
    let all = store.effects(&EffectFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2, "the idempotency key keeps the second m-1 row out");
    assert!(all.iter().all(|e| e.status == EffectStatus::Pending && e.attempts == 0 && e.done == 0));
    let claim =
        |at: &str, limit| Claim { owner: "w".into(), now: t(at), lease: Span::from_mins(5), limit, running: vec![] };
    assert!(store.claim_effects(&claim("09:59", 10)).await.unwrap().is_empty(), "not due yet");
    let got = store.claim_effects(&claim("10:02", 1)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].meeting_id, id("m-1"), "oldest first");
    let row = got[0].clone();
    // The terminate part done, the write-back failed transiently: retried later from the write-back.
    let retry = EffectOutcome {
        id: row.id,
        meeting_id: row.meeting_id.clone(),
        done: 1,
        status: EffectStatus::Pending,
        attempts: 1,
        next_attempt_at: t("10:10"),
        last_error: Some("throttled".into()),
        at: t("10:02"),
        history: vec![entry(t("10:02"), Outcome::EffectRetry, vec![])],
    };
    store.finish_effects("w", &[retry]).await.unwrap();
    assert_eq!(store.next_effect_attempt().await.unwrap(), Some(t("10:01")));
    let store = b.open().await;
    let got = store.claim_effects(&claim("10:05", 10)).await.unwrap();
    assert_eq!(got.iter().map(|e| e.meeting_id.as_str()).collect::<Vec<_>>(), ["m-2"], "m-1 waits for 10:10");
    let got = store.claim_effects(&claim("10:10", 10)).await.unwrap();
    let m1 = got.iter().find(|e| e.meeting_id == id("m-1")).unwrap().clone();
    assert_eq!((m1.done, m1.attempts, m1.last_error.as_deref()), (1, 1, Some("throttled")));
    assert_eq!(m1.current(), Some(&m1.parts[1]), "resumes at the write-back");
    let fail = EffectOutcome {
        status: EffectStatus::Failed,
        attempts: 2,
        last_error: Some("denied".into()),
        next_attempt_at: t("10:10"),
        at: t("10:10"),
        history: vec![entry(t("10:10"), Outcome::EffectFailed, vec![])],
        ..EffectOutcome { id: m1.id, meeting_id: m1.meeting_id.clone(), done: 1, ..retry_template() }
    };
    let m2 = got.iter().find(|e| e.meeting_id == id("m-2")).unwrap().clone();
    let done = EffectOutcome {
        id: m2.id,
        meeting_id: m2.meeting_id.clone(),
        done: 2,
        status: EffectStatus::Done,
        attempts: 1,
        next_attempt_at: t("10:10"),
        last_error: None,
        at: t("10:10"),
        history: vec![entry(t("10:10"), Outcome::EffectDone, vec![Note::AlreadyWritten])],
    };
    store.finish_effects("w", &[fail, done]).await.unwrap();
    assert!(store.claim_effects(&claim("23:00", 10)).await.unwrap().is_empty(), "failed and done rows are not claimed");
    let failed = EffectFilter { status: Some(EffectStatus::Failed), ..EffectFilter::default() };
    assert_eq!(store.effects(&failed).await.unwrap().len(), 1);
    assert_eq!(store.history(&id("m-1")).await.unwrap().len(), 2, "each attempt left its entry");
    assert_eq!(store.requeue_failed(Requeue::One(m2.id), t("11:00")).await.unwrap(), 0, "a done row is not failed");
    assert_eq!(store.requeue_failed(Requeue::One(m1.id), t("11:00")).await.unwrap(), 1);
    let again = store.claim_effects(&claim("11:00", 10)).await.unwrap();
    assert_eq!((again.len(), again[0].attempts, again[0].done), (1, 0, 1), "attempts start over, done parts stay done");
    assert_eq!(store.requeue_failed(Requeue::All, t("11:00")).await.unwrap(), 0);
    let by_meeting =
        store.effects(&EffectFilter { meeting: Some(id("m-2")), ..EffectFilter::default() }).await.unwrap();
    assert_eq!((by_meeting.len(), by_meeting[0].status), (1, EffectStatus::Done));
    let by_id = store.effects(&EffectFilter { id: Some(m1.id), ..EffectFilter::default() }).await.unwrap();
    assert_eq!(by_id[0].meeting_id, id("m-1"));
}

/// A queued effect is read back and claimed exactly as it was queued: the
/// write-back's instant to the microsecond (a live clock has them), so that
/// the table gets the `terminated_at` that `show` prints.
pub async fn effects_come_back_exactly(b: &dyn Backend) {
    let store = b.open().await;
    let at = Timestamp::from_micros(t("10:00").as_micros() + 400);
    let e = terminate_effect("m-1", at);
    let parts = terminate_parts(at);
    commit(store.as_ref(), Changes { effects: vec![e], ..Changes::default() }).await.unwrap();
    let store = b.open().await;
    assert_eq!(store.effects(&EffectFilter::default()).await.unwrap()[0].parts, parts);
    let claim = Claim { owner: "w".into(), now: at, lease: Span::from_mins(5), limit: 10, running: vec![] };
    let got = store.claim_effects(&claim).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].parts, parts);
    let Effect::WriteBack { terminated_at, .. } = &got[0].parts[1] else { panic!("{:?}", got[0].parts) };
    assert_eq!(terminated_at.to_rfc3339(), "2026-11-26T10:00:00.000Z");
}

fn retry_template() -> EffectOutcome {
    EffectOutcome {
        id: 0,
        meeting_id: id("x"),
        done: 0,
        status: EffectStatus::Pending,
        attempts: 0,
        next_attempt_at: Timestamp::EPOCH,
        last_error: None,
        at: Timestamp::EPOCH,
        history: vec![],
    }
}

/// Effect leases are judged by the database's clock (the same for every
/// worker), whatever the engine's clock says; a heartbeat keeps a lease while
/// its call runs; an outcome after the lease was lost is not recorded.
pub async fn effect_leases_fence_other_owners(b: &dyn Backend) {
    let store = b.open().await;
    commit(store.as_ref(), Changes { effects: vec![terminate_effect("m-1", t("10:00"))], ..Changes::default() })
        .await
        .unwrap();
    // The engine's clock may be anywhere (a replayed day): it only says what is due.
    let claim = |owner: &str, lease_ms: i64| Claim {
        owner: owner.into(),
        now: t("10:00"),
        lease: Span::from_micros(lease_ms * 1000),
        limit: 10,
        running: vec![],
    };
    let a = store.claim_effects(&claim("a", 1500)).await.unwrap();
    assert_eq!(a.len(), 1);
    assert!(store.claim_effects(&claim("b", 1500)).await.unwrap().is_empty(), "held by a");
    assert_eq!(store.claim_effects(&claim("a", 1500)).await.unwrap().len(), 1, "a takes its own lease back");
    let running = Claim { running: vec![a[0].id], ..claim("a", 1500) };
    assert!(store.claim_effects(&running).await.unwrap().is_empty(), "but not one it says it is running");
    // a's call runs long: its heartbeat keeps the lease past its first end.
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        assert_eq!(
            store.renew_effect_leases("a", &[a[0].id], Span::from_micros(1_500_000)).await.unwrap(),
            vec![a[0].id]
        );
        assert!(store.claim_effects(&claim("b", 1500)).await.unwrap().is_empty(), "renewed: still a's");
    }
    assert!(store.renew_effect_leases("b", &[a[0].id], Span::from_mins(1)).await.unwrap().is_empty(), "not b's");
    // a stops renewing (it died): once its lease runs out, b takes over.
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    let b_rows = store.claim_effects(&claim("b", 60_000)).await.unwrap();
    assert_eq!(b_rows.len(), 1, "a's lease ran out: b takes over");
    assert!(store.renew_effect_leases("a", &[a[0].id], Span::from_mins(1)).await.unwrap().is_empty(), "a lost it");
    let stale = EffectOutcome {
        id: a[0].id,
        meeting_id: id("m-1"),
        status: EffectStatus::Done,
        done: 2,
        attempts: 1,
        ..retry_template()
    };
    store.finish_effects("a", &[stale]).await.unwrap();
    let row = &store.effects(&EffectFilter::default()).await.unwrap()[0];
    assert_eq!(row.status, EffectStatus::Pending, "a's outcome after losing the lease is not recorded");
    let fresh = EffectOutcome {
        id: b_rows[0].id,
        meeting_id: id("m-1"),
        status: EffectStatus::Done,
        done: 2,
        attempts: 1,
        at: t("10:06"),
        ..retry_template()
    };
    store.finish_effects("b", &[fresh]).await.unwrap();
    assert_eq!(store.effects(&EffectFilter::default()).await.unwrap()[0].status, EffectStatus::Done);
}

pub async fn checkpoints_accumulate_and_gaps_are_kept(b: &dyn Backend) {
    let store = b.open().await;
    let mut c1 = checkpoint("s-1", Some("10"), 3, t("10:00"));
    c1.parent_shard_id = Some("s-0".into());
    commit(store.as_ref(), Changes { checkpoint: Some(c1), ..Changes::default() }).await.unwrap();
    // A heartbeat with no new record keeps the position, adds nothing, records caught-up.
    let mut beat = checkpoint("s-1", None, 0, t("10:05"));
    beat.caught_up = true;
    beat.last_event_at = None;
    commit(store.as_ref(), Changes { checkpoint: Some(beat), ..Changes::default() }).await.unwrap();
    let mut close = checkpoint("s-1", Some("12"), 2, t("10:06"));
    close.closed = true;
    commit(store.as_ref(), Changes { checkpoint: Some(close), ..Changes::default() }).await.unwrap();
    let mut reopen = checkpoint("s-1", None, 0, t("10:07"));
    reopen.closed = false;
    reopen.last_event_at = None;
    commit(store.as_ref(), Changes { checkpoint: Some(reopen), ..Changes::default() }).await.unwrap();
    commit(
        store.as_ref(),
        Changes { checkpoint: Some(checkpoint("s-0", Some("9"), 1, t("09:00"))), ..Changes::default() },
    )
    .await
    .unwrap();
    let store = b.open().await;
    let cps = store.checkpoints(Some("arn:s")).await.unwrap();
    assert_eq!(cps.iter().map(|c| c.shard_id.as_str()).collect::<Vec<_>>(), ["s-0", "s-1"], "by shard");
    let c = &cps[1];
    assert_eq!(c.sequence_number.as_deref(), Some("12"));
    assert_eq!(c.parent_shard_id.as_deref(), Some("s-0"));
    assert_eq!(c.records, 5);
    assert!(c.closed, "closed stays closed");
    assert_eq!(c.last_event_at, Some(t("10:06")));
    assert!(store.checkpoints(Some("other")).await.unwrap().is_empty());
    for (i, at) in ["10:00", "10:01"].iter().enumerate() {
        let gap = Gap { stream_arn: "arn:s".into(), shard_id: "s-1".into(), at: t(at), detail: format!("gap {i}") };
        store.record_gap(&gap).await.unwrap();
    }
    let gaps = b.open().await.gaps().await.unwrap();
    assert_eq!(gaps.iter().map(|g| g.detail.as_str()).collect::<Vec<_>>(), ["gap 0", "gap 1"]);
    assert_eq!(store.forget_checkpoints("arn:s").await.unwrap(), 2);
    assert!(b.open().await.checkpoints(None).await.unwrap().is_empty());
}

pub async fn dead_letters_keep_their_raw_bytes(b: &dyn Backend) {
    let store = b.open().await;
    let raws: Vec<Vec<u8>> = (0..5).map(|i| vec![0xff, b'{', i, 0]).collect();
    let dls: Vec<NewDeadLetter> =
        raws.iter().map(|r| NewDeadLetter { event_id: Some("e".into()), ..dead(r, t("10:00")) }).collect();
    commit(store.as_ref(), Changes { dead_letters: dls, ..Changes::default() }).await.unwrap();
    let store = b.open().await;
    let first = store.dead_letters(&Page { after: None, limit: 3 }).await.unwrap();
    let rest = store.dead_letters(&Page { after: Some(first[2].id), limit: 10 }).await.unwrap();
    let got: Vec<Vec<u8>> = first.iter().chain(&rest).map(|d| d.raw.clone()).collect();
    assert_eq!(got, raws, "every raw record, in order, byte for byte");
    assert_eq!(
        (first[0].kind.as_str(), first[0].event_id.as_deref(), first[0].at),
        ("not_json", Some("e"), t("10:00"))
    );
    let c = store.counts().await.unwrap();
    assert_eq!((c.dead_letters, c.dead_letters_by_kind.clone()), (5, vec![("not_json".to_string(), 5)]));
}

pub async fn clocks_only_grow(b: &dyn Backend) {
    let store = b.open().await;
    assert_eq!(store.clocks().await.unwrap(), Clocks::default());
    let at = |last: Option<&str>, event: Option<&str>| Changes {
        clocks: Clocks { last_instant: last.map(t), event_clock: event.map(t) },
        history: vec![append(&id("m"), [entry(t("10:00"), Outcome::Updated, vec![])].into_iter().collect())],
        ..Changes::default()
    };
    commit(store.as_ref(), at(Some("10:00"), None)).await.unwrap();
    commit(store.as_ref(), at(Some("09:00"), Some("08:00"))).await.unwrap();
    commit(store.as_ref(), at(None, Some("07:00"))).await.unwrap();
    let c = b.open().await.clocks().await.unwrap();
    assert_eq!((c.last_instant, c.event_clock), (Some(t("10:00")), Some(t("08:00"))));
}

pub async fn counts_and_read_models(b: &dyn Backend) {
    let store = b.open().await;
    let mut writes = Vec::new();
    for i in 0..7 {
        let mut m = meeting(&format!("m-{i}"), t("10:00"));
        if i < 3 {
            m.state = State::Terminated;
            m.ended = Some(Ended { reason: if i == 0 { Reason::Manual } else { Reason::Success }, at: t("10:30") });
        } else {
            m.timers.cap = Some(t("14:00"));
            m.timers.recheck = if i == 3 { Some(t("10:45")) } else { None };
        }
        writes.push(write(&m, None));
    }
    commit(
        store.as_ref(),
        Changes { instances: writes, effects: vec![terminate_effect("m-0", t("10:30"))], ..Changes::default() },
    )
    .await
    .unwrap();
    let c = store.counts().await.unwrap();
    assert_eq!(c.meetings, 7);
    assert_eq!(c.meetings_by_state, vec![(State::Scheduled, 4), (State::Terminated, 3)]);
    assert_eq!(c.terminated_by_reason, vec![(Reason::Success, 2), (Reason::Manual, 1)]);
    assert_eq!((c.timers_pending, c.next_timer_due), (5, Some(t("10:45"))));
    assert_eq!(c.effects_by_status, vec![(EffectStatus::Pending, 1)]);
    // Paging in id order, with filters.
    let page = |after: Option<&str>, limit| MeetingFilter { after: after.map(id), limit, ..MeetingFilter::default() };
    let ids = |ms: Vec<StoredMeeting>| ms.into_iter().map(|m| m.meeting.id.to_string()).collect::<Vec<_>>();
    assert_eq!(ids(store.meetings(&page(None, Some(3))).await.unwrap()), ["m-0", "m-1", "m-2"]);
    assert_eq!(ids(store.meetings(&page(Some("m-2"), Some(3))).await.unwrap()), ["m-3", "m-4", "m-5"]);
    assert_eq!(ids(store.meetings(&page(Some("m-5"), None)).await.unwrap()), ["m-6"]);
    let success = MeetingFilter { reason: Some(Reason::Success), ..MeetingFilter::default() };
    assert_eq!(ids(store.meetings(&success).await.unwrap()), ["m-1", "m-2"]);
    let live = MeetingFilter { state: Some(State::Scheduled), limit: Some(2), ..MeetingFilter::default() };
    assert_eq!(ids(store.meetings(&live).await.unwrap()), ["m-3", "m-4"]);
}

pub async fn forget_event_ids_of_meetings_ended_long_ago(b: &dyn Backend) {
    let store = b.open().await;
    let mut old = meeting("m-old", t("08:00"));
    old.state = State::Terminated;
    old.ended = Some(Ended { reason: Reason::Manual, at: t("09:00") });
    let mut recent = old.clone();
    recent.id = id("m-recent");
    recent.ended = Some(Ended { reason: Reason::Manual, at: t("11:00") });
    let live = meeting("m-live", t("08:00"));
    let writes = [old, recent, live].iter().map(|m| write_keys(m, vec!["e".into()], None)).collect();
    commit(store.as_ref(), Changes { instances: writes, ..Changes::default() }).await.unwrap();
    assert_eq!(store.forget_event_ids(t("10:00")).await.unwrap(), 1);
    let kept = |m: &str| {
        let store = store.clone();
        let m = id(m);
        async move { store.meeting(&m).await.unwrap().unwrap().event_ids.len() }
    };
    assert_eq!((kept("m-old").await, kept("m-recent").await, kept("m-live").await), (0, 1, 1));
}

/// Shard leases: one owner at a time, renewals keep the epoch, an expired
/// lease is taken over under the next epoch, and a checkpoint written under
/// a lost lease commits nothing.
pub async fn shard_leases_fence_checkpoints(b: &dyn Backend) {
    let store = b.open().await;
    let ttl = Span::from_secs(60);
    let a = store.acquire_lease("arn:s", "s-1", "a", ttl).await.unwrap().expect("a free shard is taken");
    assert_eq!(a, Lease { owner: "a".into(), epoch: 1 });
    assert_eq!(store.acquire_lease("arn:s", "s-1", "b", ttl).await.unwrap(), None, "a holds it");
    assert_eq!(store.acquire_lease("arn:s", "s-1", "a", ttl).await.unwrap(), Some(a.clone()), "a renewal");
    assert_eq!(store.renew_leases("arn:s", "a", ttl).await.unwrap(), vec![("s-1".to_string(), a.clone())]);
    assert!(store.renew_leases("arn:s", "b", ttl).await.unwrap().is_empty());

    // Records under the lease commit with their checkpoint.
    let mut c = checkpoint("s-1", Some("5"), 1, t("10:00"));
    c.lease = Some(a.clone());
    let m = meeting("m-lease", t("10:00"));
    commit(store.as_ref(), Changes { instances: vec![write(&m, None)], checkpoint: Some(c), ..Changes::default() })
        .await
        .unwrap();

    // a stops renewing (a pause, a partition): the lease runs out and b takes it.
    store.renew_leases("arn:s", "a", Span::from_micros(1)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let rows = store.leases(Some("arn:s")).await.unwrap();
    assert_eq!((rows.len(), rows[0].owner.as_deref(), rows[0].expired), (1, Some("a"), true), "{rows:?}");
    let b_lease = store.acquire_lease("arn:s", "s-1", "b", ttl).await.unwrap().expect("an expired lease is taken over");
    assert_eq!(b_lease, Lease { owner: "b".into(), epoch: 2 });
    assert!(store.renew_leases("arn:s", "a", ttl).await.unwrap().is_empty(), "a's renewal finds nothing to renew");

    // a wakes up and commits under its old lease: refused, nothing written.
    let mut late = checkpoint("s-1", Some("9"), 4, t("10:01"));
    late.lease = Some(a.clone());
    let m2 = meeting("m-zombie", t("10:01"));
    let r = commit(
        store.as_ref(),
        Changes { instances: vec![write(&m2, None)], checkpoint: Some(late), ..Changes::default() },
    )
    .await;
    assert!(matches!(r, Err(StoreError::LeaseLost(ref s)) if s == "s-1"), "{r:?}");
    let store = b.open().await;
    assert!(store.meeting(&id("m-zombie")).await.unwrap().is_none(), "the zombie's records are not written");
    let cp = store.checkpoints(Some("arn:s")).await.unwrap();
    assert_eq!((cp[0].sequence_number.as_deref(), cp[0].records), (Some("5"), 1), "nor its checkpoint");

    // b gives it back (a clean stop): free, and the next taker gets the next epoch.
    store.release_lease("arn:s", "s-1", &a).await.unwrap();
    assert_eq!(store.leases(None).await.unwrap()[0].owner.as_deref(), Some("b"), "a's release is fenced too");
    store.release_lease("arn:s", "s-1", &b_lease).await.unwrap();
    let rows = store.leases(Some("arn:s")).await.unwrap();
    assert_eq!(rows[0].owner, None);
    let again = store.acquire_lease("arn:s", "s-1", "a", ttl).await.unwrap().unwrap();
    assert_eq!(again.epoch, 3);
    assert!(store.leases(Some("other")).await.unwrap().is_empty());
}

/// Workers announce themselves; one that stops is no longer live.
pub async fn workers_are_live_while_they_heartbeat(b: &dyn Backend) {
    let store = b.open().await;
    let w = |id: &str| WorkerInfo { id: id.into(), host: "h".into(), pid: 7, started_at: t("10:00") };
    store.heartbeat(&w("w-1"), Span::from_secs(60)).await.unwrap();
    let seen = store.heartbeat(&w("w-2"), Span::from_secs(60)).await.unwrap();
    assert_eq!(seen.iter().map(|r| (r.info.id.as_str(), r.live)).collect::<Vec<_>>(), [("w-1", true), ("w-2", true)]);
    assert_eq!(seen[0].info, w("w-1"));
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let store = b.open().await;
    store.heartbeat(&w("w-2"), Span::from_secs(60)).await.unwrap();
    let seen = store.workers(Span::from_millis(200)).await.unwrap();
    assert_eq!(seen.iter().map(|r| (r.info.id.as_str(), r.live)).collect::<Vec<_>>(), [("w-1", false), ("w-2", true)]);
}

/// The orphan sweep's log: every field back, newest first, across a reopen.
pub async fn the_sweep_log_keeps_findings_newest_first(b: &dyn Backend) {
    use spindown::store::{SweepAction, SweepFinding};
    let store = b.open().await;
    assert!(store.sweep_log(10).await.unwrap().is_empty());
    let f = |n: i64, action| SweepFinding {
        at: t("10:00").saturating_add(Span::from_secs(n)),
        instance_id: format!("i-0000000{n}"),
        meeting_id: format!("m-{n}"),
        launched_at: (n % 2 == 0).then(|| t("09:00")),
        action,
        detail: format!("finding {n}"),
    };
    let all = [f(1, SweepAction::Terminated), f(2, SweepAction::Reported), f(3, SweepAction::Refused)];
    store.record_sweep(&all[..2]).await.unwrap();
    store.record_sweep(&all[2..]).await.unwrap();
    let store = b.open().await;
    assert_eq!(store.sweep_log(10).await.unwrap(), [all[2].clone(), all[1].clone(), all[0].clone()]);
    assert_eq!(store.sweep_log(1).await.unwrap(), [all[2].clone()]);
}

/// A live registration under an identity refuses another process; a dead
/// one (older than the time-to-live) or the same process does not, nor a
/// caller that knows the other is gone.
pub async fn one_identity_one_process(b: &dyn Backend) {
    let store = b.open().await;
    let ttl = Span::from_secs(2);
    let first = WorkerInfo { id: "pod-1".into(), host: "h1".into(), pid: 10, started_at: t("10:00") };
    assert!(store.claim_worker(&first, ttl, false).await.unwrap().is_none(), "a new identity is free");
    assert!(store.claim_worker(&first, ttl, false).await.unwrap().is_none(), "the same process again (a reconnect)");
    let second = WorkerInfo { id: "pod-1".into(), host: "h2".into(), pid: 20, started_at: t("10:01") };
    let other = store.claim_worker(&second, ttl, false).await.unwrap().expect("refused: pod-1 is live elsewhere");
    assert_eq!((other.info.host.as_str(), other.info.pid, other.live), ("h1", 10, true));
    let still = store.workers(ttl).await.unwrap();
    assert_eq!(still.iter().find(|w| w.info.id == "pod-1").unwrap().info.pid, 10, "the refused one wrote nothing");
    assert!(store.claim_worker(&second, ttl, true).await.unwrap().is_none(), "taken over by one that knows");
    let again = WorkerInfo { pid: 30, ..second.clone() };
    assert!(store.claim_worker(&again, ttl, false).await.unwrap().is_some(), "now pod-1 is h2's");
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert!(store.claim_worker(&again, ttl, false).await.unwrap().is_none(), "a dead registration is taken over");
}

/// Retention deletes terminated meetings (row, history, outbox) that ended
/// before the cut-off and whose effects are done — never a live meeting, one
/// that ended later, or one whose effect is not done — and old log rows; the
/// prune log says what went.
pub async fn retention_deletes_ended_meetings_and_old_rows_only(b: &dyn Backend) {
    use spindown::store::Retained;
    let store = b.open().await;
    let ended = |name: &str, at: &str| {
        let mut m = meeting(name, t("08:00"));
        m.state = State::Terminated;
        m.ended = Some(Ended { reason: Reason::NoShowTimeout, at: t(at) });
        m
    };
    let mut writes = vec![];
    for (name, at) in
        [("old-1", "09:00"), ("old-2", "09:30"), ("old-3", "09:30"), ("failed", "09:10"), ("new", "11:00")]
    {
        writes.push(write(&ended(name, at), None));
    }
    writes.push(write(&meeting("live", t("08:00")), None));
    let history = ["old-1", "old-2", "old-3", "failed", "new", "live"]
        .iter()
        .map(|n| append(&id(n), vec![entry(t("09:00"), Outcome::Created, vec![])].into_iter().collect()))
        .collect();
    let effects = ["old-1", "old-2", "old-3", "failed", "new"]
        .iter()
        .map(|n| {
            let mut e = terminate_effect(n, t("09:00"));
            e.completed = *n != "failed";
            e
        })
        .collect();
    let dead_letters = vec![dead(b"old", t("09:00")), dead(b"new", t("11:00"))];
    commit(store.as_ref(), Changes { instances: writes, history, effects, dead_letters, ..Changes::default() })
        .await
        .unwrap();
    store
        .record_gap(&Gap {
            stream_arn: "arn:s".into(),
            shard_id: "s-1".into(),
            at: t("09:00"),
            detail: "trimmed".into(),
        })
        .await
        .unwrap();
    assert!(store.prune_log().await.unwrap().is_none(), "nothing pruned yet");

    let cut = t("10:00");
    let page = store.ended_before(cut, None, 2).await.unwrap();
    assert_eq!(
        page,
        vec![(t("09:00"), "old-1".into()), (t("09:30"), "old-2".into())],
        "oldest first, done effects only"
    );
    let rest = store.ended_before(cut, page.last(), 10).await.unwrap();
    assert_eq!(rest, vec![(t("09:30"), "old-3".into())], "keyset paging past equal end times");
    let ids: Vec<String> = page.iter().chain(&rest).map(|(_, i)| i.clone()).collect();
    // An id that did not end before the cut-off is refused even if named.
    let mut asked = ids.clone();
    asked.push("new".into());
    let d = store.delete_instances(&asked, cut, t("12:00")).await.unwrap();
    assert_eq!((d.meetings, d.history, d.effects), (3, 4, 4), "3 meetings (and new's history and outbox row, named)");
    let store = b.open().await;
    for gone in ["old-1", "old-2", "old-3"] {
        assert!(store.meeting(&id(gone)).await.unwrap().is_none(), "{gone} deleted");
        assert!(store.history(&id(gone)).await.unwrap().is_empty(), "{gone}'s history deleted");
    }
    for kept in ["failed", "new", "live"] {
        assert!(store.meeting(&id(kept)).await.unwrap().is_some(), "{kept} kept");
    }
    assert_eq!(store.history(&id("failed")).await.unwrap().len(), 1);
    let outbox = store.effects(&EffectFilter::default()).await.unwrap();
    assert_eq!(outbox.iter().map(|e| e.meeting_id.as_str()).collect::<Vec<_>>(), ["failed"], "the pending one stays");
    let log = store.prune_log().await.unwrap().expect("logged");
    assert_eq!((log.through, log.meetings, log.last_at), (cut, 3, t("12:00")));
    assert!(store.ended_before(cut, None, 10).await.unwrap().is_empty(), "nothing left to prune");

    assert_eq!(store.prunable(Retained::DeadLetters, cut).await.unwrap(), 1);
    assert_eq!(store.prune(Retained::DeadLetters, cut, 10).await.unwrap(), 1);
    assert_eq!(store.prune(Retained::DeadLetters, cut, 10).await.unwrap(), 0, "a second prune deletes nothing");
    let left = store.dead_letters(&Page { after: None, limit: 10 }).await.unwrap();
    assert_eq!(left.iter().map(|d| d.raw.as_slice()).collect::<Vec<_>>(), [b"new".as_slice()]);
    assert_eq!(store.prune(Retained::StreamGaps, cut, 10).await.unwrap(), 1);
    assert!(store.gaps().await.unwrap().is_empty());
    let w = WorkerInfo { id: "gone".into(), host: "h".into(), pid: 1, started_at: t("09:00") };
    store.heartbeat(&w, Span::from_secs(10)).await.unwrap();
    assert_eq!(
        store.prune(Retained::Workers, Timestamp::now().saturating_add(Span::from_secs(-3600)), 10).await.unwrap(),
        0,
        "seen just now"
    );
    assert_eq!(
        store.prune(Retained::Workers, Timestamp::now().saturating_add(Span::from_secs(1)), 10).await.unwrap(),
        1
    );
}

/// The console's pages read the outbox and the dead letters newest first, a page at a time.
pub async fn recent_rows_come_newest_first(b: &dyn Backend) {
    let store = b.open().await;
    let effects = (0..7).map(|i| terminate_effect(&format!("m-{i}"), t("10:00"))).collect();
    let dead_letters = (0..5).map(|i| dead(format!("d{i}").as_bytes(), t("10:00"))).collect();
    commit(store.as_ref(), Changes { effects, dead_letters, ..Changes::default() }).await.unwrap();
    let all = EffectFilter::default();
    let first = store.recent_effects(&all, None, 3).await.unwrap();
    assert_eq!(first.iter().map(|e| e.meeting_id.as_str()).collect::<Vec<_>>(), ["m-6", "m-5", "m-4"]);
    let next = store.recent_effects(&all, Some(first[2].id), 3).await.unwrap();
    assert_eq!(next.iter().map(|e| e.meeting_id.as_str()).collect::<Vec<_>>(), ["m-3", "m-2", "m-1"]);
    let done = EffectFilter { status: Some(EffectStatus::Done), ..EffectFilter::default() };
    assert!(store.recent_effects(&done, None, 3).await.unwrap().is_empty(), "no done rows here");
    let of_m2 = EffectFilter { meeting: Some(id("m-2")), ..EffectFilter::default() };
    assert_eq!(store.recent_effects(&of_m2, None, 3).await.unwrap().len(), 1, "by meeting");
    let d = store.recent_dead_letters(None, 2).await.unwrap();
    assert_eq!(d.iter().map(|d| d.raw.clone()).collect::<Vec<_>>(), [b"d4".to_vec(), b"d3".to_vec()]);
    let d = store.recent_dead_letters(Some(d[1].id), 10).await.unwrap();
    assert_eq!(d.len(), 3);
}

/// A meeting is found by each of its instance ids (its search attributes) —
/// by a lookup, as soon as it is committed, after a reopen, and no longer once
/// retention deleted it; an instance gained later is found too.
pub async fn meetings_are_found_by_their_search_attributes(b: &dyn Backend) {
    use spindown::meeting::SEARCH_INSTANCE;
    let store = b.open().await;
    let (t1, t2, t3) = ("i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c");
    let mut one = meeting("one", t("08:00"));
    one.instances = [t1, t2].iter().map(|i| InstanceId::parse(i).unwrap()).collect();
    let mut two = meeting("two", t("08:00"));
    two.instances = [t2].iter().map(|i| InstanceId::parse(i).unwrap()).collect();
    commit(store.as_ref(), Changes { instances: vec![write(&one, None), write(&two, None)], ..Changes::default() })
        .await
        .unwrap();
    let found = |v: &'static str| {
        let store = store.clone();
        async move { store.search(SEARCH_INSTANCE, v, 10).await.unwrap() }
    };
    assert_eq!(found(t1).await, [id("one")]);
    assert_eq!(found(t2).await, [id("one"), id("two")], "in id order");
    assert!(found(t3).await.is_empty());
    assert_eq!(store.search(SEARCH_INSTANCE, t2, 1).await.unwrap(), [id("one")], "at most the limit");
    assert!(store.search("no_such_attribute", t1, 10).await.unwrap().is_empty());

    // A later write adds an instance; what was indexed stays.
    let mut again = one.clone();
    again.instances.insert(InstanceId::parse(t3).unwrap());
    again.version = 2;
    again.state = State::Terminated;
    again.ended = Some(Ended { reason: Reason::NoShowTimeout, at: t("09:00") });
    commit(store.as_ref(), Changes { instances: vec![write(&again, Some(1))], ..Changes::default() }).await.unwrap();
    let store = b.open().await;
    assert_eq!(store.search(SEARCH_INSTANCE, t3, 10).await.unwrap(), [id("one")], "after a reopen");
    assert_eq!(store.search(SEARCH_INSTANCE, t1, 10).await.unwrap(), [id("one")]);

    // Retention deletes the meeting, and with it what finds it.
    let d = store.delete_instances(&["one".into()], t("10:00"), t("12:00")).await.unwrap();
    assert_eq!(d.meetings, 1);
    for v in [t1, t3] {
        assert!(store.search(SEARCH_INSTANCE, v, 10).await.unwrap().is_empty(), "{v} of a deleted meeting");
    }
    assert_eq!(store.search(SEARCH_INSTANCE, t2, 10).await.unwrap(), [id("two")]);
}

/// A bulk load may leave its meetings' search attributes out of its units of
/// work and index them all at its end, in one pass.
pub async fn a_bulk_load_indexes_its_search_attributes_at_its_end(b: &dyn Backend) {
    use spindown::meeting::SEARCH_INSTANCE;
    let store = b.open().await;
    let inst = "i-0000000000000000d";
    let mut m = meeting("bulk", t("08:00"));
    m.instances.insert(InstanceId::parse(inst).unwrap());
    commit(store.as_ref(), Changes { instances: vec![write(&m, None)], defer_search: true, ..Changes::default() })
        .await
        .unwrap();
    store.index_search().await.unwrap();
    assert_eq!(store.search(SEARCH_INSTANCE, inst, 10).await.unwrap(), [id("bulk")]);
    store.index_search().await.unwrap();
    assert_eq!(store.search(SEARCH_INSTANCE, inst, 10).await.unwrap(), [id("bulk")], "indexing again adds nothing");
}

/// Through the engine (a worker's units of work, not resident): a new
/// meeting is found by its instance at once, an instance a later record
/// brings is found too, and a record that adds none leaves the index alone.
pub async fn the_engine_indexes_a_meeting_when_it_gains_an_instance(b: &dyn Backend) {
    use spindown::meeting::SEARCH_INSTANCE;
    let clock = ManualClock::new(Timestamp::EPOCH);
    let e = engine(b.open().await, &clock).await;
    let (teacher, student) = ("i-0000000000000000e", "i-0000000000000000f");
    let first =
        rec(Some("s1"), "INSERT", Some(t("10:00")), "m-s", img("10:30", json!({"teacher_ec2_id": {"S": teacher}})));
    e.apply(items(&[first])).await.unwrap();
    assert_eq!(e.store().search(SEARCH_INSTANCE, teacher, 10).await.unwrap(), [id("m-s")]);
    assert!(e.store().search(SEARCH_INSTANCE, student, 10).await.unwrap().is_empty());
    let more = rec(
        Some("s2"),
        "MODIFY",
        Some(t("10:01")),
        "m-s",
        img("10:30", json!({"teacher_ec2_id": {"S": teacher}, "student_ec2_id": {"S": student}})),
    );
    e.apply(items(&[more])).await.unwrap();
    let store = b.open().await;
    for i in [teacher, student] {
        assert_eq!(store.search(SEARCH_INSTANCE, i, 10).await.unwrap(), [id("m-s")], "{i}");
    }
}

/// A meeting's start is a search attribute: meetings are found by a range of
/// starts, in start order (then id), a page at a time; a start that moves is
/// found at its new value only.
pub async fn meetings_are_found_by_when_they_start(b: &dyn Backend) {
    let store = b.open().await;
    let mut ms = Vec::new();
    for (name, start) in [("a", "09:00"), ("b", "09:30"), ("c", "09:30"), ("d", "10:00"), ("e", "11:00")] {
        let mut m = meeting(name, t("08:00"));
        m.facts.meet_time = Some(t(start));
        ms.push(m);
    }
    commit(store.as_ref(), Changes { instances: ms.iter().map(|m| write(m, None)).collect(), ..Changes::default() })
        .await
        .unwrap();
    let names = |v: &[spindown::meeting::StoredMeeting]| v.iter().map(|m| m.meeting.id.to_string()).collect::<Vec<_>>();
    let all = store.starting(t("09:00"), t("10:00"), None, 10).await.unwrap();
    assert_eq!(names(&all), ["a", "b", "c", "d"], "both ends included, in start order, ties by id");
    // Paged by the last meeting of a page, through equal starts.
    let first = store.starting(t("09:15"), t("12:00"), None, 1).await.unwrap();
    assert_eq!(names(&first), ["b"]);
    let next = store.starting(t("09:15"), t("12:00"), first.last(), 2).await.unwrap();
    assert_eq!(names(&next), ["c", "d"]);
    let last = store.starting(t("09:15"), t("12:00"), next.last(), 10).await.unwrap();
    assert_eq!(names(&last), ["e"]);
    assert!(store.starting(t("12:00"), t("13:00"), None, 10).await.unwrap().is_empty());

    // `a` moves to 10:30: found there, and no longer at 09:00.
    let mut moved = ms[0].clone();
    moved.facts.meet_time = Some(t("10:30"));
    moved.version = 2;
    commit(store.as_ref(), Changes { instances: vec![write(&moved, Some(1))], ..Changes::default() }).await.unwrap();
    let store = b.open().await;
    assert_eq!(names(&store.starting(t("08:00"), t("09:15"), None, 10).await.unwrap()), Vec::<String>::new());
    assert_eq!(names(&store.starting(t("10:00"), t("11:00"), None, 10).await.unwrap()), ["d", "a", "e"]);
}

/// The engine re-indexes a meeting whose start a record moves.
pub async fn the_engine_reindexes_a_meeting_whose_start_moves(b: &dyn Backend) {
    let clock = ManualClock::new(Timestamp::EPOCH);
    let e = engine(b.open().await, &clock).await;
    let first = rec(Some("s1"), "INSERT", Some(t("08:00")), "m-s", img("10:30", json!({})));
    e.apply(items(&[first])).await.unwrap();
    let found = |from: &str, to: &str| {
        let store = e.store().clone();
        let (from, to) = (t(from), t(to));
        async move { store.starting(from, to, None, 10).await.unwrap().len() }
    };
    assert_eq!(found("10:30", "10:30").await, 1);
    let moved = rec(Some("s2"), "MODIFY", Some(t("08:01")), "m-s", img("11:45", json!({})));
    e.apply(items(&[moved])).await.unwrap();
    assert_eq!(found("10:30", "10:30").await, 0, "not at its old start");
    assert_eq!(found("11:00", "12:00").await, 1, "at its new one");
}

pub async fn the_overview_reads_what_runs_what_ended_and_what_is_stuck(b: &dyn Backend) {
    let store = b.open().await;
    let now = t("12:00");
    let mut writes = Vec::new();
    for (i, ended) in [
        None,
        None,
        Some(("11:30", Reason::Success)),
        Some(("09:00", Reason::Manual)),
        Some(("11:59", Reason::Success)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut m = meeting(&format!("m-{i}"), t("08:00"));
        if let Some((at, reason)) = ended {
            m.state = State::Terminated;
            m.ended = Some(Ended { reason, at: t(at) });
        } else {
            m.timers.cap = Some(if i == 0 { t("11:00") } else { t("14:00") });
            if i == 1 {
                m.state = State::InProgress;
            }
        }
        writes.push(write(&m, None));
    }
    let dead = NewDeadLetter {
        at: t("11:00"),
        origin: "f:1".into(),
        kind: "not_json".into(),
        reason: "not JSON".into(),
        event_id: None,
        raw: b"{".to_vec(),
    };
    commit(
        store.as_ref(),
        Changes {
            instances: writes,
            effects: vec![terminate_effect("m-2", t("11:30"))],
            dead_letters: vec![dead],
            ..Changes::default()
        },
    )
    .await
    .unwrap();
    let o = store.overview(now).await.unwrap();
    assert_eq!(o.live_by_state, vec![("InProgress".to_string(), 1), ("Scheduled".to_string(), 1)]);
    assert_eq!(o.ended, 3);
    assert_eq!(o.ended_hour, vec![("SUCCESS".to_string(), 2)], "11:30 and 11:59, not 09:00");
    assert_eq!(o.ended_day, vec![("MANUAL".to_string(), 1), ("SUCCESS".to_string(), 2)]);
    assert_eq!(o.oldest_overdue, Some(t("11:00")), "m-0's cap is an hour overdue");
    assert_eq!(o.dead_letters_day, 1);
    assert_eq!((o.failed, o.retrying), (0, 0));
    assert!(o.failed_oldest.is_none());
    // The effect fails for good: failed, with its error.
    let claim = Claim { owner: "w".into(), now, lease: Span::from_mins(5), limit: 10, running: vec![] };
    let got = store.claim_effects(&claim).await.unwrap();
    assert_eq!(got.len(), 1);
    let fail = EffectOutcome {
        id: got[0].id,
        meeting_id: got[0].meeting_id.clone(),
        done: 0,
        status: EffectStatus::Failed,
        attempts: 1,
        last_error: Some("UnauthorizedOperation".into()),
        next_attempt_at: now,
        at: now,
        history: vec![entry(now, Outcome::EffectFailed, vec![])],
    };
    store.finish_effects("w", &[fail]).await.unwrap();
    let o = store.overview(now).await.unwrap();
    assert_eq!(o.failed, 1);
    let f = o.failed_oldest.expect("the oldest failed effect");
    assert_eq!((f.instance.as_str(), f.error.as_deref()), ("m-2", Some("UnauthorizedOperation")));
}

pub async fn held_meetings_are_read_from_the_hold_index(b: &dyn Backend) {
    let clock = ManualClock::new(t("10:00"));
    let e = engine(b.open().await, &clock).await;
    for id in ["m-h1", "m-h2"] {
        let r = rec(Some(&format!("{id}-1")), "INSERT", Some(t("10:00")), id, img("10:30", json!({})));
        e.apply(items(&[r])).await.unwrap();
    }
    use spindown::meeting::Command;
    e.command(&id("m-h1"), Command::Hold { until: t("12:00") }).await.unwrap();
    e.command(&id("m-h2"), Command::Hold { until: t("11:00") }).await.unwrap();
    let held = e.store().held(t("10:05")).await.unwrap();
    assert_eq!(held, vec![(id("m-h2"), t("11:00")), (id("m-h1"), t("12:00"))], "soonest end first");
    assert_eq!(
        e.store().held(t("11:30")).await.unwrap(),
        vec![(id("m-h1"), t("12:00"))],
        "a hold that ended is not counted"
    );
    e.command(&id("m-h1"), Command::Release).await.unwrap();
    assert_eq!(e.store().held(t("10:05")).await.unwrap(), vec![(id("m-h2"), t("11:00"))], "released");
    e.command(&id("m-h2"), Command::Terminate).await.unwrap();
    assert!(e.store().held(t("10:05")).await.unwrap().is_empty(), "an ended meeting is not held");
}
