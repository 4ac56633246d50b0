//! Job status: the in-progress and terminal states of a job, and the per-job record a peer
//! keeps (manifest, plan, leases, outcome) from which the status is derived.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{write_hex, PeerKey};
use crate::job::JobLimits;
use crate::lease::{LeaseBook, LeaseRules};
use crate::manifest::{Manifest, ManifestError};
use crate::messages::{FailureReason, StatusReport};
use crate::plan::ShardPlan;

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    /// Announced; no shard leased or proved yet.
    Announced,
    /// Workers are proving shards.
    Proving {
        /// Shards proved.
        proved: u32,
        /// Shards with a live lease.
        leased: u32,
        /// Shards in the plan.
        total: u32,
    },
    /// Every shard is proved; waiting for the aggregator.
    Aggregating {
        /// Shards in the plan.
        total: u32,
    },
    /// Terminal: settled with this result.
    Settled {
        /// Hash of Y (see [`crate::messages::result_hash`]).
        result_hash: [u8; 32],
    },
    /// Terminal: failed.
    Failed {
        /// Why.
        reason: FailureReason,
    },
    /// Terminal: not settled by the deadline plus grace.
    Expired,
}

impl JobStatus {
    /// Whether the job is over.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Settled { .. } | Self::Failed { .. } | Self::Expired
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Announced => f.write_str("announced, waiting for workers"),
            Self::Proving {
                proved,
                leased,
                total,
            } => write!(
                f,
                "proving: {proved}/{total} shards proved, {leased} leased"
            ),
            Self::Aggregating { total } => {
                write!(
                    f,
                    "aggregating: all {total} shards proved, waiting for the aggregator"
                )
            }
            Self::Settled { result_hash } => {
                f.write_str("settled (result ")?;
                write_hex(f, &result_hash[..8])?;
                f.write_str("…)")
            }
            Self::Failed { reason } => write!(f, "failed: {reason}"),
            Self::Expired => f.write_str("expired: the deadline passed before settlement"),
        }
    }
}

/// Timing of settlement: the first-ranked aggregator has `step_ms` after the last shard proof
/// (or until the job deadline, whichever is first), then the next takes over every `step_ms`;
/// the job expires `grace_ms` after its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlePolicy {
    /// How long each fallback aggregator gets.
    pub step_ms: u64,
    /// How long after the deadline an unsettled job expires.
    pub grace_ms: u64,
}

impl Default for SettlePolicy {
    fn default() -> Self {
        Self {
            step_ms: 30_000,
            grace_ms: 90_000,
        }
    }
}

/// How a job ended (as learnt from `JobSettled` or `JobFailed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Settled.
    Settled {
        /// Hash of Y.
        result_hash: [u8; 32],
        /// The aggregator.
        aggregator: PeerKey,
    },
    /// Failed.
    Failed {
        /// Why.
        reason: FailureReason,
    },
}

/// What a peer knows about one job.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// The validated manifest.
    pub manifest: Manifest,
    /// Its shard plan.
    pub plan: ShardPlan,
    /// Claims, leases and proofs.
    pub leases: LeaseBook,
    /// How it ended, once it has.
    pub outcome: Option<Outcome>,
}

impl JobRecord {
    /// Validates the manifest and starts an empty record.
    pub fn new(
        manifest: Manifest,
        limits: &JobLimits,
        rules: LeaseRules,
    ) -> Result<Self, ManifestError> {
        let plan = manifest.validate(limits)?;
        let leases = LeaseBook::for_manifest(&manifest, &plan, rules);
        Ok(Self {
            manifest,
            plan,
            leases,
            outcome: None,
        })
    }

    /// When the first-ranked aggregator's turn ends: `step_ms` after the latest credited shard
    /// proof once every shard is proved (proof times are signed by their workers, so every peer
    /// that credited the same proofs computes the same instant), and never later than the job
    /// deadline.
    pub fn settle_deadline_ms(&self, policy: &SettlePolicy) -> u64 {
        let deadline = self.manifest.deadline_ms;
        if !self.leases.all_proved() {
            return deadline;
        }
        let last = (0..self.plan.shard_count())
            .filter_map(|s| self.leases.proof_of(s).map(|(_, at)| at))
            .max()
            .unwrap_or(self.manifest.created_ms);
        last.saturating_add(policy.step_ms).min(deadline)
    }

