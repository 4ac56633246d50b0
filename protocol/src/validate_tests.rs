//! Tests of gossip validation: one accepted case and the main refusals for each kind.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use proptest::prelude::*;

use super::*;
use crate::codec::Bytes;
use crate::lease::{Freshness, LeaseRules};
use crate::matrix::IntMatrix;
use crate::testutil::{key, seed_manifest, seed_spec, T0};

struct World {
    network: NetworkId,
    entry: SigningKey,
    worker: SigningKey,
    aggregator: SigningKey,
    jobs: BTreeMap<JobId, JobRecord>,
    aggregators: Vec<crate::election::Candidate>,
    job: JobId,
}

impl World {
    fn new() -> Self {
        let entry = key(1);
        let manifest = seed_manifest(PeerKey::from(&entry));
        let job = manifest.job;
        let record =
            JobRecord::new(manifest, &JobLimits::default(), LeaseRules::default()).unwrap();
        let aggregator = key(3);
        Self {
            network: NetworkId::from_name("validate"),
            entry,
            worker: key(2),
            aggregators: vec![crate::election::Candidate {
                key: PeerKey::from(&aggregator),
                since_ms: 0,
            }],
            aggregator,
            jobs: BTreeMap::from([(job, record)]),
            job,
        }
    }

    fn ctx(&self, now_ms: u64) -> GossipContext<'_> {
        GossipContext {
            network: self.network,
            now_ms,
            freshness: Freshness::Live,
            limits: JobLimits::default(),
            max_skew_ms: 30_000,
            settle: SettlePolicy::default(),
            jobs: &self.jobs,
            aggregators: &self.aggregators,
            started_ms: 0,
        }
    }

    fn frame<T: GossipPayload>(&self, key: &SigningKey, msg: T) -> Vec<u8> {
        SignedEnvelope::sign(key, &self.network, msg)
            .unwrap()
            .to_frame()
            .unwrap()
    }

    fn claim(&self, shard: u32, at: u64) -> ShardClaimed {
        ShardClaimed {
            job: self.job,
            shard,
            claimed_at_ms: at,
            lease_expires_ms: at + 60_000,
            claimer: PeerKey::from(&self.worker),
            backup: false,
        }
    }

    /// Applies an accepted claim, as the node would.
    fn apply_claim(&mut self, claim: &ShardClaimed, now: u64) {
        let record = self.jobs.get_mut(&self.job).unwrap();
        record
            .leases
            .insert_claim(Claim::from(claim), now, Freshness::Live)
            .unwrap();
    }

    fn proved(&self, shard: u32, at: u64) -> ShardProved {
        let spec = seed_spec();
        let range = self.jobs[&self.job].plan.shard(shard).unwrap();
        let w = spec.w().row_block(range.rows_usize()).unwrap();
        ShardProved {
            job: self.job,
            shard,
            worker: PeerKey::from(&self.worker),
            config_id: 1,
            proved_at_ms: at,
            output: w.checked_mul(spec.x()).unwrap(),
            commitment: [9; 32],
            proof: Bytes(vec![1, 2, 3]),
        }
    }

    fn settled(&self, at: u64) -> JobSettled {
        let y = seed_spec().reference_product().unwrap();
        JobSettled {
            job: self.job,
            aggregator: PeerKey::from(&self.aggregator),
            config_id: 1,
            settled_at_ms: at,
            result_hash: result_hash(&y),
            result: Some(y),
            credits: (0..4)
                .map(|shard| ShardCredit {
                    shard,
                    worker: PeerKey::from(&self.worker),
                })
                .collect(),
            settlement: Bytes(vec![7; 10]),
        }
    }
}

fn is_reject<T>(v: &Verdict<T>) -> bool {
    matches!(v, Verdict::Reject(_))
}

fn is_ignore<T>(v: &Verdict<T>) -> bool {
    matches!(v, Verdict::Ignore(_))
}

#[test]
fn job_announced() {
    let w = World::new();
    let manifest = seed_manifest(PeerKey::from(&w.entry));
    let frame = w.frame(
        &w.entry,
        JobAnnounced {
            manifest: manifest.clone(),
        },
    );
    // Known already here: ignored. Unknown to an empty peer: accepted.
    assert!(matches!(
        validate_job_announced(&frame, &w.ctx(T0)),
        Verdict::Ignore(Reason::DuplicateJob(_))
    ));
    let empty = BTreeMap::new();
    let fresh_ctx = GossipContext {
        jobs: &empty,
        ..w.ctx(T0)
    };
    assert!(validate_job_announced(&frame, &fresh_ctx).is_accept());
    // Past its deadline: ignored.
    let late = GossipContext {
        now_ms: manifest.deadline_ms,
        ..fresh_ctx
    };
    assert!(is_ignore(&validate_job_announced(&frame, &late)));
    // Over local limits: ignored, not penalised.
    let small = GossipContext {
        limits: JobLimits {
            max_model_entries: 10,
            ..JobLimits::default()
        },
        ..fresh_ctx
    };
    assert!(is_ignore(&validate_job_announced(&frame, &small)));
    // A manifest whose id does not bind to its content: rejected.
    let mut forged = manifest.clone();
    forged.job = JobId([1; 32]);
    let frame = w.frame(&w.entry, JobAnnounced { manifest: forged });
    assert!(matches!(
        validate_job_announced(&frame, &fresh_ctx),
        Verdict::Reject(Reason::Manifest(ManifestError::JobIdMismatch { .. }))
    ));
    // Signed for another network: rejected.
    let other = NetworkId::from_name("elsewhere");
    let frame = SignedEnvelope::sign(&w.entry, &other, JobAnnounced { manifest })
        .unwrap()
        .to_frame()
        .unwrap();
    assert!(matches!(
        validate_job_announced(&frame, &fresh_ctx),
        Verdict::Reject(Reason::Envelope(EnvelopeError::BadSignature { .. }))
    ));
}

