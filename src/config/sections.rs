//! The settings file's sections, as written (strings for durations, parsed
//! and checked by [`WorkerConfig`](super::WorkerConfig)), with their defaults.

use serde::Deserialize;

/// `[guard]`: what the worker may terminate.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// Terminate an instance only if `DescribeInstances` shows this tag equal
    /// to the meeting id (e.g. `"meeting_id"`); others are refused and recorded.
    pub require_tag: Option<String>,
}

/// `[effects]`: the outbox executor.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Effects {
    /// Attempts before an effect is marked failed (then `spindown retry`).
    pub max_attempts: i64,
    /// First retry delay; doubles each attempt (with jitter).
    pub base_delay: String,
    /// Longest delay between attempts.
    pub max_delay: String,
    /// How long a worker holds the effects it claimed against the others: a
    /// worker that dies mid-call leaves them to another after this. Longer
    /// than one attempt can take with the SDK's timeouts.
    pub lease: String,
}

impl Default for Effects {
    fn default() -> Self {
        Effects { max_attempts: 10, base_delay: "1s".into(), max_delay: "5m".into(), lease: "2m".into() }
    }
}

/// `[stream]`: the DynamoDB Streams reader.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSettings {
    /// `trim-horizon` (default) or `latest`, for a stream never read before.
    pub start: String,
    /// Pause between polls of an idle stream (Lambda polls ~4 times a second).
    pub idle_poll: String,
    /// How often the shard list is refreshed.
    pub refresh: String,
    /// Timers wait for the stream to be read past their due time (so a
    /// backlog is applied in event-time order, as replay would), but never
    /// longer than this: an unreadable stream does not keep meetings alive.
    pub timer_hold_max: String,
    /// How long a shard lease lasts unless its worker renews it (every third
    /// of it): after a worker dies, another takes its shards over this late.
    pub lease_ttl: String,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            start: "trim-horizon".into(),
            idle_poll: "250ms".into(),
            refresh: "30s".into(),
            timer_hold_max: "60s".into(),
            lease_ttl: "10s".into(),
        }
    }
}

/// `[housekeeping]`: recurring jobs.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Housekeeping {
    /// How long applied `eventID`s are remembered for dedupe (the stream keeps
    /// records 24 h, so anything longer is safe).
    pub seen_retention: String,
    /// Cron expression (sec min hour dom mon dow) for the pruning job.
    pub schedule: String,
}

impl Default for Housekeeping {
    fn default() -> Self {
        Housekeeping { seen_retention: "48h".into(), schedule: "0 */10 * * * *".into() }
    }
}

/// `[aws]`: SDK timeouts and retries (each call; the outbox retries across calls).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AwsSettings {
    pub connect_timeout: String,
    /// One HTTP attempt.
    pub attempt_timeout: String,
    /// One call, retries included.
    pub operation_timeout: String,
    /// Attempts per call made by the SDK itself (standard retry mode).
    pub sdk_max_attempts: u32,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            connect_timeout: "3s".into(),
            attempt_timeout: "10s".into(),
            operation_timeout: "30s".into(),
            sdk_max_attempts: 3,
        }
    }
}

/// `[http]`: the operator's listener (metrics, health, the console).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// `HOST:PORT` to serve `/metrics`, `/livez`, `/readyz` and the console
    /// on (e.g. `127.0.0.1:9464`); off unless given (or `--listen`).
    pub listen: Option<String>,
    /// `/readyz` fails when the timer loop has not run for this long.
    pub timer_stall: String,
    /// `/readyz` fails when the stream reader has not finished a round for this long.
    pub reader_stall: String,
    /// The console's pages need the console token to be read too (not only
    /// to act); `/metrics` and the health checks never need it.
    pub console_private: bool,
    /// `Host` names the listener answers to besides IP literals and
    /// `localhost` (the name a proxy or an operator's browser uses for it);
    /// any other `Host` or `Origin` is refused (DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Mark the console's session cookie `Secure` (served over TLS by a
    /// proxy in front); also done when the proxy says `X-Forwarded-Proto: https`.
    pub secure_cookies: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: None,
            timer_stall: "30s".into(),
            reader_stall: "60s".into(),
            console_private: false,
            allowed_hosts: Vec::new(),
            secure_cookies: false,
        }
    }
}

/// `[sweep]`: the orphan sweep (off unless `every` is given).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SweepSettings {
    /// How often the worker sweeps (e.g. `"5m"`); off unless given.
    pub every: Option<String>,
    /// How long after a meeting ended its instances may still be running.
    pub grace: String,
    /// `report` (default) or `terminate`: instances tagged for a meeting
    /// spindown never saw, once launched longer ago than `max_lifetime + grace`.
    pub unknown: String,
}

impl Default for SweepSettings {
    fn default() -> Self {
        SweepSettings { every: None, grace: "10m".into(), unknown: "report".into() }
    }
}

/// `[worker]`: the process.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// After SIGTERM (or a part failing), the longest the others get to
    /// finish their transactions; then the process exits anyway.
    pub shutdown_timeout: String,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings { shutdown_timeout: "30s".into() }
    }
}

/// `[database]`: connections and the limits every session runs under
/// (PostgreSQL; `call_timeout` for both backends).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// Connections in the worker's pool.
    pub max_connections: u32,
    /// How long a call waits for a free connection (or to connect).
    pub acquire_timeout: String,
    /// The server cancels a statement running longer than this.
    pub statement_timeout: String,
    /// Nobody waits for a row lock longer than this.
    pub lock_timeout: String,
    /// The server ends a session idle inside a transaction this long (a
    /// worker that froze or was cut off), releasing its locks.
    pub idle_in_transaction_timeout: String,
    /// TCP keepalive idle time on the server's side of each connection.
    pub keepalive: String,
    /// The longest any one call of the worker waits for an answer (a whole
    /// unit of work) before it counts as lost and is tried again.
    pub call_timeout: String,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            max_connections: 8,
            acquire_timeout: "10s".into(),
            statement_timeout: "30s".into(),
            lock_timeout: "10s".into(),
            idle_in_transaction_timeout: "60s".into(),
            keepalive: "30s".into(),
            call_timeout: "60s".into(),
        }
    }
}

/// `[retention]`: how long what is no longer needed is kept (`"off"`: for ever).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// A terminated meeting, its history and its outbox rows, after its end.
    pub meetings: String,
    pub dead_letters: String,
    pub sweep_log: String,
    /// Stream gaps, and the checkpoints of shards read to their end.
    pub stream: String,
    /// The rows of workers not seen for this long.
    pub workers: String,
    /// Rows deleted per transaction.
    pub batch: usize,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            meetings: "30d".into(),
            dead_letters: "30d".into(),
            sweep_log: "30d".into(),
            stream: "30d".into(),
            workers: "1d".into(),
            batch: 500,
        }
    }
}
