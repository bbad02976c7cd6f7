//! Storage faults: the disk fills up, the file system turns read-only, another
//! process holds the database lock. For the first two the worker must say so
//! in one clear line and exit non-zero, leave the database sound and its
//! checkpoint in place, and, restarted on a healthy disk, converge; a lock
//! another process holds passes, so the worker says so and waits it out.
//!
//! The disk is a real tmpfs (mounted by the test, which needs root, as CI has);
//! the lock is a real SQLite `BEGIN EXCLUSIVE` held by another process.

mod common;

use spindown::inspect::MeetingStore;
use spindown::meeting::EffectFilter;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue as V;
use common::aws::Aws;
use common::moto::Moto;
use common::process::{sigterm, wait_started, worker_with, CONFIG, POLICY};
use spindown::meeting::history::Outcome;
use spindown::store::sqlite::SqliteStore;
use spindown::store::{EffectStatus, Page, Store};
use spindown::time::{Span, Timestamp};

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mounting a tmpfs needs root (CI runs the tests as root)");
        Tmpfs { dir: dir.to_path_buf() }
    }
    fn remount(&self, mode: &str) {
        let ok = Command::new("mount").args(["-o", &format!("remount,{mode}")]).arg(&self.dir).status().unwrap();
        assert!(ok.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Wait for a child to exit on its own; its status and stderr log.
fn exits(child: &mut Child, log: &Path, within: Duration) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return (s, std::fs::read_to_string(log).unwrap_or_default());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the worker kept running: {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn copy_db(from: &Path, to_dir: &Path) -> PathBuf {
    let name = from.file_name().unwrap().to_str().unwrap().to_string();
    for suffix in ["", "-wal", "-shm"] {
        let src = from.with_file_name(format!("{name}{suffix}"));
        if src.exists() {
            std::fs::copy(&src, to_dir.join(format!("{name}{suffix}"))).unwrap();
        }
    }
    to_dir.join(name)
}

async fn meeting(aws: &Aws, id: &str, meet: Timestamp) -> (String, String) {
    let (t, s) = (aws.instance(id).await, aws.instance(id).await);
    aws.put(&[
        ("id", V::S(id.into())),
        ("meet_time", V::S(meet.to_rfc3339())),
        ("teacher_ec2_id", V::S(t.clone())),
        ("student_ec2_id", V::S(s.clone())),
    ])
    .await;
    (t, s)
}

async fn ended(store: &SqliteStore, ids: &[&str], within: Duration) {
    let deadline = Instant::now() + within;
    'wait: loop {
        assert!(Instant::now() < deadline, "meetings did not end: {:?}", store.counts().await.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
        for id in ids {
            match store.meeting(&id.parse().unwrap()).await.unwrap() {
                Some(m) if m.meeting.ended.is_some() => {}
                _ => continue 'wait,
            }
        }
        if store
            .effects(&EffectFilter { status: Some(EffectStatus::Pending), ..EffectFilter::default() })
            .await
            .unwrap()
            .is_empty()
        {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_worker_cleanly_and_a_healthy_disk_converges() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("small"), "3m");
    let db = disk.dir.join("w.db");
    let aws = Aws::new(&moto, "elephant-meetings").await;
    let meet = Timestamp::now().saturating_add(Span::from_secs(-10));
    let (t1, s1) = meeting(&aws, "m-before", meet).await;
    let mut w = worker_with(&moto, &db, "elephant-meetings", dir.path(), "full.log", POLICY, CONFIG, &[]);
    let store = SqliteStore::open(&db, &Default::default()).await.unwrap();
    ended(&store, &["m-before"], Duration::from_secs(30)).await;
    let before = store.checkpoints(None).await.unwrap();
    store.close().await;

    // Records the engine keeps raw (dead letters: meet_time of the wrong type)
    // until the 3 MB disk is full.
    let blob = "x".repeat(300 << 10);
    for i in 0..20 {
        aws.put(&[("id", V::S(format!("junk-{i}"))), ("meet_time", V::N("1".into())), ("pad", V::S(blob.clone()))])
            .await;
    }
    let (status, log) = exits(&mut w, &dir.path().join("full.log"), Duration::from_secs(60));
    assert!(!status.success(), "a full disk ends the worker: {status}");
    let last = log.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: ") && last.contains("the disk is full"), "one clear line: {log}");

    // The file is sound and the checkpoint is where it was (or later).
    let healthy = tempfile::tempdir().unwrap();
    let moved = copy_db(&db, healthy.path());
    let store = SqliteStore::open(&moved, &Default::default()).await.unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    let after = store.checkpoints(None).await.unwrap();
    assert_eq!(after.len(), 1);
    assert!(after[0].records >= before[0].records, "the checkpoint was not lost");
    drop(disk);

    // On a healthy disk the worker converges: every junk record dead-lettered, new meetings ended.
    let (t2, s2) = meeting(&aws, "m-after", Timestamp::now().saturating_add(Span::from_secs(-10))).await;
    let mut w = worker_with(&moto, &moved, "elephant-meetings", healthy.path(), "healthy.log", POLICY, CONFIG, &[]);
    ended(&store, &["m-before", "m-after"], Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.counts().await.unwrap().dead_letters < 20 {
        assert!(Instant::now() < deadline, "{:?}", store.counts().await.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_started(&healthy.path().join("healthy.log"));
    assert!(sigterm(&mut w).success());
    for i in [t1, s1, t2, s2] {
        assert_eq!(aws.state(&i).await, "terminated");
    }
    let dead = store.dead_letters(&Page { after: None, limit: 100 }).await.unwrap();
    assert_eq!(dead.len(), 20, "each junk record exactly once");
    assert!(dead.iter().all(|d| d.kind == "wrong_type" && d.raw.len() > 300_000));
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_file_system_is_refused_clearly_and_the_worker_resumes_when_writable() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("ro"), "64m");
    let db = disk.dir.join("w.db");
    let aws = Aws::new(&moto, "elephant-meetings").await;
    let (t1, _) = meeting(&aws, "m-1", Timestamp::now().saturating_add(Span::from_secs(-10))).await;
    let mut w = worker_with(&moto, &db, "elephant-meetings", dir.path(), "ro-1.log", POLICY, CONFIG, &[]);
    {
        let store = SqliteStore::open(&db, &Default::default()).await.unwrap();
        ended(&store, &["m-1"], Duration::from_secs(30)).await;
        store.close().await;
    }
    wait_started(&dir.path().join("ro-1.log"));
    assert!(sigterm(&mut w).success());

    // The volume comes back read-only (a remount cannot happen under an open
    // writer, so between runs); a new meeting arrives meanwhile.
    disk.remount("ro");
    let (t2, _) = meeting(&aws, "m-2", Timestamp::now().saturating_add(Span::from_secs(-10))).await;
    let mut w = worker_with(&moto, &db, "elephant-meetings", dir.path(), "ro-2.log", POLICY, CONFIG, &[]);
    let (status, log) = exits(&mut w, &dir.path().join("ro-2.log"), Duration::from_secs(60));
    assert!(!status.success());
    let last = log.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: ") && last.contains("read-only"), "one clear line: {log}");
    assert_eq!(log.lines().filter(|l| l.starts_with("error")).count(), 1, "{log}");
    assert_eq!(aws.state(&t2).await, "running", "nothing half-done");

    // Writable again: it resumes from its checkpoint and ends m-2.
    disk.remount("rw");
    let mut w = worker_with(&moto, &db, "elephant-meetings", dir.path(), "ro-3.log", POLICY, CONFIG, &[]);
    let store = SqliteStore::open(&db, &Default::default()).await.unwrap();
    ended(&store, &["m-1", "m-2"], Duration::from_secs(30)).await;
    wait_started(&dir.path().join("ro-3.log"));
    assert!(sigterm(&mut w).success());
    assert_eq!(aws.state(&t1).await, "terminated");
    assert_eq!(aws.state(&t2).await, "terminated");
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    let h = store.history(&"m-1".parse().unwrap()).await.unwrap();
    assert_eq!(h.iter().filter(|h| h.entry.outcome == Outcome::Terminated).count(), 1, "m-1 was not ended twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_is_reported_and_waited_out() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let aws = Aws::new(&moto, "elephant-meetings").await;
    // Create the database, then let another process hold its write lock.
    let store = SqliteStore::open(&db, &Default::default()).await.unwrap();
    store.close().await;
    let python = common::moto::moto_server_bin().with_file_name("python");
    let mut holder = Command::new(python)
        .arg("-c")
        .arg("import sqlite3, sys, time\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\ntime.sleep(120)")
        .arg(&db)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "locked");
    }
    let (t1, _) = meeting(&aws, "m-1", Timestamp::now().saturating_add(Span::from_secs(-10))).await;
    // The worker waits for the lock (a backup, an operator's sqlite3): it says
    // so, does nothing meanwhile, and carries on once the lock is gone.
    let mut w = worker_with(&moto, &db, "elephant-meetings", dir.path(), "locked.log", POLICY, CONFIG, &[]);
    let log = dir.path().join("locked.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("locked by another process") {
        assert!(
            Instant::now() < deadline,
            "the lock is reported: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(w.try_wait().unwrap().is_none(), "a held lock is waited out, not fatal");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    assert!(w.try_wait().unwrap().is_none(), "still waiting: {}", std::fs::read_to_string(&log).unwrap_or_default());
    assert_eq!(aws.state(&t1).await, "running");

    let _ = holder.kill();
    let _ = holder.wait();
    let store = SqliteStore::open(&db, &Default::default()).await.unwrap();
    ended(&store, &["m-1"], Duration::from_secs(60)).await;
    wait_started(&log);
    assert!(sigterm(&mut w).success());
    assert_eq!(aws.state(&t1).await, "terminated");
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

/// A worker and its console, or an operator's command, started together on a
/// new file: every process opens (and so migrates) it at the same moment. Each
/// must find a database, never `table … already exists` from a migration the
/// other was running (the CI failure of a test that opened the file while its
/// worker started).
#[test]
fn processes_opening_one_new_file_at_once_all_find_it_migrated() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("new.db");
        let empty = dir.path().join("none.jsonl");
        std::fs::write(&empty, "").unwrap();
        let children: Vec<Child> = (0..6)
            .map(|_| {
                common::spindown()
                    .args(["--db", db.to_str().unwrap(), "ingest"])
                    .arg(&empty)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        }
    }
}