#[test]
fn shard_claimed() {
    let mut w = World::new();
    let now = T0 + 1_000;
    let claim = w.claim(0, now);
    let frame = w.frame(&w.worker, claim);
    assert!(validate_shard_claimed(&frame, &w.ctx(now)).is_accept());
    w.apply_claim(&claim, now);
    // The same claim again: a duplicate, ignored.
    assert!(is_ignore(&validate_shard_claimed(&frame, &w.ctx(now))));
    // Someone else's later claim loses the race: ignored.
    let rival = ShardClaimed {
        claimer: PeerKey::from(&w.entry),
        claimed_at_ms: now + 5,
        ..claim
    };
    let frame = w.frame(&w.entry, rival);
    assert!(matches!(
        validate_shard_claimed(&frame, &w.ctx(now + 5)),
        Verdict::Ignore(Reason::Conflict(_))
    ));
    // A shard outside the plan: rejected.
    let frame = w.frame(&w.worker, w.claim(9, now));
    assert!(is_reject(&validate_shard_claimed(&frame, &w.ctx(now))));
    // Stale: ignored.
    let frame = w.frame(&w.worker, w.claim(1, now));
    assert!(matches!(
        validate_shard_claimed(&frame, &w.ctx(now + 60_000)),
        Verdict::Ignore(Reason::Claim(_))
    ));
    // Unknown job: ignored.
    let frame = w.frame(
        &w.worker,
        ShardClaimed {
            job: JobId([3; 32]),
            ..claim
        },
    );
    assert!(matches!(
        validate_shard_claimed(&frame, &w.ctx(now)),
        Verdict::Ignore(Reason::UnknownJob(_))
    ));
}

#[test]
fn shard_proved_needs_a_proof_check() {
    let mut w = World::new();
    let now = T0 + 1_000;
    let claim = w.claim(1, now);
    w.apply_claim(&claim, now);
    let frame = w.frame(&w.worker, w.proved(1, now + 500));
    let Verdict::Accept(pending) = validate_shard_proved(&frame, &w.ctx(now + 500)) else {
        panic!("should pass the rules");
    };
    assert_eq!(pending.message().shard, 1);
    assert!(pending.clone().finish(Ok(())).is_accept());
    assert!(matches!(
        pending
            .clone()
            .finish(Err(ProofCheckError::Invalid("FRI query 3 failed".into()))),
        Verdict::Reject(Reason::InvalidProof { .. })
    ));
    // A check that failed for this peer's own reason is nobody's fault.
    assert!(matches!(
        pending.finish(Err(ProofCheckError::Local("speaks configuration 3".into()))),
        Verdict::Ignore(Reason::ProofNotCheckable { .. })
    ));

    // Wrong output shape, wrong configuration, empty proof: rejected.
    let mut bad = w.proved(1, now + 500);
    bad.output = IntMatrix::new(2, 1, vec![0, 0]).unwrap();
    let frame = w.frame(&w.worker, bad);
    assert!(matches!(
        validate_shard_proved(&frame, &w.ctx(now + 500)),
        Verdict::Reject(Reason::Dimensions { rows: 3, .. })
    ));
    let mut bad = w.proved(1, now + 500);
    bad.config_id = 2;
    let frame = w.frame(&w.worker, bad);
    assert!(matches!(
        validate_shard_proved(&frame, &w.ctx(now + 500)),
        Verdict::Reject(Reason::ConfigMismatch { .. })
    ));
    let mut bad = w.proved(1, now + 500);
    bad.proof = Bytes(Vec::new());
    let frame = w.frame(&w.worker, bad);
    assert!(is_reject(&validate_shard_proved(&frame, &w.ctx(now + 500))));
    // A shard the worker never claimed: ignored.
    let frame = w.frame(&w.worker, w.proved(2, now + 500));
    assert!(matches!(
        validate_shard_proved(&frame, &w.ctx(now + 500)),
        Verdict::Ignore(Reason::Proof(_))
    ));
    // After it is recorded, a second proof is ignored (proofs are final).
    let record = w.jobs.get_mut(&w.job).unwrap();
    let worker = PeerKey::from(&w.worker);
    record
        .leases
        .record_proof(1, worker, now + 500, now + 500, Freshness::Live)
        .unwrap();
    let frame = w.frame(&w.worker, w.proved(1, now + 600));
    assert!(is_ignore(&validate_shard_proved(&frame, &w.ctx(now + 600))));
}

#[test]
fn aggregator_heartbeat() {
    let w = World::new();
    let beat = AggregatorHeartbeat {
        aggregator: PeerKey::from(&w.aggregator),
        sent_at_ms: T0,
        capabilities: Capabilities {
            aggregate: true,
            prove: false,
            max_concurrent_leases: 0,
            config_ids: vec![1],
        },
        load: Load::default(),
    };
    let frame = w.frame(&w.aggregator, beat.clone());
    assert!(validate_aggregator_heartbeat(&frame, &w.ctx(T0)).is_accept());
    assert!(is_ignore(&validate_aggregator_heartbeat(
        &frame,
        &w.ctx(T0 + 120_000)
    )));
    let mut many = beat;
    many.capabilities.config_ids = vec![0; MAX_HEARTBEAT_CONFIGS + 1];
    let frame = w.frame(&w.aggregator, many);
    assert!(is_reject(&validate_aggregator_heartbeat(
        &frame,
        &w.ctx(T0)
    )));
}

