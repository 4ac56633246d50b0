//! Flood benchmark: an honest job's submit → verified-result time on a local 4-node network
//! (one process, real libp2p over loopback), with no flood and while one peer floods every
//! node with submissions (oversized, nested, huge-array and unprovable job JSON, a dozen at
//! once, again as soon as they are answered) and answers catch-up requests with endless
//! pages, as fast as it can. Median of several runs each, printed as a table with the ratio.
//!
//! Run: `cargo bench -p starkscale-tests --bench flood` (`FLOOD_RUNS=N` for N runs each;
//! default 5, about a minute).

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use starkscale_node::client;
use starkscale_node::demo::random_job_json;
use starkscale_protocol::{JobLimits, JobSpec};
use starkscale_tests::adversary::Cheat;
use starkscale_tests::chaos::{adversary, tune, wait_connected, Cluster};

const NODES: usize = 4;

/// Submits `runs` distinct 128 × 128 jobs (16 shards each) one after another through
/// node 0, checks each result, and returns the times, sorted.
async fn times(cluster: &Cluster, runs: usize, seed: u64) -> Vec<Duration> {
    let mut out = Vec::new();
    for run in 0..runs as u64 {
        let json = random_job_json(128, 128, seed + run);
        let spec = JobSpec::from_json_slice(json.as_bytes(), &JobLimits::default()).unwrap();
        let outcome = client::submit(
            json.as_bytes(),
            cluster.addr(0),
            Duration::from_secs(300),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(outcome.verified.result, spec.reference_product().unwrap());
        out.push(outcome.elapsed);
    }
    out.sort();
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let runs: usize = std::env::var("FLOOD_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let cluster = Cluster::start(NODES, |_, cfg| tune(cfg)).await.unwrap();
    cluster
        .wait_ready(NODES, Duration::from_secs(30))
        .await
        .unwrap();
    let quiet = times(&cluster, runs, 1_000).await;

    let adv = adversary(&cluster, Cheat::SubmitFlood, 0xF1).await.unwrap();
    wait_connected(&cluster, adv.peer_id, Duration::from_secs(20))
        .await
        .unwrap();
    adv.arm();
    while adv.stats().submission_answers.values().sum::<u64>() < 12 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = adv.stats();
    let flooded = times(&cluster, runs, 2_000).await;
    let after = adv.stats();

    let median = |t: &[Duration]| t[t.len() / 2];
    println!("honest 128×128 job (16 shards) through node 0 of {NODES}, submit → locally verified result, {runs} runs each");
    println!();
    println!("| condition | median | min | max |");
    println!("| --- | --- | --- | --- |");
    for (name, t) in [
        ("no flood", &quiet),
        ("submission + catch-up flood", &flooded),
    ] {
        println!(
            "| {name} | {:.0} ms | {:.0} ms | {:.0} ms |",
            ms(median(t)),
            ms(t[0]),
            ms(t[t.len() - 1])
        );
    }
    println!();
    println!(
        "ratio (flooded / quiet median): {:.2}×",
        ms(median(&flooded)) / ms(median(&quiet))
    );
    let sent = after.submissions_sent - before.submissions_sent;
    let secs = flooded.iter().map(Duration::as_secs_f64).sum::<f64>();
    println!(
        "flood during the flooded runs: {sent} submissions ({:.0}/s), {} catch-up pages served; answers over the whole flood: {:?}",
        sent as f64 / secs,
        after.catch_up_pages_served,
        after.submission_answers
    );
    adv.shutdown().await;
    cluster.shutdown().await;
}
