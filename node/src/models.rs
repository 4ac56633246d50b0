//! Models on the node side: the owner's setup that signs a model, one-off models for job
//! files, and the proving keys a worker keeps between jobs.
//!
//! The owner computes every shard's key on its own machine ([`build`]); nobody else does setup
//! to *define* a model. A worker does setup once per shard it proves and keeps the proving
//! key ([`KeyCache`]), so repeated inference against a model skips both the W fetch and the
//! setup.

use std::collections::HashMap;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use starkscale_protocol::ids::{JobId, ModelId, PeerKey};
use starkscale_protocol::manifest::{content_job_id, describe, ShardKey};
use starkscale_protocol::matrix::IntMatrix;
use starkscale_protocol::model::{ModelManifest, SignedModel};
use starkscale_protocol::plan::{suggest_rows_per_shard, ShardPlan};
use starkscale_protocol::{JobLimits, JobSpec};

use crate::convert::to_prover;

/// Every shard's verifying key of `w` cut into shards of `rows_per_shard` rows: the owner's
/// setup. CPU-bound (one commitment per shard): call it off the async executor.
pub fn shard_keys(w: &IntMatrix, rows_per_shard: u32) -> anyhow::Result<Vec<ShardKey>> {
    let rows = u32::try_from(w.rows())
        .map_err(|_| anyhow::anyhow!("W has {} rows, over the u32 limit", w.rows()))?;
    let plan = ShardPlan::from_rows_per_shard(rows, rows_per_shard)?;
    plan.shards()
        .map(|range| {
            let shard = IntMatrix::new(
                range.len() as usize,
                w.cols(),
                w.data()[range.rows.start as usize * w.cols()..range.rows.end as usize * w.cols()]
                    .to_vec(),
            )?;
            let pk = starkscale_prover::setup(&to_prover(&shard)?)?;
            let vk = pk.verifying_key();
            Ok(ShardKey {
                commitment: vk.commitment_bytes(),
                weight_bound: vk.weight_bound,
            })
        })
        .collect()
}

/// Rows per shard for a model of m×k (a plan for `n_hint` columns of X): about
/// `shard_entries` entries of W per shard, and few enough shards that a settlement carrying
/// every shard proof fits (until the recursive settlement exists, a proof opens a W row per
/// query, so a job of many shards would not settle).
pub fn rows_per_shard(m: u32, k: u32, n_hint: u32, shard_entries: u64) -> u32 {
    let proof_estimate =
        starkscale_prover::config::NUM_QUERIES as u64 * u64::from(k) * 4 + (96 << 10);
    let budget = starkscale_protocol::codec::limits::MAX_SETTLEMENT_BYTES as u64 * 3 / 4;
    let max_shards = (budget / proof_estimate).max(1) as u32;
    suggest_rows_per_shard(m, k, n_hint.max(1), shard_entries).max(m.div_ceil(max_shards))
}

/// Builds and signs the model of `w`: the owner's setup of every shard. CPU-bound.
pub fn build(
    name: &str,
    w: &IntMatrix,
    rows_per_shard: u32,
    owner: &SigningKey,
) -> anyhow::Result<SignedModel> {
    let keys = shard_keys(w, rows_per_shard)?;
    let manifest = ModelManifest::for_weights(
        name,
        w,
        rows_per_shard,
        starkscale_prover::CONFIG_ID,
        keys,
        PeerKey::from(owner),
    )?;
    let model = manifest.sign(owner)?;
    model
        .validate(&JobLimits::default())
        .map_err(|e| anyhow::anyhow!("the model just built does not validate: {e}"))?;
    Ok(model)
}

/// The owner key of the one-off model of a job file: derived from W's bytes and the plan, so
/// the same job file gives the same model and job id on every submission. Whoever holds W can
/// derive it; a one-off model is pinned by its id, not by its owner.
pub fn one_off_owner(spec: &JobSpec, rows_per_shard: u32) -> SigningKey {
    let mut hasher = blake3::Hasher::new_derive_key("starkscale/2 one-off model owner");
    hasher.update(&rows_per_shard.to_le_bytes());
    hasher.update(&spec.w_bytes());
    SigningKey::from_bytes(hasher.finalize().as_bytes())
}

/// The one-off model of a job file (W of the job, shards of about `shard_entries` entries).
/// CPU-bound.
pub fn one_off(spec: &JobSpec, shard_entries: u64) -> anyhow::Result<SignedModel> {
    let (m, k, n) = (spec.m() as u32, spec.k() as u32, spec.n() as u32);
    let rows = rows_per_shard(m, k, n, shard_entries);
    build("one-off", spec.w(), rows, &one_off_owner(spec, rows))
}

/// The job id of `x` against `model`.
pub fn job_id(model: &ModelId, x: &IntMatrix) -> anyhow::Result<JobId> {
    let operand = if x.cols() == 1 {
        starkscale_protocol::job::Operand::Vector
    } else {
        starkscale_protocol::job::Operand::Rhs
    };
    Ok(content_job_id(model, &describe(x, operand)?))
}

