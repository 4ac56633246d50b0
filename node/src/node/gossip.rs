//! Gossip handlers: every frame goes decode → signature → protocol rules → proof check, and
//! ends in Accept, Ignore or Reject before anything is forwarded or acted on.
//!
//! Each handler returns what it decided ([`Handled`]) to one place, [`Node::conclude`], which
//! reports the verdict; a frame handed to a proof check is [`Handled::Pending`] and gets its
//! verdict when the check's result comes back. The state change each kind of frame makes is
//! one `apply_*` function, used by live gossip and by the restore from the database alike.

use starkscale_protocol::election::failure_is_final;
use starkscale_protocol::ids::{JobId, PeerKey};
use starkscale_protocol::lease::{Claim, Freshness};
use starkscale_protocol::manifest::Manifest;
use starkscale_protocol::messages::{
    topics, AggregatorHeartbeat, FailureReason, JobSettled, ShardProved,
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

/// What a handler decided about a frame.
pub(super) enum Handled {
    /// The verdict, with why (empty when accepted).
    Done(Verdict, String),
    /// Handed to a proof check (or queued until the job's X arrives): the check's result
    /// gives the verdict.
    Pending,
}

impl Handled {
    fn accept() -> Self {
        Self::Done(Verdict::Accept, String::new())
    }

    fn ignore(why: impl ToString) -> Self {
        Self::Done(Verdict::Ignore, why.to_string())
    }

    fn reject(why: impl ToString) -> Self {
        Self::Done(Verdict::Reject, why.to_string())
    }
}

/// How a claim is recorded.
#[derive(Clone, Copy)]
pub(super) enum ClaimRecord {
    /// Judged now (live gossip or catch-up).
    Gossip(Freshness),
    /// Restored from this node's database, with whether it was first seen live.
    Restored {
        /// Seen as live gossip (not only by catch-up).
        live: bool,
    },
}

/// How a shard proof is recorded.
#[derive(Clone, Copy)]
pub(super) enum ProofRecord {
    /// Checked now against the lease rules (a verified gossip or catch-up proof).
    Checked(Freshness),
    /// Restored from this node's database: it was verified and credited when stored.
    Restored,
}

impl Node {
    /// A gossip message on `topic`.
    pub(super) async fn on_gossip(&mut self, topic: &str, data: Vec<u8>, origin: Origin) {
        let handled = if !topics::ALL.contains(&topic) {
            Handled::reject("unknown topic")
        } else {
            match starkscale_protocol::codec::decode_header(&data) {
                Ok((kind, _)) if topics::for_kind(kind) != Some(topic) => {
                    Handled::reject("message kind does not match its topic")
                }
                _ => self.handle_frame(data, origin.clone()),
            }
        };
        self.conclude(&origin, handled).await;
    }

    /// Validates any gossip frame (live, replayed or our own), applies it and reports the
    /// verdict.
    pub(super) async fn on_gossip_frame(&mut self, frame: Vec<u8>, origin: Origin) {
        let handled = self.handle_frame(frame, origin.clone());
        self.conclude(&origin, handled).await;
    }

    /// The one place a handler's decision is reported.
    async fn conclude(&mut self, origin: &Origin, handled: Handled) {
        if let Handled::Done(verdict, why) = handled {
            if verdict == Verdict::Ignore {
                debug!(reason = %why, "ignored gossip");
            }
            self.report(origin, verdict, &why).await;
        }
    }

    fn handle_frame(&mut self, frame: Vec<u8>, origin: Origin) -> Handled {
        let aggregators = self.aggregator_candidates();
        let verdict = validate::validate_any(&frame, &self.ctx(origin.freshness(), &aggregators));
        match verdict {
            PVerdict::Accept(accepted) => self.on_accepted(frame, origin, accepted),
            PVerdict::Ignore(reason) => Handled::ignore(reason),
            PVerdict::Reject(reason) => Handled::reject(reason),
        }
    }

    fn on_accepted(&mut self, frame: Vec<u8>, origin: Origin, accepted: AcceptedGossip) -> Handled {
        match accepted {
            AcceptedGossip::JobAnnounced(env) => {
                let manifest = env.into_message().manifest;
                let job = manifest.job;
                match self.apply_announce(manifest, frame, true) {
                    Ok(shards) => {
                        info!(%job, shards, "job announced");
                        self.fetch_x(job);
                        Handled::accept()
                    }
                    Err(e) => Handled::reject(e),
                }
            }
            AcceptedGossip::ShardClaimed(env) => {
                let claim = Claim::from(env.message());
                let how = ClaimRecord::Gossip(origin.freshness());
                match self.apply_claim(env.job(), claim, frame, how, true) {
                    Ok(()) => Handled::accept(),
                    Err(why) => Handled::ignore(why),
                }
            }
            AcceptedGossip::ShardProved(check) => self.check_proof(frame, origin, check),
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
                Handled::accept()
            }
            AcceptedGossip::JobSettled(check) => self.check_settlement(frame, origin, check),
            AcceptedGossip::JobFailed(env) => {
                self.on_failure_report(env.signer(), env.into_message(), frame);
                Handled::accept()
            }
        }
    }

    /// Queues a shard proof for verification (fetching X first if needed).
    fn check_proof(
        &mut self,
        frame: Vec<u8>,
        origin: Origin,
        check: NeedsProofCheck<ShardProved>,
    ) -> Handled {
        let msg = check.message();
        let (job, shard) = (msg.job, msg.shard);
        let Some(local) = self.local.get_mut(&job) else {
            return Handled::ignore("unknown job");
        };
        let frame_hash = *blake3::hash(&frame).as_bytes();
        if local.proofs.contains_key(&shard) {
            return Handled::ignore("shard already proved");
        }
        if local.checking.contains(&frame_hash) {
            return Handled::ignore("this proof is being checked already");
        }
        let Some(x) = local.x.clone() else {
            if local
                .waiting_for_x
                .iter()
                .any(|(f, _)| *blake3::hash(f).as_bytes() == frame_hash)
            {
                return Handled::ignore("this proof already waits for the job's data");
            }
            let max = starkscale_protocol::catchup::CatchUpBudget::default().max_waiting_per_job;
            if local.waiting_for_x.len() >= max {
                return Handled::ignore("too many proofs wait for this job's data");
            }
            local.waiting_for_x.push((frame, origin));
            self.fetch_x(job);
            return Handled::Pending;
        };
        let Some(record) = self.jobs.get(&job) else {
            return Handled::ignore("unknown job");
        };
        let manifest = record.manifest.clone();
        let tx = self.internal.clone();
        let msg = msg.clone();
        let queued = self.spawn_check(move || {
            let started = std::time::Instant::now();
            let result = crate::settlement::check_shard_proof(&manifest, &x, &msg);
            let _ = tx.blocking_send(Internal::ProofChecked {
                frame,
                origin,
                result,
                elapsed: started.elapsed(),
            });
        });
        if !queued {
            return Handled::ignore("too many proof checks are queued here");
        }
        if let Some(local) = self.local.get_mut(&job) {
            local.checking.insert(frame_hash);
        }
        Handled::Pending
    }

    fn done_checking(&mut self, frame: &[u8]) {
        let hash = *blake3::hash(frame).as_bytes();
        for local in self.local.values_mut() {
            local.checking.remove(&hash);
        }
    }

    /// A shard proof's check came back: its verdict.
    pub(super) async fn on_proof_checked(
        &mut self,
        frame: Vec<u8>,
        origin: Origin,
        result: Result<(), ProofCheckError>,
        elapsed: std::time::Duration,
    ) {
        self.done_checking(&frame);
        crate::metrics::Metrics::observe(&self.metrics.verify_seconds, elapsed);
        let handled = self.after_proof_check(frame, &origin, result);
        self.conclude(&origin, handled).await;
    }

    fn after_proof_check(
        &mut self,
        frame: Vec<u8>,
        origin: &Origin,
        result: Result<(), ProofCheckError>,
    ) -> Handled {
        let aggregators = self.aggregator_candidates();
        // Re-run the rules: state may have moved while the proof was being checked.
        let verdict =
            validate::validate_shard_proved(&frame, &self.ctx(origin.freshness(), &aggregators));
        let check = match verdict {
            PVerdict::Accept(check) => check,
            other => {
                return Handled::ignore(other.reason().map(|r| r.to_string()).unwrap_or_default())
            }
        };
        let env = match check.finish(result) {
            PVerdict::Accept(env) => env,
            PVerdict::Ignore(reason) => {
                warn!(%reason, "a shard proof could not be checked here");
                return Handled::ignore(reason);
            }
            PVerdict::Reject(reason) => {
                self.metrics.proofs_rejected.inc();
                if let Ok(mut stats) = self.stats.lock() {
                    stats.proofs_refused += 1;
                }
                return Handled::reject(reason);
            }
        };
        let msg = env.message();
        let record = ProofRecord::Checked(origin.freshness());
        match self.apply_proof(
            msg.job,
            msg.shard,
            msg.worker,
            msg.proved_at_ms,
            frame,
            record,
            true,
        ) {
            Ok(()) => {
                info!(job = %msg.job, shard = msg.shard, worker = %msg.worker, "shard proof verified");
                self.metrics.proofs_verified.inc();
                Handled::accept()
            }
            Err(why) => Handled::ignore(why),
        }
    }

    /// Checks a settlement's proofs against this node's view of the job.
    fn check_settlement(
        &mut self,
        frame: Vec<u8>,
        origin: Origin,
        check: NeedsProofCheck<JobSettled>,
    ) -> Handled {
        let msg = check.message().clone();
        let Some(record) = self.jobs.get(&msg.job) else {
            return Handled::ignore("unknown job");
        };
        if record.outcome.is_some() {
            return Handled::ignore("job already settled");
        }
        let manifest = record.manifest.clone();
        // The same settlement arriving again (live and by catch-up) while it is being checked
        // is not checked twice.
        let frame_hash = *blake3::hash(&frame).as_bytes();
        let Some(local) = self.local.get(&msg.job) else {
            return Handled::ignore("unknown job");
        };
        if local.checking.contains(&frame_hash) {
            return Handled::ignore("this settlement is being checked already");
        }
        let known: std::collections::HashSet<[u8; 32]> = local
            .proofs
            .values()
            .map(|f| *blake3::hash(f).as_bytes())
            .collect();
        let (tx, network, job) = (self.internal.clone(), self.network, msg.job);
        // The credit and election rules are run first, on a snapshot of this node's record:
        // a settlement they refuse costs its decoding and signatures, no proof check.
        let snapshot = record.clone();
        let (candidates, started_ms) = (self.aggregator_candidates(), self.started_ms);
        let (rules, settle, limits) = (self.rules, self.settle, self.limits);
        let freshness = origin.freshness();
        let queued = self.spawn_check(move || {
            let result = (|| -> Result<Vec<(SettledShard, Vec<u8>)>, ProofCheckError> {
                let shards: Vec<SettledShard> =
                    crate::settlement::settled_shards(&msg.settlement.0, &network)
                        .map_err(|e| ProofCheckError::Invalid(e.to_string()))?
                        .into_iter()
                        .map(|(shard, worker, proved_at_ms)| SettledShard {
                            shard,
                            worker,
                            proved_at_ms,
                        })
                        .collect();
                let no_jobs = std::collections::BTreeMap::new();
                let ctx = validate::GossipContext {
                    network,
                    now_ms: now_ms(),
                    freshness,
                    limits,
                    max_skew_ms: rules.max_skew_ms,
                    settle,
                    jobs: &no_jobs,
                    aggregators: &candidates,
                    started_ms,
                };
                if let Some(reason) = settlement_rules(&snapshot, &msg, &shards, &ctx) {
                    return Err(ProofCheckError::Local(reason.to_string()));
                }
                // Manifest, aggregator, time, result and credits are compared with this
                // node's record and the message before any proof is checked.
                let expected = crate::settlement::Expected {
                    manifest: &manifest,
                    aggregator: msg.aggregator,
                    settled_at_ms: msg.settled_at_ms,
                    result_hash: msg.result_hash,
                    credits: &msg.credits,
                };
                let verified = crate::settlement::verify_settlement_skipping(
                    &msg.settlement.0,
                    &network,
                    &expected,
                    &known,
                )
                .map_err(|e| match e {
                    SettlementError::Local(_) => ProofCheckError::Local(e.to_string()),
                    e => ProofCheckError::Invalid(e.to_string()),
                })?;
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
        if !queued {
            return Handled::ignore("too many proof checks are queued here");
        }
        if let Some(local) = self.local.get_mut(&job) {
            local.checking.insert(frame_hash);
        }
        Handled::Pending
    }

    /// A settlement's check came back: its verdict.
    pub(super) async fn on_settlement_checked(
        &mut self,
        frame: Vec<u8>,
        origin: Origin,
        result: Result<Vec<(SettledShard, Vec<u8>)>, ProofCheckError>,
    ) {
        self.done_checking(&frame);
        let handled = self.after_settlement_check(frame, &origin, result);
        self.conclude(&origin, handled).await;
    }

    fn after_settlement_check(
        &mut self,
        frame: Vec<u8>,
        origin: &Origin,
        result: Result<Vec<(SettledShard, Vec<u8>)>, ProofCheckError>,
    ) -> Handled {
        let proofs = match result {
            Ok(proofs) => proofs,
            Err(ProofCheckError::Local(why)) => {
                warn!(reason = %why, "a settlement could not be checked here");
                return Handled::ignore(why);
            }
            Err(why) => return Handled::reject(why),
        };
        let Ok(env) = SignedEnvelope::<JobSettled>::from_frame(&frame, &self.network) else {
            return Handled::reject("settlement frame no longer decodes");
        };
        let msg = env.into_message();
        let Some(record) = self.jobs.get(&msg.job) else {
            return Handled::ignore("unknown job");
        };
        if record.outcome.is_some() {
            return Handled::ignore("job already settled");
        }
        // The rules again on this node's record now (state may have moved while the proofs
        // were being checked).
        let shards: Vec<SettledShard> = proofs.iter().map(|(s, _)| *s).collect();
        let aggregators = self.aggregator_candidates();
        let ctx = self.ctx(origin.freshness(), &aggregators);
        if let Some(reason) = settlement_rules(record, &msg, &shards, &ctx) {
            warn!(job = %msg.job, aggregator = %msg.aggregator, %reason, "settlement refused");
            return Handled::ignore(reason);
        }
        info!(job = %msg.job, aggregator = %msg.aggregator, "job settled");
        self.apply_settlement(&msg, frame, proofs, true);
        Handled::accept()
    }

    /// A failure report passed the rules: record it, and fail the job once the reports reach
    /// the quorum (`election::failure_is_final`). A failure carries no proof, so no single
    /// key can make it final, the entry peer's neither.
    fn on_failure_report(
        &mut self,
        signer: PeerKey,
        msg: starkscale_protocol::messages::JobFailed,
        frame: Vec<u8>,
    ) {
        let Some(record) = self.jobs.get(&msg.job) else {
            return;
        };
        if record.outcome.is_some() {
            return;
        }
        let candidates = self.job_candidates(record);
        let job = msg.job;
        self.apply_failure_report(job, signer, frame.clone(), true);
        let final_failure = self.local.get(&job).is_some_and(|l| {
            let reporters = l.failure_reports.keys().copied().collect();
            failure_is_final(&job, &candidates, &reporters)
        });
        info!(%job, reporter = %signer, final_failure, reason = %msg.reason, "failure reported");
        if final_failure {
            warn!(%job, reason = %msg.reason, "job failed");
            self.apply_failed(job, msg.reason, frame, true);
        }
    }
}

/// The rules a settlement passes against this peer's record of the job, besides its proofs:
/// the credits (`check_settled_credits`) and, for a replayed one, the election at its own
/// settle time (`check_settlement_turn`). `None` if it passes.
fn settlement_rules(
    record: &starkscale_protocol::status::JobRecord,
    msg: &JobSettled,
    shards: &[SettledShard],
    ctx: &validate::GossipContext<'_>,
) -> Option<validate::Reason> {
    if let Some(reason) = validate::check_settled_credits(record, shards).reason() {
        return Some(reason.clone());
    }
    if ctx.freshness == Freshness::Replayed {
        let turn = validate::check_settlement_turn(
            record,
            &msg.aggregator,
            msg.settled_at_ms,
            shards,
            ctx,
        );
        return turn.reason().cloned();
    }
    None
}

/// The state change of each kind of frame, shared by live gossip and the restore. With
/// `persist`, the frame is also written to the state database (the restore reads it from
/// there).
impl Node {
    /// A job's announcement: starts tracking it; returns its shard count.
    pub(super) fn apply_announce(
        &mut self,
        manifest: Manifest,
        frame: Vec<u8>,
        persist: bool,
    ) -> anyhow::Result<u32> {
        let job = manifest.job;
        let model = manifest.model.clone();
        // After `add_job`, which drops an earlier round's stored frames first.
        let shards = self.add_job(manifest, frame.clone())?;
        self.model_used(&model);
        if persist {
            self.persist(&job, FrameKind::Announce, &[], &frame);
        }
        Ok(shards)
    }

    /// A winning claim: inserted into the job's leases.
    pub(super) fn apply_claim(
        &mut self,
        job: JobId,
        claim: Claim,
        frame: Vec<u8>,
        how: ClaimRecord,
        persist: bool,
    ) -> Result<(), String> {
        let record = self.jobs.get_mut(&job).ok_or("claim for an unknown job")?;
        let (now, leases) = (now_ms(), &mut record.leases);
        let (inserted, freshness) = match how {
            ClaimRecord::Gossip(freshness) => {
                (leases.insert_claim(claim, now, freshness), freshness)
            }
            ClaimRecord::Restored { live } => {
                let freshness = if live {
                    Freshness::Live
                } else {
                    Freshness::Replayed
                };
                (leases.restore_claim(claim, now, live), freshness)
            }
        };
        inserted.map_err(|e| e.to_string())?;
        if persist {
            // The id is the frame's hash, with a trailing 1 for a claim learnt by catch-up
            // (the restore keeps it apart from the live claims).
            let mut id = blake3::hash(&frame).as_bytes().to_vec();
            if freshness == Freshness::Replayed {
                id.push(1);
            }
            self.persist(&job, FrameKind::Claim, &id, &frame);
        }
        if let Some(local) = self.local.get_mut(&job) {
            local.claims.push(frame);
        }
        Ok(())
    }

    /// A verified shard proof: credited to its worker.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_proof(
        &mut self,
        job: JobId,
        shard: u32,
        worker: PeerKey,
        proved_at_ms: u64,
        frame: Vec<u8>,
        how: ProofRecord,
        persist: bool,
    ) -> Result<(), String> {
        let record = self.jobs.get_mut(&job).ok_or("proof for an unknown job")?;
        let model = record.manifest.model_id();
        match how {
            ProofRecord::Checked(freshness) => record
                .leases
                .record_proof(shard, worker, proved_at_ms, now_ms(), freshness)
                .map_err(|e| e.to_string())?,
            ProofRecord::Restored => record.leases.set_proof(shard, worker, proved_at_ms),
        }
        match (persist, how) {
            (false, _) => {}
            (true, ProofRecord::Checked(_)) => {
                self.persist(&job, FrameKind::Proof, &shard.to_be_bytes(), &frame)
            }
            // A settled proof replaces the one recorded first.
            (true, ProofRecord::Restored) => {
                self.persist_replacing(&job, FrameKind::Proof, &shard.to_be_bytes(), &frame)
            }
        }
        if let Some(known) = self.models.get_mut(&model) {
            known.proved_shards.insert(shard);
        }
        if let Some(local) = self.local.get_mut(&job) {
            local.proofs.insert(shard, frame);
        }
        Ok(())
    }

    /// A verified settlement: the job's outcome. The settlement carries every shard proof,
    /// all verified, and fixes the credits network-wide: the settled proof of every shard is
    /// kept (one this node missed — a catch-up after settlement sends the settlement, not the
    /// proofs — or the other of two valid racing proofs). The restore passes no proofs: they
    /// are stored as proof frames of their own.
    pub(super) fn apply_settlement(
        &mut self,
        msg: &JobSettled,
        frame: Vec<u8>,
        proofs: Vec<(SettledShard, Vec<u8>)>,
        persist: bool,
    ) {
        let job = msg.job;
        let Some(record) = self.jobs.get_mut(&job) else {
            return;
        };
        record.outcome = Some(Outcome::Settled {
            result_hash: msg.result_hash,
            aggregator: msg.aggregator,
        });
        if persist {
            self.persist(&job, FrameKind::Settled, &[], &frame);
        }
        for (settled, proof) in proofs {
            let changed = self
                .local
                .get(&job)
                .is_none_or(|l| l.proofs.get(&settled.shard) != Some(&proof));
            if changed {
                let (s, w, at) = (settled.shard, settled.worker, settled.proved_at_ms);
                let _ = self.apply_proof(job, s, w, at, proof, ProofRecord::Restored, persist);
            }
        }
        if let Some(local) = self.local.get_mut(&job) {
            local.settled = Some((frame, msg.settlement.0.clone()));
            local.settling = false;
        }
    }

    /// One failure report of a quorum.
    pub(super) fn apply_failure_report(
        &mut self,
        job: JobId,
        reporter: PeerKey,
        frame: Vec<u8>,
        persist: bool,
    ) {
        let new_report = self
            .local
            .get_mut(&job)
            .is_some_and(|l| l.failure_reports.insert(reporter, frame.clone()).is_none());
        if new_report && persist {
            self.persist(&job, FrameKind::Failed, reporter.as_bytes(), &frame);
        }
    }

    /// The report that made the job failed (stored under an empty id).
    pub(super) fn apply_failed(
        &mut self,
        job: JobId,
        reason: FailureReason,
        frame: Vec<u8>,
        persist: bool,
    ) {
        if let Some(record) = self.jobs.get_mut(&job) {
            record.outcome = Some(Outcome::Failed { reason });
        }
        if persist {
            self.persist(&job, FrameKind::Failed, &[], &frame);
        }
        if let Some(local) = self.local.get_mut(&job) {
            local.failed = Some(frame);
        }
    }
}
