//! A node's settings and the protocol timers it runs by.

use std::path::PathBuf;
use std::time::Duration;

use libp2p::Multiaddr;
use starkscale_protocol::lease::LeaseRules;
use starkscale_protocol::status::SettlePolicy;

use crate::network::GossipParams;

/// Settings of one node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Data directory (chunks, job records, key file by default).
    pub data_dir: PathBuf,
    /// Key file; `<data_dir>/node.key` when `None`.
    pub key_file: Option<PathBuf>,
    /// Listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Bootstrap peers.
    pub bootstrap: Vec<Multiaddr>,
    /// Network name (mixed into every signature).
    pub network: String,
    /// Shards proven at once.
    pub capacity: u32,
    /// Prove shards.
    pub prove: bool,
    /// Take part in aggregator elections.
    pub aggregate: bool,
    /// Lease length for claims.
    pub lease: Duration,
    /// Default time from submission to deadline.
    pub job_deadline: Duration,
    /// Target W entries per shard for jobs submitted here.
    pub shard_entries: u64,
    /// Gossip parameters.
    pub gossip: GossipParams,
    /// Serve Prometheus metrics on this address (`GET /metrics`).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Lease rules. Network-wide: every peer of a network must use the same.
    pub rules: LeaseRules,
    /// Settlement timing (aggregator takeover, expiry). Network-wide, like `rules`.
    pub settle: SettlePolicy,
    /// Memory for proving keys kept between jobs (bytes); 0 keeps none.
    pub key_cache_bytes: u64,
    /// A model upload with no chunk for this long is abandoned: the model and the chunks only
    /// it used are removed (registering again starts over).
    pub upload_idle: Duration,
}

impl NodeConfig {
    /// Defaults for a node with `data_dir`, listening on `listen`.
    pub fn new(data_dir: PathBuf, listen: Multiaddr) -> Self {
        Self {
            data_dir,
            key_file: None,
            listen: vec![listen],
            bootstrap: Vec::new(),
            network: DEFAULT_NETWORK.into(),
            capacity: 1,
            prove: true,
            aggregate: true,
            lease: Duration::from_secs(60),
            job_deadline: Duration::from_secs(600),
            shard_entries: starkscale_protocol::plan::DEFAULT_TARGET_ENTRIES_PER_SHARD,
            gossip: GossipParams::default(),
            metrics_listen: None,
            rules: LeaseRules::default(),
            settle: SettlePolicy::default(),
            key_cache_bytes: DEFAULT_KEY_CACHE_BYTES,
            upload_idle: Duration::from_secs(600),
        }
    }
}

/// Memory for proving keys kept between jobs unless configured otherwise: 2 GiB.
pub const DEFAULT_KEY_CACHE_BYTES: u64 = 2 << 30;

/// The network name used unless configured otherwise.
pub const DEFAULT_NETWORK: &str = "starkscale-local";

/// How long after a job's creation a peer without a shard's proving key leaves the shard to
/// peers that kept it (for a model with earlier jobs). After it, anyone claims: a crashed or
/// busy key holder delays a shard by this much at most.
pub(super) const KEY_HOLDER_HEAD_START_MS: u64 = 700;
/// Shards whose proving key a node kept that it claims beyond its capacity (each costs one
/// proof, no setup).
pub(super) const KEPT_KEY_EXTRA_CLAIMS: u32 = 4;

/// Heartbeat period of aggregators.
pub(super) const HEARTBEAT_EVERY_MS: u64 = 5_000;
/// An aggregator not heard from for this long (three heartbeats) leaves the election set, so
/// a crashed aggregator stops blocking its jobs' elections soon.
pub(super) const AGGREGATOR_TTL_MS: u64 = 15_000;
/// How often a node re-sends its own frames for work that is not done yet (lossy links, peers
/// that were briefly disconnected, JobSettled frames peers ignored for want of a heartbeat).
pub(super) const REANNOUNCE_EVERY_MS: u64 = 20_000;
/// Settlements are re-sent for this long after settling (live gossip older than the allowed
/// clock skew is ignored by receivers; catch-up carries older state).
pub(super) const RESEND_SETTLED_FOR_MS: u64 = 25_000;
/// Most proof and settlement checks waiting or running at once; more are ignored (the
/// frames come again by re-announcement or catch-up).
pub(super) const MAX_QUEUED_CHECKS: usize = 256;
/// A peer's catch-up budget (`CatchUpBudget`) renews once per this window.
pub(super) const CATCH_UP_WINDOW_MS: u64 = 60_000;
/// Rejected messages tolerated from one peer before it is banned.
pub(super) const MAX_REJECTS: u32 = 3;
/// Wait after claiming before starting work, so conflicting claims can arrive.
pub(super) const CLAIM_SETTLE_MS: u64 = 300;
/// The elected aggregator fails a job whose X no peer could serve in this many attempts…
pub(super) const DATA_GIVE_UP_ATTEMPTS: u32 = 5;
/// … spanning at least this long.
pub(super) const DATA_GIVE_UP_MS: u64 = 15_000;
