//! A moto server (the local AWS endpoint) on a free loopback port.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The `moto_server` executable: `$SPINDOWN_MOTO_SERVER`, or the pinned one
/// `scripts/moto-env` installs (once, from PyPI).
pub fn moto_server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("SPINDOWN_MOTO_SERVER") {
            return PathBuf::from(p);
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/moto-env");
        let out = Command::new(script).stderr(Stdio::inherit()).output().expect("run scripts/moto-env");
        assert!(out.status.success(), "scripts/moto-env failed: cannot install the local AWS endpoint (moto)");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

/// A running moto server, killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Moto {
    pub fn start() -> Moto {
        let bin = moto_server_bin();
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, endpoint: format!("http://127.0.0.1:{port}"), port }
    }

    /// An SDK configuration for the test's own clients (no process env needed).
    pub async fn sdk(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
            .load()
            .await
    }

    /// The environment a `spindown` child process needs to use this endpoint.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
