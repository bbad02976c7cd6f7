//! Adapters that connect the ports to real services.
//!
//! * [`aws`] — the AWS SDK for EC2, the meetings table and DynamoDB Streams
//!   (the default `aws` feature).

#[cfg(feature = "aws")]
pub mod aws;
