//! Every Merkle opening of a real shard proof, as full authentication paths with the exact
//! leaf values hashed: what the recursion circuit's Merkle table re-hashes.
//!
//! # How the openings are obtained
//!
//! Plonky3 0.8's FRI ships *pruned* multi-openings (one shared proof per tree), and the leaf
//! of a commit-phase round holds one value that is not in the proof at all: the query's own
//! folded evaluation, which the verifier computes. So the openings are not read off the proof:
//! the native verifier runs once under a configuration whose MMCS is the shard's `ValMmcs`
//! wrapped in a recorder (same types, same bytes; `super::replay::replay`, which records
//! the transcript in the same run), capturing each
//! `verify_multi_batch(commit, dims, indices, rows, pruned_proof)` call exactly as the
//! verifier makes it; [`extract`] then restores full per-query paths with
//! `MerkleTreeMmcs::restore_and_recompute_paths`. Every opening is then checked natively:
//! `Hash` over the leaf values, `Compress` up the siblings (bit `i` of the index = 0 means the
//! running digest is the left child at level `i`), equal to the root, equal to the commitment
//! in the proof or the verifying key.
//!
//! # Layout (cap height 0: one root per tree; `H = degree_bits + LOG_BLOWUP`)
//!
//! Trees, in the order of [`ProofOpenings::trees`] and of every [`QueryOpenings::openings`]:
//! - [`Tree::Input`]`(0)`: the main trace, one matrix of width `vectors` (the AIR's effective
//!   vectors), height `2^H`.
//! - [`Tree::Input`]`(1)`: the quotient chunks, one matrix per chunk, each 4 base columns
//!   (an extension value flattened), height `2^H`; the leaf is the chunks' rows concatenated.
//! - [`Tree::Input`]`(2)`: the preprocessed trace (the weights), width `k`, height `2^H`.
//! - [`Tree::Round`]`(r)`: FRI commit-phase round `r`, one extension matrix of width
//!   `2^a_r` flattened by `ExtensionMmcs` into `4·2^a_r` base values (value `j`'s coefficients
//!   `4j..4j+4`), height `2^(H - s_r)` with `s_r = a_0 + … + a_r`. The arities
//!   `a_r = min(3, remaining)` fold `H` down to `LOG_BLOWUP + LOG_FINAL_POLY_LEN = 8`
//!   (`p3_fri::fold_schedule`): no rounds while `H ≤ 8`.
//!
//! The leaf index of every tree is `query_index >> index_shift` (0 for the input trees,
//! `s_r` for round `r`). In round `r` the query's own (folded) value sits at position
//! `(query_index >> s_{r-1}) mod 2^a_r` of the row (`s_{-1} = 0`); the other values are the
//! proof's `sibling_values`.
//!
//! The query indices are the transcript's last `NUM_QUERIES` samples, each a `sample_bits(H)`
//! (one base sample, canonical value masked to its low `H` bits): see [`query_indices`].

use std::sync::{Arc, Mutex, OnceLock};

use p3_commit::{BatchOpening, BatchOpeningRef, ExtensionMmcs, Mmcs};
use p3_field::PrimeField64;
use p3_fri::TwoAdicFriPcs;
use p3_koala_bear::default_koalabear_poseidon2_16;
use p3_matrix::{Dimensions, Matrix};
use p3_merkle_tree::PrunedMerklePaths;
use p3_symmetric::{CryptographicHasher, MerkleCap, PseudoCompressionFunction};
use p3_uni_stark::{PreprocessedVerifierKey, Proof};

use super::replay::Event;
use crate::tables::transcript::Call;
use starkscale_prover::air::ShardAir;
use starkscale_prover::config::{
    Challenge, Compress, Dft, Hash, ShardStarkConfig, Val, ValMmcs, LOG_BLOWUP, NUM_QUERIES,
};
use starkscale_prover::error::VerifyError;
use starkscale_prover::matrix::IntMatrix;
use starkscale_prover::shard::{ShardProof, VerifyingKey};
use starkscale_prover::statement::Binding;

