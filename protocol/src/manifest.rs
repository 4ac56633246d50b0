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
use crate::ids::{JobId, PeerKey};
use crate::job::{JobLimits, JobSpec, JobSpecError, Operand};
use crate::plan::{PlanError, ShardPlan, MAX_SHARDS_PER_JOB};

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

/// A job as announced to the network.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Manifest {
    /// The content-derived job id; must equal [`content_job_id`] of `w` and `x`.
    pub job: JobId,
    /// W (m×k).
    pub w: BlobDescriptor,
    /// X (k×n).
    pub x: BlobDescriptor,
    /// Rows per shard: with `w.rows` it fixes the [`ShardPlan`].
    pub rows_per_shard: u32,
    /// When the job was created (unix ms).
    pub created_ms: u64,
    /// When the result is due (unix ms).
    pub deadline_ms: u64,
    /// The proving configuration, opaque to this crate (the prover crate names them).
    pub config_id: u32,
    /// The entry peer that accepted the submission and signs the announcement.
    pub entry: PeerKey,
    /// One key per shard, in shard order, computed by the entry peer from W at submission.
    /// Workers check them against the weights they fetch before proving; verifiers check
    /// shard proofs against them. [`Manifest::for_spec`] fills zeroed placeholders that the
    /// entry peer replaces with the prover's commitments.
    pub shard_keys: Vec<ShardKey>,
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
/// largest |entry| of that shard (it enters the exactness bound). Opaque to this crate.
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
    /// The manifest could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// The job id of content with these descriptors:
/// `blake3::derive_key("starkscale/1 job id", for W then X: rows u32 LE ‖ cols u32 LE ‖
/// total_bytes u64 LE ‖ chunk count u64 LE ‖ for each chunk: id ‖ len u32 LE)`.
pub fn content_job_id(w: &BlobDescriptor, x: &BlobDescriptor) -> JobId {
    let mut hasher = blake3::Hasher::new_derive_key("starkscale/1 job id");
    for blob in [w, x] {
        hasher.update(&blob.rows.to_le_bytes());
        hasher.update(&blob.cols.to_le_bytes());
        hasher.update(&blob.total_bytes.to_le_bytes());
        hasher.update(&(blob.chunks.len() as u64).to_le_bytes());
        for chunk in &blob.chunks {
            hasher.update(chunk.id.as_bytes());
            hasher.update(&chunk.len.to_le_bytes());
        }
    }
    JobId(*hasher.finalize().as_bytes())
}

/// Per-submission settings for [`Manifest::for_spec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestParams {
    /// Rows per shard (see [`crate::plan::suggest_rows_per_shard`]).
    pub rows_per_shard: u32,
    /// Creation time (unix ms).
    pub created_ms: u64,
    /// Deadline (unix ms).
    pub deadline_ms: u64,
    /// Proving configuration id.
    pub config_id: u32,
    /// The entry peer's key.
    pub entry: PeerKey,
}

