//! Gossip validation: every gossip message ends in [`Verdict::Accept`], [`Verdict::Ignore`] or
//! [`Verdict::Reject`].
//!
//! Each `validate_*` function runs, in order: decode with the kind's size limit → signature
//! (`verify_strict`, bound to network, kind and job) → protocol rules (known job? shard in the
//! plan? lease rules? sizes and dimensions consistent with the manifest?).
//!
//! **Proofs are not checked here.** Messages that carry a proof (`ShardProved`, `JobSettled`)
//! are accepted by the rules as [`NeedsProofCheck`]; the node hands the proof to the prover crate
//! and calls [`NeedsProofCheck::finish`] with the result, which gives the final verdict. Only
//! then should it forward the message and record it (e.g. [`crate::lease::LeaseBook::record_proof`]).
//!
//! `Reject` means the sender sent something malformed or forged and should be penalised;
//! `Ignore` means the message is valid but not useful here (duplicate, unknown job, lost race,
//! stale, or judged under a view — local limits, aggregator set — that other peers may not
//! share). Validation never mutates state: after `Accept` the node applies the message.

use std::collections::{BTreeMap, HashMap};

use crate::codec::{limits, CodecError};
use crate::election::{may_report_failure, may_settle, Candidate};
use crate::envelope::{EnvelopeError, GossipPayload, SignedEnvelope};
use crate::ids::{JobId, NetworkId, PeerKey};
use crate::job::JobLimits;
use crate::lease::{check_fresh, Claim, ClaimError, ClaimOutcome, Conflict, Freshness, ProofError};
use crate::manifest::ManifestError;
use crate::messages::*;
use crate::status::{JobRecord, JobStatus, SettlePolicy};

/// The outcome of validating one gossip message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<T> {
    /// Valid: forward it and act on it.
    Accept(T),
    /// Not useful: drop it without penalty.
    Ignore(Reason),
    /// Malformed or forged: drop it and penalise the sender.
    Reject(Reason),
}

impl<T> Verdict<T> {
    /// Whether it is `Accept`.
    pub fn is_accept(&self) -> bool {
        matches!(self, Self::Accept(_))
    }

    /// Maps the accepted value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Verdict<U> {
        match self {
            Self::Accept(t) => Verdict::Accept(f(t)),
            Self::Ignore(r) => Verdict::Ignore(r),
            Self::Reject(r) => Verdict::Reject(r),
        }
    }

    /// The reason, unless accepted.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Self::Accept(_) => None,
            Self::Ignore(r) | Self::Reject(r) => Some(r),
        }
    }
}