/// A Merkle digest (and root): eight base-field elements.
pub type Digest = [Val; 8];

/// One Merkle opening.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opening {
    /// The leaf's values in the order the leaf hash absorbs them: every matrix of the tree at
    /// this row, concatenated; extension values flattened to their 4 base coefficients.
    pub values: Vec<Val>,
    /// The leaf index in the tree.
    pub index: usize,
    /// The siblings from the leaf level up (one per level: the depth is the tree's log height).
    pub siblings: Vec<Digest>,
    /// The tree's root.
    pub root: Digest,
}

impl Opening {
    /// The root these values, index and siblings hash to (natively): `Hash` over the values,
    /// then at level `i` `Compress(cur ‖ sib)` if bit `i` of the index is 0, else
    /// `Compress(sib ‖ cur)`.
    pub fn root_of(&self) -> Digest {
        let (hash, compress) = hashers();
        let mut digest = hash.hash_iter(self.values.iter().copied());
        for (level, sibling) in self.siblings.iter().enumerate() {
            digest = if (self.index >> level) & 1 == 0 {
                compress.compress([digest, *sibling])
            } else {
                compress.compress([*sibling, digest])
            };
        }
        digest
    }
}

/// Which tree an opening is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tree {
    /// Input batch `i` of the PCS: 0 the main trace, 1 the quotient chunks, 2 the
    /// preprocessed trace.
    Input(usize),
    /// FRI commit-phase round `r`.
    Round(usize),
}

/// The shape of one tree: what the circuit needs to place each path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeShape {
    /// The tree.
    pub tree: Tree,
    /// Its root (the commitment in the proof, or the verifying key's for the preprocessed tree).
    pub root: Digest,
    /// log2 of its height: the depth of every path.
    pub log_height: usize,
    /// A query's leaf index in this tree is `query_index >> index_shift`.
    pub index_shift: usize,
    /// Width, in base elements, of each matrix whose rows make up a leaf.
    pub widths: Vec<usize>,
    /// For a FRI round, log2 of its folding arity (the row holds `2^log_arity` values).
    pub log_arity: Option<usize>,
}

/// Everything opened for one query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryOpenings {
    /// The index the verifier sampled (`sample_bits(log_max_height)`), before any shift.
    pub query_index: usize,
    /// One opening per tree, in the order of [`ProofOpenings::trees`].
    pub openings: Vec<(Tree, Opening)>,
}

/// Every Merkle opening of one proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofOpenings {
    /// `degree_bits + LOG_BLOWUP`: the input trees' log height and the query index width.
    pub log_max_height: usize,
    /// The trees: input batches in the verifier's order, then FRI rounds.
    pub trees: Vec<TreeShape>,
    /// One entry per query, in sampling order.
    pub queries: Vec<QueryOpenings>,
}

fn hashers() -> &'static (Hash, Compress) {
    static HASHERS: OnceLock<(Hash, Compress)> = OnceLock::new();
    HASHERS.get_or_init(|| {
        let perm = default_koalabear_poseidon2_16();
        (Hash::new(perm.clone()), Compress::new(perm))
    })
}

/// The query indices of a replayed transcript ([`super::replay::replay_transcript`]): its last
/// `num_queries` calls, which must all be samples, each masked to `log_max_height` bits (p3-fri
/// 0.8 draws them with `challenge_bits(index_bits = log_max_height, num_queries)`, i.e.
/// `sample_bits`, the biased variant, after the query proof-of-work check).
pub fn query_indices(
    calls: &[Call],
    log_max_height: usize,
    num_queries: usize,
) -> Result<Vec<usize>, String> {
    let start = calls
        .len()
        .checked_sub(num_queries)
        .ok_or("the transcript has fewer calls than queries")?;
    let mask = (1u64 << log_max_height.min(63)) - 1;
    calls[start..]
        .iter()
        .map(|call| match call {
            Call::Sample(v) => Ok((v.as_canonical_u64() & mask) as usize),
            Call::Observe(_) => Err("the transcript does not end with the query samples".into()),
        })
        .collect()
}