#[test]
fn job_settled() {
    let w = World::new();
    let now = T0 + 10_000;
    let frame = w.frame(&w.aggregator, w.settled(now));
    let Verdict::Accept(pending) = validate_job_settled(&frame, &w.ctx(now)) else {
        panic!("should pass the rules");
    };
    assert!(pending.finish(Ok(())).is_accept());

    let mut missing = w.settled(now);
    missing.credits.pop();
    let frame = w.frame(&w.aggregator, missing);
    assert!(matches!(
        validate_job_settled(&frame, &w.ctx(now)),
        Verdict::Reject(Reason::Credits { index: 3, .. })
    ));
    let mut wrong = w.settled(now);
    wrong.result_hash = [0; 32];
    let frame = w.frame(&w.aggregator, wrong);
    assert!(matches!(
        validate_job_settled(&frame, &w.ctx(now)),
        Verdict::Reject(Reason::ResultHash)
    ));
    // Someone who is not the elected aggregator, even counting it as a candidate (it ranks
    // after the elected one): ignored while the first aggregator's turn lasts.
    let elected = PeerKey::from(&w.aggregator);
    let usurper_key = (1..=255u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .find(|k| {
            let rank = crate::election::rank_aggregators(&w.job, &[elected, PeerKey::from(k)]);
            rank.len() == 2 && rank[0] == elected
        })
        .unwrap();
    let mut usurper = w.settled(now);
    usurper.aggregator = PeerKey::from(&usurper_key);
    let frame = w.frame(&usurper_key, usurper);
    let v = validate_job_settled(&frame, &w.ctx(now));
    assert!(
        matches!(v, Verdict::Ignore(Reason::NotElected { .. })),
        "{v:?}"
    );
    // Replayed (catch-up) settlements are past their election; the proofs decide.
    let mut replayed = w.ctx(now);
    replayed.freshness = Freshness::Replayed;
    let v = validate_job_settled(&frame, &replayed);
    assert!(v.is_accept(), "{v:?}");
}

#[test]
fn job_failed() {
    let mut w = World::new();
    let failed = |reporter: &SigningKey| JobFailed {
        job: w.job,
        reporter: PeerKey::from(reporter),
        failed_at_ms: T0,
        reason: FailureReason::Unprovable {
            detail: "too wide".into(),
        },
    };
    let listed = PeerKey::from(&w.aggregator);
    w.jobs.get_mut(&w.job).unwrap().manifest.aggregators = vec![listed];
    let frame = w.frame(&w.aggregator, failed(&w.aggregator));
    assert!(validate_job_failed(&frame, &w.ctx(T0)).is_accept());
    // Neither a worker's nor the entry peer's report counts: no single key fails a job, and
    // anyone may announce a round of known content as its entry.
    for reporter in [&w.worker, &w.entry] {
        let frame = w.frame(reporter, failed(reporter));
        assert!(is_ignore(&validate_job_failed(&frame, &w.ctx(T0))));
    }
    let mut long = failed(&w.aggregator);
    long.reason = FailureReason::Other {
        detail: "x".repeat(limits::MAX_REASON_BYTES + 1),
    };
    let frame = w.frame(&w.aggregator, long);
    assert!(is_reject(&validate_job_failed(&frame, &w.ctx(T0))));
}

#[test]
fn terminal_jobs_ignore_further_gossip() {
    let mut w = World::new();
    w.jobs.get_mut(&w.job).unwrap().outcome = Some(crate::status::Outcome::Failed {
        reason: FailureReason::DeadlineExpired,
    });
    let frame = w.frame(&w.worker, w.claim(0, T0));
    assert!(matches!(
        validate_shard_claimed(&frame, &w.ctx(T0)),
        Verdict::Ignore(Reason::JobOver { .. })
    ));
}

#[test]
fn validate_any_dispatches_on_kind() {
    let w = World::new();
    let frame = w.frame(&w.worker, w.claim(0, T0));
    assert!(matches!(
        validate_any(&frame, &w.ctx(T0)),
        Verdict::Accept(AcceptedGossip::ShardClaimed(_))
    ));
    let request = Request::JobStatus(JobStatusRequest { job: w.job })
        .to_frame()
        .unwrap();
    assert!(is_reject(&validate_any(&request, &w.ctx(T0))));
    let mut v9 = frame;
    v9[0] = 9;
    assert!(is_ignore(&validate_any(&v9, &w.ctx(T0))));
}

proptest! {
    #[test]
    fn validation_never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let w = World::new();
        let ctx = w.ctx(T0);
        prop_assert!(!validate_any(&bytes, &ctx).is_accept());
        prop_assert!(!validate_shard_proved(&bytes, &ctx).is_accept());
        prop_assert!(!validate_job_settled(&bytes, &ctx).is_accept());
    }
}

