//! Tests of the lease rules: resolution, expiry, capacity, backups, proofs, and order
//! independence (property test).

use proptest::prelude::*;

use super::*;

const CREATED: u64 = 0;
const DEADLINE: u64 = 100_000;

fn peer(i: u8) -> PeerKey {
    PeerKey([i; 32])
}

fn book(shards: u32, rules: LeaseRules) -> LeaseBook {
    LeaseBook::new(JobId([7; 32]), shards, CREATED, DEADLINE, rules)
}

fn claim(shard: u32, who: u8, at: u64, lease: u64, backup: bool) -> Claim {
    Claim {
        shard,
        claimer: peer(who),
        claimed_at_ms: at,
        lease_expires_ms: at + lease,
        backup,
    }
}

const R: Freshness = Freshness::Replayed;

#[test]
fn first_claim_holds_until_expiry_then_shard_reopens() {
    let mut b = book(2, LeaseRules::default());
    let won = b.insert_claim(claim(0, 1, 1_000, 5_000, false), 1_000, R);
    assert_eq!(won, Ok(ClaimOutcome::Won { backup: false }));
    let lost = b.insert_claim(claim(0, 2, 2_000, 5_000, false), 2_000, R);
    assert!(matches!(
        lost,
        Ok(ClaimOutcome::Lost(Conflict::Held { holder, until_ms: 6_000, .. })) if holder == peer(1)
    ));
    assert_eq!(b.holder(0, 5_999), Some(peer(1)));
    assert_eq!(b.holder(0, 6_000), None, "lease expired without a proof");
    assert_eq!(b.open_shards(6_000), vec![0, 1]);
    // The loser's earlier claim does not revive: it lost. A fresh claim wins.
    assert_eq!(
        b.insert_claim(claim(0, 2, 6_500, 5_000, false), 6_500, R),
        Ok(ClaimOutcome::Won { backup: false })
    );
    assert_eq!(b.holder(0, 7_000), Some(peer(2)));
}

#[test]
fn a_lapsed_holder_cannot_take_the_shard_again() {
    let mut b = book(1, LeaseRules::default());
    b.insert_claim(claim(0, 1, 1_000, 5_000, false), 1_000, R)
        .unwrap();
    // Peer 1's lease ended at 6 000 with no proof: it may not claim shard 0 again, as primary
    // or backup, while others may.
    assert_eq!(
        b.insert_claim(claim(0, 1, 6_000, 5_000, false), 6_000, R),
        Ok(ClaimOutcome::Lost(Conflict::Lapsed {
            shard: 0,
            claimer: peer(1)
        }))
    );
    assert_eq!(b.holder(0, 6_500), None);
    assert_eq!(
        b.insert_claim(claim(0, 2, 7_000, 5_000, false), 7_000, R),
        Ok(ClaimOutcome::Won { backup: false })
    );
    assert!(matches!(
        b.check_claim(&claim(0, 1, 11_000, 5_000, true), 11_000, R),
        Ok(ClaimOutcome::Lost(Conflict::Lapsed { .. }))
    ));
}

#[test]
fn earlier_claim_arriving_late_takes_over() {
    let mut b = book(1, LeaseRules::default());
    b.insert_claim(claim(0, 1, 2_000, 5_000, false), 2_000, R)
        .unwrap();
    let outcome = b.insert_claim(claim(0, 2, 1_500, 5_000, false), 2_100, R);
    assert_eq!(outcome, Ok(ClaimOutcome::Won { backup: false }));
    assert_eq!(b.holder(0, 3_000), Some(peer(2)));
    assert!(matches!(
        b.outcome_of(&claim(0, 1, 2_000, 5_000, false)),
        Some(ClaimOutcome::Lost(Conflict::Held { .. }))
    ));
}

#[test]
fn same_timestamp_ties_break_by_rank() {
    let job = JobId([7; 32]);
    let (a, b_) = (peer(1), peer(2));
    let winner = if claim_rank(&job, 0, &a) < claim_rank(&job, 0, &b_) {
        a
    } else {
        b_
    };
    for order in [[1u8, 2], [2, 1]] {
        let mut b = book(1, LeaseRules::default());
        for who in order {
            b.insert_claim(claim(0, who, 1_000, 5_000, false), 1_000, R)
                .unwrap();
        }
        assert_eq!(b.holder(0, 1_000), Some(winner));
    }
}

#[test]
fn capacity_limits_concurrent_leases() {
    let rules = LeaseRules {
        max_leases_per_peer: 2,
        ..LeaseRules::default()
    };
    let mut b = book(4, rules);
    for shard in 0..2 {
        b.insert_claim(
            claim(shard, 1, 1_000 + u64::from(shard), 5_000, false),
            1_000,
            R,
        )
        .unwrap();
    }
    let third = b.insert_claim(claim(2, 1, 1_010, 5_000, false), 1_010, R);
    assert!(matches!(
        third,
        Ok(ClaimOutcome::Lost(Conflict::AtCapacity {
            active: 2,
            max: 2,
            ..
        }))
    ));
    assert_eq!(b.active_leases_of(&peer(1), 1_010), 2);
    // A proof ends a lease early and frees capacity.
    b.record_proof(0, peer(1), 2_000, 2_000, R).unwrap();
    assert_eq!(b.active_leases_of(&peer(1), 2_001), 1);
    assert_eq!(
        b.insert_claim(claim(3, 1, 2_001, 5_000, false), 2_001, R),
        Ok(ClaimOutcome::Won { backup: false })
    );
}

