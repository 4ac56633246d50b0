//! Wire messages: gossip payloads (sent inside signed envelopes, one topic per kind) and the
//! request-response protocol.
//!
//! Gossip payloads implement [`GossipPayload`]: they name the job they are about and the key
//! of their author, which must be the envelope's signer. Requests and responses are plain
//! frames ([`Request::to_frame`], [`Response::from_frame`]); the frame's kind byte selects the
//! variant, so the size limit is known before decoding.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::{decode_body, decode_header, limits, Bytes, CodecError};
use crate::codec::{MessageKind, WireMessage};
use crate::envelope::GossipPayload;
use crate::ids::{ChunkId, JobId, ModelId, PeerKey};
use crate::manifest::Manifest;
use crate::matrix::IntMatrix;
use crate::model::SignedModel;
use crate::status::JobStatus;

/// Gossipsub topic names, versioned with the protocol.
pub mod topics {
    use crate::codec::MessageKind;

    /// Topic of `JobAnnounced`.
    pub const JOB_ANNOUNCED: &str = "/starkscale/2/job-announced";
    /// Topic of `ShardClaimed`.
    pub const SHARD_CLAIMED: &str = "/starkscale/2/shard-claimed";
    /// Topic of `ShardProved`.
    pub const SHARD_PROVED: &str = "/starkscale/2/shard-proved";
    /// Topic of `AggregatorHeartbeat`.
    pub const AGGREGATOR_HEARTBEAT: &str = "/starkscale/2/aggregator-heartbeat";
    /// Topic of `JobSettled`.
    pub const JOB_SETTLED: &str = "/starkscale/2/job-settled";
    /// Topic of `JobFailed`.
    pub const JOB_FAILED: &str = "/starkscale/2/job-failed";
    /// All topics.
    pub const ALL: [&str; 6] = [
        JOB_ANNOUNCED,
        SHARD_CLAIMED,
        SHARD_PROVED,
        AGGREGATOR_HEARTBEAT,
        JOB_SETTLED,
        JOB_FAILED,
    ];

    /// The topic a gossip kind is published on.
    pub fn for_kind(kind: MessageKind) -> Option<&'static str> {
        Some(match kind {
            MessageKind::JobAnnounced => JOB_ANNOUNCED,
            MessageKind::ShardClaimed => SHARD_CLAIMED,
            MessageKind::ShardProved => SHARD_PROVED,
            MessageKind::AggregatorHeartbeat => AGGREGATOR_HEARTBEAT,
            MessageKind::JobSettled => JOB_SETTLED,
            MessageKind::JobFailed => JOB_FAILED,
            _ => return None,
        })
    }

    /// The gossip kind published on a topic.
    pub fn kind_of(topic: &str) -> Option<MessageKind> {
        MessageKind::GOSSIP
            .into_iter()
            .find(|k| for_kind(*k) == Some(topic))
    }
}

/// Gossip: a new job. Signed by the entry peer named in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAnnounced {
    /// The manifest.
    pub manifest: Manifest,
}

/// Gossip: a worker leases a shard until `lease_expires_ms`. Signed by the claimer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShardClaimed {
    /// The job.
    pub job: JobId,
    /// Shard index in the job's plan.
    pub shard: u32,
    /// When the claim was made (unix ms, claimer's clock).
    pub claimed_at_ms: u64,
    /// When the lease ends unless a proof arrives first (unix ms).
    pub lease_expires_ms: u64,
    /// The claimer.
    pub claimer: PeerKey,
    /// A speculative backup claim on a shard someone else holds.
    pub backup: bool,
}

/// Gossip: a shard's output rows and the proof that they are right. Signed by the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardProved {
    /// The job.
    pub job: JobId,
    /// Shard index.
    pub shard: u32,
    /// The worker (bound into the proof).
    pub worker: PeerKey,
    /// Configuration the proof was made under (must match the manifest).
    pub config_id: u32,
    /// When the proof was published (unix ms, worker's clock).
    pub proved_at_ms: u64,
    /// The output rows Y_s (shard rows × n).
    pub output: IntMatrix,
    /// Commitment to the weight shard (opaque here).
    pub commitment: [u8; 32],
    /// The proof (opaque here; checked by the prover crate).
    pub proof: Bytes,
}

