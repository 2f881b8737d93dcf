//! The loop's side of holes in the id sequence (`gaps` does the bookkeeping): cutting a batch
//! at a hole that may still fill, publishing rows that appeared in a skipped hole after all, and
//! the gap policy from the config and the database.

use std::time::{Duration, Instant};

use super::batch::MessageBuffer;
use super::error::Error;
use super::gaps::{GapPolicy, GapTracker, SkipReason};
use super::position::BEFORE_ANY_ID;
use super::telemetry::Telemetry;
use crate::config::{Config, KeyMode};
use crate::event::Event;
use crate::kafka::Producer;
use crate::message::MessageEncoder;
use crate::source::Source;
use crate::value::{Id, OpenTransactions};

/// The loop's holes: the tracker (`gaps`), and the table's name for what is logged.
pub(super) struct Holes {
    gaps: GapTracker,
    table: String,
}

/// What publishing late rows needs of the loop, lent for the call.
pub(super) struct Late<'a> {
    pub source: &'a mut Source,
    pub producer: &'a mut Producer,
    pub encoder: &'a mut MessageEncoder,
    pub telemetry: &'a mut Telemetry,
    pub topic: &'a str,
    pub key_mode: KeyMode,
    pub limit: usize,
}

impl Holes {
    pub fn new(policy: GapPolicy, table: &str) -> Holes {
        Holes {
            gaps: GapTracker::new(policy),
            table: table.to_owned(),
        }
    }

    /// Whether the open transactions must be looked at before the next fetch (`gaps`).
    pub fn needs_probe_before_fetch(&self) -> bool {
        self.gaps.needs_probe_before_fetch()
    }

    /// Cuts `rows` at the first hole in the id sequence that may still be filled (see
    /// `gaps`). Returns whether rows were held back.
    pub fn hold(
        &mut self,
        source: &mut Source,
        telemetry: &mut Telemetry,
        position: Id,
        batch: &mut MessageBuffer,
        before: Option<OpenTransactions>,
    ) -> Result<bool, Error> {
        let decision = self
            .gaps
            .decide(position, &batch.ids, Instant::now(), before, || {
                source.open_transactions()
            })
            .map_err(Error::Source)?;
        if let Some(reason) = &decision.no_proof {
            log::warn!(
                "cannot prove holes in the id sequence final: {reason}; until then rows above a \
                 hole are held for up to gap_timeout_sec"
            );
        }
        for s in &decision.skipped {
            if s.after == BEFORE_ANY_ID {
                // Not a hole between rows: a new job waited until nothing could still add rows
                // below its first one. Where no row can (SQLite), there was nothing to wait for,
                // and nothing to say.
                if self.gaps.final_at_once() {
                    continue;
                }
                log::info!(
                    "new job: starting at id {} after {:.1}s ({})",
                    s.before,
                    s.age.as_secs_f64(),
                    s.reason
                );
                continue;
            }
            log::warn!(
                hole_after = s.after,
                hole_before = s.before,
                age_ms = s.age.as_millis();
                "skipping hole in table {}: ids {}..{} (exclusive) never appeared after {:.1}s; {}",
                self.table,
                s.after,
                s.before,
                s.age.as_secs_f64(),
                s.reason
            );
            telemetry.emit(Event::GapSkipped {
                proven_final: matches!(s.reason, SkipReason::ProvenFinal),
            });
        }
        let oldest = decision
            .holding
            .map_or(Duration::ZERO, |(after, before, age)| {
                log::debug!(
                    "holding rows above hole {after}..{before} (open {:.1}s)",
                    age.as_secs_f64()
                );
                age
            });
        telemetry.emit(Event::GapHeld {
            rows: batch.ids.len().saturating_sub(decision.publish),
            oldest,
        });
        batch.truncate(decision.publish);
        Ok(decision.holding.is_some())
    }

    /// Looks into recently skipped holes for rows that appeared after all (a transaction that
    /// outlived gap_timeout). They are reported loudly, with their ids, and published late:
    /// data never disappears silently, even then. The position does not move.
    pub fn republish_late(&mut self, late: Late<'_>) -> Result<(), Error> {
        let Late {
            source,
            producer,
            encoder,
            telemetry,
            topic,
            key_mode,
            limit,
        } = late;
        if !self.gaps.enabled() {
            return Ok(());
        }
        let holes: Vec<(Id, Id)> = self
            .gaps
            .watched(Instant::now())
            .map(|s| (s.after, s.before))
            .collect();
        for (after, before) in holes {
            // Each hole is a read and maybe a send: a heartbeat between them.
            telemetry.emit(Event::Beat);
            let Some(reported) = self
                .gaps
                .watched(Instant::now())
                .find(|s| s.after == after && s.before == before)
                .map(|s| s.reported.clone())
            else {
                continue;
            };
            // The rows right above `after`, no more than the hole can hold: a late row, if any,
            // is among them. The cost is bounded by the hole's size, not by `limit`.
            let room = usize::try_from(before - after - 1)
                .unwrap_or(usize::MAX)
                .min(limit);
            // Usually nothing is late: no buffers sized for a batch.
            let batches = producer.batches(topic, 0);
            let mut late = MessageBuffer::new(batches.map_err(Error::Kafka)?, key_mode);
            source.fetch_each(after, room.max(1), |id, values| {
                if id < before && !reported.contains(&id) {
                    late.push(encoder, id, values)?;
                }
                Ok::<(), Error>(())
            })?;
            if late.ids.is_empty() {
                continue;
            }
            log::error!(
                "table {}: {} rows appeared in hole {after}..{before} after it was skipped (a \
                 transaction outlived gap_timeout_sec); publishing them late: ids {:?}",
                self.table,
                late.ids.len(),
                late.ids
            );
            telemetry.emit(Event::LateRowsFound(late.ids.len()));
            let (ids, batches) = late.finish()?;
            let pending = producer.start(batches);
            producer
                .finish(pending)
                .map_err(|e| Error::Kafka(e.error))?;
            telemetry.emit(Event::LateRowsPublished(ids.len()));
            if let Some(watched) = self
                .gaps
                .watched(Instant::now())
                .find(|s| s.after == after && s.before == before)
            {
                watched.reported.extend(ids);
            }
        }
        Ok(())
    }
}

/// The gap policy from the config and what the database says about its id sequence.
pub(super) fn gap_policy(config: &Config, source: &mut Source) -> Result<GapPolicy, Error> {
    let timeout = config.source.gap_timeout;
    if timeout.is_zero() {
        log::warn!("gap_timeout_sec is 0: rows committed out of id order may be missed");
        return Ok(GapPolicy {
            snapshot_delay: Duration::ZERO,
            timeout,
            step: 1,
            cached: false,
            final_at_once: false,
        });
    }
    let allocation = source.id_allocation().map_err(Error::Source)?;
    let step = config.source.id_step.unwrap_or(allocation.step);
    log::info!(
        "holding rows at id gaps for up to {:.1}s; id step {step} ({})",
        timeout.as_secs_f64(),
        if config.source.id_step.is_some() {
            "from id_step in the config"
        } else {
            &allocation.origin
        }
    );
    if allocation.cached {
        log::warn!(
            "{}: sessions cache ids, so a hole can be filled by any later transaction of the \
             session holding it; holes are released only after gap_timeout_sec",
            allocation.origin
        );
    }
    Ok(GapPolicy {
        snapshot_delay: allocation.snapshot_delay,
        timeout,
        step,
        cached: allocation.cached,
        final_at_once: allocation.final_at_once,
    })
}
