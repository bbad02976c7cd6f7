//! EC2: `TerminateInstances`, with the tag guard.

use std::collections::{BTreeSet, HashMap};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;

use super::{classify, effect_error};
use crate::meeting::{InstanceId, MeetingId};
use crate::outbox::{Ec2, EffectError, TaggedInstance, TerminateReport};
use crate::time::Timestamp;
use crate::BoxFuture;

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

    fn tagged_instances<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<TaggedInstance>, EffectError>> {
        Box::pin(async move {
            use aws_sdk_ec2::types::Filter;
            let mut pages = self
                .client
                .describe_instances()
                .filters(Filter::builder().name("tag-key").values(key).build())
                .filters(Filter::builder().name("instance-state-name").values("pending").values("running").build())
                .into_paginator()
                .send();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| effect_error(classify(&e)))?;
                for inst in page.reservations().iter().flat_map(|r| r.instances()) {
                    let Some(id) = inst.instance_id().and_then(InstanceId::parse) else { continue };
                    let Some(tag) = inst.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value()) else {
                        continue;
                    };
                    let launched_at = inst.launch_time().and_then(|t| {
                        Timestamp::from_epoch_seconds(t.secs() as f64 + f64::from(t.subsec_nanos()) / 1e9)
                    });
                    out.push(TaggedInstance { id, tag: tag.to_string(), launched_at });
                }
            }
            Ok(out)
        })
    }
}