/// What a peer can do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Capabilities {
    /// Aggregates (takes part in aggregator elections).
    pub aggregate: bool,
    /// Proves shards.
    pub prove: bool,
    /// Most leases it holds at once.
    pub max_concurrent_leases: u32,
    /// Proving configurations it supports.
    pub config_ids: Vec<u32>,
}

/// How busy a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Load {
    /// Leases it holds now.
    pub active_leases: u32,
    /// Jobs it is aggregating now.
    pub pending_aggregations: u32,
}

/// Gossip: an aggregator advertises itself (and so enters elections). Signed by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregatorHeartbeat {
    /// The aggregator.
    pub aggregator: PeerKey,
    /// When it was sent (unix ms).
    pub sent_at_ms: u64,
    /// What it can do.
    pub capabilities: Capabilities,
    /// How busy it is.
    pub load: Load,
}

/// Which worker proved which shard (for payouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShardCredit {
    /// Shard index.
    pub shard: u32,
    /// The worker whose proof was aggregated.
    pub worker: PeerKey,
}

/// Gossip: a job's final result and proof. Signed by the aggregator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSettled {
    /// The job.
    pub job: JobId,
    /// The aggregator.
    pub aggregator: PeerKey,
    /// Configuration of the final proof.
    pub config_id: u32,
    /// When it was settled (unix ms).
    pub settled_at_ms: u64,
    /// [`result_hash`] of Y.
    pub result_hash: [u8; 32],
    /// Y itself when small enough ([`limits::MAX_INLINE_RESULT_ENTRIES`]).
    pub result: Option<IntMatrix>,
    /// One credit per shard, in shard order.
    pub credits: Vec<ShardCredit>,
    /// The settlement artefact with the final proof (opaque here).
    pub settlement: Bytes,
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FailureReason {
    /// The deadline passed before settlement.
    DeadlineExpired,
    /// The job cannot be proven exactly (e.g. accumulators could wrap in the field).
    Unprovable {
        /// Details.
        detail: String,
    },
    /// The data did not match the manifest or was not a valid job.
    InvalidData {
        /// Details.
        detail: String,
    },
    /// Aggregation failed.
    AggregationFailed {
        /// Details.
        detail: String,
    },
    /// Anything else.
    Other {
        /// Details.
        detail: String,
    },
    /// The job's data (X or W chunks) could not be fetched from any peer.
    DataUnavailable {
        /// Details.
        detail: String,
    },
}

impl FailureReason {
    /// Length of the free-text part.
    pub fn detail_len(&self) -> usize {
        match self {
            Self::DeadlineExpired => 0,
            Self::Unprovable { detail }
            | Self::InvalidData { detail }
            | Self::AggregationFailed { detail }
            | Self::Other { detail }
            | Self::DataUnavailable { detail } => detail.len(),
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DeadlineExpired => f.write_str("deadline expired before settlement"),
            Self::Unprovable { detail } => write!(f, "cannot be proven exactly: {detail}"),
            Self::InvalidData { detail } => write!(f, "invalid job data: {detail}"),
            Self::AggregationFailed { detail } => write!(f, "aggregation failed: {detail}"),
            Self::Other { detail } => f.write_str(detail),
            Self::DataUnavailable { detail } => {
                write!(f, "the job's data is unavailable from every peer: {detail}")
            }
        }
    }
}

/// Gossip: a job failed. Signed by the entry peer or an elected aggregator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailed {
    /// The job.
    pub job: JobId,
    /// Who reports the failure.
    pub reporter: PeerKey,
    /// When (unix ms).
    pub failed_at_ms: u64,
    /// Why.
    pub reason: FailureReason,
}

