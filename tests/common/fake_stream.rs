//! A scripted DynamoDB stream for the reader's tests: shards, records, faults.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use spindown::source::stream::{Page, Position, ShardInfo, ShardPage, StreamError, StreamSource};
use spindown::BoxFuture;

#[derive(Default)]
pub struct ShardData {
    pub parent: Option<String>,
    /// (sequence number, record)
    pub records: Vec<(u64, Value)>,
    pub closed: bool,
    /// Records with a sequence number below this are gone (24 h retention).
    pub trimmed_below: u64,
    /// At most this many records per `GetRecords`, whatever the limit asked
    /// (a shard read behind the others).
    pub page_cap: Option<usize>,
}

/// A scripted DynamoDB stream. Iterators are `shard|index` strings.
#[derive(Default)]
pub struct Script {
    pub shards: BTreeMap<String, ShardData>,
    /// Errors to return from the next `records` calls, in order.
    pub record_faults: VecDeque<StreamError>,
    pub describe_calls: usize,
    pub records_calls: usize,
    pub positions: Vec<(String, Position)>,
}

#[derive(Clone, Default)]
pub struct FakeStream(Arc<Mutex<Script>>);

impl FakeStream {
    pub fn with<R>(&self, f: impl FnOnce(&mut Script) -> R) -> R {
        f(&mut self.0.lock().unwrap())
    }

    pub fn add_shard(&self, id: &str, parent: Option<&str>) {
        self.with(|s| {
            s.shards.insert(id.into(), ShardData { parent: parent.map(Into::into), ..ShardData::default() });
        })
    }

    pub fn push(&self, shard: &str, seq: u64, meeting: &str) {
        let rec = json!({"eventID": format!("ev-{seq}"), "eventName": "INSERT", "dynamodb": {
            "ApproximateCreationDateTime": 1_795_687_200u64 + seq, "Keys": {"id": {"S": meeting}},
            "SequenceNumber": seq.to_string(),
            "NewImage": {"id": {"S": meeting}, "meet_time": {"S": "2099-01-01T10:00:00Z"}}}});
        self.with(|s| s.shards.get_mut(shard).unwrap().records.push((seq, rec)));
    }
}

impl StreamSource for FakeStream {
    fn describe<'a>(&'a self, _: &'a str, after: Option<&'a str>) -> BoxFuture<'a, Result<ShardPage, StreamError>> {
        Box::pin(async move {
            self.with(|s| {
                s.describe_calls += 1;
                // One shard per page, to exercise pagination.
                let next = s.shards.iter().find(|(id, _)| after.is_none_or(|a| id.as_str() > a));
                match next {
                    None => Ok((Vec::new(), None)),
                    Some((id, d)) => {
                        let more = s.shards.keys().any(|k| k > id);
                        let info = ShardInfo { shard_id: id.clone(), parent_shard_id: d.parent.clone() };
                        Ok((vec![info], more.then(|| id.clone())))
                    }
                }
            })
        })
    }

    fn iterator<'a>(
        &'a self,
        _: &'a str,
        shard: &'a str,
        pos: &'a Position,
    ) -> BoxFuture<'a, Result<String, StreamError>> {
        Box::pin(async move {
            self.with(|s| {
                s.positions.push((shard.to_string(), pos.clone()));
                let d = s.shards.get(shard).ok_or_else(|| StreamError::NotFound(shard.into()))?;
                let first_kept = d.records.iter().position(|(q, _)| *q >= d.trimmed_below).unwrap_or(d.records.len());
                let index = match pos {
                    Position::TrimHorizon => first_kept,
                    Position::Latest => d.records.len(),
                    Position::After(seq) => {
                        let seq: u64 = seq.parse().unwrap();
                        if seq < d.trimmed_below {
                            return Err(StreamError::Trimmed(format!("{seq} is trimmed")));
                        }
                        d.records.iter().position(|(q, _)| *q > seq).unwrap_or(d.records.len())
                    }
                };
                Ok(format!("{shard}|{index}"))
            })
        })
    }

    fn records<'a>(&'a self, iterator: &'a str, limit: i32) -> BoxFuture<'a, Result<Page, StreamError>> {
        Box::pin(async move {
            self.with(|s| {
                s.records_calls += 1;
                if let Some(e) = s.record_faults.pop_front() {
                    return Err(e);
                }
                let (shard, index) = iterator.split_once('|').unwrap();
                let index: usize = index.parse().unwrap();
                let d = &s.shards[shard];
                let limit = d.page_cap.map_or(limit as usize, |c| c.min(limit as usize));
                let end = (index + limit).min(d.records.len());
                let records = d.records[index..end].iter().map(|(q, r)| (r.to_string(), q.to_string())).collect();
                let next = if d.closed && end == d.records.len() { None } else { Some(format!("{shard}|{end}")) };
                Ok(Page { records, next_iterator: next })
            })
        })
    }
}

impl FakeStream {
    /// Append any record (hostile ones included) to a shard.
    pub fn push_value(&self, shard: &str, seq: u64, rec: Value) {
        self.with(|s| s.shards.get_mut(shard).unwrap().records.push((seq, rec)));
    }
}
