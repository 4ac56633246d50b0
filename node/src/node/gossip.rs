//! Gossip handlers: every frame goes decode → signature → protocol rules → proof check, and
//! ends in Accept, Ignore or Reject before anything is forwarded or acted on.

use starkscale_protocol::election::failure_is_final;
use starkscale_protocol::lease::Claim;
use starkscale_protocol::messages::{
    topics, AggregatorHeartbeat, JobFailed, JobSettled, ShardProved,
};
use starkscale_protocol::status::Outcome;
use starkscale_protocol::validate::{
    self, AcceptedGossip, NeedsProofCheck, ProofCheckError, SettledShard, Verdict as PVerdict,
};
use starkscale_protocol::SignedEnvelope;
use tracing::{debug, info, warn};

use super::{now_ms, Internal, Node, Origin};
use crate::db::FrameKind;
use crate::network::Verdict;
use crate::settlement::SettlementError;

impl Node {
    /// A gossip message on `topic`.
    pub(super) async fn on_gossip(&mut self, topic: &str, data: Vec<u8>, origin: Origin) {
        if !topics::ALL.contains(&topic) {
            self.report(&origin, Verdict::Reject, "unknown topic").await;
            return;
        }
        match starkscale_protocol::codec::decode_header(&data) {
            Ok((kind, _)) if topics::for_kind(kind) == Some(topic) => {}
            Ok(_) => {
                self.report(
                    &origin,
                    Verdict::Reject,
                    "message kind does not match its topic",
                )
                .await;
                return;
            }
            Err(_) => {}
        }
        self.on_gossip_frame(data, origin).await;
    }

    /// Validates any gossip frame (live, replayed or our own) and applies it.
    pub(super) async fn on_gossip_frame(&mut self, frame: Vec<u8>, origin: Origin) {
        let aggregators = self.aggregator_candidates();
        let verdict = validate::validate_any(&frame, &self.ctx(origin.freshness(), &aggregators));
        match verdict {
            PVerdict::Accept(accepted) => self.on_accepted(frame, origin, accepted).await,
            PVerdict::Ignore(reason) => {
                debug!(%reason, "ignored gossip");
                self.report(&origin, Verdict::Ignore, &reason.to_string())
                    .await;
            }
            PVerdict::Reject(reason) => {
                self.report(&origin, Verdict::Reject, &reason.to_string())
                    .await;
            }
        }
    }

    async fn on_accepted(&mut self, frame: Vec<u8>, origin: Origin, accepted: AcceptedGossip) {
        match accepted {
            AcceptedGossip::JobAnnounced(env) => {
                let manifest = env.into_message().manifest;
                let job = manifest.job;
                match self.add_job(manifest, frame.clone()) {
                    Ok(shards) => {
                        info!(%job, shards, "job announced");
                        self.persist(&job, FrameKind::Announce, &[], &frame);
                        self.report(&origin, Verdict::Accept, "").await;
                        self.fetch_x(job);
                    }
                    Err(e) => self.report(&origin, Verdict::Reject, &e.to_string()).await,
                }
            }
            AcceptedGossip::ShardClaimed(env) => {
                let claim = Claim::from(env.message());
                let job = env.job();
                let Some(record) = self.jobs.get_mut(&job) else {
                    return;
                };
                match record
                    .leases
                    .insert_claim(claim, now_ms(), origin.freshness())
                {
                    Ok(_) => {
                        self.persist(
                            &job,
                            FrameKind::Claim,
                            blake3::hash(&frame).as_bytes(),
                            &frame,
                        );
                        if let Some(local) = self.local.get_mut(&job) {
                            local.claims.push(frame);
                        }
                        self.report(&origin, Verdict::Accept, "").await;
                    }
                    Err(e) => self.report(&origin, Verdict::Ignore, &e.to_string()).await,
                }
            }
            AcceptedGossip::ShardProved(check) => self.check_proof(frame, origin, check).await,
            AcceptedGossip::AggregatorHeartbeat(env) => {
                let AggregatorHeartbeat {
                    aggregator,
                    capabilities,
                    ..
                } = env.into_message();
                if capabilities.aggregate
                    && capabilities
                        .config_ids
                        .contains(&starkscale_prover::CONFIG_ID)
                {
                    self.heard_aggregator(aggregator);
                }
                self.report(&origin, Verdict::Accept, "").await;
            }
            AcceptedGossip::JobSettled(check) => self.check_settlement(frame, origin, check).await,
            AcceptedGossip::JobFailed(env) => {
                self.apply_failure(env, frame);
                self.report(&origin, Verdict::Accept, "").await;
            }
        }
    }

