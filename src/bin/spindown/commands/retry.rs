//! `spindown retry ID | --all-failed`: re-queue failed effects for the worker.

use anyhow::{bail, Result};
use spindown::inspect::MeetingStore;
use spindown::meeting::EffectFilter;
use spindown::store::Requeue;
use spindown::time::Timestamp;

use crate::cli::{Cli, RetryArgs};
use crate::{db, output};

pub async fn run(cli: &Cli, args: &RetryArgs) -> Result<()> {
    let store = db::open_existing(cli).await?;
    let which = args.effect_id.map_or(Requeue::All, Requeue::One);
    let n = store.requeue_failed(which, Timestamp::now()).await?;
    let said = match (args.effect_id, n) {
        (Some(id), 0) => {
            let known = store.effects(&EffectFilter { id: Some(id), ..EffectFilter::default() }).await?;
            match known.first() {
                Some(e) => bail!("effect #{id} is {}, not failed: nothing to retry", e.status),
                None => bail!("no effect #{id}"),
            }
        }
        (Some(id), _) => format!("effect #{id} re-queued\n"),
        (None, n) => format!("{n} failed effect(s) re-queued\n"),
    };
    db::poke(cli, store.as_ref()).await;
    output::print(&said)
}
