//! Several workers on one PostgreSQL database: killed, paused and cut off
//! again and again, and still nothing is lost or doubled.
//!
//! Three `spindown run` processes share a real PostgreSQL server (started by
//! the tests) and the local AWS endpoint while meetings of every scenario kind
//! live and die. Random workers are SIGKILLed (at least 30 times, default) and
//! restarted under a new identity, so their shard leases must expire and be
//! taken over; crash points abort them inside transactions and around effect
//! calls; one worker is SIGSTOPped past its lease and resumed (a zombie whose
//! old lease must not write); the server ends other workers' connections
//! (`pg_terminate_backend`). Then every meeting must end as `spindown replay`
//! of the records read back says, every instance that must go is gone, none
//! that must run was touched, every write-back is exact, no history shows two
//! terminations and every timer fired once.
//!
//! The stream has two open shards (moto's one, split by meeting id by a
//! proxy, `common::shards`), so the workers lease and read them separately.
//! Every `TerminateInstances` call is counted on the way: the calls repeated
//! (beyond one per termination) must be at most the effects the dead (or
//! paused) workers held — claimed and not recorded — when they died, and none
//! may have held more than the executor runs at once: an effect is claimed
//! only as it starts, its lease renewed while its call runs, its outcome
//! recorded when the call returns, so a kill repeats at most the calls in
//! flight.
//!
//! `SPINDOWN_MW_MEETINGS` (default 150), `SPINDOWN_MW_KILLS` (default 30),
//! `SPINDOWN_MW_SEED`, `SPINDOWN_KEEP_DIR=1`.

mod common;

use spindown::inspect::MeetingStore;
use spindown::meeting::EffectFilter;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use common::aws::Aws;
use common::moto::Moto;
use common::process::{kill9, sigterm, wait_started, worker_with};
use common::proxy::{FaultProxy, Rates};
use common::scenario::{self, env_usize, POLICY};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spindown::meeting::EffectKind;
use spindown::store::postgres::{PgOptions, PgStore};
use spindown::store::{EffectStatus, Store};
use spindown::time::{Span, Timestamp};

const CONFIG: &str = r#"
[guard]
require_tag = "meeting_id"
[effects]
base_delay = "200ms"
max_delay = "2s"
lease = "5s"
[stream]
idle_poll = "100ms"
timer_hold_max = "30s"
lease_ttl = "2s"
"#;

const FAILPOINTS: &str = "stream-after-fetch=0.01,tx-before-commit=0.002,after-commit=0.002,effect-before-call=0.005,effect-after-call=0.005";

const WORKERS: usize = 3;

struct Fleet<'a> {
    moto: &'a Moto,
    /// Where the workers reach AWS: a proxy that injects nothing and counts calls.
    endpoint: String,
    url: String,
    dir: &'a Path,
    children: Vec<Child>,
    ids: Vec<String>,
    runs: usize,
    /// For each worker that died or was paused: the effects it held then.
    held: Vec<u64>,
}

