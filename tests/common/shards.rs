//! A stream of two shards in front of moto, whose DynamoDB stream has one.
//!
//! An HTTP proxy between the workers and the local endpoint that presents
//! each real shard `S` as two open shards `S-a` and `S-b`, splitting the
//! records between them by meeting id (the test's rule), so that `spindown
//! run` processes lease and read them separately — what a real table with
//! several shards does. One of them can be made slow: it serves one record
//! per `GetRecords`, as a shard read behind the others after downtime.
//! Every other request passes through unchanged.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::proxy::{forward, read_request, Request};

/// Which of the two shards (0: `-a`, 1: `-b`) a meeting's records go to.
pub type Split = Arc<dyn Fn(&str) -> usize + Send + Sync>;

const SUFFIX: [&str; 2] = ["-a", "-b"];

pub struct ShardProxy {
    pub endpoint: String,
}

/// `spx|half|real shard|stream arn|real iterator`.
fn wrap(half: usize, shard: &str, arn: &str, it: &str) -> String {
    format!("spx|{half}|{shard}|{arn}|{it}")
}

fn unwrap(it: &str) -> Option<(usize, String, String, String)> {
    let mut p = it.splitn(5, '|');
    (p.next()? == "spx").then_some(())?;
    Some((p.next()?.parse().ok()?, p.next()?.to_string(), p.next()?.to_string(), p.next()?.to_string()))
}

fn json_request(req: &Request, target: &str, body: &Value) -> Request {
    let body = body.to_string().into_bytes();
    let head: String = req
        .head
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.is_empty() && !l.starts_with("content-length:") && !l.starts_with("x-amz-target:")
        })
        .map(|l| format!("{l}\r\n"))
        .collect::<String>()
        + &format!("x-amz-target: {target}\r\ncontent-length: {}\r\n", body.len());
    Request { head, body, target: target.to_string(), json: true }
}

/// The JSON body of a raw response, and its status line.
fn json_response(raw: &[u8]) -> Option<(String, Value)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = String::from_utf8_lossy(&raw[..end]).lines().next()?.to_string();
    Some((status, serde_json::from_slice(&raw[end + 4..]).ok()?))
}

fn respond(status: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!("{status}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}

async fn call(upstream: SocketAddr, like: &Request, target: &str, body: Value) -> Option<(String, Value)> {
    let raw = forward(upstream, &json_request(like, target, &body)).await.ok()?;
    json_response(&raw)
}

async fn handle(upstream: SocketAddr, req: Request, split: &Split, slow: Option<usize>) -> std::io::Result<Vec<u8>> {
    let op = req.target.rsplit('.').next().unwrap_or("").to_string();
    if !req.target.starts_with("DynamoDBStreams") {
        return forward(upstream, &req).await;
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    match op.as_str() {
        "DescribeStream" => {
            let raw = forward(upstream, &req).await?;
            let Some((status, mut v)) = json_response(&raw) else { return Ok(raw) };
            if let Some(shards) = v["StreamDescription"]["Shards"].as_array().cloned() {
                let mut halves = Vec::new();
                for s in shards {
                    for suffix in SUFFIX {
                        let mut h = s.clone();
                        h["ShardId"] = json!(format!("{}{suffix}", s["ShardId"].as_str().unwrap_or("")));
                        if let Some(p) = s["ParentShardId"].as_str() {
                            h["ParentShardId"] = json!(format!("{p}{suffix}"));
                        }
                        halves.push(h);
                    }
                }
                v["StreamDescription"]["Shards"] = Value::Array(halves);
            }
            Ok(respond(&status, &v))
        }
        "GetShardIterator" => {
            let shard = body["ShardId"].as_str().unwrap_or("").to_string();
            let arn = body["StreamArn"].as_str().unwrap_or("").to_string();
            let Some(half) = SUFFIX.iter().position(|s| shard.ends_with(s)) else {
                return forward(upstream, &req).await;
            };
            let real = shard[..shard.len() - 2].to_string();
            let mut b = body.clone();
            b["ShardId"] = json!(real);
            let Some((status, v)) = call(upstream, &req, &req.target, b).await else {
                return Err(std::io::Error::other("upstream"));
            };
            match v["ShardIterator"].as_str() {
                Some(it) => Ok(respond(&status, &json!({"ShardIterator": wrap(half, &real, &arn, it)}))),
                None => Ok(respond(&status, &v)),
            }
        }
        "GetRecords" => {
            let Some((half, real, arn, it)) = body["ShardIterator"].as_str().and_then(unwrap) else {
                return forward(upstream, &req).await;
            };
            let mut b = body.clone();
            b["ShardIterator"] = json!(it);
            let Some((status, mut v)) = call(upstream, &req, &req.target, b).await else {
                return Err(std::io::Error::other("upstream"));
            };
            let Some(records) = v["Records"].as_array().cloned() else { return Ok(respond(&status, &v)) };
            let mine: Vec<Value> = records
                .into_iter()
                .filter(|r| split(r["dynamodb"]["Keys"]["id"]["S"].as_str().unwrap_or("")) == half)
                .collect();
            let next = v["NextShardIterator"].as_str().map(str::to_owned);
            if slow == Some(half) && mine.len() > 1 {
                // One record per call: the next iterator starts right after it.
                let seq = mine[0]["dynamodb"]["SequenceNumber"].clone();
                let after = json!({"StreamArn": arn, "ShardId": real, "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": seq});
                let target = req.target.replace("GetRecords", "GetShardIterator");
                let Some((_, n)) = call(upstream, &req, &target, after).await else {
                    return Err(std::io::Error::other("upstream"));
                };
                v["Records"] = json!([mine[0]]);
                v["NextShardIterator"] = json!(wrap(half, &real, &arn, n["ShardIterator"].as_str().unwrap_or("")));
            } else {
                v["Records"] = Value::Array(mine);
                if let Some(n) = next {
                    v["NextShardIterator"] = json!(wrap(half, &real, &arn, &n));
                }
            }
            Ok(respond(&status, &v))
        }
        _ => forward(upstream, &req).await,
    }
}

impl ShardProxy {
    /// In front of `upstream` (`http://host:port`): records go to the shard
    /// `split` names; `slow` (0 or 1) serves one record per call.
    pub async fn start(upstream: &str, split: Split, slow: Option<usize>) -> ShardProxy {
        let upstream: SocketAddr = upstream.trim_start_matches("http://").parse().expect("upstream host:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let split = split.clone();
                tokio::spawn(async move {
                    let (rd, mut wr) = sock.into_split();
                    let mut rd = BufReader::new(rd);
                    while let Some(req) = read_request(&mut rd).await {
                        // A client that asked to close (another proxy in front) reads to the end.
                        let close = req.head.to_ascii_lowercase().contains("connection: close");
                        let Ok(reply) = handle(upstream, req, &split, slow).await else { return };
                        if wr.write_all(&reply).await.is_err() || close {
                            return;
                        }
                    }
                });
            }
        });
        ShardProxy { endpoint }
    }
}