/// `blake3::derive_key("starkscale/1 result", rows u64 LE ‖ cols u64 LE ‖ entries i64 LE)`.
pub fn result_hash(y: &IntMatrix) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("starkscale/1 result");
    hasher.update(&(y.rows() as u64).to_le_bytes());
    hasher.update(&(y.cols() as u64).to_le_bytes());
    for v in y.data() {
        hasher.update(&v.to_le_bytes());
    }
    *hasher.finalize().as_bytes()
}

macro_rules! gossip_payload {
    ($ty:ty, $kind:ident, |$m:ident| job = $job:expr, author = $author:expr) => {
        impl GossipPayload for $ty {
            const KIND: MessageKind = MessageKind::$kind;
            fn job(&self) -> JobId {
                let $m = self;
                let _ = $m;
                $job
            }
            fn author(&self) -> PeerKey {
                let $m = self;
                $author
            }
        }
    };
}

gossip_payload!(
    JobAnnounced,
    JobAnnounced,
    |m| job = m.manifest.job,
    author = m.manifest.entry
);
gossip_payload!(
    ShardClaimed,
    ShardClaimed,
    |m| job = m.job,
    author = m.claimer
);
gossip_payload!(ShardProved, ShardProved, |m| job = m.job, author = m.worker);
gossip_payload!(
    AggregatorHeartbeat,
    AggregatorHeartbeat,
    |m| job = JobId::ZERO,
    author = m.aggregator
);
gossip_payload!(
    JobSettled,
    JobSettled,
    |m| job = m.job,
    author = m.aggregator
);
gossip_payload!(JobFailed, JobFailed, |m| job = m.job, author = m.reporter);

/// Request: one chunk by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchChunk {
    /// The chunk.
    pub id: ChunkId,
}

/// Response to [`FetchChunk`]. The receiver checks the bytes against the id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkResponse {
    /// The chunk's bytes.
    Found(Bytes),
    /// The responder does not have it.
    NotFound,
}

/// What a client submits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Submission {
    /// Y = W·X for a registered model (a one-off job registers its own model first).
    Infer {
        /// The model.
        model: ModelId,
        /// Columns of X (its rows are the model's k).
        cols: u32,
        /// X's canonical bytes (k×n, row-major, 4-byte little-endian signed entries).
        x: Bytes,
    },
}

/// Request: submit a job to an entry peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitJob {
    /// The job.
    pub submission: Submission,
    /// Requested deadline (unix ms); the entry peer's default when `None`.
    pub deadline_ms: Option<u64>,
}

/// Response to [`SubmitJob`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubmitResult {
    /// Accepted and announced.
    Accepted {
        /// The job id.
        job: JobId,
    },
    /// Refused, with a human-readable reason.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// Request: the status of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatusRequest {
    /// The job.
    pub job: JobId,
}

/// What a peer knows about a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The job.
    pub job: JobId,
    /// Its status.
    pub status: JobStatus,
    /// Deadline (unix ms).
    pub deadline_ms: u64,
    /// Shards in the plan.
    pub shards_total: u32,
    /// Shards proved.
    pub shards_proved: u32,
    /// Shards leased now.
    pub shards_leased: u32,
}

/// Response to [`JobStatusRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusReply {
    /// The responder knows the job.
    Known(StatusReport),
    /// The responder has never seen the job.
    Unknown,
}

/// Request: the settlement artefact of a settled job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetSettlement {
    /// The job.
    pub job: JobId,
}

/// Response to [`GetSettlement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SettlementReply {
    /// The signed settlement artefact (checked by the receiver).
    Found(Bytes),
    /// The responder has no settlement for the job (yet).
    NotSettled,
}

/// Request: what a node knows (peers, aggregators, jobs and their shards), for operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatusRequest {
    /// Also list jobs that reached a terminal status.
    pub include_finished: bool,
}

