//! Who may talk to the listener: a `Host`/`Origin` allow-list for every
//! request (a page elsewhere whose name resolves to this machine — DNS
//! rebinding — is refused), and, for a private console, a session for every
//! console page.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;

/// The host part of `host[:port]` (an IPv6 literal keeps its brackets off).
fn host_part(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    }
}

/// Whether a `Host` (or an `Origin`'s authority) names this listener: an IP
/// literal, `localhost`, or one of the configured names (with or without its port).
pub(crate) fn host_allowed(authority: &str, allowed: &[String]) -> bool {
    let host = host_part(authority).trim_end_matches('.');
    host.parse::<std::net::IpAddr>().is_ok()
        || host.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(authority) || host_part(a).eq_ignore_ascii_case(host))
}

fn refused(why: String) -> Response {
    (StatusCode::FORBIDDEN, format!("refused: {why}\n")).into_response()
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Every request: its `Host` (and `Origin`, when sent) must name this listener.
pub(super) async fn hosts(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let h = request.headers();
    match header_str(h, header::HOST) {
        Some(host) if host_allowed(host, &s.allowed_hosts) => {}
        Some(host) => {
            return refused(format!(
                "Host {host:?} is not this listener's (allow it in [http] allowed_hosts if it is a name for it)"
            ))
        }
        None => return refused("no Host header".into()),
    }
    if let Some(origin) = header_str(h, header::ORIGIN) {
        let authority = origin.split("://").nth(1).unwrap_or("");
        if origin != "null" && !host_allowed(authority, &s.allowed_hosts) {
            return refused(format!("a request from {origin:?}"));
        }
    }
    next.run(request).await
}

/// A private console's pages: signed in, or sent to sign in.
pub(super) async fn private(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if s.console_private && path != "/login" && !super::console::signed_in(&s, request.headers()) {
        if s.console_token.is_none() {
            return refused("this console is private and was started without a token".into());
        }
        return Redirect::to("/login").into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn ip_literals_localhost_and_configured_names_only() {
        let allowed = vec!["spindown.internal".to_string(), "ops.example.com:8443".to_string()];
        for ok in [
            "127.0.0.1:9464",
            "10.0.3.7",
            "[::1]:9464",
            "localhost:9464",
            "spindown.internal:9464",
            "ops.example.com:8443",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for no in ["evil.example:9464", "127.0.0.1.nip.io:9464", "spindown.internal.evil.example", ""] {
            assert!(!host_allowed(no, &allowed), "{no}");
        }
    }
}
