//! spindown — a durable state-machine engine that spins down meeting instances.
#![forbid(unsafe_code)]

pub mod clock;
pub mod effects;
pub mod engine;
pub mod feed;
pub mod inspect;
pub mod machine;
pub mod policy;
pub mod record;
pub mod replay;
pub mod store;
pub mod time;