/// One `verify_multi_batch` call of the native verifier, as made.
#[derive(Clone)]
pub(crate) struct Recorded {
    commit: MerkleCap<Val, Digest>,
    dims: Vec<Dimensions>,
    indices: Vec<usize>,
    rows: Vec<Vec<Vec<Val>>>,
    proof: PrunedMerklePaths<Val, 8>,
}

/// The shard's `ValMmcs`, logging every multi-opening it verifies. Same commitment and proof
/// types, so a shard proof decodes unchanged under the recording configuration.
#[derive(Clone)]
pub(crate) struct RecordingMmcs {
    inner: ValMmcs,
    log: Arc<Mutex<Vec<Recorded>>>,
    // Accept every multi-opening after recording it.
    lenient: bool,
}

impl RecordingMmcs {
    /// The shard configuration's scheme with an empty log; with `lenient`, openings are
    /// recorded and never refused.
    pub(crate) fn with_leniency(lenient: bool) -> Self {
        Self {
            inner: val_mmcs(),
            log: Arc::default(),
            lenient,
        }
    }

    /// The multi-openings verified so far, by this scheme and every clone of it.
    pub(crate) fn recorded(&self) -> Vec<Recorded> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

fn val_mmcs() -> ValMmcs {
    let (hash, compress) = hashers().clone();
    ValMmcs::new(hash, compress, 0)
}

impl Mmcs<Val> for RecordingMmcs {
    type ProverData<M> = <ValMmcs as Mmcs<Val>>::ProverData<M>;
    type Commitment = <ValMmcs as Mmcs<Val>>::Commitment;
    type Proof = <ValMmcs as Mmcs<Val>>::Proof;
    type MultiProof = <ValMmcs as Mmcs<Val>>::MultiProof;
    type Error = <ValMmcs as Mmcs<Val>>::Error;

    fn commit<M: Matrix<Val>>(&self, inputs: Vec<M>) -> (Self::Commitment, Self::ProverData<M>) {
        self.inner.commit(inputs)
    }

    fn open_batch<M: Matrix<Val>>(
        &self,
        index: usize,
        prover_data: &Self::ProverData<M>,
    ) -> BatchOpening<Val, Self> {
        let (values, proof) = self.inner.open_batch(index, prover_data).unpack();
        BatchOpening::new(values, proof)
    }

    fn get_matrices<'a, M: Matrix<Val>>(&self, prover_data: &'a Self::ProverData<M>) -> Vec<&'a M> {
        self.inner.get_matrices(prover_data)
    }

    fn verify_batch(
        &self,
        commit: &Self::Commitment,
        dimensions: &[Dimensions],
        index: usize,
        opening: BatchOpeningRef<'_, Val, Self>,
    ) -> Result<(), Self::Error> {
        let opening = BatchOpeningRef::new(opening.opened_values, opening.opening_proof);
        self.inner.verify_batch(commit, dimensions, index, opening)
    }

    fn open_multi_batch<M: Matrix<Val>>(
        &self,
        indices: &[usize],
        prover_data: &Self::ProverData<M>,
    ) -> (Vec<Vec<Vec<Val>>>, Self::MultiProof) {
        self.inner.open_multi_batch(indices, prover_data)
    }

    fn verify_multi_batch<R: AsRef<[Val]> + PartialEq>(
        &self,
        commit: &Self::Commitment,
        dimensions: &[Dimensions],
        indices: &[usize],
        opened_values: &[Vec<R>],
        proof: &Self::MultiProof,
    ) -> Result<(), Self::Error> {
        if let Ok(mut log) = self.log.lock() {
            log.push(Recorded {
                commit: commit.clone(),
                dims: dimensions.to_vec(),
                indices: indices.to_vec(),
                rows: opened_values
                    .iter()
                    .map(|q| q.iter().map(|row| row.as_ref().to_vec()).collect())
                    .collect(),
                proof: proof.clone(),
            });
        }
        let verdict =
            self.inner
                .verify_multi_batch(commit, dimensions, indices, opened_values, proof);
        if self.lenient {
            return Ok(());
        }
        verdict
    }
}

