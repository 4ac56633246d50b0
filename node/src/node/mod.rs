//! The application layer: one task owns a node's state (jobs, leases, proofs, aggregator
//! set) and reacts to network events, timer ticks and results of background work.
//!
//! The [`router`](Node::on_net_event) only dispatches; each kind of event has a small `on_*`
//! handler in [`gossip`], [`rpc`], [`worker`] or [`aggregator`]. CPU-bound work (setup,
//! proving, proof verification) runs on the blocking pool and reports back through the
//! internal channel as an [`Internal`] event.

mod aggregator;
mod candidates;
mod config;
mod gossip;
mod handle;
mod models;
mod restore;
mod rpc;
mod state;
mod timers;
mod worker;

pub use config::{NodeConfig, DEFAULT_NETWORK};
pub use handle::{NodeHandle, NodeStats};
pub use rpc::prepare_infer;
pub use worker::{fetch_chunks, prove_rows, prove_shard, setup_shard};

use config::*;
use state::{Internal, Node, Origin};

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use starkscale_protocol::ids::{NetworkId, PeerKey};
use starkscale_protocol::messages::topics;
use starkscale_protocol::JobLimits;
use tokio::sync::{mpsc, oneshot};
use tracing::info;

use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::network::{self, NetConfig, NetEvent};
use crate::store::Store;

/// Current unix time in ms.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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
    let cfg_key_cache_bytes = cfg.key_cache_bytes;
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
        proved: HashSet::new(),
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
        keys: std::sync::Arc::new(std::sync::Mutex::new(crate::models::KeyCache::new(
            cfg_key_cache_bytes,
        ))),
        models: Default::default(),
        uploads: Default::default(),
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
            Internal::ModelLearned(model) => self.learn_model(*model),
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
}
