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
}
