//! Setup, prove and verify for one shard: Y_s = W_s · X.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use p3_field::{PrimeCharacteristicRing, PrimeField32};
use p3_matrix::dense::RowMajorMatrix;
use p3_symmetric::MerkleCap;
use p3_uni_stark::{
    prove_with_preprocessed, setup_preprocessed, verify_with_preprocessed, PreprocessedProverData,
    PreprocessedVerifierKey, Proof,
};
use serde::{Deserialize, Serialize};

use crate::air::ShardAir;
use crate::codec::{self, MAX_PROOF_BYTES, MAX_VERIFYING_KEY_BYTES};
use crate::config::{stark_config, ShardStarkConfig, Val, CONFIG_ID};
use crate::error::{DecodeError, ProverError, VerifyError};
use crate::matrix::IntMatrix;
use crate::statement::{
    check_exact, digest_public_values, effective_vectors, to_field, Binding, StatementRef,
    HALF_MODULUS,
};

/// Smallest trace height used (log2): tiny shards are padded up to it. FRI folds down to a
/// final polynomial of `2^LOG_FINAL_POLY_LEN` coefficients and needs at least one fold above
/// it, so every trace is longer than that.
pub const MIN_LOG_HEIGHT: usize = crate::config::LOG_FINAL_POLY_LEN + 1;
/// Largest inner dimension k supported (the preprocessed trace width; proof size grows with k).
pub const MAX_K: usize = 1 << 15;
/// Largest shard height (rows of W_s) supported.
pub const MAX_SHARD_ROWS: usize = 1 << 16;
/// Largest number of right-hand columns n.
pub const MAX_VECTORS: usize = 1 << 16;

fn config() -> &'static ShardStarkConfig {
    static CONFIG: OnceLock<ShardStarkConfig> = OnceLock::new();
    CONFIG.get_or_init(stark_config)
}

/// What a verifier holds instead of the weights: the commitment to W_s and its shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyingKey {
    /// The configuration the commitment was made under.
    pub config_id: u32,
    /// Rows of the shard (m_s).
    pub rows: u32,
    /// Inner dimension k.
    pub k: u32,
    /// log2 of the padded trace height.
    pub degree_bits: u8,
    /// max |W_s|, declared at setup and used for the exactness bound.
    pub weight_bound: u64,
    /// Poseidon2 Merkle root of the preprocessed trace, eight canonical field elements.
    pub commitment: [u32; 8],
}

impl VerifyingKey {
    /// The commitment as 32 bytes (little-endian limbs): the shard's identity on the wire.
    pub fn commitment_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (dst, limb) in out.chunks_exact_mut(4).zip(self.commitment) {
            dst.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    /// Rebuilds the verifying key of a `rows × k` shard from its published parts (the 32-byte
    /// commitment and the weight bound), for this configuration.
    pub fn from_parts(
        rows: u32,
        k: u32,
        weight_bound: u64,
        commitment: [u8; 32],
    ) -> Result<Self, VerifyError> {
        if rows == 0 || k == 0 || rows as usize > MAX_SHARD_ROWS || k as usize > MAX_K {
            return Err(VerifyError::Shape(format!(
                "a {rows} × {k} shard is outside what this configuration proves"
            )));
        }
        if weight_bound > crate::statement::HALF_MODULUS {
            return Err(VerifyError::Shape(format!(
                "a weight bound of {weight_bound} exceeds what a field element holds exactly ({})",
                crate::statement::HALF_MODULUS
            )));
        }
        let mut limbs = [0u32; 8];
        for (limb, bytes) in limbs.iter_mut().zip(commitment.chunks_exact(4)) {
            *limb = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            if u64::from(*limb) >= crate::statement::MODULUS {
                return Err(VerifyError::Shape(
                    "commitment limb is not a canonical field element".into(),
                ));
            }
        }
        Ok(Self {
            config_id: CONFIG_ID,
            rows,
            k,
            degree_bits: log_height(rows as usize) as u8,
            weight_bound,
            commitment: limbs,
        })
    }

    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a verifying key with a size limit; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode::<Self, MAX_VERIFYING_KEY_BYTES>("verifying key", bytes)
    }

