//! A deterministic, streaming generator of realistic days of DynamoDB Stream
//! records for the `meeting` workflow (`spec/meeting-workflow.md`).
//!
//! # What it generates
//!
//! One line per stream record, exactly as the Lambda trigger receives them and
//! as `tests/fixtures/day.jsonl` holds them: compact JSON, the fixture's key
//! order, every metadata field (`eventID` of 32 hex digits, `eventName`,
//! `eventVersion` "1.1", `eventSource`, `awsRegion`, `eventSourceARN`, and
//! `dynamodb` with an integer `ApproximateCreationDateTime`, `Keys`, a
//! 21-digit `SequenceNumber`, `SizeBytes`, `StreamViewType` and the images).
//! Lines average about 840 bytes, as the fixture's do.
//!
//! Meetings (`m-0000001`, instances `i-` + 17 hex digits) start on whole
//! minutes spread uniformly over `days` days from 2026-11-26T00:00:00Z. Each
//! follows one of the life stories found in the fixture day, in the fixture's
//! proportions, so that the default (smart) policy ends them the same way:
//!
//! | outcome | share | stories |
//! |---|---|---|
//! | `PARTIAL_NO_SHOW_TIMEOUT` | 26.7 % | one side uploads (5–80 min in); an instance replaced first; the other side too late (after a timer); first seen late (a lone `MODIFY` 25–65 min in, no `INSERT`); `meet_time` moved later first |
//! | `MAX_LIFETIME` | 23.7 % | `IN_PROGRESS`, never any data: 15-minute re-checks up to the 4 h cap (half of them declare `duration_minutes`, capping them earlier); a `KEYS_ONLY` record; data uploaded then cleared; data `{"NULL":true}`; `meet_time` moved and data flapping |
//! | `NO_SHOW_TIMEOUT` | 20 % | only the `INSERT`; a `MODIFY` before the start (`meet_time` moved, an invalid instance id written, an instance replaced); uploads arriving after the safety net (the last one hours later) |
//! | `SUCCESS` | 13.3 % | both sides at once 16–50 min in, followed by the old Lambda's own `TERMINATED`/`SUCCESS` write-back; or one side then the other within one re-check window |
//! | `15_MIN_SUCCESS` | 6.7 % | both sides upload within the first 15 minutes |
//! | `CANCELLED` | 5.4 % | `REMOVE` (with `OldImage`) before the start; sometimes delivered before the `INSERT` |
//! | `EXTERNAL` | 4.2 % | `TERMINATED` with `termination_reason` `OPERATOR`/`ADMIN` written by someone else |
//!
//! That is about 2.9 records and 4.7 timer fires per meeting (the fixture:
//! 3.0 and 4.45). Across all stories: `meet_time` with `Z`, `.000Z`, `+00:00`,
//! `-05:00` or no zone; `created_at` (always `Z`) two hours before the
//! original `meet_time`, or alone on legacy rows (5 % of meetings, whose start
//! is `created_at`); session data as an `s3://elephant-sessions/...` path or
//! `{"BOOL":true}`; one or no instance on a fifth of the rows. About 1 % of
//! records are delivered twice (the whole line again, up to 10 s later, so
//! sometimes after the meeting's next record), 0.2 % carry no `eventID`, and
//! 0.1 % of lines are malformed: not JSON (`{not json`, a truncated record),
//! `UPSERT`, no `dynamodb`, an unparseable or mistyped `meet_time`, a string
//! `ApproximateCreationDateTime` — all on `bad-…` keys, so they never touch a
//! real meeting.
//!
//! # How
//!
//! Meeting `i`'s story is a pure function of `(seed, i)` (a local SplitMix64,
//! so the output does not change with the `rand` crate's version). Meetings
//! are planned in start-time order; their records go into a min-heap keyed by
//! delivery time, and a record is written once no meeting still to be planned
//! can have an earlier one (no record comes more than [`LEAD`] before its
//! meeting's nominal start). The heap holds only keys; a record's line is
//! rebuilt from its meeting's story when it is written. Memory is therefore
//! bounded by the records due within the next ~11 hours of event time, not by
//! the output.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, BufWriter, Write};

/// 2026-11-26T00:00:00Z, the first generated day's midnight.
pub const DAY0: i64 = 1_795_651_200;

/// No record comes more than this before its meeting's nominal start (the
/// `INSERT` comes at most two hours before it).
pub const LEAD: i64 = 3 * 3600;

const MAX_RECS: usize = 8;
const REGION: &str = "us-west-2";
const ARN: &str = "arn:aws:dynamodb:us-west-2:123456789012:table/elephant-meetings/stream/2026-11-26T00:00:00.000";

/// What a generated day holds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DayStats {
    pub lines: u64,
    pub bytes: u64,
    pub meetings: u64,
    pub malformed: u64,
    pub duplicates: u64,
}

