//! Job manifests: what a `JobAnnounced` carries so any peer can plan, fetch and check a job.
//!
//! The job id is derived from the *content part* of the manifest — the dimensions and chunk
//! lists of W and X ([`content_job_id`]) — so a peer can check that a manifest binds to its job
//! id before fetching any data, and every chunk it fetches is checked against its listed hash.
//! The rest (deadline, configuration, entry peer, shard size) is per submission; the
//! [`Manifest::hash`] covers all of it including the job id.

use serde::{Deserialize, Serialize};

use crate::chunk::{assemble_chunks, ChunkError, ChunkRef, CHUNK_SIZE};
use crate::codec::{limits, to_canonical_bytes, CodecError};
use crate::ids::{JobId, ModelId, PeerKey};
use crate::job::{JobLimits, JobSpecError, Operand};
use crate::matrix::IntMatrix;
use crate::model::{ModelError, SignedModel};
use crate::plan::{PlanError, ShardPlan};

/// Shape and chunk list of one operand's canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobDescriptor {
    /// Rows of the matrix.
    pub rows: u32,
    /// Columns of the matrix.
    pub cols: u32,
    /// Length of the canonical bytes (`rows · cols · 4`).
    pub total_bytes: u64,
    /// The chunks, in order.
    pub chunks: Vec<ChunkRef>,
}

/// A job as announced to the network: a registered model and X.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Manifest {
    /// The content-derived job id; must equal [`content_job_id`] of the model id and `x`.
    pub job: JobId,
    /// The model, with its owner's signature: W's shape and chunk hashes, the shard plan and
    /// every shard's verifying key. Carried whole so that every peer checks the job against
    /// the owner's keys without asking anyone (nothing of it comes from the entry peer).
    pub model: SignedModel,
    /// X (k×n).
    pub x: BlobDescriptor,
    /// When the job was created (unix ms).
    pub created_ms: u64,
    /// When the result is due (unix ms).
    pub deadline_ms: u64,
    /// The entry peer that accepted the submission and signs the announcement.
    pub entry: PeerKey,
    /// The job's aggregator candidates: those the entry peer heard advertise the role when it
    /// created the job, at most [`MAX_JOB_AGGREGATORS`] (the first by rank for the job), in
    /// ascending key order. Every peer elects the job's aggregator and counts its failure
    /// quorum among these keys, the same set everywhere (a key ground after the announcement
    /// is not among them; a late joiner or a restarted peer needs no view of its own). Empty
    /// when the entry knew none: peers then count the candidates they knew before the job.
    pub aggregators: Vec<PeerKey>,
}

/// Most aggregator candidates a manifest names.
pub const MAX_JOB_AGGREGATORS: usize = 16;

/// The verifying data of one shard: the prover's commitment to the weight shard and the
/// largest |entry| of that shard (it enters the exactness bound). Computed by the model's
/// owner ([`crate::model`]); opaque to this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShardKey {
    /// Commitment to the weight shard (the shard's verifying key).
    pub commitment: [u8; 32],
    /// max |W_s| of the shard.
    pub weight_bound: u64,
}

/// A 32-byte hash of a full manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ManifestHash(pub [u8; 32]);