    fn plonky3_key(&self) -> Result<PreprocessedVerifierKey<ShardStarkConfig>, VerifyError> {
        let digest = self
            .commitment
            .map(|limb| {
                if (limb as u64) < crate::statement::MODULUS {
                    Ok(Val::new(limb))
                } else {
                    Err(())
                }
            })
            .into_iter()
            .collect::<Result<Vec<Val>, ()>>()
            .map_err(|()| {
                VerifyError::Shape("commitment limb is not a canonical field element".into())
            })?;
        let digest: [Val; 8] = digest
            .try_into()
            .map_err(|_| VerifyError::Shape("commitment must have 8 limbs".into()))?;
        Ok(PreprocessedVerifierKey {
            width: self.k as usize,
            degree_bits: self.degree_bits as usize,
            commitment: MerkleCap::from(vec![digest]),
        })
    }
}

/// What a prover holds for a weight shard: the weights, their committed low-degree extension
/// and the verifying key. Made once per weight shard by [`setup`] and reused for every input.
pub struct ProvingKey {
    vk: VerifyingKey,
    weights: IntMatrix,
    trace: RowMajorMatrix<Val>,
    prover_data: PreprocessedProverData<ShardStarkConfig>,
}

impl ProvingKey {
    /// The verifying key of this shard.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.vk
    }

    /// The weights this key was made from.
    pub fn weights(&self) -> &IntMatrix {
        &self.weights
    }
}

impl std::fmt::Debug for ProvingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvingKey")
            .field("vk", &self.vk)
            .finish_non_exhaustive()
    }
}

/// A shard proof as it travels: the configuration it was made under and the STARK.
#[derive(Serialize, Deserialize)]
pub struct ShardProof {
    /// Configuration id the proof was made under.
    pub config_id: u32,
    proof: Proof<ShardStarkConfig>,
}

impl ShardProof {
    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a proof, refusing more than [`MAX_PROOF_BYTES`]; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode::<Self, MAX_PROOF_BYTES>("shard proof", bytes)
    }

    /// The Plonky3 proof inside (what the in-circuit verifier replays and extracts from).
    pub fn plonky3_proof(&self) -> &Proof<ShardStarkConfig> {
        &self.proof
    }
}

impl std::fmt::Debug for ShardProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardProof")
            .field("config_id", &self.config_id)
            .field("degree_bits", &self.proof.degree_bits)
            .finish_non_exhaustive()
    }
}

/// A proven shard: the exact output rows and the proof that they are W_s · X.
#[derive(Debug)]
pub struct ProvenShard {
    /// Y_s = W_s · X, exact.
    pub output: IntMatrix,
    /// The proof.
    pub proof: ShardProof,
}

fn log_height(rows: usize) -> usize {
    rows.next_power_of_two()
        .trailing_zeros()
        .max(MIN_LOG_HEIGHT as u32) as usize
}

fn check_weights(weights: &IntMatrix) -> Result<(), ProverError> {
    if weights.rows() == 0 || weights.cols() == 0 {
        return Err(ProverError::Shape {
            what: "weight shard",
            detail: format!(
                "{} × {}: a shard needs at least one row and one column",
                weights.rows(),
                weights.cols()
            ),
        });
    }
    if weights.cols() > MAX_K {
        return Err(ProverError::TooLarge {
            what: "inner dimension k",
            got: weights.cols(),
            max: MAX_K,
        });
    }
    if weights.rows() > MAX_SHARD_ROWS {
        return Err(ProverError::TooLarge {
            what: "shard rows",
            got: weights.rows(),
            max: MAX_SHARD_ROWS,
        });
    }
    // Every weight must itself be an exact field value.
    check_exact(1, weights.max_abs(), 1)?;
    Ok(())
}

/// Commits a weight shard: builds the preprocessed trace and its Merkle commitment.
///
/// Done once per weight shard; the result proves any number of inputs.
pub fn setup(weights: &IntMatrix) -> Result<ProvingKey, ProverError> {
    check_weights(weights)?;
    let (rows, k) = (weights.rows(), weights.cols());
    let degree_bits = log_height(rows);
    let mut values: Vec<Val> = weights.data().iter().map(|v| to_field(*v)).collect();
    values.resize((1 << degree_bits) * k, Val::ZERO);
    let trace = RowMajorMatrix::new(values, k);
    let air = ShardAir::new(k, Vec::new(), Some(trace.clone()));
    let (prover_data, p3_vk) = setup_preprocessed(config(), &air, degree_bits)
        .map_err(|e| ProverError::Backend {
            phase: "setup",
            detail: format!("{e:?}"),
        })?
        .ok_or_else(|| ProverError::Backend {
            phase: "setup",
            detail: "no preprocessed trace was committed".into(),
        })?;
    let root = p3_vk
        .commitment
        .as_ref()
        .first()
        .copied()
        .ok_or_else(|| ProverError::Backend {
            phase: "setup",
            detail: "empty commitment cap".into(),
        })?;
    let vk = VerifyingKey {
        config_id: CONFIG_ID,
        rows: rows as u32,
        k: k as u32,
        degree_bits: degree_bits as u8,
        weight_bound: weights.max_abs(),
        commitment: root.map(|v| v.as_canonical_u32()),
    };
    Ok(ProvingKey {
        vk,
        weights: weights.clone(),
        trace,
        prover_data,
    })
}

