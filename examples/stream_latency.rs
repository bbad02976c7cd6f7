//! How long from a stream write to the resulting TerminateInstances call?
//!
//! Against the endpoint in `AWS_ENDPOINT_URL` (run it with `scripts/latency`,
//! which starts a local moto server): creates a table with a stream and two
//! instances per meeting, runs the worker in-process with a timing wrapper
//! around its EC2 port, then ends N meetings by writing `status = TERMINATED`
//! to their rows (one every few milliseconds) and reports the time from each
//! write's acknowledgement to the terminate call: p50, p90, p99, max.
//!
//! ```sh
//! scripts/latency            # 300 meetings
//! scripts/latency 1000
//! ```

use spindown::inspect::MeetingStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as V, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use spindown::adapters::aws::{load_config, AwsEc2, AwsStreams, AwsTable};
use spindown::clock::SystemClock;
use spindown::engine::{Engine, EngineOptions};
use spindown::meeting::{InstanceId, MeetingId, Policy};
use spindown::outbox::{Ec2, EffectError, TerminateReport};
use spindown::source::stream::ReaderOptions;
use spindown::store::sqlite::SqliteStore;
use spindown::worker;
use spindown::BoxFuture;

/// Records when the worker calls TerminateInstances for each meeting.
struct Timed {
    inner: AwsEc2,
    calls: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Ec2 for Timed {
    fn terminate<'a>(
        &'a self,
        m: &'a MeetingId,
        i: &'a [InstanceId],
    ) -> BoxFuture<'a, Result<TerminateReport, EffectError>> {
        self.calls.lock().unwrap().entry(m.to_string()).or_insert_with(Instant::now);
        self.inner.terminate(m, i)
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(300);
    let sdk = load_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let table = format!("latency-{}", std::process::id());
    ddb.create_table()
        .table_name(&table)
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build()?)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()?,
        )
        .send()
        .await?;
    let out =
        ec2.run_instances().image_id("ami-12c6146b").min_count(2 * n as i32).max_count(2 * n as i32).send().await?;
    let ids: Vec<String> = out.instances().iter().filter_map(|i| i.instance_id().map(str::to_owned)).collect();
    let meet = spindown::time::Timestamp::now().saturating_add(spindown::time::Span::from_hours(1)).to_rfc3339();
    for m in 0..n {
        ddb.put_item()
            .table_name(&table)
            .item("id", V::S(format!("m-{m:05}")))
            .item("meet_time", V::S(meet.clone()))
            .item("status", V::S("SCHEDULED".into()))
            .item("teacher_ec2_id", V::S(ids[2 * m].clone()))
            .item("student_ec2_id", V::S(ids[2 * m + 1].clone()))
            .send()
            .await?;
    }

    let dir = tempfile::tempdir()?;
    let engine = Arc::new(
        Engine::start(
            Arc::new(SqliteStore::open(&dir.path().join("l.db"), &Default::default()).await?),
            Policy::default(),
            Arc::new(SystemClock),
            EngineOptions::default(),
        )
        .await?,
    );
    let table_port = AwsTable::new(&sdk, &table);
    let stream_arn = table_port.latest_stream_arn().await?;
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let timed = Arc::new(Timed { inner: AwsEc2::new(&sdk, None), calls: calls.clone() });
    // The worker's default settings (deploy/spindown.toml with nothing set).
    let mut options = spindown::config::WorkerConfig::default().worker_options(stream_arn, None)?;
    options.reader = ReaderOptions::default();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let w = tokio::spawn(worker::run(
        engine.clone(),
        Arc::new(AwsStreams::new(&sdk)),
        timed,
        Arc::new(table_port),
        options,
        async {
            let _ = stop_rx.await;
        },
    ));
    // Let the worker read the INSERTs first.
    while engine.store().counts().await?.meetings < n as i64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut written = HashMap::new();
    for m in 0..n {
        let id = format!("m-{m:05}");
        ddb.update_item()
            .table_name(&table)
            .key("id", V::S(id.clone()))
            .update_expression("SET #s = :t")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":t", V::S("TERMINATED".into()))
            .send()
            .await?;
        written.insert(id, Instant::now());
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while calls.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(());
    w.await??;
    let calls = calls.lock().unwrap();
    let mut lat: Vec<Duration> =
        written.iter().filter_map(|(id, w)| calls.get(id).map(|c| c.saturating_duration_since(*w))).collect();
    lat.sort();
    println!(
        "{} of {n} meetings: stream write → TerminateInstances call: p50 {:?}, p90 {:?}, p99 {:?}, max {:?} (idle poll {:?})",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        lat.last().unwrap(),
        ReaderOptions::default().idle_delay
    );
    Ok(())
}
