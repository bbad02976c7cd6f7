//! The operator's listener: one port (axum) for Prometheus metrics, health
//! checks and the console.
//!
//! * [`metrics`] — `/metrics`: the counters and histograms the
//!   engine records as it works, and gauges read from the store at each scrape;
//! * `health` — `/livez` (the process serves) and `/readyz` (the store
//!   answers, the timer loop and the stream reader are alive);
//! * the console at `/`.
//!
//! `spindown run --listen ADDR` serves all of it beside a worker;
//! `spindown console --listen ADDR` serves it for a database alone, read-only.

mod console;
mod guard;
mod health;
pub mod metrics;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;

use crate::clock::Clock;
use crate::operate::MeetingEngine;

use crate::store::Store;
use crate::telemetry::Liveness;

/// The operator's listener.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub listen: std::net::SocketAddr,
    /// `/readyz` fails when the timer loop has not run for this long.
    pub timer_stall: Duration,
    /// `/readyz` fails when the stream reader has not finished a round for this long.
    pub reader_stall: Duration,
    /// Write actions in the console need this token; `None`: read-only.
    pub console_token: Option<String>,
    /// Reading the console needs the token too (`/metrics` and the health
    /// checks never do).
    pub console_private: bool,
    /// `Host` names the listener answers besides IP literals and `localhost`
    /// (a name a proxy or a browser uses for it).
    pub allowed_hosts: Vec<String>,
    /// Mark the console's session cookie `Secure` (it is served over TLS,
    /// behind a proxy); also when a proxy says `X-Forwarded-Proto: https`.
    pub secure_cookies: bool,
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    /// A worker's engine (commands from the console); `None` for `spindown console`.
    pub(crate) engine: Option<Arc<MeetingEngine>>,
    /// A worker's timer loop and reader; `None` for `spindown console`.
    pub(crate) liveness: Option<Arc<Liveness>>,
    pub(crate) timer_stall: Duration,
    pub(crate) reader_stall: Duration,
    pub(crate) console_token: Option<Arc<str>>,
    /// Reading the console needs a session too.
    pub(crate) console_private: bool,
    /// `Host` names answered besides IP literals and `localhost`.
    pub(crate) allowed_hosts: Arc<[String]>,
    pub(crate) secure_cookies: bool,
    pub(crate) sessions: Arc<console::Sessions>,
    pub(crate) prometheus: metrics_exporter_prometheus::PrometheusHandle,
}

impl AppState {
    /// Beside a running worker.
    pub fn worker(engine: Arc<MeetingEngine>, options: HttpOptions) -> AppState {
        AppState {
            store: engine.store().clone(),
            clock: engine.clock().clone(),
            liveness: Some(engine.liveness().clone()),
            engine: Some(engine),
            timer_stall: options.timer_stall,
            reader_stall: options.reader_stall,
            console_token: options.console_token.map(Arc::from),
            console_private: options.console_private,
            allowed_hosts: options.allowed_hosts.into(),
            secure_cookies: options.secure_cookies,
            sessions: Arc::default(),
            prometheus: metrics::recorder(),
        }
    }

    /// For a database alone (`spindown console`): read-only unless a token is
    /// given; `engine` (on the same store) carries out `terminate`.
    pub fn database(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        console_token: Option<String>,
        engine: Option<Arc<MeetingEngine>>,
    ) -> AppState {
        AppState {
            store,
            clock,
            engine,
            liveness: None,
            timer_stall: Duration::MAX,
            reader_stall: Duration::MAX,
            console_token: console_token.map(Arc::from),
            console_private: false,
            allowed_hosts: Arc::from(Vec::new()),
            secure_cookies: false,
            sessions: Arc::default(),
            prometheus: metrics::recorder(),
        }
    }

    /// Reading the console needs a session too (`/metrics` and the health checks never do).
    pub fn private(mut self, private: bool) -> AppState {
        self.console_private = private;
        self
    }

    /// `Host` names answered besides IP literals and `localhost`.
    pub fn allow_hosts(mut self, hosts: Vec<String>) -> AppState {
        self.allowed_hosts = hosts.into();
        self
    }

    /// Mark the session cookie `Secure`.
    pub fn secure_cookies(mut self, secure: bool) -> AppState {
        self.secure_cookies = secure;
        self
    }
}

/// Every route, behind the `Host`/`Origin` allow-list.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::scrape))
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .merge(console::routes(state.clone()))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::hosts))
        .with_state(state)
}

/// Serve on `listener` until `shutdown`.
///
/// # Errors
///
/// The listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
