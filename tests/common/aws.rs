//! The test's own AWS clients against moto: tables with streams, tagged instances, rows.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as V, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

use super::moto::Moto;

#[derive(Clone)]
pub struct Aws {
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub table: String,
}

impl Aws {
    pub async fn new(moto: &Moto, table: &str) -> Aws {
        let sdk = moto.sdk().await;
        let aws = Aws {
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            streams: aws_sdk_dynamodbstreams::Client::new(&sdk),
            ec2: aws_sdk_ec2::Client::new(&sdk),
            table: table.to_string(),
        };
        aws.ddb
            .create_table()
            .table_name(table)
            .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap())
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .billing_mode(BillingMode::PayPerRequest)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        aws
    }

    /// Launch one instance tagged `meeting_id = tag`.
    pub async fn instance(&self, tag: &str) -> String {
        let out = self
            .ec2
            .run_instances()
            .image_id("ami-12c6146b")
            .min_count(1)
            .max_count(1)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(Tag::builder().key("meeting_id").value(tag).build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.instances()[0].instance_id().unwrap().to_string()
    }

    /// Launch one instance without any tag.
    pub async fn untagged_instance(&self) -> String {
        let out = self.ec2.run_instances().image_id("ami-12c6146b").min_count(1).max_count(1).send().await.unwrap();
        out.instances()[0].instance_id().unwrap().to_string()
    }

    pub async fn state(&self, id: &str) -> String {
        let out = self.ec2.describe_instances().instance_ids(id).send().await.unwrap();
        let i = &out.reservations()[0].instances()[0];
        i.state().unwrap().name().unwrap().as_str().to_string()
    }

    pub async fn put(&self, item: &[(&str, V)]) {
        let mut req = self.ddb.put_item().table_name(&self.table);
        for (k, v) in item {
            req = req.item(*k, v.clone());
        }
        req.send().await.unwrap();
    }

    pub async fn set(&self, id: &str, attr: &str, v: V) {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("id", V::S(id.into()))
            .update_expression("SET #a = :v")
            .expression_attribute_names("#a", attr)
            .expression_attribute_values(":v", v)
            .send()
            .await
            .unwrap();
    }

    pub async fn delete(&self, id: &str) {
        self.ddb.delete_item().table_name(&self.table).key("id", V::S(id.into())).send().await.unwrap();
    }

    pub async fn item(&self, id: &str) -> Option<BTreeMap<String, String>> {
        let out = self.ddb.get_item().table_name(&self.table).key("id", V::S(id.into())).send().await.unwrap();
        out.item().map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone()))).collect())
    }

    /// Every record the table's stream holds, in shard order, as Lambda JSON lines.
    pub async fn stream_lines(&self) -> Vec<String> {
        let t = self.ddb.describe_table().table_name(&self.table).send().await.unwrap();
        let arn = t.table().unwrap().latest_stream_arn().unwrap().to_string();
        let d = self.streams.describe_stream().stream_arn(&arn).send().await.unwrap();
        let mut lines = Vec::new();
        for shard in d.stream_description().unwrap().shards() {
            let mut it = self
                .streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(shard.shard_id().unwrap())
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator()
                .map(str::to_owned);
            while let Some(i) = it {
                let page = self.streams.get_records().shard_iterator(i).send().await.unwrap();
                if page.records().is_empty() {
                    break;
                }
                for r in page.records() {
                    lines.push(spindown::adapters::aws::record_json(r).to_string());
                }
                it = page.next_shard_iterator().map(str::to_owned);
            }
        }
        lines
    }
}
