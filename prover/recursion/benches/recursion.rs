//! Recursion benchmark (part 1 of the in-circuit verifier): for one and four real shard proofs,
//! the native verify time beside the circuit that recomputes their transcripts and re-hashes
//! every Merkle opening they contain — rows per table, prove time, verify time and proof
//! size. The circuit does not yet check FRI folding or the constraints at ζ (part 2), so these
//! figures cover that part of the verifier only.
//!
//! Run: `cargo bench -p starkscale-recursion --bench recursion`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Instant;

use starkscale_prover::{prove, setup, verify, Binding, IntMatrix};
use starkscale_recursion::circuit::{self, Table};
use starkscale_recursion::verifier::{self, ShardLayout, ShardWitness};

fn matrix(rows: usize, cols: usize, seed: i64) -> IntMatrix {
    let data = (0..rows * cols)
        .map(|i| ((i as i64 * 7919 + seed * 104_729) % 255) - 127)
        .collect();
    IntMatrix::new(rows, cols, data).unwrap()
}

/// Proves `count` shards of one shape; returns their circuits (each in its own range), the
/// total native verify time and the mean shard proof size.
fn shards(rows: usize, k: usize, count: usize) -> (Vec<(ShardLayout, ShardWitness)>, f64, usize) {
    let (mut out, mut native, mut bytes) = (Vec::new(), 0.0, 0);
    for s in 0..count {
        let w = matrix(rows, k, s as i64);
        let x = matrix(k, 1, 100 + s as i64);
        let pk = setup(&w).unwrap();
        let binding = Binding {
            job_id: [7; 32],
            shard_index: s as u32,
            worker: [9; 32],
        };
        let proven = prove(&pk, &x, &binding).unwrap();
        bytes += proven.proof.to_bytes().len();
        let vk = pk.verifying_key();
        let started = Instant::now();
        verify(vk, &x, &proven.output, &binding, &proven.proof).unwrap();
        native += started.elapsed().as_secs_f64();
        let (layout, witness) =
            verifier::shard_circuit(vk, &x, &proven.output, &binding, &proven.proof).unwrap();
        out.push((layout, witness));
    }
    (out, native, bytes / count)
}

fn main() {
    println!("| shard | proofs | shard proof | native verify | circuit rows: permutation / transcript / openings / index / program / deep / fri | circuit prove | circuit verify | circuit proof | verify ratio circuit/native |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (rows, k) in [(256, 256), (1024, 1536)] {
        for count in [1usize, 4] {
            let (proofs, native, proof_bytes) = shards(rows, k, count);
            let witness = verifier::witness(&proofs).unwrap();
            let mut heights = [0usize; 7];
            for (table, trace) in witness.tables.iter().zip(&witness.traces) {
                let slot = match table {
                    Table::Poseidon2(_) => 0,
                    Table::Transcript(_) => 1,
                    Table::Tree(_) => 2,
                    Table::Index(_) => 3,
                    Table::Ext(_) => 4,
                    Table::Deep(_) => 5,
                    Table::Fri(_) => 6,
                };
                heights[slot] += trace.values.len() / trace.width;
            }
            let started = Instant::now();
            let proof = circuit::prove(&witness).unwrap();
            let prove_s = started.elapsed().as_secs_f64();
            let layouts: Vec<ShardLayout> = proofs.iter().map(|(l, _)| l.clone()).collect();
            let started = Instant::now();
            circuit::verify(
                &verifier::tables(&layouts).unwrap(),
                &verifier::public_values(&layouts),
                &proof,
            )
            .unwrap();
            let verify_s = started.elapsed().as_secs_f64();
            let size = starkscale_prover::codec::encode(&proof.proof).len();
            let h = heights.map(|h| h.to_string()).join(" / ");
            println!(
                "| {rows}×{k} | {count} | {:.0} KiB | {:.1} ms | {h} | {:.0} ms | {:.1} ms | {:.0} KiB | {:.1}× |",
                proof_bytes as f64 / 1024.0,
                native * 1e3,
                prove_s * 1e3,
                verify_s * 1e3,
                size as f64 / 1024.0,
                verify_s / native
            );
        }
    }
}
