//! The worker's deployment settings (`--config FILE`, e.g. `deploy/spindown.toml`).
//!
//! Kept apart from the policy file: the policy says *when* meetings end (the
//! spec's keys, nothing else), this file says how the worker talks to AWS.
//! Every key is optional; an unknown key or a bad value is an error naming it.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::outbox::RetryPolicy;
use crate::source::stream::{ReaderOptions, Start};
use crate::time::Span;

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path}: {source}")]
    In {
        path: String,
        #[source]
        source: Box<ConfigError>,
    },
    /// Not TOML, or a key that does not exist.
    #[error("{0}")]
    Syntax(String),
    #[error("`{key}`: {message}")]
    Value { key: &'static str, message: String },
}

mod sections;

pub use sections::*;

fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Value { key, message: message.into() }
}

/// SDK settings, parsed.
#[derive(Debug, Clone, Copy)]
pub struct AwsTuning {
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
    pub operation_timeout: Duration,
    pub sdk_max_attempts: u32,
}

impl Default for AwsTuning {
    fn default() -> Self {
        WorkerConfig::default().aws().expect("defaults parse")
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    pub guard: Guard,
    pub effects: Effects,
    pub stream: StreamSettings,
    pub housekeeping: Housekeeping,
    pub aws: AwsSettings,
    pub http: HttpSettings,
    pub sweep: SweepSettings,
    pub worker: WorkerSettings,
    pub database: DatabaseSettings,
    pub retention: RetentionSettings,
}

/// Settings given on the command line, which win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub require_tag: Option<String>,
    pub max_attempts: Option<i64>,
    pub start: Option<Start>,
    /// `--listen HOST:PORT`.
    pub listen: Option<String>,
}

/// `250ms`, `90s`, `15m`, `1h30m`, `30d`.
///
/// # Errors
///
/// Anything else, naming `key`.
pub fn parse_duration(key: &'static str, s: &str) -> Result<Duration, ConfigError> {
    if let Some(ms) = s.strip_suffix("ms") {
        if !ms.is_empty() && ms.bytes().all(|c| c.is_ascii_digit()) {
            return ms.parse::<u64>().map(Duration::from_millis).map_err(|e| bad(key, e.to_string()));
        }
    }
    if let Some(days) = s.strip_suffix('d') {
        if !days.is_empty() && days.bytes().all(|c| c.is_ascii_digit()) {
            let d: u64 = days.parse().map_err(|e: std::num::ParseIntError| bad(key, e.to_string()))?;
            return Ok(Duration::from_secs(d.saturating_mul(86_400)));
        }
    }
    let span = Span::parse_policy(s)
        .map_err(|e| bad(key, format!("{s:?}: {e} (or milliseconds like \"250ms\", days like \"30d\")")))?;
    Ok(Duration::from_micros(span.as_micros().max(0) as u64))
}

