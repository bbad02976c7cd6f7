//! The spec's transition tables, rule by rule.

use super::*;
use crate::meeting::{Image, InstanceSource, Timers};
use crate::time::Span;

fn t(hhmm: &str) -> Timestamp {
    Timestamp::parse_iso(&format!("2026-11-26T{hhmm}:00Z")).unwrap()
}

fn id(s: &str) -> MeetingId {
    MeetingId::new(s).unwrap()
}

fn img() -> Image {
    Image { meet_time: Some(t("10:00")), ..Image::default() }
}

fn change(name: EventName, at: &str, image: Option<Image>) -> Change {
    Change {
        event_id: None,
        event_name: name,
        event_time: Some(t(at)),
        meeting_id: id("m-1"),
        image,
        instance_ids: vec![
            SeenInstance { source: InstanceSource::NewTeacher, value: "i-0123456789abcdef0".into() },
            SeenInstance { source: InstanceSource::NewStudent, value: "i-89ABCDEF".into() },
        ],
    }
}

fn smart() -> Policy {
    Policy::default()
}

fn fixed() -> Policy {
    Policy { mode: Mode::Fixed, ..Policy::default() }
}

fn rec(m: Option<&Meeting>, c: Change, now: &str, p: &Policy) -> Step {
    transition(m, &Input::Record(c), t(now), p).unwrap()
}

/// A live meeting created at 10:00 (meet_time 10:00) with the given image flags.
fn meeting(p: &Policy, edit: impl FnOnce(&mut Image)) -> Meeting {
    let mut i = img();
    edit(&mut i);
    rec(None, change(EventName::Insert, "10:00", Some(i)), "10:00", p).meeting
}

fn fire(m: &Meeting, kind: TimerKind, now: &str, p: &Policy) -> Step {
    let due = m.timers.get(kind).expect("timer pending");
    transition(Some(m), &Input::Timer { kind, due }, t(now), p).unwrap()
}

#[test]
fn derived_states() {
    let p = smart();
    let cases: [(Option<&str>, bool, bool, State); 7] = [
        (None, false, false, State::Scheduled),
        (Some("SCHEDULED"), false, false, State::Scheduled),
        (Some("IN_PROGRESS"), false, false, State::InProgress),
        (Some("IN_PROGRESS"), true, false, State::Partial),
        (None, false, true, State::Partial),
        (None, true, true, State::Complete),
        (Some("IN_PROGRESS"), true, true, State::Complete),
    ];
    for (status, teacher, student, want) in cases {
        let m = meeting(&p, |i| {
            i.status = status.map(str::to_owned);
            i.teacher_data = teacher;
            i.student_data = student;
        });
        assert_eq!(m.state, want, "{status:?} {teacher} {student}");
    }
}

#[test]
fn rule_4_new_meeting_arms_safety_net_and_cap() {
    let s = rec(None, change(EventName::Insert, "09:00", Some(img())), "09:00", &smart());
    assert_eq!(s.outcome, Outcome::Created);
    assert_eq!(s.from, None);
    assert_eq!(s.meeting.timers.safety_net, Some(t("10:15")));
    assert_eq!(s.meeting.timers.cap, Some(t("14:00")));
    assert_eq!(
        s.timers,
        vec![
            TimerChange::Arm { kind: TimerKind::SafetyNet, due: t("10:15") },
            TimerChange::Arm { kind: TimerKind::Cap, due: t("14:00") }
        ]
    );
    assert!(s.effects.is_empty());
    let ids: Vec<_> = s.meeting.instances.iter().map(InstanceId::as_str).collect();
    assert_eq!(ids, ["i-0123456789abcdef0"], "the uppercase id is skipped");
    assert!(s.notes.iter().map(|n| n.to_string()).any(|n| n.contains("i-89ABCDEF") && n.contains("skipped")));
}

#[test]
fn rule_4_declared_duration_caps_earlier() {
    let p = smart();
    let m = meeting(&p, |i| i.duration = Some(Span::from_mins(30)));
    assert_eq!(m.timers.cap, Some(t("10:45")), "10:00 + 30m + 15m grace");
    let m = meeting(&p, |i| i.duration = Some(Span::from_mins(300)));
    assert_eq!(m.timers.cap, Some(t("14:00")), "max_lifetime still caps");
}

