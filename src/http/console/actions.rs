//! The console's write actions — retry, terminate, extend, hold, release —
//! and signing in with the token.

use crate::inspect::MeetingStore;
use crate::meeting::EffectFilter;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::pages::{matching, urlencode, EffectQuery};
use super::{csrf, message, render, store_error};
use crate::http::AppState;
use crate::meeting::history::{Cause, Chunk, Entry, Note, OperatorAction, Outcome};
use crate::meeting::{Command, Extend, MeetingId};
use crate::store::{Changes, EffectStatus, Requeue};
use crate::time::{Span, Timestamp};

const COOKIE: &str = "spindown_console";
/// Who console actions are recorded as.
const BY: &str = "console";

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie_session(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == COOKIE).then(|| v.to_string())
    })
}

/// The browser carries a session opened with the console token.
pub(crate) fn signed_in(s: &AppState, headers: &HeaderMap) -> bool {
    s.console_token.is_some() && cookie_session(headers).is_some_and(|c| s.sessions.valid(&c, s.clock.now()))
}

/// Whether a write may go ahead; the refusal page otherwise.
fn allowed(s: &AppState, headers: &HeaderMap, form_csrf: &str) -> Result<(), Response> {
    let refuse = |why: &str| Err(message(s, headers, StatusCode::FORBIDDEN, "Refused", why));
    if s.console_token.is_none() {
        return refuse("this console is read-only: start it with --console-token (or SPINDOWN_CONSOLE_TOKEN) to act");
    }
    // A page elsewhere cannot post here through an operator's browser.
    if let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        let origin = origin.to_str().unwrap_or("");
        let host = host.to_str().unwrap_or("");
        if origin.split("://").nth(1) != Some(host) {
            return refuse(&format!("a request from {origin:?}, not from this console"));
        }
    }
    if headers.get("sec-fetch-site").is_some_and(|v| v != "same-origin" && v != "none") {
        return refuse("a cross-site request");
    }
    if !signed_in(s, headers) {
        return refuse("sign in with the console token first (/login)");
    }
    if !same(form_csrf, csrf()) {
        return refuse("the form is stale or not from this console: reload the page and try again");
    }
    Ok(())
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn record(
    s: &AppState,
    id: &MeetingId,
    action: OperatorAction,
    note: String,
) -> Result<(), crate::store::StoreError> {
    let Some(m) = s.store.meeting(id).await? else { return Ok(()) };
    let entry = Entry {
        at: s.clock.now(),
        cause: Cause::Operator { action, by: BY.into() },
        from: Some(m.meeting.state),
        to: Some(m.meeting.state),
        outcome: Outcome::Updated,
        reason: None,
        lateness: None,
        notes: vec![Note::Text(note)],
    };
    let uow = s.store.begin().await?;
    let chunk = std::iter::once(entry).collect::<Chunk>();
    uow.commit(Changes { history: vec![crate::meeting::stored::append(id, chunk)], ..Changes::default() }).await
}

/// Tell a worker (this process's, or a PostgreSQL hint) that an effect is due.
async fn wake(s: &AppState) {
    if let Some(e) = &s.engine {
        e.effects_notify().notify_one();
    }
    let _ = s.store.notify().await;
}

pub(super) async fn retry_one(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = allowed(&s, &headers, &f.csrf) {
        return r;
    }
    let row = match s.store.effects(&EffectFilter { id: Some(id), ..EffectFilter::default() }).await {
        Ok(r) => r.into_iter().next(),
        Err(e) => return store_error(&s, &headers, e),
    };
    let Some(row) = row else {
        return message(&s, &headers, StatusCode::NOT_FOUND, "No such effect", &format!("no effect #{id}"));
    };
    if row.status != EffectStatus::Failed {
        let text = format!("effect #{id} is {}, not failed: nothing to retry", row.status);
        return message(&s, &headers, StatusCode::CONFLICT, "Not failed", &text);
    }
    match s.store.requeue_failed(Requeue::One(id), s.clock.now()).await {
        Ok(_) => {}
        Err(e) => return store_error(&s, &headers, e),
    }
    if let Err(e) =
        record(&s, &row.meeting_id, OperatorAction::Retry, format!("effect #{id} ({}) re-queued", row.kind())).await
    {
        return store_error(&s, &headers, e);
    }
    wake(&s).await;
    Redirect::to(&format!("/meetings/{}", urlencode(row.meeting_id.as_str()))).into_response()
}

pub(super) async fn confirm_retry(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EffectQuery>,
) -> Response {
    let rows = match matching(&s, &EffectQuery { status: "failed".into(), kind: q.kind.clone(), before: None }).await {
        Ok(r) => r,
        Err(e) => return message(&s, &headers, StatusCode::BAD_REQUEST, "Bad filter", &e),
    };
    #[derive(Serialize)]
    struct P {
        count: usize,
        kind: String,
    }
    render(&s, &headers, "confirm.html", P { count: rows.len(), kind: q.kind })
}

#[derive(Deserialize)]
pub(super) struct RetryAll {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    /// The count the operator confirmed: nothing happens if it changed since.
    count: usize,
}