fn check_input(vk: &VerifyingKey, x: &IntMatrix) -> Result<u128, ProverError> {
    if x.rows() != vk.k as usize || x.cols() == 0 {
        return Err(ProverError::Shape {
            what: "input X",
            detail: format!(
                "is {} × {}, the shard needs {} × n with n ≥ 1",
                x.rows(),
                x.cols(),
                vk.k
            ),
        });
    }
    if x.cols() > crate::shard::MAX_VECTORS {
        return Err(ProverError::TooLarge {
            what: "right-hand columns n",
            got: x.cols(),
            max: MAX_VECTORS,
        });
    }
    Ok(check_exact(vk.k as usize, vk.weight_bound, x.max_abs())?)
}

/// Computes Y_s = W_s · X exactly, after checking that no accumulator can wrap the field.
pub fn compute(pk: &ProvingKey, x: &IntMatrix) -> Result<IntMatrix, ProverError> {
    check_input(&pk.vk, x)?;
    Ok(pk.weights.matmul_bounded(x))
}

/// Computes Y_s = W_s · X exactly and proves it, bound to `binding`.
///
/// CPU-bound: call it from a blocking thread, never from an async executor.
pub fn prove(
    pk: &ProvingKey,
    x: &IntMatrix,
    binding: &Binding,
) -> Result<ProvenShard, ProverError> {
    let output = compute(pk, x)?;
    let proof = prove_output(pk, x, &output, binding)?;
    Ok(ProvenShard { output, proof })
}

/// Proves that `output` (as returned by [`compute`]) is W_s · X, bound to `binding`.
///
/// Splitting [`prove`] this way lets a caller time or schedule the proof apart from the
/// product. An `output` that is not the product yields a proof that fails verification (or,
/// in debug builds, an error): never an accepted wrong answer.
pub fn prove_output(
    pk: &ProvingKey,
    x: &IntMatrix,
    output: &IntMatrix,
    binding: &Binding,
) -> Result<ShardProof, ProverError> {
    check_input(&pk.vk, x)?;
    if output.rows() != pk.vk.rows as usize || output.cols() != x.cols() {
        return Err(ProverError::Shape {
            what: "output Y",
            detail: format!(
                "is {} × {}, the shard produces {} × {}",
                output.rows(),
                output.cols(),
                pk.vk.rows,
                x.cols()
            ),
        });
    }
    prove_statement(pk, x, output, output, binding)
}

/// Proves the statement "W_s · X = `claimed`" with a main trace derived from `trace_from`.
///
/// Honest callers pass the same matrix twice. Tests pass different ones to corrupt a single
/// constraint. In debug builds Plonky3 panics on an unsatisfied trace; that panic is reported
/// as a backend error.
pub(crate) fn prove_statement(
    pk: &ProvingKey,
    x: &IntMatrix,
    claimed: &IntMatrix,
    trace_from: &IntMatrix,
    binding: &Binding,
) -> Result<ShardProof, ProverError> {
    let vk = &pk.vk;
    let statement = StatementRef {
        commitment: &vk.commitment_bytes(),
        rows: vk.rows as usize,
        k: vk.k as usize,
        weight_bound: vk.weight_bound,
        x,
        y: claimed,
        binding,
    };
    let digest = statement.digest();
    let height = 1usize << vk.degree_bits;
    let claimed_vectors = effective_vectors(x, claimed, &digest);
    let main = if std::ptr::eq(claimed, trace_from) {
        columns_to_trace(&pad_columns(claimed_vectors.ys.clone(), height))
    } else {
        columns_to_trace(&pad_columns(
            effective_vectors(x, trace_from, &digest).ys,
            height,
        ))
    };
    let outputs = pad_columns(claimed_vectors.ys, height);
    let mut public = digest_public_values(&digest);
    public.extend(claimed_vectors.xs.iter().flatten().copied());
    let air = ShardAir::new(vk.k as usize, outputs, Some(pk.trace.clone()));
    let result = catch_unwind(AssertUnwindSafe(|| {
        prove_with_preprocessed(config(), &air, main, &public, Some(&pk.prover_data))
    }));
    let proof = match result {
        Ok(Ok(proof)) => proof,
        Ok(Err(e)) => {
            return Err(ProverError::Backend {
                phase: "prove",
                detail: format!("{e:?}"),
            })
        }
        Err(_) => {
            return Err(ProverError::Backend {
                phase: "prove",
                detail: "the trace does not satisfy the shard constraints".into(),
            })
        }
    };
    Ok(ShardProof {
        config_id: CONFIG_ID,
        proof,
    })
}