#[test]
fn backup_claims_only_late_or_near_expiry() {
    let rules = LeaseRules {
        backup_window_percent: 20,
        near_expiry_ms: 1_000,
        ..LeaseRules::default()
    };
    let mut b = book(2, rules);
    assert_eq!(b.backup_window_start_ms(), 80_000);
    b.insert_claim(claim(0, 1, 1_000, 10_000, false), 1_000, R)
        .unwrap();
    let early = b.check_claim(&claim(0, 2, 2_000, 5_000, true), 2_000, R);
    assert!(matches!(
        early,
        Ok(ClaimOutcome::Lost(Conflict::BackupTooEarly {
            opens_ms: 10_000,
            ..
        }))
    ));
    // Near the primary's expiry.
    assert_eq!(
        b.insert_claim(claim(0, 2, 10_200, 5_000, true), 10_200, R),
        Ok(ClaimOutcome::Won { backup: true })
    );
    match b.state(0, 10_500) {
        ShardState::Held { primary, backups } => {
            assert_eq!(primary.holder, peer(1));
            assert_eq!(backups.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    // Slots full; own shard; nothing to back up.
    assert!(matches!(
        b.check_claim(&claim(0, 3, 10_300, 5_000, true), 10_300, R),
        Ok(ClaimOutcome::Lost(Conflict::BackupsFull { .. }))
    ));
    assert!(matches!(
        b.check_claim(&claim(0, 1, 10_300, 5_000, true), 10_300, R),
        Ok(ClaimOutcome::Lost(Conflict::AlreadyHolds { .. }))
    ));
    assert!(matches!(
        b.check_claim(&claim(1, 3, 10_300, 5_000, true), 10_300, R),
        Ok(ClaimOutcome::Lost(Conflict::NothingToBackUp { .. }))
    ));
    // In the last 20 % of the job anything held can be backed up.
    b.insert_claim(claim(1, 4, 85_000, 10_000, false), 85_000, R)
        .unwrap();
    assert_eq!(
        b.insert_claim(claim(1, 5, 85_001, 5_000, true), 85_001, R),
        Ok(ClaimOutcome::Won { backup: true })
    );
}

#[test]
fn malformed_and_stale_claims_are_refused() {
    let mut b = book(2, LeaseRules::default());
    let cases = [
        (claim(2, 1, 1_000, 5_000, false), "out of plan", true),
        (claim(0, 1, 1_000, 10, false), "too short", true),
        (claim(0, 1, 1_000, 3_600_000, false), "too long", true),
        (claim(0, 1, 99_000, 5_000, false), "past deadline", true),
    ];
    for (c, what, malformed) in cases {
        let err = b.insert_claim(c, 1_000, Freshness::Live).unwrap_err();
        assert_eq!(err.is_malformed(), malformed, "{what}: {err}");
    }
    let stale = b.insert_claim(claim(0, 1, 1_000, 5_000, false), 60_000, Freshness::Live);
    assert!(matches!(stale, Err(ClaimError::ClockSkew { .. })));
    let future = b.insert_claim(claim(0, 1, 90_000, 5_000, false), 1_000, R);
    assert!(matches!(future, Err(ClaimError::ClockSkew { .. })));
    // Replayed state may be old.
    assert!(b
        .insert_claim(claim(0, 1, 1_000, 5_000, false), 60_000, R)
        .is_ok());
    assert_eq!(
        b.insert_claim(claim(0, 1, 1_000, 5_000, false), 60_000, R),
        Err(ClaimError::Duplicate)
    );
}

#[test]
fn storage_caps_bound_spam() {
    let rules = LeaseRules {
        max_claims_per_claimer: 2,
        max_claims_per_shard: 3,
        ..LeaseRules::default()
    };
    let mut b = book(1, rules);
    for at in [1_000, 1_001] {
        b.insert_claim(claim(0, 1, at, 5_000, false), 2_000, R)
            .unwrap();
    }
    assert!(matches!(
        b.insert_claim(claim(0, 1, 1_002, 5_000, false), 2_000, R),
        Err(ClaimError::TooManyClaims { .. })
    ));
    b.insert_claim(claim(0, 2, 1_000, 5_000, false), 2_000, R)
        .unwrap();
    assert!(matches!(
        b.insert_claim(claim(0, 3, 1_000, 5_000, false), 2_000, R),
        Err(ClaimError::TooManyClaims { .. })
    ));
}

#[test]
fn proofs_are_final() {
    let mut b = book(2, LeaseRules::default());
    b.insert_claim(claim(0, 1, 1_000, 5_000, false), 1_000, R)
        .unwrap();
    assert_eq!(
        b.check_proof(0, &peer(2), 2_000, 2_000, R),
        Err(ProofError::NotClaimed {
            shard: 0,
            worker: peer(2)
        })
    );
    assert!(matches!(
        b.check_proof(5, &peer(1), 2_000, 2_000, R),
        Err(ProofError::ShardOutOfPlan { .. })
    ));
    b.record_proof(0, peer(1), 2_000, 2_000, R).unwrap();
    assert_eq!(
        b.state(0, 1_500),
        ShardState::Proved {
            worker: peer(1),
            proved_at_ms: 2_000
        }
    );
    assert!(matches!(
        b.record_proof(0, peer(1), 2_100, 2_100, R),
        Err(ProofError::AlreadyProved { .. })
    ));
    assert!(matches!(
        b.insert_claim(claim(0, 2, 2_500, 5_000, false), 2_500, R),
        Ok(ClaimOutcome::Lost(Conflict::AlreadyProved { .. }))
    ));
    // A late proof from an expired holder still counts if nobody proved first.
    b.insert_claim(claim(1, 3, 1_000, 2_000, false), 1_000, R)
        .unwrap();
    b.insert_claim(claim(1, 4, 3_500, 5_000, false), 3_500, R)
        .unwrap();
    b.record_proof(1, peer(3), 3_600, 3_600, R).unwrap();
    assert_eq!(b.holder(1, 3_700), None);
    assert!(b.all_proved());
    let credits = b.credits().unwrap();
    assert_eq!(credits[1].worker, peer(3));
}

#[test]
fn out_of_order_proof_reresolves() {
    let rules = LeaseRules {
        max_leases_per_peer: 1,
        ..LeaseRules::default()
    };
    let mut b = book(2, rules);
    b.insert_claim(claim(0, 1, 1_000, 5_000, false), 1_000, R)
        .unwrap();
    // At capacity until the proof at 1_500 is known.
    let second = claim(1, 1, 2_000, 5_000, false);
    assert!(matches!(
        b.insert_claim(second, 2_000, R),
        Ok(ClaimOutcome::Lost(Conflict::AtCapacity { .. }))
    ));
    b.record_proof(0, peer(1), 1_500, 2_100, R).unwrap();
    assert_eq!(
        b.outcome_of(&second),
        Some(ClaimOutcome::Won { backup: false })
    );
    assert_eq!(b.holder(1, 2_500), Some(peer(1)));
}

fn arb_claim() -> impl Strategy<Value = Claim> {
    (
        0u32..3,
        1u8..5,
        0u64..20_000,
        1_000u64..8_000,
        prop::bool::weighted(0.2),
    )
        .prop_map(|(shard, who, at, lease, backup)| Claim {
            shard,
            claimer: peer(who),
            claimed_at_ms: at,
            lease_expires_ms: at + lease,
            backup,
        })
}

fn snapshot(b: &LeaseBook) -> Vec<ShardState> {
    let mut out = Vec::new();
    for t in (0..30_000).step_by(250) {
        for s in 0..b.shard_count() {
            out.push(b.state(s, t));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn resolution_is_independent_of_arrival_order(
        claims in prop::collection::vec(arb_claim(), 1..24),
        seed in any::<u64>(),
    ) {
        let rules = LeaseRules {
            max_leases_per_peer: 2,
            backup_window_percent: 50,
            max_claims_per_shard: 1_000,
            max_claims_per_claimer: 1_000,
            ..LeaseRules::default()
        };
        let now = 25_000;
        let mut reference = book(3, rules);
        for c in &claims {
            let _ = reference.insert_claim(*c, now, R);
        }
        let expected = snapshot(&reference);
        // A few pseudo-random permutations plus the reverse order.
        let mut orders = vec![claims.iter().rev().copied().collect::<Vec<_>>()];
        let mut state = seed | 1;
        for _ in 0..4 {
            let mut perm = claims.clone();
            for i in (1..perm.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                perm.swap(i, (state % (i as u64 + 1)) as usize);
            }
            orders.push(perm);
        }
        for order in orders {
            let mut b = book(3, rules);
            for c in &order {
                let _ = b.insert_claim(*c, now, R);
            }
            prop_assert_eq!(&snapshot(&b), &expected);
            for c in &claims {
                prop_assert_eq!(b.outcome_of(c), reference.outcome_of(c));
            }
        }
    }

    #[test]
    fn check_claim_predicts_insert(
        claims in prop::collection::vec(arb_claim(), 1..16),
        probe in arb_claim(),
    ) {
        let mut b = book(3, LeaseRules::default());
        for c in &claims {
            let _ = b.insert_claim(*c, 25_000, R);
        }
        let predicted = b.check_claim(&probe, 25_000, R);
        let actual = b.insert_claim(probe, 25_000, R);
        prop_assert_eq!(predicted, actual);
    }
}
