//! Aggregator election: rendezvous hashing of the job id with each candidate's key.
//!
//! Candidates are the peers that advertise the aggregator role (`AggregatorHeartbeat`). They
//! are ranked by `blake3::derive_key("starkscale/1 aggregator rank", job ‖ key)`, lowest first.
//! Rank 0 aggregates; if the job is not settled by the settle deadline, rank 1 takes over, then
//! rank 2 after one more `step_ms`, and so on. Adding or removing one candidate only moves the
//! jobs for which it ranks first, and job ids (content hashes) spread load evenly.

use crate::ids::{JobId, PeerKey};

/// The rendezvous score of `key` for `job` (lower ranks first).
pub fn aggregator_score(job: &JobId, key: &PeerKey) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("starkscale/1 aggregator rank");
    hasher.update(job.as_bytes());
    hasher.update(key.as_bytes());
    *hasher.finalize().as_bytes()
}

/// Candidates in rank order for `job` (duplicates removed; ties, which need a hash collision,
/// break by key).
pub fn rank_aggregators(job: &JobId, peers: &[PeerKey]) -> Vec<PeerKey> {
    let mut scored: Vec<([u8; 32], PeerKey)> = peers
        .iter()
        .map(|k| (aggregator_score(job, k), *k))
        .collect();
    scored.sort_unstable();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().map(|(_, k)| k).collect()
}

/// Whose turn it is at `now_ms`: 0 before the settle deadline, then one more per `step_ms`
/// (a `step_ms` of 0 is treated as 1).
pub fn aggregator_turn(settle_deadline_ms: u64, step_ms: u64, now_ms: u64) -> u64 {
    if now_ms < settle_deadline_ms {
        0
    } else {
        ((now_ms - settle_deadline_ms) / step_ms.max(1)).saturating_add(1)
    }
}

/// The aggregator responsible at `now_ms`, or `None` if there are no candidates or every
/// candidate's turn has passed.
pub fn aggregator_at(
    job: &JobId,
    peers: &[PeerKey],
    settle_deadline_ms: u64,
    step_ms: u64,
    now_ms: u64,
) -> Option<PeerKey> {
    let turn = aggregator_turn(settle_deadline_ms, step_ms, now_ms);
    let ranked = rank_aggregators(job, peers);
    usize::try_from(turn)
        .ok()
        .and_then(|t| ranked.get(t).copied())
}

/// Whether `key` may settle `job` at `now_ms`: it is a candidate whose turn has come (earlier
/// ranks stay allowed, so a slow first aggregator's late result is still accepted).
pub fn may_settle(
    job: &JobId,
    peers: &[PeerKey],
    key: &PeerKey,
    settle_deadline_ms: u64,
    step_ms: u64,
    now_ms: u64,
) -> bool {
    let turn = aggregator_turn(settle_deadline_ms, step_ms, now_ms);
    rank_aggregators(job, peers)
        .iter()
        .position(|k| k == key)
        .is_some_and(|rank| (rank as u64) <= turn)
}

/// An aggregator candidate as one peer knows it: its key, and since when (unix ms) that peer
/// has counted it as a candidate without a break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Its key.
    pub key: PeerKey,
    /// First heartbeat of its current unbroken candidacy, as heard here.
    pub since_ms: u64,
}

/// The candidates that count for a job created at `created_ms`: those this peer knew before
/// the job existed. A key ground to rank first for a job id can only be found once the job
/// is announced, so it never counts for that job. A peer that started listening
/// (`known_from_ms`) after the job was created cannot tell, and counts every candidate.
pub fn candidates_for(created_ms: u64, known: &[Candidate], known_from_ms: u64) -> Vec<PeerKey> {
    known
        .iter()
        .filter(|c| created_ms <= known_from_ms || c.since_ms < created_ms)
        .map(|c| c.key)
        .collect()
}

/// The candidates that count for a job: the keys its manifest names (`listed`, the same at
/// every peer), or, when it names none, those this peer knew before the job was created
/// ([`candidates_for`]).
pub fn job_candidates(
    listed: &[PeerKey],
    created_ms: u64,
    known: &[Candidate],
    known_from_ms: u64,
) -> Vec<PeerKey> {
    if listed.is_empty() {
        candidates_for(created_ms, known, known_from_ms)
    } else {
        listed.to_vec()
    }
}

/// Distinct reports that make a job's failure final (fewer when there are fewer candidates).
pub const FAILURE_QUORUM: usize = 3;
/// The first ranks whose failure reports count (so a quorum survives crashed ranks).
pub const FAILURE_RANKS: usize = 2 * FAILURE_QUORUM - 1;

/// Whether `reporter` is among the ranks whose failure reports count for `job`.
pub fn may_report_failure(job: &JobId, candidates: &[PeerKey], reporter: &PeerKey) -> bool {
    rank_aggregators(job, candidates)
        .iter()
        .take(FAILURE_RANKS)
        .any(|k| k == reporter)
}