/// One shard as a node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSummary {
    /// Shard index.
    pub index: u32,
    /// First row of W.
    pub first_row: u32,
    /// One past the last row of W.
    pub end_row: u32,
    /// `open`, `leased` or `proved`.
    pub state: String,
    /// The lease holder or the credited worker.
    pub owner: Option<PeerKey>,
    /// Lease expiry while leased (unix ms).
    pub lease_expires_ms: Option<u64>,
}

/// One job as a node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSummary {
    /// Status, counts and deadline.
    pub report: StatusReport,
    /// The aggregator elected for it now (by this node's view of the candidates).
    pub aggregator: Option<PeerKey>,
    /// The entry peer.
    pub entry: PeerKey,
    /// Dimensions m, k, n.
    pub dims: (u32, u32, u32),
    /// Every shard.
    pub shards: Vec<ShardSummary>,
}

/// Response to [`NodeStatusRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatusReport {
    /// The node's key.
    pub node: PeerKey,
    /// Local time (unix ms).
    pub now_ms: u64,
    /// Connected peers (libp2p peer ids as text).
    pub peers: Vec<String>,
    /// Aggregator candidates it knows.
    pub aggregators: Vec<PeerKey>,
    /// Jobs.
    pub jobs: Vec<JobSummary>,
    /// The W entries per shard this node suggests for models made for jobs submitted here
    /// (a client building a one-off model asks; the plan is still the owner's choice).
    pub shard_entries: u64,
}

/// Request: register a model (or resume its upload). The node checks the owner's signature
/// and the manifest, then answers with the chunks of W it still needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterModel {
    /// The model.
    pub model: SignedModel,
}

/// Request: one chunk of a model's W, in the order of its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadChunk {
    /// The model (already registered with [`RegisterModel`]).
    pub model: ModelId,
    /// Index of the chunk in W's chunk list.
    pub index: u32,
    /// Its bytes (checked against the manifest's hash).
    pub data: Bytes,
}

/// Response to [`RegisterModel`] and [`UploadChunk`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelUploadReply {
    /// The node holds every chunk: the model can be used.
    Complete {
        /// The model id.
        model: ModelId,
    },
    /// The node still needs these chunks (indices into W's chunk list, ascending; at most
    /// [`MAX_MISSING_LISTED`], more may follow).
    Missing {
        /// The model id.
        model: ModelId,
        /// Chunk indices.
        chunks: Vec<u32>,
        /// How many chunks are missing in all.
        total_missing: u32,
    },
    /// Refused, with what to do.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// Most chunk indices one [`ModelUploadReply::Missing`] lists.
pub const MAX_MISSING_LISTED: usize = 16 * 1024;

/// Request: a model's signed manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetModel {
    /// The model.
    pub model: ModelId,
}

/// Response to [`GetModel`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelReply {
    /// The model (the receiver checks the signature and that it hashes to the id it asked).
    Found {
        /// The signed manifest.
        model: SignedModel,
        /// Whether the responder holds every chunk of W.
        complete: bool,
    },
    /// The responder does not know it.
    Unknown,
}

/// Request: the models a node knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListModels {}

/// One model in a [`ModelList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// The model id.
    pub model: ModelId,
    /// Its name.
    pub name: String,
    /// Its owner.
    pub owner: PeerKey,
    /// Rows and columns of W.
    pub dims: (u32, u32),
    /// Shards in its plan.
    pub shards: u32,
    /// Whether this node holds every chunk of W.
    pub complete: bool,
}

/// Response to [`ListModels`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelList {
    /// The models, by id.
    pub models: Vec<ModelSummary>,
}

/// Request: state sync for a peer that joined late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchUp {
    /// Only jobs with a deadline after this time (unix ms).
    pub since_ms: u64,
    /// Where to continue (0 to start; then `next_cursor` of the previous report).
    pub cursor: u64,
}

/// Response to [`CatchUp`]: open jobs' manifests, current claims and known proofs, as the
/// original signed gossip frames, which the receiver validates like fresh gossip.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CatchUpReport {
    /// Signed gossip frames: manifests first, then claims, then proofs.
    pub frames: Vec<Bytes>,
    /// Cursor for the next page, if there is more.
    pub next_cursor: Option<u64>,
}