#[test]
fn settlement_credits_follow_the_lease_rules_in_a_view_with_the_settled_proofs() {
    let mut w = World::new();
    let now = T0 + 1_000;
    let worker = PeerKey::from(&w.worker);
    let thief = PeerKey([77; 32]);
    for shard in 0..2 {
        let claim = w.claim(shard, now);
        w.apply_claim(&claim, now);
    }
    w.jobs
        .get_mut(&w.job)
        .unwrap()
        .leases
        .record_proof(0, worker, now + 100, now + 100, Freshness::Live)
        .unwrap();
    let record = &w.jobs[&w.job];
    let at = |shard, worker| SettledShard {
        shard,
        worker,
        proved_at_ms: now + 200,
    };
    // Shard 0 recorded for the worker, shard 1 leased to it: crediting it passes.
    assert!(check_settled_credits(record, &[at(0, worker), at(1, worker)]).is_accept());
    // Crediting a shard (recorded or not) to a worker that never held its lease.
    for credits in [[at(0, thief), at(1, worker)], [at(0, worker), at(1, thief)]] {
        assert!(matches!(
            check_settled_credits(record, &credits),
            Verdict::Ignore(Reason::Proof(ProofError::NotClaimed { worker, .. })) if worker == thief
        ));
    }
    // A proof time before the lease began fails the lease rule too (and, as a proof of the
    // shard before the claim, would take the worker's own lease).
    let early = SettledShard {
        shard: 1,
        worker,
        proved_at_ms: now - 1,
    };
    assert!(matches!(
        check_settled_credits(record, &[early]),
        Verdict::Ignore(Reason::Proof(
            ProofError::NotClaimed { .. } | ProofError::TakesLease { .. }
        ))
    ));
}

#[test]
fn a_late_joiner_that_saw_claims_but_not_proofs_accepts_the_honest_credits() {
    // One worker at capacity 1: it claims shard 0, proves it, then claims shard 1. A peer that
    // saw both claims but not the first proof counts the second claim over capacity.
    let rules = LeaseRules {
        max_leases_per_peer: 1,
        ..LeaseRules::default()
    };
    let mut w = World::new();
    let manifest = w.jobs[&w.job].manifest.clone();
    let mut record = JobRecord::new(manifest, &JobLimits::default(), rules).unwrap();
    let worker = PeerKey::from(&w.worker);
    let now = T0 + 1_000;
    for (shard, at) in [(0, now), (1, now + 500)] {
        let claim = Claim::from(&w.claim(shard, at));
        record
            .leases
            .insert_claim(claim, at, Freshness::Live)
            .unwrap();
    }
    let settled = [
        SettledShard {
            shard: 0,
            worker,
            proved_at_ms: now + 400,
        },
        SettledShard {
            shard: 1,
            worker,
            proved_at_ms: now + 900,
        },
    ];
    // Without the settlement's proofs the second lease never began here…
    assert!(record
        .leases
        .check_proof(1, &worker, now + 900, now + 2_000, Freshness::Replayed)
        .is_err());
    // …with them (the first proof ends the first lease) the credits hold.
    assert!(check_settled_credits(&record, &settled).is_accept());
    w.jobs.insert(w.job, record);
}

#[test]
fn a_settlement_may_credit_either_of_two_racing_valid_proofs() {
    let rules = LeaseRules {
        backup_window_percent: 100,
        ..LeaseRules::default()
    };
    let w = World::new();
    let manifest = w.jobs[&w.job].manifest.clone();
    let mut record = JobRecord::new(manifest, &JobLimits::default(), rules).unwrap();
    let (primary, backup) = (PeerKey::from(&w.worker), PeerKey([9; 32]));
    let now = T0 + 1_000;
    let mut claim = Claim::from(&w.claim(0, now));
    record
        .leases
        .insert_claim(claim, now, Freshness::Live)
        .unwrap();
    claim.claimer = backup;
    claim.claimed_at_ms = now + 10;
    claim.backup = true;
    record
        .leases
        .insert_claim(claim, now + 10, Freshness::Live)
        .unwrap();
    // This peer recorded the backup's proof; the aggregator credits the primary's.
    record
        .leases
        .record_proof(0, backup, now + 100, now + 100, Freshness::Live)
        .unwrap();
    let primary_proof = SettledShard {
        shard: 0,
        worker: primary,
        proved_at_ms: now + 120,
    };
    assert!(check_settled_credits(&record, &[primary_proof]).is_accept());
}

#[test]
fn a_replayed_settlement_is_judged_at_its_own_settle_time() {
    let mut w = World::new();
    let now = T0 + 1_000;
    let worker = PeerKey::from(&w.worker);
    let aggregator = PeerKey::from(&w.aggregator);
    let outsider = PeerKey([55; 32]);
    w.aggregators.push(crate::election::Candidate {
        key: outsider,
        since_ms: 0,
    });
    let record = &w.jobs[&w.job];
    let proved = SettledShard {
        shard: 0,
        worker,
        proved_at_ms: now,
    };
    let mut ctx = w.ctx(now + 500_000);
    ctx.freshness = Freshness::Replayed;
    let ranked = crate::election::rank_aggregators(&w.job, &[aggregator, outsider]);
    let (first, second) = (ranked[0], ranked[1]);
    let step = ctx.settle.step_ms;
    // The first rank may settle at once after the last proof; the second only after its turn.
    assert!(check_settlement_turn(record, &first, now + 10, &[proved], &ctx).is_accept());
    assert!(matches!(
        check_settlement_turn(record, &second, now + 10, &[proved], &ctx),
        Verdict::Ignore(Reason::NotElected { .. })
    ));
    assert!(
        check_settlement_turn(record, &second, now + 2 * step + 1, &[proved], &ctx).is_accept()
    );
    // A settlement dated before its proofs, or after the job expired, is refused.
    assert!(matches!(
        check_settlement_turn(record, &first, now - ctx.max_skew_ms - 1, &[proved], &ctx),
        Verdict::Ignore(Reason::Clock { .. })
    ));
    let expired = record.manifest.deadline_ms + ctx.settle.grace_ms;
    assert!(matches!(
        check_settlement_turn(record, &first, expired, &[proved], &ctx),
        Verdict::Ignore(Reason::Clock { .. })
    ));
}

