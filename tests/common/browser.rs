//! A real headless browser for the tests: Debian's chromium driven through
//! chromedriver (the W3C WebDriver protocol, spoken here over plain HTTP).
//!
//! Chromium starts with its own background traffic off (component updates,
//! sign-in, sync, time queries, safe browsing, pings), and every request a
//! page makes is read from the page's own DevTools network events (the
//! driver's `performance` log): a test judges a page by what the page asked
//! for, never by a list of the browser's hosts to ignore.
//!
//! A machine without chromium or chromedriver fails the test with the reason
//! (`scripts/test-deps` installs both).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::web::{free_port, http, which};

/// Chromium's flags for a test: headless, and nothing of its own on the network.
pub const QUIET_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--no-pings",
    "--metrics-recording-only",
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,AutofillServerCommunication,Translate",
];

/// Chromium and chromedriver, or a failure that says how to get them.
pub fn require() -> (PathBuf, PathBuf) {
    let chromium = ["chromium", "chromium-browser"].iter().find_map(|b| which(b));
    let driver = which("chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => (c, d),
        (c, d) => panic!(
            "this test drives a real browser and cannot run here: {}{}— run scripts/test-deps \
             (or apt-get install chromium chromium-driver)",
            if c.is_none() { "no chromium on PATH " } else { "" },
            if d.is_none() { "no chromedriver on PATH " } else { "" },
        ),
    }
}

/// A WebDriver session on chromedriver.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    /// A browser with a window of `width`×`height` CSS pixels.
    pub fn start(width: u32, height: u32) -> Browser {
        let (chromium, chromedriver) = require();
        let port = free_port();
        let driver = Command::new(chromedriver)
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
        let mut args: Vec<String> = QUIET_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--window-size={width},{height}"));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"performance": "ALL"},
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args}
        }}});
        let mut b = Browser { driver, port, session: String::new() };
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_string();
        b
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
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

    pub fn go(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({"url": url})));
    }

    pub fn source(&self) -> String {
        self.call("GET", &self.s("/source"), None).as_str().unwrap().to_string()
    }

    /// The page's source once `ok` holds (a form's navigation may still be under way after a click).
    pub fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
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

    pub fn find(&self, css: &str) -> String {
        let v = self.call("POST", &self.s("/element"), Some(json!({"using": "css selector", "value": css})));
        v["element-6066-11e4-a52e-4f735466cecf"].as_str().unwrap_or_else(|| panic!("no element {css}: {v}")).to_string()
    }

    pub fn count(&self, css: &str) -> usize {
        let v = self.call("POST", &self.s("/elements"), Some(json!({"using": "css selector", "value": css})));
        v.as_array().map_or(0, Vec::len)
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &self.s(&format!("/element/{e}/click")), None);
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call("POST", &self.s(&format!("/element/{e}/clear")), None);
        self.call("POST", &self.s(&format!("/element/{e}/value")), Some(json!({"text": text})));
    }

    /// The page as a PNG file; returns its size in bytes.
    pub fn screenshot(&self, path: &Path) -> usize {
        use base64::Engine as _;
        let b64 = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        std::fs::write(path, &png).unwrap();
        png.len()
    }

    /// Every URL the pages shown since the last call asked for (their
    /// DevTools `Network.requestWillBeSent` events), in order. The browser's
    /// own traffic is not a page's and is not here.
    pub fn page_requests(&self) -> Vec<String> {
        let entries = self.call("POST", &self.s("/se/log"), Some(json!({"type": "performance"})));
        let mut urls = Vec::new();
        for e in entries.as_array().into_iter().flatten() {
            let Some(text) = e["message"].as_str() else { continue };
            let Ok(m) = serde_json::from_str::<Value>(text) else { continue };
            if m["message"]["method"] == "Network.requestWillBeSent" {
                if let Some(url) = m["message"]["params"]["request"]["url"].as_str() {
                    urls.push(url.to_string());
                }
            }
        }
        urls
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

/// The page at `url` is on screen: a screenshot of it to `shot` (at least
/// `min_bytes`: a rendered page), and it requested nothing but itself (its
/// own DevTools network events).
pub fn assert_self_contained(browser: &Browser, url: &str, shot: &Path, min_bytes: usize) {
    let size = browser.screenshot(shot);
    assert!(size > min_bytes, "the screenshot holds a rendered page ({size} bytes)");
    let asked = browser.page_requests();
    assert!(asked.iter().any(|u| u == url), "the page's own load is seen: {asked:?}");
    let elsewhere: Vec<&String> = asked.iter().filter(|u| *u != url).collect();
    assert!(elsewhere.is_empty(), "the page requested {elsewhere:?}");
    eprintln!("screenshot: {}", shot.display());
}

/// A report page written to `page`: it holds nothing that loads from
/// elsewhere (scripts, style sheets, remote images or fonts); open it in
/// `browser`. Its text, its URL and the DOM the browser built.
pub fn open_report(browser: &Browser, page: &Path) -> (String, String, String) {
    let html = std::fs::read_to_string(page).unwrap();
    for pattern in ["<script", "<link", "@import", "src=\"http", "href=\"http", "url("] {
        assert!(!html.contains(pattern), "the page holds {pattern:?}: it must be self-contained");
    }
    let url = format!("file://{}", page.display());
    browser.go(&url);
    let dom = browser.source();
    (html, url, dom)
}