/// The shard configuration's PCS over the recording scheme.
pub(crate) type RecordingPcs =
    TwoAdicFriPcs<Val, Dft, RecordingMmcs, ExtensionMmcs<Val, Challenge, RecordingMmcs>>;

fn single_root(cap: &MerkleCap<Val, Digest>) -> Result<Digest, String> {
    match cap.roots() {
        [root] => Ok(*root),
        roots => Err(format!("a cap of {} roots, expected 1", roots.len())),
    }
}

/// Every Merkle opening of `proof`, which must verify natively against `air`, `public_values`
/// and `preprocessed` (the inputs of `p3_uni_stark::verify_with_preprocessed`).
/// `query_indices` are the verifier's sampled indices (see [`query_indices`]): each tree's
/// leaf indices must be exactly these, shifted. Every returned opening has been re-hashed to
/// its root, and every root compared with its commitment.
pub fn extract(
    proof: &Proof<ShardStarkConfig>,
    air: &ShardAir,
    public_values: &[Val],
    preprocessed: &PreprocessedVerifierKey<ShardStarkConfig>,
    query_indices: &[usize],
) -> Result<ProofOpenings, String> {
    let inputs = (air.clone(), public_values.to_vec(), preprocessed.clone());
    let replay = super::replay::replay(proof, &inputs)
        .map_err(|e| format!("the proof does not verify: {e}"))?;
    openings_of(
        proof,
        preprocessed,
        &replay.multi_openings,
        query_indices,
        false,
    )
}