/// Why a manifest is invalid or does not match the data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The shard key list does not have one key per shard.
    #[error("manifest lists {found} shard keys for {expected} shards")]
    ShardKeys {
        /// Shards in the plan.
        expected: u32,
        /// Keys listed.
        found: usize,
    },
    /// Shapes are empty or inner dimensions differ.
    #[error("bad shapes: W is {w_rows}x{w_cols}, X is {x_rows}x{x_cols}")]
    Shape {
        /// Rows of W.
        w_rows: u32,
        /// Columns of W.
        w_cols: u32,
        /// Rows of X.
        x_rows: u32,
        /// Columns of X.
        x_cols: u32,
    },
    /// A size limit is exceeded.
    #[error(transparent)]
    Limits(JobSpecError),
    /// `total_bytes` does not match the shape.
    #[error("{operand}: total_bytes is {found}, the shape needs {expected}")]
    TotalBytes {
        /// The operand.
        operand: Operand,
        /// Bytes the shape needs.
        expected: u64,
        /// Bytes declared.
        found: u64,
    },
    /// The chunk list does not cut `total_bytes` into protocol-sized chunks.
    #[error("{operand}: chunk {index} should have {expected} bytes, has {found}")]
    ChunkLayout {
        /// The operand.
        operand: Operand,
        /// Chunk index.
        index: usize,
        /// Length the layout needs.
        expected: u64,
        /// Length listed.
        found: u64,
    },
    /// Wrong number of chunks for `total_bytes`.
    #[error("{operand}: {found} chunks listed, {expected} needed")]
    ChunkCount {
        /// The operand.
        operand: Operand,
        /// Chunks needed.
        expected: u64,
        /// Chunks listed.
        found: u64,
    },
    /// The job id does not match the content.
    #[error("manifest names job {claimed} but its content hashes to {computed}")]
    JobIdMismatch {
        /// Id in the manifest.
        claimed: JobId,
        /// Id computed from the content part.
        computed: JobId,
    },
    /// The shard plan is invalid.
    #[error("invalid shard plan: {0}")]
    Plan(#[from] PlanError),
    /// The aggregator list is too long, unsorted or repeats a key.
    #[error("the manifest names {count} aggregators; at most {limit}, in ascending key order, each once")]
    Aggregators {
        /// Keys listed.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Too many shards.
    #[error("plan has {count} shards, over the limit of {limit}")]
    TooManyShards {
        /// Shards in the plan.
        count: u32,
        /// The limit.
        limit: u32,
    },
    /// A shard key declares a weight bound no valid entry can have.
    #[error("shard {shard} declares max |W| = {bound}, over the entry limit of {limit}")]
    WeightBound {
        /// The shard.
        shard: usize,
        /// The declared bound.
        bound: u64,
        /// [`crate::job::MAX_ABS_ENTRY`].
        limit: i64,
    },
    /// A shard's output would not fit in one `ShardProved`.
    #[error(
        "a shard of {rows} rows x {n} columns has {entries} outputs, over the limit of {limit}"
    )]
    ShardOutputTooLarge {
        /// Rows per shard.
        rows: u32,
        /// Columns of X.
        n: u32,
        /// Output entries per shard.
        entries: u64,
        /// The limit.
        limit: u64,
    },
    /// The deadline is not after the creation time.
    #[error("deadline {deadline_ms} is not after creation time {created_ms}")]
    Deadline {
        /// Creation time.
        created_ms: u64,
        /// Deadline.
        deadline_ms: u64,
    },
    /// A chunk does not match the manifest.
    #[error("{operand}: {source}")]
    Chunk {
        /// The operand.
        operand: Operand,
        /// What is wrong.
        source: ChunkError,
    },
    /// The reassembled data is not a valid job.
    #[error("reassembled job is invalid: {0}")]
    Spec(JobSpecError),
    /// The job's model does not hold (signature, shape, plan or keys).
    #[error("model: {0}")]
    Model(Box<ModelError>),
    /// X's rows do not match the model's columns.
    #[error("X has {x_rows} rows but the model's W has {k} columns")]
    XRows {
        /// Rows of X.
        x_rows: u32,
        /// Columns of W.
        k: u32,
    },
    /// The manifest could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// The job id of model `model` applied to X with this descriptor:
/// `blake3::derive_key("starkscale/2 job id", model id ‖ rows u32 LE ‖ cols u32 LE ‖
/// total_bytes u64 LE ‖ chunk count u64 LE ‖ for each chunk of X: id ‖ len u32 LE)`.
pub fn content_job_id(model: &ModelId, x: &BlobDescriptor) -> JobId {
    let mut hasher = blake3::Hasher::new_derive_key("starkscale/2 job id");
    hasher.update(model.as_bytes());
    hasher.update(&x.rows.to_le_bytes());
    hasher.update(&x.cols.to_le_bytes());
    hasher.update(&x.total_bytes.to_le_bytes());
    hasher.update(&(x.chunks.len() as u64).to_le_bytes());
    for chunk in &x.chunks {
        hasher.update(chunk.id.as_bytes());
        hasher.update(&chunk.len.to_le_bytes());
    }
    JobId(*hasher.finalize().as_bytes())
}