#[test]
fn rule_4_created_at_is_the_fallback_start() {
    let i = Image { meet_time: None, created_at: Some(t("09:00")), ..Image::default() };
    let s = rec(None, change(EventName::Insert, "09:00", Some(i)), "09:00", &smart());
    assert_eq!(s.meeting.timers.safety_net, Some(t("09:15")));
    // A later meet_time becomes the start and moves the pending timers.
    let i = Image { meet_time: Some(t("11:00")), created_at: Some(t("09:00")), ..Image::default() };
    let s2 = rec(Some(&s.meeting), change(EventName::Modify, "09:05", Some(i)), "09:05", &smart());
    assert_eq!(s2.meeting.timers.safety_net, Some(t("11:15")));
    assert_eq!(s2.meeting.timers.cap, Some(t("15:00")));
}

#[test]
fn rule_4_new_meeting_needs_a_start() {
    let i = Image { meet_time: None, status: Some("IN_PROGRESS".into()), ..Image::default() };
    let r = transition(None, &Input::Record(change(EventName::Insert, "10:00", Some(i))), t("10:00"), &smart());
    assert_eq!(r, Err(Rejection::NoStart(id("m-1"))));
    let r = transition(None, &Input::Record(change(EventName::Remove, "10:00", None)), t("10:00"), &smart());
    assert_eq!(r, Err(Rejection::NoStart(id("m-1"))), "REMOVE without image of an unknown meeting");
}

#[test]
fn rule_4_timers_follow_meet_time_and_duration_while_pending() {
    let p = smart();
    let m = meeting(&p, |_| {});
    let i = Image { meet_time: Some(t("11:00")), ..Image::default() };
    let s = rec(Some(&m), change(EventName::Modify, "10:05", Some(i)), "10:05", &p);
    assert_eq!(s.meeting.timers.safety_net, Some(t("11:15")));
    assert_eq!(s.meeting.timers.cap, Some(t("15:00")));
    assert!(s.notes.iter().any(|n| n.to_string().contains("re-armed safety_net")));
    // A declared duration moves only the cap.
    let i = Image { duration: Some(Span::from_mins(20)), ..img() };
    let s = rec(Some(&m), change(EventName::Modify, "10:05", Some(i)), "10:05", &p);
    assert_eq!(s.meeting.timers.safety_net, Some(t("10:15")));
    assert_eq!(s.meeting.timers.cap, Some(t("10:35")));
    assert_eq!(s.timers, vec![TimerChange::Arm { kind: TimerKind::Cap, due: t("10:35") }]);
    // An image without duration keeps the declared one.
    let s2 = rec(Some(&s.meeting), change(EventName::Modify, "10:06", Some(img())), "10:06", &p);
    assert_eq!(s2.meeting.facts.duration, Some(Span::from_mins(20)));
    assert!(s2.timers.is_empty());
}

#[test]
fn rule_4_fired_safety_net_is_not_rearmed_and_recheck_is_not_moved() {
    let p = smart();
    let m = meeting(&p, |i| i.status = Some("IN_PROGRESS".into()));
    let s = fire(&m, TimerKind::SafetyNet, "10:15", &p);
    assert_eq!(s.meeting.timers.recheck, Some(t("10:30")));
    let i = Image { meet_time: Some(t("12:00")), status: Some("IN_PROGRESS".into()), ..Image::default() };
    let s2 = rec(Some(&s.meeting), change(EventName::Modify, "10:20", Some(i)), "10:20", &p);
    assert_eq!(s2.meeting.timers.safety_net, None);
    assert_eq!(s2.meeting.timers.recheck, Some(t("10:30")));
    assert_eq!(s2.meeting.timers.cap, Some(t("16:00")));
}