/// The job id of a job file submitted as a one-off model (setup included: CPU-bound).
pub fn one_off_job_id(spec: &JobSpec, shard_entries: u64) -> anyhow::Result<JobId> {
    job_id(&one_off(spec, shard_entries)?.id(), spec.x())
}

/// Estimated memory of one shard's proving key: the padded trace, its low-degree extension
/// and Merkle tree, and the weights.
pub fn proving_key_bytes(rows: usize, k: usize) -> u64 {
    // Traces are at least 64 rows high; the Merkle tree over the extension holds about two
    // 32-byte digests per leaf; each kept key has a fixed overhead besides.
    let padded = rows.next_power_of_two().max(64) as u64;
    let k = k as u64;
    let blowup = 1u64 << starkscale_prover::config::LOG_BLOWUP;
    let leaves = padded * blowup;
    padded * k * 4 * (1 + 2 * blowup) + rows as u64 * k * 8 + leaves * 64 + 4096
}

/// The most proving keys a worker keeps, whatever their size.
pub const MAX_KEPT_KEYS: usize = 4096;

/// Proving keys a worker keeps between jobs, by (model, shard), within a memory budget; the
/// least recently used are dropped first.
pub struct KeyCache {
    budget: u64,
    used: u64,
    tick: u64,
    entries: HashMap<(ModelId, u32), Kept>,
}

struct Kept {
    key: Arc<starkscale_prover::ProvingKey>,
    bytes: u64,
    last_used: u64,
}

impl KeyCache {
    /// A cache holding at most `budget` bytes of keys (0 keeps none).
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            used: 0,
            tick: 0,
            entries: HashMap::new(),
        }
    }

    /// The key of shard `shard` of `model`, if kept (and marks it used).
    pub fn get(
        &mut self,
        model: &ModelId,
        shard: u32,
    ) -> Option<Arc<starkscale_prover::ProvingKey>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(&(*model, shard)).map(|kept| {
            kept.last_used = tick;
            kept.key.clone()
        })
    }

    /// Whether the key of this shard is kept.
    pub fn holds(&self, model: &ModelId, shard: u32) -> bool {
        self.entries.contains_key(&(*model, shard))
    }

    /// Keeps a key, dropping the least recently used ones to stay within the budget. A key
    /// larger than the whole budget is not kept.
    pub fn insert(&mut self, model: ModelId, shard: u32, key: Arc<starkscale_prover::ProvingKey>) {
        let vk = key.verifying_key();
        let bytes = proving_key_bytes(vk.rows as usize, vk.k as usize);
        if bytes > self.budget {
            return;
        }
        self.tick += 1;
        if let Some(old) = self.entries.remove(&(model, shard)) {
            self.used -= old.bytes;
        }
        while self.used + bytes > self.budget || self.entries.len() >= MAX_KEPT_KEYS {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, kept)| kept.last_used)
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some(old) = self.entries.remove(&oldest) {
                self.used -= old.bytes;
            }
        }
        self.used += bytes;
        self.entries.insert(
            (model, shard),
            Kept {
                key,
                bytes,
                last_used: self.tick,
            },
        );
    }

    /// Bytes of keys kept.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Keys kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> JobSpec {
        JobSpec::from_json(
            r#"{"matrix": [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 0, 1]], "vector": [1, 1, 2]}"#,
            &JobLimits::default(),
        )
        .unwrap()
    }

    #[test]
    fn one_off_models_are_deterministic_and_validate() {
        let a = one_off(&spec(), 4).unwrap();
        let b = one_off(&spec(), 4).unwrap();
        assert_eq!(a.id(), b.id());
        assert!(a.validate(&JobLimits::default()).is_ok());
        assert_eq!(
            a.manifest.shard_keys.len(),
            a.manifest.plan().unwrap().shard_count() as usize
        );
        // The owner's keys are the prover's commitments of each shard.
        let shard = IntMatrix::new(
            a.manifest.rows_per_shard as usize,
            3,
            spec().w().data()[..a.manifest.rows_per_shard as usize * 3].to_vec(),
        )
        .unwrap();
        let pk = starkscale_prover::setup(&to_prover(&shard).unwrap()).unwrap();
        assert_eq!(
            a.manifest.shard_keys[0].commitment,
            pk.verifying_key().commitment_bytes()
        );
    }

    #[test]
    fn the_key_cache_keeps_the_most_recently_used_within_its_budget() {
        let w = to_prover(&IntMatrix::new(4, 3, (0..12).collect()).unwrap()).unwrap();
        let key = Arc::new(starkscale_prover::setup(&w).unwrap());
        let one = proving_key_bytes(4, 3);
        let mut cache = KeyCache::new(2 * one);
        let (a, b, c) = (ModelId([1; 32]), ModelId([2; 32]), ModelId([3; 32]));
        cache.insert(a, 0, key.clone());
        cache.insert(b, 0, key.clone());
        assert!(cache.get(&a, 0).is_some());
        cache.insert(c, 0, key.clone());
        assert!(cache.holds(&a, 0) && cache.holds(&c, 0) && !cache.holds(&b, 0));
        assert_eq!(cache.used(), 2 * one);
        let mut none = KeyCache::new(one - 1);
        none.insert(a, 0, key);
        assert!(none.is_empty());
    }
}