/// Why a message was ignored or rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// Decoding or signature check failed.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The job is not known here.
    #[error("unknown job {0}")]
    UnknownJob(JobId),
    /// The job is already known.
    #[error("job {0} is already known")]
    DuplicateJob(JobId),
    /// The job is over.
    #[error("job {job} is over: {status}")]
    JobOver {
        /// The job.
        job: JobId,
        /// Its terminal status.
        status: JobStatus,
    },
    /// The manifest is invalid.
    #[error("invalid manifest: {0}")]
    Manifest(ManifestError),
    /// The job's deadline has passed.
    #[error("job deadline {deadline_ms} has passed (now {now_ms})")]
    PastDeadline {
        /// Deadline.
        deadline_ms: u64,
        /// Local time.
        now_ms: u64,
    },
    /// A message timestamp is too far from local time.
    #[error("timestamp {at_ms} is too far from local time {now_ms} (max skew {max_skew_ms} ms)")]
    Clock {
        /// The message's timestamp.
        at_ms: u64,
        /// Local time.
        now_ms: u64,
        /// Allowed skew.
        max_skew_ms: u64,
    },
    /// A claim's timestamp or lease fields are unacceptable.
    #[error("claim refused: {0}")]
    Claim(ClaimError),
    /// The claim lost to another claim or rule.
    #[error("claim lost: {0}")]
    Conflict(Conflict),
    /// The proof cannot be credited.
    #[error("proof not creditable: {0}")]
    Proof(ProofError),
    /// The message is about a shard not in the plan.
    #[error("shard {shard} is not in the plan ({count} shards)")]
    ShardOutOfPlan {
        /// Shard.
        shard: u32,
        /// Shards in the plan.
        count: u32,
    },
    /// Output dimensions do not match the manifest.
    #[error("{what} is {found_rows}x{found_cols}, expected {rows}x{cols}")]
    Dimensions {
        /// Which matrix.
        what: &'static str,
        /// Expected rows.
        rows: usize,
        /// Expected columns.
        cols: usize,
        /// Rows found.
        found_rows: usize,
        /// Columns found.
        found_cols: usize,
    },
    /// Proving configuration differs from the manifest's.
    #[error("made under configuration {found}, the job requires {expected}")]
    ConfigMismatch {
        /// Manifest's configuration.
        expected: u32,
        /// Message's configuration.
        found: u32,
    },
    /// An opaque field is empty or too large.
    #[error("{what} is {len} bytes; allowed 1..={limit}")]
    FieldSize {
        /// Which field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The signer may not settle or fail this job now (in this peer's view of the election).
    #[error("{signer} is not an elected aggregator or entry peer for this job now")]
    NotElected {
        /// The signer.
        signer: PeerKey,
    },
    /// A job runs for longer than the protocol allows.
    #[error("job runs {duration_ms} ms from creation to deadline; at most {max_ms} ms allowed")]
    TooLong {
        /// Its deadline minus its creation time.
        duration_ms: u64,
        /// The limit ([`MAX_JOB_DURATION_MS`]).
        max_ms: u64,
    },
    /// Settlement credits are not one per shard in order.
    #[error("credit {index} is for shard {found}, expected shard {expected} ({total} shards)")]
    Credits {
        /// Position in the list.
        index: usize,
        /// Shard expected there.
        expected: u32,
        /// Shard found (`u32::MAX` when missing).
        found: u32,
        /// Shards in the plan.
        total: u32,
    },
    /// The inline result does not hash to `result_hash`.
    #[error("inline result does not match result_hash")]
    ResultHash,
    /// The heartbeat lists too many configurations.
    #[error("{count} configurations listed, at most {limit} allowed")]
    TooManyConfigs {
        /// Listed.
        count: usize,
        /// Allowed.
        limit: usize,
    },
    /// The proof check (prover crate) failed.
    #[error("invalid proof: {detail}")]
    InvalidProof {
        /// The prover's message.
        detail: String,
    },
    /// This peer could not check the proof, for a reason of its own.
    #[error("proof not checkable here: {detail}")]
    ProofNotCheckable {
        /// Why (a key it cannot derive, a configuration it does not speak, a conversion).
        detail: String,
    },
}

/// Why a proof check did not pass, as the caller's prover reports it. Only
/// [`ProofCheckError::Invalid`] is the sender's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofCheckError {
    /// The proof, or what it claims, is wrong: the sender is penalised.
    #[error("{0}")]
    Invalid(String),
    /// This peer could not check it (a key it cannot derive, a configuration it does not
    /// speak, a conversion that failed here): the message is dropped, nobody is penalised.
    #[error("{0}")]
    Local(String),
}

/// Most configuration ids in a heartbeat.
pub const MAX_HEARTBEAT_CONFIGS: usize = 64;

/// Longest a job may run, from creation to deadline: a job that never progresses (for one,
/// because its entry peer named shard keys no worker can prove against) ends within this, and
/// its content can then be submitted again.
pub const MAX_JOB_DURATION_MS: u64 = 3_600_000;

/// How far ahead of local time a job's creation time may be. Small, so an announcement cannot
/// post-date itself to stay the newest round of its content.
pub const MAX_CREATED_AHEAD_MS: u64 = 5_000;

/// Looks up what this peer knows about a job.
pub trait JobLookup {
    /// The record of `id`, if known.
    fn job(&self, id: &JobId) -> Option<&JobRecord>;
}

impl JobLookup for BTreeMap<JobId, JobRecord> {
    fn job(&self, id: &JobId) -> Option<&JobRecord> {
        self.get(id)
    }
}

impl<S: std::hash::BuildHasher> JobLookup for HashMap<JobId, JobRecord, S> {
    fn job(&self, id: &JobId) -> Option<&JobRecord> {
        self.get(id)
    }
}

