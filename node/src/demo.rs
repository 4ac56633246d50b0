//! An embedded local network: several nodes in one process on 127.0.0.1, for
//! `starkscale demo` and for tests.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use libp2p::Multiaddr;

use crate::client;
use crate::node::{self, NodeConfig, NodeHandle};
use crate::progress::JobProgress;

/// The seed job shipped with the repository.
pub const SEED_JOB: &str = include_str!("../../tests/data/seed-matvec-10x10.json");
/// The seed job's exact product.
pub const SEED_PRODUCT: [i64; 10] = [2058, 1690, 3369, 2923, 2018, 2887, 2489, 2410, 2179, 2632];

/// Several nodes in one process, each with its own data directory.
pub struct LocalNet {
    /// The running nodes.
    pub nodes: Vec<NodeHandle>,
    /// Each node's full address (`/ip4/127.0.0.1/tcp/…/p2p/…`).
    pub addrs: Vec<Multiaddr>,
    dir: PathBuf,
    keep_dir: bool,
}

impl LocalNet {
    /// Starts `n` nodes; `tune` adjusts each node's configuration (by index) before it starts.
    pub async fn start(n: usize, tune: impl Fn(usize, &mut NodeConfig)) -> anyhow::Result<Self> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "starkscale-local-{}-{}-{}",
            std::process::id(),
            node::now_ms(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut net = Self {
            nodes: Vec::new(),
            addrs: Vec::new(),
            dir,
            keep_dir: false,
        };
        for _ in 0..n {
            net.add_node(&tune).await?;
        }
        Ok(net)
    }

    /// Directory holding every node's data.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Adds one node, bootstrapped to every running node.
    pub async fn add_node(
        &mut self,
        tune: impl Fn(usize, &mut NodeConfig),
    ) -> anyhow::Result<usize> {
        let index = self.nodes.len();
        let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse()?;
        let mut cfg = NodeConfig::new(self.dir.join(format!("node{index}")), listen);
        cfg.bootstrap = self.addrs.clone();
        tune(index, &mut cfg);
        let handle = node::start(cfg).await?;
        let addr = handle
            .addresses()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("node {index} has no address"))?;
        self.nodes.push(handle);
        self.addrs.push(addr);
        Ok(index)
    }

    /// Waits until every node is connected to all others and knows every aggregator.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let n = self.nodes.len();
        let deadline = Instant::now() + timeout;
        loop {
            let mut ready = true;
            for node in &self.nodes {
                let info = node.net.info().await?;
                let aggregators = node.stats.lock().map(|s| s.aggregators).unwrap_or(0);
                if info.connected.len() + 1 < n || aggregators < n {
                    ready = false;
                }
            }
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!("local network of {n} nodes did not form within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Keeps the data directories after shutdown.
    pub fn keep_data(&mut self) {
        self.keep_dir = true;
    }

    /// Stops every node and removes the data directories (unless kept).
    pub async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A pseudo-random int8 job `m × k` times a vector, as JSON.
pub fn random_job_json(m: usize, k: usize, seed: u64) -> String {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 255) as i64 - 127
    };
    let rows: Vec<String> = (0..m)
        .map(|_| {
            let row: Vec<String> = (0..k).map(|_| next().to_string()).collect();
            format!("[{}]", row.join(","))
        })
        .collect();
    let vector: Vec<String> = (0..k).map(|_| next().to_string()).collect();
    format!(
        "{{\"matrix\": [{}], \"vector\": [{}]}}",
        rows.join(","),
        vector.join(",")
    )
}

/// `starkscale demo`: starts `n` nodes, submits the seed job and a larger one through
/// different peers, and prints each verified result.
pub async fn run(n: usize, large_rows: usize, large_k: usize) -> anyhow::Result<()> {
    let n = n.max(2);
    println!("starting {n} nodes on 127.0.0.1 (each its own data directory and ed25519 identity)");
    let net = LocalNet::start(n, |_, cfg| {
        // Small shards so the larger job spreads over several workers.
        cfg.shard_entries = 1 << 18;
    })
    .await?;
    for (i, addr) in net.addrs.iter().enumerate() {
        println!("  node {i}: {addr}");
    }
    net.wait_ready(Duration::from_secs(30)).await?;
    println!("network formed: every node connected and advertising the aggregator role\n");

    let result = async {
        println!("job 1: the seed 10×10 matrix × vector, submitted through node 1");
        let bar = JobProgress::new("seed");
        let out = client::submit(SEED_JOB.as_bytes(), &net.addrs[1], Duration::from_secs(120), |p| bar.update(p)).await?;
        bar.finish("settled and verified");
        let y = out.verified.result.data().to_vec();
        println!("  result {y:?}");
        println!(
            "  verified: {} shard proof(s), signatures and commitments checked locally in {:.0} ms end to end",
            out.verified.credits.len(),
            out.elapsed.as_secs_f64() * 1e3
        );
        if y != SEED_PRODUCT {
            anyhow::bail!("seed job returned {y:?}, expected {SEED_PRODUCT:?}");
        }

        let json = random_job_json(large_rows, large_k, 42);
        println!("\njob 2: a {large_rows}×{large_k} int8 matrix × vector, submitted through node {}", n - 1);
        let bar = JobProgress::new("large");
        let out = client::submit(json.as_bytes(), &net.addrs[n - 1], Duration::from_secs(300), |p| bar.update(p)).await?;
        bar.finish("settled and verified");
        let spec = client::load_job(json.as_bytes())?;
        let workers: std::collections::BTreeSet<_> = out.verified.credits.iter().map(|c| c.worker).collect();
        let y = out.verified.result.data();
        println!(
            "  result: {} entries, first {:?}",
            y.len(),
            &y[..y.len().min(8)]
        );
        println!(
            "  verified: {} shard proofs from {} distinct workers, checked locally; {:.0} ms end to end",
            out.verified.credits.len(),
            workers.len(),
            out.elapsed.as_secs_f64() * 1e3
        );
        // Independent cross-check for the demo's reader (the proofs already guarantee it).
        if spec.reference_product()?.data() != y {
            anyhow::bail!("large job result differs from the reference product");
        }
        println!("  cross-check: equals the product computed natively here\n");
        anyhow::Ok(())
    }
    .await;
    net.shutdown().await;
    result?;
    println!("demo complete: both jobs settled with verified results");
    Ok(())
}
