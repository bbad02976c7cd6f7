//! Crash loop: the worker is killed over and over while meetings live and die,
//! and nothing is lost or doubled.
//!
//! Against the local AWS endpoint: N meetings (default 200; every scenario kind
//! of the spec, timings in seconds) are written through their lives while
//! `spindown run` runs as a child process that is SIGKILLed at random moments
//! (at least K times, default 20) and restarted each time; crash points inside
//! the worker (`SPINDOWN_FAILPOINTS`) also abort it while a page of records is
//! in hand, inside a transaction, between a commit and its effects, and around
//! effect calls. Afterwards every meeting's state and reason must equal what
//! `spindown replay` computes from the records read back from the stream; the
//! instances, the write-backs, the histories and the database file are checked.
//!
//! Larger runs: `SPINDOWN_CRASH_MEETINGS=1000 SPINDOWN_CRASH_KILLS=60 scripts/test --test crash_loop -- --nocapture`;
//! `SPINDOWN_CRASH_SEED=N` picks other kill moments, `SPINDOWN_KEEP_DIR=1` keeps the database and logs.

mod common;

use spindown::inspect::MeetingStore;
use spindown::meeting::EffectFilter;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::aws::Aws;
use common::moto::Moto;
use common::process::{kill9, sigterm, worker_with};
use common::scenario::{self, env_usize, POLICY};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spindown::store::EffectStatus;
use spindown::time::{Span, Timestamp};

const CONFIG: &str = r#"
[guard]
require_tag = "meeting_id"
[effects]
base_delay = "200ms"
max_delay = "2s"
[stream]
idle_poll = "100ms"
timer_hold_max = "30s"
"#;

