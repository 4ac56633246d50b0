//! The node task's state: what it keeps per job beyond the protocol record, what background
//! work reports back, and the helpers every handler uses (reporting a verdict, queueing a
//! check, publishing, tracking a job, persisting a frame).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use libp2p::PeerId;
use starkscale_protocol::ids::{JobId, NetworkId, PeerKey};
use starkscale_protocol::lease::{Freshness, LeaseRules};
use starkscale_protocol::matrix::IntMatrix;
use starkscale_protocol::status::{JobRecord, SettlePolicy};
use starkscale_protocol::JobLimits;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{rpc, NodeConfig, NodeStats, MAX_QUEUED_CHECKS, MAX_REJECTS};
use crate::metrics::Metrics;
use crate::network::{Client, Verdict};
use crate::store::Store;

/// Results of background work, reported to the node task.
pub(super) enum Internal {
    /// The entry peer fetched a model from its peers for a submission: remember it (so a
    /// client can read it, e.g. to split a too-wide X, and later submissions need no fetch).
    ModelLearned(Box<starkscale_protocol::SignedModel>),
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
pub(super) enum Origin {
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
    pub(super) fn freshness(&self) -> Freshness {
        match self {
            Origin::Replayed { .. } => Freshness::Replayed,
            _ => Freshness::Live,
        }
    }
}

/// What this node keeps about a job beyond the protocol record.
#[derive(Default)]
pub(super) struct LocalJob {
    /// The signed announcement.
    pub(super) announce: Vec<u8>,
    /// Accepted claim frames (for catch-up).
    pub(super) claims: Vec<Vec<u8>>,
    /// Verified ShardProved frames by shard.
    pub(super) proofs: BTreeMap<u32, Vec<u8>>,
    /// X, once fetched.
    pub(super) x: Option<IntMatrix>,
    /// X is being fetched.
    pub(super) x_fetching: bool,
    /// Failed attempts to fetch X in a row, when the first of them failed, and when to try
    /// again.
    pub(super) x_failures: u32,
    pub(super) x_first_failure_ms: u64,
    pub(super) x_retry_at_ms: u64,
    /// Proof frames waiting for X before they can be checked.
    pub(super) waiting_for_x: Vec<(Vec<u8>, Origin)>,
    /// Hashes of proof frames being checked.
    pub(super) checking: HashSet<[u8; 32]>,
    /// The signed JobSettled frame and the settlement bytes, once settled.
    pub(super) settled: Option<(Vec<u8>, Vec<u8>)>,
    /// The signed JobFailed frame that made the job failed (the entry peer's, or the report
    /// that completed the quorum), once failed.
    pub(super) failed: Option<Vec<u8>>,
    /// Aggregators' failure reports, by reporter, until a quorum makes the job failed.
    pub(super) failure_reports: BTreeMap<PeerKey, Vec<u8>>,
    /// We reported this job failed (data unavailable, or a settlement we could not build).
    pub(super) reported_failure: bool,
    /// We are building the settlement.
    pub(super) settling: bool,
}

/// The node task's state.
pub(super) struct Node {
    pub(super) cfg: NodeConfig,
    pub(super) key: SigningKey,
    pub(super) me: PeerKey,
    pub(super) network: NetworkId,
    pub(super) net: Client,
    pub(super) store: Store,
    pub(super) jobs: HashMap<JobId, JobRecord>,
    pub(super) local: HashMap<JobId, LocalJob>,
    /// Aggregator candidates: when last heard, and since when without a break.
    pub(super) aggregators: HashMap<PeerKey, u64>,
    pub(super) aggregator_since: HashMap<PeerKey, u64>,
    /// When this node started (it cannot know which candidates predate older jobs).
    pub(super) started_ms: u64,
    /// Shards we hold a lease on and have not finished: (job, shard) → start work at.
    pub(super) pending_work: HashMap<(JobId, u32), u64>,
    pub(super) working: HashSet<(JobId, u32)>,
    pub(super) rejects: HashMap<PeerId, u32>,
    pub(super) internal: mpsc::Sender<Internal>,
    pub(super) db: std::sync::Arc<crate::db::StateDb>,
    /// Shards whose proving failed here: not retried on our own lease.
    pub(super) failed: HashSet<(JobId, u32)>,
    /// Shards this node proved and published: its lease on them is not work to resume
    /// (until its own proof is recorded the lease still reads as held).
    pub(super) proved: HashSet<(JobId, u32)>,
    pub(super) last_heartbeat_ms: u64,
    pub(super) last_reannounce_ms: u64,
    pub(super) limits: JobLimits,
    pub(super) rules: LeaseRules,
    pub(super) settle: SettlePolicy,
    pub(super) stats: std::sync::Arc<std::sync::Mutex<NodeStats>>,
    pub(super) metrics: Metrics,
    /// Permits for proof and settlement checks running at once on the blocking pool.
    pub(super) verify_pool: std::sync::Arc<tokio::sync::Semaphore>,
    /// Checks waiting for a permit or running.
    pub(super) queued_checks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Catch-up pages and bytes followed per peer in the current window.
    pub(super) catchup:
        std::sync::Arc<std::sync::Mutex<starkscale_protocol::catchup::CatchUpLedger<PeerId>>>,
    /// Admission of submissions: rate per peer, submissions held and prepared at once.
    pub(super) submit_gate: rpc::SubmitGate,
    /// Proving keys kept between jobs, by (model, shard).
    pub(super) keys: std::sync::Arc<std::sync::Mutex<crate::models::KeyCache>>,
    /// Models this node knows (registered here, or named by a job it saw).
    pub(super) models: HashMap<starkscale_protocol::ModelId, KnownModel>,
    /// Model uploads in progress here.
    pub(super) uploads: HashMap<starkscale_protocol::ModelId, Upload>,
}

/// A model this node knows.
#[derive(Clone, Debug)]
pub(crate) struct KnownModel {
    /// The owner's signed manifest (checked).
    pub(crate) model: starkscale_protocol::SignedModel,
    /// Whether this node holds every chunk of W.
    pub(crate) complete: bool,
    /// Jobs seen for it.
    pub(crate) jobs_seen: u32,
    /// Its shards with an accepted proof in some job: some peer likely kept their proving
    /// keys, so peers without a key leave these shards to key holders for a head start. (Not
    /// a count of announcements: cheap jobs nobody proved must not delay anyone.)
    pub(crate) proved_shards: std::collections::HashSet<u32>,
}

/// A model upload in progress.
#[derive(Clone, Debug)]
pub(crate) struct Upload {
    /// Chunks still missing.
    pub(crate) missing: std::collections::BTreeSet<u32>,
    /// The uploading peer.
    pub(crate) peer: PeerId,
    /// Last progress (unix ms): the last chunk that was missing and arrived.
    pub(crate) last_ms: u64,
    /// Chunks this upload wrote (not there before): all an abandoned upload may delete.
    pub(crate) stored: Vec<[u8; 32]>,
}

impl Node {
    /// Reports a verdict for a gossip message and penalises rejected senders (of live gossip
    /// and of catch-up frames alike).
    pub(super) async fn report(&mut self, origin: &Origin, verdict: Verdict, why: &str) {
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
    pub(super) fn spawn_check(&self, check: impl FnOnce() + Send + 'static) -> bool {
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
    pub(super) async fn publish(&mut self, topic: &str, frame: Vec<u8>) {
        if let Err(e) = self.net.publish(topic, frame.clone()).await {
            warn!(error = %e, "publish failed");
        }
        self.on_gossip_frame(frame, Origin::Local).await;
    }

    /// Starts tracking a job from its validated announcement; returns its shard count. A job
    /// known from an earlier round (failed or expired, submitted again) starts afresh: its
    /// old record, local state and stored frames are dropped.
    pub(super) fn add_job(
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
            self.proved.retain(|(j, _)| *j != job);
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
    pub(super) fn persist(&self, job: &JobId, kind: crate::db::FrameKind, id: &[u8], frame: &[u8]) {
        self.persist_with(job, kind, id, frame, false);
    }

    /// [`Self::persist`], replacing a frame stored under the same key (a settled proof).
    pub(super) fn persist_replacing(
        &self,
        job: &JobId,
        kind: crate::db::FrameKind,
        id: &[u8],
        frame: &[u8],
    ) {
        self.persist_with(job, kind, id, frame, true);
    }

    pub(super) fn persist_with(
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
