//! What the tests that talk HTTP or drive a browser share: a free port,
//! finding a program, one HTTP/1.1 request over a socket, where screenshots go.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A TCP port nothing listens on (for a child process to bind), outside
/// the kernel's ephemeral range: a port the kernel hands out itself could be
/// taken by any outgoing connection (to PostgreSQL, to moto) before the
/// child binds it.
pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let port = rng.gen_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000")
}

/// A program on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

/// Run `spindown ARGS` on a pseudo-terminal (util-linux `script`), its
/// stdin empty; what the terminal showed.
pub fn on_a_terminal(args: &str) -> String {
    let script = which("script")
        .expect("util-linux's `script` (bsdutils; scripts/test-deps installs it) gives the command a terminal");
    let cmd = format!("{} {args}", env!("CARGO_BIN_EXE_spindown"));
    let dir = tempfile::tempdir().unwrap();
    let typescript = dir.path().join("typescript");
    let status = std::process::Command::new(script)
        .args(["-qec", &cmd])
        .arg(&typescript)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{cmd} on a terminal: {status}");
    String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned()
}

/// Where this test run keeps what a person may want to look at (screenshots).
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One HTTP/1.1 request to 127.0.0.1:`port`: (status, body). Reads exactly
/// the body the head announces (a server may keep the connection open).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    request(port, method, path, body, headers).map(|(status, _, body)| (status, body))
}

/// [`http`], with the response's head too: (status, head, body). A `Host`
/// among `headers` replaces `127.0.0.1:port`.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String, String)> {
    let mut c = TcpStream::connect(("127.0.0.1", port))?;
    c.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.unwrap_or("");
    let host = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map_or(format!("127.0.0.1:{port}"), |(_, v)| v.to_string());
    let headers: Vec<&(&str, &str)> = headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("host")).collect();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    c.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = c.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::other("the connection closed before the response head"));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let mut body = raw[head_end + 4..].to_vec();
    match header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(len) => {
            while body.len() < len {
                let n = c.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..n]);
            }
        }
        None => {
            let _ = c.read_to_end(&mut body);
        }
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    Ok((status, head.clone(), if chunked { dechunk(&text) } else { text }))
}

/// GET `path`.
pub fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http(port, "GET", path, None, &[])
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
