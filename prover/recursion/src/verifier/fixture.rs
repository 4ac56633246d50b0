//! A real shard proof's circuit witness (8 × 20 weights, one vector: trees of height 2^9, the
//! preprocessed leaves three sponge rows long), built once, and a check that a corrupted copy
//! is refused.
#![allow(clippy::unwrap_used)]
use std::sync::OnceLock;

use super::*;

/// Where each of the fixture's tables sits in its circuit.
const fn at(table: ProofTable) -> usize {
    1 + table as usize
}
pub(crate) const TRANSCRIPT: usize = at(ProofTable::Transcript);
pub(crate) const TREE: usize = at(ProofTable::Openings);
pub(crate) const INDEX: usize = at(ProofTable::Index);
pub(crate) const EXT: usize = at(ProofTable::Program);
pub(crate) const DEEP: usize = at(ProofTable::Deep);
pub(crate) const FRI: usize = at(ProofTable::Fri);

pub(crate) fn honest() -> Witness {
    static W: OnceLock<Witness> = OnceLock::new();
    W.get_or_init(|| {
        let w = IntMatrix::new(8, 20, (0..160).map(|i| i % 9 - 4).collect()).unwrap();
        let x = IntMatrix::new(20, 1, (0..20).map(|i| i % 5 - 2).collect()).unwrap();
        let pk = starkscale_prover::shard::setup(&w).unwrap();
        let binding = Binding {
            job_id: [1; 32],
            shard_index: 0,
            worker: [2; 32],
        };
        let proven = starkscale_prover::shard::prove(&pk, &x, &binding).unwrap();
        let proof = shard_circuit(
            pk.verifying_key(),
            &x,
            &proven.output,
            &binding,
            &proven.proof,
        )
        .unwrap();
        witness(&[proof]).unwrap()
    })
    .clone()
}

/// Whether the witness with `cell` of `table` changed by `f` is refused (by the prover or
/// by the verifier of the honest tables).
pub(crate) fn refused(
    table: usize,
    cols: usize,
    (row, col): (usize, usize),
    f: impl Fn(Val) -> Val,
) -> bool {
    let mut w = honest();
    let cell = &mut w.traces[table].values[row * cols + col];
    *cell = f(*cell);
    w.prove_and_verify().is_err()
}

#[test]
fn the_honest_fixture_verifies() {
    let w = honest();
    w.prove_and_verify().unwrap();
    assert!(w.security_bits() >= 100, "{} bits", w.security_bits());
}