/// Write about `records` lines (±2 %) of stream records, one per line, in stream
/// (event-time) order, deterministic for `seed`. About 3 records per meeting; the
/// meetings' start times are spread uniformly over `days` consecutive days starting
/// 2026-11-26T00:00:00Z (so live meetings at any moment stay as many as in a one-day
/// run when `days` grows with `records`). `days == 0` counts as one day.
pub fn write_day(out: &mut impl Write, records: usize, days: u32, seed: u64) -> io::Result<DayStats> {
    let mut w = BufWriter::with_capacity(1 << 17, out);
    let mut stats = DayStats::default();
    if records == 0 {
        return Ok(stats);
    }
    let seed = mix64(seed ^ 0x5bd1_e995_d1b5_4a32);
    // Records per meeting, measured on the stories themselves.
    const SAMPLE: u64 = 4096;
    let per_meeting = (0..SAMPLE).map(|i| plan(seed, i, 1.0).n as u64).sum::<u64>() as f64 / SAMPLE as f64;
    let meetings = (records as f64 / per_meeting).round().max(1.0);
    let slot = f64::from(days.max(1)) * 86_400.0 / meetings;

    let mut heap: BinaryHeap<Reverse<(i64, u64)>> = BinaryHeap::new();
    let mut r = Render::default();
    let mut planned = 0usize;
    let mut i = 0u64;
    while planned < records {
        let p = plan(seed, i, slot);
        let horizon = p.start - LEAD;
        while let Some(&Reverse((t, _))) = heap.peek() {
            if t >= horizon {
                break;
            }
            let Reverse((_, key)) = heap.pop().unwrap();
            r.emit(&mut w, seed, slot, key, &mut stats)?;
        }
        for (j, rec) in p.recs[..p.n].iter().enumerate() {
            debug_assert!(rec.deliver >= horizon, "meeting {i} record {j} before its lead");
            heap.push(Reverse((rec.deliver, i << 4 | j as u64)));
        }
        planned += p.n;
        stats.meetings += 1;
        i += 1;
    }
    while let Some(Reverse((_, key))) = heap.pop() {
        r.emit(&mut w, seed, slot, key, &mut stats)?;
    }
    w.flush()?;
    Ok(stats)
}

// ---------------------------------------------------------------- randomness

#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: tiny, fast, and stable forever.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        Rng(mix64(seed ^ mix64(stream.wrapping_add(0x9e37_79b9_7f4a_7c15))))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(hi >= lo, "{lo}..={hi}");
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    /// True with probability `per_10k` / 10 000.
    fn chance(&mut self, per_10k: u64) -> bool {
        self.below(10_000) < per_10k
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn side(&mut self) -> usize {
        // The teacher uploads first a bit more often.
        usize::from(!self.chance(6_000))
    }
    fn data(&mut self) -> Data {
        if self.chance(500) {
            Data::Bool
        } else {
            Data::S3
        }
    }
    fn instance(&mut self) -> Inst {
        Inst::Valid(self.below(16) as u8, self.next())
    }
}

// ------------------------------------------------------------------ stories

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Inst {
    Absent,
    /// First hex digit, then sixteen more.
    Valid(u8, u64),
    Invalid(u8),
}

