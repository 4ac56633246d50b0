//! Recursion benchmark (partial, like the circuit): for one and four real shard proofs, the
//! native verify time beside the circuit that recomputes their transcripts — rows per table,
//! prove time, verify time and proof size. Merkle openings and FRI are not in the circuit yet,
//! so these figures cover the transcript part of the verifier only.
//!
//! Run: `cargo bench -p starkscale-prover --bench recursion`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Instant;

use starkscale_prover::recursion::circuit::{self, Table, Witness};
use starkscale_prover::shard::replay_transcript;
use starkscale_prover::{prove, setup, verify, Binding, IntMatrix};

fn matrix(rows: usize, cols: usize, seed: i64) -> IntMatrix {
    let data = (0..rows * cols)
        .map(|i| ((i as i64 * 7919 + seed * 104_729) % 255) - 127)
        .collect();
    IntMatrix::new(rows, cols, data).unwrap()
}

fn main() {
    let (rows, k) = (256, 256);
    println!("shard proofs of {rows}×{k} matrix × vector (fixed shape), transcript part only\n");
    println!(
        "| proofs | native verify | circuit rows (permutation / transcript) | circuit prove | circuit verify | circuit proof |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for count in [1usize, 4] {
        let mut native = 0.0;
        let mut witness = Witness::default();
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
            let started = Instant::now();
            verify(
                pk.verifying_key(),
                &x,
                &proven.output,
                &binding,
                &proven.proof,
            )
            .unwrap();
            native += started.elapsed().as_secs_f64();
            let calls = replay_transcript(
                pk.verifying_key(),
                &x,
                &proven.output,
                &binding,
                &proven.proof,
            )
            .unwrap();
            witness.add_transcript(&calls).unwrap();
        }
        let (mut perm_rows, mut transcript_rows) = (0, 0);
        for (table, trace) in witness.tables.iter().zip(&witness.traces) {
            let height = trace.values.len() / trace.width;
            match table {
                Table::Poseidon2(_) => perm_rows += height,
                Table::Transcript(_) => transcript_rows += height,
                _ => {}
            }
        }
        let started = Instant::now();
        let proof = circuit::prove(&witness).unwrap();
        let prove_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        circuit::verify(&witness.tables, &witness.public_values, &proof).unwrap();
        let verify_s = started.elapsed().as_secs_f64();
        let size = starkscale_prover::codec::encode(&proof.proof).len();
        println!(
            "| {count} | {:.1} ms | {perm_rows} / {transcript_rows} | {:.1} ms | {:.1} ms | {:.0} KiB |",
            native * 1e3,
            prove_s * 1e3,
            verify_s * 1e3,
            size as f64 / 1024.0
        );
    }
}
