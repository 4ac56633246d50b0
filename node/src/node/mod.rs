//! The application layer: one task owns a node's state (jobs, leases, proofs, aggregator
//! set) and reacts to network events, timer ticks and results of background work.
//!
//! The [`router`](Node::on_net_event) only dispatches; each kind of event has a small `on_*`
//! handler in [`gossip`], [`rpc`], [`worker`] or [`aggregator`]. CPU-bound work (setup,
//! proving, proof verification) runs on the blocking pool and reports back through the
//! internal channel as an [`Internal`] event.

mod aggregator;
mod gossip;
mod restore;
mod rpc;
mod worker;

pub use rpc::prepare;
pub use worker::{fetch_chunks, prove_shard};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use libp2p::{Multiaddr, PeerId};
use starkscale_protocol::election::{job_candidates, Candidate};
use starkscale_protocol::ids::{JobId, NetworkId, PeerKey};
use starkscale_protocol::lease::{Freshness, LeaseRules};
use starkscale_protocol::matrix::IntMatrix;
use starkscale_protocol::messages::topics;
use starkscale_protocol::status::{JobRecord, SettlePolicy};
use starkscale_protocol::validate::GossipContext;
use starkscale_protocol::JobLimits;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::network::{self, Client, GossipParams, NetConfig, NetEvent, Verdict};
use crate::store::Store;

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
        }
    }
}

/// The network name used unless configured otherwise.
pub const DEFAULT_NETWORK: &str = "starkscale-local";

/// Heartbeat period of aggregators.
const HEARTBEAT_EVERY_MS: u64 = 5_000;
/// An aggregator not heard from for this long (three heartbeats) leaves the election set, so
/// a crashed aggregator stops blocking its jobs' elections soon.
const AGGREGATOR_TTL_MS: u64 = 15_000;
/// How often a node re-sends its own frames for work that is not done yet (lossy links, peers
/// that were briefly disconnected, JobSettled frames peers ignored for want of a heartbeat).
const REANNOUNCE_EVERY_MS: u64 = 20_000;
/// Settlements are re-sent for this long after settling (live gossip older than the allowed
/// clock skew is ignored by receivers; catch-up carries older state).
const RESEND_SETTLED_FOR_MS: u64 = 25_000;
/// Most proof and settlement checks waiting or running at once; more are ignored (the
/// frames come again by re-announcement or catch-up).
const MAX_QUEUED_CHECKS: usize = 256;
/// A peer's catch-up budget (`CatchUpBudget`) renews once per this window.
const CATCH_UP_WINDOW_MS: u64 = 60_000;
/// Rejected messages tolerated from one peer before it is banned.
const MAX_REJECTS: u32 = 3;
/// Wait after claiming before starting work, so conflicting claims can arrive.
const CLAIM_SETTLE_MS: u64 = 300;
/// The elected aggregator fails a job whose X no peer could serve in this many attempts…
const DATA_GIVE_UP_ATTEMPTS: u32 = 5;
/// … spanning at least this long.
const DATA_GIVE_UP_MS: u64 = 15_000;

/// Current unix time in ms.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

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
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    net_task: tokio::task::JoinHandle<()>,
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

/// Results of background work, reported to the node task.
enum Internal {
    /// A gossip or catch-up frame's proof was checked.
    ProofChecked {
        frame: Vec<u8>,
        origin: Origin,
        result: Result<(), starkscale_protocol::validate::ProofCheckError>,
        elapsed: Duration,
    },
    /// A settlement was checked.
    SettlementChecked {
        frame: Vec<u8>,
        origin: Origin,
        /// The settlement's shard-proof frames by shard (all verified), or why it was refused.
        result: Result<
            Vec<(starkscale_protocol::validate::SettledShard, Vec<u8>)>,
            starkscale_protocol::validate::ProofCheckError,
        >,
    },
    /// X of a job was fetched (or failed to be).
    XFetched {
        job: JobId,
        x: Result<IntMatrix, String>,
    },
    /// Our work on a shard finished: a signed ShardProved frame, or why not.
    WorkDone {
        job: JobId,
        shard: u32,
        frame: Result<Vec<u8>, String>,
        elapsed: Duration,
    },
    /// A submission was prepared (shard commitments computed) and can be announced.
    SubmissionReady {
        prepared: Result<rpc::Prepared, String>,
        reply: libp2p::request_response::ResponseChannel<Vec<u8>>,
    },
    /// A catch-up page arrived from `from`.
    CatchUp { from: PeerId, frames: Vec<Vec<u8>> },
}

