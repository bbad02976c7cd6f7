//! The Lambdas' rules, one case each (`spec/whatif.md`, "The legacy model").

use super::*;
use crate::meeting::{Change, EventName, Image, MeetingId};

fn t(hm: &str) -> Timestamp {
    Timestamp::parse_iso(&format!("2026-11-26T{hm}:00Z")).unwrap()
}

fn change(event: EventName, at: &str, image: Option<Image>) -> Change {
    Change {
        event_id: None,
        event_name: event,
        event_time: Some(t(at)),
        meeting_id: MeetingId::new("m").unwrap(),
        image,
        instance_ids: Vec::new(),
    }
}

fn img() -> Image {
    Image { meet_time: Some(t("10:00")), ..Image::default() }
}

fn data(teacher: bool, student: bool) -> Image {
    Image { teacher_attr: teacher, student_attr: student, ..img() }
}

#[test]
fn the_first_record_arms_the_net_at_the_start_known_then_and_later_ones_do_not() {
    let s = record(None, &change(EventName::Insert, "09:00", Some(img())), t("09:00"));
    assert_eq!(s.safety_net, Some(t("10:15")));
    let moved = Image { meet_time: Some(t("11:00")), ..Image::default() };
    let s = record(Some(s.meeting), &change(EventName::Modify, "09:30", Some(moved)), t("09:30"));
    assert_eq!(s.safety_net, None, "a reschedule never moves the one-shot");
}

#[test]
fn the_net_decides_by_the_data_attributes_present() {
    for ((teacher, student), reason) in [
        ((false, false), Some(Reason::NoShowTimeout)),
        ((true, false), Some(Reason::PartialNoShowTimeout)),
        ((false, true), Some(Reason::PartialNoShowTimeout)),
        ((true, true), Some(Reason::FifteenMinSuccess)),
    ] {
        let s = record(None, &change(EventName::Insert, "09:00", Some(data(teacher, student))), t("09:00"));
        let m = safety_net(s.meeting, t("10:15"));
        assert_eq!(m.ended.map(|e| e.reason), reason, "data {teacher}/{student}");
        assert_eq!(m.ended.map(|e| e.at), reason.map(|_| t("10:15")));
    }
}

#[test]
fn in_progress_without_data_and_a_removed_row_are_left_running() {
    let running = Image { status: Some("IN_PROGRESS".into()), ..img() };
    let s = record(None, &change(EventName::Insert, "09:00", Some(running)), t("09:00"));
    assert_eq!(safety_net(s.meeting, t("10:15")).ended, None);
    let s = record(None, &change(EventName::Insert, "09:00", Some(img())), t("09:00"));
    let s = record(Some(s.meeting), &change(EventName::Remove, "09:10", Some(img())), t("09:10"));
    assert_eq!(s.meeting.ended, None, "a REMOVE is never acted on");
    assert_eq!(safety_net(s.meeting, t("10:15")).ended, None, "the Lambda finds no item");
}

#[test]
fn the_terminator_needs_a_modify_both_attributes_and_fifteen_minutes_by_event_time() {
    let base = record(None, &change(EventName::Insert, "09:00", Some(img())), t("09:00")).meeting;
    let ends = |event, at: &str, image| record(Some(base), &change(event, at, image), t(at)).meeting.ended;
    assert_eq!(ends(EventName::Modify, "10:14", Some(data(true, true))), None, "14 minutes");
    assert_eq!(ends(EventName::Modify, "10:15", Some(data(true, true))).map(|e| e.reason), Some(Reason::Success));
    assert_eq!(ends(EventName::Insert, "10:30", Some(data(true, true))), None, "INSERT is ignored");
    assert_eq!(ends(EventName::Modify, "10:30", Some(data(true, false))), None);
    let no_time = Image { meet_time: None, ..data(true, true) };
    assert_eq!(ends(EventName::Modify, "10:30", Some(no_time)), None, "the Lambda raises: skipped");
}

#[test]
fn someone_elses_end_comes_after_the_terminator_and_never_from_a_remove() {
    let base = record(None, &change(EventName::Insert, "09:00", Some(img())), t("09:00")).meeting;
    let terminated = |i: Image| Image { status: Some("TERMINATED".into()), ..i };
    let ended = |event, i| record(Some(base), &change(event, "10:30", Some(i)), t("10:30")).meeting.ended;
    assert_eq!(ended(EventName::Modify, terminated(data(true, true))).map(|e| e.reason), Some(Reason::Success));
    assert_eq!(ended(EventName::Modify, terminated(img())).map(|e| e.reason), Some(Reason::External));
    assert_eq!(ended(EventName::Remove, terminated(img())), None);
}

#[test]
fn an_ended_meeting_is_never_ended_again() {
    let s = record(None, &change(EventName::Insert, "09:00", Some(img())), t("09:00"));
    let m = safety_net(s.meeting, t("10:15"));
    let again = record(Some(m), &change(EventName::Modify, "10:30", Some(data(true, true))), t("10:30")).meeting;
    assert_eq!(again.ended, m.ended);
}