/// Whether `reporters` make the job's failure final: a failure carries no proof, so it needs
/// [`FAILURE_QUORUM`] distinct reports from the first [`FAILURE_RANKS`] ranks, each of which
/// found the failure itself (for unavailable data: each failed to fetch it). A job with
/// fewer candidates cannot fail (one that named a single candidate — say its entry's own
/// Sybil — would otherwise fail on one key's word): it expires at its deadline.
pub fn failure_is_final(
    job: &JobId,
    candidates: &[PeerKey],
    reporters: &std::collections::BTreeSet<PeerKey>,
) -> bool {
    let ranked = rank_aggregators(job, candidates);
    let needed = FAILURE_QUORUM;
    let found = ranked
        .iter()
        .take(FAILURE_RANKS)
        .filter(|k| reporters.contains(k))
        .count();
    found >= needed
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn peers(n: u8) -> Vec<PeerKey> {
        (0..n).map(|i| PeerKey([i + 1; 32])).collect()
    }

    #[test]
    fn ranking_is_deterministic_and_order_free() {
        let job = JobId([3; 32]);
        let ps = peers(5);
        let mut reversed = ps.clone();
        reversed.reverse();
        let ranked = rank_aggregators(&job, &ps);
        assert_eq!(ranked, rank_aggregators(&job, &reversed));
        let mut doubled = ps.clone();
        doubled.extend(ps.iter().copied());
        assert_eq!(ranked, rank_aggregators(&job, &doubled));
        assert_eq!(ranked.len(), 5);
        assert_ne!(ranked, rank_aggregators(&JobId([4; 32]), &ps));
    }

    #[test]
    fn takeover_after_each_step() {
        let job = JobId([3; 32]);
        let ps = peers(3);
        let ranked = rank_aggregators(&job, &ps);
        let at = |now| aggregator_at(&job, &ps, 1_000, 100, now);
        assert_eq!(at(0), Some(ranked[0]));
        assert_eq!(at(999), Some(ranked[0]));
        assert_eq!(at(1_000), Some(ranked[1]));
        assert_eq!(at(1_099), Some(ranked[1]));
        assert_eq!(at(1_100), Some(ranked[2]));
        assert_eq!(at(1_200), None);
        assert!(may_settle(&job, &ps, &ranked[0], 1_000, 100, 1_150));
        assert!(!may_settle(&job, &ps, &ranked[2], 1_000, 100, 1_050));
        assert!(!may_settle(
            &job,
            &ps,
            &PeerKey([99; 32]),
            1_000,
            100,
            5_000
        ));
        assert_eq!(aggregator_at(&job, &[], 1_000, 100, 0), None);
        assert_eq!(aggregator_turn(0, 0, u64::MAX), u64::MAX);
        assert_eq!(aggregator_at(&job, &ps, 0, 0, u64::MAX), None);
    }

    #[test]
    fn load_spreads_evenly_over_ten_peers() {
        let ps = peers(10);
        let mut counts = [0u32; 10];
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for _ in 0..10_000 {
            let job = JobId(rng.gen());
            let first = rank_aggregators(&job, &ps)[0];
            let index = ps.iter().position(|p| *p == first).unwrap();
            counts[index] += 1;
        }
        for (i, c) in counts.iter().enumerate() {
            assert!((700..=1300).contains(c), "peer {i} got {c} of 10000");
        }
    }

    #[test]
    fn a_candidate_heard_after_the_job_was_created_does_not_count() {
        let known = [
            Candidate {
                key: PeerKey([1; 32]),
                since_ms: 100,
            },
            Candidate {
                key: PeerKey([2; 32]),
                since_ms: 500,
            },
        ];
        assert_eq!(candidates_for(400, &known, 0), vec![PeerKey([1; 32])]);
        assert_eq!(candidates_for(600, &known, 0).len(), 2);
        // A peer that started after the job was created counts every candidate it knows.
        assert_eq!(candidates_for(400, &known, 450).len(), 2);
    }

    #[test]
    fn a_failure_needs_a_quorum_of_top_ranks() {
        use std::collections::BTreeSet;
        let job = JobId([3; 32]);
        let ps = peers(8);
        let ranked = rank_aggregators(&job, &ps);
        let set = |ks: &[PeerKey]| ks.iter().copied().collect::<BTreeSet<_>>();
        // Rank 0 alone cannot fail the job.
        assert!(!failure_is_final(&job, &ps, &set(&ranked[..1])));
        assert!(!failure_is_final(&job, &ps, &set(&ranked[..2])));
        assert!(failure_is_final(&job, &ps, &set(&ranked[..3])));
        // Any three of the first five ranks; ranks past them do not count.
        assert!(failure_is_final(
            &job,
            &ps,
            &set(&[ranked[0], ranked[2], ranked[4]])
        ));
        assert!(!failure_is_final(
            &job,
            &ps,
            &set(&[ranked[0], ranked[5], ranked[6]])
        ));
        assert!(may_report_failure(&job, &ps, &ranked[4]));
        assert!(!may_report_failure(&job, &ps, &ranked[5]));
        // Fewer candidates than the quorum (a list an entry filled with one Sybil key, say),
        // or none: nothing is final, the job expires.
        assert!(!failure_is_final(&job, &ps[..1], &set(&ps[..1])));
        assert!(!failure_is_final(&job, &ps[..2], &set(&ps[..2])));
        assert!(failure_is_final(&job, &ps[..3], &set(&ps[..3])));
        assert!(!failure_is_final(&job, &[], &set(&ps[..3])));
    }
}
