//! The console in a real headless browser: Debian's chromium driven through
//! chromedriver (the W3C WebDriver protocol, spoken here over plain HTTP):
//! the meetings list, a filter, a meeting's timeline, a failed effect
//! retried with the token — and refused without it, and from another site.
//! Screenshots go to the test run's artifacts (`target/tmp/artifacts/`).

mod common;

use spindown::inspect::MeetingStore;
use spindown::meeting::EffectFilter;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::records::{img, insert, items, rec, t};
use common::web::{artifacts, free_port, http};
use serde_json::json;
use spindown::clock::SystemClock;
use spindown::engine::{Engine, EngineOptions};
use spindown::meeting::{InstanceId, MeetingId, Policy};
use spindown::outbox::dry_run::DryRun;
use spindown::outbox::{Ec2, EffectError, Executor, RetryPolicy, TerminateReport};
use spindown::store::sqlite::{SqliteOptions, SqliteStore};
use spindown::store::{EffectStatus, Store};
use spindown::time::Timestamp;
use spindown::BoxFuture;

/// EC2 that refuses every call (a permissions mistake): effects fail.
struct Refusing;

impl Ec2 for Refusing {
    fn terminate<'a>(
        &'a self,
        _: &'a MeetingId,
        _: &'a [InstanceId],
    ) -> BoxFuture<'a, Result<TerminateReport, EffectError>> {
        Box::pin(async {
            Err(EffectError { transient: false, message: "UnauthorizedOperation: not allowed (test)".into() })
        })
    }
}

/// A database with ended meetings, one of them with a failed effect.
async fn database(path: &Path) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(path, &SqliteOptions::default()).await.unwrap());
    let clock = Arc::new(SystemClock);
    let engine =
        Engine::start(store.clone(), Policy::default(), clock.clone(), EngineOptions::default()).await.unwrap();
    let data = json!({"teacher_session_data": {"S": "t"}, "student_session_data": {"S": "s"}});
    let lines = vec![
        insert("m-noshow", "09:00", "SCHEDULED"),
        rec(
            Some("i-1"),
            "INSERT",
            Some(t("09:00")),
            "m-failing",
            img("09:00", json!({"status": {"S": "SCHEDULED"}, "teacher_ec2_id": {"S": "i-0aaaaaaaaaaaaaaa1"}})),
        ),
        insert("m-success", "09:00", "IN_PROGRESS"),
        rec(Some("s-2"), "MODIFY", Some(t("09:20")), "m-success", img("09:00", data)),
    ];
    engine.apply(items(&lines)).await.unwrap();
    engine.run_until(Timestamp::now()).await.unwrap();
    // The fixture day is past on the system clock: those meetings have ended. One starts later.
    let later = Timestamp::now().saturating_add(spindown::time::Span::from_hours(2));
    let ahead =
        rec(Some("a-1"), "INSERT", Some(Timestamp::now()), "m-later", json!({"meet_time": {"S": later.to_rfc3339()}}));
    engine.apply(items(&[ahead])).await.unwrap();
    let retry = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    let exec = Executor::new(store.clone(), Arc::new(Refusing), Arc::new(DryRun), clock, retry);
    exec.drain().await.unwrap();
    let failed =
        store.effects(&EffectFilter { status: Some(EffectStatus::Failed), ..EffectFilter::default() }).await.unwrap();
    assert!(failed.iter().any(|e| e.meeting_id.as_str() == "m-failing"), "a failed effect to retry");
    store.close().await;
}

struct Console(Child);

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn console(db: &Path, port: u16, token: Option<&str>) -> Console {
    console_with(db, port, token, &[])
}

