//! Copy one database into another, empty one (`spindown migrate`: a SQLite
//! file into PostgreSQL, to run several workers): instances with their
//! pending timers and applied eventIDs, every instance's history (chunk by
//! chunk, as written), the outbox as it is (ids, status, attempts, errors),
//! dead letters, stream checkpoints and gaps, the sweep log and the engine's
//! clocks; then both must count the same.

use serde::Serialize;

use super::{
    Changes, HistoryAppend, Indexed, InstanceFilter, InstanceWrite, NewDeadLetter, Page, Store, StoreError,
    StoredInstance, Tallies,
};

/// Rows per transaction (instances with their histories, outbox rows, dead letters).
const PAGE: usize = 1000;

/// What a copy copied.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Copied {
    pub meetings: u64,
    pub history_entries: u64,
    pub timers: i64,
    pub effects: u64,
    pub dead_letters: u64,
    pub checkpoints: u64,
    pub gaps: u64,
    pub sweep_log: u64,
}

/// Why a copy did not happen, or does not match.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{0} is not empty (it holds meetings, effects, dead letters or stream positions): a copy goes only into an empty database"
    )]
    NotEmpty(String),
    #[error("the copy does not match its source:\n  {0}")]
    Mismatch(String),
}

/// Nothing to overwrite: no instance, effect, dead letter, checkpoint or gap.
/// What a copy must ask the machine whose instances it copies: what the
/// store indexes of a row, and how many history entries a chunk holds.
#[derive(Clone, Copy)]
pub struct Decoder {
    pub index: fn(&StoredInstance) -> Result<Indexed, StoreError>,
    pub entries: fn(&[u8]) -> Result<usize, StoreError>,
}

pub async fn is_empty(store: &dyn Store) -> Result<bool, StoreError> {
    let c = store.tallies().await?;
    Ok(c.instances == 0
        && c.effects_by_status.iter().all(|(_, n)| *n == 0)
        && c.dead_letters == 0
        && store.checkpoints(None).await?.is_empty()
        && store.gaps().await?.is_empty())
}

/// What must match between the two databases afterwards.
fn essentials(c: &Tallies) -> impl PartialEq + std::fmt::Debug {
    (
        c.instances,
        c.by_state.clone(),
        c.by_reason.clone(),
        c.timers_pending,
        c.next_timer_due,
        c.effects_by_status.clone(),
        c.dead_letters_by_kind.clone(),
    )
}

/// Copy `from` into `to`, which must be empty; `progress` hears (instances
/// copied, instances in all) after each page.
///
/// # Errors
///
/// `to` is not empty, a store fails, or the two do not count the same afterwards.
pub async fn copy(
    from: &dyn Store,
    to: &dyn Store,
    decoder: Decoder,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Copied, CopyError> {
    if !is_empty(to).await? {
        return Err(CopyError::NotEmpty(to.describe()));
    }
    let mut copied = Copied::default();
    let total = from.tallies().await?.instances.max(0) as u64;

    // Instances and their stories, a page per transaction.
    let mut filter = InstanceFilter { limit: Some(PAGE), ..InstanceFilter::default() };
    loop {
        let page = from.instances(&filter).await?;
        let Some(last) = page.last() else { break };
        filter.after = Some(last.id.clone());
        let mut changes = Changes::default();
        for stored in page {
            // Each chunk as it is: its bytes are the machine's, copied, not re-encoded.
            for chunk in from.chunks(&stored.id).await? {
                let entries = (decoder.entries)(&chunk.bytes)?;
                copied.history_entries += entries as u64;
                changes.history.push(HistoryAppend { id: stored.id.clone(), bytes: chunk.bytes, entries });
            }
            let index = (decoder.index)(&stored)?;
            changes.instances.push(InstanceWrite { stored, index, loaded_version: None, search_changed: true });
        }
        copied.meetings += changes.instances.len() as u64;
        to.begin().await?.commit(changes).await?;
        progress(copied.meetings, total);
    }

    // The outbox as it is, a page at a time (newest first; the ids are kept).
    let mut before = None;
    loop {
        let rows = from.recent_outbox(&Default::default(), before, PAGE).await?;
        let Some(last) = rows.last() else { break };
        before = Some(last.id);
        copied.effects += rows.len() as u64;
        to.copy_outbox(&rows).await?;
    }
    let mut after = None;
    loop {
        let page = from.dead_letters(&Page { after, limit: PAGE }).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        copied.dead_letters += page.len() as u64;
        let dead_letters = page
            .into_iter()
            .map(|d| NewDeadLetter {
                at: d.at,
                origin: d.origin,
                kind: d.kind.into(),
                reason: d.reason,
                event_id: d.event_id,
                raw: d.raw,
            })
            .collect();
        to.begin().await?.commit(Changes { dead_letters, ..Changes::default() }).await?;
    }
    for c in from.checkpoints(None).await? {
        to.begin().await?.commit(Changes { checkpoint: Some(c), ..Changes::default() }).await?;
        copied.checkpoints += 1;
    }
    for g in from.gaps().await? {
        to.record_gap(&g).await?;
        copied.gaps += 1;
    }
    let mut findings = from.sweep_log(i64::MAX).await?;
    findings.reverse(); // oldest first, as they were written
    copied.sweep_log = findings.len() as u64;
    to.record_sweep(&findings).await?;
    let clocks = from.clocks().await?;
    to.begin().await?.commit(Changes { clocks, ..Changes::default() }).await?;

    // Both sides must now count the same.
    let (a, b) = (from.tallies().await?, to.tallies().await?);
    if essentials(&a) != essentials(&b) {
        return Err(CopyError::Mismatch(format!("{}: {a:?}\n  {}: {b:?}", from.describe(), to.describe())));
    }
    copied.timers = b.timers_pending;
    Ok(copied)
}