#[test]
fn a_replayed_claim_may_fill_a_gap_but_not_take_a_judged_lease() {
    let mut w = World::new();
    let now = T0 + 5_000;
    let honest = w.claim(0, now);
    w.apply_claim(&honest, now);
    // A thief backdates its claim on the same shard to just after the job's creation and
    // sends it by catch-up.
    let thief = key(9);
    let mut backdated = w.claim(0, T0 + 1);
    backdated.claimer = PeerKey::from(&thief);
    let frame = w.frame(&thief, backdated);
    let mut replayed = w.ctx(now + 100);
    replayed.freshness = Freshness::Replayed;
    assert!(matches!(
        validate_shard_claimed(&frame, &replayed),
        Verdict::Ignore(Reason::Conflict(crate::lease::Conflict::Overturns {
            shard: 0,
            ..
        }))
    ));
    // The same backdated claim on a shard nobody claimed here fills a gap.
    backdated.shard = 1;
    let frame = w.frame(&thief, backdated);
    assert!(validate_shard_claimed(&frame, &replayed).is_accept());
}

#[test]
fn announcements_cannot_post_date_themselves_or_run_too_long() {
    let mut w = World::new();
    w.jobs.clear();
    let mut manifest = seed_manifest(PeerKey::from(&w.entry));
    manifest.created_ms = T0 + MAX_CREATED_AHEAD_MS + 1;
    manifest.deadline_ms = manifest.created_ms + 60_000;
    let frame = w.frame(&w.entry, JobAnnounced { manifest });
    assert!(matches!(
        validate_job_announced(&frame, &w.ctx(T0)),
        Verdict::Ignore(Reason::Clock { .. })
    ));
    let mut manifest = seed_manifest(PeerKey::from(&w.entry));
    manifest.deadline_ms = manifest.created_ms + MAX_JOB_DURATION_MS + 1;
    let frame = w.frame(&w.entry, JobAnnounced { manifest });
    assert!(matches!(
        validate_job_announced(&frame, &w.ctx(T0)),
        Verdict::Ignore(Reason::TooLong { .. })
    ));
}

#[test]
fn a_replayed_heartbeat_is_as_stale_as_it_is_old() {
    let w = World::new();
    let beat = AggregatorHeartbeat {
        aggregator: PeerKey::from(&w.aggregator),
        sent_at_ms: T0,
        capabilities: Capabilities {
            aggregate: true,
            prove: true,
            max_concurrent_leases: 1,
            config_ids: vec![2],
        },
        load: Load {
            active_leases: 0,
            pending_aggregations: 0,
        },
    };
    let frame = w.frame(&w.aggregator, beat);
    let mut replayed = w.ctx(T0 + 3_600_000);
    replayed.freshness = Freshness::Replayed;
    assert!(matches!(
        validate_aggregator_heartbeat(&frame, &replayed),
        Verdict::Ignore(Reason::Clock { .. })
    ));
}

#[test]
fn failure_reports_count_only_from_the_candidates_a_job_names() {
    let mut w = World::new();
    let report = |reporter: &SigningKey, at| JobFailed {
        job: w.job,
        reporter: PeerKey::from(reporter),
        failed_at_ms: at,
        reason: FailureReason::DataUnavailable {
            detail: "no peer serves X".into(),
        },
    };
    // A job whose manifest names no candidates cannot fail: every peer would judge the
    // report by its own view of the candidates.
    let frame = w.frame(&w.aggregator, report(&w.aggregator, T0 + 10));
    assert!(matches!(
        validate_job_failed(&frame, &w.ctx(T0 + 10)),
        Verdict::Ignore(Reason::NotElected { .. })
    ));
    // Named: the aggregator's report is accepted (one report of a quorum; the node decides
    // when the failure is final), whatever this peer's own view of the candidates.
    let listed = PeerKey::from(&w.aggregator);
    w.jobs.get_mut(&w.job).unwrap().manifest.aggregators = vec![listed];
    w.aggregators.clear();
    assert!(validate_job_failed(&frame, &w.ctx(T0 + 10)).is_accept());
    // A report dated before the job was created belongs to an earlier round.
    let frame = w.frame(&w.aggregator, report(&w.aggregator, T0 - 1));
    assert!(is_ignore(&validate_job_failed(&frame, &w.ctx(T0 + 10))));
}

#[test]
fn a_failed_job_may_be_announced_again_later() {
    let mut w = World::new();
    let mut manifest = w.jobs[&w.job].manifest.clone();
    manifest.created_ms = T0 + 1_000;
    manifest.deadline_ms = T0 + 601_000;
    let frame = w.frame(&w.entry, JobAnnounced { manifest });
    assert!(matches!(
        validate_job_announced(&frame, &w.ctx(T0 + 2_000)),
        Verdict::Ignore(Reason::DuplicateJob(_))
    ));
    w.jobs.get_mut(&w.job).unwrap().outcome = Some(crate::status::Outcome::Failed {
        reason: FailureReason::DeadlineExpired,
    });
    assert!(validate_job_announced(&frame, &w.ctx(T0 + 2_000)).is_accept());
}