fn pad_columns(mut cols: Vec<Vec<Val>>, height: usize) -> Vec<Vec<Val>> {
    for col in &mut cols {
        col.resize(height, Val::ZERO);
    }
    cols
}

fn columns_to_trace(cols: &[Vec<Val>]) -> RowMajorMatrix<Val> {
    let width = cols.len();
    let height = cols.first().map_or(0, Vec::len);
    let mut values = Vec::with_capacity(width * height);
    for r in 0..height {
        values.extend(cols.iter().map(|c| c[r]));
    }
    RowMajorMatrix::new(values, width)
}

/// Checks that `proof` shows Y = W_s · X for the shard committed in `vk`, bound to `binding`.
///
/// Needs only the verifying key, X, Y and the binding: never the weights. Also checks that
/// the job cannot wrap around the field and that every Y entry is within the exact range, so
/// an accepted Y is the integer product.
pub fn verify(
    vk: &VerifyingKey,
    x: &IntMatrix,
    y: &IntMatrix,
    binding: &Binding,
    proof: &ShardProof,
) -> Result<(), VerifyError> {
    let (air, public, p3_vk) = verifier_inputs(vk, x, y, binding, proof)?;
    // Plonky3 validates proof shapes before use; the unwind guard turns any panic it may still
    // raise on adversarial bytes into a rejection instead of taking the node down.
    let result = catch_unwind(AssertUnwindSafe(|| {
        verify_with_preprocessed(config(), &air, &proof.proof, &public, Some(&p3_vk))
    }));
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(VerifyError::Invalid(format!("{e:?}"))),
        Err(_) => Err(VerifyError::Invalid(
            "malformed proof (verifier panicked)".into(),
        )),
    }
}

/// What the native verifier is given: the AIR (with the outputs as periodic columns), the
/// public values and the preprocessed key.
pub type VerifierInputs = (
    ShardAir,
    Vec<Val>,
    PreprocessedVerifierKey<ShardStarkConfig>,
);

/// The native verifier's inputs for `proof`, after every shape, range and configuration check.
pub fn verifier_inputs(
    vk: &VerifyingKey,
    x: &IntMatrix,
    y: &IntMatrix,
    binding: &Binding,
    proof: &ShardProof,
) -> Result<VerifierInputs, VerifyError> {
    if proof.config_id != CONFIG_ID {
        return Err(VerifyError::WrongConfig {
            expected: CONFIG_ID,
            got: proof.config_id,
        });
    }
    statement_inputs(vk, x, y, binding)
}