#[test]
fn rule_5_remove_cancels_without_write_back() {
    let p = smart();
    let m = meeting(&p, |_| {});
    let s = rec(Some(&m), change(EventName::Remove, "10:05", None), "10:05", &p);
    assert_eq!(s.outcome, Outcome::Terminated);
    assert_eq!(s.meeting.ended, Some(Ended { reason: Reason::Cancelled, at: t("10:05") }));
    assert_eq!(
        s.effects,
        vec![Effect::Terminate { instances: vec![InstanceId::parse("i-0123456789abcdef0").unwrap()] }]
    );
    assert_eq!(s.meeting.timers, Timers::default(), "termination cancels every timer");
    assert!(s.timers.contains(&TimerChange::Disarm { kind: TimerKind::SafetyNet }));
    assert!(s.timers.contains(&TimerChange::Disarm { kind: TimerKind::Cap }));
}

#[test]
fn rule_5_remove_of_an_unknown_meeting_with_an_old_image() {
    let mut c = change(EventName::Remove, "10:03", Some(img()));
    c.instance_ids = vec![SeenInstance { source: InstanceSource::OldTeacher, value: "i-abcdef01".into() }];
    let s = rec(None, c, "10:03", &smart());
    assert_eq!(s.outcome, Outcome::Terminated);
    assert_eq!(s.meeting.ended.unwrap().reason, Reason::Cancelled);
    assert_eq!(s.effects.len(), 1);
}

#[test]
fn rule_6_external_termination() {
    let p = smart();
    let m = meeting(&p, |_| {});
    let i = Image { status: Some("TERMINATED".into()), ..img() };
    let s = rec(Some(&m), change(EventName::Modify, "10:02", Some(i)), "10:02", &p);
    assert_eq!(s.meeting.ended.unwrap().reason, Reason::External);
    assert!(s.effects.iter().all(|e| matches!(e, Effect::Terminate { .. })), "no write-back");
}

#[test]
fn rule_7_success_is_judged_at_the_event_time() {
    let p = smart();
    let m = meeting(&p, |_| {});
    let both = Image { teacher_data: true, student_data: true, ..img() };
    // Event time 10:10 (< 15 min) applied at 10:20: stays Complete.
    let s = rec(Some(&m), change(EventName::Modify, "10:10", Some(both.clone())), "10:20", &p);
    assert_eq!(s.meeting.state, State::Complete);
    assert!(s.effects.is_empty());
    // Event time exactly 15 min past: SUCCESS at the engine instant.
    let s = rec(Some(&m), change(EventName::Modify, "10:15", Some(both)), "10:16", &p);
    assert_eq!(s.meeting.ended, Some(Ended { reason: Reason::Success, at: t("10:16") }));
    assert!(s.effects.contains(&Effect::WriteBack { reason: Reason::Success, terminated_at: t("10:16") }));
}

#[test]
fn rule_7_uses_the_clock_when_the_record_has_no_time() {
    let p = smart();
    let m = meeting(&p, |_| {});
    let mut c = change(EventName::Modify, "10:00", Some(Image { teacher_data: true, student_data: true, ..img() }));
    c.event_time = None;
    let s = rec(Some(&m), c, "10:20", &p);
    assert_eq!(s.meeting.ended.unwrap().reason, Reason::Success);
}

#[test]
fn rule_8_state_follows_the_latest_image() {
    let p = smart();
    let m = meeting(&p, |i| {
        i.teacher_data = true;
        i.student_data = true;
    });
    assert_eq!(m.state, State::Complete);
    // An image without data flags clears them (the image is the whole item).
    let s = rec(Some(&m), change(EventName::Modify, "10:05", Some(img())), "10:05", &p);
    assert_eq!(s.meeting.state, State::Scheduled);
    // A record without an image keeps them.
    let s = rec(Some(&m), change(EventName::Modify, "10:05", None), "10:05", &p);
    assert_eq!(s.meeting.state, State::Complete);
    assert_eq!(s.outcome, Outcome::Updated);
}