const INVALID_IDS: [&str; 6] = ["i-123", "i-XYZ", "sg-0123abcd", "", "i-0123456789ABCDEF0", "i-0a1b2c3d\\n"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Data {
    S3,
    Bool,
    Null,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Scheduled,
    InProgress,
    Terminated,
}

/// The item (the row of `elephant-meetings`) at one moment.
#[derive(Clone, Copy, Debug)]
struct Img {
    /// `meet_time` and its format (see `put_meet_time`); `None` on legacy rows.
    meet: Option<(i64, u8)>,
    status: Status,
    /// Teacher's, student's.
    ec2: [Inst; 2],
    /// The student's instance attribute comes first.
    student_first: bool,
    /// `duration_minutes`; 0 = not declared.
    duration: u16,
    /// Teacher's, student's session data.
    data: [Option<Data>; 2],
    /// The student's data attribute comes first (it came first).
    student_data_first: bool,
    /// 0 none, 1 SUCCESS, 2 OPERATOR, 3 ADMIN.
    term: u8,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Insert,
    Modify,
    /// A `MODIFY` with only a `NewImage` (the meeting's first record seen).
    LateModify,
    Remove,
    KeysOnly,
    Bad(u8),
}

const BAD_KINDS: u8 = 7;

#[derive(Clone, Copy, Debug)]
struct Rec {
    /// Event time (`ApproximateCreationDateTime`).
    at: i64,
    /// Position in the stream (a redelivery's is later than its `at`).
    deliver: i64,
    kind: Kind,
    new: Img,
    old: Img,
    event_id: bool,
    /// The record whose line this is: itself, or the original of a redelivery.
    src: u8,
}

struct Plan {
    /// Nominal start (the original `meet_time`, or `created_at`).
    start: i64,
    created: i64,
    recs: [Rec; MAX_RECS],
    n: usize,
}

struct Builder {
    cur: Img,
    recs: [Rec; MAX_RECS],
    n: usize,
}

impl Builder {
    fn push(&mut self, at: i64, kind: Kind, new: Img, old: Img) {
        debug_assert!(self.n == 0 || at >= self.recs[self.n - 1].at, "records out of order");
        self.recs[self.n] = Rec { at, deliver: at, kind, new, old, event_id: true, src: self.n as u8 };
        self.n += 1;
    }
    fn insert(&mut self, at: i64) {
        let c = self.cur;
        self.push(at, Kind::Insert, c, c);
    }
    fn modify(&mut self, at: i64, f: impl FnOnce(&mut Img)) {
        let old = self.cur;
        f(&mut self.cur);
        let new = self.cur;
        self.push(at, Kind::Modify, new, old);
    }
    fn late_modify(&mut self, at: i64, f: impl FnOnce(&mut Img)) {
        f(&mut self.cur);
        let c = self.cur;
        self.push(at, Kind::LateModify, c, c);
    }
    fn remove(&mut self, at: i64) {
        let c = self.cur;
        self.push(at, Kind::Remove, c, c);
    }
    fn keys_only(&mut self, at: i64) {
        let c = self.cur;
        self.push(at, Kind::KeysOnly, c, c);
    }
}

fn in_progress(i: &mut Img) {
    i.status = Status::InProgress;
}

fn upload(i: &mut Img, side: usize, d: Data) {
    if i.data[0].is_none() && i.data[1].is_none() {
        i.student_data_first = side == 1;
    }
    i.data[side] = Some(d);
}

fn meet_format(rng: &mut Rng) -> u8 {
    // -05:00 31 %, Z 21 %, no zone 22 %, +00:00 21 %, .000Z 5 %.
    match rng.below(100) {
        0..=30 => 2,
        31..=51 => 0,
        52..=73 => 3,
        74..=94 => 1,
        _ => 4,
    }
}

const M: i64 = 60;
const WINDOW: i64 = 15 * M;

/// The stories, with their weights (per 10 000 meetings).
const STORIES: [(Story, u64); 18] = [
    (Story::NoShowInsertOnly, 625),
    (Story::NoShowEdited, 710),
    (Story::NoShowLateUploads, 665),
    (Story::PartialOneSide, 1210),
    (Story::PartialReplacedInstance, 420),
    (Story::PartialOtherSideLate, 290),
    (Story::PartialFirstSeenLate, 665),
    (Story::PartialMoved, 85),
    (Story::KeepAlive, 1070),
    (Story::KeepAliveKeysOnly, 500),
    (Story::KeepAliveDataCleared, 420),
    (Story::KeepAliveNullData, 290),
    (Story::KeepAliveMoved, 85),
    (Story::SuccessWriteBack, 710),
    (Story::SuccessOneThenOther, 625),
    (Story::QuickSuccess, 670),
    (Story::Cancelled, 540),
    (Story::External, 420),
];

#[derive(Clone, Copy, Debug)]
enum Story {
    NoShowInsertOnly,
    NoShowEdited,
    NoShowLateUploads,
    PartialOneSide,
    PartialReplacedInstance,
    PartialOtherSideLate,
    PartialFirstSeenLate,
    PartialMoved,
    KeepAlive,
    KeepAliveKeysOnly,
    KeepAliveDataCleared,
    KeepAliveNullData,
    KeepAliveMoved,
    SuccessWriteBack,
    SuccessOneThenOther,
    QuickSuccess,
    Cancelled,
    External,
}

/// Meeting `i`'s whole story; `slot` is the seconds of day per meeting.
fn plan(seed: u64, i: u64, slot: f64) -> Plan {
    let mut rng = Rng::new(seed, i);
    // Stratified start times: non-decreasing in `i`, uniform over the span.
    let at = (i as f64 + rng.unit()) * slot;
    let m0 = DAY0 + (at / 60.0).floor() as i64 * 60;

    let mut pick = rng.below(10_000);
    let mut story = Story::External;
    for &(s, wgt) in &STORIES {
        if pick < wgt {
            story = s;
            break;
        }
        pick -= wgt;
    }
    let legacy = match story {
        Story::PartialOneSide | Story::PartialReplacedInstance => rng.chance(3_000),
        Story::SuccessWriteBack | Story::SuccessOneThenOther => rng.chance(1_200),
        _ => false,
    };
    let created = if legacy { m0 } else { m0 - 2 * 3600 };
    let ec2 = match rng.below(100) {
        0..=79 => [rng.instance(), rng.instance()],
        80..=87 => [rng.instance(), Inst::Absent],
        88..=97 => [Inst::Absent, rng.instance()],
        _ => [Inst::Absent, Inst::Absent],
    };
    let cur = Img {
        meet: if legacy { None } else { Some((m0, meet_format(&mut rng))) },
        status: Status::Scheduled,
        ec2,
        student_first: false,
        duration: 0,
        data: [None, None],
        student_data_first: false,
        term: 0,
    };
    let blank = Rec { at: 0, deliver: 0, kind: Kind::KeysOnly, new: cur, old: cur, event_id: true, src: 0 };
    let mut b = Builder { cur, recs: [blank; MAX_RECS], n: 0 };

    // The usual opening: the INSERT (booked 10 min to 2 h ahead; a legacy row
    // is written as the meeting starts), then IN_PROGRESS around the start.
    let t_ins = if legacy { m0 + rng.range(0, 20) } else { m0 - rng.range(10 * M, 120 * M) };
    let t_mp = if legacy { m0 + rng.range(M, 5 * M) } else { m0 + rng.range(-2 * M, 5 * M) };
    let open = |b: &mut Builder| {
        b.insert(t_ins);
        b.modify(t_mp, in_progress);
    };
    let moved = |rng: &mut Rng, b: &mut Builder, at: i64, to: i64| {
        let f = meet_format(rng);
        b.modify(at, |i| i.meet = Some((to, f)));
    };

    match story {
        Story::NoShowInsertOnly => b.insert(t_ins),
        Story::NoShowEdited => {
            b.insert(t_ins);
            let at = (m0 + rng.range(-20 * M, 5 * M)).max(t_ins + 30);
            match rng.below(100) {
                0..=34 => {
                    let mut d = rng.range(-6, 12) * 10 * M;
                    if d == 0 {
                        d = 30 * M;
                    }
                    moved(&mut rng, &mut b, at, m0 + d);
                }
                35..=79 => {
                    let bad = Inst::Invalid(rng.below(INVALID_IDS.len() as u64) as u8);
                    b.modify(at, |i| {
                        if i.ec2[0] == Inst::Absent && i.ec2[1] != Inst::Absent {
                            i.student_first = true;
                        }
                        i.ec2[0] = bad;
                    });
                }
                _ => {
                    let new = rng.instance();
                    b.modify(at, |i| i.ec2[1] = new);
                }
            }
        }
        Story::NoShowLateUploads => {
            b.insert(t_ins);
            let s = rng.side();
            let (d1, d2) = (rng.data(), rng.data());
            b.modify(m0 + rng.range(16 * M, 35 * M), |i| upload(i, s, d1));
            b.modify(m0 + rng.range(6 * 3600, 8 * 3600), |i| upload(i, 1 - s, d2));
        }
        Story::PartialOneSide => {
            open(&mut b);
            let (s, d) = (rng.side(), rng.data());
            b.modify((m0 + rng.range(5 * M, 80 * M)).max(t_mp + 20), |i| upload(i, s, d));
        }
        Story::PartialReplacedInstance => {
            open(&mut b);
            let side = rng.below(2) as usize;
            let new = rng.instance();
            let t = t_mp + rng.range(30, 6 * M);
            b.modify(t, |i| i.ec2[side] = new);
            let (s, d) = (rng.side(), rng.data());
            b.modify((m0 + rng.range(5 * M, 80 * M)).max(t + 20), |i| upload(i, s, d));
        }
        Story::PartialOtherSideLate => {
            open(&mut b);
            let (s, d1, d2) = (rng.side(), rng.data(), rng.data());
            let t1 = (m0 + rng.range(5 * M, 80 * M)).max(t_mp + 20);
            // The first timer after t1 ends the meeting before the other side comes.
            let next = m0 + WINDOW * ((t1 - m0) / WINDOW + 1).max(1);
            b.modify(t1, |i| upload(i, s, d1));
            b.modify(next + rng.range(M, 10 * M), |i| upload(i, 1 - s, d2));
        }
        Story::PartialFirstSeenLate => {
            // The INSERT and IN_PROGRESS records never reached the stream
            // consumer; the first one seen is an upload well after the start.
            let s = if rng.chance(8_000) { 0 } else { 1 };
            let d = rng.data();
            b.late_modify(m0 + rng.range(25 * M, 65 * M), |i| {
                i.status = Status::InProgress;
                upload(i, s, d);
            });
        }
        Story::PartialMoved => {
            b.insert(m0 - rng.range(30 * M, 120 * M));
            let m1 = m0 + rng.range(1, 12) * 10 * M;
            let at = m0 - rng.range(10 * M, 20 * M);
            moved(&mut rng, &mut b, at, m1);
            let t = m1 + rng.range(-2 * M, 5 * M);
            b.modify(t, in_progress);
            let (s, d) = (rng.side(), rng.data());
            b.modify((m1 + rng.range(5 * M, 30 * M)).max(t + 20), |i| upload(i, s, d));
        }
        Story::KeepAlive => {
            if rng.chance(5_200) {
                b.cur.duration = rng.pick(&[20, 30, 30, 45, 60, 60, 90, 90]);
            }
            open(&mut b);
        }
        Story::KeepAliveKeysOnly => {
            open(&mut b);
            b.keys_only(t_mp + rng.range(M, 13 * M));
        }
        Story::KeepAliveDataCleared => {
            open(&mut b);
            let (s, d) = (rng.side(), rng.data());
            let t1 = (m0 + rng.range(M, 10 * M)).max(t_mp + 20);
            b.modify(t1, |i| upload(i, s, d));
            let t2 = t1 + rng.range(20, (m0 + 870 - t1).min(5 * M));
            b.modify(t2, |i| i.data = [None, None]);
        }
        Story::KeepAliveNullData => {
            open(&mut b);
            let s = if rng.chance(8_000) { 0 } else { 1 };
            b.modify((m0 + rng.range(5 * M, 13 * M)).max(t_mp + 20), |i| upload(i, s, Data::Null));
        }
        Story::KeepAliveMoved => {
            b.insert(m0 - rng.range(30 * M, 120 * M));
            let m1 = m0 + rng.pick(&[-10, 10, 20, 30]) * M;
            let at = m0 - rng.range(12 * M, 20 * M);
            moved(&mut rng, &mut b, at, m1);
            let (s, d) = (rng.side(), rng.data());
            b.modify(m1 + rng.range(-2 * M, -10), |i| {
                i.status = Status::InProgress;
                upload(i, s, d);
            });
            b.modify(m1 + rng.range(30, 10 * M), |i| i.data = [None, None]);
        }
        Story::SuccessWriteBack => {
            open(&mut b);
            let (d1, d2) = (rng.data(), rng.data());
            let s = rng.side();
            let t = (m0 + rng.range(16 * M, 50 * M)).max(t_mp + 20);
            b.modify(t, |i| {
                upload(i, s, d1);
                upload(i, 1 - s, d2);
            });
            // The legacy terminator's own conditional write comes back on the stream.
            b.modify(t + rng.range(0, 3), |i| {
                i.status = Status::Terminated;
                i.term = 1;
            });
        }
        Story::SuccessOneThenOther => {
            open(&mut b);
            let (s, d1, d2) = (rng.side(), rng.data(), rng.data());
            // Both within one re-check window, so no timer sees the meeting partial.
            let k = rng.pick(&[1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6]);
            let t1 = m0 + k * WINDOW + rng.range(M, WINDOW - 3 * M);
            let t2 = t1 + rng.range(20, (m0 + (k + 1) * WINDOW - t1 - 10).min(3 * M));
            b.modify(t1, |i| upload(i, s, d1));
            b.modify(t2, |i| upload(i, 1 - s, d2));
        }
        Story::QuickSuccess => {
            open(&mut b);
            let (s, d1, d2) = (rng.side(), rng.data(), rng.data());
            let t1 = (m0 + rng.range(M, 13 * M)).max(t_mp + 20);
            let t2 = t1 + rng.range(10, (m0 + 890 - t1).min(5 * M));
            b.modify(t1, |i| upload(i, s, d1));
            b.modify(t2, |i| upload(i, 1 - s, d2));
        }
        Story::Cancelled => {
            if rng.chance(800) {
                // The REMOVE is delivered first (another shard); the INSERT then finds it gone.
                b.remove(m0 - rng.range(40 * M, 50 * M));
                b.insert(m0 - rng.range(10 * M, 15 * M));
            } else {
                b.insert(t_ins);
                let last = (m0 - 3 * M).max(t_ins + 60);
                b.remove(t_ins + rng.range(60, last - t_ins));
            }
        }
        Story::External => {
            open(&mut b);
            let who = if rng.chance(8_000) { 2 } else { 3 };
            b.modify((m0 + rng.range(2 * M, 14 * M)).max(t_mp + 20), |i| {
                i.status = Status::Terminated;
                i.term = who;
            });
        }
    }

    // Deliveries: a few records without an eventID, ~1 % delivered twice.
    let base = b.n;
    for j in 0..base {
        if rng.chance(20) {
            b.recs[j].event_id = false;
        }
    }
    for j in 0..base {
        if b.n < MAX_RECS - 1 && b.recs[j].event_id && rng.chance(100) {
            let mut d = b.recs[j];
            d.deliver = d.at + rng.range(0, 10);
            b.recs[b.n] = d;
            b.n += 1;
        }
    }
    // ~0.1 % of lines malformed, near the meeting's own records.
    if rng.chance(29) {
        let at = m0 + rng.range(-60 * M, 60 * M);
        let kind = Kind::Bad(rng.below(u64::from(BAD_KINDS)) as u8);
        b.recs[b.n] = Rec { at, deliver: at, kind, new: cur, old: cur, event_id: true, src: b.n as u8 };
        b.n += 1;
    }
    Plan { start: m0, created, recs: b.recs, n: b.n }
}

// ---------------------------------------------------------------- rendering

#[derive(Default)]
struct Render {
    line: Vec<u8>,
    new: Vec<u8>,
    old: Vec<u8>,
    /// The last meeting planned again, and its plan.
    cached: Option<(u64, Plan)>,
}

impl Render {
    fn emit<W: Write>(&mut self, w: &mut W, seed: u64, slot: f64, key: u64, stats: &mut DayStats) -> io::Result<()> {
        let (i, j) = (key >> 4, (key & 15) as usize);
        if self.cached.as_ref().map(|c| c.0) != Some(i) {
            self.cached = Some((i, plan(seed, i, slot)));
        }
        let p = &self.cached.as_ref().unwrap().1;
        let rec = p.recs[j];
        if rec.src as usize != j {
            stats.duplicates += 1;
        }
        let src = p.recs[rec.src as usize];
        self.line.clear();
        if let Kind::Bad(k) = src.kind {
            stats.malformed += 1;
            bad_line(&mut self.line, seed, i, j, k, src.at);
        } else {
            let created = p.created;
            self.record(seed, i, &src, created);
        }
        self.line.push(b'\n');
        stats.lines += 1;
        stats.bytes += self.line.len() as u64;
        w.write_all(&self.line)
    }

    fn record(&mut self, seed: u64, i: u64, rec: &Rec, created: i64) {
        let (has_new, has_old) = match rec.kind {
            Kind::Insert | Kind::LateModify => (true, false),
            Kind::Modify => (true, true),
            Kind::Remove => (false, true),
            Kind::KeysOnly | Kind::Bad(_) => (false, false),
        };
        self.new.clear();
        self.old.clear();
        if has_new {
            image(&mut self.new, i, &rec.new, created);
        }
        if has_old {
            image(&mut self.old, i, &rec.old, created);
        }
        let b = &mut self.line;
        b.push(b'{');
        if rec.event_id {
            put(b, "\"eventID\":\"");
            event_id(b, seed, i << 4 | u64::from(rec.src));
            put(b, "\",");
        }
        put(b, "\"eventName\":\"");
        put(
            b,
            match rec.kind {
                Kind::Insert => "INSERT",
                Kind::Remove => "REMOVE",
                _ => "MODIFY",
            },
        );
        put(b, "\",\"eventVersion\":\"1.1\",\"eventSource\":\"aws:dynamodb\",\"awsRegion\":\"");
        put(b, REGION);
        put(b, "\",\"eventSourceARN\":\"");
        put(b, ARN);
        put(b, "\",\"dynamodb\":{\"ApproximateCreationDateTime\":");
        put_u64(b, rec.at as u64);
        put(b, ",\"Keys\":{\"id\":{\"S\":\"");
        meeting_id(b, i);
        put(b, "\"}},\"SequenceNumber\":\"");
        sequence_number(b, rec.at, i << 4 | u64::from(rec.src));
        put(b, "\",\"SizeBytes\":");
        // DynamoDB counts names and values, not JSON punctuation.
        let size = 12 + (self.new.len() + self.old.len()) * 11 / 20;
        put_u64(b, size as u64);
        if has_new || has_old {
            put(b, ",\"StreamViewType\":\"NEW_AND_OLD_IMAGES\"");
        } else {
            put(b, ",\"StreamViewType\":\"KEYS_ONLY\"");
        }
        if has_new {
            put(b, ",\"NewImage\":");
            b.extend_from_slice(&self.new);
        }
        if has_old {
            put(b, ",\"OldImage\":");
            b.extend_from_slice(&self.old);
        }
        put(b, "}}");
    }
}

fn image(b: &mut Vec<u8>, i: u64, img: &Img, created: i64) {
    put(b, "{\"id\":{\"S\":\"");
    meeting_id(b, i);
    put(b, "\"}");
    if let Some((t, f)) = img.meet {
        put(b, ",\"meet_time\":{\"S\":\"");
        put_meet_time(b, t, f);
        put(b, "\"}");
    }
    put(b, ",\"status\":{\"S\":\"");
    put(
        b,
        match img.status {
            Status::Scheduled => "SCHEDULED",
            Status::InProgress => "IN_PROGRESS",
            Status::Terminated => "TERMINATED",
        },
    );
    put(b, "\"},\"created_at\":{\"S\":\"");
    put_datetime(b, created);
    put(b, "Z\"}");
    let order = if img.student_first { [1, 0] } else { [0, 1] };
    for side in order {
        let v = img.ec2[side];
        if v == Inst::Absent {
            continue;
        }
        put(b, if side == 0 { ",\"teacher_ec2_id\":{\"S\":\"" } else { ",\"student_ec2_id\":{\"S\":\"" });
        match v {
            Inst::Valid(hi, lo) => {
                put(b, "i-");
                put_hex(b, u64::from(hi), 1);
                put_hex(b, lo, 16);
            }
            Inst::Invalid(k) => put(b, INVALID_IDS[k as usize]),
            Inst::Absent => {}
        }
        put(b, "\"}");
    }
    if img.duration > 0 {
        put(b, ",\"duration_minutes\":{\"N\":\"");
        put_u64(b, u64::from(img.duration));
        put(b, "\"}");
    }
    let order = if img.student_data_first { [1, 0] } else { [0, 1] };
    for side in order {
        let Some(d) = img.data[side] else { continue };
        let who = if side == 0 { "teacher" } else { "student" };
        put(b, ",\"");
        put(b, who);
        put(b, "_session_data\":");
        match d {
            Data::S3 => {
                put(b, "{\"S\":\"s3://elephant-sessions/");
                meeting_id(b, i);
                put(b, "/");
                put(b, who);
                put(b, ".json\"}");
            }
            Data::Bool => put(b, "{\"BOOL\":true}"),
            Data::Null => put(b, "{\"NULL\":true}"),
        }
    }
    if img.term > 0 {
        put(b, ",\"termination_reason\":{\"S\":\"");
        put(b, ["", "SUCCESS", "OPERATOR", "ADMIN"][img.term as usize]);
        put(b, "\"}");
    }
    b.push(b'}');
}

/// A dead letter of kind `k`, on a `bad-…` key (never a real meeting).
fn bad_line(b: &mut Vec<u8>, seed: u64, i: u64, j: usize, k: u8, at: i64) {
    let key = i << 4 | j as u64;
    let head = |b: &mut Vec<u8>, name: &str| {
        put(b, "{\"eventID\":\"");
        event_id(b, seed, key);
        put(b, "\",\"eventName\":\"");
        put(b, name);
        put(b, "\",\"eventVersion\":\"1.1\",\"eventSource\":\"aws:dynamodb\",\"awsRegion\":\"");
        put(b, REGION);
        put(b, "\",\"eventSourceARN\":\"");
        put(b, ARN);
        put(b, "\"");
    };
    let dynamodb = |b: &mut Vec<u8>, as_string: bool, meet: &str| {
        put(b, ",\"dynamodb\":{\"ApproximateCreationDateTime\":");
        if as_string {
            put(b, "\"");
            put_datetime(b, at);
            put(b, "Z\"");
        } else {
            put_u64(b, at as u64);
        }
        put(b, ",\"Keys\":{\"id\":{\"S\":\"bad-");
        put_pad(b, i, 7);
        put(b, "\"}},\"SequenceNumber\":\"");
        sequence_number(b, at, key);
        put(b, "\",\"SizeBytes\":64,\"StreamViewType\":\"NEW_AND_OLD_IMAGES\",\"NewImage\":{\"id\":{\"S\":\"bad-");
        put_pad(b, i, 7);
        put(b, "\"},\"meet_time\":");
        put(b, meet);
        put(b, ",\"status\":{\"S\":\"SCHEDULED\"}}}}");
    };
    match k {
        0 => put(b, "{not json"),
        1 => {
            // A record cut short (a partial write).
            head(b, "INSERT");
            dynamodb(b, false, "{\"S\":\"2026-11-26T10:00:00Z\"}");
            b.truncate(b.len() * 2 / 3);
        }
        2 => {
            head(b, "UPSERT");
            dynamodb(b, false, "{\"S\":\"2026-11-26T10:00:00Z\"}");
        }
        3 => {
            head(b, "MODIFY");
            b.push(b'}');
        }
        4 => {
            head(b, "INSERT");
            dynamodb(b, false, ["{\"S\":\"26/11/2026 10:00\"}", "{\"S\":\"2026-11-31T10:00:00Z\"}"][j & 1]);
        }
        5 => {
            head(b, "MODIFY");
            dynamodb(b, false, "{\"N\":\"1700000000\"}");
        }
        _ => {
            head(b, "INSERT");
            dynamodb(b, true, "{\"S\":\"2026-11-26T10:00:00Z\"}");
        }
    }
}

// --------------------------------------------------------------- formatting

const HEX: &[u8; 16] = b"0123456789abcdef";

fn put(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(s.as_bytes());
}

fn put_u64(b: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut k = tmp.len();
    loop {
        k -= 1;
        tmp[k] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    b.extend_from_slice(&tmp[k..]);
}

fn put_pad(b: &mut Vec<u8>, n: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut n = n;
    let mut k = tmp.len();
    while n > 0 {
        k -= 1;
        tmp[k] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let digits = tmp.len() - k;
    b.extend_from_slice(&tmp[tmp.len() - digits.max(width)..]);
}

fn put_hex(b: &mut Vec<u8>, v: u64, digits: u32) {
    for k in (0..digits).rev() {
        b.push(HEX[((v >> (4 * k)) & 15) as usize]);
    }
}

fn meeting_id(b: &mut Vec<u8>, i: u64) {
    put(b, "m-");
    put_pad(b, i + 1, 7);
}

/// 32 hex digits, unique per `key` (the low half is a bijection of it).
fn event_id(b: &mut Vec<u8>, seed: u64, key: u64) {
    put_hex(b, mix64(key ^ seed.rotate_left(17)), 16);
    put_hex(b, mix64(key ^ seed), 16);
}

/// 21 digits, increasing with event time, unique per `key`.
fn sequence_number(b: &mut Vec<u8>, at: i64, key: u64) {
    put_pad(b, (at - 1_600_000_000).max(0) as u64 % 100_000_000_000, 11);
    put_pad(b, key % 10_000_000_000, 10);
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) for `secs` since the epoch.
fn put_datetime(b: &mut Vec<u8>, secs: i64) {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    put_pad(b, y as u64, 4);
    b.push(b'-');
    put_pad(b, u64::from(mo), 2);
    b.push(b'-');
    put_pad(b, u64::from(d), 2);
    b.push(b'T');
    put_pad(b, (sod / 3600) as u64, 2);
    b.push(b':');
    put_pad(b, (sod / 60 % 60) as u64, 2);
    b.push(b':');
    put_pad(b, (sod % 60) as u64, 2);
}

/// `meet_time` in format `f`: 0 `Z`, 1 `+00:00`, 2 `-05:00` (Eastern), 3 no zone, 4 `.000Z`.
fn put_meet_time(b: &mut Vec<u8>, t: i64, f: u8) {
    match f {
        0 => {
            put_datetime(b, t);
            b.push(b'Z');
        }
        1 => {
            put_datetime(b, t);
            put(b, "+00:00");
        }
        2 => {
            put_datetime(b, t - 5 * 3600);
            put(b, "-05:00");
        }
        3 => put_datetime(b, t),
        _ => {
            put_datetime(b, t);
            put(b, ".000Z");
        }
    }
}

/// (year, month, day) of a day number since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        let mut b = Vec::new();
        put_datetime(&mut b, DAY0);
        put(&mut b, " ");
        put_meet_time(&mut b, DAY0 + 3600 + 60, 2);
        put(&mut b, " ");
        put_datetime(&mut b, 951_782_400); // 2000-02-29
        put(&mut b, " ");
        put_datetime(&mut b, 0);
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "2026-11-26T00:00:00 2026-11-25T20:01:00-05:00 2000-02-29T00:00:00 1970-01-01T00:00:00"
        );
    }

    #[test]
    fn day_is_deterministic_sized_and_well_formed() {
        let mut a = Vec::new();
        let sa = write_day(&mut a, 20_000, 1, 7).unwrap();
        let mut b = Vec::new();
        let sb = write_day(&mut b, 20_000, 1, 7).unwrap();
        assert_eq!(a, b);
        assert_eq!(sa.bytes, a.len() as u64);
        assert_eq!(sa.lines, sb.lines);
        assert!((sa.lines as f64 - 20_000.0).abs() <= 400.0, "{sa:?}");
        let mut c = Vec::new();
        write_day(&mut c, 20_000, 1, 8).unwrap();
        assert_ne!(a, c);

        let text = std::str::from_utf8(&a).unwrap();
        let (mut bad, mut last, mut ids) = (0u64, 0i64, std::collections::HashMap::new());
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                bad += 1;
                continue;
            };
            let d = &v["dynamodb"];
            let (Some(t), Some(id)) = (d["ApproximateCreationDateTime"].as_i64(), d["Keys"]["id"]["S"].as_str()) else {
                bad += 1;
                continue;
            };
            if id.starts_with("bad-") || v["eventName"] == "UPSERT" {
                bad += 1;
                continue;
            }
            assert!(t >= last - 10, "out of order: {line}");
            last = last.max(t);
            if let Some(e) = v["eventID"].as_str() {
                assert_eq!(e.len(), 32);
                let prev = ids.entry(e.to_string()).or_insert_with(|| line.to_string());
                assert_eq!(prev, line, "an eventID reused by another record");
            }
        }
        assert_eq!(bad, sa.malformed, "{sa:?}");
        assert!(sa.duplicates > 0 && sa.malformed > 0, "{sa:?}");
    }

    #[test]
    fn small_and_many_day_runs() {
        for (records, days, seed) in [(0, 1, 1), (1, 1, 1), (10, 1, 2), (100, 0, 3), (1_000, 1, 4), (5_000, 7, 5)] {
            let mut out = Vec::new();
            let s = write_day(&mut out, records, days, seed).unwrap();
            assert_eq!(s.bytes, out.len() as u64);
            assert_eq!(s.lines, out.iter().filter(|&&c| c == b'\n').count() as u64);
            let slack = (records as f64 * 0.02).max(MAX_RECS as f64);
            assert!((s.lines as f64 - records as f64).abs() <= slack, "{records}: {s:?}");
        }
    }
}