impl BlobDescriptor {
    fn check(&self, operand: Operand) -> Result<(), ManifestError> {
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

impl Manifest {
    /// The manifest for a validated spec (computes chunk ids of W and X).
    pub fn for_spec(spec: &JobSpec, params: ManifestParams) -> Self {
        let (w, x) = spec.descriptors();
        let shards = ShardPlan::from_rows_per_shard(w.rows, params.rows_per_shard)
            .map_or(0, |p| p.shard_count() as usize);
        Self {
            shard_keys: vec![
                ShardKey {
                    commitment: [0; 32],
                    weight_bound: 0
                };
                shards
            ],
            job: content_job_id(&w, &x),
            w,
            x,
            rows_per_shard: params.rows_per_shard,
            created_ms: params.created_ms,
            deadline_ms: params.deadline_ms,
            config_id: params.config_id,
            entry: params.entry,
            aggregators: Vec::new(),
        }
    }

    /// Names the job's aggregator candidates from the keys the entry peer heard: the first
    /// [`MAX_JOB_AGGREGATORS`] by rank for this job, stored in ascending key order.
    pub fn set_aggregators(&mut self, live: &[PeerKey]) {
        let mut listed = crate::election::rank_aggregators(&self.job, live);
        listed.truncate(MAX_JOB_AGGREGATORS);
        listed.sort_unstable();
        self.aggregators = listed;
    }

    /// m, k, n.
    pub fn dims(&self) -> (u32, u32, u32) {
        (self.w.rows, self.w.cols, self.x.cols)
    }

    /// The shard plan.
    pub fn plan(&self) -> Result<ShardPlan, PlanError> {
        ShardPlan::from_rows_per_shard(self.w.rows, self.rows_per_shard)
    }

    /// `blake3::derive_key("starkscale/1 manifest", canonical bytes)`; covers the job id.
    pub fn hash(&self) -> Result<ManifestHash, CodecError> {
        let bytes = to_canonical_bytes(self)?;
        let mut hasher = blake3::Hasher::new_derive_key("starkscale/1 manifest");
        hasher.update(&bytes);
        Ok(ManifestHash(*hasher.finalize().as_bytes()))
    }

    /// Checks everything that can be checked without the data: shapes, limits, chunk layout,
    /// job id binding, plan, output size per shard, deadline after creation.
    pub fn validate(&self, limits: &JobLimits) -> Result<ShardPlan, ManifestError> {
        let (m, k, n) = self.dims();
        if m == 0 || k == 0 || n == 0 || self.x.rows != k {
            return Err(ManifestError::Shape {
                w_rows: self.w.rows,
                w_cols: self.w.cols,
                x_rows: self.x.rows,
                x_cols: self.x.cols,
            });
        }
        let over = |what: &'static str, value: u64, limit: usize| {
            (value > limit as u64).then(|| {
                ManifestError::Limits(JobSpecError::TooLarge {
                    what,
                    value: usize::try_from(value).unwrap_or(usize::MAX),
                    limit,
                })
            })
        };
        let (m64, k64, n64) = (u64::from(m), u64::from(k), u64::from(n));
        let checks = [
            over("rows of matrix (m)", m64, limits.max_rows),
            over("inner dimension (k)", k64, limits.max_k),
            over("columns of rhs (n)", n64, limits.max_n),
            over("entries of W (m·k)", m64 * k64, limits.max_entries),
            over("entries of X (k·n)", k64 * n64, limits.max_entries),
            over("entries of Y (m·n)", m64 * n64, limits.max_entries),
        ];
        if let Some(err) = checks.into_iter().flatten().next() {
            return Err(err);
        }
        self.w.check(Operand::Matrix)?;
        let rhs = if n == 1 {
            Operand::Vector
        } else {
            Operand::Rhs
        };
        self.x.check(rhs)?;
        let computed = content_job_id(&self.w, &self.x);
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
        let plan = self.plan()?;
        if plan.shard_count() > MAX_SHARDS_PER_JOB {
            return Err(ManifestError::TooManyShards {
                count: plan.shard_count(),
                limit: MAX_SHARDS_PER_JOB,
            });
        }
        if self.shard_keys.len() != plan.shard_count() as usize {
            return Err(ManifestError::ShardKeys {
                expected: plan.shard_count(),
                found: self.shard_keys.len(),
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
        let limit = crate::job::MAX_ABS_ENTRY;
        if let Some((shard, key)) = self
            .shard_keys
            .iter()
            .enumerate()
            .find(|(_, key)| key.weight_bound > limit.unsigned_abs())
        {
            return Err(ManifestError::WeightBound {
                shard,
                bound: key.weight_bound,
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

    /// Checks fetched chunks of W and X against the manifest and rebuilds the job.
    pub fn assemble<B: AsRef<[u8]>>(
        &self,
        w_chunks: &[B],
        x_chunks: &[B],
        limits: &JobLimits,
    ) -> Result<JobSpec, ManifestError> {
        self.validate(limits)?;
        let (m, k, n) = self.dims();
        let w =
            assemble_chunks(&self.w.chunks, w_chunks).map_err(|source| ManifestError::Chunk {
                operand: Operand::Matrix,
                source,
            })?;
        let x =
            assemble_chunks(&self.x.chunks, x_chunks).map_err(|source| ManifestError::Chunk {
                operand: Operand::Rhs,
                source,
            })?;
        JobSpec::from_canonical_bytes(
            (m as usize, k as usize, &w),
            (k as usize, n as usize, &x),
            limits,
        )
        .map_err(ManifestError::Spec)
    }
}

/// The canonical bytes of W and X cut into chunks, for an entry peer to store and serve.
pub fn spec_chunks(spec: &JobSpec) -> Vec<(ChunkRef, Vec<u8>)> {
    let mut out = Vec::new();
    for bytes in [spec.w_bytes(), spec.x_bytes()] {
        out.extend(
            crate::chunk::split_into_chunks(&bytes)
                .into_iter()
                .map(|(r, b)| (r, b.to_vec())),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ChunkId;

    pub(crate) fn seed_spec() -> JobSpec {
        JobSpec::from_json(
            include_str!("../testdata/seed-matvec-10x10.json"),
            &JobLimits::default(),
        )
        .unwrap()
    }

    fn params() -> ManifestParams {
        ManifestParams {
            rows_per_shard: 3,
            created_ms: 1_000,
            deadline_ms: 61_000,
            config_id: 1,
            entry: PeerKey([1; 32]),
        }
    }

    #[test]
    fn a_weight_bound_no_entry_can_have_is_refused() {
        let mut manifest = Manifest::for_spec(&seed_spec(), params());
        manifest.shard_keys[2].weight_bound = crate::job::MAX_ABS_ENTRY as u64;
        assert!(manifest.validate(&JobLimits::default()).is_ok());
        manifest.shard_keys[2].weight_bound = u64::MAX;
        let err = manifest.validate(&JobLimits::default()).unwrap_err();
        assert!(
            matches!(err, ManifestError::WeightBound { shard: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn manifest_binds_to_job_id_and_validates() {
        let spec = seed_spec();
        let manifest = Manifest::for_spec(&spec, params());
        assert_eq!(manifest.job, spec.id());
        let plan = manifest.validate(&JobLimits::default()).unwrap();
        assert_eq!(plan.shard_count(), 4);
        let mut forged = manifest.clone();
        forged.job = JobId([9; 32]);
        assert!(matches!(
            forged.validate(&JobLimits::default()),
            Err(ManifestError::JobIdMismatch { .. })
        ));
        let mut other_content = manifest.clone();
        other_content.w.chunks[0].id = ChunkId([3; 32]);
        assert!(matches!(
            other_content.validate(&JobLimits::default()),
            Err(ManifestError::JobIdMismatch { .. })
        ));
        // Hash covers per-submission fields.
        let mut later = manifest.clone();
        later.deadline_ms += 1;
        assert_ne!(manifest.hash().unwrap(), later.hash().unwrap());
    }

    #[test]
    fn layout_and_plan_checks() {
        let manifest = Manifest::for_spec(&seed_spec(), params());
        let limits = JobLimits::default();
        let mut bad = manifest.clone();
        bad.w.total_bytes += 4;
        assert!(matches!(
            bad.validate(&limits),
            Err(ManifestError::TotalBytes { .. })
        ));
        let mut bad = manifest.clone();
        bad.w.chunks[0].len -= 1;
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
        bad.rows_per_shard = 0;
        assert!(matches!(bad.validate(&limits), Err(ManifestError::Plan(_))));
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
            Err(ManifestError::Shape { .. })
        ));
        let small = JobLimits {
            max_entries: 50,
            ..limits
        };
        assert!(matches!(
            manifest.validate(&small),
            Err(ManifestError::Limits(_))
        ));
    }

    #[test]
    fn assemble_from_chunks() {
        let spec = seed_spec();
        let manifest = Manifest::for_spec(&spec, params());
        let chunks = spec_chunks(&spec);
        assert_eq!(chunks.len(), 2);
        let w = vec![chunks[0].1.clone()];
        let x = vec![chunks[1].1.clone()];
        let limits = JobLimits::default();
        assert_eq!(manifest.assemble(&w, &x, &limits).unwrap(), spec);
        let mut tampered = w.clone();
        tampered[0][0] ^= 1;
        assert!(matches!(
            manifest.assemble(&tampered, &x, &limits),
            Err(ManifestError::Chunk { .. })
        ));
    }
}