/// Where a frame came from, and so whether a verdict must be reported.
#[derive(Clone, Debug)]
enum Origin {
    /// Live gossip awaiting a verdict.
    Gossip {
        message_id: libp2p::gossipsub::MessageId,
        source: PeerId,
    },
    /// A catch-up frame from `from`: no gossip verdict, timestamps may be old; a Reject
    /// still counts against the peer that sent it.
    Replayed { from: PeerId },
    /// Published by this node.
    Local,
}

impl Origin {
    fn freshness(&self) -> Freshness {
        match self {
            Origin::Replayed { .. } => Freshness::Replayed,
            _ => Freshness::Live,
        }
    }
}

/// What this node keeps about a job beyond the protocol record.
#[derive(Default)]
struct LocalJob {
    /// The signed announcement.
    announce: Vec<u8>,
    /// Accepted claim frames (for catch-up).
    claims: Vec<Vec<u8>>,
    /// Verified ShardProved frames by shard.
    proofs: BTreeMap<u32, Vec<u8>>,
    /// X, once fetched.
    x: Option<IntMatrix>,
    /// X is being fetched.
    x_fetching: bool,
    /// Failed attempts to fetch X in a row, when the first of them failed, and when to try
    /// again.
    x_failures: u32,
    x_first_failure_ms: u64,
    x_retry_at_ms: u64,
    /// Proof frames waiting for X before they can be checked.
    waiting_for_x: Vec<(Vec<u8>, Origin)>,
    /// Hashes of proof frames being checked.
    checking: HashSet<[u8; 32]>,
    /// The signed JobSettled frame and the settlement bytes, once settled.
    settled: Option<(Vec<u8>, Vec<u8>)>,
    /// The signed JobFailed frame that made the job failed (the entry peer's, or the report
    /// that completed the quorum), once failed.
    failed: Option<Vec<u8>>,
    /// Aggregators' failure reports, by reporter, until a quorum makes the job failed.
    failure_reports: BTreeMap<PeerKey, Vec<u8>>,
    /// We reported this job failed (data unavailable, or a settlement we could not build).
    reported_failure: bool,
    /// We are building the settlement.
    settling: bool,
}

/// The node task's state.
struct Node {
    cfg: NodeConfig,
    key: SigningKey,
    me: PeerKey,
    network: NetworkId,
    net: Client,
    store: Store,
    jobs: HashMap<JobId, JobRecord>,
    local: HashMap<JobId, LocalJob>,
    /// Aggregator candidates: when last heard, and since when without a break.
    aggregators: HashMap<PeerKey, u64>,
    aggregator_since: HashMap<PeerKey, u64>,
    /// When this node started (it cannot know which candidates predate older jobs).
    started_ms: u64,
    /// Shards we hold a lease on and have not finished: (job, shard) → start work at.
    pending_work: HashMap<(JobId, u32), u64>,
    working: HashSet<(JobId, u32)>,
    rejects: HashMap<PeerId, u32>,
    internal: mpsc::Sender<Internal>,
    db: std::sync::Arc<crate::db::StateDb>,
    /// Shards whose proving failed here: not retried on our own lease.
    failed: HashSet<(JobId, u32)>,
    last_heartbeat_ms: u64,
    last_reannounce_ms: u64,
    limits: JobLimits,
    rules: LeaseRules,
    settle: SettlePolicy,
    stats: std::sync::Arc<std::sync::Mutex<NodeStats>>,
    metrics: Metrics,
    /// Permits for proof and settlement checks running at once on the blocking pool.
    verify_pool: std::sync::Arc<tokio::sync::Semaphore>,
    /// Checks waiting for a permit or running.
    queued_checks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Catch-up pages and bytes followed per peer in the current window.
    catchup: std::sync::Arc<std::sync::Mutex<starkscale_protocol::catchup::CatchUpLedger<PeerId>>>,
    /// Admission of submissions: rate per peer, submissions held and prepared at once.
    submit_gate: rpc::SubmitGate,
}