    /// Queues a shard proof for verification (fetching X first if needed).
    async fn check_proof(
        &mut self,
        frame: Vec<u8>,
        origin: Origin,
        check: NeedsProofCheck<ShardProved>,
    ) {
        let msg = check.message();
        let (job, shard) = (msg.job, msg.shard);
        let Some(local) = self.local.get_mut(&job) else {
            self.report(&origin, Verdict::Ignore, "unknown job").await;
            return;
        };
        let frame_hash = *blake3::hash(&frame).as_bytes();
        if local.proofs.contains_key(&shard) {
            self.report(&origin, Verdict::Ignore, "shard already proved")
                .await;
            return;
        }
        if !local.checking.insert(frame_hash) {
            self.report(
                &origin,
                Verdict::Ignore,
                "this proof is being checked already",
            )
            .await;
            return;
        }
        let Some(x) = local.x.clone() else {
            local.checking.remove(&frame_hash);
            let max = starkscale_protocol::catchup::CatchUpBudget::default().max_waiting_per_job;
            if local.waiting_for_x.len() >= max {
                self.report(
                    &origin,
                    Verdict::Ignore,
                    "too many proofs wait for this job's data",
                )
                .await;
                return;
            }
            local.waiting_for_x.push((frame, origin));
            self.fetch_x(job);
            return;
        };
        let Some(record) = self.jobs.get(&job) else {
            return;
        };
        let manifest = record.manifest.clone();
        let tx = self.internal.clone();
        let msg = msg.clone();
        self.spawn_check(move || {
            let started = std::time::Instant::now();
            let result = crate::settlement::check_shard_proof(&manifest, &x, &msg);
            let _ = tx.blocking_send(Internal::ProofChecked {
                frame,
                origin,
                result,
                elapsed: started.elapsed(),
            });
        });
    }

    fn done_checking(&mut self, frame: &[u8]) {
        let hash = *blake3::hash(frame).as_bytes();
        for local in self.local.values_mut() {
            local.checking.remove(&hash);
        }
    }

    pub(super) async fn on_proof_checked(
        &mut self,
        frame: Vec<u8>,
        origin: Origin,
        result: Result<(), ProofCheckError>,
        elapsed: std::time::Duration,
    ) {
        self.done_checking(&frame);
        crate::metrics::Metrics::observe(&self.metrics.verify_seconds, elapsed);
        let aggregators = self.aggregator_candidates();
        // Re-run the rules: state may have moved while the proof was being checked.
        let verdict =
            validate::validate_shard_proved(&frame, &self.ctx(origin.freshness(), &aggregators));
        let check = match verdict {
            PVerdict::Accept(check) => check,
            other => {
                let why = other.reason().map(|r| r.to_string()).unwrap_or_default();
                self.report(&origin, Verdict::Ignore, &why).await;
                return;
            }
        };
        let env = match check.finish(result) {
            PVerdict::Accept(env) => env,
            PVerdict::Ignore(reason) => {
                warn!(%reason, "a shard proof could not be checked here");
                self.report(&origin, Verdict::Ignore, &reason.to_string())
                    .await;
                return;
            }
            other => {
                let why = other.reason().map(|r| r.to_string()).unwrap_or_default();
                self.metrics.proofs_rejected.inc();
                if let Ok(mut stats) = self.stats.lock() {
                    stats.proofs_refused += 1;
                }
                self.report(&origin, Verdict::Reject, &why).await;
                return;
            }
        };
        let msg = env.message();
        let (job, shard) = (msg.job, msg.shard);
        let Some(record) = self.jobs.get_mut(&job) else {
            return;
        };
        match record.leases.record_proof(
            shard,
            msg.worker,
            msg.proved_at_ms,
            now_ms(),
            origin.freshness(),
        ) {
            Ok(()) => {
                info!(%job, shard, worker = %msg.worker, "shard proof verified");
                self.metrics.proofs_verified.inc();
                self.persist(&job, FrameKind::Proof, &shard.to_be_bytes(), &frame);
                if let Some(local) = self.local.get_mut(&job) {
                    local.proofs.insert(shard, frame);
                }
                self.report(&origin, Verdict::Accept, "").await;
            }
            Err(e) => self.report(&origin, Verdict::Ignore, &e.to_string()).await,
        }
    }