#[test]
fn rule_3_terminated_meetings_ignore_records() {
    let p = smart();
    let m = meeting(&p, |_| {});
    let ended = rec(Some(&m), change(EventName::Remove, "10:05", None), "10:05", &p).meeting;
    let mut c = change(EventName::Modify, "10:06", Some(img()));
    c.instance_ids = vec![SeenInstance { source: InstanceSource::NewTeacher, value: "i-aaaaaaaa".into() }];
    let s = rec(Some(&ended), c, "10:06", &p);
    assert_eq!(s.outcome, Outcome::Ignored);
    assert_eq!(s.meeting, ended, "nothing changes, not even the instance set");
    assert!(s.effects.is_empty() && s.timers.is_empty());
}

#[test]
fn safety_net_table() {
    let p = smart();
    let cases: [(Option<&str>, bool, bool, Option<Reason>); 4] = [
        (None, false, false, Some(Reason::NoShowTimeout)),
        (Some("IN_PROGRESS"), false, false, None),
        (None, true, false, Some(Reason::PartialNoShowTimeout)),
        (None, true, true, Some(Reason::FifteenMinSuccess)),
    ];
    for (status, teacher, student, want) in cases {
        let m = meeting(&p, |i| {
            i.status = status.map(str::to_owned);
            i.teacher_data = teacher;
            i.student_data = student;
        });
        let s = fire(&m, TimerKind::SafetyNet, "10:15", &p);
        assert_eq!(s.meeting.ended.map(|e| e.reason), want, "{status:?} {teacher} {student}");
        assert_eq!(s.meeting.timers.safety_net, None);
        if let Some(reason) = want {
            assert_eq!(s.meeting.ended.unwrap().at, t("10:15"));
            assert!(s.effects.contains(&Effect::WriteBack { reason, terminated_at: t("10:15") }));
        } else {
            assert_eq!(s.meeting.state, State::InProgress);
            assert_eq!(s.meeting.timers.recheck, Some(t("10:30")));
        }
    }
}

#[test]
fn recheck_is_armed_from_the_instant_it_fired_and_repeats() {
    let p = smart();
    let m = meeting(&p, |i| i.status = Some("IN_PROGRESS".into()));
    let late = fire(&m, TimerKind::SafetyNet, "10:40", &p).meeting;
    assert_eq!(late.timers.recheck, Some(t("10:55")), "late fire → recheck from the fire instant");
    let again = fire(&late, TimerKind::Recheck, "10:55", &p).meeting;
    assert_eq!(again.timers.recheck, Some(t("11:10")));
    // Data arrives from one side: the next re-check ends it as a partial no-show.
    let one = Image { status: Some("IN_PROGRESS".into()), teacher_data: true, ..img() };
    let partial = rec(Some(&again), change(EventName::Modify, "11:00", Some(one)), "11:00", &p).meeting;
    let s = fire(&partial, TimerKind::Recheck, "11:10", &p);
    assert_eq!(s.meeting.ended.unwrap().reason, Reason::PartialNoShowTimeout);
}

#[test]
fn cap_ends_any_live_state() {
    let p = smart();
    for status in [None, Some("IN_PROGRESS")] {
        let m = meeting(&p, |i| i.status = status.map(str::to_owned));
        let s = fire(&m, TimerKind::Cap, "14:00", &p);
        assert_eq!(s.meeting.ended, Some(Ended { reason: Reason::MaxLifetime, at: t("14:00") }));
        assert_eq!(s.meeting.timers, Timers::default());
    }
}

#[test]
fn stale_timers_are_ignored() {
    let p = smart();
    let m = meeting(&p, |_| {});
    let s =
        transition(Some(&m), &Input::Timer { kind: TimerKind::SafetyNet, due: t("10:00") }, t("10:00"), &p).unwrap();
    assert_eq!(s.outcome, Outcome::Ignored);
    let s = transition(Some(&m), &Input::Timer { kind: TimerKind::Recheck, due: t("10:00") }, t("10:00"), &p).unwrap();
    assert_eq!(s.outcome, Outcome::Ignored);
}