impl CatchUpReport {
    /// Room left for frames so the report stays under its limit (reserving framing overhead).
    const BUDGET: usize = limits::CATCH_UP_REPORT - 1024;

    fn encoded_len(&self) -> usize {
        self.frames.iter().map(|f| f.len() + 8).sum::<usize>() + 32
    }

    /// Adds a frame if it fits; returns `false` (and adds nothing) when the report is full.
    pub fn push(&mut self, frame: Vec<u8>) -> bool {
        if self.encoded_len() + frame.len() + 8 > Self::BUDGET {
            return false;
        }
        self.frames.push(Bytes(frame));
        true
    }
}

impl WireMessage for FetchChunk {
    const KIND: MessageKind = MessageKind::FetchChunk;
}
impl WireMessage for ChunkResponse {
    const KIND: MessageKind = MessageKind::Chunk;
}
impl WireMessage for SubmitJob {
    const KIND: MessageKind = MessageKind::SubmitJob;
}
impl WireMessage for SubmitResult {
    const KIND: MessageKind = MessageKind::SubmitResult;
}
impl WireMessage for JobStatusRequest {
    const KIND: MessageKind = MessageKind::JobStatus;
}
impl WireMessage for StatusReply {
    const KIND: MessageKind = MessageKind::StatusReport;
}
impl WireMessage for GetSettlement {
    const KIND: MessageKind = MessageKind::GetSettlement;
}
impl WireMessage for SettlementReply {
    const KIND: MessageKind = MessageKind::Settlement;
}
impl WireMessage for NodeStatusRequest {
    const KIND: MessageKind = MessageKind::NodeStatus;
}
impl WireMessage for NodeStatusReport {
    const KIND: MessageKind = MessageKind::NodeStatusReport;
}
impl WireMessage for RegisterModel {
    const KIND: MessageKind = MessageKind::RegisterModel;
}
impl WireMessage for UploadChunk {
    const KIND: MessageKind = MessageKind::UploadChunk;
}
impl WireMessage for GetModel {
    const KIND: MessageKind = MessageKind::GetModel;
}
impl WireMessage for ListModels {
    const KIND: MessageKind = MessageKind::ListModels;
}
impl WireMessage for ModelUploadReply {
    const KIND: MessageKind = MessageKind::ModelUpload;
}
impl WireMessage for ModelReply {
    const KIND: MessageKind = MessageKind::Model;
}
impl WireMessage for ModelList {
    const KIND: MessageKind = MessageKind::ModelList;
}
impl WireMessage for CatchUp {
    const KIND: MessageKind = MessageKind::CatchUp;
}
impl WireMessage for CatchUpReport {
    const KIND: MessageKind = MessageKind::CatchUpReport;
}

/// Any request of the request-response protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A chunk.
    FetchChunk(FetchChunk),
    /// A submission.
    SubmitJob(SubmitJob),
    /// A status query.
    JobStatus(JobStatusRequest),
    /// State sync.
    CatchUp(CatchUp),
    /// A settlement artefact.
    GetSettlement(GetSettlement),
    /// An operator's status query.
    NodeStatus(NodeStatusRequest),
    /// Start or resume a model upload.
    RegisterModel(RegisterModel),
    /// One chunk of a model's W.
    UploadChunk(UploadChunk),
    /// A model's manifest.
    GetModel(GetModel),
    /// The models a node knows.
    ListModels(ListModels),
}

/// Any response of the request-response protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// To `FetchChunk`.
    Chunk(ChunkResponse),
    /// To `SubmitJob`.
    SubmitResult(SubmitResult),
    /// To `JobStatus`.
    Status(StatusReply),
    /// To `CatchUp`.
    CatchUp(CatchUpReport),
    /// To `GetSettlement`.
    Settlement(SettlementReply),
    /// To `NodeStatus`.
    NodeStatus(NodeStatusReport),
    /// To `RegisterModel` and `UploadChunk`.
    ModelUpload(ModelUploadReply),
    /// To `GetModel`.
    Model(ModelReply),
    /// To `ListModels`.
    ModelList(ModelList),
}

