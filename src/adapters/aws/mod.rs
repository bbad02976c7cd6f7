//! AWS SDK adapters implementing the ports: EC2, the meetings table, the stream.
//!
//! * [`AwsEc2`] (`ec2.rs`) — `TerminateInstances`, with the tag guard.
//! * [`AwsTable`] (`table.rs`) — the conditional write-back, the stream ARN.
//! * [`AwsStreams`] (`streams.rs`) — DynamoDB Streams, records in the Lambda shape.
//!
//! Configuration comes from the standard chain (environment, profile,
//! instance role); `AWS_ENDPOINT_URL` points every client elsewhere (the
//! local endpoint in tests). SDK errors are translated here: a missing
//! instance is "already gone", a failed write-back condition is "already
//! written", throttling/5xx/timeouts/connection errors are transient, the
//! rest permanent.

mod ec2;
mod streams;
mod table;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;

pub use ec2::AwsEc2;
pub use streams::{record_json, AwsStreams};
pub use table::AwsTable;

use crate::config::AwsTuning;
use crate::outbox::EffectError;

/// An AWS call that stops the worker before it starts (no table, no stream, no access).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AwsError(pub String);

/// Error codes that mean "slow down" across EC2, DynamoDB and Streams.
pub(crate) const THROTTLING: &[&str] = &[
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
    load_config_with(&AwsTuning::default(), None).await
}

/// [`load_config`] with explicit timeouts and SDK retries (`[aws]` in the
/// config file). `app` names the caller in every request's user agent
/// (`app/spindown-w1`), so CloudTrail says which worker terminated an
/// instance; characters the header does not allow become `-`.
pub async fn load_config_with(t: &AwsTuning, app: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(t.connect_timeout)
                .operation_attempt_timeout(t.attempt_timeout)
                .operation_timeout(t.operation_timeout)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(t.sdk_max_attempts));
    if let Some(name) = app.and_then(app_name) {
        loader = loader.app_name(name);
    }
    loader.load().await
}

/// `spindown-{who}` as a user-agent app name (letters, digits and
/// ``!#$%&'*+-.^_`|~`` only, at most 50 characters).
pub fn app_name(who: &str) -> Option<aws_config::AppName> {
    let clean: String = format!("spindown-{who}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c) { c } else { '-' })
        .take(50)
        .collect();
    aws_config::AppName::new(clean).ok()
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

pub(crate) fn effect_error(f: Failure) -> EffectError {
    EffectError { transient: f.transient, message: f.message }
}

#[cfg(test)]
mod tests {
    use super::app_name;

    #[test]
    fn the_user_agent_names_the_worker_in_characters_it_allows() {
        assert_eq!(app_name("w1-r003").unwrap().to_string(), "spindown-w1-r003");
        // A host:pid identity, spaces and slashes are not allowed in a user agent.
        assert_eq!(app_name("pod 7/host:42").unwrap().to_string(), "spindown-pod-7-host-42");
        assert_eq!(app_name(&"x".repeat(80)).unwrap().to_string().len(), 50);
    }
}
