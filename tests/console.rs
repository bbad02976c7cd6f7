//! The console in a real headless browser: Debian's chromium driven through
//! chromedriver (the W3C WebDriver protocol, spoken here over plain HTTP):
//! the meetings list, a filter, a meeting's timeline, a failed effect
//! retried with the token — and refused without it, and from another site.
//! Screenshots go to the test run's artifacts (`target/tmp/artifacts/`).

mod common;

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
use spindown::store::{EffectFilter, EffectStatus, Store};
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
    let mut c = Command::new(env!("CARGO_BIN_EXE_spindown"));
    c.arg("--db")
        .arg(db)
        .args(["console", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("SPINDOWN_CONSOLE_TOKEN");
    if let Some(t) = token {
        c.args(["--console-token", t]);
    }
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
    b.wait_for("signed in", |p| p.contains("signed in: retry and terminate enabled"));
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
    // Terminate a live meeting by hand: MANUAL, recorded as the console's.
    b.go(&format!("{base}/meetings/m-later"));
    b.click("#terminate");
    let page = b.wait_for("the termination", |p| p.contains("operator terminate by console"));
    assert!(page.contains("MANUAL"), "terminated by hand: {page}");
    assert!(
        page.contains("operator terminate by console") && page.contains("command terminate"),
        "both in the history"
    );
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
