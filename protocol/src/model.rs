//! Models: weights W registered once by their owner and named by every job that uses them.
//!
//! The owner (who holds W) cuts W into shards, commits each shard on its own machine and
//! signs a [`ModelManifest`]: W's shape and chunk hashes, the shard plan and every shard's
//! verifying key. The [`ModelId`] is the hash of that manifest, so a model id pins W, the plan
//! and the keys; a job is (model id, X), and every check of a shard proof or a settlement
//! uses the model's keys. Nothing of a model is taken from an entry peer: a manifest counts
//! only with its owner's signature ([`SignedModel::validate`]).

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::codec::to_canonical_bytes;
use crate::ids::{ModelId, PeerKey, SignatureBytes};
use crate::job::{JobLimits, JobSpecError, Operand, MAX_ABS_ENTRY};
use crate::manifest::{over, BlobDescriptor, ManifestError, ShardKey};
use crate::matrix::IntMatrix;
use crate::plan::{ShardPlan, MAX_SHARDS_PER_JOB};

/// Longest model name, in bytes.
pub const MAX_MODEL_NAME_BYTES: usize = 128;

const SIGNING_DOMAIN: &[u8] = b"starkscale/2 model manifest\0";

/// What the owner of W signs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelManifest {
    /// A name for people (informative only; at most [`MAX_MODEL_NAME_BYTES`]).
    pub name: String,
    /// W (m×k): shape and chunk hashes of its canonical bytes.
    pub w: BlobDescriptor,
    /// Rows per shard: with `w.rows` it fixes the [`ShardPlan`].
    pub rows_per_shard: u32,
    /// The proving configuration the keys were made for (the prover crate names them).
    pub config_id: u32,
    /// One key per shard, in shard order, computed by the owner from W.
    pub shard_keys: Vec<ShardKey>,
    /// The owner's ed25519 key; the manifest's signer.
    pub owner: PeerKey,
}

/// A model manifest with its owner's signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedModel {
    /// The manifest.
    pub manifest: ModelManifest,
    /// ed25519 signature by `manifest.owner` over the domain and the manifest's canonical
    /// bytes.
    pub signature: SignatureBytes,
}

/// Why a model manifest is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The owner's signature does not verify (or the owner key is not a valid key).
    #[error("the model manifest is not signed by its owner {owner}")]
    Signature {
        /// The key the manifest names.
        owner: PeerKey,
    },
    /// The name is too long.
    #[error("model name of {len} bytes is over the limit of {MAX_MODEL_NAME_BYTES}")]
    Name {
        /// Its length.
        len: usize,
    },
    /// The shape, chunk layout, plan or keys do not hold.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// One shard is larger than any worker proves (it would have to hold it in memory).
    #[error("shards of {rows} rows × {k} columns are over the limit of {MAX_SHARD_ROWS} rows and {MAX_SHARD_ENTRIES} entries per shard: cut W into smaller shards")]
    ShardSize {
        /// Rows per shard.
        rows: u32,
        /// Columns (k).
        k: u32,
    },
    /// The signed manifest does not fit in one message.
    #[error("the signed model manifest takes {len} bytes, over the {limit}-byte limit of one message: use fewer, larger shards")]
    TooLarge {
        /// Its encoded size.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

/// The most rows in one shard (the prover's trace height limit).
pub const MAX_SHARD_ROWS: u32 = 1 << 16;
/// The most W entries in one shard: a worker holds its shard's rows in memory to set it up.
pub const MAX_SHARD_ENTRIES: u64 = 1 << 24;

fn signing_bytes(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNING_DOMAIN.len() + body.len());
    out.extend_from_slice(SIGNING_DOMAIN);
    out.extend_from_slice(body);
    out
}