#[test]
fn fixed_mode_one_timer_and_no_early_success() {
    let p = fixed();
    let m = meeting(&p, |i| {
        i.teacher_data = true;
        i.student_data = true;
    });
    assert_eq!(m.timers, Timers { fixed: Some(t("11:00")), ..Timers::default() });
    let both = Image { teacher_data: true, student_data: true, ..img() };
    let s = rec(Some(&m), change(EventName::Modify, "10:30", Some(both)), "10:30", &p);
    assert_eq!(s.meeting.state, State::Complete, "data never ends a meeting early");
    let moved = Image { meet_time: Some(t("11:00")), ..img() };
    let s = rec(Some(&m), change(EventName::Modify, "10:30", Some(moved)), "10:30", &p);
    assert_eq!(s.meeting.timers.fixed, Some(t("12:00")), "the fixed timer follows the start");
    let s = fire(&m, TimerKind::Fixed, "11:00", &p);
    assert_eq!(s.meeting.ended.unwrap().reason, Reason::FixedDuration);
    assert!(s.effects.iter().any(|e| matches!(e, Effect::WriteBack { .. })));
    // Rules 5 and 6 still apply.
    let s = rec(Some(&m), change(EventName::Remove, "10:10", None), "10:10", &p);
    assert_eq!(s.meeting.ended.unwrap().reason, Reason::Cancelled);
}

#[test]
fn manual_termination() {
    let p = smart();
    let m = meeting(&p, |_| {});
    let s = transition(Some(&m), &Input::Command(Command::Terminate), t("10:07"), &p).unwrap();
    assert_eq!(s.meeting.ended, Some(Ended { reason: Reason::Manual, at: t("10:07") }));
    assert!(s.effects.contains(&Effect::WriteBack { reason: Reason::Manual, terminated_at: t("10:07") }));
    let again = transition(Some(&s.meeting), &Input::Command(Command::Terminate), t("10:08"), &p).unwrap();
    assert_eq!(again.outcome, Outcome::Ignored);
    assert_eq!(transition(None, &Input::Command(Command::Terminate), t("10:08"), &p), Err(Rejection::UnknownMeeting));
}

#[test]
fn termination_without_instances_queues_only_the_write_back() {
    let p = smart();
    let mut c = change(EventName::Insert, "10:00", Some(img()));
    c.instance_ids.clear();
    let m = rec(None, c, "10:00", &p).meeting;
    let s = fire(&m, TimerKind::SafetyNet, "10:15", &p);
    assert_eq!(s.effects, vec![Effect::WriteBack { reason: Reason::NoShowTimeout, terminated_at: t("10:15") }]);
}

#[test]
fn schedule_command_creates_and_moves_a_meeting() {
    let p = smart();
    let cmd = |at: &str| Command::Schedule {
        id: id("m-9"),
        meet_time: t(at),
        instances: vec![SeenInstance { source: InstanceSource::Teacher, value: "i-0123456789abcdef0".into() }],
        duration: None,
    };
    let s = transition(None, &Input::Command(cmd("10:00")), t("09:00"), &p).unwrap();
    assert_eq!(s.outcome, Outcome::Created);
    assert_eq!(s.meeting.id, id("m-9"));
    assert_eq!(s.meeting.timers.safety_net, Some(t("10:15")));
    let s2 = transition(Some(&s.meeting), &Input::Command(cmd("11:00")), t("09:30"), &p).unwrap();
    assert_eq!(s2.meeting.timers.safety_net, Some(t("11:15")));
    assert_eq!(s2.meeting.instances.len(), 1);
}

#[test]
fn versions_move_only_on_change() {
    let p = smart();
    let m = meeting(&p, |_| {});
    assert_eq!(m.version, 1);
    let s = rec(Some(&m), change(EventName::Modify, "10:01", Some(img())), "10:01", &p);
    assert_eq!(s.meeting.version, 2);
    let ended = rec(Some(&m), change(EventName::Remove, "10:01", None), "10:01", &p).meeting;
    let s = rec(Some(&ended), change(EventName::Modify, "10:02", None), "10:02", &p);
    assert_eq!(s.meeting.version, ended.version);
}