const FAILPOINTS: &str =
    "stream-after-fetch=0.02,tx-before-commit=0.004,after-commit=0.004,effect-before-call=0.01,effect-after-call=0.01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_again_and_again_the_worker_loses_nothing_and_doubles_nothing() {
    let n = env_usize("SPINDOWN_CRASH_MEETINGS", 200);
    let min_kills = env_usize("SPINDOWN_CRASH_KILLS", 20);
    let seed = env_usize("SPINDOWN_CRASH_SEED", 7) as u64;
    let mut rng = StdRng::seed_from_u64(seed);
    let moto = Moto::start();
    let mut dir = tempfile::tempdir().unwrap();
    // SPINDOWN_KEEP_DIR=1 keeps the database and the worker logs to look at.
    if std::env::var_os("SPINDOWN_KEEP_DIR").is_some() {
        dir.disable_cleanup(true);
        eprintln!("crash loop: keeping {}", dir.path().display());
    }
    let db = dir.path().join("crash.db");
    let aws = Aws::new(&moto, "elephant-meetings").await;

    // Meetings and their instances; every row change at its time.
    let t0 = Timestamp::now().saturating_add(Span::from_secs(4 + n as i64 / 50));
    let plans = scenario::meetings(&aws, n, t0, 20.0).await;
    let mut unrelated = Vec::new();
    for i in 0..5 {
        unrelated.push(aws.instance(&format!("not-a-meeting-{i}")).await);
    }
    let end_of_life = scenario::end_of_life(&plans);
    let writer = scenario::spawn_writer(&aws, &plans);
    // The worker reaches AWS through a proxy that injects nothing and counts the calls.
    let proxy = common::proxy::FaultProxy::start(&moto.endpoint, common::proxy::Rates::default(), 1).await;

    // The killer: run, SIGKILL at a random moment, restart; again and again.
    let env = [("SPINDOWN_FAILPOINTS", FAILPOINTS), ("AWS_ENDPOINT_URL", proxy.endpoint.as_str())];
    let spawn = |n: usize| {
        worker_with(&moto, &db, "elephant-meetings", dir.path(), &format!("run-{n:03}.log"), POLICY, CONFIG, &env)
    };
    let mut runs = 0;
    let mut child = spawn(runs);
    let mut kills = 0;
    let mut self_aborts = 0;
    let mut held_at_death: Vec<u64> = Vec::new();
    loop {
        let wait = Duration::from_millis(rng.gen_range(300..1600));
        let until = Instant::now() + wait;
        let mut exited = false;
        while Instant::now() < until {
            if child.try_wait().unwrap().is_some() {
                exited = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if exited {
            self_aborts += 1;
        } else {
            kill9(&mut child);
            kills += 1;
        }
        // What the dead process held: effects claimed (leased) and not yet
        // recorded. Only these can be called again by its successor.
        let held = leased_effects(&db).await;
        held_at_death.push(held);
        if Timestamp::now() > end_of_life && kills >= min_kills {
            break;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..600))).await;
        runs += 1;
        child = spawn(runs);
    }
    writer.await.unwrap();

    // A last, undisturbed run until every meeting has ended and every effect ran.
    runs += 1;
    let mut last = worker_with(
        &moto,
        &db,
        "elephant-meetings",
        dir.path(),
        "final.log",
        POLICY,
        CONFIG,
        &[("AWS_ENDPOINT_URL", proxy.endpoint.as_str())],
    );
    let store = spindown::store::sqlite::SqliteStore::open(&db, &Default::default()).await.unwrap();
    scenario::converge(&store, n, Duration::from_secs(120)).await;
    common::process::wait_started(&dir.path().join("final.log"));
    let status = sigterm(&mut last);
    let final_log = std::fs::read_to_string(dir.path().join("final.log")).unwrap_or_default();
    assert!(status.success(), "clean shutdown, not {status}:\n{final_log}");

    // Crash points actually hit, by name.
    let mut aborts: BTreeMap<String, usize> = BTreeMap::new();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "log") {
            for line in std::fs::read_to_string(&path).unwrap_or_default().lines() {
                if let Some(rest) = line.strip_prefix("failpoint ") {
                    *aborts.entry(rest.split(':').next().unwrap().to_string()).or_default() += 1;
                }
            }
        }
    }

    let checked = scenario::check(&aws, &store, &plans, &unrelated, dir.path()).await;
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    let effects = store.effects(&EffectFilter::default()).await.unwrap();
    assert!(effects.iter().all(|e| e.status == EffectStatus::Done), "every effect done");
    let retried: i64 = effects.iter().map(|e| e.attempts - 1).sum();
    let terminates =
        effects.iter().flat_map(|e| &e.parts).filter(|p| p.kind() == spindown::meeting::EffectKind::Terminate).count()
            as u64;
    let calls: u64 = proxy.requests().iter().filter(|(k, _)| k.contains("TerminateInstances")).map(|(_, n)| *n).sum();
    let repeated = calls.saturating_sub(terminates);
    eprintln!(
        "crash loop: {n} meetings checked ({:?}); {kills} SIGKILLs + {self_aborts} crash-point aborts {aborts:?} \
         over {runs} worker runs; {} stream records replayed, outcomes equal replay (timers at most {} late; {} \
         ended otherwise because the worker was down when their timer was due: {:?}); {} instances terminated, {} left \
         running as required; {} effects, {retried} re-attempts; {terminates} terminations took {calls} \
         TerminateInstances calls ({repeated} repeated: {:.2} per kill); integrity ok",
        checked.by_reason,
        checked.records,
        checked.max_lateness,
        checked.late_outcomes.len(),
        checked.late_outcomes,
        checked.terminated_instances,
        checked.left_running,
        effects.len(),
        repeated as f64 / (kills + self_aborts).max(1) as f64,
    );
    assert!(kills >= min_kills, "{kills} SIGKILLs");
    assert!(calls >= terminates, "{calls} calls for {terminates} terminations");
    // A death repeats at most the calls its process had claimed and not
    // recorded, and the executor claims only what it starts (at most
    // CONCURRENCY at once): a claim of a whole batch whose tail runs later, or
    // outcomes recorded in batches, would break one of these.
    let held: u64 = held_at_death.iter().sum();
    let most = held_at_death.iter().max().copied().unwrap_or(0);
    eprintln!("crash loop: effects held at each death {held_at_death:?} (sum {held}, most {most})");
    assert!(most as usize <= spindown::outbox::CONCURRENCY, "a dead worker held {most} effects");
    assert!(repeated <= held, "{repeated} calls repeated where the {kills} kills and {self_aborts} aborts held {held}");
}

/// Effects some process has claimed and not recorded (a lease on a pending row).
async fn leased_effects(db: &std::path::Path) -> u64 {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::ConnectOptions;
    let Ok(mut conn) = SqliteConnectOptions::new().filename(db).connect().await else {
        return 0; // killed before the file existed
    };
    let n: Result<i64, _> =
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND lease_owner IS NOT NULL")
            .fetch_one(&mut conn)
            .await;
    n.map_or(0, |n| n as u64) // before the outbox was migrated: nothing held
}
