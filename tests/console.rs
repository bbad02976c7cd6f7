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

use common::records::{img, insert, items, rec, t};
use common::web::{artifacts, free_port, http, which};
use serde_json::{json, Value};
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

/// A WebDriver session on chromedriver.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    fn start(chromium: &Path) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium.display().to_string(),
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1500",
                     "--hide-scrollbars", "--force-device-scale-factor=1", "--disable-background-networking"]}}}});
        let mut b = Browser { driver, port, session: String::new() };
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_string();
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body =
            body.map(|b| b.to_string()).unwrap_or_else(|| if method == "POST" { "{}".into() } else { String::new() });
        let (code, text) = http(self.port, method, path, Some(&body), &[("Content-Type", "application/json")]).unwrap();
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("webdriver {method} {path}: {code} {text}: {e}"));
        assert!(code == 200, "webdriver {method} {path}: {code} {v}");
        v["value"].clone()
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn go(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({"url": url})));
    }

    fn source(&self) -> String {
        self.call("GET", &self.s("/source"), None).as_str().unwrap().to_string()
    }

    /// The page's source once `ok` holds (a form's navigation may still be under way after a click).
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let page = self.source();
            if ok(&page) {
                return page;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {page}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn find(&self, css: &str) -> String {
        let v = self.call("POST", &self.s("/element"), Some(json!({"using": "css selector", "value": css})));
        v["element-6066-11e4-a52e-4f735466cecf"].as_str().unwrap_or_else(|| panic!("no element {css}: {v}")).to_string()
    }

    fn count(&self, css: &str) -> usize {
        let v = self.call("POST", &self.s("/elements"), Some(json!({"using": "css selector", "value": css})));
        v.as_array().map_or(0, Vec::len)
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &self.s(&format!("/element/{e}/click")), None);
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call("POST", &self.s(&format!("/element/{e}/clear")), None);
        self.call("POST", &self.s(&format!("/element/{e}/value")), Some(json!({"text": text})));
    }

    fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let b64 = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(self.port, "DELETE", &self.s(""), None, &[]);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
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
    let (Some(chromium), Some(_)) =
        (["chromium", "chromium-browser"].iter().find_map(|b| which(b)), which("chromedriver"))
    else {
        assert!(std::env::var_os("CI").is_none(), "CI installs chromium and chromium-driver");
        eprintln!("skipped: no chromium/chromedriver (apt-get install chromium chromium-driver)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.db");
    database(&db).await;
    let out = artifacts();

    // Read-only first: no token, so no way to act.
    let port = free_port();
    let ro = console(&db, port, None);
    let base = format!("http://127.0.0.1:{port}");
    let b = Browser::start(&chromium);
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
    eprintln!("screenshots in {}", out.display());
}
