//! DynamoDB Streams: shards, iterators, records in the Lambda shape.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, ShardIteratorType};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use serde_json::{json, Map, Value};

use super::{classify, THROTTLING};
use crate::source::stream::{Page, Position, ShardInfo, ShardPage, StreamError, StreamSource};
use crate::BoxFuture;

/// DynamoDB Streams through the SDK.
#[derive(Clone, Debug)]
pub struct AwsStreams {
    client: aws_sdk_dynamodbstreams::Client,
}

impl AwsStreams {
    pub fn new(config: &SdkConfig) -> Self {
        AwsStreams { client: aws_sdk_dynamodbstreams::Client::new(config) }
    }
}

fn stream_error<E>(e: &SdkError<E, HttpResponse>) -> StreamError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let f = classify(e);
    match f.code.as_deref() {
        Some("ExpiredIteratorException") => StreamError::ExpiredIterator,
        Some("TrimmedDataAccessException") => StreamError::Trimmed(f.message),
        Some("ResourceNotFoundException") => StreamError::NotFound(f.message),
        Some(c) if THROTTLING.contains(&c) => StreamError::Throttled(f.message),
        _ if f.transient => StreamError::Transient(f.message),
        _ => StreamError::Fatal(f.message),
    }
}

/// A stream attribute value as DynamoDB JSON (the Lambda record shape).
pub fn attribute_json(v: &StreamValue) -> Value {
    match v {
        StreamValue::S(s) => json!({ "S": s }),
        StreamValue::N(n) => json!({ "N": n }),
        StreamValue::B(b) => json!({ "B": aws_smithy_types::base64::encode(b.as_ref()) }),
        StreamValue::Ss(v) => json!({ "SS": v }),
        StreamValue::Ns(v) => json!({ "NS": v }),
        StreamValue::Bs(v) => {
            json!({ "BS": v.iter().map(|b| aws_smithy_types::base64::encode(b.as_ref())).collect::<Vec<_>>() })
        }
        StreamValue::M(m) => json!({ "M": image_json(m) }),
        StreamValue::L(l) => json!({ "L": l.iter().map(attribute_json).collect::<Vec<_>>() }),
        StreamValue::Null(b) => json!({ "NULL": b }),
        StreamValue::Bool(b) => json!({ "BOOL": b }),
        // A type this SDK does not know: not DynamoDB JSON the engine accepts.
        _ => json!({ "UNKNOWN": null }),
    }
}

fn image_json(m: &HashMap<String, StreamValue>) -> Map<String, Value> {
    m.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect()
}

/// An SDK stream record in the Lambda JSON shape, so the live path and
/// `replay` decode exactly the same thing.
pub fn record_json(r: &aws_sdk_dynamodbstreams::types::Record) -> Value {
    let mut rec = Map::new();
    if let Some(v) = r.event_id() {
        rec.insert("eventID".into(), json!(v));
    }
    if let Some(v) = r.event_name() {
        rec.insert("eventName".into(), json!(v.as_str()));
    }
    if let Some(v) = r.event_version() {
        rec.insert("eventVersion".into(), json!(v));
    }
    if let Some(v) = r.event_source() {
        rec.insert("eventSource".into(), json!(v));
    }
    if let Some(v) = r.aws_region() {
        rec.insert("awsRegion".into(), json!(v));
    }
    if let Some(d) = r.dynamodb() {
        let mut ddb = Map::new();
        if let Some(t) = d.approximate_creation_date_time() {
            ddb.insert("ApproximateCreationDateTime".into(), json!(t.as_secs_f64()));
        }
        if let Some(k) = d.keys() {
            ddb.insert("Keys".into(), Value::Object(image_json(k)));
        }
        if let Some(i) = d.new_image() {
            ddb.insert("NewImage".into(), Value::Object(image_json(i)));
        }
        if let Some(i) = d.old_image() {
            ddb.insert("OldImage".into(), Value::Object(image_json(i)));
        }
        if let Some(s) = d.sequence_number() {
            ddb.insert("SequenceNumber".into(), json!(s));
        }
        if let Some(s) = d.size_bytes() {
            ddb.insert("SizeBytes".into(), json!(s));
        }
        if let Some(v) = d.stream_view_type() {
            ddb.insert("StreamViewType".into(), json!(v.as_str()));
        }
        rec.insert("dynamodb".into(), Value::Object(ddb));
    }
    Value::Object(rec)
}

impl StreamSource for AwsStreams {
    fn describe<'a>(
        &'a self,
        stream_arn: &'a str,
        start_after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ShardPage, StreamError>> {
        Box::pin(async move {
            let out = self
                .client
                .describe_stream()
                .stream_arn(stream_arn)
                .set_exclusive_start_shard_id(start_after.map(str::to_owned))
                .send()
                .await
                .map_err(|e| stream_error(&e))?;
            let Some(d) = out.stream_description() else { return Ok((Vec::new(), None)) };
            let shards = d
                .shards()
                .iter()
                .filter_map(|s| {
                    Some(ShardInfo {
                        shard_id: s.shard_id()?.to_string(),
                        parent_shard_id: s.parent_shard_id().map(str::to_owned),
                    })
                })
                .collect();
            Ok((shards, d.last_evaluated_shard_id().map(str::to_owned)))
        })
    }

    fn iterator<'a>(
        &'a self,
        stream_arn: &'a str,
        shard_id: &'a str,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<String, StreamError>> {
        Box::pin(async move {
            let (kind, seq) = match position {
                Position::TrimHorizon => (ShardIteratorType::TrimHorizon, None),
                Position::Latest => (ShardIteratorType::Latest, None),
                Position::After(s) => (ShardIteratorType::AfterSequenceNumber, Some(s.clone())),
            };
            let out = self
                .client
                .get_shard_iterator()
                .stream_arn(stream_arn)
                .shard_id(shard_id)
                .shard_iterator_type(kind)
                .set_sequence_number(seq)
                .send()
                .await
                .map_err(|e| stream_error(&e))?;
            out.shard_iterator()
                .map(str::to_owned)
                .ok_or_else(|| StreamError::NotFound(format!("no iterator for shard {shard_id}")))
        })
    }

    fn records<'a>(&'a self, iterator: &'a str, limit: i32) -> BoxFuture<'a, Result<Page, StreamError>> {
        Box::pin(async move {
            let out = self
                .client
                .get_records()
                .shard_iterator(iterator)
                .limit(limit)
                .send()
                .await
                .map_err(|e| stream_error(&e))?;
            let records = out
                .records()
                .iter()
                .map(|r| {
                    let seq = r.dynamodb().and_then(|d| d.sequence_number()).unwrap_or_default().to_string();
                    (record_json(r).to_string(), seq)
                })
                .collect();
            Ok(Page { records, next_iterator: out.next_shard_iterator().map(str::to_owned) })
        })
    }
}
