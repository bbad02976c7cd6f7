//! Where records come from.
//!
//! * [`feed`] — record files, line by line, in batches (`replay`, `ingest`).
//! * [`stream`] — the DynamoDB Streams reader behind the
//!   [`StreamSource`](stream::StreamSource) port: shard lineage, checkpoints
//!   in the records' unit of work, iterator expiry, trimmed data, backoff.
//! * [`leases`] — which shards this worker reads (one lease per shard, fenced checkpoints).
//! * [`replay`] — the engine on a virtual clock over a file.

pub mod feed;
pub mod leases;
pub mod replay;
pub mod stream;
