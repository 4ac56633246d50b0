//! Claim and lease rules: who holds which shard of a job, and when.
//!
//! # The rule
//!
//! Every claim carries its own timestamp `claimed_at` and lease end. A [`LeaseBook`] keeps the
//! set of claims it has seen for one job and resolves them by a **sweep in claim order**:
//! claims sorted by `(claimed_at, rank, …)` where `rank = blake3::derive_key("starkscale/1
//! claim rank", job ‖ shard u32 LE ‖ claimer)`; each claim is judged against the claims accepted
//! before it:
//!
//! - a primary claim wins iff, at its `claimed_at`, the shard is not proved, nobody holds a
//!   live primary lease on it, and the claimer holds fewer than `max_leases_per_peer` live
//!   leases in this job;
//! - a backup claim (speculative second worker) wins iff someone *else* holds a live primary
//!   lease, the backup slots are not full, the claimer has capacity, and either the claim falls
//!   in the last `backup_window_percent` of `[created, deadline]` or the primary lease ends
//!   within `near_expiry_ms`;
//! - a lease lives from `claimed_at` until `lease_expires` or until the shard is proved,
//!   whichever is first. A lease that expires without a proof reopens the shard, and its
//!   holder may not win that shard again (so a peer that claims and never proves delays each
//!   shard by at most one lease).
//!
//! The result is a function of the *set* of claims, so every peer that saw the same claims
//! computes the same holders whatever the arrival order. Arrival time matters only through the
//! freshness check (`|claimed_at − now| ≤ max_skew_ms` for live gossip) and the storage caps
//! (per shard and per claimer), which only bite under spam.
//!
//! Proofs are final: the first verified proof recorded for a shard is kept (its worker must hold
//! or have held an accepted lease on the shard that began no later than `proved_at`). If two
//! valid proofs race, peers may credit different workers locally; the aggregator's settlement
//! fixes the credits network-wide.

use std::collections::BTreeMap;

use crate::ids::{JobId, PeerKey};
use crate::manifest::Manifest;
use crate::messages::ShardCredit;
use crate::plan::ShardPlan;

mod types;

pub use types::{
    Claim, ClaimError, ClaimOutcome, Conflict, Freshness, Lease, LeaseRules, ProofError, ShardState,
};

/// Total order of claims in the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct ClaimKey {
    at: u64,
    rank: [u8; 32],
    shard: u32,
    claimer: PeerKey,
    backup: bool,
    expires: u64,
}

/// The resolved state after sweeping claims up to `last`.
#[derive(Debug, Clone, Default)]
struct Sweep {
    last: Option<ClaimKey>,
    outcomes: BTreeMap<ClaimKey, Option<Conflict>>,
    /// Accepted leases per shard, in start order.
    leases: BTreeMap<u32, Vec<Lease>>,
    /// Per holder, `(shard, index into leases[shard])` of leases that may still be live at the
    /// sweep time (pruned as the holder claims again), for O(capacity) capacity checks.
    active: BTreeMap<PeerKey, Vec<(u32, usize)>>,
}

impl Sweep {
    fn lease(&self, shard: u32, index: usize) -> Option<&Lease> {
        self.leases.get(&shard).and_then(|ls| ls.get(index))
    }

    /// Live leases of `holder` at `t` (t not before the sweep time).
    fn active_count(&self, holder: &PeerKey, t: u64) -> usize {
        self.active.get(holder).map_or(0, |entries| {
            entries
                .iter()
                .filter(|(s, i)| self.lease(*s, *i).is_some_and(|l| l.is_live(t)))
                .count()
        })
    }
}

/// The claims, leases and proofs of one job.
#[derive(Debug, Clone)]
pub struct LeaseBook {
    job: JobId,
    shard_count: u32,
    created_ms: u64,
    deadline_ms: u64,
    rules: LeaseRules,
    claims: BTreeMap<ClaimKey, Claim>,
    /// Stored claims per shard, and per (shard, claimer): the spam caps.
    per_shard: BTreeMap<u32, usize>,
    per_claimer: BTreeMap<(u32, PeerKey), usize>,
    proofs: BTreeMap<u32, (PeerKey, u64)>,
    /// Claims this peer learnt by catch-up only (never as live gossip).
    replayed: std::collections::BTreeSet<ClaimKey>,
    sweep: Sweep,
}

