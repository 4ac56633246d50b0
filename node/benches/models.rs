//! Models benchmark on a 4-node local network (one process, real libp2p over loopback):
//!
//! * a 4096×4096 int8 model: the owner's setup, registration (upload), the first inference
//!   (workers fetch their rows and set up), then repeated inferences with kept proving keys:
//!   submit → locally verified result, median of 5;
//! * network overhead of a repeated inference: CPU of all nodes ÷ CPU of proving the same
//!   shards in one process with the keys already set up (the same work with no network);
//! * an 11008×4096 layer (LLaMA-7B MLP shape) registered and inferred once;
//! * 4096×4096 with a batch of 64 vectors (reported as settled or with the error it fails
//!   with: the settlement is a bundle of shard proofs until the recursive settlement lands).
//!
//! Run: `cargo bench -p starkscale-node --bench models`
//! (`MODELS_BENCH_QUICK=1` skips the 11008×4096 layer and the batch of 64).

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use starkscale_node::client::{self, SubmitOptions};
use starkscale_node::demo::LocalNet;
use starkscale_node::models;
use starkscale_protocol::ids::NetworkId;
use starkscale_protocol::plan::{ShardPlan, DEFAULT_TARGET_ENTRIES_PER_SHARD};
use starkscale_protocol::{IntMatrix, ModelId, SignedModel};

