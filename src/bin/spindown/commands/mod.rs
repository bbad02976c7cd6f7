//! One file per command.

pub mod dead_letters;
pub mod ingest;
pub mod list;
pub mod migrate;
pub mod replay;
pub mod retry;
pub mod run;
pub mod schedule;
pub mod show;
pub mod status;
pub mod terminate;
pub mod timers;