impl ModelManifest {
    /// The manifest of `w` cut into shards of `rows_per_shard` rows, with the owner's shard
    /// keys (computed by the caller, who holds a prover). The keys are checked by
    /// [`SignedModel::validate`], not here.
    pub fn for_weights(
        name: &str,
        w: &IntMatrix,
        rows_per_shard: u32,
        config_id: u32,
        shard_keys: Vec<ShardKey>,
        owner: PeerKey,
    ) -> Result<Self, JobSpecError> {
        let bytes = crate::job::entries_to_bytes(w, Operand::Matrix)?;
        Ok(Self {
            name: name.to_owned(),
            w: BlobDescriptor {
                rows: u32::try_from(w.rows()).unwrap_or(u32::MAX),
                cols: u32::try_from(w.cols()).unwrap_or(u32::MAX),
                total_bytes: bytes.len() as u64,
                chunks: crate::chunk::chunk_refs(&bytes),
            },
            rows_per_shard,
            config_id,
            shard_keys,
            owner,
        })
    }

    /// The shard plan.
    pub fn plan(&self) -> Result<ShardPlan, crate::plan::PlanError> {
        ShardPlan::from_rows_per_shard(self.w.rows, self.rows_per_shard)
    }

    /// Signs with the owner's key (which must be `owner`).
    pub fn sign(self, owner: &SigningKey) -> Result<SignedModel, ModelError> {
        if PeerKey::from(owner) != self.owner {
            return Err(ModelError::Signature { owner: self.owner });
        }
        let body = to_canonical_bytes(&self).map_err(ManifestError::Codec)?;
        let signature = owner.sign(&signing_bytes(&body));
        Ok(SignedModel {
            manifest: self,
            signature: SignatureBytes(signature.to_bytes()),
        })
    }

    /// Checks everything but the signature: name, shape against `limits` (W's entries against
    /// `max_model_entries`, not the per-job cap), chunk layout, plan, one key per shard,
    /// weight bounds.
    pub fn validate(&self, limits: &JobLimits) -> Result<ShardPlan, ModelError> {
        if self.name.len() > MAX_MODEL_NAME_BYTES {
            return Err(ModelError::Name {
                len: self.name.len(),
            });
        }
        let (m, k) = (self.w.rows, self.w.cols);
        if m == 0 || k == 0 {
            return Err(ManifestError::Shape {
                w_rows: m,
                w_cols: k,
                x_rows: k,
                x_cols: 1,
            }
            .into());
        }
        let checks = [
            over("rows of the model (m)", u64::from(m), limits.max_rows),
            over("columns of the model (k)", u64::from(k), limits.max_k),
            over(
                "entries of the model (m·k)",
                u64::from(m) * u64::from(k),
                limits.max_model_entries,
            ),
        ];
        if let Some(err) = checks.into_iter().flatten().next() {
            return Err(err.into());
        }
        self.w.check(Operand::Matrix)?;
        let shard_rows = self.rows_per_shard.min(m);
        if shard_rows > MAX_SHARD_ROWS || u64::from(shard_rows) * u64::from(k) > MAX_SHARD_ENTRIES {
            return Err(ModelError::ShardSize {
                rows: shard_rows,
                k,
            });
        }
        let plan = self.plan().map_err(ManifestError::Plan)?;
        if plan.shard_count() > MAX_SHARDS_PER_JOB {
            return Err(ManifestError::TooManyShards {
                count: plan.shard_count(),
                limit: MAX_SHARDS_PER_JOB,
            }
            .into());
        }
        if self.shard_keys.len() != plan.shard_count() as usize {
            return Err(ManifestError::ShardKeys {
                expected: plan.shard_count(),
                found: self.shard_keys.len(),
            }
            .into());
        }
        if let Some((shard, key)) = self
            .shard_keys
            .iter()
            .enumerate()
            .find(|(_, key)| key.weight_bound > MAX_ABS_ENTRY.unsigned_abs())
        {
            return Err(ManifestError::WeightBound {
                shard,
                bound: key.weight_bound,
                limit: MAX_ABS_ENTRY,
            }
            .into());
        }
        Ok(plan)
    }
}

impl SignedModel {
    /// The model id: `blake3::derive_key("starkscale/2 model id", canonical manifest bytes)`.
    /// The signature is not part of it (one manifest, one id).
    pub fn id(&self) -> ModelId {
        model_id(&self.manifest)
    }

