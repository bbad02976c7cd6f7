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
    /// Every request, in arrival order.
    calls: Vec<Call>,
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The operation (`EC2.TerminateInstances`, `DynamoDB_20120810.UpdateItem`, ...).
    pub target: String,
    /// The SDK's attempt number (its `amz-sdk-request` header): 2 and up are its own retries.
    pub attempt: u32,
    /// The body of an EC2 (form-encoded) request; empty for the JSON services.
    pub form: String,
    /// The HTTP status handed back, or `None` if the client got no answer
    /// (a reset, a held request, an upstream that failed).
    pub answered: Option<u16>,
    /// The SDK's id of the operation (`amz-sdk-invocation-id`): the same on its retries.
    pub invocation: String,
    /// When the request arrived.
    pub at: std::time::SystemTime,
    /// Who sent it: the `app/…` of its user agent (`spindown-w0-r003`), if any.
    pub app: String,
}

impl Call {
    /// The values of a form field list (`InstanceId.1=…&InstanceId.2=…` for `InstanceId`).
    pub fn form_list(&self, name: &str) -> Vec<String> {
        self.form
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| k.strip_prefix(name).is_some_and(|n| n.starts_with('.')))
            .map(|(_, v)| v.to_string())
            .collect()
    }
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

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.head, name)
    }

    /// The caller's app name in the user agent (`app/NAME`).
    pub fn app(&self) -> Option<&str> {
        ["x-amz-user-agent", "user-agent"]
            .iter()
            .filter_map(|h| self.header(h))
            .flat_map(|v| v.split_whitespace())
            .find_map(|t| t.strip_prefix("app/"))
    }

    /// The SDK's attempt number (`amz-sdk-request: attempt=2; max=3`), 1 without it.
    pub fn attempt(&self) -> u32 {
        self.header("amz-sdk-request")
            .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("attempt=")?.parse().ok()))
            .unwrap_or(1)
    }
}

/// A header's value in a request or response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
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
    let len: usize = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).await.ok()?;
    let (target, json) = match header(&head, "x-amz-target") {
        Some(t) => (t.to_string(), true),
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

/// The status code of an HTTP response.
fn status_of(reply: &[u8]) -> Option<u16> {
    let line = reply.split(|&b| b == b'\n').next()?;
    std::str::from_utf8(line).ok()?.split_whitespace().nth(1)?.parse().ok()
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
                            let form =
                                if req.json { String::new() } else { String::from_utf8_lossy(&req.body).into_owned() };
                            s.calls.push(Call {
                                target: req.target.clone(),
                                attempt: req.attempt(),
                                form,
                                answered: None,
                                invocation: req.header("amz-sdk-invocation-id").unwrap_or_default().to_string(),
                                at: std::time::SystemTime::now(),
                                app: req.app().unwrap_or_default().to_string(),
                            });
                            let call = s.calls.len() - 1;
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
                            (call, pick.map(|k| (k, rates.delay_for)))
                        };
                        let (call, fault) = fault;
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
                        st.lock().unwrap().calls[call].answered = status_of(&reply);
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

    /// Every request seen so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Requests seen so far, by operation.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.state.lock().unwrap().requests.clone()
    }
}
