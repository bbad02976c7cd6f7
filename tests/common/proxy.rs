//! A fault-injecting HTTP proxy between the worker and the local AWS endpoint.
//!
//! Per request, at configurable rates, it answers 500 or 503, a throttling
//! error (`ThrottlingException` / EC2 `RequestLimitExceeded`), a
//! `ProvisionedThroughputExceededException`, holds the request past the
//! client's timeout, or resets the connection; otherwise it forwards the
//! request to moto and the response back. Errors are shaped like the real
//! services' (JSON for DynamoDB and Streams, XML for EC2) so the SDK parses
//! and classifies them as it would in production.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Fault rates (each a probability per request; their sum at most 1).
#[derive(Debug, Clone, Default)]
pub struct Rates {
    pub http500: f64,
    pub http503: f64,
    pub throttle: f64,
    pub throughput: f64,
    pub delay: f64,
    pub reset: f64,
    /// How long a delayed request is held (longer than the client's attempt timeout).
    pub delay_for: Duration,
    /// Only requests whose target contains this (e.g. `TerminateInstances`) get faults.
    pub only: Option<String>,
}

impl Rates {
    pub fn total(&self) -> f64 {
        self.http500 + self.http503 + self.throttle + self.throughput + self.delay + self.reset
    }
}

#[derive(Default)]
struct State {
    rates: Rates,
    rng: Option<StdRng>,
    /// Requests seen, by operation.
    requests: BTreeMap<String, u64>,
    /// Faults injected, by kind.
    faults: BTreeMap<&'static str, u64>,
}

/// A running proxy.
pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

pub struct Request {
    pub head: String,
    pub body: Vec<u8>,
    pub target: String,
    pub json: bool,
}

pub async fn read_request(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<Request> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).await.ok()?;
    let (target, json) = match header("x-amz-target") {
        Some(t) => (t, true),
        None => {
            let b = String::from_utf8_lossy(&body);
            let action = b.split('&').find_map(|kv| kv.strip_prefix("Action=")).unwrap_or("?").to_string();
            (format!("EC2.{action}"), false)
        }
    };
    Some(Request { head, body, target, json })
}

fn error_response(req: &Request, status: u16, reason: &str, code: &str, message: &str) -> Vec<u8> {
    let (content_type, body) = if req.json {
        let prefix = if code.starts_with("ProvisionedThroughput") || code == "ThrottlingException" {
            "com.amazonaws.dynamodb.v20120810#"
        } else {
            ""
        };
        ("application/x-amz-json-1.0", format!(r#"{{"__type":"{prefix}{code}","message":"{message}"}}"#))
    } else {
        (
            "text/xml;charset=UTF-8",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
            ),
        )
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\nx-amzn-errortype: {code}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Forward one request to the upstream and return its full response.
pub async fn forward(upstream: SocketAddr, req: &Request) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).await?;
    // One request per upstream connection: ask for close, so the response ends at EOF.
    let mut head: String = req
        .head
        .lines()
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    head.push_str("connection: close\r\n\r\n");
    up.write_all(head.as_bytes()).await?;
    up.write_all(&req.body).await?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).await?;
    // Tell the client the connection stays open (we keep it), whatever upstream said.
    let text_end = resp.windows(4).position(|w| w == b"\r\n\r\n").map_or(resp.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&resp[..text_end]).to_string();
    let body = resp[text_end..].to_vec();
    let mut out: String = head
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.is_empty()
                && !l.starts_with("connection:")
                && !l.starts_with("content-length:")
                && !l.starts_with("transfer-encoding:")
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

impl FaultProxy {
    pub async fn start(upstream: &str, rates: Rates, seed: u64) -> FaultProxy {
        let upstream: SocketAddr = upstream.trim_start_matches("http://").parse().expect("upstream host:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State { rates, rng: Some(StdRng::seed_from_u64(seed)), ..State::default() }));
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let st = st.clone();
                tokio::spawn(async move {
                    let (rd, mut wr) = sock.into_split();
                    let mut rd = BufReader::new(rd);
                    while let Some(req) = read_request(&mut rd).await {
                        let fault = {
                            let mut s = st.lock().unwrap();
                            *s.requests.entry(req.target.clone()).or_default() += 1;
                            let rates = s.rates.clone();
                            let applies = rates.only.as_ref().is_none_or(|o| req.target.contains(o.as_str()));
                            let x: f64 = s.rng.as_mut().unwrap().gen();
                            let mut acc = 0.0;
                            let mut pick = None;
                            if applies {
                                for (kind, rate) in [
                                    ("http500", rates.http500),
                                    ("http503", rates.http503),
                                    ("throttle", rates.throttle),
                                    ("throughput", rates.throughput),
                                    ("delay", rates.delay),
                                    ("reset", rates.reset),
                                ] {
                                    acc += rate;
                                    if x < acc {
                                        pick = Some(kind);
                                        break;
                                    }
                                }
                            }
                            if let Some(k) = pick {
                                *s.faults.entry(k).or_default() += 1;
                            }
                            pick.map(|k| (k, rates.delay_for))
                        };
                        let reply = match fault {
                            None => match forward(upstream, &req).await {
                                Ok(r) => r,
                                Err(_) => return,
                            },
                            Some(("http500", _)) => error_response(
                                &req,
                                500,
                                "Internal Server Error",
                                if req.json { "InternalServerError" } else { "InternalError" },
                                "injected 500",
                            ),
                            Some(("http503", _)) => {
                                error_response(&req, 503, "Service Unavailable", "ServiceUnavailable", "injected 503")
                            }
                            Some(("throttle", _)) => {
                                if req.json {
                                    error_response(&req, 400, "Bad Request", "ThrottlingException", "Rate exceeded")
                                } else {
                                    error_response(
                                        &req,
                                        503,
                                        "Service Unavailable",
                                        "RequestLimitExceeded",
                                        "Request limit exceeded.",
                                    )
                                }
                            }
                            Some(("throughput", _)) => error_response(
                                &req,
                                400,
                                "Bad Request",
                                "ProvisionedThroughputExceededException",
                                "The level of configured provisioned throughput for the table was exceeded.",
                            ),
                            Some(("delay", d)) => {
                                tokio::time::sleep(d).await;
                                return; // the client gave up long ago
                            }
                            Some(_) => {
                                // Reset: close with SO_LINGER 0, which sends RST.
                                if let Ok(sock) = rd.into_inner().reunite(wr) {
                                    // A zero linger does not block on drop: it sends RST at once.
                                    #[allow(deprecated)]
                                    let _ = sock.set_linger(Some(Duration::ZERO));
                                }
                                return;
                            }
                        };
                        if wr.write_all(&reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FaultProxy { endpoint, state }
    }

    pub fn set_rates(&self, rates: Rates) {
        self.state.lock().unwrap().rates = rates;
    }

    /// Faults injected so far, by kind.
    pub fn faults(&self) -> BTreeMap<&'static str, u64> {
        self.state.lock().unwrap().faults.clone()
    }

    /// Requests seen so far, by operation.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.state.lock().unwrap().requests.clone()
    }
}
