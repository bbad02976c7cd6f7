//! The port: the DynamoDB Streams API as much of it as the reader uses, so
//! that shard splits, expired iterators and trimmed data — which the local
//! endpoint cannot produce — are tested against a scripted source.

use crate::named::names;
use crate::BoxFuture;

/// A shard as the stream describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub shard_id: String,
    pub parent_shard_id: Option<String>,
}

/// Where to start reading a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    TrimHorizon,
    Latest,
    After(String),
}

/// One `GetRecords` page: each record as Lambda-shape JSON text, with its
/// sequence number (the adapter writes the text once; the reader decodes it once).
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub records: Vec<(String, String)>,
    /// `None` when the shard is closed and fully read.
    pub next_iterator: Option<String>,
}

/// A stream call that failed, classified for the reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("shard iterator expired")]
    ExpiredIterator,
    #[error("trimmed data: {0}")]
    Trimmed(String),
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Fatal(String),
}

/// One `DescribeStream` page: shards, and the last shard id when more follow.
pub type ShardPage = (Vec<ShardInfo>, Option<String>);

/// The DynamoDB Streams API, as much of it as the reader uses.
pub trait StreamSource: Send + Sync + 'static {
    /// One page of `DescribeStream`: shards after `start_after`, and the last
    /// shard id when more pages follow.
    fn describe<'a>(
        &'a self,
        stream_arn: &'a str,
        start_after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ShardPage, StreamError>>;

    fn iterator<'a>(
        &'a self,
        stream_arn: &'a str,
        shard_id: &'a str,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<String, StreamError>>;

    fn records<'a>(&'a self, iterator: &'a str, limit: i32) -> BoxFuture<'a, Result<Page, StreamError>>;
}

names! {
    /// Where a reader starts on a stream it has never read.
    #[derive(Default)]
    pub Start ("stream start") {
        /// The oldest record the stream keeps (24 h).
        #[default]
        TrimHorizon = "trim-horizon",
        /// Only records written from now on.
        Latest = "latest",
    }
}