/// The openings in the multi-openings a native verification of `proof` checked (from
/// `super::replay::replay`), restored to full paths and re-hashed to their roots (with
/// `lenient`, openings that do not hash to their roots are kept, for the circuit to refuse).
pub(crate) fn openings_of(
    proof: &Proof<ShardStarkConfig>,
    preprocessed: &PreprocessedVerifierKey<ShardStarkConfig>,
    calls: &[Recorded],
    query_indices: &[usize],
    lenient: bool,
) -> Result<ProofOpenings, String> {
    let mmcs = val_mmcs();
    // The verifier opens the input batches (trace, quotient chunks, preprocessed), then
    // checks one tree per FRI round.
    let fri = &proof.opening_proof;
    let mut expected: Vec<(Tree, &MerkleCap<Val, Digest>)> = vec![
        (Tree::Input(0), &proof.commitments.trace),
        (Tree::Input(1), &proof.commitments.quotient_chunks),
        (Tree::Input(2), &preprocessed.commitment),
    ];
    let rounds = fri.commit_phase_commits.iter().enumerate();
    expected.extend(rounds.map(|(r, c)| (Tree::Round(r), c)));
    if calls.len() != expected.len() || fri.input_openings.len() != 3 {
        return Err(format!(
            "{} multi-openings verified, expected 3 inputs + {} rounds",
            calls.len(),
            fri.commit_phase_commits.len()
        ));
    }
    let log_max_height = proof.degree_bits + LOG_BLOWUP;
    let mut trees = Vec::with_capacity(calls.len());
    let mut queries: Vec<QueryOpenings> = query_indices
        .iter()
        .map(|&query_index| QueryOpenings {
            query_index,
            openings: Vec::with_capacity(calls.len()),
        })
        .collect();
    let mut folded = 0;
    for (call, (tree, commitment)) in calls.iter().zip(expected) {
        let root = single_root(&call.commit)?;
        if root != single_root(commitment)? {
            return Err(format!("{tree:?}: opened against another root"));
        }
        let height = call.dims.first().map_or(0, |d| d.height);
        if !height.is_power_of_two() || call.dims.iter().any(|d| d.height != height) {
            return Err(format!("{tree:?}: matrices of different or odd heights"));
        }
        let log_height = height.trailing_zeros() as usize;
        let index_shift = log_max_height
            .checked_sub(log_height)
            .ok_or(format!("{tree:?}: taller than the inputs"))?;
        let widths: Vec<usize> = call.dims.iter().map(|d| d.width).collect();
        let log_arity = match tree {
            Tree::Input(_) if index_shift == 0 => None,
            Tree::Round(_) if index_shift > folded && widths == [4 << (index_shift - folded)] => {
                Some(index_shift - std::mem::replace(&mut folded, index_shift))
            }
            _ => return Err(format!("{tree:?}: unexpected shape {:?}", call.dims)),
        };
        let shifted: Vec<usize> = query_indices.iter().map(|q| q >> index_shift).collect();
        if call.indices != shifted {
            return Err(format!("{tree:?}: opened indices differ from the queries"));
        }
        let restored = mmcs
            .restore_and_recompute_paths(&call.dims, &call.indices, &call.rows, &call.proof)
            .map_err(|e| format!("{tree:?}: restoring paths: {e:?}"));
        // A lenient caller (a witness for a proof that may not verify) gets paths of the right
        // shape even when the proof's pruned paths do not fit its indices: all-zero siblings,
        // which the circuit refuses.
        let paths: Vec<(usize, Vec<Digest>)> = match restored {
            Ok(paths) => paths
                .into_iter()
                .map(|p| (p.leaf_index, p.siblings))
                .collect(),
            Err(_) if lenient => call
                .indices
                .iter()
                .map(|i| (*i, vec![[Val::default(); 8]; log_height]))
                .collect(),
            Err(e) => return Err(e),
        };
        for (((leaf_index, siblings), rows), query) in
            paths.into_iter().zip(&call.rows).zip(&mut queries)
        {
            let index = query.query_index >> index_shift;
            let opening = Opening {
                values: rows.concat(),
                index: leaf_index,
                siblings,
                root,
            };
            if opening.index != index
                || opening.siblings.len() != log_height
                || (!lenient && opening.root_of() != root)
            {
                return Err(format!(
                    "{tree:?}: query at leaf {index} does not hash to the root"
                ));
            }
            query.openings.push((tree, opening));
        }
        trees.push(TreeShape {
            tree,
            root,
            log_height,
            index_shift,
            widths,
            log_arity,
        });
    }
    Ok(ProofOpenings {
        log_max_height,
        trees,
        queries,
    })
}

/// Every Merkle opening of a shard proof (see `replay_shard`).
pub fn extract_shard(
    vk: &VerifyingKey,
    x: &IntMatrix,
    y: &IntMatrix,
    binding: &Binding,
    proof: &ShardProof,
) -> Result<ProofOpenings, VerifyError> {
    replay_shard(vk, x, y, binding, proof).map(|(_, _, openings)| openings)
}

/// All of [`starkscale_prover::shard::verify`]'s checks, then one native verification recording the
/// transcript and the Merkle openings: the tagged calls, the public values the AIR was
/// verified against, and every opening ([`openings_of`], which checks the trees were opened at
/// exactly the transcript's query indices).
pub(crate) fn replay_shard(
    vk: &VerifyingKey,
    x: &IntMatrix,
    y: &IntMatrix,
    binding: &Binding,
    proof: &ShardProof,
) -> Result<(Vec<Event>, Vec<Val>, ProofOpenings), VerifyError> {
    let inputs = starkscale_prover::shard::verifier_inputs(vk, x, y, binding, proof)?;
    let inner = proof.plonky3_proof();
    let replay = super::replay::replay(inner, &inputs).map_err(VerifyError::Invalid)?;
    let calls: Vec<Call> = replay.events.iter().map(|e| e.call).collect();
    let indices = query_indices(&calls, inner.degree_bits + LOG_BLOWUP, NUM_QUERIES)
        .map_err(VerifyError::Invalid)?;
    let (_, public, key) = inputs;
    let openings = openings_of(inner, &key, &replay.multi_openings, &indices, false)
        .map_err(VerifyError::Invalid)?;
    Ok((replay.events, public, openings))
}

