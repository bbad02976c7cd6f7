//! A deterministic generator of stream-record days, for W1.
//!
//! About four records per meeting (so 1,000,000 records ≈ 250,000 meetings),
//! meetings spread over 24 hours, every ending the engine knows: successes,
//! no-shows, partial meetings, keep-alives, with a few duplicate deliveries
//! and malformed lines — in event-time order, Lambda record shape.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use spindown::time::{Span, Timestamp};

/// 2026-11-26T00:00:00Z.
pub const DAY: i64 = 1_795_651_200;

struct Ev {
    at: i64, // ms since the day's start
    meeting: u32,
    step: u8,
    kind: u8,
    /// Position in the meeting's life (a redelivery repeats the original's).
    nth: u8,
}

fn hex_id(rng: &mut StdRng) -> String {
    format!("i-{:017x}", rng.gen::<u64>() & 0xfff_ffff_ffff_ffff)
}

/// `records` lines (±1%), deterministic for a seed.
pub fn day(records: usize, seed: u64) -> Vec<String> {
    let meetings = (records / 4).max(1);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut evs: Vec<Ev> = Vec::with_capacity(records + records / 50);
    let mut meets: Vec<i64> = Vec::with_capacity(meetings);
    for m in 0..meetings as u32 {
        let meet = rng.gen_range(0..24 * 3600) as i64 * 1000;
        meets.push(meet);
        let kind: u8 = match rng.gen_range(0..10) {
            0..=3 => 0, // success: both sides upload 20 min in
            4..=5 => 1, // no-show
            6..=7 => 2, // partial: one side only
            _ => 3,     // keep-alive, then success late
        };
        let steps: &[(i64, u8)] = match kind {
            0 => &[(-3_600_000, 0), (60_000, 1), (300_000, 2), (1_200_000, 3)],
            1 => &[(-3_600_000, 0), (-1_800_000, 4), (-300_000, 4), (-60_000, 4)],
            2 => &[(-3_600_000, 0), (60_000, 1), (180_000, 2), (600_000, 5)],
            _ => &[(-3_600_000, 0), (120_000, 1), (2_400_000, 2), (3_000_000, 3)],
        };
        for (nth, &(off, step)) in steps.iter().enumerate() {
            let jitter = rng.gen_range(0..30_000);
            evs.push(Ev { at: meet + off + jitter, meeting: m, step, kind, nth: nth as u8 });
        }
        if rng.gen_range(0..100) == 0 {
            let &(off, step) = &steps[1];
            evs.push(Ev { at: meet + off + 45_000, meeting: m, step, kind, nth: 1 });
        }
    }
    evs.sort_by_key(|e| (e.at, e.meeting, e.nth));
    let ids: Vec<(String, String)> = (0..meetings).map(|_| (hex_id(&mut rng), hex_id(&mut rng))).collect();
    let mut lines = Vec::with_capacity(evs.len() + evs.len() / 1000);
    for (n, e) in evs.iter().enumerate() {
        if n % 1000 == 999 {
            lines.push("{\"eventName\": \"INSERT\", \"dynamodb\": {not json".to_string());
        }
        let id = format!("m-{:07}", e.meeting);
        let meet = Timestamp::from_secs(DAY).saturating_add(Span::from_micros(meets[e.meeting as usize] * 1000));
        let (teacher, student) = ids[e.meeting as usize].clone();
        let mut img = json!({
            "id": {"S": id},
            "meet_time": {"S": meet.to_rfc3339()},
            "created_at": {"S": meet.saturating_add(Span::from_hours(-2)).to_rfc3339()},
            "status": {"S": if e.step >= 1 && e.step != 4 { "IN_PROGRESS" } else { "SCHEDULED" }},
            "teacher_ec2_id": {"S": teacher},
            "student_ec2_id": {"S": student},
        });
        if e.step >= 2 && e.step != 4 {
            img["teacher_session_data"] = json!({"S": "s3://recordings/teacher.webm"});
        }
        if e.step == 3 {
            img["student_session_data"] = json!({"S": "s3://recordings/student.webm"});
        }
        let at = DAY as f64 + e.at as f64 / 1000.0;
        // A duplicate delivery repeats the original's eventID.
        let event_id = format!("{:08x}{:04x}{:02x}", e.meeting, e.nth, e.kind);
        let rec = json!({
            "eventID": event_id,
            "eventName": if e.step == 0 { "INSERT" } else { "MODIFY" },
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-west-2",
            "dynamodb": {
                "ApproximateCreationDateTime": at,
                "Keys": {"id": {"S": id}},
                "NewImage": img,
                "SequenceNumber": format!("{:021}", n),
                "SizeBytes": 300,
                "StreamViewType": "NEW_AND_OLD_IMAGES"
            }
        });
        lines.push(rec.to_string());
    }
    lines
}

/// An INSERT for a meeting starting at `meet` with two instances.
pub fn insert(id: &str, meet: Timestamp, event_time: Timestamp, n: u64) -> String {
    json!({
        "eventID": format!("ins-{n}"),
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": event_time.as_micros() as f64 / 1e6,
            "Keys": {"id": {"S": id}},
            "NewImage": {
                "id": {"S": id},
                "meet_time": {"S": meet.to_rfc3339()},
                "status": {"S": "SCHEDULED"},
                "teacher_ec2_id": {"S": format!("i-{:017x}", n * 2)},
                "student_ec2_id": {"S": format!("i-{:017x}", n * 2 + 1)}
            }
        }
    })
    .to_string()
}