/// Everything validation reads.
#[derive(Clone, Copy)]
pub struct GossipContext<'a> {
    /// This network.
    pub network: NetworkId,
    /// Local time (unix ms).
    pub now_ms: u64,
    /// [`Freshness::Live`] for gossip, [`Freshness::Replayed`] for catch-up frames.
    pub freshness: Freshness,
    /// Local job size limits.
    pub limits: JobLimits,
    /// Allowed clock skew for heartbeats, settlements and announcements.
    pub max_skew_ms: u64,
    /// Settlement timing.
    pub settle: SettlePolicy,
    /// Known jobs.
    pub jobs: &'a dyn JobLookup,
    /// Peers currently advertising the aggregator role, with since when.
    pub aggregators: &'a [Candidate],
    /// When this peer started listening (unix ms): it cannot know which candidates came
    /// before a job created earlier (see [`candidates_for`]).
    pub started_ms: u64,
}

/// A message accepted by the protocol rules whose proof still has to be verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedsProofCheck<T> {
    /// The verified envelope.
    pub envelope: SignedEnvelope<T>,
}

impl<T: GossipPayload> NeedsProofCheck<T> {
    /// The message whose proof to check.
    pub fn message(&self) -> &T {
        self.envelope.message()
    }

    /// The final verdict given the prover's answer: an invalid proof rejects, a check that
    /// failed for a local reason ignores.
    pub fn finish(self, proof_check: Result<(), ProofCheckError>) -> Verdict<SignedEnvelope<T>> {
        match proof_check {
            Ok(()) => Verdict::Accept(self.envelope),
            Err(ProofCheckError::Invalid(detail)) => {
                Verdict::Reject(Reason::InvalidProof { detail })
            }
            Err(ProofCheckError::Local(detail)) => {
                Verdict::Ignore(Reason::ProofNotCheckable { detail })
            }
        }
    }
}

/// Internal: a refusal with its severity.
enum Refusal {
    Ignore(Reason),
    Reject(Reason),
}

type Check<T> = Result<T, Refusal>;

fn verdict<T>(check: Check<T>) -> Verdict<T> {
    match check {
        Ok(t) => Verdict::Accept(t),
        Err(Refusal::Ignore(r)) => Verdict::Ignore(r),
        Err(Refusal::Reject(r)) => Verdict::Reject(r),
    }
}

fn ignore<T>(reason: Reason) -> Check<T> {
    Err(Refusal::Ignore(reason))
}

fn reject<T>(reason: Reason) -> Check<T> {
    Err(Refusal::Reject(reason))
}

/// Decode and signature: every failure rejects, except a frame from another protocol
/// version, which is ignored (the sender is not misbehaving, just newer or older).
fn open<T: GossipPayload>(bytes: &[u8], ctx: &GossipContext<'_>) -> Check<SignedEnvelope<T>> {
    SignedEnvelope::<T>::from_frame(bytes, &ctx.network).map_err(|e| match e {
        EnvelopeError::Frame(CodecError::UnsupportedVersion { .. }) => {
            Refusal::Ignore(Reason::Envelope(e))
        }
        other => Refusal::Reject(Reason::Envelope(other)),
    })
}

/// The record of a job that is known and not over.
fn open_job<'a>(ctx: &GossipContext<'a>, job: &JobId) -> Check<&'a JobRecord> {
    let Some(record) = ctx.jobs.job(job) else {
        return ignore(Reason::UnknownJob(*job));
    };
    if let Some(status) = record.terminal_status(ctx.now_ms, &ctx.settle) {
        return ignore(Reason::JobOver { job: *job, status });
    }
    Ok(record)
}

fn fresh(at_ms: u64, ctx: &GossipContext<'_>) -> Check<()> {
    check_fresh(at_ms, ctx.now_ms, ctx.max_skew_ms, ctx.freshness).or_else(|_| {
        ignore(Reason::Clock {
            at_ms,
            now_ms: ctx.now_ms,
            max_skew_ms: ctx.max_skew_ms,
        })
    })
}

fn config(expected: u32, found: u32) -> Check<()> {
    if expected == found {
        Ok(())
    } else {
        reject(Reason::ConfigMismatch { expected, found })
    }
}

