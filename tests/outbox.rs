//! The outbox executor on a real SQLite file: bounded concurrency, and
//! each outcome recorded the moment its call returns, so that what was done
//! before a crash (or a call that never returns) stays done.

mod common;

use spindown::inspect::MeetingStore;
use spindown::meeting::EffectFilter;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::records::{id, t};
use spindown::clock::ManualClock;
use spindown::meeting::{Effect, InstanceId, MeetingId, Reason};
use spindown::outbox::dry_run::DryRun;
use spindown::outbox::{BoxFuture, Ec2, EffectError, Executor, RetryPolicy, TerminateReport, CONCURRENCY};
use spindown::store::sqlite::{SqliteOptions, SqliteStore};
use spindown::store::{Changes, EffectStatus, NewEffect, Store};

/// An EC2 that terminates at once — except one meeting's instances, whose
/// call never returns — and counts how many calls are in flight.
#[derive(Default)]
struct Ec2Stuck {
    stuck: Option<MeetingId>,
    in_flight: AtomicUsize,
    most: AtomicUsize,
}

impl Ec2 for Ec2Stuck {
    fn terminate<'a>(
        &'a self,
        meeting: &'a MeetingId,
        instances: &'a [InstanceId],
    ) -> BoxFuture<'a, Result<TerminateReport, EffectError>> {
        Box::pin(async move {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            if self.stuck.as_ref() == Some(meeting) {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(TerminateReport { terminated: instances.to_vec(), ..Default::default() })
        })
    }
}

fn effect(n: usize) -> NewEffect {
    let meeting = format!("m-{n:03}");
    NewEffect {
        key: format!("{meeting}/end"),
        subject: meeting.to_string(),
        parts: spindown::meeting::stored::encode_parts(&[
            Effect::Terminate { instances: vec![InstanceId::parse(&format!("i-{n:08x}")).unwrap()] },
            Effect::WriteBack { reason: Reason::NoShowTimeout, terminated_at: t("10:00") },
        ]),
        count: 2,
        at: t("10:00"),
        completed: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effects_done_before_a_call_hangs_are_recorded_and_concurrency_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("outbox.db"), &SqliteOptions::default()).await.unwrap());
    let n = 100;
    store
        .begin()
        .await
        .unwrap()
        .commit(Changes { effects: (0..n).map(effect).collect(), ..Changes::default() })
        .await
        .unwrap();

    let ec2 = Arc::new(Ec2Stuck { stuck: Some(id("m-000")), ..Ec2Stuck::default() });
    let clock = Arc::new(ManualClock::new(t("10:00")));
    let executor = Executor::new(store.clone(), ec2.clone(), Arc::new(DryRun), clock, RetryPolicy::default());
    // The drain cannot finish (one call hangs); it is given up, as a crash would.
    let given_up = tokio::time::timeout(Duration::from_secs(2), executor.drain()).await;
    assert!(given_up.is_err(), "the stuck call keeps the drain from finishing");

    let rows = store.effects(&EffectFilter::default()).await.unwrap();
    let done: Vec<&str> =
        rows.iter().filter(|r| r.status == EffectStatus::Done).map(|r| r.meeting_id.as_str()).collect();
    assert_eq!(done.len(), n - 1, "every effect but the stuck one is recorded done: {rows:?}");
    assert!(!done.contains(&"m-000"));
    let stuck = rows.iter().find(|r| r.meeting_id.as_str() == "m-000").unwrap();
    assert_eq!((stuck.status, stuck.done), (EffectStatus::Pending, 0), "the stuck one runs again later");
    let most = ec2.most.load(Ordering::SeqCst);
    assert!(most <= CONCURRENCY, "{most} calls in flight at once (at most {CONCURRENCY})");
    assert!(most > 1, "calls do run concurrently");
}
