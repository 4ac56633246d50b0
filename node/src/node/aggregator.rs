//! Aggregator: advertises itself, and when elected for a job whose shards are all proved and
//! verified, assembles and signs the settlement and publishes it.

use starkscale_protocol::codec::{limits, Bytes};
use starkscale_protocol::election::{may_report_failure, may_settle};
use starkscale_protocol::matrix::IntMatrix;
use starkscale_protocol::messages::{
    result_hash, topics, AggregatorHeartbeat, Capabilities, FailureReason, JobSettled, Load,
    ShardProved,
};
use starkscale_protocol::SignedEnvelope;
use tracing::{info, warn};

use super::{now_ms, Node};
use crate::settlement::{Settlement, SETTLEMENT_FORMAT};

impl Node {
    pub(super) async fn send_heartbeat(&mut self) {
        let msg = AggregatorHeartbeat {
            aggregator: self.me,
            sent_at_ms: now_ms(),
            capabilities: Capabilities {
                aggregate: self.cfg.aggregate,
                prove: self.cfg.prove,
                max_concurrent_leases: self.cfg.capacity,
                config_ids: vec![starkscale_prover::CONFIG_ID],
            },
            load: Load {
                active_leases: (self.working.len() + self.pending_work.len()) as u32,
                pending_aggregations: 0,
            },
        };
        match SignedEnvelope::sign(&self.key, &self.network, msg)
            .map_err(|e| e.to_string())
            .and_then(|e| e.to_frame().map_err(|e| e.to_string()))
        {
            Ok(frame) => self.publish(topics::AGGREGATOR_HEARTBEAT, frame).await,
            Err(e) => warn!(error = %e, "could not sign heartbeat"),
        }
    }

    /// Settles every job for which this node is (now) the elected aggregator, and fails those
    /// whose data no peer can serve.
    pub(super) async fn try_settle(&mut self) {
        let now = now_ms();
        let mut ready = Vec::new();
        let mut unavailable = Vec::new();
        for (job, record) in &self.jobs {
            if record.outcome.is_none() {
                if let Some(local) = self.local.get(job) {
                    // Each of the first ranks reports for itself: one report is not final.
                    if local.x.is_none()
                        && !local.reported_failure
                        && local.x_failures >= super::DATA_GIVE_UP_ATTEMPTS
                        && now.saturating_sub(local.x_first_failure_ms) >= super::DATA_GIVE_UP_MS
                        && may_report_failure(job, &self.job_candidates(record), &self.me)
                    {
                        unavailable.push((*job, local.x_failures));
                    }
                }
            }
            if record.outcome.is_some() || !record.leases.all_proved() {
                continue;
            }
            let Some(local) = self.local.get(job) else {
                continue;
            };
            if local.settling
                || local.reported_failure
                || local.x.is_none()
                || local.proofs.len() != record.plan.shard_count() as usize
            {
                continue;
            }
            if self.elected(record, now) {
                ready.push(*job);
            }
        }
        for (job, attempts) in unavailable {
            if let Some(local) = self.local.get_mut(&job) {
                local.reported_failure = true;
            }
            warn!(%job, attempts, "no peer serves the job's data; reporting the job failed");
            let detail = format!(
                "X could not be fetched from the entry peer or any connected peer in {attempts} attempts over at least {} s",
                super::DATA_GIVE_UP_MS / 1000
            );
            self.fail_job(job, FailureReason::DataUnavailable { detail })
                .await;
        }
        for job in ready {
            match self.build_settlement(job) {
                Ok(frame) => {
                    if let Some(local) = self.local.get_mut(&job) {
                        local.settling = true;
                    }
                    info!(%job, "elected aggregator: publishing settlement");
                    self.publish(topics::JOB_SETTLED, frame).await;
                }
                Err(e) => {
                    warn!(%job, error = %e, "could not build the settlement; reporting the job failed");
                    if let Some(local) = self.local.get_mut(&job) {
                        local.reported_failure = true;
                    }
                    let detail = e.to_string().chars().take(900).collect();
                    self.fail_job(job, FailureReason::AggregationFailed { detail })
                        .await;
                }
            }
        }
    }

    /// Whether this node's turn to settle (or fail) the job has come.
    fn elected(&self, record: &starkscale_protocol::status::JobRecord, now: u64) -> bool {
        may_settle(
            &record.manifest.job,
            &self.job_candidates(record),
            &self.me,
            record.settle_deadline_ms(&self.settle),
            self.settle.step_ms,
            now,
        )
    }

    /// Publishes that a job failed (as its elected aggregator), so clients stop waiting.
    async fn fail_job(&mut self, job: starkscale_protocol::ids::JobId, reason: FailureReason) {
        let msg = starkscale_protocol::messages::JobFailed {
            job,
            reporter: self.me,
            failed_at_ms: now_ms(),
            reason,
        };
        match SignedEnvelope::sign(&self.key, &self.network, msg)
            .map_err(|e| e.to_string())
            .and_then(|e| e.to_frame().map_err(|e| e.to_string()))
        {
            Ok(frame) => self.publish(topics::JOB_FAILED, frame).await,
            Err(e) => warn!(error = %e, "could not sign a job failure"),
        }
    }

    fn build_settlement(&self, job: starkscale_protocol::ids::JobId) -> anyhow::Result<Vec<u8>> {
        let record = self
            .jobs
            .get(&job)
            .ok_or_else(|| anyhow::anyhow!("unknown job"))?;
        let local = self
            .local
            .get(&job)
            .ok_or_else(|| anyhow::anyhow!("unknown job"))?;
        let x = local
            .x
            .clone()
            .ok_or_else(|| anyhow::anyhow!("X not fetched"))?;
        let (m, _, n) = record.manifest.dims();
        let mut rows = Vec::with_capacity(m as usize * n as usize);
        let mut frames = Vec::new();
        let mut credits = Vec::new();
        for (shard, frame) in &local.proofs {
            let env = SignedEnvelope::<ShardProved>::from_frame(frame, &self.network)?;
            rows.extend_from_slice(env.message().output.data());
            credits.push(starkscale_protocol::messages::ShardCredit {
                shard: *shard,
                worker: env.message().worker,
            });
            frames.push(Bytes(frame.clone()));
        }
        let result = IntMatrix::new(m as usize, n as usize, rows)?;
        let settled_at_ms = now_ms();
        let settlement = Settlement {
            format: SETTLEMENT_FORMAT.into(),
            network: self.network,
            manifest: record.manifest.clone(),
            x,
            result: result.clone(),
            shard_proofs: frames,
            aggregator: self.me,
            settled_at_ms,
        };
        let bytes = settlement.sign(&self.key)?;
        if bytes.len() > limits::MAX_SETTLEMENT_BYTES {
            anyhow::bail!(
                "settlement of {} bytes exceeds the {}-byte limit (recursive aggregation is not built yet)",
                bytes.len(),
                limits::MAX_SETTLEMENT_BYTES
            );
        }
        let inline = result.len() <= limits::MAX_INLINE_RESULT_ENTRIES;
        let msg = JobSettled {
            job,
            aggregator: self.me,
            config_id: starkscale_prover::CONFIG_ID,
            settled_at_ms,
            result_hash: result_hash(&result),
            result: inline.then_some(result),
            credits,
            settlement: Bytes(bytes),
        };
        Ok(SignedEnvelope::sign(&self.key, &self.network, msg)?.to_frame()?)
    }
}
