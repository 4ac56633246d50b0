//! Recursion benchmark: the complete in-circuit verifier on one and four real shard proofs of a
//! 256×256 and the 3M-entry (2048×1536) shard — rows per table, circuit prove time, verify
//! time and proof size — beside the shard's own prove time and native verify time, measured in
//! the same run (median of 3). Also the share of the circuit spent hashing the preprocessed
//! (weight) leaves, the cost the shard AIR's layout of W sets.
//!
//! Run: `cargo bench -p starkscale-recursion --bench recursion` (add `-- --layouts` for the
//! W-layout comparison instead).

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

const RUNS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `f` `RUNS` times; the median in seconds and the last result.
fn timed<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        last = Some(f());
        times.push(started.elapsed().as_secs_f64());
    }
    (median(times), last.unwrap())
}

/// Proves `count` shards of one shape; returns their circuits (each in its own range), the
/// median shard prove time (one proof), the total native verify time and the mean shard proof
/// size.
fn shards(
    rows: usize,
    k: usize,
    count: usize,
) -> (Vec<(ShardLayout, ShardWitness)>, f64, f64, usize) {
    let (mut out, mut prove_s, mut native, mut bytes) = (Vec::new(), Vec::new(), 0.0, 0);
    for s in 0..count {
        let w = matrix(rows, k, s as i64);
        let x = matrix(k, 1, 100 + s as i64);
        let pk = setup(&w).unwrap();
        let binding = Binding {
            job_id: [7; 32],
            shard_index: s as u32,
            worker: [9; 32],
        };
        let (t, proven) = timed(|| prove(&pk, &x, &binding).unwrap());
        prove_s.push(t);
        bytes += proven.proof.to_bytes().len();
        let vk = pk.verifying_key();
        let (t, ()) = timed(|| verify(vk, &x, &proven.output, &binding, &proven.proof).unwrap());
        native += t;
        let (layout, witness) =
            verifier::shard_circuit(vk, &x, &proven.output, &binding, &proven.proof).unwrap();
        out.push((layout, witness));
    }
    (out, median(prove_s), native, bytes / count)
}

/// The cost of W's layout: the same 3M weights as a 2048×1536 shard laid out narrower and
/// taller (what a shard AIR holding W in fewer columns would commit and open), one proof each:
/// shard prove, circuit prove and their sum.
fn layouts() {
    println!("| W layout (rows × k) | shard prove | shard proof | circuit rows: permutation / openings / program / deep | circuit prove | shard + circuit |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (rows, k) in [(2048, 1536), (8192, 384), (32768, 96)] {
        let (proofs, shard_prove, _, proof_bytes) = shards(rows, k, 1);
        let witness = verifier::witness(&proofs).unwrap();
        let height = |i: usize| witness.traces[i].values.len() / witness.traces[i].width;
        let (prove_s, _) = timed(|| circuit::prove(&witness).unwrap());
        println!(
            "| {rows} × {k} | {:.1} ms | {:.0} KiB | {} / {} / {} / {} | {:.0} ms | {:.0} ms |",
            shard_prove * 1e3,
            proof_bytes as f64 / 1024.0,
            height(0),
            height(2),
            height(4),
            height(5),
            prove_s * 1e3,
            (shard_prove + prove_s) * 1e3,
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--layouts") {
        layouts();
        return;
    }
    println!("| shard | proofs | shard prove | shard proof | native verify | circuit rows: permutation / transcript / openings / index / program / deep / fri | circuit prove | circuit prove ÷ shard prove | circuit verify | circuit proof | conjectured bits | weight-leaf share of the openings rows |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (rows, k) in [(256, 256), (2048, 1536)] {
        for count in [1usize, 4] {
            let (proofs, shard_prove, native, proof_bytes) = shards(rows, k, count);
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
            // Rows of the openings table that hash weight (preprocessed) leaves, of all its
            // used rows.
            let (weight_rows, used_rows): (usize, usize) = proofs
                .iter()
                .map(|(l, _)| {
                    let per_query = l.openings.len() / l.shape.queries;
                    let weight: usize = l
                        .openings
                        .iter()
                        .skip(2)
                        .step_by(per_query)
                        .map(|o| o.leaf_rows())
                        .sum();
                    let used: usize = l.openings.iter().map(|o| o.leaf_rows() + o.depth).sum();
                    (weight, used)
                })
                .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
            let (prove_s, proof) = timed(|| circuit::prove(&witness).unwrap());
            let layouts: Vec<ShardLayout> = proofs.iter().map(|(l, _)| l.clone()).collect();
            let tables = verifier::tables(&layouts).unwrap();
            let public = verifier::public_values(&layouts);
            let (verify_s, ()) = timed(|| circuit::verify(&tables, &public, &proof).unwrap());
            let size = starkscale_prover::codec::encode(&proof.proof).len();
            let h = heights.map(|h| h.to_string()).join(" / ");
            println!(
                "| {rows}×{k} | {count} | {:.1} ms | {:.0} KiB | {:.1} ms | {h} | {:.0} ms | {:.1}× | {:.1} ms | {:.0} KiB | {} | {:.0} % |",
                shard_prove * 1e3,
                proof_bytes as f64 / 1024.0,
                native * 1e3,
                prove_s * 1e3,
                prove_s / (shard_prove * count as f64),
                verify_s * 1e3,
                size as f64 / 1024.0,
                witness.security_bits(),
                100.0 * weight_rows as f64 / used_rows as f64,
            );
        }
    }
}
