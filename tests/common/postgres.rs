//! A real PostgreSQL server for the tests, started once per test binary.
//!
//! Debian's `postgresql` package (`initdb`, `pg_ctl` under
//! `/usr/lib/postgresql/<version>/bin`, or `SPINDOWN_PG_BIN`): a cluster in a
//! temporary directory, on a free port of 127.0.0.1, trust authentication for
//! the user `spindown`. The server refuses to run as root, so as root it runs
//! as `nobody` (through `runuser`). A watchdog process stops it and removes
//! the directory when the test binary exits, however it exits (it watches
//! `/proc/PID`: as `nobody` it may not signal the test process).
//!
//! Each test asks for its own database ([`database`]), so tests share the
//! server but nothing else. `SPINDOWN_PG_URL` (a `postgres://` URL of a
//! superuser) uses a server that is already running instead.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Server {
    /// `postgres://spindown@127.0.0.1:PORT` (no database).
    pub base: String,
    pub bin: PathBuf,
    pub data: PathBuf,
    /// The server's options (`pg_ctl -o`), to start it again the same way.
    pub options: String,
    pub log: PathBuf,
}

impl Server {
    /// `pg_ctl` as the server's user, waiting for it to finish.
    fn ctl(&self, args: &[&str]) {
        assert!(
            !self.options.is_empty(),
            "this test stops and starts the PostgreSQL server: it needs the server the tests start, not SPINDOWN_PG_URL's"
        );
        let out = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        check(&format!("pg_ctl {args:?}"), out);
    }

    /// `pg_ctl stop -m fast`: every session ended, the server gone (as in a
    /// managed database's maintenance restart or failover).
    pub fn stop_fast(&self) {
        self.ctl(&["stop", "-m", "fast", "-w", "-t", "60"]);
    }

    /// Start it again as it was.
    pub fn start_again(&self) {
        let log = self.log.display().to_string();
        self.ctl(&["start", "-o", &self.options, "-l", &log, "-w", "-t", "60"]);
    }

    /// `pg_ctl restart -m immediate`: the server killed and recovered from its WAL.
    pub fn restart_immediate(&self) {
        let log = self.log.display().to_string();
        self.ctl(&["restart", "-m", "immediate", "-o", &self.options, "-l", &log, "-w", "-t", "60"]);
    }
}

static SERVER: OnceLock<Server> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The server, started on first use.
pub fn server() -> &'static Server {
    SERVER.get_or_init(start)
}

/// A fresh, empty database on the server: its `postgres://` URL.
pub fn database(name: &str) -> String {
    let s = server();
    let db = format!(
        "{}_{}_{}",
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let db = db.to_ascii_lowercase();
    let out = psql(s, "postgres", &format!("CREATE DATABASE {db}"));
    assert!(out.status.success(), "CREATE DATABASE {db}: {}", String::from_utf8_lossy(&out.stderr));
    format!("{}/{db}", s.base)
}

/// Run one SQL statement with `psql` (as the superuser), returning its output.
pub fn psql(s: &Server, db: &str, sql: &str) -> std::process::Output {
    let url = format!("{}/{db}", s.base);
    Command::new(s.bin.join("psql"))
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", &url, "-c", sql])
        .output()
        .expect("run psql")
}

/// `psql` on a database URL, returning stdout (and panicking on failure).
pub fn sql(url: &str, sql: &str) -> String {
    let s = server();
    let out = Command::new(s.bin.join("psql"))
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .expect("run psql");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Run a file of SQL (a `pg_dump`) with `psql` on a database URL, in one transaction.
pub fn sql_file(url: &str, path: &std::path::Path) {
    let s = server();
    let out = Command::new(s.bin.join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", url, "-f"])
        .arg(path)
        .output()
        .expect("run psql");
    assert!(out.status.success(), "psql -f {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
}

fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SPINDOWN_PG_BIN") {
        return PathBuf::from(d);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|b| b.join("initdb").exists()).collect())
        .unwrap_or_default();
    found.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server programs are not installed: no /usr/lib/postgresql/*/bin/initdb \
             (apt-get install postgresql, or set SPINDOWN_PG_BIN to the directory holding initdb and pg_ctl)"
        )
    })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// A command that runs as the server's user (`nobody` when we are root).
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn check(what: &str, out: std::process::Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start() -> Server {
    if let Ok(url) = std::env::var("SPINDOWN_PG_URL") {
        return Server {
            base: url.trim_end_matches('/').to_string(),
            bin: bin_dir(),
            data: PathBuf::new(),
            options: String::new(),
            log: PathBuf::new(),
        };
    }
    let bin = bin_dir();
    let dir = tempfile::Builder::new().prefix("spindown-pg-").tempdir().unwrap().keep();
    if is_root() {
        check("chown", Command::new("chown").args(["-R", "nobody:nogroup"]).arg(&dir).output().unwrap());
    }
    let data = dir.join("data");
    check(
        "initdb",
        as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "spindown", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap(),
    );
    let port = free_port();
    // The tests' cluster: durability settings off (no test powers the machine
    // down), enough connections for several workers per test.
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
         -c max_connections=300 -c shared_buffers=128MB",
        dir.display()
    );
    check(
        "pg_ctl start",
        as_server_user(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(dir.join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap(),
    );
    // The watchdog: when this process is gone, stop the server and clean up.
    let script = format!(
        "while [ -d /proc/{pid} ]; do sleep 0.5; done; {ctl} -D {data} stop -m immediate >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        ctl = bin.join("pg_ctl").display(),
        data = data.display(),
        dir = dir.display()
    );
    // Never waited for: it outlives this process on purpose.
    #[allow(clippy::zombie_processes)]
    as_server_user(Path::new("/bin/sh"))
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server's watchdog");
    let base = format!("postgres://spindown@127.0.0.1:{port}");
    let server = Server { base, bin, data, options, log: dir.join("server.log") };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = psql(&server, "postgres", "SELECT 1");
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "the test server does not answer: {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}
