//! AWS SDK adapters implementing the ports: EC2, the meetings table, the stream.
//!
//! Configuration comes from the standard chain (environment, profile,
//! instance role); `AWS_ENDPOINT_URL` points every client elsewhere (the
//! local endpoint in tests). SDK errors are translated here: a missing
//! instance is "already gone", a failed write-back condition is "already
//! written", throttling/5xx/timeouts/connection errors are transient, the
//! rest permanent.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue as DdbValue;
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, ShardIteratorType};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::{json, Map, Value};

use crate::config::AwsTuning;
use crate::effects::{BoxFuture, Ec2, EffectError, MeetingTable, TerminateReport, WriteBackOutcome};
use crate::machine::{InstanceId, MeetingId, Reason};
use crate::stream::{Page, Position, ShardInfo, ShardPage, StreamError, StreamSource};

/// Error codes that mean "slow down" across EC2, DynamoDB and Streams.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "RequestLimitExceededException",
    "BandwidthLimitExceeded",
    "SlowDown",
    "EC2ThrottledException",
    "PriorRequestNotComplete",
    "TransactionInProgressException",
];

/// Error codes of a service having a bad moment.
const SERVER_SIDE: &[&str] =
    &["InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable", "Unavailable", "ServerError"];

/// Load the shared AWS configuration (the standard chain) with bounded timeouts.
pub async fn load_config() -> SdkConfig {
    load_config_with(&AwsTuning::default()).await
}

/// [`load_config`] with explicit timeouts and SDK retries (`[aws]` in the config file).
pub async fn load_config_with(t: &AwsTuning) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(t.connect_timeout)
                .operation_attempt_timeout(t.attempt_timeout)
                .operation_timeout(t.operation_timeout)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(t.sdk_max_attempts))
        .load()
        .await
}

/// A classified SDK failure.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: Option<String>,
    pub transient: bool,
    /// One line: the code and the innermost cause.
    pub message: String,
}

/// Classify any SDK error.
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    let status = err.raw_response().map(|r| r.status().as_u16());
    let transient = match err {
        SdkError::ConstructionFailure(_) => false,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(_) => {
            status.is_some_and(|s| s >= 500 || s == 429)
                || code.as_deref().is_some_and(|c| THROTTLING.contains(&c) || SERVER_SIDE.contains(&c))
        }
        _ => true,
    };
    Failure { code, transient, message: one_line(err) }
}

/// The error as one readable line (the SDK's own Display is "dispatch failure").
pub fn one_line<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let (Some(code), msg) = (err.code(), err.message()) {
        return match msg {
            Some(m) => format!("{code}: {m}"),
            None => code.to_string(),
        };
    }
    let full = DisplayErrorContext(err).to_string();
    tracing::debug!("AWS error: {full}");
    if full.contains("no credentials") || full.contains("credentials provider") || full.contains("CredentialsNotLoaded")
    {
        return "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance role)".into();
    }
    // The innermost cause is the informative part ("Connection refused", "timed out").
    let mut cause: &(dyn std::error::Error + 'static) = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let mut inner = cause.to_string();
    if let (SdkError::DispatchFailure(_), Ok(url)) = (err, std::env::var("AWS_ENDPOINT_URL")) {
        inner = format!("{url}: {inner}");
    }
    let kind = match err {
        SdkError::TimeoutError(_) => "timed out",
        SdkError::DispatchFailure(_) => "cannot reach the endpoint",
        SdkError::ResponseError(_) => "unreadable response",
        SdkError::ConstructionFailure(_) => "cannot build the request",
        _ => "request failed",
    };
    format!("{kind}: {inner}")
}

fn effect_error(f: Failure) -> EffectError {
    EffectError { transient: f.transient, message: f.message }
}

/// EC2 through the SDK, with the optional tag guard.
#[derive(Clone, Debug)]
pub struct AwsEc2 {
    client: aws_sdk_ec2::Client,
    /// Terminate an instance only if it carries this tag equal to the meeting id.
    require_tag: Option<String>,
}

impl AwsEc2 {
    pub fn new(config: &SdkConfig, require_tag: Option<String>) -> Self {
        AwsEc2 { client: aws_sdk_ec2::Client::new(config), require_tag }
    }

    /// Instance ids named in an `InvalidInstanceID.NotFound` message.
    fn missing_ids(message: &str, asked: &[InstanceId]) -> Vec<InstanceId> {
        asked.iter().filter(|i| message.contains(i.as_str())).cloned().collect()
    }

    /// `DescribeInstances`, dropping ids that do not exist. Returns each
    /// existing instance's tags and the missing ids.
    async fn describe(
        &self,
        ids: &[InstanceId],
    ) -> Result<(HashMap<InstanceId, HashMap<String, String>>, Vec<InstanceId>), EffectError> {
        let mut asked: Vec<InstanceId> = ids.to_vec();
        let mut gone = Vec::new();
        for _ in 0..=ids.len() {
            if asked.is_empty() {
                break;
            }
            let call = self
                .client
                .describe_instances()
                .set_instance_ids(Some(asked.iter().map(|i| i.to_string()).collect()))
                .send()
                .await;
            match call {
                Ok(out) => {
                    let mut tags = HashMap::new();
                    for inst in out.reservations().iter().flat_map(|r| r.instances()) {
                        let Some(id) = inst.instance_id().and_then(InstanceId::parse) else { continue };
                        let t: HashMap<String, String> = inst
                            .tags()
                            .iter()
                            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                            .collect();
                        tags.insert(id, t);
                    }
                    return Ok((tags, gone));
                }
                Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => {
                    let missing = Self::missing_ids(e.message().unwrap_or_default(), &asked);
                    if missing.is_empty() {
                        return Err(effect_error(classify(&e)));
                    }
                    asked.retain(|i| !missing.contains(i));
                    gone.extend(missing);
                }
                Err(e) => return Err(effect_error(classify(&e))),
            }
        }
        Ok((HashMap::new(), gone))
    }

