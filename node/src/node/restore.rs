//! Restore: rebuilds a node's jobs, leases, proofs, failures and settlements from its state
//! database after a restart, through the same `apply_*` state changes live gossip uses.

use starkscale_protocol::ids::JobId;
use starkscale_protocol::lease::Claim;
use starkscale_protocol::messages::{
    JobAnnounced, JobFailed, JobSettled, ShardClaimed, ShardProved,
};
use starkscale_protocol::SignedEnvelope;
use tracing::{info, warn};

use super::gossip::{ClaimRecord, ProofRecord};
use super::{now_ms, Node};
use crate::db::FrameKind;

impl Node {
    /// Rebuilds jobs, leases, proofs and settlements from the state database after a restart.
    /// Every frame's signature is checked again; the protocol rules are those it passed when it
    /// was stored (so jobs past their deadline are restored too, and proofs this node verified
    /// and credited keep their credit whatever claims were stored beside them).
    pub(super) fn restore(&mut self) -> anyhow::Result<()> {
        self.restore_models()?;
        for (job_bytes, frames) in self.db.frames()? {
            let job = JobId(job_bytes);
            for (kind, id, frame) in frames {
                if let Err(e) = self.restore_frame(job, kind, &id, frame) {
                    warn!(%job, ?kind, error = %e, "stored frame not restored");
                }
            }
        }
        let now = now_ms();
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

    fn restore_frame(
        &mut self,
        job: JobId,
        kind: FrameKind,
        id: &[u8],
        frame: Vec<u8>,
    ) -> anyhow::Result<()> {
        let network = self.network;
        let created_ms = match self.jobs.get(&job) {
            Some(record) => record.manifest.created_ms,
            None if kind == FrameKind::Announce => 0,
            None => anyhow::bail!("a stored {kind:?} frame without its job"),
        };
        // A frame of an earlier round (a failed or expired job submitted again) whose write
        // landed after the new round dropped the old frames.
        let earlier_round = |at_ms: u64| {
            if at_ms < created_ms.saturating_sub(self.rules.max_skew_ms) {
                Err(anyhow::anyhow!(
                    "a stored {kind:?} frame from before the job's current round"
                ))
            } else {
                Ok(())
            }
        };
        match kind {
            FrameKind::Announce => {
                let env = SignedEnvelope::<JobAnnounced>::from_frame(&frame, &network)?;
                self.apply_announce(env.into_message().manifest, frame, false)?;
            }
            FrameKind::Claim => {
                let env = SignedEnvelope::<ShardClaimed>::from_frame(&frame, &network)?;
                let claim = Claim::from(env.message());
                // Stored under its hash, with a trailing 1 if it was learnt by catch-up.
                let live = id.len() == 32;
                let how = ClaimRecord::Restored { live };
                self.apply_claim(job, claim, frame, how, false)
                    .map_err(anyhow::Error::msg)?;
            }
            FrameKind::Proof => {
                let env = SignedEnvelope::<ShardProved>::from_frame(&frame, &network)?;
                let msg = env.message();
                let (shard, worker, at) = (msg.shard, msg.worker, msg.proved_at_ms);
                earlier_round(at)?;
                self.apply_proof(job, shard, worker, at, frame, ProofRecord::Restored, false)
                    .map_err(anyhow::Error::msg)?;
            }
            FrameKind::Failed => {
                let env = SignedEnvelope::<JobFailed>::from_frame(&frame, &network)?;
                earlier_round(env.message().failed_at_ms)?;
                // Stored with an empty id: the report that made the job failed; with the
                // reporter's key: one report of a quorum.
                if id.is_empty() {
                    self.apply_failed(job, env.into_message().reason, frame, false);
                } else {
                    self.apply_failure_report(job, env.signer(), frame, false);
                }
            }
            FrameKind::Settled => {
                let env = SignedEnvelope::<JobSettled>::from_frame(&frame, &network)?;
                self.apply_settlement(env.message(), frame, Vec::new(), false);
            }
        }
        Ok(())
    }
}