/// Starts a node: network event loop and node task.
pub async fn start(cfg: NodeConfig) -> anyhow::Result<NodeHandle> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create data directory {}: {e}",
            cfg.data_dir.display()
        )
    })?;
    let db = std::sync::Arc::new(crate::db::StateDb::open(&cfg.data_dir.join("state.redb"))?);
    let store = Store::open(&cfg.data_dir)?.with_index(db.clone());
    let key_path = cfg
        .key_file
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("node.key"));
    let identity = Identity::load_or_create(&key_path)?;
    let topics = topics::ALL.iter().map(|t| t.to_string()).collect();
    let metrics = Metrics::new();
    let metrics_addr = match cfg.metrics_listen {
        Some(addr) => Some(metrics.serve(addr).await?),
        None => None,
    };
    let (net, mut events, event_loop) = network::new(
        identity.keypair()?,
        NetConfig {
            listen: cfg.listen.clone(),
            bootstrap: cfg.bootstrap.clone(),
            topics,
            gossip: cfg.gossip.clone(),
            metrics: Some(metrics.libp2p.clone()),
        },
    )?;
    let net_task = tokio::spawn(event_loop.run());
    let (internal_tx, mut internal_rx) = mpsc::channel(256);
    let key = identity.signing_key();
    let me = PeerKey::from(&key);
    let (rules, settle) = (cfg.rules, cfg.settle);
    let mut node = Node {
        network: NetworkId::from_name(&cfg.network),
        cfg,
        key,
        me,
        net: net.clone(),
        store,
        jobs: HashMap::new(),
        local: HashMap::new(),
        aggregators: HashMap::new(),
        aggregator_since: HashMap::new(),
        started_ms: now_ms(),
        pending_work: HashMap::new(),
        working: HashSet::new(),
        rejects: HashMap::new(),
        internal: internal_tx,
        db,
        failed: HashSet::new(),
        last_heartbeat_ms: 0,
        last_reannounce_ms: now_ms(),
        limits: JobLimits::default(),
        rules,
        settle,
        stats: Default::default(),
        metrics: metrics.clone(),
        verify_pool: std::sync::Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )),
        queued_checks: Default::default(),
        catchup: std::sync::Arc::new(std::sync::Mutex::new(
            starkscale_protocol::catchup::CatchUpLedger::new(CATCH_UP_WINDOW_MS),
        )),
        submit_gate: Default::default(),
    };
    let stats = node.stats.clone();
    let handle_metrics = node.metrics.clone();
    node.restore()?;
    let (shutdown_tx, mut shutdown_rx) = oneshot::channel();
    let peer_id = net.peer_id();
    info!(%peer_id, key = %me, "node started");
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = &mut shutdown_rx => break,
                Some(event) = events.recv() => node.on_net_event(event).await,
                Some(event) = internal_rx.recv() => node.on_internal(event).await,
                _ = tick.tick() => node.on_tick().await,
            }
        }
        info!("node stopped");
    });
    Ok(NodeHandle {
        stats,
        peer_id,
        key: me,
        net,
        metrics: handle_metrics,
        metrics_addr,
        shutdown: Some(shutdown_tx),
        task,
        net_task,
    })
}