#[test]
fn instance_ids_must_match_in_full() {
    for good in ["i-0123456789abcdef0", "i-89abcdef"] {
        assert!(InstanceId::parse(good).is_some(), "{good}");
    }
    for bad in
        ["i-0123456789ABCDEF0", "i-1234567890ab", "i-cccccccc\n", "i-", "x-89abcdef", "i-89abcdefg", "", " i-89abcdef"]
    {
        assert!(InstanceId::parse(bad).is_none(), "{bad:?}");
    }
}

#[test]
fn reasons_and_states_round_trip_their_strings() {
    for r in Reason::ALL {
        assert_eq!(r.as_str().parse::<Reason>().unwrap(), *r);
    }
    for s in State::ALL {
        assert_eq!(s.as_str().parse::<State>().unwrap(), *s);
    }
    assert_eq!(Reason::FifteenMinSuccess.to_string(), "15_MIN_SUCCESS");
    assert!("nope".parse::<Reason>().unwrap_err().to_string().contains("NO_SHOW_TIMEOUT"));
}

// ---------------------------------------------------------------------------
// Operator commands that keep a meeting alive.

fn cmd(m: &Meeting, c: Command, now: &str, p: &Policy) -> Result<Step, Rejection> {
    transition(Some(m), &Input::Command(c), t(now), p)
}