/// The sweep-order rank of a claimer for a shard.
pub fn claim_rank(job: &JobId, shard: u32, claimer: &PeerKey) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("starkscale/1 claim rank");
    hasher.update(job.as_bytes());
    hasher.update(&shard.to_le_bytes());
    hasher.update(claimer.as_bytes());
    *hasher.finalize().as_bytes()
}

/// Checks a timestamp against local time.
pub fn check_fresh(
    at_ms: u64,
    now_ms: u64,
    max_skew_ms: u64,
    freshness: Freshness,
) -> Result<(), ClaimError> {
    let too_new = at_ms > now_ms.saturating_add(max_skew_ms);
    let too_old = freshness == Freshness::Live && at_ms < now_ms.saturating_sub(max_skew_ms);
    if too_new || too_old {
        return Err(ClaimError::ClockSkew {
            at_ms,
            now_ms,
            max_skew_ms,
        });
    }
    Ok(())
}

impl LeaseBook {
    /// An empty book for a job with `shard_count` shards.
    pub fn new(
        job: JobId,
        shard_count: u32,
        created_ms: u64,
        deadline_ms: u64,
        rules: LeaseRules,
    ) -> Self {
        Self {
            job,
            shard_count,
            created_ms,
            deadline_ms,
            rules,
            claims: BTreeMap::new(),
            per_shard: BTreeMap::new(),
            per_claimer: BTreeMap::new(),
            proofs: BTreeMap::new(),
            replayed: Default::default(),
            sweep: Sweep::default(),
        }
    }

    /// An empty book for a validated manifest and its plan.
    pub fn for_manifest(manifest: &Manifest, plan: &ShardPlan, rules: LeaseRules) -> Self {
        Self::new(
            manifest.job,
            plan.shard_count(),
            manifest.created_ms,
            manifest.deadline_ms,
            rules,
        )
    }

    /// The rules in force.
    pub fn rules(&self) -> &LeaseRules {
        &self.rules
    }

    /// Shards in the plan.
    pub fn shard_count(&self) -> u32 {
        self.shard_count
    }

    /// When backup claims open regardless of lease expiry: the start of the last
    /// `backup_window_percent` of `[created, deadline]`.
    pub fn backup_window_start_ms(&self) -> u64 {
        let span = self.deadline_ms.saturating_sub(self.created_ms);
        let pct = u64::from(self.rules.backup_window_percent.min(100));
        self.deadline_ms - span / 100 * pct - span % 100 * pct / 100
    }

    /// A claim for `shard` by `claimer` at `now_ms`, with a lease of `lease_ms` clamped to the
    /// rules and the deadline.
    pub fn new_claim(
        &self,
        shard: u32,
        claimer: PeerKey,
        now_ms: u64,
        lease_ms: u64,
        backup: bool,
    ) -> Claim {
        let lease = lease_ms.clamp(self.rules.min_lease_ms, self.rules.max_lease_ms);
        Claim {
            shard,
            claimer,
            claimed_at_ms: now_ms,
            lease_expires_ms: now_ms.saturating_add(lease).min(self.deadline_ms),
            backup,
        }
    }

    fn key(&self, claim: &Claim) -> ClaimKey {
        ClaimKey {
            at: claim.claimed_at_ms,
            rank: claim_rank(&self.job, claim.shard, &claim.claimer),
            shard: claim.shard,
            claimer: claim.claimer,
            backup: claim.backup,
            expires: claim.lease_expires_ms,
        }
    }