impl Node {
    fn ctx<'a>(&'a self, freshness: Freshness, aggregators: &'a [Candidate]) -> GossipContext<'a> {
        GossipContext {
            network: self.network,
            now_ms: now_ms(),
            freshness,
            limits: self.limits,
            max_skew_ms: self.rules.max_skew_ms,
            settle: self.settle,
            jobs: &self.jobs,
            aggregators,
            started_ms: self.started_ms,
        }
    }

    /// Live aggregator candidates with since when they have been candidates.
    fn aggregator_candidates(&self) -> Vec<Candidate> {
        let now = now_ms();
        self.aggregators
            .iter()
            .filter(|(_, seen)| now.saturating_sub(**seen) < AGGREGATOR_TTL_MS)
            .map(|(key, _)| Candidate {
                key: *key,
                since_ms: self.aggregator_since.get(key).copied().unwrap_or(now),
            })
            .collect()
    }

    /// Records a heartbeat: a key that was not a live candidate starts a new candidacy.
    fn heard_aggregator(&mut self, key: PeerKey) {
        let now = now_ms();
        let live = self
            .aggregators
            .get(&key)
            .is_some_and(|seen| now.saturating_sub(*seen) < AGGREGATOR_TTL_MS);
        if !live {
            self.aggregator_since.insert(key, now);
        }
        self.aggregators.insert(key, now);
    }

    /// The candidates that count for `record`'s job: those its manifest names, or, when it
    /// names none, those known here before it was created.
    fn job_candidates(&self, record: &JobRecord) -> Vec<PeerKey> {
        job_candidates(
            &record.manifest.aggregators,
            record.manifest.created_ms,
            &self.aggregator_candidates(),
            self.started_ms,
        )
    }

