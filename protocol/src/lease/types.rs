//! The vocabulary of the lease rules: rules, claims, leases, shard states and errors.

use crate::ids::PeerKey;
use crate::messages::ShardClaimed;

/// Tunable lease rules; every peer of a network must use the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRules {
    /// Largest allowed difference between a live message's timestamp and local time.
    pub max_skew_ms: u64,
    /// Shortest lease.
    pub min_lease_ms: u64,
    /// Longest lease.
    pub max_lease_ms: u64,
    /// Most live leases (primary + backup) one peer may hold in one job.
    pub max_leases_per_peer: u32,
    /// Backup claims are allowed in this last percentage of `[created, deadline]`.
    pub backup_window_percent: u8,
    /// … or when the primary lease ends within this many ms.
    pub near_expiry_ms: u64,
    /// Most live backup leases per shard.
    pub max_backups_per_shard: u32,
    /// Most claims stored per shard (spam bound).
    pub max_claims_per_shard: usize,
    /// Most claims stored per shard from one claimer (spam bound).
    pub max_claims_per_claimer: usize,
}

impl Default for LeaseRules {
    fn default() -> Self {
        Self {
            max_skew_ms: 30_000,
            min_lease_ms: 1_000,
            max_lease_ms: 10 * 60_000,
            max_leases_per_peer: 4,
            backup_window_percent: 20,
            near_expiry_ms: 10_000,
            max_backups_per_shard: 1,
            max_claims_per_shard: 32,
            max_claims_per_claimer: 4,
        }
    }
}

/// How a timestamp is checked against local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Fresh gossip: within `max_skew_ms` of now, either way.
    Live,
    /// Replayed state (catch-up): any time in the past, not beyond now + skew.
    Replayed,
}

/// A claim as the lease rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Claim {
    /// Shard index.
    pub shard: u32,
    /// Claimer.
    pub claimer: PeerKey,
    /// When it was made (unix ms).
    pub claimed_at_ms: u64,
    /// When its lease ends (unix ms).
    pub lease_expires_ms: u64,
    /// A backup claim.
    pub backup: bool,
}

impl From<&ShardClaimed> for Claim {
    fn from(m: &ShardClaimed) -> Self {
        Self {
            shard: m.shard,
            claimer: m.claimer,
            claimed_at_ms: m.claimed_at_ms,
            lease_expires_ms: m.lease_expires_ms,
            backup: m.backup,
        }
    }
}

/// An accepted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    /// Holder.
    pub holder: PeerKey,
    /// Start (the claim's timestamp).
    pub start_ms: u64,
    /// End: lease expiry, or the proof time if the shard was proved earlier.
    pub end_ms: u64,
    /// A backup lease.
    pub backup: bool,
}

impl Lease {
    /// Whether the lease is live at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.start_ms <= now_ms && now_ms < self.end_ms
    }
}

/// A shard's state at some time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardState {
    /// Nobody holds a live primary lease (live backups may exist); a primary claim can win.
    Open,
    /// A live primary lease, plus any live backups.
    Held {
        /// The primary lease.
        primary: Lease,
        /// Live backup leases.
        backups: Vec<Lease>,
    },
    /// Proved; final.
    Proved {
        /// The credited worker.
        worker: PeerKey,
        /// The proof's timestamp.
        proved_at_ms: u64,
    },
}

/// Why a well-formed claim lost in resolution (a normal race; the message is ignored, not
/// penalised).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Conflict {
    /// The shard was proved before the claim.
    #[error("shard {shard} was already proved")]
    AlreadyProved {
        /// Shard.
        shard: u32,
    },
    /// Someone held the shard.
    #[error("shard {shard} is held by {holder} until {until_ms}")]
    Held {
        /// Shard.
        shard: u32,
        /// Holder.
        holder: PeerKey,
        /// Lease end.
        until_ms: u64,
    },
    /// The claimer held too many leases.
    #[error("{claimer} already holds {active} leases in this job (max {max})")]
    AtCapacity {
        /// Claimer.
        claimer: PeerKey,
        /// Leases it held.
        active: u32,
        /// The limit.
        max: u32,
    },
    /// A backup claim before its window.
    #[error("backup claim on shard {shard} before the window opens at {opens_ms}")]
    BackupTooEarly {
        /// Shard.
        shard: u32,
        /// Earliest time a backup could win.
        opens_ms: u64,
    },
    /// A backup claim on a shard nobody holds (claim it as primary instead).
    #[error("backup claim on shard {shard}, which nobody holds")]
    NothingToBackUp {
        /// Shard.
        shard: u32,
    },
    /// The claimer already holds a live lease on this shard.
    #[error("{claimer} already holds a lease on shard {shard}")]
    AlreadyHolds {
        /// Shard.
        shard: u32,
        /// Claimer.
        claimer: PeerKey,
    },
    /// All backup slots were taken.
    #[error("shard {shard} already has {max} backup leases")]
    BackupsFull {
        /// Shard.
        shard: u32,
        /// The limit.
        max: u32,
    },
    /// The claimer let an earlier lease on this shard lapse without a proof: it may not hold
    /// the shard again (a peer that claims and never proves cannot keep a shard from others).
    #[error("{claimer} let an earlier lease on shard {shard} lapse without a proof")]
    Lapsed {
        /// Shard.
        shard: u32,
        /// Claimer.
        claimer: PeerKey,
    },
    /// A replayed (catch-up) claim dated before leases already judged here would take one of
    /// them away: replayed state may fill gaps, never overturn what this peer already judged.
    #[error("replayed claim would overturn {holder}'s judged lease on shard {shard}")]
    Overturns {
        /// The shard whose lease would change hands.
        shard: u32,
        /// The holder that would lose it.
        holder: PeerKey,
    },
}