    /// Checks that do not depend on other claims.
    fn check_static(
        &self,
        claim: &Claim,
        now_ms: u64,
        freshness: Freshness,
    ) -> Result<(), ClaimError> {
        let rules = &self.rules;
        if claim.shard >= self.shard_count {
            return Err(ClaimError::ShardOutOfPlan {
                shard: claim.shard,
                count: self.shard_count,
            });
        }
        let duration_ms = claim.lease_expires_ms.saturating_sub(claim.claimed_at_ms);
        if duration_ms < rules.min_lease_ms.max(1) {
            return Err(ClaimError::LeaseTooShort {
                duration_ms,
                min_ms: rules.min_lease_ms,
            });
        }
        if duration_ms > rules.max_lease_ms {
            return Err(ClaimError::LeaseTooLong {
                duration_ms,
                max_ms: rules.max_lease_ms,
            });
        }
        if claim.lease_expires_ms > self.deadline_ms {
            return Err(ClaimError::PastDeadline {
                expires_ms: claim.lease_expires_ms,
                deadline_ms: self.deadline_ms,
            });
        }
        if claim.claimed_at_ms < self.created_ms.saturating_sub(rules.max_skew_ms) {
            return Err(ClaimError::BeforeJob {
                at_ms: claim.claimed_at_ms,
                created_ms: self.created_ms,
            });
        }
        check_fresh(claim.claimed_at_ms, now_ms, rules.max_skew_ms, freshness)?;
        let key = self.key(claim);
        if self.claims.contains_key(&key) {
            return Err(ClaimError::Duplicate);
        }
        let total = self.per_shard.get(&claim.shard).copied().unwrap_or(0);
        let mine = self
            .per_claimer
            .get(&(claim.shard, claim.claimer))
            .copied()
            .unwrap_or(0);
        if total >= rules.max_claims_per_shard || mine >= rules.max_claims_per_claimer {
            return Err(ClaimError::TooManyClaims { shard: claim.shard });
        }
        Ok(())
    }

    /// Judges a claim against the sweep state (all earlier claims already applied).
    fn evaluate(&self, sweep: &Sweep, claim: &Claim) -> Result<Lease, Conflict> {
        let (shard, t, rules) = (claim.shard, claim.claimed_at_ms, &self.rules);
        let proved_at = self.proofs.get(&shard).map(|(_, at)| *at);
        if proved_at.is_some_and(|p| p <= t) {
            return Err(Conflict::AlreadyProved { shard });
        }
        let empty = Vec::new();
        let leases = sweep.leases.get(&shard).unwrap_or(&empty);
        let live: Vec<&Lease> = leases.iter().filter(|l| l.is_live(t)).collect();
        let primary = live.iter().find(|l| !l.backup);
        if live.iter().any(|l| l.holder == claim.claimer) {
            return Err(Conflict::AlreadyHolds {
                shard,
                claimer: claim.claimer,
            });
        }
        // The shard is not proved at `t`, so a lease of this claimer that ended by then
        // lapsed without a proof.
        if leases
            .iter()
            .any(|l| l.holder == claim.claimer && l.end_ms <= t)
        {
            return Err(Conflict::Lapsed {
                shard,
                claimer: claim.claimer,
            });
        }
        if claim.backup {
            let primary = primary.ok_or(Conflict::NothingToBackUp { shard })?;
            let backups = live.iter().filter(|l| l.backup).count();
            if backups >= rules.max_backups_per_shard as usize {
                return Err(Conflict::BackupsFull {
                    shard,
                    max: rules.max_backups_per_shard,
                });
            }
            let window = self.backup_window_start_ms();
            let near = primary.end_ms.saturating_sub(rules.near_expiry_ms);
            if t < window && t < near {
                return Err(Conflict::BackupTooEarly {
                    shard,
                    opens_ms: window.min(near),
                });
            }
        } else if let Some(p) = primary {
            return Err(Conflict::Held {
                shard,
                holder: p.holder,
                until_ms: p.end_ms,
            });
        }
        let active = u32::try_from(sweep.active_count(&claim.claimer, t)).unwrap_or(u32::MAX);
        if active >= rules.max_leases_per_peer {
            return Err(Conflict::AtCapacity {
                claimer: claim.claimer,
                active,
                max: rules.max_leases_per_peer,
            });
        }
        let end = proved_at.map_or(claim.lease_expires_ms, |p| p.min(claim.lease_expires_ms));
        Ok(Lease {
            holder: claim.claimer,
            start_ms: t,
            end_ms: end,
            backup: claim.backup,
        })
    }

    /// Applies one claim to the sweep.
    fn step(&self, sweep: &mut Sweep, key: ClaimKey, claim: &Claim) {
        let verdict = self.evaluate(sweep, claim);
        match verdict {
            Ok(lease) => {
                let leases = sweep.leases.entry(claim.shard).or_default();
                leases.push(lease);
                let index = leases.len() - 1;
                let t = claim.claimed_at_ms;
                let mut entries = sweep.active.remove(&claim.claimer).unwrap_or_default();
                entries.retain(|(s, i)| sweep.lease(*s, *i).is_some_and(|l| l.end_ms > t));
                entries.push((claim.shard, index));
                sweep.active.insert(claim.claimer, entries);
                sweep.outcomes.insert(key, None);
            }
            Err(conflict) => {
                sweep.outcomes.insert(key, Some(conflict));
            }
        }
        sweep.last = Some(key);
    }