fn field_size(what: &'static str, len: usize, limit: usize) -> Check<()> {
    if (1..=limit).contains(&len) {
        Ok(())
    } else {
        reject(Reason::FieldSize { what, len, limit })
    }
}

/// The candidates that count for the job: those its manifest names, or, when it names none,
/// those this peer knew before it was created.
fn job_candidates(record: &JobRecord, ctx: &GossipContext<'_>) -> Vec<PeerKey> {
    crate::election::job_candidates(
        &record.manifest.aggregators,
        record.manifest.created_ms,
        ctx.aggregators,
        ctx.started_ms,
    )
}

/// Whether `signer` may settle the job now: its rank among the job's aggregator candidates
/// has had its turn. A signer that is not a candidate never may (for a job whose manifest
/// names none, not even one this peer has not heard yet: such a job's entry knew no
/// candidate, and counting any signer would let anyone settle it).
fn may_finish(record: &JobRecord, signer: &PeerKey, ctx: &GossipContext<'_>) -> bool {
    let candidates = job_candidates(record, ctx);
    may_settle(
        &record.manifest.job,
        &candidates,
        signer,
        record.settle_deadline_ms(&ctx.settle),
        ctx.settle.step_ms,
        ctx.now_ms,
    )
}

/// Validates a `JobAnnounced` frame.
pub fn validate_job_announced(
    bytes: &[u8],
    ctx: &GossipContext<'_>,
) -> Verdict<SignedEnvelope<JobAnnounced>> {
    verdict((|| {
        let env = open::<JobAnnounced>(bytes, ctx)?;
        let manifest = &env.message().manifest;
        if let Some(known) = ctx.jobs.job(&manifest.job) {
            // A failed or expired job may be submitted again: a later announcement of the
            // same content starts a new round (its frames are bound to the new creation
            // time: claims and failures from before it are refused).
            let over = matches!(
                known.terminal_status(ctx.now_ms, &ctx.settle),
                Some(JobStatus::Failed { .. } | JobStatus::Expired)
            );
            if !over || manifest.created_ms <= known.manifest.created_ms {
                return ignore(Reason::DuplicateJob(manifest.job));
            }
        }
        match manifest.validate(&ctx.limits) {
            Ok(_) => {}
            // Limits are local policy: a bigger job is not misbehaviour.
            Err(e) if e.is_local_limit() => return ignore(Reason::Manifest(e)),
            Err(e) => return reject(Reason::Manifest(e)),
        }
        if ctx.now_ms >= manifest.deadline_ms {
            return ignore(Reason::PastDeadline {
                deadline_ms: manifest.deadline_ms,
                now_ms: ctx.now_ms,
            });
        }
        // Created in the future is suspicious; long ago is fine (the deadline bounds it).
        let ahead = MAX_CREATED_AHEAD_MS.min(ctx.max_skew_ms);
        if manifest.created_ms > ctx.now_ms.saturating_add(ahead) {
            return ignore(Reason::Clock {
                at_ms: manifest.created_ms,
                now_ms: ctx.now_ms,
                max_skew_ms: ahead,
            });
        }
        let duration_ms = manifest.deadline_ms.saturating_sub(manifest.created_ms);
        if duration_ms > MAX_JOB_DURATION_MS {
            return ignore(Reason::TooLong {
                duration_ms,
                max_ms: MAX_JOB_DURATION_MS,
            });
        }
        Ok(env)
    })())
}

/// Validates a `ShardClaimed` frame. On `Accept` the node inserts the claim into the job's
/// [`crate::lease::LeaseBook`]; a claim that loses the race is ignored.
pub fn validate_shard_claimed(
    bytes: &[u8],
    ctx: &GossipContext<'_>,
) -> Verdict<SignedEnvelope<ShardClaimed>> {
    verdict((|| {
        let env = open::<ShardClaimed>(bytes, ctx)?;
        let msg = env.message();
        let record = open_job(ctx, &msg.job)?;
        let claim = Claim::from(msg);
        // Replayed state fills gaps; it never takes a lease this peer already judged.
        let outcome = match ctx.freshness {
            Freshness::Replayed => record.leases.check_replayed_claim(&claim, ctx.now_ms),
            Freshness::Live => record.leases.check_claim(&claim, ctx.now_ms, ctx.freshness),
        };
        match outcome {
            Ok(ClaimOutcome::Won { .. }) => Ok(env),
            Ok(ClaimOutcome::Lost(_))
                if ctx.freshness == Freshness::Live
                    && record.leases.wins_on_live_claims(&claim, ctx.now_ms) =>
            {
                Ok(env)
            }
            Ok(ClaimOutcome::Lost(c)) => ignore(Reason::Conflict(c)),
            Err(e) if e.is_malformed() => reject(Reason::Claim(e)),
            Err(e) => ignore(Reason::Claim(e)),
        }
    })())
}

