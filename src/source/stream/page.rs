//! Reading one shard: its iterator, a page of records, the page applied
//! with the shard's checkpoint in one unit of work (each record decoded once
//! from the adapter's text), a shard read to its end, trimmed data, and the
//! stream's passing failures.

use std::time::Duration;

use super::{Position, ReaderError, RoundReport, StreamError, StreamReader};
use crate::engine::Incoming;
use crate::meeting::record::{decode_text, Item};
use crate::store::{Checkpoint, Gap};
use crate::time::Timestamp;

use super::Page;

impl StreamReader {
    pub(super) async fn read_shard(
        &mut self,
        shard_id: &str,
        round_start: Timestamp,
        report: &mut RoundReport,
    ) -> Result<(), ReaderError> {
        let arn = self.arn.clone();
        let iterator = match self.shards[shard_id].iterator.clone() {
            Some(it) => it,
            None => {
                let s = &self.shards[shard_id];
                let position = match (&s.sequence, &s.start) {
                    (Some(seq), _) => Position::After(seq.clone()),
                    (None, Some(p)) => p.clone(),
                    (None, None) => Position::TrimHorizon,
                };
                match self.source.iterator(&arn, shard_id, &position).await {
                    Ok(it) => it,
                    Err(StreamError::Trimmed(why)) => {
                        self.gap(shard_id, &format!("checkpoint {position:?} is older than the stream keeps ({why})"))
                            .await?;
                        report.trimmed += 1;
                        let s = self.shards.get_mut(shard_id).expect("known shard");
                        s.sequence = None;
                        s.start = Some(Position::TrimHorizon);
                        return Ok(());
                    }
                    Err(StreamError::NotFound(why)) => {
                        tracing::warn!(shard = shard_id, "shard no longer exists ({why}); treating it as read");
                        self.close(shard_id).await?;
                        return Ok(());
                    }
                    Err(e) => return self.transient(e, report).await,
                }
            }
        };
        match self.source.records(&iterator, self.options.page_limit).await {
            Ok(page) => {
                if !page.records.is_empty() {
                    crate::failpoint::hit("stream-after-fetch");
                }
                self.backoff = Duration::ZERO;
                report.pages += 1;
                self.apply_page(shard_id, page, round_start, report).await
            }
            Err(StreamError::ExpiredIterator) => {
                tracing::info!(shard = shard_id, "shard iterator expired; re-acquiring from the checkpoint");
                report.expired += 1;
                self.shards.get_mut(shard_id).expect("known shard").iterator = None;
                Ok(())
            }
            Err(StreamError::Trimmed(why)) => {
                self.gap(shard_id, &why).await?;
                report.trimmed += 1;
                let s = self.shards.get_mut(shard_id).expect("known shard");
                s.iterator = None;
                s.sequence = None;
                s.start = Some(Position::TrimHorizon);
                Ok(())
            }
            Err(e) => {
                self.shards.get_mut(shard_id).expect("known shard").iterator = None;
                self.transient(e, report).await
            }
        }
    }

    async fn apply_page(
        &mut self,
        shard_id: &str,
        page: Page,
        round_start: Timestamp,
        report: &mut RoundReport,
    ) -> Result<(), ReaderError> {
        let closed = page.next_iterator.is_none();
        let last_seq = page.records.last().map(|(_, seq)| seq.clone());
        let n = page.records.len() as u64;
        let mut last_event = None;
        let mut items = Vec::with_capacity(page.records.len());
        for (text, seq) in &page.records {
            let item = decode_text(text);
            if let Item::Record(d) = &item {
                last_event = d.change.event_time.or(last_event);
            }
            items.push(Incoming { item, origin: format!("{shard_id}/{seq}").into() });
        }
        let now = self.engine.clock().now();
        let lag = match (n, last_event) {
            (0, _) | (_, None) => 0.0,
            (_, Some(t)) => now.since(t).as_micros() as f64 / 1e6,
        };
        crate::telemetry::stream_lag(shard_id, lag);
        let s = self.shards.get_mut(shard_id).expect("known shard");
        s.iterator = page.next_iterator;
        // An empty page: everything written before this round began is read.
        let read = if n == 0 { Some(round_start) } else { last_event };
        s.progress = s.progress.max(read);
        // Idle shards still write their checkpoint every few seconds: the
        // other workers' stream gate reads how far this shard is read from it.
        let heartbeat_due = s.last_heartbeat.is_none_or(|t| t.elapsed() >= Duration::from_secs(2));
        let newly_caught_up = n == 0 && !s.caught_up;
        if n == 0 && !closed && !newly_caught_up && !heartbeat_due {
            return Ok(()); // an idle poll: nothing to record
        }
        s.caught_up = n == 0;
        s.last_heartbeat = Some(std::time::Instant::now());
        if let Some(seq) = &last_seq {
            s.sequence = Some(seq.clone());
        }
        if closed {
            s.closed = true;
            report.closed += 1;
            tracing::info!(shard = shard_id, "shard closed and fully read");
        }
        let checkpoint = Checkpoint {
            stream_arn: self.arn.clone(),
            shard_id: shard_id.to_string(),
            parent_shard_id: s.parent.clone(),
            sequence_number: last_seq,
            closed,
            records: n,
            last_event_at: last_event,
            caught_up: n == 0,
            at: self.engine.clock().now(),
            lease: None,
        };
        if self.commit(shard_id, items, checkpoint).await? {
            report.records += n;
            if closed {
                let store = self.engine.store().clone();
                self.leases.release(store.as_ref(), &self.arn, shard_id).await?;
                self.leases.poke(); // its children may be read now
            }
        }
        Ok(())
    }

    async fn close(&mut self, shard_id: &str) -> Result<(), ReaderError> {
        let s = self.shards.get_mut(shard_id).expect("known shard");
        s.closed = true;
        let checkpoint = Checkpoint {
            stream_arn: self.arn.clone(),
            shard_id: shard_id.to_string(),
            parent_shard_id: s.parent.clone(),
            sequence_number: None,
            closed: true,
            records: 0,
            last_event_at: None,
            caught_up: true,
            at: self.engine.clock().now(),
            lease: None,
        };
        if self.commit(shard_id, Vec::new(), checkpoint).await? {
            let store = self.engine.store().clone();
            self.leases.release(store.as_ref(), &self.arn, shard_id).await?;
            self.leases.poke();
        }
        Ok(())
    }

    /// Trimmed data: say it loudly, keep a record, go on from the oldest record.
    async fn gap(&mut self, shard_id: &str, detail: &str) -> Result<(), ReaderError> {
        tracing::error!(
            stream = %self.arn,
            shard = shard_id,
            "DATA LOSS: stream records were trimmed before spindown read them ({detail}); continuing from the oldest available record"
        );
        let gap = Gap {
            stream_arn: self.arn.clone(),
            shard_id: shard_id.to_string(),
            at: self.engine.clock().now(),
            detail: detail.to_string(),
        };
        self.engine.store().record_gap(&gap).await?;
        crate::telemetry::stream_gap();
        Ok(())
    }

    pub(super) async fn transient(&mut self, e: StreamError, report: &mut RoundReport) -> Result<(), ReaderError> {
        if let StreamError::Fatal(_) = e {
            return Err(ReaderError::Stream(self.arn.clone(), e));
        }
        if let StreamError::Throttled(_) = e {
            report.throttled += 1;
        }
        self.backoff = (self.backoff * 2).clamp(Duration::from_millis(200), self.options.max_backoff);
        tracing::warn!(error = %e, backoff = ?self.backoff, "stream call failed; backing off");
        Ok(())
    }
}
