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
//! Every `TerminateInstances` call is recorded on the way (which worker sent
//! it: the user agent names it) and tied to its termination: a termination
//! called more than once must owe each repeat to a reason — a worker that died
//! or was paused holding it (claimed, not recorded), a worker cut off from the
//! database past its lease, a retry after a failed attempt — and no worker may
//! have held more than the executor runs at once: an effect is claimed only as
//! it starts, its lease renewed while its call runs, its outcome recorded when
//! the call returns, so a kill repeats at most the calls in flight. A repeat
//! without a reason fails the test with the calls, the history and what the
//! test did to which worker when.
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
use spindown::meeting::history::{Cause, Outcome};
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
    /// For each worker that died or was paused: the effects it held then (ids).
    held: Vec<Vec<i64>>,
    /// What the test did to which worker, and when (printed when a check fails).
    events: Vec<String>,
}

impl Fleet<'_> {
    fn spawn(&mut self, k: usize, failpoints: bool) {
        if k < self.children.len() {
            // The one replaced is dead: what it held, its successor may call again.
            let held = self.held_by(k);
            self.event(format!("{} dead holding effects {held:?}", self.ids[k]));
            self.held.push(held);
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
        self.event(format!("{id} started"));
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
    fn held_by(&self, k: usize) -> Vec<i64> {
        let ids = common::postgres::sql(
            &self.url,
            &format!("SELECT id FROM outbox WHERE status = 'pending' AND lease_owner = '{}'", self.ids[k]),
        );
        ids.split_whitespace().map(|n| n.parse().unwrap_or_else(|_| panic!("an effect id, not {n:?}"))).collect()
    }

    fn event(&mut self, what: String) {
        self.events.push(format!("{} {what}", now()));
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

fn stamp(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    Timestamp::from_epoch_seconds(secs).map_or_else(|| secs.to_string(), |t| t.to_string())
}

fn now() -> String {
    stamp(std::time::SystemTime::now())
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
        events: vec![],
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
                fleet.event(format!("{} stopped holding effects {held:?}", fleet.ids[k]));
                fleet.held.push(held);
                // Past its 5 s leases. The others go on dying at crash points
                // meanwhile: each is counted and restarted at once, before its
                // own leases run out and what it held passes to another worker
                // (uncounted, that looks like a call repeated for nothing).
                for _ in 0..20 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    self_aborts += fleet.restart_exited();
                }
                signal(&fleet.children[k], "-CONT");
                fleet.event(format!("{} continued", fleet.ids[k]));
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
            fleet.event(format!("{} killed", fleet.ids[k]));
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

    // What the logs say happened (every worker run's log, read once).
    let logs: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for text in &logs {
        for (what, needle) in [
            ("failpoint aborts", "failpoint "),
            ("lease takeovers", "took over an expired shard lease"),
            ("leases found lost on commit", "its last page is left to the new owner"),
            ("leases found lost on renewal", "no longer reading it"),
        ] {
            *seen.entry(what).or_default() += text.matches(needle).count();
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
    let held: Vec<u64> = fleet.held.iter().map(|h| h.len() as u64).collect();
    let most = held.iter().max().copied().unwrap_or(0);
    eprintln!(
        "multi-worker: effects held at each death or pause {held:?} (sum {}, most {most})",
        held.iter().sum::<u64>()
    );
    assert!(most as usize <= spindown::outbox::CONCURRENCY, "a dead worker held {most} effects");
    let mut retried = BTreeMap::new();
    for e in &effects {
        for h in store.history(&e.meeting_id).await.unwrap() {
            if h.entry.cause == (Cause::Effect { kind: EffectKind::Terminate, effect: Some(e.id) })
                && h.entry.outcome == Outcome::EffectRetry
            {
                *retried.entry(e.id).or_default() += 1;
            }
        }
    }
    let calls = proxy.calls();
    let repeats = Repeats::count(&calls, &effects, &retried, &fleet.held, &logs);
    eprintln!("multi-worker: {repeats}");
    if !repeats.unexplained.is_empty() {
        eprintln!("multi-worker: what the test did:\n  {}", fleet.events.join("\n  "));
        for (id, _, _) in &repeats.unexplained {
            let e = effects.iter().find(|e| e.id == *id).unwrap();
            eprintln!("multi-worker: effect {id} ({}), its TerminateInstances calls:", e.meeting_id);
            let mine: Vec<String> = e
                .parts
                .iter()
                .flat_map(|p| match p {
                    spindown::meeting::Effect::Terminate { instances } => {
                        instances.iter().map(|i| i.to_string()).collect()
                    }
                    _ => vec![],
                })
                .collect();
            for c in calls.iter().filter(|c| {
                c.target.ends_with("TerminateInstances") && c.form_list("InstanceId").iter().any(|i| mine.contains(i))
            }) {
                eprintln!(
                    "  {} by {} invocation {} attempt {} answered {:?}",
                    stamp(c.at),
                    c.app,
                    c.invocation,
                    c.attempt,
                    c.answered
                );
            }
            for h in store.history(&e.meeting_id).await.unwrap() {
                eprintln!("  history {}", serde_json::to_string(&h.entry).unwrap());
            }
        }
    }
    assert_eq!(repeats.total, repeated, "every TerminateInstances call belongs to one termination");
    assert!(
        repeats.unexplained.is_empty(),
        "{repeated} TerminateInstances calls repeated ({kills} SIGKILLs, {self_aborts} crash-point aborts): {repeats}"
    );
    assert_eq!(store.checkpoints(None).await.unwrap().len(), 2, "two shards");
    assert_eq!(zombies, 1, "the zombie was made");
}

/// Where the repeated `TerminateInstances` calls came from, effect by effect.
///
/// A termination is called once, and again only for a reason: its worker died
/// or was paused holding it (once per such death), its worker was cut off
/// from the database past its lease (the log names the effect), an attempt
/// got no good answer (the SDK's own retry carries `attempt=2` and up), or the
/// executor retried the effect after a failed attempt (the row's attempts).
/// Anything else is a double the engine must not make.
struct Repeats {
    /// Calls beyond one per termination.
    total: u64,
    /// By reason: (reason, calls it explains).
    by_reason: BTreeMap<&'static str, u64>,
    /// Effects called more often than their reasons allow: (id, calls, allowed).
    unexplained: Vec<(i64, u64, u64)>,
}

impl Repeats {
    fn count(
        calls: &[common::proxy::Call],
        effects: &[spindown::meeting::EffectRow],
        retried: &BTreeMap<i64, u64>,
        held: &[Vec<i64>],
        logs: &[String],
    ) -> Repeats {
        use spindown::meeting::Effect;
        let mut effect_of = std::collections::HashMap::new();
        for e in effects {
            for p in &e.parts {
                if let Effect::Terminate { instances } = p {
                    for i in instances {
                        effect_of.insert(i.to_string(), e.id);
                    }
                }
            }
        }
        let mut called: BTreeMap<i64, u64> = BTreeMap::new();
        let mut sdk_retries: BTreeMap<i64, u64> = BTreeMap::new();
        for c in calls.iter().filter(|c| c.target.ends_with("TerminateInstances")) {
            let ids: std::collections::BTreeSet<i64> = c
                .form_list("InstanceId")
                .iter()
                .map(|i| *effect_of.get(i).unwrap_or_else(|| panic!("{i} is no termination's")))
                .collect();
            assert_eq!(ids.len(), 1, "one call terminates one meeting's instances: {}", c.form);
            assert!(c.app.starts_with("spindown-w"), "the user agent names the worker (CloudTrail shows it): {c:?}");
            let id = *ids.first().unwrap();
            *called.entry(id).or_default() += 1;
            if c.attempt > 1 {
                *sdk_retries.entry(id).or_default() += 1;
            }
        }
        let mut died: BTreeMap<i64, u64> = BTreeMap::new();
        for id in held.iter().flatten() {
            *died.entry(*id).or_default() += 1;
        }
        let mut cut_off: BTreeMap<i64, u64> = BTreeMap::new();
        for line in logs.iter().flat_map(|text| text.lines()) {
            if line.contains("effect leases lost while their calls ran") {
                let list = line.split("effects=[").nth(1).and_then(|r| r.split(']').next()).unwrap_or_default();
                for id in list.split(',').filter_map(|n| n.trim().parse::<i64>().ok()) {
                    *cut_off.entry(id).or_default() += 1;
                }
            } else if line.contains("effect no longer held by this executor") {
                let id = line.split("effect=").nth(1).and_then(|r| r.split_whitespace().next());
                if let Some(id) = id.and_then(|n| n.parse::<i64>().ok()) {
                    *cut_off.entry(id).or_default() += 1;
                }
            }
        }
        let mut r = Repeats { total: 0, by_reason: BTreeMap::new(), unexplained: vec![] };
        for e in effects {
            let n = called.get(&e.id).copied().unwrap_or(0);
            if e.parts.iter().any(|p| matches!(p, Effect::Terminate { .. })) {
                assert!(n >= 1, "effect {} terminated without a call", e.id);
            } else {
                continue;
            }
            let extra = n - 1;
            r.total += extra;
            if extra == 0 {
                continue;
            }
            let mut left = extra;
            for (reason, allowed) in [
                ("SDK retries of an unanswered or failed attempt", sdk_retries.get(&e.id).copied().unwrap_or(0)),
                ("executor retries after a failed attempt", retried.get(&e.id).copied().unwrap_or(0)),
                ("held by a worker that died or was paused", died.get(&e.id).copied().unwrap_or(0)),
                ("worker cut off from the database past its lease", cut_off.get(&e.id).copied().unwrap_or(0)),
            ] {
                let used = left.min(allowed);
                if used > 0 {
                    *r.by_reason.entry(reason).or_default() += used;
                }
                left -= used;
            }
            if left > 0 {
                r.unexplained.push((e.id, n, n - left));
            }
        }
        r
    }
}

impl std::fmt::Display for Repeats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} repeated TerminateInstances calls: {:?}", self.total, self.by_reason)?;
        for (id, calls, allowed) in &self.unexplained {
            write!(f, "; effect {id} called {calls} times where its deaths, cut-offs and retries explain {allowed}")?;
        }
        Ok(())
    }
}