    fn resweep(&mut self) {
        let mut sweep = Sweep::default();
        for (key, claim) in &self.claims {
            self.step(&mut sweep, *key, claim);
        }
        self.sweep = sweep;
    }

    /// What inserting `claim` would do, without inserting it.
    pub fn check_claim(
        &self,
        claim: &Claim,
        now_ms: u64,
        freshness: Freshness,
    ) -> Result<ClaimOutcome, ClaimError> {
        self.check_static(claim, now_ms, freshness)?;
        let key = self.key(claim);
        if self.sweep.last.is_none_or(|last| key > last) {
            // In order: judge against the current state.
            return Ok(match self.evaluate(&self.sweep, claim) {
                Ok(_) => ClaimOutcome::Won {
                    backup: claim.backup,
                },
                Err(c) => ClaimOutcome::Lost(c),
            });
        }
        let mut copy = self.clone();
        Ok(copy.insert_checked(*claim, freshness))
    }

    /// [`Self::check_claim`] for a replayed (catch-up) claim, which must also leave every
    /// claim that wins here winning (see [`Self::overturned_by`]): one copy of the book for
    /// both answers.
    pub fn check_replayed_claim(
        &self,
        claim: &Claim,
        now_ms: u64,
    ) -> Result<ClaimOutcome, ClaimError> {
        self.check_static(claim, now_ms, Freshness::Replayed)?;
        let key = self.key(claim);
        if self.sweep.last.is_none_or(|last| key > last) {
            return self.check_claim(claim, now_ms, Freshness::Replayed);
        }
        let mut copy = self.clone();
        let outcome = copy.insert_checked(*claim, Freshness::Replayed);
        if matches!(outcome, ClaimOutcome::Won { .. }) {
            if let Some(lost) = self.first_lost_in(&copy) {
                return Ok(ClaimOutcome::Lost(Conflict::Overturns {
                    shard: lost.shard,
                    holder: lost.claimer,
                }));
            }
        }
        Ok(outcome)
    }

    /// The first claim that wins in this book and loses in `other`.
    fn first_lost_in(&self, other: &LeaseBook) -> Option<Claim> {
        self.sweep
            .outcomes
            .iter()
            .filter(|(_, outcome)| outcome.is_none())
            .find(|(key, _)| other.sweep.outcomes.get(key).is_some_and(Option::is_some))
            .and_then(|(key, _)| self.claims.get(key).copied())
    }

    /// This book without the claims learnt by catch-up only, or `None` if it has none.
    fn live_view(&self) -> Option<LeaseBook> {
        if self.replayed.is_empty() {
            return None;
        }
        let mut view = self.clone();
        for key in std::mem::take(&mut view.replayed) {
            view.claims.remove(&key);
        }
        view.resweep();
        Some(view)
    }

    /// Records a claim and re-resolves; returns what happened to it.
    pub fn insert_claim(
        &mut self,
        claim: Claim,
        now_ms: u64,
        freshness: Freshness,
    ) -> Result<ClaimOutcome, ClaimError> {
        self.check_static(&claim, now_ms, freshness)?;
        Ok(self.insert_checked(claim, freshness))
    }

    /// Restores a stored claim (any age), remembering whether it was first seen live.
    pub fn restore_claim(
        &mut self,
        claim: Claim,
        now_ms: u64,
        live: bool,
    ) -> Result<ClaimOutcome, ClaimError> {
        let freshness = if live {
            Freshness::Live
        } else {
            Freshness::Replayed
        };
        self.check_static(&claim, now_ms, Freshness::Replayed)?;
        Ok(self.insert_checked(claim, freshness))
    }

    /// Inserts a claim that passed [`Self::check_static`] and re-resolves.
    fn insert_checked(&mut self, claim: Claim, freshness: Freshness) -> ClaimOutcome {
        let key = self.key(&claim);
        if freshness == Freshness::Replayed {
            self.replayed.insert(key);
        }
        self.claims.insert(key, claim);
        *self.per_shard.entry(claim.shard).or_default() += 1;
        *self
            .per_claimer
            .entry((claim.shard, claim.claimer))
            .or_default() += 1;
        if self.sweep.last.is_none_or(|last| key > last) {
            let mut sweep = std::mem::take(&mut self.sweep);
            self.step(&mut sweep, key, &claim);
            self.sweep = sweep;
        } else {
            self.resweep();
        }
        match self.sweep.outcomes.get(&key) {
            Some(Some(conflict)) => ClaimOutcome::Lost(conflict.clone()),
            _ => ClaimOutcome::Won {
                backup: claim.backup,
            },
        }
    }