/// The descriptor of a matrix's canonical bytes.
pub fn describe(m: &IntMatrix, operand: Operand) -> Result<BlobDescriptor, JobSpecError> {
    let bytes = crate::job::entries_to_bytes(m, operand)?;
    Ok(BlobDescriptor {
        rows: u32::try_from(m.rows()).unwrap_or(u32::MAX),
        cols: u32::try_from(m.cols()).unwrap_or(u32::MAX),
        total_bytes: bytes.len() as u64,
        chunks: crate::chunk::chunk_refs(&bytes),
    })
}

/// Per-submission settings for [`Manifest::for_spec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestParams {
    /// Creation time (unix ms).
    pub created_ms: u64,
    /// Deadline (unix ms).
    pub deadline_ms: u64,
    /// The entry peer's key.
    pub entry: PeerKey,
}

impl BlobDescriptor {
    pub(crate) fn check(&self, operand: Operand) -> Result<(), ManifestError> {
        let expected = u64::from(self.rows) * u64::from(self.cols) * 4;
        if self.total_bytes != expected {
            return Err(ManifestError::TotalBytes {
                operand,
                expected,
                found: self.total_bytes,
            });
        }
        let size = CHUNK_SIZE as u64;
        let count = expected.div_ceil(size);
        if self.chunks.len() as u64 != count {
            return Err(ManifestError::ChunkCount {
                operand,
                expected: count,
                found: self.chunks.len() as u64,
            });
        }
        for (index, chunk) in self.chunks.iter().enumerate() {
            let start = index as u64 * size;
            let want = (expected - start).min(size);
            if u64::from(chunk.len) != want {
                return Err(ManifestError::ChunkLayout {
                    operand,
                    index,
                    expected: want,
                    found: u64::from(chunk.len),
                });
            }
        }
        Ok(())
    }
}

impl ManifestError {
    /// Whether this is only over this node's limits (local policy, not misbehaviour), for the
    /// job or for its model.
    pub fn is_local_limit(&self) -> bool {
        match self {
            Self::Limits(_) => true,
            Self::Model(e) => matches!(&**e, ModelError::Manifest(m) if m.is_local_limit()),
            _ => false,
        }
    }
}

impl Manifest {
    /// The manifest of a job: `model` applied to X (computes X's chunk ids). Not validated.
    pub fn new(
        model: SignedModel,
        x: &IntMatrix,
        params: ManifestParams,
    ) -> Result<Self, JobSpecError> {
        let operand = if x.cols() == 1 {
            Operand::Vector
        } else {
            Operand::Rhs
        };
        let x = describe(x, operand)?;
        Ok(Self {
            job: content_job_id(&model.id(), &x),
            model,
            x,
            created_ms: params.created_ms,
            deadline_ms: params.deadline_ms,
            entry: params.entry,
            aggregators: Vec::new(),
        })
    }

    /// Names the job's aggregator candidates from the keys the entry peer heard: the first
    /// [`MAX_JOB_AGGREGATORS`] by rank for this job, stored in ascending key order.
    pub fn set_aggregators(&mut self, live: &[PeerKey]) {
        let mut listed = crate::election::rank_aggregators(&self.job, live);
        listed.truncate(MAX_JOB_AGGREGATORS);
        listed.sort_unstable();
        self.aggregators = listed;
    }

    /// The model's id.
    pub fn model_id(&self) -> ModelId {
        self.model.id()
    }

    /// W's descriptor (from the model).
    pub fn w(&self) -> &BlobDescriptor {
        &self.model.manifest.w
    }

    /// Every shard's verifying key (from the model).
    pub fn shard_keys(&self) -> &[ShardKey] {
        &self.model.manifest.shard_keys
    }

    /// The proving configuration (from the model).
    pub fn config_id(&self) -> u32 {
        self.model.manifest.config_id
    }

    /// m, k, n.
    pub fn dims(&self) -> (u32, u32, u32) {
        (self.w().rows, self.w().cols, self.x.cols)
    }

    /// The shard plan (the model's).
    pub fn plan(&self) -> Result<ShardPlan, PlanError> {
        self.model.manifest.plan()
    }

    /// `blake3::derive_key("starkscale/2 manifest", canonical bytes)`; covers the job id.
    pub fn hash(&self) -> Result<ManifestHash, CodecError> {
        let bytes = to_canonical_bytes(self)?;
        let mut hasher = blake3::Hasher::new_derive_key("starkscale/2 manifest");
        hasher.update(&bytes);
        Ok(ManifestHash(*hasher.finalize().as_bytes()))
    }

