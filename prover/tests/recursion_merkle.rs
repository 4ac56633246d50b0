//! Recursion part 1, first tables: Merkle paths of real `MerkleTreeMmcs` commitments (the shard
//! configuration's hash and compression) checked inside a batch-stark proof, with a
//! corruption test for each table's constraints, the bus and each public value.

#![allow(clippy::unwrap_used, missing_docs)]

use p3_commit::Mmcs;
use p3_field::PrimeCharacteristicRing;
use p3_matrix::dense::RowMajorMatrix;
use p3_symmetric::CryptographicHasher;
use starkscale_prover::config::{Compress, Hash, Val, ValMmcs};
use starkscale_prover::recursion::circuit::{self, Witness};
use starkscale_prover::recursion::merkle::MerklePath;
use starkscale_prover::recursion::poseidon2;

/// Paths at `indices` of a fresh commitment to a `2^log_height × width` matrix, each checked
/// natively first.
fn paths(log_height: usize, width: usize, indices: &[usize], seed: u32) -> Vec<MerklePath> {
    let perm = p3_koala_bear::default_koalabear_poseidon2_16();
    let hash = Hash::new(perm.clone());
    let mmcs = ValMmcs::new(hash.clone(), Compress::new(perm), 0);
    let height = 1 << log_height;
    let values = (0..height * width)
        .map(|i| Val::from_u32((i as u32).wrapping_mul(2_654_435_761) ^ seed))
        .collect();
    let (commit, data) = mmcs.commit_matrix(RowMajorMatrix::new(values, width));
    let root = commit.roots()[0];
    indices
        .iter()
        .map(|&index| {
            let opening = mmcs.open_batch(index, &data);
            let row = opening.opened_values[0].clone();
            MerklePath {
                leaf: hash.hash_iter(row),
                index: index as u32,
                siblings: opening.opening_proof.clone(),
                root,
            }
        })
        .collect()
}

/// Public values of the circuit checking `paths`: none for the permutation table, then each
/// path's.
fn publics(paths: &[MerklePath]) -> Vec<Vec<Val>> {
    std::iter::once(Vec::new())
        .chain(paths.iter().map(MerklePath::public_values))
        .collect()
}

/// Whether the witness is refused: by the prover, or by the verifier on `publics`.
fn refused(witness: &Witness, publics: &[Vec<Val>]) -> bool {
    match circuit::prove(witness) {
        Err(e) => {
            eprintln!("refused by the prover: {e}");
            true
        }
        Ok(proof) => match circuit::verify(&witness.tables, publics, &proof) {
            Err(e) => {
                eprintln!("refused by the verifier: {e}");
                true
            }
            Ok(()) => false,
        },
    }
}

#[test]
fn honest_paths_of_several_depths_verify() {
    for (log_height, width, indices) in [
        (2, 3, vec![0, 3]),
        (5, 8, vec![17]),
        (7, 11, vec![0, 64, 127, 5]),
    ] {
        let ps = paths(log_height, width, &indices, 7);
        let witness = Witness::for_paths(&ps).unwrap();
        let proof = circuit::prove(&witness).unwrap();
        circuit::verify(&circuit::merkle_tables(ps.len()), &publics(&ps), &proof).unwrap();
    }
}

#[test]
fn changing_any_public_value_fails_verification() {
    let ps = paths(5, 4, &[9, 22], 1);
    let proof = circuit::prove(&Witness::for_paths(&ps).unwrap()).unwrap();
    let honest = publics(&ps);
    let tables = circuit::merkle_tables(ps.len());
    circuit::verify(&tables, &honest, &proof).unwrap();
    for path in 1..honest.len() {
        for i in 0..honest[path].len() {
            let mut changed = honest.clone();
            changed[path][i] += Val::ONE;
            assert!(
                circuit::verify(&tables, &changed, &proof).is_err(),
                "public value {i} of path {path} changed but the proof verified"
            );
        }
    }
}

#[test]
fn a_wrong_sibling_cannot_be_proved_against_the_root() {
    let mut ps = paths(6, 5, &[33], 2);
    ps[0].siblings[3][2] += Val::ONE;
    let witness = Witness::for_paths(&ps).unwrap();
    assert!(refused(&witness, &publics(&ps)));
}

#[test]
fn a_wrong_leaf_index_cannot_be_proved() {
    let mut ps = paths(6, 5, &[33], 3);
    ps[0].index = 32;
    let witness = Witness::for_paths(&ps).unwrap();
    assert!(refused(&witness, &publics(&ps)));
}