    fn aggregator_keys(&self) -> Vec<PeerKey> {
        let now = now_ms();
        self.aggregators
            .iter()
            .filter(|(_, seen)| now.saturating_sub(**seen) < AGGREGATOR_TTL_MS)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Router: dispatches every network event to its handler.
    async fn on_net_event(&mut self, event: NetEvent) {
        match event {
            NetEvent::Gossip {
                topic,
                message_id,
                source,
                data,
            } => {
                self.on_gossip(&topic, data, Origin::Gossip { message_id, source })
                    .await
            }
            NetEvent::Request {
                peer,
                data,
                channel,
            } => self.on_request(peer, data, channel).await,
            NetEvent::PeerConnected(peer) => self.on_peer_connected(peer),
            NetEvent::PeerDisconnected { .. } | NetEvent::DialFailed { .. } => {}
        }
    }

    async fn on_internal(&mut self, event: Internal) {
        match event {
            Internal::ProofChecked {
                frame,
                origin,
                result,
                elapsed,
            } => self.on_proof_checked(frame, origin, result, elapsed).await,
            Internal::SettlementChecked {
                frame,
                origin,
                result,
            } => self.on_settlement_checked(frame, origin, result).await,
            Internal::XFetched { job, x } => self.on_x_fetched(job, x).await,
            Internal::WorkDone {
                job,
                shard,
                frame,
                elapsed,
            } => self.on_work_done(job, shard, frame, elapsed).await,
            Internal::SubmissionReady { prepared, reply } => {
                self.on_submission_ready(prepared, reply).await
            }
            Internal::CatchUp { from, frames } => {
                for frame in frames {
                    self.on_gossip_frame(frame, Origin::Replayed { from }).await;
                }
            }
        }
    }

    async fn on_tick(&mut self) {
        let now = now_ms();
        if self.cfg.aggregate && now.saturating_sub(self.last_heartbeat_ms) >= HEARTBEAT_EVERY_MS {
            self.last_heartbeat_ms = now;
            self.send_heartbeat().await;
        }
        if now.saturating_sub(self.last_reannounce_ms) >= REANNOUNCE_EVERY_MS {
            self.last_reannounce_ms = now;
            self.reannounce().await;
        }
        self.retry_x_fetches();
        if self.cfg.prove {
            self.claim_open_shards().await;
            self.start_due_work();
        }
        if self.cfg.aggregate {
            self.try_settle().await;
        }
        // Candidates long silent are forgotten (a new heartbeat starts a new candidacy).
        self.aggregators
            .retain(|_, seen| now.saturating_sub(*seen) < 4 * AGGREGATOR_TTL_MS);
        let aggregators_map = &self.aggregators;
        self.aggregator_since
            .retain(|key, _| aggregators_map.contains_key(key));
        let aggregators = self.aggregator_keys().len();
        let settled = self
            .jobs
            .values()
            .filter(|r| {
                matches!(
                    r.outcome,
                    Some(starkscale_protocol::status::Outcome::Settled { .. })
                )
            })
            .count();
        self.metrics.jobs.set(self.jobs.len() as i64);
        self.metrics.jobs_settled.set(settled as i64);
        if let Ok(mut stats) = self.stats.lock() {
            stats.aggregators = aggregators;
            stats.jobs = self.jobs.len();
            stats.settled = settled;
        }
    }

    /// Re-sends this node's own frames for unfinished work: announcements of jobs it entered,
    /// its shard proofs, and recent settlements it made.
    async fn reannounce(&mut self) {
        let now = now_ms();
        let mut frames = Vec::new();
        for (job, record) in &self.jobs {
            let Some(local) = self.local.get(job) else {
                continue;
            };
            match &record.outcome {
                None if !record.status(now, &self.settle).is_terminal() => {
                    if record.manifest.entry == self.me {
                        frames.push((topics::JOB_ANNOUNCED, local.announce.clone()));
                    }
                    for (shard, frame) in &local.proofs {
                        if record
                            .leases
                            .proof_of(*shard)
                            .is_some_and(|(w, _)| w == self.me)
                        {
                            frames.push((topics::SHARD_PROVED, frame.clone()));
                        }
                    }
                }
                Some(starkscale_protocol::status::Outcome::Settled { aggregator, .. })
                    if *aggregator == self.me =>
                {
                    if let Some((frame, _)) = &local.settled {
                        let recent = starkscale_protocol::SignedEnvelope::<
                            starkscale_protocol::messages::JobSettled,
                        >::from_frame(frame, &self.network)
                        .map(|e| {
                            now.saturating_sub(e.message().settled_at_ms) < RESEND_SETTLED_FOR_MS
                        })
                        .unwrap_or(false);
                        if recent {
                            frames.push((topics::JOB_SETTLED, frame.clone()));
                        }
                    }
                }
                _ => {}
            }
        }
        for (topic, frame) in frames {
            if let Err(e) = self.net.publish(topic, frame).await {
                warn!(error = %e, "re-announcement failed");
            }
        }
        // With open work, also pull state from one peer: recovers frames lost on a lossy link
        // that are too old to be re-sent as live gossip.
        let open = self
            .jobs
            .values()
            .any(|r| !r.status(now, &self.settle).is_terminal());
        if open {
            if let Ok(info) = self.net.info().await {
                if !info.connected.is_empty() {
                    let peer = info.connected[(now as usize / 1000) % info.connected.len()];
                    self.on_peer_connected(peer);
                }
            }
        }
    }

    /// Reports a verdict for a gossip message and penalises rejected senders (of live gossip
    /// and of catch-up frames alike).
    async fn report(&mut self, origin: &Origin, verdict: Verdict, why: &str) {
        let (message_id, source) = match origin {
            Origin::Gossip { message_id, source } => (Some(message_id), source),
            Origin::Replayed { from } => (None, from),
            Origin::Local => return,
        };
        let name = match verdict {
            Verdict::Accept => "accept",
            Verdict::Ignore => "ignore",
            Verdict::Reject => "reject",
        };
        self.metrics.verdict(name, source);
        if verdict == Verdict::Reject {
            warn!(peer = %source, reason = why, "rejected gossip");
            let count = self.rejects.entry(*source).or_default();
            *count += 1;
            if let Ok(mut stats) = self.stats.lock() {
                stats.rejects.insert(*source, *count);
            }
            if *count >= MAX_REJECTS {
                let _ = self.net.ban(*source).await;
            }
        }
        if let Some(message_id) = message_id {
            let _ = self
                .net
                .validate(message_id.clone(), *source, verdict)
                .await;
        }
    }

    /// Runs a proof or settlement check on the blocking pool, at most one per core at a time
    /// (the rest wait for a permit), so a flood of frames to check cannot take every
    /// blocking thread; at most [`MAX_QUEUED_CHECKS`] wait or run at once (each holds its
    /// frame and a copy of X). Returns whether the check was queued.
    fn spawn_check(&self, check: impl FnOnce() + Send + 'static) -> bool {
        use std::sync::atomic::Ordering;
        let queued = self.queued_checks.clone();
        if queued.fetch_add(1, Ordering::SeqCst) >= MAX_QUEUED_CHECKS {
            queued.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        let pool = self.verify_pool.clone();
        tokio::spawn(async move {
            if let Ok(permit) = pool.acquire_owned().await {
                let _ = tokio::task::spawn_blocking(move || {
                    check();
                    drop(permit);
                })
                .await;
            }
            queued.fetch_sub(1, Ordering::SeqCst);
        });
        true
    }

    /// Signs and publishes a gossip frame, then applies it locally as our own.
    async fn publish(&mut self, topic: &str, frame: Vec<u8>) {
        if let Err(e) = self.net.publish(topic, frame.clone()).await {
            warn!(error = %e, "publish failed");
        }
        self.on_gossip_frame(frame, Origin::Local).await;
    }

    /// Starts tracking a job from its validated announcement; returns its shard count. A job
    /// known from an earlier round (failed or expired, submitted again) starts afresh: its
    /// old record, local state and stored frames are dropped.
    fn add_job(
        &mut self,
        manifest: starkscale_protocol::manifest::Manifest,
        announce: Vec<u8>,
    ) -> anyhow::Result<u32> {
        let job = manifest.job;
        let record = JobRecord::new(manifest, &self.limits, self.rules)?;
        if self.jobs.remove(&job).is_some() {
            info!(%job, "job submitted again: starting a new round");
            self.local.remove(&job);
            self.pending_work.retain(|(j, _), _| *j != job);
            self.failed.retain(|(j, _)| *j != job);
            // Synchronously (a rare, small write), so it cannot overtake the new round's
            // frames, which are persisted on the blocking pool after this returns.
            if let Err(e) = self.db.forget_job(job.as_bytes()) {
                warn!(%job, error = %e, "could not drop an earlier round's frames");
            }
        }
        let shards = record.plan.shard_count();
        self.jobs.insert(job, record);
        self.local.insert(
            job,
            LocalJob {
                announce,
                ..Default::default()
            },
        );
        Ok(shards)
    }

    /// Stores an accepted frame in the state database on the blocking pool (each commit is a
    /// durable write). A failure is logged: the node keeps running on its in-memory state.
    fn persist(&self, job: &JobId, kind: crate::db::FrameKind, id: &[u8], frame: &[u8]) {
        self.persist_with(job, kind, id, frame, false);
    }

    /// [`Self::persist`], replacing a frame stored under the same key (a settled proof).
    fn persist_replacing(&self, job: &JobId, kind: crate::db::FrameKind, id: &[u8], frame: &[u8]) {
        self.persist_with(job, kind, id, frame, true);
    }

    fn persist_with(
        &self,
        job: &JobId,
        kind: crate::db::FrameKind,
        id: &[u8],
        frame: &[u8],
        replace: bool,
    ) {
        let (db, job, id, frame) = (self.db.clone(), *job, id.to_vec(), frame.to_vec());
        tokio::task::spawn_blocking(move || {
            let stored = if replace {
                db.replace_frame(job.as_bytes(), kind, &id, &frame)
            } else {
                db.put_frame(job.as_bytes(), kind, &id, &frame)
            };
            if let Err(e) = stored {
                warn!(%job, error = %e, "could not persist a frame");
            }
        });
    }
}
