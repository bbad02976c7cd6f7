//! Worker processes: start, SIGKILL, SIGTERM.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::moto::Moto;

pub const POLICY: &str = r#"
safety_net_delay = "4s"
min_success_duration = "4s"
keepalive_recheck = "2s"
max_lifetime = "14s"
overrun_grace = "1s"
"#;

pub const CONFIG: &str = r#"
[guard]
require_tag = "meeting_id"
[effects]
base_delay = "200ms"
max_delay = "2s"
[stream]
idle_poll = "100ms"
"#;

pub fn worker(moto: &Moto, db: &Path, table: &str, dir: &Path, log: &str) -> Child {
    worker_with(moto, db, table, dir, log, POLICY, CONFIG, &[])
}

/// `spindown run` as a child process with this policy, config and extra environment.
#[allow(clippy::too_many_arguments)]
pub fn worker_with(
    moto: &Moto,
    db: &Path,
    table: &str,
    dir: &Path,
    log: &str,
    policy_text: &str,
    config_text: &str,
    env: &[(&str, &str)],
) -> Child {
    let policy = settings_file(dir, "policy", policy_text);
    let config = settings_file(dir, "spindown", config_text);
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(log)).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spindown"));
    cmd.arg("--db").arg(db).args(["run", "--table", table, "--policy"]).arg(&policy).arg("--config").arg(&config);
    for (k, v) in moto.env() {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env("RUST_LOG", "info").stdout(Stdio::null()).stderr(log).spawn().unwrap()
}

/// A settings file named by its content, written whole (to a temporary name,
/// then renamed): workers started side by side never read one half-written
/// by another.
fn settings_file(dir: &Path, stem: &str, text: &str) -> std::path::PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    let path = dir.join(format!("{stem}-{:016x}.toml", h.finish()));
    if !path.exists() {
        let tmp = tempfile::NamedTempFile::new_in(dir).unwrap();
        std::fs::write(tmp.path(), text).unwrap();
        tmp.persist(&path).unwrap();
    }
    path
}

pub fn kill9(child: &mut Child) {
    let pid = child.id().to_string();
    let ok = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    assert!(ok.success());
    let status = child.wait().unwrap();
    assert!(!status.success(), "SIGKILL ends the process abruptly");
}

/// Wait until the worker logging to `log` has started (its signal handlers are in place).
pub fn wait_started(log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(log).unwrap_or_default().contains("spindown worker starting") {
        assert!(Instant::now() < deadline, "the worker did not start: {}", log.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "the worker did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub use super::records::sleep_until;
