//! spindown — a durable state-machine engine that spins down meeting EC2 instances.
//!
//! Every tutoring meeting is a persisted, typed state machine
//! (`Scheduled → InProgress → Partial/Complete → Terminated`) in one SQLite
//! file. DynamoDB Stream records move it; durable one-shot timers (the old
//! EventBridge safety net, keep-alive re-checks, a lifetime cap) end it; its
//! side effects — EC2 `TerminateInstances` and the conditional DynamoDB
//! write-back — are written to an outbox in the same transaction and run
//! idempotently after commit. Every input leaves a history row, so each
//! meeting's story can be read back: what happened, when, why, which effects
//! ran and how they ended. The rules are `spec/meeting-workflow.md`.
//!
//! The library is the product; the `spindown` binary is a thin layer over it.
//!
//! # Embedding
//!
//! ```no_run
//! use std::sync::Arc;
//! use spindown::{clock::SystemClock, engine::{Engine, Incoming}, policy::Policy, record, store::StoreOptions};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::open("meetings.db".as_ref(), Policy::default(), Arc::new(SystemClock), &StoreOptions::default()).await?;
//! // Feed stream records (Lambda shape), one transaction per batch.
//! let line = br#"{"eventID":"1","eventName":"INSERT","dynamodb":{"Keys":{"id":{"S":"m-1"}},"NewImage":{"meet_time":{"S":"2026-11-26T10:00:00Z"}}}}"#;
//! let items = record::decode_line(line).into_iter().map(|item| Incoming { item, origin: "example".into() }).collect();
//! engine.apply(items).await?;
//! // Run the timer loop until shutdown; read a meeting back.
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let timers = async { engine.run_timers(async { stopped.await.ok(); }).await };
//! let _ = stop.send(());
//! timers.await?;
//! let m = engine.store().meeting(&"m-1".parse()?).await?;
//! # Ok(()) }
//! ```
//!
//! See `examples/embed.rs` for a complete program.
//!
//! # Layout
//!
//! Dependencies point inward: [`machine`] imports nothing async, nothing from
//! sqlx or the AWS SDK.
//!
//! * [`time`] — [`Timestamp`](time::Timestamp) (µs since the epoch) and
//!   [`Span`](time::Span); the spec's time and duration formats.
//! * [`machine`] — the meeting state machine, pure and synchronous:
//!   [`transition`](machine::transition) returns the new meeting, effects and
//!   timer changes as data.
//! * [`policy`] — the policy file (`workflows/meeting.toml`) and its validation.
//! * [`record`] — DynamoDB stream record → machine input (pure decoding, dead
//!   letters with a reason).
//! * [`clock`] — the [`Clock`](clock::Clock) trait: the system clock for the
//!   worker, a manual clock for replay and tests.
//! * [`store`] — SQLite: migrations, meetings, timers, history, outbox, seen
//!   event ids, dead letters; multi-row writes, one transaction per batch.
//! * [`engine`] — applies inputs in one transaction each batch, fires due
//!   timers in order, runs the timer loop.
//! * [`effects`] — the ports ([`Ec2`](effects::Ec2),
//!   [`MeetingTable`](effects::MeetingTable)), the dry-run port, and the
//!   outbox executor (retry with backoff, failed effects kept).
//! * [`stream`] — the DynamoDB Streams reader behind the
//!   [`StreamSource`](stream::StreamSource) port: shard lineage, checkpoints
//!   in the records' transaction, iterator expiry, trimmed data, backoff.
//! * [`aws`] — the AWS SDK adapters for the three ports, and the translation
//!   of SDK errors (missing instance = gone, failed condition = done,
//!   throttling/5xx/timeouts = transient).
//! * [`worker`] — stream reader, timer loop, executor and housekeeping run
//!   together until a shutdown future completes (`spindown run`).
//! * [`config`] — the worker settings file (`deploy/spindown.toml`).
//! * [`feed`] — record files, line by line, in batches.
//! * [`replay`] — the engine on a virtual clock over a file.
//! * [`inspect`] — read models: the replay line, `show`, tables.
#![forbid(unsafe_code)]

#[cfg(feature = "aws")]
pub mod aws;
pub mod clock;
pub mod config;
pub mod effects;
pub mod engine;
pub mod failpoint;
pub mod feed;
pub mod inspect;
pub mod machine;
pub mod policy;
pub mod record;
pub mod replay;
pub mod store;
pub mod stream;
pub mod time;
pub mod worker;