#[test]
fn a_job_that_names_its_aggregators_is_settled_and_failed_only_by_them() {
    let mut w = World::new();
    let listed = PeerKey::from(&w.aggregator);
    let outsider = key(8);
    // Every peer also hears the outsider, from before the job: it still does not count.
    w.aggregators.push(crate::election::Candidate {
        key: PeerKey::from(&outsider),
        since_ms: 0,
    });
    let record = w.jobs.get_mut(&w.job).unwrap();
    record.manifest.set_aggregators(&[listed]);
    assert_eq!(record.manifest.aggregators, vec![listed]);
    let report = |reporter: &SigningKey| JobFailed {
        job: w.job,
        reporter: PeerKey::from(reporter),
        failed_at_ms: T0 + 10,
        reason: FailureReason::DataUnavailable {
            detail: "no peer serves X".into(),
        },
    };
    let frame = w.frame(&w.aggregator, report(&w.aggregator));
    assert!(validate_job_failed(&frame, &w.ctx(T0 + 10)).is_accept());
    let frame = w.frame(&outsider, report(&outsider));
    assert!(matches!(
        validate_job_failed(&frame, &w.ctx(T0 + 10)),
        Verdict::Ignore(Reason::NotElected { .. })
    ));
    // An unlisted signer is not counted as a candidate for a settlement either, live or
    // replayed, whatever its settle time.
    let record = &w.jobs[&w.job];
    let proved = SettledShard {
        shard: 0,
        worker: PeerKey::from(&w.worker),
        proved_at_ms: T0 + 100,
    };
    let mut ctx = w.ctx(T0 + 200);
    ctx.aggregators = &[];
    ctx.freshness = Freshness::Replayed;
    let late = record.manifest.deadline_ms - 1;
    assert!(check_settlement_turn(record, &listed, T0 + 200, &[proved], &ctx).is_accept());
    assert!(matches!(
        check_settlement_turn(record, &PeerKey::from(&outsider), late, &[proved], &ctx),
        Verdict::Ignore(Reason::NotElected { .. })
    ));
}

#[test]
fn a_manifest_names_at_most_sixteen_aggregators_in_order() {
    let mut manifest = seed_manifest(PeerKey::from(&key(1)));
    let keys: Vec<PeerKey> = (0..40u8).map(|i| PeerKey([i; 32])).collect();
    manifest.set_aggregators(&keys);
    assert_eq!(
        manifest.aggregators.len(),
        crate::manifest::MAX_JOB_AGGREGATORS
    );
    assert!(manifest.validate(&JobLimits::default()).is_ok());
    // The first by rank for the job are the ones named.
    let ranked = crate::election::rank_aggregators(&manifest.job, &keys);
    assert!(ranked[..16]
        .iter()
        .all(|k| manifest.aggregators.contains(k)));
    manifest.aggregators.swap(0, 1);
    assert!(matches!(
        manifest.validate(&JobLimits::default()),
        Err(ManifestError::Aggregators { .. })
    ));
    manifest.aggregators = vec![PeerKey([1; 32]); 2];
    assert!(manifest.validate(&JobLimits::default()).is_err());
}

/// A claim on `shard` by `who` at `at`, with a one-minute lease.
fn claim_by(shard: u32, who: PeerKey, at: u64) -> Claim {
    Claim {
        shard,
        claimer: who,
        claimed_at_ms: at,
        lease_expires_ms: at + 60_000,
        backup: false,
    }
}

#[test]
fn a_settlements_own_early_proof_cannot_free_capacity_to_take_a_proved_shard() {
    // From the second review: a Sybil at capacity 1 loses its shard-1 lease to its own
    // backdated shard-0 claim; an honest worker wins and proves shard 1; the Sybil, elected,
    // settles with a proof of shard 0 dated early enough to free its capacity, so that in the
    // view with the settlement's proofs its shard-1 claim wins again.
    let rules = LeaseRules {
        max_leases_per_peer: 1,
        ..LeaseRules::default()
    };
    let manifest = seed_manifest(PeerKey::from(&key(1)));
    let mut record = JobRecord::new(manifest, &JobLimits::default(), rules).unwrap();
    let (sybil, honest) = (PeerKey([66; 32]), PeerKey([2; 32]));
    let t = T0 + 100_000;
    let book = &mut record.leases;
    book.insert_claim(claim_by(1, sybil, t), t, Freshness::Live)
        .unwrap();
    book.insert_claim(claim_by(0, sybil, t - 20_000), t + 1, Freshness::Live)
        .unwrap();
    assert!(matches!(
        book.insert_claim(claim_by(1, honest, t + 1_000), t + 1_000, Freshness::Live),
        Ok(ClaimOutcome::Won { .. })
    ));
    book.record_proof(1, honest, t + 5_000, t + 5_000, Freshness::Live)
        .unwrap();
    for s in 2..4u8 {
        let worker = PeerKey([10 + s; 32]);
        book.insert_claim(
            claim_by(u32::from(s), worker, t + 6_000),
            t + 6_000,
            Freshness::Live,
        )
        .unwrap();
    }
    let settled = |shard, worker, proved_at_ms| SettledShard {
        shard,
        worker,
        proved_at_ms,
    };
    let theft = [
        settled(0, sybil, t - 19_000),
        settled(1, sybil, t + 30_000),
        settled(2, PeerKey([12; 32]), t + 9_000),
        settled(3, PeerKey([13; 32]), t + 9_000),
    ];
    assert!(matches!(
        check_settled_credits(&record, &theft),
        Verdict::Ignore(Reason::Proof(ProofError::TakesLease { shard: 1, holder })) if holder == honest
    ));
    // Crediting the honest worker passes, with the Sybil's shard-0 proof dated after the
    // honest worker won shard 1 (so it frees nothing that matters).
    let mut honest_settlement = theft;
    honest_settlement[0] = settled(0, sybil, t + 8_000);
    honest_settlement[1] = settled(1, honest, t + 5_000);
    assert!(check_settled_credits(&record, &honest_settlement).is_accept());
}

