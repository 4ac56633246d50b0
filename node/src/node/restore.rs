//! Restore: rebuilds a node's jobs, leases, proofs, failures and settlements from its state
//! database after a restart.

use starkscale_protocol::ids::JobId;
use starkscale_protocol::lease::Freshness;
use tracing::{info, warn};

use super::{now_ms, Node};

impl Node {
    /// Rebuilds jobs, leases, proofs and settlements from the state database after a restart.
    /// Every frame's signature is checked again; the protocol rules are those it passed when it
    /// was stored (so jobs past their deadline are restored too).
    pub(super) fn restore(&mut self) -> anyhow::Result<()> {
        use crate::db::FrameKind;
        use starkscale_protocol::messages::{JobAnnounced, JobSettled, ShardClaimed, ShardProved};
        use starkscale_protocol::SignedEnvelope;
        let now = now_ms();
        for (job_bytes, frames) in self.db.frames()? {
            let job = JobId(job_bytes);
            for (kind, id, frame) in frames {
                let restored = match kind {
                    FrameKind::Announce => {
                        SignedEnvelope::<JobAnnounced>::from_frame(&frame, &self.network)
                            .map_err(anyhow::Error::from)
                            .and_then(|env| {
                                self.add_job(env.into_message().manifest, frame)?;
                                Ok(())
                            })
                    }
                    FrameKind::Claim => {
                        SignedEnvelope::<ShardClaimed>::from_frame(&frame, &self.network)
                            .map_err(anyhow::Error::from)
                            .and_then(|env| {
                                let record = self
                                    .jobs
                                    .get_mut(&job)
                                    .ok_or_else(|| anyhow::anyhow!("claim without job"))?;
                                let claim = starkscale_protocol::lease::Claim::from(env.message());
                                record
                                    .leases
                                    .insert_claim(claim, now, Freshness::Replayed)?;
                                if let Some(local) = self.local.get_mut(&job) {
                                    local.claims.push(frame);
                                }
                                Ok(())
                            })
                    }
                    FrameKind::Proof => {
                        SignedEnvelope::<ShardProved>::from_frame(&frame, &self.network)
                            .map_err(anyhow::Error::from)
                            .and_then(|env| {
                                let msg = env.message();
                                let record = self
                                    .jobs
                                    .get_mut(&job)
                                    .ok_or_else(|| anyhow::anyhow!("proof without job"))?;
                                record.leases.record_proof(
                                    msg.shard,
                                    msg.worker,
                                    msg.proved_at_ms,
                                    now,
                                    Freshness::Replayed,
                                )?;
                                if let Some(local) = self.local.get_mut(&job) {
                                    local.proofs.insert(msg.shard, frame.clone());
                                }
                                Ok(())
                            })
                    }
                    FrameKind::Failed => {
                        use starkscale_protocol::messages::JobFailed;
                        SignedEnvelope::<JobFailed>::from_frame(&frame, &self.network)
                            .map_err(anyhow::Error::from)
                            .and_then(|env| {
                                let record = self
                                    .jobs
                                    .get_mut(&job)
                                    .ok_or_else(|| anyhow::anyhow!("failure without job"))?;
                                let local = self
                                    .local
                                    .get_mut(&job)
                                    .ok_or_else(|| anyhow::anyhow!("failure without job"))?;
                                // Stored with an empty id: the failure that made the job
                                // failed; with the reporter's key: one report of a quorum.
                                if id.is_empty() {
                                    record.outcome =
                                        Some(starkscale_protocol::status::Outcome::Failed {
                                            reason: env.into_message().reason,
                                        });
                                    local.failed = Some(frame);
                                } else {
                                    local.failure_reports.insert(env.signer(), frame);
                                }
                                Ok(())
                            })
                    }
                    FrameKind::Settled => {
                        SignedEnvelope::<JobSettled>::from_frame(&frame, &self.network)
                            .map_err(anyhow::Error::from)
                            .and_then(|env| {
                                let msg = env.into_message();
                                let record = self
                                    .jobs
                                    .get_mut(&job)
                                    .ok_or_else(|| anyhow::anyhow!("settlement without job"))?;
                                record.outcome =
                                    Some(starkscale_protocol::status::Outcome::Settled {
                                        result_hash: msg.result_hash,
                                        aggregator: msg.aggregator,
                                    });
                                if let Some(local) = self.local.get_mut(&job) {
                                    local.settled = Some((frame, msg.settlement.0));
                                }
                                Ok(())
                            })
                    }
                };
                if let Err(e) = restored {
                    warn!(%job, ?kind, error = %e, "stored frame not restored");
                }
            }
        }
        let open: Vec<JobId> = self
            .jobs
            .iter()
            .filter(|(_, r)| !r.status(now, &self.settle).is_terminal())
            .map(|(j, _)| *j)
            .collect();
        info!(jobs = self.jobs.len(), open = open.len(), "state restored");
        for job in open {
            self.fetch_x(job);
        }
        Ok(())
    }
}