    /// The first claim that wins now and would lose once `claim` is inserted, if any.
    ///
    /// A replayed (catch-up) claim is dated by its signer alone: one backdated to the job's
    /// creation would win the sweep and take leases from holders this peer already judged
    /// (and with them the credit for their proofs). The node refuses such a replayed claim
    /// ([`Conflict::Overturns`], see [`Self::check_replayed_claim`]); a replayed claim that
    /// only fills a gap in this peer's view is accepted, but kept apart: credits are also
    /// judged on the live claims alone ([`Self::check_credits`]). Live claims need no such
    /// check: their timestamps are within the allowed skew of arrival.
    pub fn overturned_by(&self, claim: &Claim) -> Option<Claim> {
        let key = self.key(claim);
        if self.sweep.last.is_none_or(|last| key > last) || self.claims.contains_key(&key) {
            // In order: judged after every known claim, it cannot change their outcomes.
            return None;
        }
        let mut copy = self.clone();
        copy.insert_checked(*claim, Freshness::Replayed);
        self.first_lost_in(&copy)
    }

    /// The current outcome of a known claim (it may change when earlier claims arrive).
    pub fn outcome_of(&self, claim: &Claim) -> Option<ClaimOutcome> {
        let outcome = self.sweep.outcomes.get(&self.key(claim))?;
        Some(match outcome {
            Some(conflict) => ClaimOutcome::Lost(conflict.clone()),
            None => ClaimOutcome::Won {
                backup: claim.backup,
            },
        })
    }

    /// Whether a verified proof by `worker` for `shard` would be credited.
    pub fn check_proof(
        &self,
        shard: u32,
        worker: &PeerKey,
        proved_at_ms: u64,
        now_ms: u64,
        freshness: Freshness,
    ) -> Result<(), ProofError> {
        if shard >= self.shard_count {
            return Err(ProofError::ShardOutOfPlan {
                shard,
                count: self.shard_count,
            });
        }
        if let Some((credited, _)) = self.proofs.get(&shard) {
            return Err(ProofError::AlreadyProved {
                shard,
                worker: *credited,
            });
        }
        check_fresh(proved_at_ms, now_ms, self.rules.max_skew_ms, freshness).map_err(|_| {
            ProofError::ClockSkew {
                at_ms: proved_at_ms,
                now_ms,
            }
        })?;
        let live_lease = || {
            self.has_live_claim(shard, worker, proved_at_ms)
                && self
                    .live_view()
                    .is_some_and(|live| live.had_lease(shard, worker, proved_at_ms))
        };
        if !self.had_lease(shard, worker, proved_at_ms) && !live_lease() {
            return Err(ProofError::NotClaimed {
                shard,
                worker: *worker,
            });
        }
        Ok(())
    }

    /// Whether `worker` held an accepted lease on `shard` that began no later than `at_ms`.
    fn had_lease(&self, shard: u32, worker: &PeerKey, at_ms: u64) -> bool {
        self.sweep.leases.get(&shard).is_some_and(|leases| {
            leases
                .iter()
                .any(|l| l.holder == *worker && l.start_ms <= at_ms)
        })
    }

    /// [`Self::had_lease`], and the lease was live at `at_ms`, or, if it ended before, no
    /// other holder's lease on the shard began between its end and `at_ms`. For credits this
    /// peer did not see as a live proof: a slow prover whose lease lapsed unchallenged is
    /// still credited, but a key that held a one-second lease at the job's start and let it
    /// lapse is not credited over the worker that won the shard after it.
    fn held_through(&self, shard: u32, worker: &PeerKey, at_ms: u64) -> bool {
        self.sweep.leases.get(&shard).is_some_and(|leases| {
            leases.iter().any(|l| {
                l.holder == *worker
                    && l.start_ms <= at_ms
                    && (at_ms <= l.end_ms
                        || !leases.iter().any(|o| {
                            o.holder != *worker && o.start_ms > l.end_ms && o.start_ms <= at_ms
                        }))
            })
        })
    }