impl WorkerConfig {
    /// Read and check a settings file.
    ///
    /// # Errors
    ///
    /// The file cannot be read, is not TOML, or has an unknown key or a bad value (named).
    pub fn load(path: &Path) -> Result<WorkerConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        WorkerConfig::from_toml_str(&text)
            .map_err(|e| ConfigError::In { path: path.display().to_string(), source: Box::new(e) })
    }

    /// Parse and check settings text.
    ///
    /// # Errors
    ///
    /// Not TOML, an unknown key or a bad value (named).
    pub fn from_toml_str(text: &str) -> Result<WorkerConfig, ConfigError> {
        let c: WorkerConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax(e.message().to_string()))?;
        c.retry()?;
        c.reader()?;
        c.seen_retention()?;
        c.timer_hold_max()?;
        c.lease_ttl()?;
        c.aws()?;
        c.http()?;
        c.sweep(Span::from_hours(4))?;
        c.sweep_every()?;
        c.shutdown_timeout()?;
        c.pg_options("spindown")?;
        c.call_timeout()?;
        c.retention()?;
        if c.effects.max_attempts < 1 {
            return Err(bad("effects.max_attempts", "must be at least 1"));
        }
        if c.guard.require_tag.as_deref() == Some("") {
            return Err(bad("guard.require_tag", "must not be empty"));
        }
        Ok(c)
    }

    /// These settings with the command line's on top.
    ///
    /// # Errors
    ///
    /// An override with a bad value (named).
    pub fn with(mut self, o: &Overrides) -> Result<WorkerConfig, ConfigError> {
        if let Some(tag) = &o.require_tag {
            if tag.is_empty() {
                return Err(bad("--require-tag", "must not be empty"));
            }
            self.guard.require_tag = Some(tag.clone());
        }
        if let Some(n) = o.max_attempts {
            if n < 1 {
                return Err(bad("--max-attempts", "must be at least 1"));
            }
            self.effects.max_attempts = n;
        }
        if let Some(start) = o.start {
            self.stream.start = start.as_str().to_string();
        }
        if let Some(listen) = &o.listen {
            self.http.listen = Some(listen.clone());
            self.http().map_err(|_| bad("--listen", format!("{listen:?} is not HOST:PORT (e.g. 127.0.0.1:9464)")))?;
        }
        Ok(self)
    }

    /// Everything [`worker::run`](crate::worker::run) needs besides its ports.
    ///
    /// # Errors
    ///
    /// A bad value (named).
    pub fn worker_options(
        &self,
        stream_arn: String,
        wake_socket: Option<std::path::PathBuf>,
    ) -> Result<crate::worker::WorkerOptions, ConfigError> {
        Ok(crate::worker::WorkerOptions {
            stream_arn,
            reader: self.reader()?,
            retry: self.retry()?,
            effect_lease: parse_duration("effects.lease", &self.effects.lease)?,
            poll_max: None,
            seen_retention: self.seen_retention()?,
            housekeeping: self.housekeeping.schedule.clone(),
            timer_hold_max: self.timer_hold_max()?,
            wake_socket,
            lock_file: None,
            http: self.http()?,
            sweep: None,
            retention: self.retention()?,
            store_deadline: self.call_timeout()?,
            shutdown_timeout: self.shutdown_timeout()?,
        })
    }

    /// `[worker] shutdown_timeout`.
    pub fn shutdown_timeout(&self) -> Result<Duration, ConfigError> {
        parse_duration("worker.shutdown_timeout", &self.worker.shutdown_timeout)
    }

    /// `[database] call_timeout`.
    pub fn call_timeout(&self) -> Result<Duration, ConfigError> {
        let d = parse_duration("database.call_timeout", &self.database.call_timeout)?;
        if d < Duration::from_secs(1) {
            return Err(bad("database.call_timeout", "must be at least 1s"));
        }
        Ok(d)
    }

    /// How the worker connects to PostgreSQL, under `application_name`.
    pub fn pg_options(&self, application_name: &str) -> Result<crate::store::postgres::PgOptions, ConfigError> {
        let d = &self.database;
        if d.max_connections < 2 {
            return Err(bad("database.max_connections", "must be at least 2"));
        }
        Ok(crate::store::postgres::PgOptions {
            max_connections: d.max_connections,
            acquire_timeout: parse_duration("database.acquire_timeout", &d.acquire_timeout)?,
            application_name: application_name.to_string(),
            statement_timeout: parse_duration("database.statement_timeout", &d.statement_timeout)?,
            lock_timeout: parse_duration("database.lock_timeout", &d.lock_timeout)?,
            idle_in_transaction_timeout: parse_duration(
                "database.idle_in_transaction_timeout",
                &d.idle_in_transaction_timeout,
            )?,
            keepalive: parse_duration("database.keepalive", &d.keepalive)?,
        })
    }

    /// `[retention]`.
    pub fn retention(&self) -> Result<crate::retention::Retention, ConfigError> {
        let r = &self.retention;
        let keep = |key: &'static str, s: &str| -> Result<Option<Span>, ConfigError> {
            if s == "off" {
                return Ok(None);
            }
            let d = parse_duration(key, s)?;
            if d < Duration::from_secs(60) {
                return Err(bad(key, "must be at least 1m (or \"off\" to keep for ever)"));
            }
            Ok(Some(Span::from_micros(d.as_micros() as i64)))
        };
        if r.batch == 0 {
            return Err(bad("retention.batch", "must be at least 1"));
        }
        Ok(crate::retention::Retention {
            meetings: keep("retention.meetings", &r.meetings)?,
            dead_letters: keep("retention.dead_letters", &r.dead_letters)?,
            sweep_log: keep("retention.sweep_log", &r.sweep_log)?,
            stream: keep("retention.stream", &r.stream)?,
            workers: keep("retention.workers", &r.workers)?,
            batch: r.batch,
            ..crate::retention::Retention::default()
        })
    }

    /// The sweep's settings (for `spindown sweep` and the worker's job);
    /// `max_lifetime` comes from the policy.
    pub fn sweep(&self, max_lifetime: Span) -> Result<crate::sweep::SweepOptions, ConfigError> {
        let grace = parse_duration("sweep.grace", &self.sweep.grace)?;
        let unknown = match self.sweep.unknown.as_str() {
            "report" => crate::sweep::Unknown::Report,
            "terminate" => crate::sweep::Unknown::Terminate,
            other => return Err(bad("sweep.unknown", format!("{other:?}: must be \"report\" or \"terminate\""))),
        };
        Ok(crate::sweep::SweepOptions {
            tag: self.guard.require_tag.clone().unwrap_or_else(|| "meeting_id".into()),
            grace: Span::from_micros(grace.as_micros() as i64),
            unknown,
            max_lifetime,
            dry_run: false,
        })
    }

    /// How often the worker sweeps; `None`: it does not.
    pub fn sweep_every(&self) -> Result<Option<Duration>, ConfigError> {
        match &self.sweep.every {
            None => Ok(None),
            Some(every) => {
                let d = parse_duration("sweep.every", every)?;
                if d < Duration::from_secs(1) {
                    return Err(bad("sweep.every", "must be at least 1s"));
                }
                Ok(Some(d))
            }
        }
    }

    /// The listener's settings; `None` when it is off.
    pub fn http(&self) -> Result<Option<crate::http::HttpOptions>, ConfigError> {
        let Some(listen) = &self.http.listen else { return Ok(None) };
        let addr = std::net::ToSocketAddrs::to_socket_addrs(listen.as_str())
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| bad("http.listen", format!("{listen:?} is not HOST:PORT (e.g. 127.0.0.1:9464)")))?;
        Ok(Some(crate::http::HttpOptions {
            listen: addr,
            timer_stall: parse_duration("http.timer_stall", &self.http.timer_stall)?,
            reader_stall: parse_duration("http.reader_stall", &self.http.reader_stall)?,
            console_token: None,
            console_private: self.http.console_private,
            allowed_hosts: self.http.allowed_hosts.clone(),
            secure_cookies: self.http.secure_cookies,
        }))
    }

    pub fn retry(&self) -> Result<RetryPolicy, ConfigError> {
        Ok(RetryPolicy {
            max_attempts: self.effects.max_attempts,
            base_delay: parse_duration("effects.base_delay", &self.effects.base_delay)?,
            max_delay: parse_duration("effects.max_delay", &self.effects.max_delay)?,
        })
    }

    pub fn reader(&self) -> Result<ReaderOptions, ConfigError> {
        Ok(ReaderOptions {
            start: self.stream.start.parse::<Start>().map_err(|e| bad("stream.start", e.to_string()))?,
            idle_delay: parse_duration("stream.idle_poll", &self.stream.idle_poll)?,
            refresh_every: parse_duration("stream.refresh", &self.stream.refresh)?,
            lease_ttl: self.lease_ttl()?,
            ..ReaderOptions::default()
        })
    }

    pub fn aws(&self) -> Result<AwsTuning, ConfigError> {
        if self.aws.sdk_max_attempts < 1 {
            return Err(bad("aws.sdk_max_attempts", "must be at least 1"));
        }
        Ok(AwsTuning {
            connect_timeout: parse_duration("aws.connect_timeout", &self.aws.connect_timeout)?,
            attempt_timeout: parse_duration("aws.attempt_timeout", &self.aws.attempt_timeout)?,
            operation_timeout: parse_duration("aws.operation_timeout", &self.aws.operation_timeout)?,
            sdk_max_attempts: self.aws.sdk_max_attempts,
        })
    }

    pub fn lease_ttl(&self) -> Result<Duration, ConfigError> {
        let ttl = parse_duration("stream.lease_ttl", &self.stream.lease_ttl)?;
        if ttl < Duration::from_secs(1) {
            return Err(bad("stream.lease_ttl", "must be at least 1s"));
        }
        Ok(ttl)
    }

    pub fn timer_hold_max(&self) -> Result<Duration, ConfigError> {
        parse_duration("stream.timer_hold_max", &self.stream.timer_hold_max)
    }

    pub fn seen_retention(&self) -> Result<Duration, ConfigError> {
        parse_duration("housekeeping.seen_retention", &self.housekeeping.seen_retention)
    }
}

#[cfg(test)]
mod tests;
