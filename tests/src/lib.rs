//! Test utilities for multi-node tests: build small in-process networks on 127.0.0.1 and
//! submit jobs to them. The networks themselves live in [`starkscale_node::demo::LocalNet`].

pub mod adversary;
pub mod chaos;

use std::time::Duration;

use starkscale_node::client::{self, Outcome};
use starkscale_node::demo::LocalNet;
use starkscale_node::node::NodeConfig;

/// Starts `n` nodes with `tune` applied and waits until they form a network.
pub async fn build_network(
    n: usize,
    tune: impl Fn(usize, &mut NodeConfig),
) -> anyhow::Result<LocalNet> {
    let net = LocalNet::start(n, tune).await?;
    net.wait_ready(Duration::from_secs(30)).await?;
    Ok(net)
}

/// Submits `json` through node `via` and returns the locally verified outcome.
pub async fn submit(
    net: &LocalNet,
    via: usize,
    json: &str,
    timeout: Duration,
) -> anyhow::Result<Outcome> {
    client::submit(json.as_bytes(), &net.addrs[via], timeout, |_| {}).await
}

/// The id of the job `spec` becomes when submitted as a job file through a peer whose
/// `shard_entries` is `shard_entries` (its one-off model's setup included: CPU-bound).
pub fn job_id(
    spec: &starkscale_protocol::JobSpec,
    shard_entries: u64,
) -> starkscale_protocol::JobId {
    starkscale_node::models::one_off_job_id(spec, shard_entries)
        .expect("a valid job spec has a one-off model")
}