#[test]
fn corrupting_the_permutation_table_fails() {
    let ps = paths(4, 4, &[5], 4);
    let honest = Witness::for_paths(&ps).unwrap();
    // An internal round column of the first permutation: the permutation constraints break
    // while every bus tuple stays the same.
    let mut w = honest.clone();
    w.traces[0].values[poseidon2::WIDTH + 3] += Val::ONE;
    assert!(refused(&w, &publics(&ps)));
}

#[test]
fn unbalanced_bus_fails() {
    let ps = paths(4, 4, &[5], 5);
    let honest = Witness::for_paths(&ps).unwrap();
    // The permutation table offers one more copy of a compression than is looked up.
    let mut w = honest.clone();
    w.traces[0].values[poseidon2::MULT_COL] += Val::ONE;
    assert!(refused(&w, &publics(&ps)));
    // A Merkle row claims an output the permutation table does not have: out[8], which no
    // constraint of the Merkle table reads (only the digest half is chained), so only the
    // lookup can catch it.
    let mut w = honest;
    let cols = starkscale_prover::recursion::merkle::COLS;
    let last = ps[0].siblings.len() - 1;
    w.traces[1].values[last * cols + 2 + 16 + 8] += Val::ONE;
    assert!(refused(&w, &publics(&ps)));
}

#[test]
fn corrupting_the_merkle_tables_index_accumulator_fails() {
    let ps = paths(5, 4, &[6], 6);
    let mut w = Witness::for_paths(&ps).unwrap();
    let cols = starkscale_prover::recursion::merkle::COLS;
    let last = ps[0].siblings.len() - 1;
    // acc of the last row (the last column) and the index it must equal both move by one:
    // only the accumulation constraint between rows can catch it.
    w.traces[1].values[last * cols + cols - 1] += Val::ONE;
    let mut p = publics(&ps);
    p[1][16] += Val::ONE;
    w.public_values[1] = p[1].clone();
    assert!(refused(&w, &p));
}

/// Rebuilds the permutation table from what the Merkle tables look up (whatever their rows
/// say), so that a corruption of a Merkle row leaves the bus balanced.
fn reseal(w: &mut Witness) {
    use p3_field::PrimeField32;
    let cols = starkscale_prover::recursion::merkle::COLS;
    let mut rows: Vec<([Val; 16], u32)> = Vec::new();
    for t in &w.traces[1..] {
        for row in t.values.chunks_exact(cols).filter(|r| r[0] == Val::ONE) {
            let input = ordered(row);
            match rows.iter_mut().find(|(i, _)| {
                i.map(|v| v.as_canonical_u32()) == input.map(|v| v.as_canonical_u32())
            }) {
                Some(entry) => entry.1 += 1,
                None => rows.push((input, 1)),
            }
        }
    }
    w.traces[0] = poseidon2::trace(&rows);
}

/// The permutation input a Merkle row looks up.
fn ordered(row: &[Val]) -> [Val; 16] {
    let (bit, cur, sib) = (row[1], &row[2..10], &row[10..18]);
    let mut input = [Val::ZERO; 16];
    let (left, right) = if bit == Val::ZERO {
        (cur, sib)
    } else {
        (sib, cur)
    };
    input[..8].copy_from_slice(left);
    input[8..].copy_from_slice(right);
    input
}

#[test]
fn corrupting_the_merkle_tables_chaining_fails() {
    use p3_symmetric::Permutation;
    let perm = p3_koala_bear::default_koalabear_poseidon2_16();
    let ps = paths(5, 4, &[6], 8);
    let mut w = Witness::for_paths(&ps).unwrap();
    let cols = starkscale_prover::recursion::merkle::COLS;
    let depth = ps[0].siblings.len();
    // Row 1 starts from a digest other than row 0's output; every later row is recomputed
    // honestly from it, the permutation table is rebuilt to match and the root public value
    // follows: only the chaining constraint between rows 0 and 1 is broken.
    w.traces[1].values[cols + 2] += Val::ONE;
    let mut root = [Val::ZERO; 8];
    for level in 1..depth {
        let row = &mut w.traces[1].values[level * cols..(level + 1) * cols];
        if level > 1 {
            let prev: Vec<Val> = root.to_vec();
            row[2..10].copy_from_slice(&prev);
        }
        let out = perm.permute(ordered(row));
        row[18..34].copy_from_slice(&out);
        root.copy_from_slice(&out[..8]);
    }
    reseal(&mut w);
    let mut p = publics(&ps);
    p[1][8..16].copy_from_slice(&root);
    w.public_values[1] = p[1].clone();
    assert!(refused(&w, &p));
}