pub(super) async fn retry_matching(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<RetryAll>) -> Response {
    if let Err(r) = allowed(&s, &headers, &f.csrf) {
        return r;
    }
    let rows = match matching(&s, &EffectQuery { status: "failed".into(), kind: f.kind.clone(), before: None }).await {
        Ok(r) => r,
        Err(e) => return message(&s, &headers, StatusCode::BAD_REQUEST, "Bad filter", &e),
    };
    if rows.len() != f.count {
        let text = format!("{} effects match now, not the {} you confirmed: look again", rows.len(), f.count);
        return message(&s, &headers, StatusCode::CONFLICT, "Changed since", &text);
    }
    let now = s.clock.now();
    for row in &rows {
        if let Err(e) = s.store.requeue_failed(Requeue::One(row.id), now).await {
            return store_error(&s, &headers, e);
        }
        let note = format!("effect #{} ({}) re-queued with {} others", row.id, row.kind(), rows.len() - 1);
        if let Err(e) = record(&s, &row.meeting_id, OperatorAction::Retry, note).await {
            return store_error(&s, &headers, e);
        }
    }
    wake(&s).await;
    message(&s, &headers, StatusCode::OK, "Re-queued", &format!("{} failed effect(s) re-queued", rows.len()))
}

pub(super) async fn terminate(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = allowed(&s, &headers, &f.csrf) {
        return r;
    }
    let Some(mid) = MeetingId::new(id.clone()) else {
        return message(&s, &headers, StatusCode::NOT_FOUND, "No such meeting", "empty id");
    };
    let Some(engine) = &s.engine else {
        return message(
            &s,
            &headers,
            StatusCode::FORBIDDEN,
            "Refused",
            "terminate needs a worker: use `spindown terminate`",
        );
    };
    if let Err(e) = record(&s, &mid, OperatorAction::Terminate, "terminate requested in the console".into()).await {
        return store_error(&s, &headers, e);
    }
    match engine.command(&mid, Command::Terminate).await {
        Ok(_) => Redirect::to(&format!("/meetings/{}", urlencode(&id))).into_response(),
        Err(e) => message(&s, &headers, StatusCode::CONFLICT, "Not terminated", &e.to_string()),
    }
}

/// The extend and hold forms: `by` (a duration) or `until` (RFC 3339).
#[derive(Deserialize)]
pub(super) struct KeepForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    by: String,
    #[serde(default)]
    until: String,
}

pub(super) async fn extend(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<KeepForm>,
) -> Response {
    let (how, what) = if f.until.trim().is_empty() {
        match Span::parse_policy(f.by.trim()) {
            Ok(d) if d.is_positive() => (Extend::By(d), format!("extend by {d}")),
            _ => {
                let text = format!("{:?} is not a duration such as 30m or 1h30m", f.by.trim());
                return message(&s, &headers, StatusCode::BAD_REQUEST, "Not extended", &text);
            }
        }
    } else {
        match Timestamp::parse_iso(f.until.trim()) {
            Ok(t) => (Extend::Until(t), format!("extend until {t}")),
            Err(e) => {
                let text = format!("{:?} is not an RFC 3339 instant: {e}", f.until.trim());
                return message(&s, &headers, StatusCode::BAD_REQUEST, "Not extended", &text);
            }
        }
    };
    keep(&s, &headers, &f.csrf, &id, OperatorAction::Extend, what, Command::Extend(how)).await
}

pub(super) async fn hold(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<KeepForm>,
) -> Response {
    let until = match Timestamp::parse_iso(f.until.trim()) {
        Ok(t) => t,
        Err(e) => {
            let text = format!("{:?} is not an RFC 3339 instant: {e}", f.until.trim());
            return message(&s, &headers, StatusCode::BAD_REQUEST, "Not held", &text);
        }
    };
    keep(&s, &headers, &f.csrf, &id, OperatorAction::Hold, format!("hold until {until}"), Command::Hold { until }).await
}

pub(super) async fn release(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    keep(&s, &headers, &f.csrf, &id, OperatorAction::Release, "release".into(), Command::Release).await
}

/// Carry out an operator command that keeps a meeting alive, then record it
/// `by console` (a refused one changes nothing and records nothing).
async fn keep(
    s: &AppState,
    headers: &HeaderMap,
    csrf: &str,
    id: &str,
    action: OperatorAction,
    what: String,
    cmd: Command,
) -> Response {
    if let Err(r) = allowed(s, headers, csrf) {
        return r;
    }
    let Some(mid) = MeetingId::new(id) else {
        return message(s, headers, StatusCode::NOT_FOUND, "No such meeting", "empty id");
    };
    let Some(engine) = &s.engine else {
        let text = format!("{action} needs a worker: use `spindown {action}`");
        return message(s, headers, StatusCode::FORBIDDEN, "Refused", &text);
    };
    match engine.command(&mid, cmd).await {
        Ok(_) => {
            if let Err(e) = record(s, &mid, action, format!("{what} requested in the console")).await {
                return store_error(s, headers, e);
            }
            wake(s).await;
            Redirect::to(&format!("/meetings/{}", urlencode(id))).into_response()
        }
        Err(e) => message(s, headers, StatusCode::CONFLICT, "Refused", &e.to_string()),
    }
}

pub(super) async fn login_form(State(s): State<AppState>, headers: HeaderMap) -> Response {
    #[derive(Serialize)]
    struct P {}
    render(&s, &headers, "login.html", P {})
}

#[derive(Deserialize)]
pub(super) struct Login {
    token: String,
}

pub(super) async fn login(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<Login>) -> Response {
    match &s.console_token {
        None => message(&s, &headers, StatusCode::FORBIDDEN, "Read-only", "this console was started without a token"),
        Some(t) if same(t, f.token.trim()) => {
            // An opaque session id, not the token: a cookie that leaks does
            // not give the token away, and it ends with the session.
            let session = s.sessions.open(s.clock.now());
            let secure = s.secure_cookies
                || headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p == "https");
            let cookie = format!(
                "{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
                super::SESSION_HOURS * 3600,
                if secure { "; Secure" } else { "" }
            );
            let mut r = Redirect::to("/meetings").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Some(_) => message(&s, &headers, StatusCode::FORBIDDEN, "Refused", "that is not the console token"),
    }
}
