//! Recursion part 1: the transcript table replays the shard configuration's challenger
//! (`DuplexChallenger<Val, Poseidon2, 16, 8>`) exactly: its samples must equal those of the
//! native challenger on the same calls, and changing what is absorbed or expected fails.

#![allow(clippy::unwrap_used, missing_docs)]

use p3_challenger::{CanObserve, CanSample};
use p3_field::PrimeCharacteristicRing;
use starkscale_prover::config::{Challenger, Val};
use starkscale_recursion::circuit::{self, Table, Witness};
use starkscale_recursion::tables::transcript::{self, Call, TranscriptTable};

/// A call sequence shaped like a verifier's: observe a commitment (8), public values, sample
/// a challenge (4), observe more, sample many (forcing squeezes), with the native challenger's
/// samples as the expected values.
fn calls(seed: u32, observes: &[usize], samples: &[usize]) -> Vec<Call> {
    let mut native = Challenger::new(p3_koala_bear::default_koalabear_poseidon2_16());
    let mut out = Vec::new();
    let mut next = seed;
    for (o, s) in observes.iter().zip(samples) {
        for _ in 0..*o {
            next = next.wrapping_mul(1_103_515_245).wrapping_add(12_345) % 2_000_000_000;
            let v = Val::from_u32(next);
            native.observe(v);
            out.push(Call::Observe(v));
        }
        for _ in 0..*s {
            let v: Val = native.sample();
            out.push(Call::Sample(v));
        }
    }
    out
}

fn with_table(w: &Witness, calls: &[Call]) -> Vec<Table> {
    let mut tables = w.tables.clone();
    for t in &mut tables {
        if matches!(t, Table::Transcript(_)) {
            *t = Table::Transcript(TranscriptTable::new(&transcript::schedule(calls)));
        }
    }
    tables
}

#[test]
fn the_table_reproduces_the_native_challenger() {
    for (observes, samples) in [
        (vec![8, 3], vec![4, 1]),
        (vec![8, 8, 20, 0, 5], vec![4, 4, 12, 9, 1]),
        (vec![1, 7, 0, 16], vec![0, 8, 8, 33]),
    ] {
        let c = calls(observes.len() as u32, &observes, &samples);
        let mut w = Witness::default();
        w.add_transcript(&c).unwrap();
        w.prove_and_verify().unwrap();
    }
}

#[test]
fn a_different_expected_sample_or_absorbed_value_fails_verification() {
    let c = calls(5, &[8, 3, 0], &[4, 1, 10]);
    let mut w = Witness::default();
    w.add_transcript(&c).unwrap();
    let proof = circuit::prove(&w).unwrap();
    circuit::verify(&w.tables, &w.public_values, &proof).unwrap();
    for i in 0..c.len() {
        let mut changed = c.clone();
        changed[i] = match changed[i] {
            Call::Observe(v) => Call::Observe(v + Val::ONE),
            Call::Sample(v) => Call::Sample(v + Val::ONE),
        };
        assert!(
            circuit::verify(&with_table(&w, &changed), &w.public_values, &proof).is_err(),
            "call {i} changed but the proof verified"
        );
    }
}

#[test]
fn corrupting_the_chaining_or_an_absorbed_value_fails() {
    let c = calls(9, &[8, 5], &[4, 12]);
    let honest = {
        let mut w = Witness::default();
        w.add_transcript(&c).unwrap();
        w
    };
    let cols = transcript::COLS;
    // Column 1 is the first absorbed value of a row; column 9 the first of its copy of the
    // previous output.
    for (row, col) in [(0, 1), (1, 9), (2, 9 + 8)] {
        let mut w = honest.clone();
        w.traces[1].values[row * cols + col] += Val::ONE;
        assert!(w.prove_and_verify().is_err(), "row {row} column {col}");
    }
}

#[test]
fn a_real_shard_proofs_transcript_is_recomputed_in_the_circuit() {
    use starkscale_prover::{prove, setup, Binding, IntMatrix};
    use starkscale_recursion::native::replay::replay_transcript;
    for (rows, k) in [(8, 6), (40, 33)] {
        let w =
            IntMatrix::new(rows, k, (0..rows * k).map(|i| (i as i64 % 7) - 3).collect()).unwrap();
        let x = IntMatrix::new(k, 1, (0..k).map(|i| i as i64 - 2).collect()).unwrap();
        let pk = setup(&w).unwrap();
        let binding = Binding {
            job_id: [1; 32],
            shard_index: 0,
            worker: [2; 32],
        };
        let proven = prove(&pk, &x, &binding).unwrap();
        // The native verifier, run with a recording challenger: the real transcript.
        let calls = replay_transcript(
            pk.verifying_key(),
            &x,
            &proven.output,
            &binding,
            &proven.proof,
        )
        .unwrap();
        let samples = calls
            .iter()
            .filter(|c| matches!(c, Call::Sample(_)))
            .count();
        let observes = calls.len() - samples;
        assert!(
            samples > 32 && observes > 8 + k,
            "{samples} samples, {observes} observes"
        );
        eprintln!(
            "{rows} × {k} shard: {observes} values absorbed, {samples} sampled, {} duplexings",
            transcript::schedule(&calls).len()
        );
        // Every challenge is recomputed in the circuit from what the verifier absorbed.
        let mut witness = Witness::default();
        witness.add_transcript(&calls).unwrap();
        witness.prove_and_verify().unwrap();
        // A wrong output: the native verifier, and so the replay, refuses.
        let mut wrong = proven.output.data().to_vec();
        wrong[0] += 1;
        let wrong = IntMatrix::new(rows, 1, wrong).unwrap();
        assert!(
            replay_transcript(pk.verifying_key(), &x, &wrong, &binding, &proven.proof).is_err()
        );
    }
}