    /// The terminal status at `now_ms`, if the job is over (cheap: no shard scan).
    pub fn terminal_status(&self, now_ms: u64, policy: &SettlePolicy) -> Option<JobStatus> {
        match &self.outcome {
            Some(Outcome::Settled { result_hash, .. }) => Some(JobStatus::Settled {
                result_hash: *result_hash,
            }),
            Some(Outcome::Failed { reason }) => Some(JobStatus::Failed {
                reason: reason.clone(),
            }),
            None => (now_ms >= self.manifest.deadline_ms.saturating_add(policy.grace_ms))
                .then_some(JobStatus::Expired),
        }
    }

    /// The status at `now_ms`.
    pub fn status(&self, now_ms: u64, policy: &SettlePolicy) -> JobStatus {
        if let Some(terminal) = self.terminal_status(now_ms, policy) {
            return terminal;
        }
        let total = self.plan.shard_count();
        let proved = self.leases.proved_count();
        if proved == total {
            return JobStatus::Aggregating { total };
        }
        let leased = self.leases.leased_count(now_ms);
        if proved == 0 && leased == 0 {
            JobStatus::Announced
        } else {
            JobStatus::Proving {
                proved,
                leased,
                total,
            }
        }
    }

    /// The status report served to `JobStatus` requests.
    pub fn report(&self, now_ms: u64, policy: &SettlePolicy) -> StatusReport {
        StatusReport {
            job: self.manifest.job,
            status: self.status(now_ms, policy),
            deadline_ms: self.manifest.deadline_ms,
            shards_total: self.plan.shard_count(),
            shards_proved: self.leases.proved_count(),
            shards_leased: self.leases.leased_count(now_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::{Claim, Freshness};
    use crate::testutil::seed_manifest;

    #[test]
    fn display_is_human_readable() {
        let proving = JobStatus::Proving {
            proved: 2,
            leased: 1,
            total: 4,
        };
        assert_eq!(proving.to_string(), "proving: 2/4 shards proved, 1 leased");
        let failed = JobStatus::Failed {
            reason: FailureReason::Unprovable {
                detail: "accumulator may wrap".into(),
            },
        };
        assert_eq!(
            failed.to_string(),
            "failed: cannot be proven exactly: accumulator may wrap"
        );
        let settled = JobStatus::Settled {
            result_hash: [0xab; 32],
        };
        assert_eq!(settled.to_string(), "settled (result abababababababab…)");
        assert!(settled.is_terminal() && failed.is_terminal() && JobStatus::Expired.is_terminal());
        assert!(!proving.is_terminal());
    }

    #[test]
    fn status_follows_the_job() {
        let manifest = seed_manifest(PeerKey([1; 32]));
        let policy = SettlePolicy::default();
        let mut record = JobRecord::new(
            manifest.clone(),
            &JobLimits::default(),
            LeaseRules::default(),
        )
        .unwrap();
        let t0 = manifest.created_ms;
        assert_eq!(record.status(t0, &policy), JobStatus::Announced);
        let worker = PeerKey([2; 32]);
        for shard in 0..record.plan.shard_count() {
            let claim = Claim {
                shard,
                claimer: worker,
                claimed_at_ms: t0 + 10,
                lease_expires_ms: t0 + 10_000,
                backup: false,
            };
            let rules = LeaseRules {
                max_leases_per_peer: 100,
                ..LeaseRules::default()
            };
            record.leases = if shard == 0 {
                LeaseBook::for_manifest(&manifest, &record.plan, rules)
            } else {
                record.leases
            };
            record
                .leases
                .insert_claim(claim, t0 + 10, Freshness::Live)
                .unwrap();
        }
        assert!(matches!(
            record.status(t0 + 20, &policy),
            JobStatus::Proving { proved: 0, .. }
        ));
        assert_eq!(record.settle_deadline_ms(&policy), manifest.deadline_ms);
        for shard in 0..record.plan.shard_count() {
            record
                .leases
                .record_proof(shard, worker, t0 + 100, t0 + 100, Freshness::Live)
                .unwrap();
        }
        assert!(matches!(
            record.status(t0 + 200, &policy),
            JobStatus::Aggregating { .. }
        ));
        assert_eq!(
            record.settle_deadline_ms(&policy),
            t0 + 100 + policy.step_ms
        );
        let late = manifest.deadline_ms + policy.grace_ms;
        assert_eq!(record.status(late, &policy), JobStatus::Expired);
        record.outcome = Some(Outcome::Settled {
            result_hash: [1; 32],
            aggregator: worker,
        });
        assert!(record.status(late, &policy).is_terminal());
        assert_eq!(record.report(late, &policy).shards_proved, 4);
    }
}
