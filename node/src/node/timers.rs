//! What a node does on its clock: heartbeats, re-announcements of unfinished work, retries,
//! claims, settling, and the counters its handle shows.

use starkscale_protocol::messages::topics;
use tracing::warn;

use super::{
    now_ms, Node, AGGREGATOR_TTL_MS, HEARTBEAT_EVERY_MS, REANNOUNCE_EVERY_MS, RESEND_SETTLED_FOR_MS,
};

impl Node {
    pub(super) async fn on_tick(&mut self) {
        let now = now_ms();
        if self.cfg.aggregate && now.saturating_sub(self.last_heartbeat_ms) >= HEARTBEAT_EVERY_MS {
            self.last_heartbeat_ms = now;
            self.send_heartbeat().await;
        }
        if now.saturating_sub(self.last_reannounce_ms) >= REANNOUNCE_EVERY_MS {
            self.last_reannounce_ms = now;
            self.reannounce().await;
        }
        self.retry_x_fetches();
        self.expire_uploads(now);
        if self.cfg.prove {
            self.claim_open_shards().await;
            self.start_due_work();
        }
        if self.cfg.aggregate {
            self.try_settle().await;
        }
        // Candidates long silent are forgotten (a new heartbeat starts a new candidacy).
        self.aggregators
            .retain(|_, seen| now.saturating_sub(*seen) < 4 * AGGREGATOR_TTL_MS);
        let aggregators_map = &self.aggregators;
        self.aggregator_since
            .retain(|key, _| aggregators_map.contains_key(key));
        let aggregators = self.aggregator_keys().len();
        let settled = self
            .jobs
            .values()
            .filter(|r| {
                matches!(
                    r.outcome,
                    Some(starkscale_protocol::status::Outcome::Settled { .. })
                )
            })
            .count();
        self.metrics.jobs.set(self.jobs.len() as i64);
        self.metrics.jobs_settled.set(settled as i64);
        if let Ok(mut stats) = self.stats.lock() {
            stats.aggregators = aggregators;
            stats.jobs = self.jobs.len();
            stats.settled = settled;
        }
    }

    /// Re-sends this node's own frames for unfinished work: announcements of jobs it entered,
    /// its shard proofs, and recent settlements it made.
    pub(super) async fn reannounce(&mut self) {
        let now = now_ms();
        let mut frames = Vec::new();
        for (job, record) in &self.jobs {
            let Some(local) = self.local.get(job) else {
                continue;
            };
            match &record.outcome {
                None if !record.status(now, &self.settle).is_terminal() => {
                    if record.manifest.entry == self.me {
                        frames.push((topics::JOB_ANNOUNCED, local.announce.clone()));
                    }
                    for (shard, frame) in &local.proofs {
                        if record
                            .leases
                            .proof_of(*shard)
                            .is_some_and(|(w, _)| w == self.me)
                        {
                            frames.push((topics::SHARD_PROVED, frame.clone()));
                        }
                    }
                }
                Some(starkscale_protocol::status::Outcome::Settled { aggregator, .. })
                    if *aggregator == self.me =>
                {
                    if let Some((frame, _)) = &local.settled {
                        let recent = starkscale_protocol::SignedEnvelope::<
                            starkscale_protocol::messages::JobSettled,
                        >::from_frame(frame, &self.network)
                        .map(|e| {
                            now.saturating_sub(e.message().settled_at_ms) < RESEND_SETTLED_FOR_MS
                        })
                        .unwrap_or(false);
                        if recent {
                            frames.push((topics::JOB_SETTLED, frame.clone()));
                        }
                    }
                }
                _ => {}
            }
        }
        for (topic, frame) in frames {
            if let Err(e) = self.net.publish(topic, frame).await {
                warn!(error = %e, "re-announcement failed");
            }
        }
        // With open work, also pull state from one peer: recovers frames lost on a lossy link
        // that are too old to be re-sent as live gossip.
        let open = self
            .jobs
            .values()
            .any(|r| !r.status(now, &self.settle).is_terminal());
        if open {
            if let Ok(info) = self.net.info().await {
                if !info.connected.is_empty() {
                    let peer = info.connected[(now as usize / 1000) % info.connected.len()];
                    self.on_peer_connected(peer);
                }
            }
        }
    }
}
