//! Prometheus metrics: job and proof counters, prove and verify times, bytes moved, gossip
//! verdicts per peer, and libp2p's own swarm, gossipsub, identify and kademlia metrics, served
//! as text on `GET /metrics`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of the gossip verdict counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    /// `accept`, `ignore` or `reject`.
    pub verdict: String,
    /// The peer the message came from.
    pub peer: String,
}

/// The node's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    /// libp2p's metrics, recorded by the network event loop.
    pub libp2p: Arc<libp2p::metrics::Metrics>,
    /// Jobs known.
    pub jobs: Gauge,
    /// Jobs settled.
    pub jobs_settled: Gauge,
    /// Shard proofs this node made.
    pub proofs_made: Counter,
    /// Shard setups (commitments of W shards) this node computed to prove.
    pub setups: Counter,
    /// Shards proved with a proving key kept from an earlier job (no setup).
    pub proving_key_hits: Counter,
    /// Bytes of proving keys kept in memory.
    pub proving_key_bytes: Gauge,
    /// Shard proofs this node verified and accepted.
    pub proofs_verified: Counter,
    /// Shard proofs that failed verification.
    pub proofs_rejected: Counter,
    /// Seconds per shard: fetch, setup and prove.
    pub prove_seconds: Histogram,
    /// Seconds per shard proof verification.
    pub verify_seconds: Histogram,
    /// Chunk bytes served to peers.
    pub chunk_bytes_served: Counter,
    /// Chunk bytes fetched from peers.
    pub chunk_bytes_fetched: Counter,
    /// Gossip verdicts by peer.
    pub gossip_verdicts: Family<VerdictLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("starkscale");
        let libp2p = Arc::new(libp2p::metrics::Metrics::new(&mut registry));
        let m = Self {
            registry: Arc::new(Mutex::new(Registry::default())),
            libp2p,
            jobs: Gauge::default(),
            jobs_settled: Gauge::default(),
            proofs_made: Counter::default(),
            setups: Counter::default(),
            proving_key_hits: Counter::default(),
            proving_key_bytes: Gauge::default(),
            proofs_verified: Counter::default(),
            proofs_rejected: Counter::default(),
            prove_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            verify_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            chunk_bytes_served: Counter::default(),
            chunk_bytes_fetched: Counter::default(),
            gossip_verdicts: Family::default(),
        };
        registry.register("jobs", "Jobs known to this node", m.jobs.clone());
        registry.register("jobs_settled", "Jobs settled", m.jobs_settled.clone());
        registry.register(
            "shard_setups",
            "Shard setups (weight commitments) computed to prove",
            m.setups.clone(),
        );
        registry.register(
            "proving_key_hits",
            "Shards proved with a proving key kept from an earlier job",
            m.proving_key_hits.clone(),
        );
        registry.register(
            "proving_key_bytes",
            "Bytes of proving keys kept in memory",
            m.proving_key_bytes.clone(),
        );
        registry.register(
            "shard_proofs_made",
            "Shard proofs made by this node",
            m.proofs_made.clone(),
        );
        registry.register(
            "shard_proofs_verified",
            "Shard proofs verified and accepted",
            m.proofs_verified.clone(),
        );
        registry.register(
            "shard_proofs_rejected",
            "Shard proofs that failed verification",
            m.proofs_rejected.clone(),
        );
        registry.register(
            "prove_seconds",
            "Seconds to fetch, set up and prove one shard",
            m.prove_seconds.clone(),
        );
        registry.register(
            "verify_seconds",
            "Seconds to verify one shard proof",
            m.verify_seconds.clone(),
        );
        registry.register(
            "chunk_bytes_served",
            "Chunk bytes served to peers",
            m.chunk_bytes_served.clone(),
        );
        registry.register(
            "chunk_bytes_fetched",
            "Chunk bytes fetched from peers",
            m.chunk_bytes_fetched.clone(),
        );
        registry.register(
            "gossip_verdicts",
            "Gossip validation verdicts by peer",
            m.gossip_verdicts.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            ..m
        }
    }

    /// Counts a verdict for a message from `peer`.
    pub fn verdict(&self, verdict: &str, peer: &libp2p::PeerId) {
        self.gossip_verdicts
            .get_or_create(&VerdictLabels {
                verdict: verdict.into(),
                peer: peer.to_string(),
            })
            .inc();
    }

    /// Records a duration in a histogram.
    pub fn observe(histogram: &Histogram, d: Duration) {
        histogram.observe(d.as_secs_f64());
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }

    /// Serves `GET /metrics` on `addr`; returns the bound address.
    pub async fn serve(&self, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
        let bound = listener.local_addr()?;
        let metrics = self.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                }
            }),
        );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "metrics server stopped");
            }
        });
        Ok(bound)
    }
}