/// `replay_shard` for a proof that may not verify (see `super::replay::replay_lenient`):
/// the transcript and openings a prover would hand the circuit. When the native verifier
/// stopped before checking the commit-phase openings, they are rebuilt here from the proof
/// (each query's own value folded natively, as the verifier would have). Also returns the
/// native verdict.
#[allow(clippy::type_complexity)]
pub fn replay_shard_lenient(
    vk: &VerifyingKey,
    x: &IntMatrix,
    y: &IntMatrix,
    binding: &Binding,
    proof: &ShardProof,
) -> Result<(Vec<Event>, Vec<Val>, ProofOpenings, Result<(), String>), VerifyError> {
    let inputs = starkscale_prover::shard::verifier_inputs(vk, x, y, binding, proof)?;
    let inner = proof.plonky3_proof();
    let (replay, verdict) =
        super::replay::replay_lenient(inner, &inputs).map_err(VerifyError::Invalid)?;
    let calls: Vec<Call> = replay.events.iter().map(|e| e.call).collect();
    let log_max_height = inner.degree_bits + LOG_BLOWUP;
    let indices =
        query_indices(&calls, log_max_height, NUM_QUERIES).map_err(VerifyError::Invalid)?;
    let mut recorded = replay.multi_openings;
    let rounds = inner.opening_proof.commit_phase_commits.len();
    if recorded.len() == 3 && rounds > 0 {
        recorded.extend(
            round_calls(inner, &replay.events, &recorded, &indices, log_max_height)
                .map_err(VerifyError::Invalid)?,
        );
    }
    let (_, public, key) = inputs;
    let openings =
        openings_of(inner, &key, &recorded, &indices, true).map_err(VerifyError::Invalid)?;
    Ok((replay.events, public, openings, verdict))
}

