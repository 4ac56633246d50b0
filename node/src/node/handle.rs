//! The handle a running node is driven and observed through, and the counters it shows.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use starkscale_protocol::ids::PeerKey;
use tokio::sync::oneshot;

use crate::metrics::Metrics;
use crate::network::Client;

/// What a node knows, refreshed every tick for its handle (demo and tests wait on it).
/// Counters of work done are in [`Metrics`].
#[derive(Clone, Debug, Default)]
pub struct NodeStats {
    /// Aggregators currently in the election set.
    pub aggregators: usize,
    /// Jobs known.
    pub jobs: usize,
    /// Jobs settled.
    pub settled: usize,
    /// Gossip messages rejected, by the peer that sent them.
    pub rejects: HashMap<PeerId, u32>,
    /// Invalid shard proofs refused (bad proof bytes, wrong output, wrong binding).
    pub proofs_refused: u64,
}

/// A running node.
pub struct NodeHandle {
    /// Live counters.
    pub stats: std::sync::Arc<std::sync::Mutex<NodeStats>>,
    /// Our peer id.
    pub peer_id: PeerId,
    /// Our ed25519 key.
    pub key: PeerKey,
    /// The network client (for tests and the CLI).
    pub net: Client,
    /// Metrics.
    pub metrics: Metrics,
    /// Where metrics are served, if anywhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub(super) shutdown: Option<oneshot::Sender<()>>,
    pub(super) task: tokio::task::JoinHandle<()>,
    pub(super) net_task: tokio::task::JoinHandle<()>,
}

impl NodeHandle {
    /// Our listen addresses with `/p2p/<peer id>` appended, once listening.
    pub async fn addresses(&self) -> anyhow::Result<Vec<Multiaddr>> {
        for _ in 0..100 {
            let info = self.net.info().await?;
            if !info.listen_addrs.is_empty() {
                return Ok(info
                    .listen_addrs
                    .into_iter()
                    .map(|a| a.with(libp2p::multiaddr::Protocol::P2p(self.peer_id)))
                    .collect());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!("node did not start listening")
    }

    /// Stops the node and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        self.net_task.abort();
    }
}
