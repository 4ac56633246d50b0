//! Recursion: every Merkle opening of a real shard proof, as full paths with the exact leaf
//! values, re-hashes natively to its tree's root; the layout is the documented one.

#![allow(clippy::unwrap_used, missing_docs)]

use p3_field::PrimeCharacteristicRing;
use starkscale_prover::config::{Val, LOG_BLOWUP, LOG_FINAL_POLY_LEN, MAX_LOG_ARITY, NUM_QUERIES};
use starkscale_prover::{prove, setup, Binding, IntMatrix, ProvenShard, ProvingKey};
use starkscale_recursion::native::openings::{extract_shard, query_indices, ProofOpenings, Tree};
use starkscale_recursion::native::replay::replay_transcript;
use starkscale_recursion::tables::transcript::Call;

fn binding() -> Binding {
    Binding {
        job_id: [3; 32],
        shard_index: 1,
        worker: [4; 32],
    }
}

fn shard(rows: usize, k: usize, n: usize) -> (ProvingKey, IntMatrix, ProvenShard) {
    let w = IntMatrix::new(rows, k, (0..rows * k).map(|i| (i as i64 % 9) - 4).collect()).unwrap();
    let x = IntMatrix::new(k, n, (0..k * n).map(|i| (i as i64 % 5) - 2).collect()).unwrap();
    let pk = setup(&w).unwrap();
    let proven = prove(&pk, &x, &binding()).unwrap();
    (pk, x, proven)
}

/// p3-fri's schedule for one input height: arities of at most `MAX_LOG_ARITY` down to the
/// final height.
fn expected_arities(log_max_height: usize) -> Vec<usize> {
    let mut left = log_max_height.saturating_sub(LOG_BLOWUP + LOG_FINAL_POLY_LEN);
    let mut out = Vec::new();
    while left > 0 {
        out.push(left.min(MAX_LOG_ARITY));
        left -= out[out.len() - 1];
    }
    out
}

fn check_layout(o: &ProofOpenings, k: usize, vectors: usize, degree_bits: usize) {
    assert_eq!(o.log_max_height, degree_bits + LOG_BLOWUP);
    assert_eq!(o.queries.len(), NUM_QUERIES);
    let arities = expected_arities(o.log_max_height);
    assert_eq!(o.trees.len(), 3 + arities.len());
    // Input trees: trace (vectors), quotient chunks (4 each), preprocessed (k), full height.
    for (i, t) in o.trees[..3].iter().enumerate() {
        assert_eq!(t.tree, Tree::Input(i));
        assert_eq!(
            (t.log_height, t.index_shift, t.log_arity),
            (o.log_max_height, 0, None)
        );
    }
    assert_eq!(o.trees[0].widths, vec![vectors]);
    assert!(!o.trees[1].widths.is_empty() && o.trees[1].widths.iter().all(|w| *w == 4));
    assert_eq!(o.trees[2].widths, vec![k]);
    // Rounds: 2^a extension values (4·2^a base), height shrinking by a each round.
    let mut shift = 0;
    for (r, (t, a)) in o.trees[3..].iter().zip(&arities).enumerate() {
        shift += a;
        assert_eq!(t.tree, Tree::Round(r));
        assert_eq!(t.log_arity, Some(*a));
        assert_eq!(t.widths, vec![4 << a]);
        assert_eq!(
            (t.index_shift, t.log_height),
            (shift, o.log_max_height - shift)
        );
    }
    for q in &o.queries {
        assert!(q.query_index < 1 << o.log_max_height);
        assert_eq!(q.openings.len(), o.trees.len());
        for ((tree, op), t) in q.openings.iter().zip(&o.trees) {
            assert_eq!(*tree, t.tree);
            assert_eq!(op.index, q.query_index >> t.index_shift);
            assert_eq!(op.siblings.len(), t.log_height);
            assert_eq!(op.values.len(), t.widths.iter().sum::<usize>());
            assert_eq!(op.root, t.root);
            assert_eq!(op.root_of(), op.root);
        }
    }
}

#[test]
fn every_opening_of_a_real_proof_rehashes_to_its_root() {
    // degree_bits 6, 7, 9: FRI arities [2], [4], [8, 2].
    for (rows, k, n) in [(8, 6, 1), (100, 33, 1), (300, 5, 2)] {
        let (pk, x, proven) = shard(rows, k, n);
        let vk = pk.verifying_key();
        let o = extract_shard(vk, &x, &proven.output, &binding(), &proven.proof).unwrap();
        check_layout(&o, k, n, vk.degree_bits as usize);
        assert_eq!(o.trees[2].root, vk.commitment.map(Val::new));
        let chunks = o.trees[1].widths.len();
        let quotient_zero = o
            .queries
            .iter()
            .all(|q| q.openings[1].1.values.iter().all(|v| *v == Val::ZERO));
        eprintln!(
            "{rows} × {k}, n = {n}: 2^{} leaves, {chunks} quotient chunk(s) (all zero: \
             {quotient_zero}), arities {:?}",
            o.log_max_height,
            o.trees[3..].iter().map(|t| t.log_arity).collect::<Vec<_>>()
        );

        // The query indices are the transcript's last samples.
        let calls = replay_transcript(vk, &x, &proven.output, &binding(), &proven.proof).unwrap();
        let indices = query_indices(&calls, o.log_max_height, NUM_QUERIES).unwrap();
        let got: Vec<usize> = o.queries.iter().map(|q| q.query_index).collect();
        assert_eq!(indices, got);
        assert!(query_indices(&calls[..calls.len() - NUM_QUERIES - 1], 9, NUM_QUERIES).is_err());
        assert!(matches!(calls.last(), Some(Call::Sample(_))));

        // Changing one value, one sibling or the index changes the recomputed root.
        for q in o.queries.iter().take(4) {
            for (tree, op) in &q.openings {
                for v in 0..op.values.len() {
                    let mut bad = op.clone();
                    bad.values[v] += Val::ONE;
                    assert_ne!(bad.root_of(), op.root, "{tree:?} value {v}");
                }
                for s in 0..op.siblings.len() {
                    let mut bad = op.clone();
                    bad.siblings[s][s % 8] += Val::ONE;
                    assert_ne!(bad.root_of(), op.root, "{tree:?} sibling {s}");
                    // The honest quotient of this degree-1 AIR is zero: every leaf of
                    // that tree is the same, so moving a path there keeps its root.
                    if *tree != Tree::Input(1) {
                        let mut bad = op.clone();
                        bad.index ^= 1 << s;
                        assert_ne!(bad.root_of(), op.root, "{tree:?} index bit {s}");
                    }
                }
            }
        }

        // A statement the proof does not prove: no openings.
        let mut wrong = proven.output.data().to_vec();
        wrong[0] += 1;
        let wrong = IntMatrix::new(rows, n, wrong).unwrap();
        assert!(extract_shard(vk, &x, &wrong, &binding(), &proven.proof).is_err());
    }
}