/// Why a claim is refused before resolution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// The shard is not in the plan (malformed: penalise).
    #[error("shard {shard} is not in the plan ({count} shards)")]
    ShardOutOfPlan {
        /// Shard.
        shard: u32,
        /// Shards in the plan.
        count: u32,
    },
    /// The lease is shorter than allowed (malformed: penalise).
    #[error("lease of {duration_ms} ms is shorter than the minimum {min_ms} ms")]
    LeaseTooShort {
        /// Lease length (0 if it ends before it starts).
        duration_ms: u64,
        /// Minimum.
        min_ms: u64,
    },
    /// The lease is longer than allowed (malformed: penalise).
    #[error("lease of {duration_ms} ms is longer than the maximum {max_ms} ms")]
    LeaseTooLong {
        /// Lease length.
        duration_ms: u64,
        /// Maximum.
        max_ms: u64,
    },
    /// The lease runs past the job's deadline (malformed: penalise).
    #[error("lease ends at {expires_ms}, after the job deadline {deadline_ms}")]
    PastDeadline {
        /// Lease end.
        expires_ms: u64,
        /// Job deadline.
        deadline_ms: u64,
    },
    /// The timestamp is too far from local time.
    #[error("timestamp {at_ms} is too far from local time {now_ms} (max skew {max_skew_ms} ms)")]
    ClockSkew {
        /// The message's timestamp.
        at_ms: u64,
        /// Local time.
        now_ms: u64,
        /// Allowed skew.
        max_skew_ms: u64,
    },
    /// The claim predates the job.
    #[error("claim at {at_ms} predates the job (created {created_ms})")]
    BeforeJob {
        /// Claim time.
        at_ms: u64,
        /// Job creation time.
        created_ms: u64,
    },
    /// Too many claims stored for this shard or claimer.
    #[error("too many claims stored for shard {shard}")]
    TooManyClaims {
        /// Shard.
        shard: u32,
    },
    /// Exactly this claim is already known.
    #[error("duplicate claim")]
    Duplicate,
}

impl ClaimError {
    /// Whether the sender should be penalised (the claim is malformed, not merely late or
    /// redundant).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Self::ShardOutOfPlan { .. }
                | Self::LeaseTooShort { .. }
                | Self::LeaseTooLong { .. }
                | Self::PastDeadline { .. }
        )
    }
}

/// What happened to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// It won: the claimer holds the lease (primary or backup).
    Won {
        /// Whether it is a backup lease.
        backup: bool,
    },
    /// It lost to another claim or rule.
    Lost(Conflict),
}

/// Why a proof cannot be credited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The shard is not in the plan (malformed: penalise).
    #[error("shard {shard} is not in the plan ({count} shards)")]
    ShardOutOfPlan {
        /// Shard.
        shard: u32,
        /// Shards in the plan.
        count: u32,
    },
    /// Another proof was recorded first; proofs are final.
    #[error("shard {shard} is already proved by {worker}")]
    AlreadyProved {
        /// Shard.
        shard: u32,
        /// Credited worker.
        worker: PeerKey,
    },
    /// The worker never won a lease on the shard before `proved_at`.
    #[error("{worker} has no lease on shard {shard} before its proof")]
    NotClaimed {
        /// Shard.
        shard: u32,
        /// Worker.
        worker: PeerKey,
    },
    /// A settlement's proofs, added to this peer's view, would take a lease from its holder.
    #[error("the settled proofs would take {holder}'s lease on shard {shard}")]
    TakesLease {
        /// The shard.
        shard: u32,
        /// The holder that would lose it.
        holder: PeerKey,
    },
    /// The timestamp is too far from local time.
    #[error("proof timestamp {at_ms} too far from local time {now_ms}")]
    ClockSkew {
        /// Proof time.
        at_ms: u64,
        /// Local time.
        now_ms: u64,
    },
}