/// Validates a `ShardProved` frame by the rules; the proof itself is left to the caller.
pub fn validate_shard_proved(
    bytes: &[u8],
    ctx: &GossipContext<'_>,
) -> Verdict<NeedsProofCheck<ShardProved>> {
    verdict((|| {
        let env = open::<ShardProved>(bytes, ctx)?;
        let msg = env.message();
        let record = open_job(ctx, &msg.job)?;
        let count = record.plan.shard_count();
        let Some(range) = record.plan.shard(msg.shard) else {
            return reject(Reason::ShardOutOfPlan {
                shard: msg.shard,
                count,
            });
        };
        config(record.manifest.config_id(), msg.config_id)?;
        let (rows, cols) = (range.len() as usize, record.manifest.x.cols as usize);
        if (msg.output.rows(), msg.output.cols()) != (rows, cols) {
            return reject(Reason::Dimensions {
                what: "shard output",
                rows,
                cols,
                found_rows: msg.output.rows(),
                found_cols: msg.output.cols(),
            });
        }
        field_size("proof", msg.proof.len(), limits::MAX_PROOF_BYTES)?;
        let check = record.leases.check_proof(
            msg.shard,
            &msg.worker,
            msg.proved_at_ms,
            ctx.now_ms,
            ctx.freshness,
        );
        match check {
            Ok(()) => Ok(NeedsProofCheck { envelope: env }),
            Err(e @ ProofError::ShardOutOfPlan { .. }) => reject(Reason::Proof(e)),
            Err(e) => ignore(Reason::Proof(e)),
        }
    })())
}

/// Validates an `AggregatorHeartbeat` frame.
pub fn validate_aggregator_heartbeat(
    bytes: &[u8],
    ctx: &GossipContext<'_>,
) -> Verdict<SignedEnvelope<AggregatorHeartbeat>> {
    verdict((|| {
        let env = open::<AggregatorHeartbeat>(bytes, ctx)?;
        let msg = env.message();
        let count = msg.capabilities.config_ids.len();
        if count > MAX_HEARTBEAT_CONFIGS {
            return reject(Reason::TooManyConfigs {
                count,
                limit: MAX_HEARTBEAT_CONFIGS,
            });
        }
        // A heartbeat says "a candidate now": a replayed one (catch-up) is as stale as it is
        // old, so it is judged as live gossip whatever its path.
        fresh(
            msg.sent_at_ms,
            &GossipContext {
                freshness: Freshness::Live,
                ..*ctx
            },
        )?;
        Ok(env)
    })())
}

