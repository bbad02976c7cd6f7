//! The meetings table: the conditional write-back, the stream ARN.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue as DdbValue;

use super::{classify, effect_error, AwsError};
use crate::meeting::{MeetingId, Reason};
use crate::outbox::{EffectError, MeetingTable, WriteBackOutcome};
use crate::time::Timestamp;
use crate::BoxFuture;

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
    pub async fn latest_stream_arn(&self) -> Result<String, AwsError> {
        let mut attempt = 0;
        let out = loop {
            attempt += 1;
            match self.client.describe_table().table_name(&self.table).send().await {
                Ok(out) => break out,
                Err(e) => {
                    let f = classify(&e);
                    if !f.transient || attempt >= 4 {
                        return Err(AwsError(format!("DescribeTable {}: {}", self.table, f.message)));
                    }
                    tracing::warn!("DescribeTable {} failed ({}); retrying", self.table, f.message);
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        };
        let table = out.table().ok_or_else(|| AwsError(format!("DescribeTable {} returned no table", self.table)))?;
        let enabled = table.stream_specification().is_some_and(|s| s.stream_enabled());
        match table.latest_stream_arn() {
            Some(arn) if enabled => Ok(arn.to_string()),
            _ => Err(AwsError(format!(
                "table {} has no stream enabled: enable DynamoDB Streams with NEW_AND_OLD_IMAGES (or pass --stream-arn)",
                self.table
            ))),
        }
    }
}

impl MeetingTable for AwsTable {
    fn write_back<'a>(
        &'a self,
        meeting: &'a MeetingId,
        reason: Reason,
        terminated_at: Timestamp,
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
                .expression_attribute_values(":at", DdbValue::S(terminated_at.to_rfc3339()))
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