    /// Whether `worker` made a claim on `shard` at or before `at_ms` that this peer saw live
    /// (a cheap test before a live view is built).
    fn has_live_claim(&self, shard: u32, worker: &PeerKey, at_ms: u64) -> bool {
        self.claims.iter().any(|(key, c)| {
            c.shard == shard
                && c.claimer == *worker
                && c.claimed_at_ms <= at_ms
                && !self.replayed.contains(key)
        })
    }

    /// Whether a live claim that loses on all known claims wins on the live claims alone: a
    /// gap-filling catch-up claim (which its source may have invented) must not make this
    /// peer drop the live claim it displaced.
    pub fn wins_on_live_claims(&self, claim: &Claim, now_ms: u64) -> bool {
        let replayed_on_shard = self.replayed.iter().any(|k| k.shard == claim.shard);
        replayed_on_shard
            && self.live_view().is_some_and(|live| {
                matches!(
                    live.check_claim(claim, now_ms, Freshness::Live),
                    Ok(ClaimOutcome::Won { .. })
                )
            })
    }

    /// The credit rule of a settlement whose proofs are all verified: every credited worker
    /// held an accepted lease on its shard that began no later than its proof. It is judged
    /// on this book with the settlement's proofs added for shards this peer has not recorded
    /// (a proof ends its shard's leases and frees its holder's capacity, so a peer that saw
    /// the claims but not the proofs — a late joiner — judges as the others do), and adding
    /// them must not take a lease from anyone who holds it here (a settlement's own early
    /// proof could otherwise free its signer's capacity and win it a shard another worker
    /// won and proved).
    ///
    /// A shard this peer recorded for another worker may still be credited to the settled
    /// one if that worker's lease held too: two valid proofs of one shard can race (a primary
    /// and a backup), peers may have recorded either, and the settlement decides the credit
    /// network-wide. A worker that never held a lease (a Sybil re-proving every shard) fails.
    ///
    /// Claims learnt by catch-up only fill gaps, and a catch-up source may invent them: the
    /// rule passes if it holds on all claims or on the live claims alone.
    pub fn check_credits(&self, credits: &[(u32, PeerKey, u64)]) -> Result<(), ProofError> {
        match self.credits_hold(credits) {
            Ok(()) => Ok(()),
            Err(e) => match self.live_view() {
                Some(live) => live.credits_hold(credits).map_err(|_| e),
                None => Err(e),
            },
        }
    }

    fn credits_hold(&self, credits: &[(u32, PeerKey, u64)]) -> Result<(), ProofError> {
        let mut view = self.clone();
        let mut added = false;
        for (shard, worker, at) in credits {
            if *shard >= self.shard_count {
                return Err(ProofError::ShardOutOfPlan {
                    shard: *shard,
                    count: self.shard_count,
                });
            }
            if !view.proofs.contains_key(shard) {
                view.proofs.insert(*shard, (*worker, *at));
                added = true;
            }
        }
        if added {
            view.resweep();
            // A claim that now loses because the shard was proved before it (by a worker
            // that held a lease on it here) lost to a proof, not to a taken lease.
            let proved_by_holder = |key: &ClaimKey, conflict: &Conflict| {
                matches!(conflict, Conflict::AlreadyProved { .. })
                    && credits.iter().any(|(shard, worker, at)| {
                        *shard == key.shard && self.had_lease(*shard, worker, *at)
                    })
            };
            let lost = self
                .sweep
                .outcomes
                .iter()
                .filter(|(_, outcome)| outcome.is_none())
                .find(|(key, _)| match view.sweep.outcomes.get(key) {
                    Some(Some(conflict)) => !proved_by_holder(key, conflict),
                    _ => false,
                })
                .and_then(|(key, _)| self.claims.get(key));
            if let Some(lost) = lost {
                return Err(ProofError::TakesLease {
                    shard: lost.shard,
                    holder: lost.claimer,
                });
            }
        }
        // A proof this peer recorded itself (a live, fresh proof, first for its shard) keeps
        // the gossip rule; any other credit must have held its lease through its proof.
        let recorded = |shard: &u32, worker: &PeerKey, at: &u64| {
            self.proofs.get(shard) == Some(&(*worker, *at))
        };
        match credits.iter().find(|(shard, worker, at)| {
            if recorded(shard, worker, at) {
                !view.had_lease(*shard, worker, *at)
            } else {
                !view.held_through(*shard, worker, *at)
            }
        }) {
            Some((shard, worker, _)) => Err(ProofError::NotClaimed {
                shard: *shard,
                worker: *worker,
            }),
            None => Ok(()),
        }
    }