mod common;
use common::{cpu, ms};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Peak resident memory of this process (all four nodes and the client), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// Random int8 entries (xorshift).
fn random(rows: usize, cols: usize, seed: u64) -> IntMatrix {
    let mut state = seed | 1;
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

/// Sums over every node: proofs made, proofs verified, setups, chunk bytes fetched.
fn counters(net: &LocalNet) -> [u64; 4] {
    let mut out = [0; 4];
    for n in &net.nodes {
        let m = &n.metrics;
        out[0] += m.proofs_made.get();
        out[1] += m.proofs_verified.get();
        out[2] += m.setups.get();
        out[3] += m.chunk_bytes_fetched.get();
    }
    out
}

const TIMEOUT: Duration = Duration::from_secs(3600);

fn network() -> NetworkId {
    NetworkId::from_name(starkscale_node::node::DEFAULT_NETWORK)
}

/// The owner's setup and the upload through node 0; prints both times.
async fn register(net: &LocalNet, label: &str, w: IntMatrix) -> (SignedModel, IntMatrix) {
    let (m, k) = (w.rows() as u32, w.cols() as u32);
    let rows = models::rows_per_shard(m, k, 1, DEFAULT_TARGET_ENTRIES_PER_SHARD);
    let owner = SigningKey::from_bytes(&[5; 32]);
    let started = Instant::now();
    let name = label.to_string();
    let (model, w) = tokio::task::spawn_blocking(move || {
        let model = models::build(&name, &w, rows, &owner).unwrap();
        (model, w)
    })
    .await
    .unwrap();
    let setup = started.elapsed();
    let started = Instant::now();
    client::register(&net.addrs[0], &model, &w, TIMEOUT, |_| {})
        .await
        .unwrap();
    println!(
        "{label}: owner's setup of {} shards {:.0} ms; registration (upload of {:.0} MiB) {:.0} ms",
        model.manifest.shard_keys.len(),
        ms(setup),
        (w.len() * 4) as f64 / (1 << 20) as f64,
        ms(started.elapsed())
    );
    (model, w)
}

async fn infer(
    net: &LocalNet,
    via: usize,
    model: ModelId,
    x: &IntMatrix,
) -> anyhow::Result<client::Outcome> {
    client::infer(
        &net.addrs[via],
        model,
        x,
        &SubmitOptions::new(TIMEOUT),
        |_| {},
    )
    .await
}

/// CPU of proving every shard of `model` for `x` in one process, keys set up beforehand (not
/// counted), and the wall time of the native product (the dot products, no proof).
fn one_process(model: &SignedModel, w: &IntMatrix, x: &IntMatrix) -> (Duration, Duration) {
    let plan =
        ShardPlan::from_rows_per_shard(w.rows() as u32, model.manifest.rows_per_shard).unwrap();
    let wp = starkscale_node::convert::to_prover(w).unwrap();
    let xp = starkscale_node::convert::to_prover(x).unwrap();
    let keys: Vec<_> = plan
        .shards()
        .map(|range| {
            let shard = wp
                .row_block(range.rows.start as usize, range.rows.end as usize)
                .unwrap();
            starkscale_prover::setup(&shard).unwrap()
        })
        .collect();
    let cpu0 = cpu();
    let mut proven = Vec::new();
    for (index, pk) in keys.iter().enumerate() {
        let binding = starkscale_prover::Binding {
            job_id: [0; 32],
            shard_index: index as u32,
            worker: [1; 32],
        };
        proven.push((
            binding,
            starkscale_prover::prove(pk, &xp, &binding).unwrap(),
        ));
    }
    let prove_cpu = cpu() - cpu0;
    // For the breakdown: one verification of every shard proof (each peer does this).
    let cpu1 = cpu();
    for ((binding, p), pk) in proven.iter().zip(&keys) {
        starkscale_prover::verify(pk.verifying_key(), &xp, &p.output, binding, &p.proof).unwrap();
    }
    println!(
        "  (one process: proving {} shards {:.0} ms CPU; verifying them once {:.0} ms CPU)",
        keys.len(),
        ms(prove_cpu),
        ms(cpu() - cpu1)
    );
    let wall = Instant::now();
    let product = w.checked_mul(x).unwrap();
    std::hint::black_box(product);
    (prove_cpu, wall.elapsed())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // Node logs on stderr when RUST_LOG asks for them.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let quick = std::env::var_os("MODELS_BENCH_QUICK").is_some();
    let net = LocalNet::start(4, |_, _| {}).await.unwrap();
    net.wait_ready(Duration::from_secs(30)).await.unwrap();

    // 4096×4096: register, first inference, repeated inferences.
    let (model, w) = register(&net, "4096×4096", random(4096, 4096, 1)).await;
    let id = model.id();
    let x0 = random(4096, 1, 100);
    let first = infer(&net, 1, id, &x0).await.unwrap();
    println!(
        "4096×4096: first inference (workers fetch rows and set up) {:.0} ms",
        ms(first.elapsed)
    );
    let setups_before: u64 = net.nodes.iter().map(|n| n.metrics.setups.get()).sum();
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    for i in 0..5u64 {
        let x = random(4096, 1, 1000 + 2 * i);
        let before = counters(&net);
        let cpu0 = cpu();
        let out = infer(&net, (i as usize) % 4, id, &x).await.unwrap();
        let cpu_all = cpu() - cpu0;
        let after = counters(&net);
        println!(
            "  run {i}: {:.0} ms, process CPU {:.0} ms; proofs made {}, proofs verified by peers {}, setups {}, W/X bytes fetched {}",
            ms(out.elapsed),
            ms(cpu_all),
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2],
            after[3] - before[3]
        );
        // The client's own verification ran in this process too: measure it alone.
        let cpu1 = cpu();
        client::verify_for_model(&out.settlement, &id, Some(&x), &network()).unwrap();
        let cpu_client = cpu() - cpu1;
        walls.push(out.elapsed);
        cpus.push(cpu_all.saturating_sub(cpu_client));
    }
    let setups_after: u64 = net.nodes.iter().map(|n| n.metrics.setups.get()).sum();
    let (prove_cpu, native) = one_process(&model, &w, &x0);
    let node_cpu = median(cpus);
    println!(
        "4096×4096: repeated inference, submit → locally verified result, 5 runs: median {:.0} ms (min {:.0}, max {:.0}); setups during them: {}",
        ms(median(walls.clone())),
        ms(*walls.iter().min().unwrap()),
        ms(*walls.iter().max().unwrap()),
        setups_after - setups_before
    );
    println!(
        "4096×4096: CPU of all nodes per repeated inference {:.0} ms; proving the same shards in one process with kept keys {:.0} ms; network overhead {:.2}",
        ms(node_cpu),
        ms(prove_cpu),
        node_cpu.as_secs_f64() / prove_cpu.as_secs_f64()
    );
    println!(
        "4096×4096: native product (no proof) {:.1} ms; verified inference / native: {:.0}×",
        ms(native),
        median(walls).as_secs_f64() / native.as_secs_f64()
    );
    if quick {
        println!(
            "peak memory of the process (4 nodes + client): {:.0} MiB",
            peak_rss_mib()
        );
        net.shutdown().await;
        return;
    }

    // 4096×4096 with a batch of 64 vectors.
    let batch = random(4096, 64, 300);
    match infer(&net, 2, id, &batch).await {
        Ok(out) => println!(
            "4096×4096 × 64 vectors: submit → locally verified result {:.0} ms",
            ms(out.elapsed)
        ),
        Err(e) => println!("4096×4096 × 64 vectors: does not settle: {e:#}"),
    }

    // An 11008×4096 layer.
    let (big, _w) = register(&net, "11008×4096", random(11008, 4096, 2)).await;
    match infer(&net, 3, big.id(), &random(4096, 1, 400)).await {
        Ok(out) => println!(
            "11008×4096: first inference {:.0} ms, {} shards",
            ms(out.elapsed),
            out.verified.credits.len()
        ),
        Err(e) => println!("11008×4096: does not settle: {e:#}"),
    }
    println!(
        "peak memory of the process (4 nodes + client): {:.0} MiB",
        peak_rss_mib()
    );
    net.shutdown().await;
}