fn console_with(db: &Path, port: u16, token: Option<&str>, extra: &[&str]) -> Console {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spindown"));
    c.arg("--db")
        .arg(db)
        .args(["console", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("SPINDOWN_CONSOLE_TOKEN");
    if let Some(t) = token {
        c.args(["--console-token", t]);
    }
    c.args(extra);
    let child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the console did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Console(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    common::browser::require();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.db");
    database(&db).await;
    let out = artifacts();

    // Read-only first: no token, so no way to act.
    let port = free_port();
    let ro = console(&db, port, None);
    let base = format!("http://127.0.0.1:{port}");
    let b = Browser::start(1280, 1500);
    b.go(&format!("{base}/meetings"));
    let page = b.source();
    for id in ["m-noshow", "m-failing", "m-success", "m-later"] {
        assert!(page.contains(&format!(">{id}</a>")), "{id} listed");
    }
    assert!(page.contains("read-only"));
    // The overview: where to look first, each figure a link to its list.
    b.go(&format!("{base}/"));
    let page = b.source();
    assert!(page.contains("<h1>Overview</h1>"), "{page}");
    let cell = |id: &str| -> String {
        let start = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}: {page}"));
        page[start..].split("</td>").next().unwrap().to_string()
    };
    assert!(page.contains("href=\"/meetings?state=Scheduled\">1</a>"), "m-later is scheduled: {page}");
    assert!(page.contains("href=\"/meetings?state=Terminated\">3</a>"), "three ended: {page}");
    assert!(cell("failed").contains(">1</a>"), "one failed effect: {}", cell("failed"));
    assert!(page.contains("UnauthorizedOperation"), "with its error");
    assert!(cell("held").contains(">0</a>"), "nobody held yet");
    assert!(page.contains("0 live workers"), "no worker runs here");
    b.go(&format!("{base}/meetings"));
    // A filter, through the form.
    b.type_into("input[name=q]", "i-0aaaaaaaaaaaaaaa1");
    b.click("form.filters button");
    // An exact instance id lists its meeting only.
    let page = b.wait_for("the filtered list", |p| {
        p.contains("i-0aaaaaaaaaaaaaaa1\"") || p.contains("value=\"i-0aaaaaaaaaaaaaaa1\"")
    });
    assert_eq!(b.count("#meetings tbody tr"), 1, "one meeting has that instance: {page}");
    assert!(page.contains(">m-failing</a>"));
    b.go(&format!("{base}/meetings?state=Terminated&reason=SUCCESS"));
    assert_eq!(b.count("#meetings tbody tr"), 1);
    assert!(b.source().contains(">m-success</a>"));
    // A start range is read from the start index, in start order: the
    // fixture day's 09:00 (three meetings, ties by id), and the one ahead.
    b.go(&format!("{base}/meetings?from=2026-11-26T09:00:00Z&to=2026-11-26T09:00:01Z"));
    let page = b.source();
    assert_eq!(b.count("#meetings tbody tr"), 3, "{page}");
    let at = |id: &str| page.find(&format!(">{id}</a>")).unwrap_or_else(|| panic!("{id} listed: {page}"));
    assert!(at("m-failing") < at("m-noshow") && at("m-noshow") < at("m-success"), "equal starts in id order");
    let (now, day) = (Timestamp::now(), spindown::time::Span::from_hours(24));
    b.go(&format!("{base}/meetings?from={}&to={}", now.to_rfc3339(), now.saturating_add(day).to_rfc3339()));
    assert_eq!(b.count("#meetings tbody tr"), 1);
    assert!(b.source().contains(">m-later</a>"));
    b.screenshot(&out.join("console-meetings.png"));
    // A meeting's timeline: records, timer fires and effects on a time axis.
    b.go(&format!("{base}/meetings/m-success"));
    assert_eq!(b.count("#timeline svg"), 1, "the timeline is drawn");
    let page = b.source();
    for mark in ["records", "timers", "effects", "INSERT", "MODIFY → SUCCESS", "terminate"] {
        assert!(page.contains(mark), "the timeline shows {mark:?}");
    }
    b.go(&format!("{base}/meetings/m-failing"));
    assert!(b.source().contains("UnauthorizedOperation"), "the failed effect's error is shown");
    assert_eq!(b.count("button.retry"), 0, "read-only: no retry button");
    let (code, body) = http(
        port,
        "POST",
        "/effects/1/retry",
        Some("csrf=x"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    )
    .unwrap();
    assert_eq!(code, 403, "read-only: {body}");
    assert!(body.contains("read-only"));
    b.go(&format!("{base}/meetings/m-later"));
    for button in ["#terminate", "#extend", "#hold", "#release"] {
        assert_eq!(b.count(button), 0, "read-only: no {button} button");
    }
    let (code, body) = http(
        port,
        "POST",
        "/meetings/m-later/hold",
        Some("csrf=x&until=2099-01-01T00:00:00Z"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    )
    .unwrap();
    assert_eq!(code, 403, "read-only: {body}");
    drop(ro);

    // With a token: signed out, refused; signed in, retried, and recorded.
    let port = free_port();
    let _rw = console(&db, port, Some("s3cret"));
    let base = format!("http://127.0.0.1:{port}");
    let failed = {
        let store = SqliteStore::open(&db, &SqliteOptions::default()).await.unwrap();
        let f = store
            .effects(&EffectFilter { status: Some(EffectStatus::Failed), ..EffectFilter::default() })
            .await
            .unwrap();
        f.iter().find(|e| e.meeting_id.as_str() == "m-failing").unwrap().id
    };
    let (code, body) = http(
        port,
        "POST",
        &format!("/effects/{failed}/retry"),
        Some("csrf=x"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    )
    .unwrap();
    assert_eq!(code, 403, "no token: {body}");
    assert!(body.contains("sign in"), "{body}");
    // Another site's page posting through the operator's browser is refused too.
    b.go(&format!("{base}/login"));
    b.type_into("#token", "s3cret");
    b.click("#sign-in");
    b.wait_for("signed in", |p| p.contains("signed in: retry, terminate, extend and hold enabled"));
    let evil = dir.path().join("evil.html");
    std::fs::write(&evil, format!("<form id=f method=post action=\"{base}/effects/{failed}/retry\"><input name=csrf value=x></form><script>document.getElementById('f').submit()</script>")).unwrap();
    b.go(&format!("file://{}", evil.display()));
    let page = b.wait_for("the cross-site post's answer", |p| p.contains("Refused"));
    assert!(page.contains("Refused"), "a cross-site post is refused: {page}");
    // The operator retries the failed effect from the meeting's page.
    b.go(&format!("{base}/meetings/m-failing"));
    assert_eq!(b.count("button.retry"), 1, "signed in: a retry button");
    b.screenshot(&out.join("console-meeting-failed.png"));
    b.click("button.retry");
    let page = b.wait_for("the retry", |p| p.contains("operator retry by console"));
    assert!(page.contains("operator retry by console"), "the retry is in the history, by console");
    assert!(page.contains("re-queued"));
    let store = SqliteStore::open(&db, &SqliteOptions::default()).await.unwrap();
    let row = store.effects(&EffectFilter { id: Some(failed), ..EffectFilter::default() }).await.unwrap();
    assert_eq!(row[0].status, EffectStatus::Pending, "re-queued for the worker");
    b.screenshot(&out.join("console-meeting.png"));
    // Keep a live meeting alive: extend it by an hour, then hold it; both
    // recorded as the console's, with the command's own entry.
    b.go(&format!("{base}/meetings/m-later"));
    assert_eq!(b.count("#release"), 0, "not held: nothing to release");
    b.click("#extend");
    let page = b.wait_for("the extension", |p| p.contains("operator extend by console"));
    assert!(page.contains("command extend") && page.contains("extended by 1h"), "both in the history: {page}");
    assert!(page.contains("id=\"extended\""), "the page says until when");
    b.click("#hold");
    let page = b.wait_for("the hold", |p| p.contains("operator hold by console"));
    assert!(page.contains("command hold") && page.contains("held until"), "{page}");
    assert!(page.contains("id=\"held\""), "the facts say it is held");
    assert_eq!(b.count("#release"), 1, "held: a release button");
    b.screenshot(&out.join("console-meeting-held.png"));
    // The timers page says whose timers a hold keeps, and until when.
    b.go(&format!("{base}/timers"));
    let page = b.source();
    assert!(page.contains("1 meeting held by an operator"), "{page}");
    let row = page.split("<tr>").find(|r| r.contains(">m-later</a>")).expect("m-later's timers are listed");
    assert!(row.contains("<td class=\"held\">until "), "{row}");
    b.go(&format!("{base}/meetings/m-later"));
    // Terminate a live meeting by hand: MANUAL, recorded as the console's.
    b.click("#terminate");
    let page = b.wait_for("the termination", |p| p.contains("operator terminate by console"));
    assert!(page.contains("MANUAL"), "terminated by hand: {page}");
    assert!(
        page.contains("operator terminate by console") && page.contains("command terminate"),
        "both in the history"
    );
    // The overview follows: the held meeting was terminated by hand in the last hour.
    b.go(&format!("{base}/"));
    let page = b.source();
    assert!(page.contains("href=\"/meetings?state=Terminated&amp;reason=MANUAL\">MANUAL</a>"), "{page}");
    assert!(page.contains("MANUAL</a></td><td class=\"num\">1</td>"), "one MANUAL in the last hour: {page}");
    // (The fixture day's meetings ended when this test ran their timers on the system clock.)
    let ended = page.find("id=\"ended-hour\"").map(|i| &page[i..(i + 24).min(page.len())]).unwrap_or("");
    assert!(ended.starts_with("id=\"ended-hour\">4<"), "four terminations in the last hour: {ended}");
    b.screenshot(&out.join("console-overview.png"));
    b.go(&format!("{base}/meetings/m-success"));
    b.screenshot(&out.join("console-timeline.png"));
    // Every request the console's pages made went to the console (or was the
    // test's own local page): nothing is fetched from elsewhere.
    let asked = b.page_requests();
    assert!(asked.iter().any(|u| u.starts_with(&base)), "the page requests are seen: {asked:?}");
    let elsewhere: Vec<&String> =
        asked.iter().filter(|u| !u.starts_with("http://127.0.0.1:") && !u.starts_with("file://")).collect();
    assert!(elsewhere.is_empty(), "the console's pages requested {elsewhere:?}");
    eprintln!("screenshots in {}", out.display());
}

/// The process's peak resident set, MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches("kB").trim();
    kb.parse::<f64>().unwrap() / 1024.0
}

/// A busy database: 1,000,000 done outbox rows (a replayed month) and 250
/// dead letters. The console reads the outbox and the dead letters newest
/// first, a page at a time: each page answers within a bound and the
/// process stays small (it used to load the whole outbox into memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_outbox_rows_page_newest_first_in_bounded_time_and_memory() {
    use common::records::t;
    use spindown::store::{Changes, NewDeadLetter, NewEffect};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("big.db");
    let store = SqliteStore::open(&db, &SqliteOptions::default()).await.unwrap();
    let one = NewEffect {
        key: "m-0/end".into(),
        subject: "m-0".into(),
        parts: spindown::meeting::stored::encode_parts(&[spindown::meeting::Effect::Terminate {
            instances: vec![InstanceId::parse("i-0123456789abcdef0").unwrap()],
        }]),
        count: 1,
        at: t("10:00"),
        completed: true,
    };
    let dead: Vec<NewDeadLetter> = (1..=250)
        .map(|i| NewDeadLetter {
            at: t("10:00"),
            origin: format!("day.jsonl:{i}"),
            kind: "not_json".into(),
            reason: format!("dead letter number {i}"),
            event_id: None,
            raw: format!("raw {i}").into_bytes(),
        })
        .collect();
    store
        .begin()
        .await
        .unwrap()
        .commit(Changes { effects: vec![one], dead_letters: dead, ..Changes::default() })
        .await
        .unwrap();
    store.close().await;
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 999999)
             INSERT INTO outbox (key, instance, parts, done, status, attempts, next_attempt_at, created_at, updated_at)
             SELECT 'm-' || x || '/end', 'm-' || x, (SELECT parts FROM outbox WHERE id = 1), 1, 'done', 1, 0, 0, 0 FROM n",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let port = free_port();
    let c = console(&db, port, None);
    let timed = |path: &str| {
        let t0 = Instant::now();
        let (code, body) = http(port, "GET", path, None, &[]).unwrap();
        (code, body, t0.elapsed())
    };
    let (code, page, took) = timed("/effects");
    assert_eq!(code, 200);
    assert_eq!(page.matches("<td><a href=\"/meetings/").count(), 50, "one page of 50 rows");
    assert!(page.contains(">m-999999</a>"), "newest first");
    assert!(page.contains("id=\"older\""), "a link to older rows");
    assert!(took < Duration::from_secs(2), "/effects took {took:?}");
    let older = page.split("id=\"older\" href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let (code, page, took) = timed(&older);
    assert_eq!(code, 200);
    assert!(page.contains(">m-999949</a>") && !page.contains(">m-999999</a>"), "the next 50");
    assert!(took < Duration::from_secs(2), "an older page took {took:?}");
    let (code, page, took) = timed("/effects?status=failed");
    assert_eq!(code, 200);
    assert!(page.contains("No effect matches."));
    assert!(took < Duration::from_secs(2), "a filter with no match took {took:?} (it must not scan a million rows)");
    let (code, page, _) = timed("/dead-letters");
    assert_eq!(code, 200);
    assert!(page.contains("dead letter number 250") && page.contains("dead letter number 201"), "the newest 50");
    assert!(!page.contains("dead letter number 200<"), "one page only");
    let rss = peak_rss_mib(c.0.id());
    assert!(rss < 150.0, "the console's peak RSS is {rss:.0} MiB");
    eprintln!("console on 1M outbox rows: /effects {took:?}, peak RSS {rss:.0} MiB");
}

/// Every request must name this listener (`Host`, and `Origin` when sent):
/// a page elsewhere whose name resolves here (DNS rebinding) gets nothing.
/// Signing in hands out an opaque session, not the token; `Secure` behind
/// TLS. A private console shows nothing without a session, but `/metrics`
/// and the health checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_origins_sessions_and_a_private_console() {
    use common::web::request;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    database(&db).await;
    let port = free_port();
    let _c = console_with(&db, port, Some("s3cret"), &["--console-private", "--allow-host", "ops.example.com"]);
    let get = |path: &str, headers: &[(&str, &str)]| request(port, "GET", path, None, headers).unwrap();
    assert_eq!(get("/metrics", &[("Host", "evil.example")]).0, 403, "a name that is not ours");
    assert_eq!(get("/livez", &[("Host", &format!("localhost:{port}"))]).0, 200);
    assert_eq!(get("/livez", &[("Host", "ops.example.com:9464")]).0, 200, "a configured name");
    assert_eq!(get("/livez", &[("Origin", "http://evil.example")]).0, 403, "another site's page");
    assert_eq!(get("/metrics", &[]).0, 200, "metrics need no session");
    let (code, head, _) = get("/meetings", &[]);
    assert_eq!(code, 303, "private: sent to sign in");
    assert!(head.to_ascii_lowercase().contains("location: /login"), "{head}");
    let form = [("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-Proto", "https")];
    let (code, head, _) = request(port, "POST", "/login", Some("token=s3cret"), &form).unwrap();
    assert_eq!(code, 303, "{head}");
    let cookie =
        head.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).expect("a session cookie").to_string();
    assert!(!cookie.contains("s3cret"), "the cookie is not the token: {cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Secure"), "{cookie}");
    let session = cookie.split_once(':').unwrap().1.trim().split(';').next().unwrap().to_string();
    let (code, _, page) = get("/meetings", &[("Cookie", &session)]);
    assert_eq!(code, 200);
    assert!(page.contains(">m-noshow</a>"));
    let (code, _, _) = get("/meetings", &[("Cookie", "spindown_console=s3cret")]);
    assert_eq!(code, 303, "the token itself is not a session");
}