    /// Checks everything that can be checked without the data: the model (its owner's
    /// signature, shape, plan and keys), X's shape against the model and the limits, the
    /// chunk layout, the job id binding, output size per shard, deadline after creation.
    pub fn validate(&self, limits: &JobLimits) -> Result<ShardPlan, ManifestError> {
        let plan = self
            .model
            .validate(limits)
            .map_err(|e| ManifestError::Model(Box::new(e)))?;
        let (m, k, n) = self.dims();
        if n == 0 || self.x.rows == 0 {
            return Err(ManifestError::Shape {
                w_rows: m,
                w_cols: k,
                x_rows: self.x.rows,
                x_cols: self.x.cols,
            });
        }
        if self.x.rows != k {
            return Err(ManifestError::XRows {
                x_rows: self.x.rows,
                k,
            });
        }
        let (m64, k64, n64) = (u64::from(m), u64::from(k), u64::from(n));
        let checks = [
            over("columns of rhs (n)", n64, limits.max_n),
            over("entries of X (k·n)", k64 * n64, limits.max_entries),
            over("entries of Y (m·n)", m64 * n64, limits.max_entries),
        ];
        if let Some(err) = checks.into_iter().flatten().next() {
            return Err(err);
        }
        let rhs = if n == 1 {
            Operand::Vector
        } else {
            Operand::Rhs
        };
        self.x.check(rhs)?;
        let computed = content_job_id(&self.model_id(), &self.x);
        if computed != self.job {
            return Err(ManifestError::JobIdMismatch {
                claimed: self.job,
                computed,
            });
        }
        let sorted = self.aggregators.windows(2).all(|pair| pair[0] < pair[1]);
        if self.aggregators.len() > MAX_JOB_AGGREGATORS || !sorted {
            return Err(ManifestError::Aggregators {
                count: self.aggregators.len(),
                limit: MAX_JOB_AGGREGATORS,
            });
        }
        let rows = plan.rows_per_shard().min(m);
        let entries = u64::from(rows) * n64;
        let limit = limits::MAX_SHARD_OUTPUT_ENTRIES as u64;
        if entries > limit {
            return Err(ManifestError::ShardOutputTooLarge {
                rows,
                n,
                entries,
                limit,
            });
        }
        if self.deadline_ms <= self.created_ms {
            return Err(ManifestError::Deadline {
                created_ms: self.created_ms,
                deadline_ms: self.deadline_ms,
            });
        }
        Ok(plan)
    }

    /// Checks fetched chunks of X against the manifest and rebuilds X.
    pub fn assemble_x<B: AsRef<[u8]>>(
        &self,
        x_chunks: &[B],
        limits: &JobLimits,
    ) -> Result<IntMatrix, ManifestError> {
        self.validate(limits)?;
        let x =
            assemble_chunks(&self.x.chunks, x_chunks).map_err(|source| ManifestError::Chunk {
                operand: Operand::Rhs,
                source,
            })?;
        crate::job::matrix_from_canonical(
            Operand::Rhs,
            self.x.rows as usize,
            self.x.cols as usize,
            &x,
        )
        .map_err(ManifestError::Spec)
    }
}

