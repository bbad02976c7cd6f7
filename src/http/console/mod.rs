//! The console: every meeting's story in a browser, server-rendered (HTML
//! from minijinja templates embedded in the binary, readable without
//! JavaScript).
//!
//! * [`pages`] — meetings (filters, paging), a meeting (facts, timers,
//!   effects, the timeline and the history), timers, effects, dead letters,
//!   the stream;
//! * [`actions`] — retry, terminate, extend, hold and release, with the console token;
//! * [`timeline`] — a meeting's history on a time axis (plotters SVG).
//!
//! **Read-only unless** the console was started with a token
//! (`--console-token`, `SPINDOWN_CONSOLE_TOKEN`). A write action needs the
//! token in a cookie set by `/login` (`HttpOnly`, `SameSite=Strict`), the
//! form's CSRF value (random per process), and, when the browser sends one,
//! an `Origin` of this very host: a page elsewhere cannot act through an
//! operator's browser. Each action is recorded in the meeting's history as
//! done by `console`.

// A refusal or a bad filter is answered with its page: an axum `Response`
// as the error, which is larger than clippy likes.
#![allow(clippy::result_large_err)]

mod actions;
mod pages;
mod timeline;

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::Environment;
use serde::Serialize;

use super::AppState;

/// Rows per page of a list.
const PAGE: usize = 50;

/// How long a console session lasts after sign-in.
pub(super) const SESSION_HOURS: i64 = 12;

/// Console sessions: opaque random ids handed out at sign-in, in memory (a
/// restart signs everyone out).
#[derive(Debug, Default)]
pub struct Sessions(std::sync::Mutex<std::collections::HashMap<String, crate::time::Timestamp>>);

impl Sessions {
    /// A new session from `now`; its id.
    pub(super) fn open(&self, now: crate::time::Timestamp) -> String {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        let id: String = (0..32).map(|_| format!("{:02x}", rng.gen::<u8>())).collect();
        let until = now.saturating_add(crate::time::Span::from_hours(SESSION_HOURS));
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, t| *t > now);
        map.insert(id.clone(), until);
        id
    }

    /// Whether `id` is a session that has not run out.
    pub(super) fn valid(&self, id: &str, now: crate::time::Timestamp) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(id).is_some_and(|t| *t > now)
    }
}

pub(crate) use actions::signed_in;

pub(super) fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/meetings", get(pages::meetings))
        .route("/meetings/{id}", get(pages::meeting))
        .route("/meetings/{id}/terminate", post(actions::terminate))
        .route("/meetings/{id}/extend", post(actions::extend))
        .route("/meetings/{id}/hold", post(actions::hold))
        .route("/meetings/{id}/release", post(actions::release))
        .route("/timers", get(pages::timers))
        .route("/effects", get(pages::effects))
        .route("/effects/retry", get(actions::confirm_retry).post(actions::retry_matching))
        .route("/effects/{id}/retry", post(actions::retry_one))
        .route("/dead-letters", get(pages::dead_letters))
        .route("/stream", get(pages::stream))
        .route("/login", get(actions::login_form).post(actions::login))
        .layer(axum::middleware::from_fn_with_state(state, super::guard::private))
}

/// The per-process CSRF value the console's forms carry.
pub(super) fn csrf() -> &'static str {
    static CSRF: OnceLock<String> = OnceLock::new();
    CSRF.get_or_init(|| {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        (0..32).map(|_| format!("{:x}", rng.gen_range(0..16u8))).collect()
    })
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, text) in [
            ("base.html", include_str!("templates/base.html")),
            ("overview.html", include_str!("templates/overview.html")),
            ("meetings.html", include_str!("templates/meetings.html")),
            ("meeting.html", include_str!("templates/meeting.html")),
            ("timers.html", include_str!("templates/timers.html")),
            ("effects.html", include_str!("templates/effects.html")),
            ("confirm.html", include_str!("templates/confirm.html")),
            ("dead_letters.html", include_str!("templates/dead_letters.html")),
            ("stream.html", include_str!("templates/stream.html")),
            ("login.html", include_str!("templates/login.html")),
            ("message.html", include_str!("templates/message.html")),
        ] {
            env.add_template(name, text).expect("the console's templates parse");
        }
        env
    })
}

/// What every page knows: whether writes are possible and the CSRF value.
#[derive(Serialize)]
struct Frame<'a, T: Serialize> {
    writable: bool,
    signed_in: bool,
    csrf: &'a str,
    version: &'static str,
    #[serde(flatten)]
    page: T,
}

pub(super) fn render<T: Serialize>(s: &AppState, headers: &axum::http::HeaderMap, name: &str, page: T) -> Response {
    let frame = Frame {
        writable: s.console_token.is_some(),
        signed_in: actions::signed_in(s, headers),
        csrf: csrf(),
        version: env!("CARGO_PKG_VERSION"),
        page,
    };
    match environment().get_template(name).and_then(|t| t.render(minijinja::value::Serde(&frame))) {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("the page could not be rendered: {e}")).into_response(),
    }
}

/// A page that says one thing (an error, a refusal, a result), with a status.
pub(super) fn message(
    s: &AppState,
    headers: &axum::http::HeaderMap,
    code: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    #[derive(Serialize)]
    struct Msg<'a> {
        title: &'a str,
        text: &'a str,
    }
    let mut r = render(s, headers, "message.html", Msg { title, text });
    *r.status_mut() = code;
    r
}

pub(super) fn store_error(s: &AppState, h: &axum::http::HeaderMap, e: impl std::fmt::Display) -> Response {
    message(s, h, StatusCode::SERVICE_UNAVAILABLE, "The store does not answer", &e.to_string())
}
