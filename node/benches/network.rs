//! Network benchmark on a 4-node local network (in one process, real libp2p over loopback):
//! submit-to-verified-result time for the seed job and a 2048×1536 job, and network overhead
//! = CPU of all nodes for the job / CPU of proving the same shards in one process.
//!
//! Run: `cargo bench -p starkscale-node --bench network`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use starkscale_node::client;
use starkscale_node::demo::{random_job_json, LocalNet, SEED_JOB};
use starkscale_protocol::plan::{suggest_rows_per_shard, ShardPlan};
use starkscale_protocol::{JobLimits, JobSpec};

mod common;
use common::{cpu, ms};

const SHARD_ENTRIES: u64 = 1 << 20;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let net = LocalNet::start(4, |_, cfg| cfg.shard_entries = SHARD_ENTRIES)
        .await
        .unwrap();
    net.wait_ready(Duration::from_secs(30)).await.unwrap();

    // Seed job: five variants (distinct job ids), each through a different peer.
    let base: serde_json::Value = serde_json::from_str(SEED_JOB).unwrap();
    let mut times = Vec::new();
    for i in 0..5 {
        let mut job = base.clone();
        job["vector"][0] = serde_json::json!(base["vector"][0].as_i64().unwrap() + i);
        let json = job.to_string();
        let out = client::submit(
            json.as_bytes(),
            &net.addrs[(i as usize) % 4],
            Duration::from_secs(60),
            |_| {},
        )
        .await
        .unwrap();
        times.push(out.elapsed);
    }
    times.sort();
    println!("seed job (10×10), submit → locally verified result, 5 runs: median {:.0} ms, min {:.0} ms, max {:.0} ms",
        ms(times[2]), ms(times[0]), ms(times[4]));

    // 2048×1536 job: wall time and CPU of the whole process (all four nodes and the client).
    let json = random_job_json(2048, 1536, 5);
    let spec = JobSpec::from_json(&json, &JobLimits::default()).unwrap();
    // The client's parse and checks run in this process too: measure them alone to subtract.
    let cpu_p = cpu();
    client::load_job(json.as_bytes()).unwrap();
    // A job file runs as a one-off model: the client, as the model's owner, sets up every
    // shard before uploading. That is the owner's work, not the network's: subtract it too.
    starkscale_node::models::one_off(&spec, SHARD_ENTRIES).unwrap();
    let cpu_parse = cpu() - cpu_p;
    let cpu0 = cpu();
    let out = client::submit(
        json.as_bytes(),
        &net.addrs[1],
        Duration::from_secs(300),
        |_| {},
    )
    .await
    .unwrap();
    let cpu_all = cpu() - cpu0;
    // The client's own verification runs in this process too: measure it alone and subtract.
    let cpu1 = cpu();
    let network =
        starkscale_protocol::ids::NetworkId::from_name(starkscale_node::node::DEFAULT_NETWORK);
    client::verify_for_model(&out.settlement, &out.model, Some(spec.x()), &network).unwrap();
    let cpu_client = cpu() - cpu1;
    net.shutdown().await;

    // Baseline: set up and prove the same shards in one process, no network.
    let rows = suggest_rows_per_shard(2048, 1536, 1, SHARD_ENTRIES);
    let plan = ShardPlan::from_rows_per_shard(2048, rows).unwrap();
    let w = starkscale_node::convert::to_prover(spec.w()).unwrap();
    let x = starkscale_node::convert::to_prover(spec.x()).unwrap();
    let cpu2 = cpu();
    let wall = Instant::now();
    for range in plan.shards() {
        let shard = w
            .row_block(range.rows.start as usize, range.rows.end as usize)
            .unwrap();
        let pk = starkscale_prover::setup(&shard).unwrap();
        let binding = starkscale_prover::Binding {
            job_id: [0; 32],
            shard_index: range.index,
            worker: [1; 32],
        };
        starkscale_prover::prove(&pk, &x, &binding).unwrap();
    }
    let cpu_baseline = cpu() - cpu2;
    let wall_baseline = wall.elapsed();
    let cpu_nodes = cpu_all.saturating_sub(cpu_client + cpu_parse);
    println!(
        "2048×1536 job, {} shards on 4 nodes: submit → locally verified result {:.0} ms (proving the same shards in one process: {:.0} ms wall)",
        plan.shard_count(),
        ms(out.elapsed),
        ms(wall_baseline)
    );
    println!(
        "CPU: all nodes {:.0} ms (process {:.0} ms − client parse and owner's setup {:.0} ms − client verification {:.0} ms); one-process setup+prove {:.0} ms",
        ms(cpu_nodes), ms(cpu_all), ms(cpu_parse), ms(cpu_client), ms(cpu_baseline)
    );
    println!(
        "network overhead (CPU of all nodes / CPU of proving in one process): {:.2}",
        cpu_nodes.as_secs_f64() / cpu_baseline.as_secs_f64()
    );
}