    /// Records a proof without the lease rule: a proof this node verified and credited before
    /// a restart, or the credit a verified settlement gives (which [`Self::check_credits`]
    /// judged). It replaces any proof recorded for the shard.
    pub fn set_proof(&mut self, shard: u32, worker: PeerKey, proved_at_ms: u64) {
        if shard >= self.shard_count {
            return;
        }
        let replaced = self.proofs.insert(shard, (worker, proved_at_ms));
        if replaced.is_some() || self.sweep.last.is_some_and(|last| proved_at_ms < last.at) {
            self.resweep();
        } else {
            // No claim after the proof has been judged yet: clip the leases in place.
            for lease in self.sweep.leases.entry(shard).or_default() {
                lease.end_ms = lease.end_ms.min(proved_at_ms);
            }
        }
    }

    /// Records a proof the prover has verified. The shard becomes final; its leases end at
    /// `proved_at_ms`.
    pub fn record_proof(
        &mut self,
        shard: u32,
        worker: PeerKey,
        proved_at_ms: u64,
        now_ms: u64,
        freshness: Freshness,
    ) -> Result<(), ProofError> {
        self.check_proof(shard, &worker, proved_at_ms, now_ms, freshness)?;
        self.set_proof(shard, worker, proved_at_ms);
        Ok(())
    }

    /// The shard's state at `now_ms`.
    pub fn state(&self, shard: u32, now_ms: u64) -> ShardState {
        if let Some((worker, at)) = self.proofs.get(&shard) {
            return ShardState::Proved {
                worker: *worker,
                proved_at_ms: *at,
            };
        }
        let live = self.leases_at(shard, now_ms);
        match live.iter().find(|l| !l.backup) {
            Some(primary) => ShardState::Held {
                primary: *primary,
                backups: live.iter().filter(|l| l.backup).copied().collect(),
            },
            None => ShardState::Open,
        }
    }

    /// The primary holder at `now_ms`.
    pub fn holder(&self, shard: u32, now_ms: u64) -> Option<PeerKey> {
        match self.state(shard, now_ms) {
            ShardState::Held { primary, .. } => Some(primary.holder),
            _ => None,
        }
    }

    /// All leases (primary and backup) live at `now_ms` on `shard`.
    pub fn leases_at(&self, shard: u32, now_ms: u64) -> Vec<Lease> {
        self.sweep
            .leases
            .get(&shard)
            .map(|ls| ls.iter().filter(|l| l.is_live(now_ms)).copied().collect())
            .unwrap_or_default()
    }

    /// Shards a primary claim could win at `now_ms` (not proved, no live primary).
    pub fn open_shards(&self, now_ms: u64) -> Vec<u32> {
        (0..self.shard_count)
            .filter(|s| self.state(*s, now_ms) == ShardState::Open)
            .collect()
    }

    /// Live leases `peer` holds in this job at `now_ms` (for its capacity across jobs).
    pub fn active_leases_of(&self, peer: &PeerKey, now_ms: u64) -> u32 {
        let n = self
            .sweep
            .leases
            .values()
            .flatten()
            .filter(|l| l.holder == *peer && l.is_live(now_ms))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Shards with a live primary lease at `now_ms`.
    pub fn leased_count(&self, now_ms: u64) -> u32 {
        let n = (0..self.shard_count)
            .filter(|s| matches!(self.state(*s, now_ms), ShardState::Held { .. }))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The credited proof of a shard.
    pub fn proof_of(&self, shard: u32) -> Option<(PeerKey, u64)> {
        self.proofs.get(&shard).copied()
    }

    /// Shards proved.
    pub fn proved_count(&self) -> u32 {
        u32::try_from(self.proofs.len()).unwrap_or(u32::MAX)
    }

    /// Whether every shard is proved.
    pub fn all_proved(&self) -> bool {
        self.proved_count() == self.shard_count
    }

    /// Credits in shard order, once every shard is proved.
    pub fn credits(&self) -> Option<Vec<ShardCredit>> {
        self.all_proved().then(|| {
            self.proofs
                .iter()
                .map(|(shard, (worker, _))| ShardCredit {
                    shard: *shard,
                    worker: *worker,
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests;