/// `Some` error naming `what` when `value` exceeds `limit`.
pub(crate) fn over(what: &'static str, value: u64, limit: usize) -> Option<ManifestError> {
    (value > limit as u64).then(|| {
        ManifestError::Limits(JobSpecError::TooLarge {
            what,
            value: usize::try_from(value).unwrap_or(usize::MAX),
            limit,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::split_into_chunks;
    use crate::ids::ChunkId;
    use crate::testutil::{model_owner, seed_manifest, seed_spec};

    fn manifest() -> Manifest {
        seed_manifest(PeerKey([1; 32]))
    }

    fn resign(mut m: Manifest, change: impl FnOnce(&mut crate::model::ModelManifest)) -> Manifest {
        let mut inner = m.model.manifest.clone();
        change(&mut inner);
        m.model = inner.sign(&model_owner()).unwrap();
        m.job = content_job_id(&m.model_id(), &m.x);
        m
    }

    #[test]
    fn a_weight_bound_no_entry_can_have_is_refused() {
        let ok = resign(manifest(), |m| {
            m.shard_keys[2].weight_bound = crate::job::MAX_ABS_ENTRY as u64
        });
        assert!(ok.validate(&JobLimits::default()).is_ok());
        let bad = resign(manifest(), |m| m.shard_keys[2].weight_bound = u64::MAX);
        let err = bad.validate(&JobLimits::default()).unwrap_err();
        assert!(err.to_string().contains("max |W|"), "{err}");
    }

    #[test]
    fn manifest_binds_to_job_id_and_validates() {
        let manifest = manifest();
        let plan = manifest.validate(&JobLimits::default()).unwrap();
        assert_eq!(plan.shard_count(), 4);
        let mut forged = manifest.clone();
        forged.job = JobId([9; 32]);
        assert!(matches!(
            forged.validate(&JobLimits::default()),
            Err(ManifestError::JobIdMismatch { .. })
        ));
        let mut other_x = manifest.clone();
        other_x.x.chunks[0].id = ChunkId([3; 32]);
        assert!(matches!(
            other_x.validate(&JobLimits::default()),
            Err(ManifestError::JobIdMismatch { .. })
        ));
        // Another model (same W, other keys) is another job.
        let other_model = resign(manifest.clone(), |m| m.shard_keys[0].commitment[0] ^= 1);
        assert_ne!(other_model.job, manifest.job);
        // Hash covers per-submission fields.
        let mut later = manifest.clone();
        later.deadline_ms += 1;
        assert_ne!(manifest.hash().unwrap(), later.hash().unwrap());
    }

    #[test]
    fn a_model_not_signed_by_its_owner_is_refused() {
        // An entry peer that swaps a shard key (or any part of the model) without the
        // owner's key: the signature no longer holds, whatever job id it recomputes.
        let mut swapped = manifest();
        swapped.model.manifest.shard_keys[1].commitment = [0xee; 32];
        swapped.job = content_job_id(&swapped.model_id(), &swapped.x);
        let err = swapped.validate(&JobLimits::default()).unwrap_err();
        assert!(
            matches!(&err, ManifestError::Model(e) if matches!(**e, ModelError::Signature { .. })),
            "{err}"
        );
        // Re-signed by another key naming itself owner: a valid, different model.
        let thief = crate::testutil::key(99);
        let mut stolen = manifest().model.manifest;
        stolen.owner = PeerKey::from(&thief);
        let stolen = stolen.sign(&thief).unwrap();
        assert_ne!(stolen.id(), manifest().model_id());
    }

    #[test]
    fn layout_and_shape_checks() {
        let manifest = manifest();
        let limits = JobLimits::default();
        let mut bad = manifest.clone();
        bad.x.total_bytes += 4;
        assert!(matches!(
            bad.validate(&limits),
            Err(ManifestError::TotalBytes { .. })
        ));
        let mut bad = manifest.clone();
        bad.x.chunks[0].len -= 1;
        assert!(matches!(
            bad.validate(&limits),
            Err(ManifestError::ChunkLayout { .. })
        ));
        let mut bad = manifest.clone();
        bad.x.chunks.push(bad.x.chunks[0]);
        assert!(matches!(
            bad.validate(&limits),
            Err(ManifestError::ChunkCount { .. })
        ));
        let mut bad = manifest.clone();
        bad.deadline_ms = bad.created_ms;
        assert!(matches!(
            bad.validate(&limits),
            Err(ManifestError::Deadline { .. })
        ));
        let mut bad = manifest.clone();
        bad.x.rows = 9;
        assert!(matches!(
            bad.validate(&limits),
            Err(ManifestError::XRows { x_rows: 9, k: 10 })
        ));
        let small = JobLimits { max_n: 0, ..limits };
        assert!(matches!(
            manifest.validate(&small),
            Err(ManifestError::Limits(_))
        ));
    }

    #[test]
    fn assemble_x_from_chunks() {
        let spec = seed_spec();
        let manifest = manifest();
        let chunks: Vec<Vec<u8>> = split_into_chunks(&spec.x_bytes())
            .into_iter()
            .map(|(_, b)| b.to_vec())
            .collect();
        let limits = JobLimits::default();
        assert_eq!(&manifest.assemble_x(&chunks, &limits).unwrap(), spec.x());
        let mut tampered = chunks.clone();
        tampered[0][0] ^= 1;
        assert!(matches!(
            manifest.assemble_x(&tampered, &limits),
            Err(ManifestError::Chunk { .. })
        ));
    }
}
