//! spindown — a durable state-machine engine that spins down meeting EC2 instances.
//!
//! Every tutoring meeting is a persisted, typed state machine
//! (`Scheduled → InProgress → Partial/Complete → Terminated`). DynamoDB Stream
//! records move it; durable one-shot timers (the old EventBridge safety net,
//! keep-alive re-checks, a lifetime cap) end it; its side effects — EC2
//! `TerminateInstances` and the conditional DynamoDB write-back — are written
//! to an outbox in the same unit of work and run idempotently after commit.
//! Every input leaves a history entry, so each meeting's story can be read
//! back: what happened, when, why, which effects ran and how they ended. The
//! rules are `spec/meeting-workflow.md`.
//!
//! The library is the product; the `spindown` binary is a thin layer over it.
//!
//! # Embedding
//!
//! ```no_run
//! use std::sync::Arc;
//! use spindown::clock::SystemClock;
//! use spindown::engine::{Engine, EngineOptions, Incoming};
//! use spindown::inspect::MeetingStore;
//! use spindown::meeting::{record, MeetingId, Policy};
//! use spindown::store::sqlite::{SqliteOptions, SqliteStore};
//! use spindown::store::Store;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(SqliteStore::open("meetings.db".as_ref(), &SqliteOptions::default()).await?);
//! let engine = Engine::start(store.clone(), Policy::default(), Arc::new(SystemClock), EngineOptions::default()).await?;
//! // Feed stream records (Lambda shape): one unit of work per batch.
//! let line = br#"{"eventID":"1","eventName":"INSERT","dynamodb":{"Keys":{"id":{"S":"m-1"}},"NewImage":{"meet_time":{"S":"2026-11-26T10:00:00Z"}}}}"#;
//! let items = record::decode_line(line).into_iter().map(|item| Incoming { item, origin: "example".into() }).collect();
//! engine.apply(items).await?;
//! // Run the timer loop until shutdown; read a meeting back.
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let timers = async { engine.run_timers(async { stopped.await.ok(); }).await };
//! let _ = stop.send(());
//! timers.await?;
//! let m = store.meeting(&MeetingId::new("m-1").unwrap()).await?;
//! # Ok(()) }
//! ```
//!
//! See `examples/embed.rs` for a complete program, with the outbox executor
//! and your own ports, and [`machine`] for how to write a machine of your own
//! (`examples/transcode.rs` runs one on the durable engine: a restart, the
//! outbox, its history).
//!
//! # Layout
//!
//! Dependencies point inward: [`meeting`] imports nothing async, nothing from
//! sqlx or the AWS SDK; [`store`] knows no machine: it keeps what it is
//! given; [`inspect`] holds the typed read models over it
//! ([`MeetingStore`](inspect::MeetingStore));
//! [`outbox`] knows effects and ports, not the rules; only the binary
//! (`src/bin/spindown/`) wires concrete adapters together.
//!
//! * [`backoff`] — capped exponential backoff with jitter (every loop's wait).
//! * [`time`] — [`Timestamp`](time::Timestamp) (µs since the epoch) and
//!   [`Span`](time::Span); the spec's time and duration formats.
//! * [`clock`] — the [`Clock`](clock::Clock) trait: the system clock for the
//!   worker, a manual clock for replay and tests.
//! * [`named`] — enums named by strings (`names!`), for every layer.
//! * [`machine`] — the [`Machine`](machine::Machine) trait: a typed state
//!   machine's types and its pure step, all a runtime sees of its rules;
//!   [`Durable`](machine::Durable): what the durable engine needs besides
//!   (ids, source items, history entries, effects, the stored document and
//!   what is indexed of it).
//! * [`meeting`] — the pure model: ids, facts, states, the transition rules,
//!   the policy, record decoding, the history vocabulary; the meeting as
//!   the store keeps it (its document, typed rows).
//! * [`legacy`] — the old Lambdas (safety net and terminator) as a second
//!   machine, for `whatif`.
//! * [`engine`] — [`Engine`](engine::Engine) runs any durable machine:
//!   units of work, timer order and paging, the stream gate, the timer loop;
//!   [`engine::core`] runs any machine in memory on a virtual clock in the
//!   engine's timer order (`whatif`'s models).
//! * [`operate`] — the meeting workflow on the durable engine
//!   ([`MeetingEngine`](operate::MeetingEngine)), operator commands.
//! * [`store`] — the storage seam ([`Store`](store::Store),
//!   [`UnitOfWork`](store::UnitOfWork)) over generic rows: an instance's
//!   id, version, applied keys and encoded state, with what is indexed of
//!   it ([`machine::Durable`]); one SQL implementation of it
//!   ([`store::sql`]) generic over a small [`Dialect`](store::Dialect), in
//!   SQLite's (the embedded default) and PostgreSQL's (several workers on one
//!   database); and the in-memory one.
//! * [`outbox`] — the effect ports, the executor (leases, retry, backoff),
//!   the dry run.
//! * [`source`] — record sources: files, the DynamoDB Streams reader and its
//!   shard leases, replay.
//! * [`adapters`] — the AWS SDK behind the ports, with error classification.
//! * [`http`] — the operator's listener (axum): `/metrics`, `/livez`,
//!   `/readyz` and the console (server-rendered pages, token-guarded actions).
//! * [`telemetry`] — every metric's name and meaning, recorded through the
//!   `metrics` facade; the liveness `/readyz` reads.
//! * [`retention`] — how long terminated meetings, dead letters and logs are
//!   kept; the housekeeping job and `spindown prune` (with an archive).
//! * [`sweep`] — the orphan sweep: tagged instances that outlived their meeting.
//! * [`inspect`] — read models: the replay line, `show`, `status`, the held
//!   meetings (the hold index).
//! * [`whatif`] — the same records under other rules (the Lambdas, other
//!   policies), in memory: instance-hours, cost, meetings cut short.
//! * [`tune`] — a space of policies over recorded records: every candidate
//!   as a what-if model (each meeting alone under each), the frontier of
//!   instance-hours against meetings cut short, the cheapest that cuts no
//!   more than the base, checked on held-out meetings (`spec/tune.md`).
//! * [`worker`] — stream reader, timer loop, executor and housekeeping run
//!   together until a shutdown future completes (`spindown run`).
//! * [`config`] — the worker settings file (`deploy/spindown.toml`).
//! * [`failpoint`] — crash points for the reliability tests.
#![forbid(unsafe_code)]

pub mod adapters;
pub mod backoff;
pub mod clock;
pub mod config;
pub mod engine;
pub mod failpoint;
pub mod http;
pub mod inspect;
pub mod legacy;
pub mod machine;
pub mod meeting;
pub mod named;
pub mod operate;
pub mod outbox;
pub mod retention;
pub mod source;
pub mod store;
pub mod sweep;
pub mod telemetry;
pub mod time;
pub mod tune;
pub mod whatif;
pub mod worker;

/// A boxed, sendable future (ports are used as trait objects).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
