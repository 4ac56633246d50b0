//! Shard prover benchmark: setup, prove and verify times, proof size and peak memory for the
//! shapes of the prover issue, each beside the native computation of the same product measured
//! in the same run.
//!
//! Run: `cargo bench -p starkscale-prover --bench shard` (add `-- --quick` for one repetition).

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use starkscale_prover::{compute, prove_output, setup, verify, Binding, IntMatrix};

fn matrix(rows: usize, cols: usize, seed: u64) -> IntMatrix {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let data = (0..rows * cols)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 255) as i64 - 127
        })
        .collect();
    IntMatrix::new(rows, cols, data).unwrap()
}

/// The native baseline, no checks, no proof: row-times-vector dot products for one column,
/// the schoolbook (i, j, t) loop for matrix × matrix.
fn native(w: &IntMatrix, x: &IntMatrix) -> Vec<i64> {
    let (m, k, n) = (w.rows(), w.cols(), x.cols());
    let (wd, xd) = (w.data(), x.data());
    if n == 1 {
        return wd
            .chunks_exact(k)
            .map(|row| row.iter().zip(xd).map(|(a, b)| a * b).sum())
            .collect();
    }
    let mut out = vec![0i64; m * n];
    for i in 0..m {
        let acc = &mut out[i * n..(i + 1) * n];
        for j in 0..k {
            let wij = wd[i * k + j];
            for (a, &xv) in acc.iter_mut().zip(&xd[j * n..(j + 1) * n]) {
                *a += wij * xv;
            }
        }
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..reps {
        let start = Instant::now();
        let out = black_box(f());
        times.push(start.elapsed());
        last = Some(out);
    }
    (median(times), last.unwrap())
}

/// Resets the kernel's peak-RSS counter (Linux), so VmHWM measures one case.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn case(label: &str, m: usize, k: usize, n: usize, reps: usize) {
    if let Some(only) = std::env::args().skip_while(|a| a != "--only").nth(1) {
        if !label.contains(&only) {
            return;
        }
    }
    let w = matrix(m, k, 1);
    let x = matrix(k, n, 2);
    let binding = Binding {
        job_id: [1; 32],
        shard_index: 0,
        worker: [2; 32],
    };
    let (native_t, reference) = time(reps.max(3), || native(&w, &x));
    reset_peak();
    let (setup_t, pk) = time(reps, || setup(&w).unwrap());
    let (compute_t, output) = time(reps.max(3), || compute(&pk, &x).unwrap());
    assert_eq!(output.data(), reference.as_slice());
    let (prove_t, proof) = time(reps, || prove_output(&pk, &x, &output, &binding).unwrap());
    let peak = peak_mib();
    let bytes = proof.to_bytes();
    let (verify_t, ()) = time(reps.max(3), || {
        verify(pk.verifying_key(), &x, &output, &binding, &proof).unwrap()
    });
    println!(
        "| {label} | {m}×{k}·{k}×{n} | {:.1} | {:.1} | {:.2} | {:.1} | {:.0} | {:.3} | {:.1} | {:.2}× | {:.2}× |",
        ms(setup_t),
        ms(prove_t),
        ms(verify_t),
        bytes.len() as f64 / 1024.0,
        peak,
        ms(native_t),
        ms(compute_t),
        prove_t.as_secs_f64() / native_t.as_secs_f64(),
        (prove_t + compute_t).as_secs_f64() / native_t.as_secs_f64(),
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 1 } else { 3 };
    println!(
        "configuration {} (id {}), {} rayon threads",
        starkscale_prover::CONFIG_NAME,
        starkscale_prover::CONFIG_ID,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "| case | shape | setup ms | prove ms | verify ms | proof KiB | peak MiB | native ms | compute ms | prove/native | (compute+prove)/native |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    case("matvec 256²", 256, 256, 1, reps);
    case("matvec 1024²", 1024, 1024, 1, reps);
    case("matvec 3M", 2048, 1536, 1, reps);
    case("batch of 16 (Freivalds)", 2048, 1536, 16, reps);
    case("matmul n=1024 (Freivalds)", 1024, 1024, 1024, 1);
}
