//! Hostile input, through `replay` and through the live stream path: zero
//! panics, every malformed record dead-lettered once with its reason, and the
//! well-formed records around them ending exactly as without them.

mod common;

use spindown::inspect::MeetingStore;
use spindown::meeting::MeetingFilter;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::fake_stream::FakeStream;
use common::records::sqlite_engine;
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use spindown::clock::ManualClock;
use spindown::inspect::OutcomeLine;
use spindown::source::stream::{ReaderOptions, StreamReader};
use spindown::store::sqlite::SqliteStore;
use spindown::store::{EffectStatus, Page, Store};
use spindown::time::Timestamp;

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile/").to_string() + name).unwrap();
    bytes.split(|&c| c == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

fn kinds() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile/malformed.kinds")).unwrap();
    text.lines().map(str::to_owned).collect()
}

/// The huge cases, made here rather than committed.
fn huge() -> Vec<(Vec<u8>, &'static str)> {
    let mb = "x".repeat(1 << 20);
    vec![
        // A 1 MB meet_time: unparseable (and its reason does not repeat the megabyte).
        (format!(r#"{{"eventName":"MODIFY","dynamodb":{{"Keys":{{"id":{{"S":"hostile-x"}}}},"NewImage":{{"meet_time":{{"S":"{mb}"}}}}}}}}"#).into_bytes(), "bad_time"),
        // A 1 MB status of the wrong type.
        (format!(r#"{{"eventName":"MODIFY","dynamodb":{{"Keys":{{"id":{{"S":"hostile-x"}}}},"NewImage":{{"status":{{"N":"{mb}"}}}}}}}}"#).into_bytes(), "wrong_type"),
        // Nesting far deeper than the parser allows.
        ("[".repeat(200_000).into_bytes(), "not_json"),
        (format!("{}1", r#"{"a":"#.repeat(50_000)).into_bytes(), "not_json"),
        // A 10 MB line: longer than any stream record can be.
        (vec![b'{'; 10 << 20], "line_too_long"),
    ]
}

fn write_lines(path: &std::path::Path, lines: &[Vec<u8>]) {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn every_malformed_record_is_one_dead_letter_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = corpus("malformed.jsonl");
    let mut want = kinds();
    assert_eq!(lines.len(), want.len());
    for (l, k) in huge() {
        lines.push(l);
        want.push(k.to_string());
    }
    let file = dir.path().join("malformed.jsonl");
    write_lines(&file, &lines);
    let db = dir.path().join("m.db");
    let out = run(spindown().arg("--db").arg(&db).arg("replay").arg(&file).arg("--json"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "no meeting comes out of malformed records");
    let dead = run_ok(spindown().arg("--db").arg(&db).args(["dead-letters", "--json", "--limit", "1000"]));
    let dead: Vec<Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let got: Vec<String> = dead.iter().map(|d| d["kind"].as_str().unwrap().to_string()).collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "line {}: {}", i + 1, dead[i]["reason"]);
    }
    assert_eq!(got.len(), want.len(), "one dead letter per malformed record");
    for d in &dead {
        let reason = d["reason"].as_str().unwrap();
        assert!(!reason.is_empty() && reason.len() < 400, "a short, clear reason: {reason:.400}");
        assert!(!d["raw"].as_str().unwrap().is_empty(), "the raw input is kept");
    }
}

#[test]
fn absurd_but_valid_records_are_applied() {
    let out = run_ok(
        spindown()
            .arg("replay")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile/accepted.jsonl"))
            .arg("--json"),
    );
    let got = outcomes(&out);
    assert_eq!(got.len(), 16, "{got:#?}");
    assert!(got.values().all(|m| m["state"] == "Terminated"), "replay runs every timer out: {got:#?}");
    assert_eq!(got["hostile-far-future"]["reason"], "NO_SHOW_TIMEOUT");
    assert_eq!(got["hostile-far-future"]["terminated_at"], "+10000-01-01T00:14:59Z");
    assert_eq!(got["hostile-huge-duration"]["terminated_at"], "2026-11-26T14:00:00Z", "max_lifetime still caps");
    assert_eq!(got["hostile-negative-duration"]["reason"], "MAX_LIFETIME", "a cap in the past fires at once");
    assert_eq!(got["hostile-negative-duration"]["terminated_at"], "2026-11-26T10:00:00Z");
    assert_eq!(
        got["hostile-bad-ids"]["terminated_instances"],
        serde_json::json!([]),
        "ids that are not i-… are never terminated"
    );
    assert_eq!(got["hostile-in-envelope"]["state"], "Terminated");
}

/// Day records with hostile lines in between (and at the end).
fn mixed_day(seed: u64, with_huge: bool) -> (Vec<Vec<u8>>, usize) {
    let day = std::fs::read(fixture("day.jsonl")).unwrap();
    let mut hostile = corpus("malformed.jsonl");
    if with_huge {
        hostile.extend(huge().into_iter().map(|(l, _)| l));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut used = 0;
    let mut pool = hostile.clone();
    for line in day.split(|&c| c == b'\n') {
        if !pool.is_empty() && rng.gen_range(0..5) == 0 {
            out.push(pool.remove(rng.gen_range(0..pool.len())));
            used += 1;
        }
        out.push(line.to_vec());
    }
    used += pool.len();
    out.extend(pool);
    (out, used)
}

#[test]
fn hostile_lines_mixed_into_the_day_change_nothing_but_dead_letters() {
    let (lines, hostile) = mixed_day(9, true);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.jsonl");
    write_lines(&file, &lines);
    let res = run(spindown().arg("replay").arg(&file).arg("--json"));
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let want = outcomes(&std::fs::read_to_string(fixture("day.expected-smart.jsonl")).unwrap());
    assert_same_outcomes(&outcomes(&String::from_utf8(res.stdout).unwrap()), &want);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains(&format!("{} dead letters", hostile + 4)),
        "the day's 4 and the {hostile} hostile ones: {err}"
    );
}

#[tokio::test]
async fn hostile_records_through_the_live_stream_path_match_replay() {
    // Everything a stream can carry (JSON records; not raw bytes) arrives
    // through the reader, interleaved with the day.
    let (lines, _) = mixed_day(4, false);
    let records: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter(|v| v.get("Records").is_none())
        .collect();
    let fake = FakeStream::default();
    fake.add_shard("shard-0", None);
    for (i, r) in records.iter().enumerate() {
        fake.push_value("shard-0", i as u64 + 1, r.clone());
    }
    let dir = tempfile::tempdir().unwrap();
    // The live path on a virtual clock, so its outcomes are comparable with replay.
    let clock = ManualClock::new(Timestamp::EPOCH);
    let engine = Arc::new(sqlite_engine(&dir.path().join("live.db"), Arc::new(clock.clone())).await.0);
    let options = ReaderOptions { page_limit: 37, idle_delay: Duration::ZERO, ..ReaderOptions::default() };
    let mut reader =
        StreamReader::new(Arc::new(fake.clone()), engine.clone(), "arn:hostile".into(), options).await.unwrap();
    let mut pages = 0;
    loop {
        let r = reader.round().await.unwrap();
        pages += 1;
        if r.records == 0 {
            break;
        }
        assert!(pages < 1000);
    }
    engine.run_until(Timestamp::MAX).await.unwrap();
    let live: BTreeMap<String, Value> = engine
        .store()
        .meetings(&MeetingFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|m| (m.meeting.id.to_string(), serde_json::to_value(OutcomeLine::from(&m.meeting)).unwrap()))
        .collect();

    let file = dir.path().join("same-records.jsonl");
    std::fs::write(&file, records.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n")).unwrap();
    let replayed = outcomes(&run_ok(spindown().arg("replay").arg(&file).arg("--json")));
    assert_same_outcomes(&live, &replayed);
    let want = outcomes(&std::fs::read_to_string(fixture("day.expected-smart.jsonl")).unwrap());
    for (id, w) in &want {
        assert_eq!(&live[id], w, "{id}");
    }
    let c = engine.store().counts().await.unwrap();
    let hostile_json = corpus("malformed.jsonl").iter().filter(|l| serde_json::from_slice::<Value>(l).is_ok()).count();
    assert!(c.dead_letters as usize >= hostile_json, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_rows_on_a_real_stream_are_dead_lettered_and_good_ones_end() {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    use common::aws::Aws;
    use common::moto::Moto;
    use common::process::{sigterm, wait_started, worker};
    use spindown::time::Span;

    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let aws = Aws::new(&moto, "elephant-meetings").await;
    let past = Timestamp::now().saturating_add(Span::from_secs(-10)).to_rfc3339();
    let s = |v: &str| V::S(v.to_string());
    // What a careless writer could put in the table.
    let mut deep = V::S("leaf".into());
    for _ in 0..30 {
        deep = V::M([("k".to_string(), deep)].into());
    }
    /// A row id, its attributes, and the dead-letter kind it must get (if any).
    type Row<'a> = (&'a str, Vec<(&'a str, V)>, Option<&'a str>);
    let hostile: Vec<Row> = vec![
        ("h-meet-n", vec![("meet_time", V::N("1795687200".into()))], Some("wrong_type")),
        ("h-meet-bool", vec![("meet_time", V::Bool(true))], Some("wrong_type")),
        ("h-meet-garbage", vec![("meet_time", s("next tuesday"))], Some("bad_time")),
        ("h-status-n", vec![("meet_time", s(&past)), ("status", V::N("1".into()))], Some("wrong_type")),
        ("h-teacher-n", vec![("meet_time", s(&past)), ("teacher_ec2_id", V::N("12345678".into()))], Some("wrong_type")),
        ("h-duration-s", vec![("meet_time", s(&past)), ("duration_minutes", s("30"))], Some("wrong_type")),
        ("h-created-bad", vec![("created_at", s("yesterday"))], Some("bad_time")),
        ("h-no-start", vec![("status", s("IN_PROGRESS"))], Some("no_start")),
        // Valid, if odd: applied, never terminated wrongly.
        ("h-big-session", vec![("meet_time", s(&past)), ("teacher_session_data", s(&"x".repeat(350 << 10)))], None),
        ("h-deep-session", vec![("meet_time", s(&past)), ("student_session_data", deep)], None),
        (
            "h-bad-ids",
            vec![("meet_time", s(&past)), ("teacher_ec2_id", s("i-NOT-HEX")), ("student_ec2_id", s("sir-12345678"))],
            None,
        ),
    ];
    for (id, attrs, _) in &hostile {
        let mut item = vec![("id", s(id))];
        item.extend(attrs.iter().cloned());
        aws.put(&item).await;
    }
    // Good meetings around them.
    let mut good = Vec::new();
    for i in 0..3 {
        let id = format!("good-{i}");
        let (t, st) = (aws.instance(&id).await, aws.instance(&id).await);
        aws.put(&[("id", s(&id)), ("meet_time", s(&past)), ("teacher_ec2_id", s(&t)), ("student_ec2_id", s(&st))])
            .await;
        good.push((id, t, st));
    }
    let mut w = worker(&moto, &db, "elephant-meetings", dir.path(), "h.log");
    let store = SqliteStore::open(&db, &Default::default()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let c = store.counts().await.unwrap();
        let ended = c.terminated_by_reason.iter().map(|(_, n)| n).sum::<i64>();
        let pending = c.effects(EffectStatus::Pending) > 0;
        if ended >= 6 && c.dead_letters >= 8 && !pending {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{c:?}\n{}",
            std::fs::read_to_string(dir.path().join("h.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_started(&dir.path().join("h.log"));
    assert!(sigterm(&mut w).success());

    let dead = store.dead_letters(&Page { after: None, limit: 100 }).await.unwrap();
    for (id, _, kind) in &hostile {
        let mine: Vec<_> =
            dead.iter().filter(|d| String::from_utf8_lossy(&d.raw).contains(&format!("\"{id}\""))).collect();
        match kind {
            Some(k) => {
                assert_eq!(mine.len(), 1, "{id}: one dead letter");
                assert_eq!(&mine[0].kind, k, "{id}: {}", mine[0].reason);
            }
            None => assert!(mine.is_empty(), "{id} is valid: {:?}", mine.first().map(|d| &d.reason)),
        }
    }
    for (id, t, st) in &good {
        let m = store.meeting(&id.parse().unwrap()).await.unwrap().unwrap().meeting;
        assert_eq!(m.ended.unwrap().reason.as_str(), "NO_SHOW_TIMEOUT");
        assert_eq!(aws.state(t).await, "terminated");
        assert_eq!(aws.state(st).await, "terminated");
    }
    let odd = store.meeting(&"h-bad-ids".parse().unwrap()).await.unwrap().unwrap().meeting;
    assert!(odd.instances.is_empty(), "ids that are not i-… are noted, never terminated");
    // The same records through replay give the same outcomes.
    let file = dir.path().join("stream.jsonl");
    std::fs::write(&file, aws.stream_lines().await.join("\n")).unwrap();
    let policy = dir.path().join("the-workers-policy.toml");
    std::fs::write(&policy, common::process::POLICY).unwrap();
    let replayed = outcomes(&run_ok(spindown().arg("replay").arg(&file).arg("--policy").arg(&policy).arg("--json")));
    for m in store.meetings(&MeetingFilter::default()).await.unwrap() {
        let m = m.meeting;
        assert_eq!(replayed[m.id.as_str()]["reason"], m.ended.unwrap().reason.as_str(), "{}", m.id);
    }
}

/// Records whose text a database cannot store: NUL bytes (U+0000) in a
/// meeting id, an eventID, a status, an instance id; ids past their limits.
/// Good records around them.
fn unstorable_lines() -> Vec<String> {
    use common::records::{img, insert, rec, t};
    use serde_json::json;
    let long_id = "m".repeat(spindown::meeting::record::MAX_MEETING_ID + 1);
    vec![
        insert("good-1", "10:00", "SCHEDULED"),
        rec(Some("nul-id"), "INSERT", Some(t("10:00")), "m\u{0}nul", img("10:00", json!({}))),
        rec(Some("nul\u{0}event"), "INSERT", Some(t("10:00")), "nul-event", img("10:00", json!({}))),
        rec(
            Some("nul-status"),
            "INSERT",
            Some(t("10:00")),
            "nul-status",
            img("10:00", json!({"status": {"S": "IN_\u{0}PROGRESS"}})),
        ),
        rec(
            Some("nul-instance"),
            "INSERT",
            Some(t("10:00")),
            "nul-instance",
            img("10:00", json!({"teacher_ec2_id": {"S": "i-0123\u{0}4567"}})),
        ),
        rec(Some("long-id"), "INSERT", Some(t("10:00")), &long_id, img("10:00", json!({}))),
        rec(
            Some(&"e".repeat(spindown::meeting::record::MAX_EVENT_ID + 1)),
            "INSERT",
            Some(t("10:00")),
            "long-event",
            img("10:00", json!({})),
        ),
        // A MODIFY of a good meeting whose status holds a NUL: refused, the meeting goes on.
        rec(Some("good-1-nul"), "MODIFY", Some(t("10:01")), "good-1", img("10:00", json!({"status": {"S": "\u{0}"}}))),
        insert("good-2", "10:02", "IN_PROGRESS"),
    ]
}

/// What a replay into `db` prints, and its dead letters (kind, reason, eventID).
fn replay_into(db: &str, file: &std::path::Path) -> (String, Vec<(String, String, String)>) {
    let out = run_ok(spindown().arg("--db").arg(db).arg("replay").arg(file).arg("--json"));
    let dead = run_ok(spindown().arg("--db").arg(db).args(["dead-letters", "--json"]));
    let dead = dead
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            (s("kind"), s("reason"), s("event_id"))
        })
        .collect();
    (out, dead)
}

/// The same file of unstorable records replays to identical lines on SQLite,
/// PostgreSQL and the memory store: each such record is one `unstorable`
/// dead letter with its reason, the others are applied. (PostgreSQL used to
/// fail the whole unit of work: `invalid byte sequence for encoding "UTF8": 0x00`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_database_cannot_store_are_dead_letters_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unstorable.jsonl");
    std::fs::write(&file, unstorable_lines().join("\n")).unwrap();
    let sqlite = replay_into(dir.path().join("u.db").to_str().unwrap(), &file);
    let pg = replay_into(&common::postgres::database("unstorable"), &file);
    assert_eq!(sqlite, pg, "SQLite and PostgreSQL say the same");
    let (out, dead) = &sqlite;
    let got = outcomes(out);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["good-1", "good-2"], "the good meetings are applied");
    assert_eq!(got["good-1"]["reason"], "NO_SHOW_TIMEOUT", "the NUL status did not reach it");
    assert_eq!(dead.len(), 7, "{dead:#?}");
    assert!(dead.iter().all(|(kind, ..)| kind == "unstorable"), "{dead:#?}");
    for (needle, path) in [
        ("NUL", "the meeting id"),
        ("NUL", "eventID"),
        ("NUL", "NewImage.status"),
        ("NUL", "NewImage.teacher_ec2_id"),
        ("2048-byte", "the meeting id"),
        ("256-byte", "eventID"),
    ] {
        assert!(
            dead.iter().any(|(_, r, _)| r.starts_with(path) && r.contains(needle)),
            "{path}: {needle} in {dead:#?}"
        );
    }
    assert!(dead.iter().all(|(_, r, e)| !r.contains('\u{0}') && !e.contains('\u{0}')), "what is stored holds no NUL");

    // The memory store, through the library.
    use spindown::clock::ManualClock;
    use spindown::engine::Engine;
    use spindown::source::feed::LineFeed;
    let store = Arc::new(spindown::store::memory::MemoryStore::new());
    let clock = ManualClock::new(Timestamp::EPOCH);
    let engine = Engine::start(
        store.clone(),
        Default::default(),
        Arc::new(clock.clone()),
        spindown::source::replay::engine_options(),
    )
    .await
    .unwrap();
    let feed = LineFeed::new(std::fs::File::open(&file).unwrap(), "unstorable.jsonl");
    spindown::source::replay::replay(&engine, &clock, feed, &Default::default()).await.unwrap();
    engine.flush().await.unwrap();
    let mut lines = Vec::new();
    spindown::inspect::write_outcomes(store.as_ref(), &mut lines).await.unwrap();
    assert_eq!(outcomes(&String::from_utf8(lines).unwrap()), got, "memory says the same");
    let mem_dead = store.dead_letters(&Page { after: None, limit: 100 }).await.unwrap();
    let mem_dead: Vec<(String, String, String)> =
        mem_dead.into_iter().map(|d| (d.kind, d.reason, d.event_id.unwrap_or_default())).collect();
    assert_eq!(&mem_dead, dead);
}

/// A live worker on PostgreSQL meets rows holding NUL bytes on a real stream:
/// each is dead-lettered, and it keeps reading — the good meetings after
/// them end as they should.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_worker_on_postgresql_dead_letters_nul_rows_and_keeps_reading() {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    use common::aws::Aws;
    use common::moto::Moto;
    use common::process::{sigterm, wait_started, worker};
    use spindown::store::postgres::{PgOptions, PgStore};
    use spindown::time::Span;

    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let url = common::postgres::database("nul_live");
    let aws = Aws::new(&moto, "elephant-meetings").await;
    let past = Timestamp::now().saturating_add(Span::from_secs(-10)).to_rfc3339();
    let s = |v: &str| V::S(v.to_string());
    aws.put(&[("id", s("bad\u{0}id")), ("meet_time", s(&past))]).await;
    aws.put(&[("id", s("nul-status")), ("meet_time", s(&past)), ("status", s("IN_\u{0}PROGRESS"))]).await;
    aws.put(&[("id", s("nul-teacher")), ("meet_time", s(&past)), ("teacher_ec2_id", s("i-0\u{0}"))]).await;
    let mut good = Vec::new();
    for i in 0..3 {
        let id = format!("good-{i}");
        let t = aws.instance(&id).await;
        aws.put(&[("id", s(&id)), ("meet_time", s(&past)), ("teacher_ec2_id", s(&t))]).await;
        good.push((id, t));
    }
    let mut w = worker(&moto, std::path::Path::new(&url), "elephant-meetings", dir.path(), "w.log");
    let store = PgStore::open(&url, &PgOptions::default()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let c = store.counts().await.unwrap();
        if c.in_state(spindown::meeting::State::Terminated) == 3
            && c.dead_letters == 3
            && c.effects(EffectStatus::Pending) == 0
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{c:?}\n{}",
            std::fs::read_to_string(dir.path().join("w.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (id, instance) in &good {
        assert_eq!(aws.state(instance).await, "terminated", "{id}");
    }
    let dead = store.dead_letters(&Page { after: None, limit: 10 }).await.unwrap();
    assert!(dead.iter().all(|d| d.kind == "unstorable"), "{dead:?}");
    wait_started(&dir.path().join("w.log"));
    assert!(sigterm(&mut w).success(), "still running, and stops cleanly");
}