    /// Checks a settlement's proofs against this node's view of the job.
    async fn check_settlement(
        &mut self,
        frame: Vec<u8>,
        origin: Origin,
        check: NeedsProofCheck<JobSettled>,
    ) {
        let msg = check.message().clone();
        let Some(record) = self.jobs.get(&msg.job) else {
            self.report(&origin, Verdict::Ignore, "unknown job").await;
            return;
        };
        if record.outcome.is_some() {
            self.report(&origin, Verdict::Ignore, "job already settled")
                .await;
            return;
        }
        let manifest = record.manifest.clone();
        // The same settlement arriving again (live and by catch-up) while it is being checked
        // is not checked twice.
        let frame_hash = *blake3::hash(&frame).as_bytes();
        if !self
            .local
            .get_mut(&msg.job)
            .is_some_and(|l| l.checking.insert(frame_hash))
        {
            self.report(
                &origin,
                Verdict::Ignore,
                "this settlement is being checked already",
            )
            .await;
            return;
        }
        let known: std::collections::HashSet<[u8; 32]> = self
            .local
            .get(&msg.job)
            .map(|l| {
                l.proofs
                    .values()
                    .map(|f| *blake3::hash(f).as_bytes())
                    .collect()
            })
            .unwrap_or_default();
        let tx = self.internal.clone();
        let network = self.network;
        self.spawn_check(move || {
            let result = (|| -> Result<Vec<(SettledShard, Vec<u8>)>, ProofCheckError> {
                let verified = crate::settlement::verify_settlement_skipping(
                    &msg.settlement.0,
                    &network,
                    &known,
                )
                .map_err(|e| match e {
                    SettlementError::Local(_) => ProofCheckError::Local(e.to_string()),
                    e => ProofCheckError::Invalid(e.to_string()),
                })?;
                let wrong = |why: &str| Err(ProofCheckError::Invalid(why.into()));
                if verified.settlement.manifest != manifest {
                    return wrong("settlement is for another manifest");
                }
                if verified.aggregator != msg.aggregator {
                    return wrong("settlement signed by another aggregator than the message");
                }
                if starkscale_protocol::messages::result_hash(&verified.result) != msg.result_hash {
                    return wrong("result hash does not match the settled result");
                }
                if verified.credits != msg.credits {
                    return wrong("credits do not match the settled proofs");
                }
                // The proofs are in credit order (checked by the verification above).
                verified
                    .settlement
                    .shard_proofs
                    .into_iter()
                    .map(|frame| {
                        let env = SignedEnvelope::<ShardProved>::from_frame(&frame.0, &network)
                            .map_err(|e| ProofCheckError::Invalid(e.to_string()))?;
                        let msg = env.message();
                        let shard = SettledShard {
                            shard: msg.shard,
                            worker: msg.worker,
                            proved_at_ms: msg.proved_at_ms,
                        };
                        Ok((shard, frame.0))
                    })
                    .collect()
            })();
            let _ = tx.blocking_send(Internal::SettlementChecked {
                frame,
                origin,
                result,
            });
        });
    }