#[test]
fn an_invented_catch_up_claim_cannot_make_a_peer_refuse_the_honest_settlement() {
    // From the second review: a catch-up source invents a claim dated at the job's creation
    // on a shard this peer has no claim on yet; the honest live claim then loses here.
    let manifest = seed_manifest(PeerKey::from(&key(1)));
    let job = manifest.job;
    let mut jobs = BTreeMap::from([(
        job,
        JobRecord::new(manifest, &JobLimits::default(), LeaseRules::default()).unwrap(),
    )]);
    let (sybil, honest) = (key(66), PeerKey::from(&key(2)));
    let now = T0 + 2_000;
    let invented = claim_by(1, PeerKey::from(&sybil), T0 + 1);
    let record = jobs.get_mut(&job).unwrap();
    record
        .leases
        .insert_claim(invented, now, Freshness::Replayed)
        .unwrap();
    for shard in 0..4 {
        let c = claim_by(shard, honest, now + 1_000);
        let _ = record.leases.insert_claim(c, now + 1_000, Freshness::Live);
    }
    assert!(matches!(
        record.leases.outcome_of(&claim_by(1, honest, now + 1_000)),
        Some(ClaimOutcome::Lost(_))
    ));
    // The honest worker's proof of shard 1 is still creditable (on the live claims), and so
    // is the honest settlement.
    assert!(record
        .leases
        .check_proof(1, &honest, now + 5_000, now + 5_000, Freshness::Live)
        .is_ok());
    let honest_all: Vec<SettledShard> = (0..4)
        .map(|shard| SettledShard {
            shard,
            worker: honest,
            proved_at_ms: now + 5_000,
        })
        .collect();
    assert!(check_settled_credits(record, &honest_all).is_accept());
}

#[test]
fn a_round_that_names_fewer_candidates_than_the_quorum_cannot_fail() {
    // From the second review: a stranger announces a new round of failed content naming
    // only its own Sybil key; that key's report alone must not fail the round.
    let mut w = World::new();
    let sybil = key(71);
    w.jobs.get_mut(&w.job).unwrap().manifest.aggregators = vec![PeerKey::from(&sybil)];
    let report = JobFailed {
        job: w.job,
        reporter: PeerKey::from(&sybil),
        failed_at_ms: T0 + 1,
        reason: FailureReason::Other {
            detail: "no".into(),
        },
    };
    let frame = w.frame(&sybil, report);
    assert!(validate_job_failed(&frame, &w.ctx(T0 + 1)).is_accept());
    let listed = w.jobs[&w.job].manifest.aggregators.clone();
    let reporters = std::collections::BTreeSet::from([PeerKey::from(&sybil)]);
    assert!(!crate::election::failure_is_final(
        &w.job, &listed, &reporters
    ));
}

#[test]
fn a_job_that_names_no_candidates_counts_no_unheard_signer() {
    // From the second review: with an empty list, a replayed settlement by any key passed
    // the turn check by dating itself late enough.
    let w = World::new();
    let record = &w.jobs[&w.job];
    assert!(record.manifest.aggregators.is_empty());
    let proved = [SettledShard {
        shard: 0,
        worker: PeerKey::from(&w.worker),
        proved_at_ms: T0 + 1_000,
    }];
    let mut ctx = w.ctx(T0 + 650_000);
    ctx.freshness = Freshness::Replayed;
    let late = record.manifest.deadline_ms + 60_000;
    assert!(matches!(
        check_settlement_turn(record, &PeerKey([99; 32]), late, &proved, &ctx),
        Verdict::Ignore(Reason::NotElected { .. })
    ));
}

// ---- From a third review: cases the fixes above first got wrong ----

/// A claim with an explicit lease length.
fn claim_for(shard: u32, who: PeerKey, at: u64, lease: u64) -> Claim {
    Claim {
        shard,
        claimer: who,
        claimed_at_ms: at,
        lease_expires_ms: at + lease,
        backup: false,
    }
}

#[test]
fn a_late_joiner_accepts_an_honest_settlement_whose_proof_legitimately_ends_a_later_claim() {
    // Honest race: W's 3 s lease on shard 0 ends at t+3000; W proves at t+2900; X, which had
    // not yet verified W's proof, claims shard 0 at t+3100 and wins at the catch-up source
    // (it loses AlreadyProved there later, but the frame stays in `local.claims`). A late
    // joiner gets claims + settlement (no proofs: the job is settled).
    let manifest = seed_manifest(PeerKey::from(&key(1)));
    let mut record =
        JobRecord::new(manifest, &JobLimits::default(), LeaseRules::default()).unwrap();
    let (w, x) = (PeerKey([2; 32]), PeerKey([3; 32]));
    let t = T0 + 1_000;
    let now = t + 20_000;
    for shard in 0..4 {
        record
            .leases
            .insert_claim(claim_for(shard, w, t, 3_000), now, Freshness::Replayed)
            .unwrap();
    }
    assert_eq!(
        record
            .leases
            .insert_claim(claim_for(0, x, t + 3_100, 3_000), now, Freshness::Replayed),
        Ok(ClaimOutcome::Won { backup: false })
    );
    let honest: Vec<SettledShard> = (0..4)
        .map(|shard| SettledShard {
            shard,
            worker: w,
            proved_at_ms: t + 2_900,
        })
        .collect();
    // Every credited worker held its lease through its proof; the settlement is honest. X's
    // claim loses to W's proof (AlreadyProved), not to a taken lease.
    let v = check_settled_credits(&record, &honest);
    assert!(v.is_accept(), "{v:?}");
}