/// [`verifier_inputs`] for the statement alone (every check that does not need the proof).
pub fn statement_inputs(
    vk: &VerifyingKey,
    x: &IntMatrix,
    y: &IntMatrix,
    binding: &Binding,
) -> Result<VerifierInputs, VerifyError> {
    if vk.config_id != CONFIG_ID {
        return Err(VerifyError::WrongConfig {
            expected: CONFIG_ID,
            got: vk.config_id,
        });
    }
    let k = vk.k as usize;
    let rows = vk.rows as usize;
    if k == 0
        || rows == 0
        || k > MAX_K
        || rows > MAX_SHARD_ROWS
        || vk.degree_bits as usize != log_height(rows)
    {
        return Err(VerifyError::Shape(format!(
            "verifying key shape {rows} × {k} with degree_bits {} is not one setup produces",
            vk.degree_bits
        )));
    }
    if x.rows() != k || x.cols() == 0 || x.cols() > MAX_VECTORS {
        return Err(VerifyError::Shape(format!(
            "X is {} × {}, expected {k} × n",
            x.rows(),
            x.cols()
        )));
    }
    if y.rows() != rows || y.cols() != x.cols() {
        return Err(VerifyError::Shape(format!(
            "Y is {} × {}, expected {rows} × {}",
            y.rows(),
            y.cols(),
            x.cols()
        )));
    }
    let bound = check_exact(k, vk.weight_bound, x.max_abs())?;
    debug_assert!(bound <= HALF_MODULUS as u128);
    for (i, v) in y.data().iter().enumerate() {
        if v.unsigned_abs() as u128 > bound {
            return Err(VerifyError::OutputOutOfRange {
                row: i / y.cols(),
                col: i % y.cols(),
                value: *v,
                bound,
            });
        }
    }
    let statement = StatementRef {
        commitment: &vk.commitment_bytes(),
        rows,
        k,
        weight_bound: vk.weight_bound,
        x,
        y,
        binding,
    };
    let digest = statement.digest();
    let vectors = effective_vectors(x, y, &digest);
    let outputs = pad_columns(vectors.ys, 1 << vk.degree_bits);
    let mut public = digest_public_values(&digest);
    public.extend(vectors.xs.iter().flatten().copied());
    let air = ShardAir::new(k, outputs, None);
    let p3_vk = vk.plonky3_key()?;
    Ok((air, public, p3_vk))
}

#[cfg(test)]
mod tests {
    //! Constraint corruption tests: each breaks exactly one AIR constraint and sees the proof
    //! fail (the prover refuses in debug builds, the verifier rejects in release builds).
    use super::*;

    fn binding() -> Binding {
        Binding {
            job_id: [7; 32],
            shard_index: 3,
            worker: [9; 32],
        }
    }

    fn fixture(n: usize) -> (ProvingKey, IntMatrix, IntMatrix) {
        let w = IntMatrix::new(5, 6, (0..30).map(|v| (v % 11) - 5).collect()).unwrap();
        let x =
            IntMatrix::new(6, n, (0..6 * n as i64).map(|v| (v * 7 % 13) - 6).collect()).unwrap();
        let y = w.matmul(&x).unwrap();
        (setup(&w).unwrap(), x, y)
    }

    fn bumped(y: &IntMatrix, r: usize, c: usize) -> IntMatrix {
        let mut data = y.data().to_vec();
        data[r * y.cols() + c] += 1;
        IntMatrix::new(y.rows(), y.cols(), data).unwrap()
    }

    fn rejected(
        pk: &ProvingKey,
        x: &IntMatrix,
        claimed: &IntMatrix,
        trace_from: &IntMatrix,
    ) -> bool {
        match prove_statement(pk, x, claimed, trace_from, &binding()) {
            Err(e) => {
                eprintln!("prover refused: {e}");
                true
            }
            Ok(proof) => match verify(pk.verifying_key(), x, claimed, &binding(), &proof) {
                Err(e) => {
                    eprintln!("verifier rejected: {e}");
                    true
                }
                Ok(()) => false,
            },
        }
    }

    #[test]
    fn honest_statement_proves_and_verifies() {
        for n in [1, 3, 7] {
            let (pk, x, y) = fixture(n);
            assert!(
                !rejected(&pk, &x, &y, &y),
                "honest proof rejected for n = {n}"
            );
        }
    }

    /// Constraint 1 (y_c = Σ w_j x[c][j]): the main column and the public output agree with
    /// each other, but not with the weights.
    #[test]
    fn corrupting_the_dot_product_constraint_fails() {
        for n in [1, 3, 7] {
            let (pk, x, y) = fixture(n);
            let wrong = bumped(&y, 2, n - 1);
            assert!(
                rejected(&pk, &x, &wrong, &wrong),
                "dot-product constraint not enforced, n = {n}"
            );
        }
    }

    /// Constraint 2 (y_c = o_c): the main column is the honest product, the public output
    /// differs in one cell.
    #[test]
    fn corrupting_the_output_binding_constraint_fails() {
        for n in [1, 3, 7] {
            let (pk, x, y) = fixture(n);
            let wrong = bumped(&y, 4, 0);
            assert!(
                rejected(&pk, &x, &wrong, &y),
                "output constraint not enforced, n = {n}"
            );
        }
    }
}