fn refused(r: Result<Step, Rejection>) -> String {
    match r {
        Err(Rejection::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn extend_moves_the_end_of_life_timer_later_never_earlier() {
    let p = smart();
    let m = meeting(&p, |_| {});
    assert_eq!(m.timers.cap, Some(t("14:00")));
    let s = cmd(&m, Command::Extend(Extend::By(Span::from_hours(1))), "10:05", &p).unwrap();
    assert_eq!(s.meeting.timers.cap, Some(t("15:00")));
    assert_eq!(s.meeting.extended_until, Some(t("15:00")));
    assert!(s.notes.iter().any(|n| matches!(n, Note::Extended { by: Some(_), .. })), "{:?}", s.notes);
    assert!(s.timers.contains(&TimerChange::Arm { kind: TimerKind::Cap, due: t("15:00") }));
    // A later start change moves the cap only later, never before T.
    let earlier = Image { meet_time: Some(t("09:30")), ..img() };
    let s2 = rec(Some(&s.meeting), change(EventName::Modify, "10:10", Some(earlier)), "10:10", &p);
    assert_eq!(s2.meeting.timers.cap, Some(t("15:00")), "not pulled back before T");
    let later = Image { meet_time: Some(t("12:00")), ..img() };
    let s3 = rec(Some(&s2.meeting), change(EventName::Modify, "10:11", Some(later)), "10:11", &p);
    assert_eq!(s3.meeting.timers.cap, Some(t("16:00")), "moved later by the start");
    // Refusals: not later than the current due, in the past, more than 7 days past the due.
    assert!(refused(cmd(&m, Command::Extend(Extend::Until(t("13:00"))), "10:05", &p)).contains("never shortens"));
    assert!(refused(cmd(&m, Command::Extend(Extend::Until(t("10:01"))), "10:05", &p)).contains("not after now"));
    let far = t("14:00").saturating_add(Span::from_hours(7 * 24 + 1));
    assert!(refused(cmd(&m, Command::Extend(Extend::Until(far)), "10:05", &p)).contains("more than 7 days"));
    let edge = t("14:00").saturating_add(Span::from_hours(7 * 24));
    assert!(cmd(&m, Command::Extend(Extend::Until(edge)), "10:05", &p).is_ok(), "exactly 7 days is allowed");
    // In fixed mode the fixed timer is the one extended.
    let f = meeting(&fixed(), |_| {});
    let s = cmd(&f, Command::Extend(Extend::By(Span::from_mins(30))), "10:05", &fixed()).unwrap();
    assert_eq!(s.meeting.timers.fixed, Some(t("11:30")));
}

#[test]
fn a_hold_turns_timers_that_fall_due_into_a_look_at_its_end() {
    let p = smart();
    let m = meeting(&p, |_| {});
    let held = cmd(&m, Command::Hold { until: t("11:00") }, "10:05", &p).unwrap().meeting;
    assert!(held.held_at(t("10:30")) && !held.held_at(t("11:00")));
    // The safety net at 10:15 falls during the hold: a re-check at 11:00, not NO_SHOW.
    let s = fire(&held, TimerKind::SafetyNet, "10:15", &p);
    assert_eq!(s.meeting.ended, None);
    assert_eq!(s.meeting.timers.recheck, Some(t("11:00")));
    assert_eq!(s.meeting.timers.safety_net, None);
    // At the hold's end the re-check judges the meeting as the safety net would have.
    let s2 = fire(&s.meeting, TimerKind::Recheck, "11:00", &p);
    assert_eq!(s2.meeting.ended.map(|e| e.reason), Some(Reason::NoShowTimeout));
    // A REMOVE still ends a held meeting.
    let s3 = rec(Some(&s.meeting), change(EventName::Remove, "10:20", None), "10:20", &p);
    assert_eq!(s3.meeting.ended.map(|e| e.reason), Some(Reason::Cancelled));
    assert_eq!(s3.meeting.held_until(), None);
    // The cap due during a hold waits for its end.
    let short = Policy { max_lifetime: Span::from_mins(20), ..smart() };
    let m = meeting(&short, |i| i.status = Some("IN_PROGRESS".into()));
    let held = cmd(&m, Command::Hold { until: t("10:50") }, "10:05", &short).unwrap().meeting;
    let s = fire(&held, TimerKind::Cap, "10:20", &short);
    assert_eq!((s.meeting.ended, s.meeting.timers.cap), (None, Some(t("10:50"))));
    let s = fire(&s.meeting, TimerKind::Cap, "10:50", &short);
    assert_eq!(s.meeting.ended, Some(Ended { reason: Reason::MaxLifetime, at: t("10:50") }));
}

#[test]
fn release_fires_what_the_hold_moved_and_refusals_change_nothing() {
    let p = smart();
    let m = meeting(&p, |_| {});
    let held = cmd(&m, Command::Hold { until: t("11:00") }, "10:05", &p).unwrap().meeting;
    let moved = fire(&held, TimerKind::SafetyNet, "10:15", &p).meeting;
    let r = cmd(&moved, Command::Release, "10:20", &p).unwrap();
    assert_eq!(r.meeting.timers.recheck, Some(t("10:20")), "re-armed now");
    assert_eq!(r.meeting.hold, None);
    assert!(r
        .notes
        .iter()
        .any(|n| matches!(n, Note::Released { rearmed, .. } if rearmed == &vec![TimerKind::Recheck])));
    // A second hold replaces the first; what the first moved follows the new end.
    let again = cmd(&moved, Command::Hold { until: t("10:40") }, "10:20", &p).unwrap().meeting;
    assert_eq!((again.hold.as_ref().map(|h| h.until), again.timers.recheck), (Some(t("10:40")), Some(t("10:40"))));
    // Refusals.
    assert!(refused(cmd(&m, Command::Release, "10:20", &p)).contains("is not held"));
    assert!(refused(cmd(&held, Command::Release, "11:30", &p)).contains("hold ended at"));
    assert!(refused(cmd(&m, Command::Hold { until: t("10:00") }, "10:05", &p)).contains("not after now"));
    let far = t("10:05").saturating_add(Span::from_hours(25));
    assert!(refused(cmd(&m, Command::Hold { until: far }, "10:05", &p)).contains("more than 24 h"));
    let ended = fire(&m, TimerKind::SafetyNet, "10:15", &p).meeting;
    for c in [Command::Hold { until: t("11:00") }, Command::Release, Command::Extend(Extend::By(Span::from_hours(1)))] {
        let why = refused(cmd(&ended, c, "10:20", &p));
        assert!(why.contains("was terminated at") && why.contains("NO_SHOW_TIMEOUT"), "{why}");
    }
    assert_eq!(cmd(&m, Command::Release, "10:20", &p).err().map(|_| ()), Some(()));
    assert_eq!(transition(None, &Input::Command(Command::Release), t("10:20"), &p), Err(Rejection::UnknownMeeting));
}