/// Validates a `JobSettled` frame by the rules; the settlement proof is left to the caller.
pub fn validate_job_settled(
    bytes: &[u8],
    ctx: &GossipContext<'_>,
) -> Verdict<NeedsProofCheck<JobSettled>> {
    verdict((|| {
        let env = open::<JobSettled>(bytes, ctx)?;
        let msg = env.message();
        let record = open_job(ctx, &msg.job)?;
        config(record.manifest.config_id(), msg.config_id)?;
        field_size(
            "settlement",
            msg.settlement.len(),
            limits::MAX_SETTLEMENT_BYTES,
        )?;
        let total = record.plan.shard_count();
        for index in 0..(total as usize).max(msg.credits.len()) {
            let expected = u32::try_from(index).unwrap_or(u32::MAX);
            let found = msg.credits.get(index).map_or(u32::MAX, |c| c.shard);
            if found != expected || expected >= total {
                return reject(Reason::Credits {
                    index,
                    expected,
                    found,
                    total,
                });
            }
        }
        if let Some(result) = &msg.result {
            let (m, _, n) = record.manifest.dims();
            let (rows, cols) = (m as usize, n as usize);
            if (result.rows(), result.cols()) != (rows, cols) {
                return reject(Reason::Dimensions {
                    what: "result",
                    rows,
                    cols,
                    found_rows: result.rows(),
                    found_cols: result.cols(),
                });
            }
            if result_hash(result) != msg.result_hash {
                return reject(Reason::ResultHash);
            }
        }
        // A replayed settlement (catch-up) is judged at its own settle time once its proofs
        // are verified, because the takeover turns count from its proofs' times
        // ([`check_settlement_turn`]). Both kinds are verified in full.
        if ctx.freshness == Freshness::Live && !may_finish(record, &env.signer(), ctx) {
            return ignore(Reason::NotElected {
                signer: env.signer(),
            });
        }
        fresh(msg.settled_at_ms, ctx)?;
        Ok(NeedsProofCheck { envelope: env })
    })())
}

/// Validates a `JobFailed` frame: a report from one of the first ranks of the job's
/// aggregator candidates, one report of a quorum. No single key's report is final, the entry
/// peer's neither: anyone may announce a round of known content as its entry.
pub fn validate_job_failed(
    bytes: &[u8],
    ctx: &GossipContext<'_>,
) -> Verdict<SignedEnvelope<JobFailed>> {
    verdict((|| {
        let env = open::<JobFailed>(bytes, ctx)?;
        let msg = env.message();
        let record = open_job(ctx, &msg.job)?;
        let len = msg.reason.detail_len();
        if len > limits::MAX_REASON_BYTES {
            return reject(Reason::FieldSize {
                what: "failure reason",
                len,
                limit: limits::MAX_REASON_BYTES,
            });
        }
        let signer = env.signer();
        // A report counts towards the failure quorum only from the first ranks of the
        // candidates the job's manifest names; the node makes the job failed once a quorum
        // reported it (see `election::failure_is_final`). A job that names no candidates
        // cannot fail (candidate views differ between peers, and a failure carries no
        // proof): it expires.
        if record.manifest.aggregators.is_empty()
            || !may_report_failure(&record.manifest.job, &job_candidates(record, ctx), &signer)
        {
            return ignore(Reason::NotElected { signer });
        }
        if msg.failed_at_ms < record.manifest.created_ms {
            return ignore(Reason::Clock {
                at_ms: msg.failed_at_ms,
                now_ms: ctx.now_ms,
                max_skew_ms: ctx.max_skew_ms,
            });
        }
        fresh(msg.failed_at_ms, ctx)?;
        Ok(env)
    })())
}

/// One shard of a settlement whose proofs are verified: the worker it credits and when that
/// worker's signed `ShardProved` says it proved the shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettledShard {
    /// The shard.
    pub shard: u32,
    /// The credited worker.
    pub worker: PeerKey,
    /// Its proof time.
    pub proved_at_ms: u64,
}

/// The credit rule a settlement passes once its proofs are verified, judged against this
/// peer's own record of the job (call it with the current record, on the node's task): every
/// credited worker held an accepted lease on its shard that began no later than its proof
/// (see [`crate::lease::LeaseBook::check_credits`], which adds the settlement's proofs to this
/// peer's view first, so a late joiner that saw the claims but not the proofs judges as the
/// others do, and lets a settlement credit either of two valid racing proofs).
///
/// Failing it is [`Verdict::Ignore`], as for a gossiped proof that fails the lease rules: a
/// peer that missed claims may judge a correct settlement differently, so the aggregator is
/// not penalised; nothing is credited. Without it, a Sybil that re-proves every shard can
/// settle crediting itself, and every proof in its settlement verifies.
pub fn check_settled_credits(record: &JobRecord, shards: &[SettledShard]) -> Verdict<()> {
    let credits: Vec<(u32, PeerKey, u64)> = shards
        .iter()
        .map(|s| (s.shard, s.worker, s.proved_at_ms))
        .collect();
    match record.leases.check_credits(&credits) {
        Ok(()) => Verdict::Accept(()),
        Err(e) => Verdict::Ignore(Reason::Proof(e)),
    }
}