    pub(super) async fn on_settlement_checked(
        &mut self,
        frame: Vec<u8>,
        origin: Origin,
        result: Result<Vec<(SettledShard, Vec<u8>)>, ProofCheckError>,
    ) {
        self.done_checking(&frame);
        let proofs = match result {
            Ok(proofs) => proofs,
            Err(ProofCheckError::Local(why)) => {
                warn!(reason = %why, "a settlement could not be checked here");
                self.report(&origin, Verdict::Ignore, &why).await;
                return;
            }
            Err(why) => {
                self.report(&origin, Verdict::Reject, &why.to_string())
                    .await;
                return;
            }
        };
        let Ok(env) = SignedEnvelope::<JobSettled>::from_frame(&frame, &self.network) else {
            return;
        };
        let msg = env.into_message();
        let Some(record) = self.jobs.get_mut(&msg.job) else {
            return;
        };
        if record.outcome.is_some() {
            self.report(&origin, Verdict::Ignore, "job already settled")
                .await;
            return;
        }
        // Credits against this node's own record of the job, now (state may have moved while
        // the proofs were being checked).
        let shards: Vec<SettledShard> = proofs.iter().map(|(s, _)| *s).collect();
        if let PVerdict::Ignore(reason) | PVerdict::Reject(reason) =
            validate::check_settled_credits(record, &shards, now_ms())
        {
            warn!(job = %msg.job, aggregator = %msg.aggregator, %reason, "settlement credits refused");
            self.report(&origin, Verdict::Ignore, &reason.to_string())
                .await;
            return;
        }
        record.outcome = Some(Outcome::Settled {
            result_hash: msg.result_hash,
            aggregator: msg.aggregator,
        });
        info!(job = %msg.job, aggregator = %msg.aggregator, "job settled");
        self.persist(&msg.job, FrameKind::Settled, &[], &frame);
        // The settlement carries every shard proof, all verified: keep any this node missed
        // (a catch-up after settlement sends the settlement, not the proofs).
        for (SettledShard { shard, .. }, proof) in proofs {
            let known = self
                .local
                .get(&msg.job)
                .is_none_or(|l| l.proofs.contains_key(&shard));
            if !known {
                self.persist(&msg.job, FrameKind::Proof, &shard.to_be_bytes(), &proof);
                if let Some(local) = self.local.get_mut(&msg.job) {
                    local.proofs.insert(shard, proof);
                }
            }
        }
        if let Some(local) = self.local.get_mut(&msg.job) {
            local.settled = Some((frame, msg.settlement.0));
            local.settling = false;
        }
        self.report(&origin, Verdict::Accept, "").await;
    }
}

impl Node {
    /// Applies an accepted failure report. The entry peer's failure is final; an aggregator's
    /// is one report, and the job fails once the first ranks' reports reach the quorum
    /// (`election::failure_is_final`): a failure carries no proof, so no single key can make
    /// it final.
    fn apply_failure(&mut self, env: SignedEnvelope<JobFailed>, frame: Vec<u8>) {
        let signer = env.signer();
        let msg = env.into_message();
        let Some(record) = self.jobs.get(&msg.job) else {
            return;
        };
        if record.outcome.is_some() {
            return;
        }
        let candidates = self.job_candidates(record);
        let (job, entry) = (msg.job, record.manifest.entry);
        let new_report = signer != entry
            && self
                .local
                .get_mut(&job)
                .is_some_and(|l| l.failure_reports.insert(signer, frame.clone()).is_none());
        if new_report {
            self.persist(&job, FrameKind::Failed, signer.as_bytes(), &frame);
        }
        let final_failure = signer == entry
            || self.local.get(&job).is_some_and(|l| {
                let reporters = l.failure_reports.keys().copied().collect();
                failure_is_final(&job, &candidates, &reporters)
            });
        info!(job = %msg.job, reporter = %signer, final_failure, reason = %msg.reason, "failure reported");
        if !final_failure {
            return;
        }
        warn!(job = %msg.job, reason = %msg.reason, "job failed");
        if let Some(local) = self.local.get_mut(&job) {
            local.failed = Some(frame.clone());
        }
        if let Some(record) = self.jobs.get_mut(&msg.job) {
            record.outcome = Some(Outcome::Failed { reason: msg.reason });
        }
        self.persist(&msg.job, FrameKind::Failed, &[], &frame);
    }
}
