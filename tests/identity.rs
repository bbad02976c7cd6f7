//! One identity, one process: a second `spindown run` under an identity
//! that a live process holds refuses to start with one clear line (exit 1),
//! on a SQLite file (its worker lock) and on PostgreSQL (a live
//! registration); a dead one is forgotten once its heartbeat is older than
//! the lease time-to-live.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::aws::Aws;
use common::moto::Moto;
use common::process::{kill9, sigterm, wait_started, worker_with, CONFIG, POLICY};

/// The exit of a worker that must refuse to start: (status, its log).
fn refused(child: &mut Child, log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(1), "refused with exit 1");
            return std::fs::read_to_string(log).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the second worker did not refuse: {}",
            std::fs::read_to_string(log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn error_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.starts_with("error:")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_worker_on_one_sqlite_file_refuses_to_start() {
    let moto = Moto::start();
    let _aws = Aws::new(&moto, "elephant-meetings").await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("one.db");
    let mut first = worker_with(&moto, &db, "elephant-meetings", dir.path(), "first.log", POLICY, CONFIG, &[]);
    wait_started(&dir.path().join("first.log"));
    std::thread::sleep(Duration::from_millis(500));
    let mut second = worker_with(&moto, &db, "elephant-meetings", dir.path(), "second.log", POLICY, CONFIG, &[]);
    let log = refused(&mut second, &dir.path().join("second.log"));
    let errors = error_lines(&log);
    assert_eq!(errors.len(), 1, "one clear line: {log}");
    assert!(
        errors[0].contains("another spindown worker runs on this database") && errors[0].contains("one.db.worker.lock"),
        "{log}"
    );
    assert!(first.try_wait().unwrap().is_none(), "the first runs on");
    // Killed, the first leaves its lock behind in no state to refuse anyone: the kernel dropped it.
    kill9(&mut first);
    let mut third = worker_with(&moto, &db, "elephant-meetings", dir.path(), "third.log", POLICY, CONFIG, &[]);
    wait_started(&dir.path().join("third.log"));
    std::thread::sleep(Duration::from_secs(2));
    assert!(third.try_wait().unwrap().is_none(), "a restart after a crash starts at once");
    assert!(sigterm(&mut third).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_with_one_identity_on_postgresql_the_second_refuses() {
    let moto = Moto::start();
    let _aws = Aws::new(&moto, "elephant-meetings").await;
    let dir = tempfile::tempdir().unwrap();
    let url = common::postgres::database("identity");
    let config = format!("{CONFIG}lease_ttl = \"2s\"\n");
    let env = [("SPINDOWN_WORKER_ID", "pod-1")];
    let start =
        |log: &str| worker_with(&moto, Path::new(&url), "elephant-meetings", dir.path(), log, POLICY, &config, &env);
    let db = url.rsplit('/').next().unwrap().to_string();
    let registered = || {
        let out =
            common::postgres::psql(common::postgres::server(), &db, "SELECT count(*) FROM workers WHERE id = 'pod-1'");
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "1"
    };
    let mut first = start("first.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !registered() {
        assert!(Instant::now() < deadline, "pod-1 never registered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut second = start("second.log");
    let log = refused(&mut second, &dir.path().join("second.log"));
    let errors = error_lines(&log);
    assert_eq!(errors.len(), 1, "one clear line: {log}");
    assert!(errors[0].contains("another process runs as worker \"pod-1\""), "{log}");
    assert!(first.try_wait().unwrap().is_none(), "the first runs on");
    // The first dies; a replacement under the same name is refused while the
    // registration is live, and starts once it is older than the lease TTL (2 s).
    kill9(&mut first);
    let t0 = Instant::now();
    let mut attempts = 0;
    let mut replacement = loop {
        attempts += 1;
        let mut c = start(&format!("replacement-{attempts}.log"));
        std::thread::sleep(Duration::from_millis(1500));
        match c.try_wait().unwrap() {
            None => break c,
            Some(status) => assert_eq!(status.code(), Some(1)),
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "never started after the first died");
    };
    assert!(t0.elapsed() < Duration::from_secs(10), "within a few seconds of the TTL: {:?}", t0.elapsed());
    assert!(sigterm(&mut replacement).success());
    eprintln!(
        "identity: the replacement started {:.1}s after the kill, attempt {attempts}",
        t0.elapsed().as_secs_f64()
    );
}