/// The election rule for a replayed (catch-up) settlement, judged at its own settle time once
/// its proofs are verified: its signer's turn had come at `settled_at_ms` among the
/// candidates for the job (the signer counted), with the takeover turns counted from the
/// settlement's own last proof; it was made after that proof and before the job expired.
///
/// A live settlement is judged at arrival ([`validate_job_settled`]); without this rule any
/// peer answering catch-up could settle a job in its own name with honest proofs. Failing it
/// is [`Verdict::Ignore`] (candidate views differ between peers).
pub fn check_settlement_turn(
    record: &JobRecord,
    signer: &PeerKey,
    settled_at_ms: u64,
    shards: &[SettledShard],
    ctx: &GossipContext<'_>,
) -> Verdict<()> {
    verdict((|| {
        let manifest = &record.manifest;
        let last = shards
            .iter()
            .map(|s| s.proved_at_ms)
            .max()
            .unwrap_or(manifest.created_ms);
        let expires = manifest.deadline_ms.saturating_add(ctx.settle.grace_ms);
        // Proof times are the workers' clocks, the settle time the aggregator's: allow skew.
        if settled_at_ms.saturating_add(ctx.max_skew_ms) < last || settled_at_ms >= expires {
            return ignore(Reason::Clock {
                at_ms: settled_at_ms,
                now_ms: ctx.now_ms,
                max_skew_ms: ctx.max_skew_ms,
            });
        }
        let candidates = job_candidates(record, ctx);
        let settle_deadline = last
            .saturating_add(ctx.settle.step_ms)
            .min(manifest.deadline_ms);
        if !may_settle(
            &manifest.job,
            &candidates,
            signer,
            settle_deadline,
            ctx.settle.step_ms,
            settled_at_ms,
        ) {
            return ignore(Reason::NotElected { signer: *signer });
        }
        Ok(())
    })())
}

/// Any gossip message accepted by the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptedGossip {
    /// A new job.
    JobAnnounced(SignedEnvelope<JobAnnounced>),
    /// A winning claim.
    ShardClaimed(SignedEnvelope<ShardClaimed>),
    /// A shard proof awaiting verification.
    ShardProved(NeedsProofCheck<ShardProved>),
    /// An aggregator heartbeat.
    AggregatorHeartbeat(SignedEnvelope<AggregatorHeartbeat>),
    /// A settlement awaiting verification.
    JobSettled(NeedsProofCheck<JobSettled>),
    /// A failure report.
    JobFailed(SignedEnvelope<JobFailed>),
}

/// Validates a gossip frame of any kind (e.g. a catch-up frame), dispatching on its kind byte.
pub fn validate_any(bytes: &[u8], ctx: &GossipContext<'_>) -> Verdict<AcceptedGossip> {
    let kind = match crate::codec::decode_header(bytes) {
        Ok((kind, _)) => kind,
        Err(e @ CodecError::UnsupportedVersion { .. }) => {
            return Verdict::Ignore(Reason::Envelope(EnvelopeError::Frame(e)))
        }
        Err(e) => return Verdict::Reject(Reason::Envelope(EnvelopeError::Frame(e))),
    };
    use crate::codec::MessageKind as K;
    match kind {
        K::JobAnnounced => validate_job_announced(bytes, ctx).map(AcceptedGossip::JobAnnounced),
        K::ShardClaimed => validate_shard_claimed(bytes, ctx).map(AcceptedGossip::ShardClaimed),
        K::ShardProved => validate_shard_proved(bytes, ctx).map(AcceptedGossip::ShardProved),
        K::AggregatorHeartbeat => {
            validate_aggregator_heartbeat(bytes, ctx).map(AcceptedGossip::AggregatorHeartbeat)
        }
        K::JobSettled => validate_job_settled(bytes, ctx).map(AcceptedGossip::JobSettled),
        K::JobFailed => validate_job_failed(bytes, ctx).map(AcceptedGossip::JobFailed),
        other => Verdict::Reject(Reason::Envelope(EnvelopeError::Frame(
            CodecError::UnexpectedKind {
                context: "gossip message",
                found: other,
            },
        ))),
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