#[test]
fn a_free_live_claim_cannot_make_a_peer_that_missed_a_proof_refuse_the_honest_settlement() {
    // A peer that saw W's claims live but not its proof of shard 0 (dropped: queue full, or
    // still being verified when the settlement's snapshot is taken). A griefer with a fresh
    // key claims shard 0 live just after W's lease ended here; peers that recorded the proof
    // ignore it (no penalty). The live view holds the griefer's claim too.
    let manifest = seed_manifest(PeerKey::from(&key(1)));
    let mut record =
        JobRecord::new(manifest, &JobLimits::default(), LeaseRules::default()).unwrap();
    let (w, griefer) = (PeerKey([2; 32]), PeerKey([99; 32]));
    let t = T0 + 1_000;
    for shard in 0..4 {
        record
            .leases
            .insert_claim(claim_for(shard, w, t, 3_000), t, Freshness::Live)
            .unwrap();
    }
    for shard in 1..4 {
        record
            .leases
            .record_proof(shard, w, t + 1_000, t + 1_000, Freshness::Live)
            .unwrap();
    }
    record
        .leases
        .insert_claim(
            claim_for(0, griefer, t + 3_001, 3_000),
            t + 3_001,
            Freshness::Live,
        )
        .unwrap();
    let honest: Vec<SettledShard> = (0..4)
        .map(|shard| SettledShard {
            shard,
            worker: w,
            proved_at_ms: if shard == 0 { t + 2_000 } else { t + 1_000 },
        })
        .collect();
    assert!(check_settled_credits(&record, &honest).is_accept());
}

#[test]
fn a_lapsed_one_second_claim_does_not_let_a_colluding_aggregator_take_the_credits() {
    // The thief sees the announcement and at once claims every shard LIVE, dated 2 s before
    // the job's creation (inside the skew), with the shortest lease (1 s): it wins (nothing
    // held) and lapses before any honest claim. The honest worker then claims, proves, and is
    // recorded everywhere. A colluding elected aggregator settles with the thief's own
    // (re-)proofs of every shard, dated after the honest ones.
    let manifest = seed_manifest(PeerKey::from(&key(1)));
    let mut record =
        JobRecord::new(manifest, &JobLimits::default(), LeaseRules::default()).unwrap();
    let (honest, thief) = (PeerKey([2; 32]), PeerKey([66; 32]));
    let now = T0 + 500;
    for shard in 0..4 {
        assert_eq!(
            record.leases.insert_claim(
                claim_for(shard, thief, T0 - 2_000, 1_000),
                now,
                Freshness::Live
            ),
            Ok(ClaimOutcome::Won { backup: false })
        );
    }
    for shard in 0..4 {
        let c = claim_for(shard, honest, T0 + 1_000, 60_000);
        assert_eq!(
            record.leases.insert_claim(c, T0 + 1_000, Freshness::Live),
            Ok(ClaimOutcome::Won { backup: false })
        );
        record
            .leases
            .record_proof(shard, honest, T0 + 5_000, T0 + 5_000, Freshness::Live)
            .unwrap();
    }
    let theft: Vec<SettledShard> = (0..4)
        .map(|shard| SettledShard {
            shard,
            worker: thief,
            proved_at_ms: T0 + 6_000,
        })
        .collect();
    // The thief's leases lapsed long before its proofs and the honest worker won the shards
    // in between: refused.
    assert!(matches!(
        check_settled_credits(&record, &theft),
        Verdict::Ignore(Reason::Proof(ProofError::NotClaimed { .. }))
    ));
}

#[test]
fn through_the_nodes_gate_an_invented_catch_up_claim_cannot_make_a_peer_refuse_the_honest_settlement(
) {
    // As `an_invented_catch_up_claim_cannot_make_a_peer_refuse_the_honest_settlement`, but
    // through the node's gate: a claim is applied only if `validate_shard_claimed` accepts
    // it. A live claim that loses only to a catch-up claim (here: Held by the invented one)
    // but wins on the live claims is accepted and stored.
    let mut w = World::new();
    let sybil = key(66);
    let honest_key = w.worker.clone();
    let honest = PeerKey::from(&honest_key);
    let now = T0 + 2_000;
    // Periodic catch-up pull from the Sybil: a gap-filling claim dated at creation.
    let mut invented = w.claim(1, T0 + 1);
    invented.claimer = PeerKey::from(&sybil);
    let frame = w.frame(&sybil, invented);
    let mut replayed = w.ctx(now);
    replayed.freshness = Freshness::Replayed;
    assert!(validate_shard_claimed(&frame, &replayed).is_accept());
    w.jobs
        .get_mut(&w.job)
        .unwrap()
        .leases
        .insert_claim(Claim::from(&invented), now, Freshness::Replayed)
        .unwrap();
    // The honest worker's live claims on every shard, as the node handles them.
    for shard in 0..4 {
        let c = w.claim(shard, now + 1_000);
        let frame = w.frame(&honest_key, c);
        let v = validate_shard_claimed(&frame, &w.ctx(now + 1_000));
        assert!(v.is_accept(), "shard {shard}: {v:?}");
        w.jobs
            .get_mut(&w.job)
            .unwrap()
            .leases
            .insert_claim(Claim::from(&c), now + 1_000, Freshness::Live)
            .unwrap();
    }
    let record = &w.jobs[&w.job];
    assert!(record
        .leases
        .check_proof(1, &honest, now + 5_000, now + 5_000, Freshness::Live)
        .is_ok());
    let honest_all: Vec<SettledShard> = (0..4)
        .map(|shard| SettledShard {
            shard,
            worker: honest,
            proved_at_ms: now + 5_000,
        })
        .collect();
    assert!(check_settled_credits(record, &honest_all).is_accept());
}