impl Fleet<'_> {
    fn spawn(&mut self, k: usize, failpoints: bool) {
        if k < self.children.len() {
            // The one replaced is dead: what it held, its successor may call again.
            self.held.push(self.held_by(k));
        }
        self.runs += 1;
        let id = format!("w{k}-r{:03}", self.runs);
        let mut env = vec![("SPINDOWN_WORKER_ID", id.as_str()), ("AWS_ENDPOINT_URL", self.endpoint.as_str())];
        if failpoints {
            env.push(("SPINDOWN_FAILPOINTS", FAILPOINTS));
        }
        let log = format!("{id}.log");
        let child =
            worker_with(self.moto, Path::new(&self.url), "elephant-meetings", self.dir, &log, POLICY, CONFIG, &env);
        if k < self.children.len() {
            self.children[k] = child;
            self.ids[k] = id;
        } else {
            self.children.push(child);
            self.ids.push(id);
        }
    }

    /// Restart the workers that exited on their own (a crash point); how many.
    fn restart_exited(&mut self) -> usize {
        let mut n = 0;
        for k in 0..self.children.len() {
            if self.children[k].try_wait().unwrap().is_some() {
                self.spawn(k, true);
                n += 1;
            }
        }
        n
    }

    /// Effects worker `k` has claimed and not recorded (its leases on pending rows).
    fn held_by(&self, k: usize) -> u64 {
        let n = common::postgres::sql(
            &self.url,
            &format!("SELECT count(*) FROM outbox WHERE status = 'pending' AND lease_owner = '{}'", self.ids[k]),
        );
        n.trim().parse().unwrap_or_else(|_| panic!("a count, not {n:?}"))
    }

    /// The worker holding the stream's shard lease now, if one does.
    fn holder(&self) -> Option<usize> {
        let owner = common::postgres::sql(
            &self.url,
            "SELECT owner FROM shard_leases WHERE owner IS NOT NULL AND expires_at > spindown_now_us() LIMIT 1",
        );
        self.ids.iter().position(|id| id == owner.trim())
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_killed_paused_and_cut_off_lose_nothing_and_double_nothing() {
    let n = env_usize("SPINDOWN_MW_MEETINGS", 150);
    let min_kills = env_usize("SPINDOWN_MW_KILLS", 30);
    let mut rng = StdRng::seed_from_u64(env_usize("SPINDOWN_MW_SEED", 11) as u64);
    let moto = Moto::start();
    let mut dir = tempfile::tempdir().unwrap();
    if std::env::var_os("SPINDOWN_KEEP_DIR").is_some() {
        dir.disable_cleanup(true);
        eprintln!("multi-worker: keeping {}", dir.path().display());
    }
    let url = common::postgres::database("multi_worker");
    let aws = Aws::new(&moto, "elephant-meetings").await;
    let t0 = Timestamp::now().saturating_add(Span::from_secs(6 + n as i64 / 50));
    let plans = scenario::meetings(&aws, n, t0, 20.0).await;
    let mut unrelated = Vec::new();
    for i in 0..5 {
        unrelated.push(aws.instance(&format!("not-a-meeting-{i}")).await);
    }
    let end_of_life = scenario::end_of_life(&plans);

    // Two open shards, split by meeting id, then a proxy that counts the calls.
    let split: common::shards::Split = std::sync::Arc::new(|id: &str| id.bytes().map(usize::from).sum::<usize>() % 2);
    let shards = common::shards::ShardProxy::start(&moto.endpoint, split, None).await;
    let proxy = FaultProxy::start(&shards.endpoint, Rates::default(), 1).await;
    // The schema first, so that what a dead worker held can always be counted.
    let store = PgStore::open(&url, &PgOptions::default()).await.unwrap();
    let mut fleet = Fleet {
        moto: &moto,
        endpoint: proxy.endpoint.clone(),
        url: url.clone(),
        dir: dir.path(),
        children: vec![],
        ids: vec![],
        runs: 0,
        held: vec![],
    };
    for k in 0..WORKERS {
        fleet.spawn(k, true);
    }
    let writer = scenario::spawn_writer(&aws, &plans);

    let (mut kills, mut self_aborts, mut zombies, mut cut_off) = (0, 0, 0, 0);
    loop {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..1200))).await;
        self_aborts += fleet.restart_exited();
        if kills >= 8 && zombies == 0 {
            // A zombie: the shard's reader is paused past its lease, then resumes.
            if let Some(k) = fleet.holder() {
                signal(&fleet.children[k], "-STOP");
                let held = fleet.held_by(k);
                fleet.held.push(held);
                tokio::time::sleep(Duration::from_secs(6)).await;
                signal(&fleet.children[k], "-CONT");
                zombies += 1;
                continue;
            }
        }
        if kills % 10 == 5 && cut_off < kills / 10 + 1 {
            // The server ends one worker's connections.
            let k = rng.gen_range(0..WORKERS);
            common::postgres::sql(
                &url,
                &format!(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'spindown {}'",
                    fleet.ids[k]
                ),
            );
            cut_off += 1;
        }
        let k = rng.gen_range(0..WORKERS);
        if fleet.children[k].try_wait().unwrap().is_none() {
            kill9(&mut fleet.children[k]);
            kills += 1;
        } else {
            self_aborts += 1;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..400))).await;
        fleet.spawn(k, true);
        if Timestamp::now() > end_of_life && kills >= min_kills {
            break;
        }
    }
    writer.await.unwrap();

    // The three run on undisturbed (crash points off) until every meeting has ended.
    for k in 0..WORKERS {
        if fleet.children[k].try_wait().unwrap().is_none() {
            kill9(&mut fleet.children[k]);
        }
        fleet.spawn(k, false);
    }
    scenario::converge(&store, n, Duration::from_secs(180)).await;
    for k in 0..WORKERS {
        let log = dir.path().join(format!("{}.log", fleet.ids[k]));
        wait_started(&log);
        let status = sigterm(&mut fleet.children[k]);
        assert!(
            status.success(),
            "clean shutdown, not {status}:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    // What the logs say happened.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (what, needle) in [
                ("failpoint aborts", "failpoint "),
                ("lease takeovers", "took over an expired shard lease"),
                ("leases found lost on commit", "its last page is left to the new owner"),
                ("leases found lost on renewal", "no longer reading it"),
            ] {
                *seen.entry(what).or_default() += text.matches(needle).count();
            }
        }
    }

    let checked = scenario::check(&aws, &store, &plans, &unrelated, dir.path()).await;
    let effects = store.effects(&EffectFilter::default()).await.unwrap();
    assert!(effects.iter().all(|e| e.status == EffectStatus::Done), "every effect done");
    let parts = |kind: EffectKind| effects.iter().flat_map(|e| &e.parts).filter(|p| p.kind() == kind).count() as u64;
    let calls = |op: &str| proxy.requests().iter().filter(|(k, _)| k.contains(op)).map(|(_, n)| n).sum::<u64>();
    let (terminates, terminate_calls) = (parts(EffectKind::Terminate), calls("TerminateInstances"));
    let (write_backs, update_calls) = (parts(EffectKind::WriteBack), calls("UpdateItem"));
    assert!(terminate_calls >= terminates, "{terminate_calls} TerminateInstances calls for {terminates} terminations");
    eprintln!(
        "multi-worker: {n} meetings checked ({:?}) with {WORKERS} workers on PostgreSQL; {kills} SIGKILLs, \
         {self_aborts} self-aborts, {zombies} zombie (SIGSTOP past its lease, then SIGCONT), {cut_off} \
         pg_terminate_backend; {} worker runs; {seen:?}; {} stream records replayed, outcomes equal replay \
         (timers at most {} late; {} ended otherwise because no worker was up when their timer was due: {:?}); \
         {} timer fires, each once; {} instances terminated, {} left running; {} effects: {terminates} terminations \
         took {terminate_calls} TerminateInstances calls ({} repeated: {:.2} per kill), {write_backs} write-backs \
         {update_calls} UpdateItem calls; {} shards read",
        checked.by_reason,
        fleet.runs,
        checked.records,
        checked.max_lateness,
        checked.late_outcomes.len(),
        checked.late_outcomes,
        checked.timer_fires,
        checked.terminated_instances,
        checked.left_running,
        effects.len(),
        terminate_calls - terminates,
        (terminate_calls - terminates) as f64 / (kills + self_aborts).max(1) as f64,
        store.checkpoints(None).await.unwrap().len(),
    );
    assert!(kills >= min_kills, "{kills} SIGKILLs");
    let repeated = terminate_calls - terminates;
    // A death (or a pause past its leases) repeats at most the calls its
    // worker had claimed and not recorded, and a worker claims only what it
    // starts (at most CONCURRENCY at once): a batch claimed whole and run
    // later, or outcomes recorded in batches, would break one of these.
    let held: u64 = fleet.held.iter().sum();
    let most = fleet.held.iter().max().copied().unwrap_or(0);
    eprintln!("multi-worker: effects held at each death or pause {:?} (sum {held}, most {most})", fleet.held);
    assert!(most as usize <= spindown::outbox::CONCURRENCY, "a dead worker held {most} effects");
    assert!(
        repeated <= held,
        "{repeated} TerminateInstances calls repeated where the {kills} SIGKILLs and {self_aborts} crash-point aborts \
         held {held}"
    );
    assert_eq!(store.checkpoints(None).await.unwrap().len(), 2, "two shards");
    assert_eq!(zombies, 1, "the zombie was made");
}