/// The commit-phase multi-openings the native verifier checks, rebuilt from the proof: per
/// round, each query's row (its own value — the reduced opening, then each fold — at its
/// position, the proof's sibling values elsewhere) at the folded index.
fn round_calls(
    proof: &Proof<ShardStarkConfig>,
    events: &[Event],
    inputs: &[Recorded],
    indices: &[usize],
    log_max_height: usize,
) -> Result<Vec<Recorded>, String> {
    use p3_field::{BasedVectorSpace, Field, PrimeCharacteristicRing, TwoAdicField};
    use p3_util::reverse_bits_len;

    use super::replay::Tag;
    let challenge = |index: u32| -> Result<Challenge, String> {
        let coeff = |c: u8| {
            events
                .iter()
                .find(|e| e.tag == Tag::Challenge { index, coeff: c })
                .map(|e| e.call.value())
                .ok_or(format!("no challenge {index}"))
        };
        let c = [coeff(0)?, coeff(1)?, coeff(2)?, coeff(3)?];
        Ok(Challenge::from_basis_coefficients_fn(|i| c[i]))
    };
    let (zeta, alpha) = (challenge(1)?, challenge(2)?);
    let ov = &proof.opened_values;
    let mut opened: Vec<Challenge> = ov.trace_local.clone();
    opened.extend(ov.quotient_chunks.iter().flatten().copied());
    opened.extend(ov.preprocessed.iter().flat_map(|p| p.local.iter().copied()));
    let s_zeta = crate::checks::batched_at_zeta(alpha, &opened);
    let fri = &proof.opening_proof;
    let omega = Val::two_adic_generator(log_max_height);
    let mut own: Vec<Challenge> = Vec::with_capacity(indices.len());
    for (q, &i) in indices.iter().enumerate() {
        let leaf: Vec<Challenge> = inputs
            .iter()
            .flat_map(|call| call.rows.get(q).into_iter().flatten().flatten().copied())
            .map(Challenge::from)
            .collect();
        let s_x = crate::checks::batched_at_zeta(alpha, &leaf);
        let x = Val::GENERATOR * omega.exp_u64(reverse_bits_len(i, log_max_height) as u64);
        own.push(crate::checks::reduced_opening(zeta, x, s_zeta, s_x));
    }
    let mut calls = Vec::with_capacity(fri.commit_phase_commits.len());
    let mut shift = 0;
    for (r, (commit, step)) in fri
        .commit_phase_commits
        .iter()
        .zip(&fri.commit_phase_openings)
        .enumerate()
    {
        let beta = challenge(3 + r as u32)?;
        let arity = step.sibling_values.first().map_or(0, Vec::len) + 1;
        if !arity.is_power_of_two() || arity < 2 || step.sibling_values.len() != indices.len() {
            return Err(format!("round {r}: malformed sibling values"));
        }
        let a = arity.trailing_zeros() as usize;
        let folded_bits = log_max_height
            .checked_sub(shift + a)
            .ok_or(format!("round {r}: folds below the final height"))?;
        let mut rows = Vec::with_capacity(indices.len());
        let mut folded_indices = Vec::with_capacity(indices.len());
        for (q, &i) in indices.iter().enumerate() {
            let current = i >> shift;
            let position = current % arity;
            let mut siblings = step.sibling_values[q].iter();
            let evals: Vec<Challenge> = (0..arity)
                .map(|j| {
                    if j == position {
                        own[q]
                    } else {
                        siblings.next().copied().unwrap_or_default()
                    }
                })
                .collect();
            let index = current >> a;
            let s = Val::two_adic_generator(folded_bits + a)
                .exp_u64(reverse_bits_len(index, folded_bits) as u64);
            own[q] = crate::tables::fri::fold(&evals, beta, s.inverse());
            let flat: Vec<Val> = evals
                .iter()
                .flat_map(|e| e.as_basis_coefficients_slice().to_vec())
                .collect();
            rows.push(vec![flat]);
            folded_indices.push(index);
        }
        calls.push(Recorded {
            commit: commit.clone(),
            dims: vec![Dimensions {
                width: arity * 4,
                height: 1 << folded_bits,
            }],
            indices: folded_indices,
            rows,
            proof: step.opening_proof.clone(),
        });
        shift += a;
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use p3_field::PrimeCharacteristicRing;

    use super::*;

    /// `extract` accepts only the verifier's own query indices and statement.
    #[test]
    fn extract_checks_the_indices_and_the_statement() {
        let w = IntMatrix::new(3, 2, vec![1, -2, 3, 4, 0, 5]).unwrap();
        let x = IntMatrix::column_vector(vec![2, -1]);
        let b = Binding {
            job_id: [5; 32],
            shard_index: 2,
            worker: [6; 32],
        };
        let pk = starkscale_prover::shard::setup(&w).unwrap();
        let proven = starkscale_prover::shard::prove(&pk, &x, &b).unwrap();
        let (vk, y, proof) = (
            pk.verifying_key(),
            &proven.output,
            proven.proof.plonky3_proof(),
        );
        let good = extract_shard(vk, &x, y, &b, &proven.proof).unwrap();
        let mut indices: Vec<usize> = good.queries.iter().map(|q| q.query_index).collect();
        let (air, mut public, key) =
            starkscale_prover::shard::verifier_inputs(vk, &x, y, &b, &proven.proof).unwrap();
        assert_eq!(
            extract(proof, &air, &public, &key, &indices),
            Ok(good.clone())
        );
        indices[5] ^= 1 << (good.log_max_height - 1);
        assert!(extract(proof, &air, &public, &key, &indices).is_err());
        indices[5] ^= 1 << (good.log_max_height - 1);
        assert!(extract(proof, &air, &public, &key, &indices[1..]).is_err());
        public[9] += Val::ONE;
        assert!(extract(proof, &air, &public, &key, &indices).is_err());
    }
}