    async fn terminate_all(
        &self,
        meeting: &MeetingId,
        instances: &[InstanceId],
    ) -> Result<TerminateReport, EffectError> {
        let mut report = TerminateReport::default();
        let mut asked: Vec<InstanceId> = instances.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
        if let Some(tag) = &self.require_tag {
            let (tags, gone) = self.describe(&asked).await?;
            report.gone.extend(gone);
            asked.retain(|i| !report.gone.contains(i));
            asked.retain(|i| {
                let why = match tags.get(i).map(|t| t.get(tag)) {
                    Some(Some(v)) if v == meeting.as_str() => return true,
                    Some(Some(v)) => format!("tag {tag}={v:?} does not name meeting {meeting}"),
                    Some(None) => format!("instance has no {tag} tag"),
                    None => "instance not returned by DescribeInstances".to_string(),
                };
                report.refused.push((i.clone(), why));
                false
            });
        }
        // TerminateInstances is all-or-nothing: drop missing ids and go again.
        for _ in 0..=asked.len() {
            if asked.is_empty() {
                break;
            }
            let call = self
                .client
                .terminate_instances()
                .set_instance_ids(Some(asked.iter().map(|i| i.to_string()).collect()))
                .send()
                .await;
            match call {
                Ok(out) => {
                    let done: Vec<InstanceId> = out
                        .terminating_instances()
                        .iter()
                        .filter_map(|c| c.instance_id().and_then(InstanceId::parse))
                        .collect();
                    report.terminated.extend(done);
                    break;
                }
                Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => {
                    let missing = Self::missing_ids(e.message().unwrap_or_default(), &asked);
                    if missing.is_empty() {
                        return Err(effect_error(classify(&e)));
                    }
                    asked.retain(|i| !missing.contains(i));
                    report.gone.extend(missing);
                }
                Err(e) => return Err(effect_error(classify(&e))),
            }
        }
        Ok(report)
    }
}

impl Ec2 for AwsEc2 {
    fn terminate<'a>(
        &'a self,
        meeting: &'a MeetingId,
        instances: &'a [InstanceId],
    ) -> BoxFuture<'a, Result<TerminateReport, EffectError>> {
        Box::pin(self.terminate_all(meeting, instances))
    }
}

/// The meetings table through the SDK.
#[derive(Clone, Debug)]
pub struct AwsTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl AwsTable {
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        AwsTable { client: aws_sdk_dynamodb::Client::new(config), table: table.into() }
    }

    /// The table's current stream ARN (`DescribeTable.LatestStreamArn`), with
    /// a clear error when the table is missing, has no stream, or AWS cannot be
    /// reached. Transient failures are retried a few times first.
    pub async fn latest_stream_arn(&self) -> Result<String, String> {
        let mut attempt = 0;
        let out = loop {
            attempt += 1;
            match self.client.describe_table().table_name(&self.table).send().await {
                Ok(out) => break out,
                Err(e) => {
                    let f = classify(&e);
                    if !f.transient || attempt >= 4 {
                        return Err(format!("DescribeTable {}: {}", self.table, f.message));
                    }
                    tracing::warn!("DescribeTable {} failed ({}); retrying", self.table, f.message);
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        };
        let table = out.table().ok_or_else(|| format!("DescribeTable {} returned no table", self.table))?;
        let enabled = table.stream_specification().is_some_and(|s| s.stream_enabled());
        match table.latest_stream_arn() {
            Some(arn) if enabled => Ok(arn.to_string()),
            _ => Err(format!(
                "table {} has no stream enabled: enable DynamoDB Streams with NEW_AND_OLD_IMAGES (or pass --stream-arn)",
                self.table
            )),
        }
    }
}

impl MeetingTable for AwsTable {
    fn write_back<'a>(
        &'a self,
        meeting: &'a MeetingId,
        reason: Reason,
        terminated_at: &'a str,
    ) -> BoxFuture<'a, Result<WriteBackOutcome, EffectError>> {
        Box::pin(async move {
            // `attribute_exists(#k)`: a row deleted meanwhile is not recreated.
            let call = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("id", DdbValue::S(meeting.to_string()))
                .update_expression("SET #s = :terminated, termination_reason = :reason, terminated_at = :at")
                .condition_expression("attribute_exists(#k) AND #s <> :terminated")
                .expression_attribute_names("#s", "status")
                .expression_attribute_names("#k", "id")
                .expression_attribute_values(":terminated", DdbValue::S("TERMINATED".into()))
                .expression_attribute_values(":reason", DdbValue::S(reason.to_string()))
                .expression_attribute_values(":at", DdbValue::S(terminated_at.to_string()))
                .send()
                .await;
            match call {
                Ok(_) => Ok(WriteBackOutcome::Written),
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(WriteBackOutcome::AlreadyDone),
                Err(e) => Err(effect_error(classify(&e))),
            }
        })
    }
}

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
                    (record_json(r), seq)
                })
                .collect();
            Ok(Page { records, next_iterator: out.next_shard_iterator().map(str::to_owned) })
        })
    }
}