    /// The largest weight bound over the model's shards: what bounds any entry of W.
    pub fn weight_bound(&self) -> u64 {
        self.manifest
            .shard_keys
            .iter()
            .map(|key| key.weight_bound)
            .max()
            .unwrap_or(0)
    }

    /// The owner's key.
    pub fn owner(&self) -> PeerKey {
        self.manifest.owner
    }

    /// Checks the owner's signature, then the manifest ([`ModelManifest::validate`]).
    pub fn validate(&self, limits: &JobLimits) -> Result<ShardPlan, ModelError> {
        let owner = self.manifest.owner;
        let bad = || ModelError::Signature { owner };
        let key = VerifyingKey::from_bytes(owner.as_bytes()).map_err(|_| bad())?;
        let body = to_canonical_bytes(&self.manifest).map_err(ManifestError::Codec)?;
        // Room for the signature and the framing of the messages that carry a model.
        let limit = crate::codec::limits::MODEL_MANIFEST - 1024;
        if body.len() + 64 > limit {
            return Err(ModelError::TooLarge {
                len: body.len() + 64,
                limit,
            });
        }
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature.0);
        key.verify_strict(&signing_bytes(&body), &signature)
            .map_err(|_| bad())?;
        self.manifest.validate(limits)
    }
}

/// The id of a model manifest (see [`SignedModel::id`]).
pub fn model_id(manifest: &ModelManifest) -> ModelId {
    let mut hasher = blake3::Hasher::new_derive_key("starkscale/2 model id");
    // Encoding a validated manifest cannot fail; an unencodable one hashes its debug form so
    // that it still gets an id no valid manifest has.
    match to_canonical_bytes(manifest) {
        Ok(bytes) => hasher.update(&bytes),
        Err(_) => hasher.update(format!("unencodable {manifest:?}").as_bytes()),
    };
    ModelId(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn manifest() -> ModelManifest {
        let w = IntMatrix::new(10, 4, (0..40).collect()).unwrap();
        let keys = vec![
            ShardKey {
                commitment: [1; 32],
                weight_bound: 39,
            };
            4
        ];
        ModelManifest::for_weights("m", &w, 3, 2, keys, PeerKey::from(&owner())).unwrap()
    }

    #[test]
    fn a_signed_model_validates_and_its_id_pins_the_manifest() {
        let model = manifest().sign(&owner()).unwrap();
        let plan = model.validate(&JobLimits::default()).unwrap();
        assert_eq!(plan.shard_count(), 4);
        let mut other = model.clone();
        other.manifest.shard_keys[1].commitment[0] ^= 1;
        assert_ne!(model.id(), other.id());
        let mut renamed = model.clone();
        renamed.manifest.name = "n".into();
        assert_ne!(model.id(), renamed.id());
    }

    #[test]
    fn any_change_after_signing_breaks_the_signature() {
        let model = manifest().sign(&owner()).unwrap();
        let limits = JobLimits::default();
        let mut changed: Vec<SignedModel> = Vec::new();
        let mut m = model.clone();
        m.manifest.shard_keys[2].commitment[5] ^= 1;
        changed.push(m);
        let mut m = model.clone();
        m.manifest.shard_keys[0].weight_bound += 1;
        changed.push(m);
        let mut m = model.clone();
        m.manifest.rows_per_shard = 5;
        m.manifest.shard_keys.truncate(2);
        changed.push(m);
        let mut m = model.clone();
        m.manifest.w.chunks[0].id.0[0] ^= 1;
        changed.push(m);
        let mut m = model.clone();
        m.manifest.config_id += 1;
        changed.push(m);
        let mut m = model.clone();
        m.manifest.owner = PeerKey::from(&SigningKey::from_bytes(&[8; 32]));
        changed.push(m);
        let mut m = model.clone();
        m.signature.0[10] ^= 1;
        changed.push(m);
        for m in changed {
            assert!(
                matches!(m.validate(&limits), Err(ModelError::Signature { .. })),
                "{m:?}"
            );
        }
    }

    /// A model whose W descriptor is `m × k` (every chunk the same: only the layout is
    /// checked here) cut into shards of `rows` rows.
    fn shaped(m: u32, k: u32, rows: u32) -> ModelManifest {
        let mut model = manifest();
        let total = u64::from(m) * u64::from(k) * 4;
        let size = crate::chunk::CHUNK_SIZE as u64;
        let count = total.div_ceil(size);
        let chunk = model.w.chunks[0];
        model.w = BlobDescriptor {
            rows: m,
            cols: k,
            total_bytes: total,
            chunks: (0..count)
                .map(|i| crate::chunk::ChunkRef {
                    id: chunk.id,
                    len: if i + 1 == count {
                        total - i * size
                    } else {
                        size
                    } as u32,
                })
                .collect(),
        };
        model.rows_per_shard = rows;
        model.shard_keys = vec![model.shard_keys[0]; m.div_ceil(rows) as usize];
        model
    }

    #[test]
    fn shards_larger_than_a_worker_proves_are_refused() {
        let limits = JobLimits::default();
        // Within both limits: accepted.
        shaped(1 << 12, 1 << 12, 1 << 10)
            .sign(&owner())
            .unwrap()
            .validate(&limits)
            .unwrap();
        // Too many rows in one shard (a single-column W of 2^17 rows in one shard).
        let tall = shaped(1 << 17, 1, 1 << 17).sign(&owner()).unwrap();
        assert!(matches!(
            tall.validate(&limits),
            Err(ModelError::ShardSize { rows: 131072, k: 1 })
        ));
        // Too many entries in one shard: 2^12 rows × 2^13 columns = 2^25 > 2^24.
        let wide = shaped(1 << 12, 1 << 13, 1 << 12).sign(&owner()).unwrap();
        let err = wide.validate(&limits).unwrap_err();
        assert!(matches!(err, ModelError::ShardSize { .. }), "{err}");
        assert!(err.to_string().contains("smaller shards"), "{err}");
        // The same W in shards of 2^11 rows (2^24 entries) is fine.
        shaped(1 << 12, 1 << 13, 1 << 11)
            .sign(&owner())
            .unwrap()
            .validate(&limits)
            .unwrap();
    }

    #[test]
    fn a_manifest_too_large_for_one_message_is_refused() {
        // Shard keys are 33+ bytes each: 30 000 one-row shards do not fit in one message.
        let limits = JobLimits::default();
        let many = shaped(30_000, 1, 1).sign(&owner()).unwrap();
        let err = many.validate(&limits).unwrap_err();
        assert!(matches!(err, ModelError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn only_the_owner_signs() {
        let other = SigningKey::from_bytes(&[9; 32]);
        assert!(matches!(
            manifest().sign(&other),
            Err(ModelError::Signature { .. })
        ));
    }

    #[test]
    fn shape_plan_and_keys_are_checked_even_when_signed() {
        let limits = JobLimits::default();
        let cases: Vec<(ModelManifest, &str)> = vec![
            {
                let mut m = manifest();
                m.shard_keys.pop();
                (m, "shard keys")
            },
            {
                let mut m = manifest();
                m.shard_keys[3].weight_bound = u64::MAX;
                (m, "max |W|")
            },
            {
                let mut m = manifest();
                m.w.total_bytes += 4;
                (m, "total_bytes")
            },
            {
                let mut m = manifest();
                m.rows_per_shard = 0;
                (m, "plan")
            },
            {
                let mut m = manifest();
                m.name = "x".repeat(MAX_MODEL_NAME_BYTES + 1);
                (m, "name")
            },
        ];
        for (m, what) in cases {
            let err = m.sign(&owner()).unwrap().validate(&limits).unwrap_err();
            assert!(err.to_string().contains(what), "{what}: {err}");
        }
        let small = JobLimits {
            max_model_entries: 39,
            ..limits
        };
        let err = manifest()
            .sign(&owner())
            .unwrap()
            .validate(&small)
            .unwrap_err();
        assert!(err.to_string().contains("entries of the model"), "{err}");
    }
}