impl Request {
    /// Encodes as one frame.
    pub fn to_frame(&self) -> Result<Vec<u8>, CodecError> {
        match self {
            Self::FetchChunk(m) => m.to_frame(),
            Self::SubmitJob(m) => m.to_frame(),
            Self::JobStatus(m) => m.to_frame(),
            Self::CatchUp(m) => m.to_frame(),
            Self::GetSettlement(m) => m.to_frame(),
            Self::NodeStatus(m) => m.to_frame(),
            Self::RegisterModel(m) => m.to_frame(),
            Self::UploadChunk(m) => m.to_frame(),
            Self::GetModel(m) => m.to_frame(),
            Self::ListModels(m) => m.to_frame(),
        }
    }

    /// Decodes a frame of any request kind (limit chosen by the kind byte).
    pub fn from_frame(bytes: &[u8]) -> Result<Self, CodecError> {
        let (kind, body) = decode_header(bytes)?;
        Ok(match kind {
            MessageKind::FetchChunk => Self::FetchChunk(decode_body(kind, body)?),
            MessageKind::SubmitJob => Self::SubmitJob(decode_body(kind, body)?),
            MessageKind::JobStatus => Self::JobStatus(decode_body(kind, body)?),
            MessageKind::CatchUp => Self::CatchUp(decode_body(kind, body)?),
            MessageKind::GetSettlement => Self::GetSettlement(decode_body(kind, body)?),
            MessageKind::NodeStatus => Self::NodeStatus(decode_body(kind, body)?),
            MessageKind::RegisterModel => Self::RegisterModel(decode_body(kind, body)?),
            MessageKind::UploadChunk => Self::UploadChunk(decode_body(kind, body)?),
            MessageKind::GetModel => Self::GetModel(decode_body(kind, body)?),
            MessageKind::ListModels => Self::ListModels(decode_body(kind, body)?),
            found => {
                return Err(CodecError::UnexpectedKind {
                    context: "request",
                    found,
                })
            }
        })
    }
}

impl Response {
    /// Encodes as one frame.
    pub fn to_frame(&self) -> Result<Vec<u8>, CodecError> {
        match self {
            Self::Chunk(m) => m.to_frame(),
            Self::SubmitResult(m) => m.to_frame(),
            Self::Status(m) => m.to_frame(),
            Self::CatchUp(m) => m.to_frame(),
            Self::Settlement(m) => m.to_frame(),
            Self::NodeStatus(m) => m.to_frame(),
            Self::ModelUpload(m) => m.to_frame(),
            Self::Model(m) => m.to_frame(),
            Self::ModelList(m) => m.to_frame(),
        }
    }

    /// Decodes a frame of any response kind.
    pub fn from_frame(bytes: &[u8]) -> Result<Self, CodecError> {
        let (kind, body) = decode_header(bytes)?;
        Ok(match kind {
            MessageKind::Chunk => Self::Chunk(decode_body(kind, body)?),
            MessageKind::SubmitResult => Self::SubmitResult(decode_body(kind, body)?),
            MessageKind::StatusReport => Self::Status(decode_body(kind, body)?),
            MessageKind::CatchUpReport => Self::CatchUp(decode_body(kind, body)?),
            MessageKind::Settlement => Self::Settlement(decode_body(kind, body)?),
            MessageKind::NodeStatusReport => Self::NodeStatus(decode_body(kind, body)?),
            MessageKind::ModelUpload => Self::ModelUpload(decode_body(kind, body)?),
            MessageKind::Model => Self::Model(decode_body(kind, body)?),
            MessageKind::ModelList => Self::ModelList(decode_body(kind, body)?),
            found => {
                return Err(CodecError::UnexpectedKind {
                    context: "response",
                    found,
                })
            }
        })
    }
}
