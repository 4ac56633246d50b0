//! What a shard proof claims, and how that claim becomes AIR inputs.
//!
//! A [`Binding`] names who proved what for which job. Together with the verifying key, X and
//! Y it is hashed into a 256-bit statement digest (blake3, domain-separated) that enters the
//! proof as public values, so it is absorbed by the Fiat–Shamir transcript before the first
//! challenge.
//!
//! # Freivalds
//!
//! With more than [`DIRECT_MAX_VECTORS`] right-hand columns the proof does not check every
//! column. Four vectors r_1..r_4 ∈ F_p^n are drawn from the statement digest (so after Y is
//! fixed) and the proof shows W_s·(X r_j) = Y_s r_j. If W_s·X ≠ Y_s over F_p, each r_j
//! catches it with probability ≥ 1 - 1/p, so a wrong Y passes with probability at most
//! p^-4 ≈ 2^-124 per attempt; a prover that grinds over Y pays one digest per attempt.
//! Proof cost is O(m·k) whatever n is; computing X r_j and Y_s r_j costs the verifier O((k+m)·n).

use p3_field::integers::QuotientMap;
use p3_field::PrimeCharacteristicRing;
use serde::{Deserialize, Serialize};

use crate::config::{Val, CONFIG_ID};
use crate::error::OverflowError;
use crate::matrix::IntMatrix;

/// Up to this many right-hand columns are proven one by one; beyond, Freivalds is used.
pub const DIRECT_MAX_VECTORS: usize = 4;
/// Number of Freivalds vectors (each contributes log2(p) ≈ 31 bits of soundness).
pub const FREIVALDS_VECTORS: usize = 4;

/// The KoalaBear modulus.
pub const MODULUS: u64 = 0x7f00_0001;
/// The largest magnitude an exact result may have: (p - 1) / 2.
pub const HALF_MODULUS: u64 = (MODULUS - 1) / 2;

/// Who proved which shard of which job: the values a proof is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The job id.
    pub job_id: [u8; 32],
    /// Index of the shard within the job's plan.
    pub shard_index: u32,
    /// The proving worker's ed25519 public key.
    pub worker: [u8; 32],
}

/// Checks that no accumulator of a `k`-deep product of entries bounded by `w_max` and `x_max`
/// can reach half the field, so results are exact integers. Returns the largest possible
/// magnitude of an output entry.
pub fn check_exact(k: usize, w_max: u64, x_max: u64) -> Result<u128, OverflowError> {
    // Up to 2^192 for hostile inputs: past u128, the product is simply too large.
    let worst = (k as u128)
        .checked_mul(u128::from(w_max))
        .and_then(|v| v.checked_mul(u128::from(x_max)))
        .unwrap_or(u128::MAX);
    if worst > HALF_MODULUS as u128 {
        return Err(OverflowError {
            k,
            w_max,
            x_max,
            worst,
            bound: HALF_MODULUS,
        });
    }
    Ok(worst)
}

/// A signed integer as a field element (callers keep |v| ≤ (p-1)/2).
pub(crate) fn to_field(v: i64) -> Val {
    match i32::try_from(v) {
        Ok(small) => Val::from_int(small),
        Err(_) => Val::from_int(v),
    }
}

/// The statement's public part, hashed into the digest.
pub(crate) struct StatementRef<'a> {
    pub commitment: &'a [u8; 32],
    pub rows: usize,
    pub k: usize,
    pub weight_bound: u64,
    pub x: &'a IntMatrix,
    pub y: &'a IntMatrix,
    pub binding: &'a Binding,
}

impl StatementRef<'_> {
    /// The domain-separated blake3 digest of everything the proof is bound to.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"starkscale/shard-statement/v1\0");
        h.update(&CONFIG_ID.to_le_bytes());
        h.update(&self.binding.job_id);
        h.update(&self.binding.shard_index.to_le_bytes());
        h.update(&self.binding.worker);
        h.update(self.commitment);
        for dim in [
            self.rows,
            self.k,
            self.x.rows(),
            self.x.cols(),
            self.y.rows(),
            self.y.cols(),
        ] {
            h.update(&(dim as u64).to_le_bytes());
        }
        h.update(&self.weight_bound.to_le_bytes());
        for v in self.x.data().iter().chain(self.y.data()) {
            h.update(&v.to_le_bytes());
        }
        *h.finalize().as_bytes()
    }
}

/// The digest as public values: eight 30-bit limbs (240 bits, all canonical field elements).
pub(crate) fn digest_public_values(digest: &[u8; 32]) -> Vec<Val> {
    digest
        .chunks_exact(4)
        .map(|c| {
            let limb = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & ((1 << 30) - 1);
            Val::from_int(limb)
        })
        .collect()
}

/// The vectors the AIR checks: `xs[c]` (length k) and outputs `ys[c]` (length m), either the
/// job's own columns or Freivalds combinations drawn from the digest.
pub(crate) struct EffectiveVectors {
    pub xs: Vec<Vec<Val>>,
    pub ys: Vec<Vec<Val>>,
}

/// Draws the Freivalds vectors from the digest: uniform in F_p up to a 2^-33 bias.
fn freivalds_randomness(digest: &[u8; 32], n: usize) -> Vec<Vec<Val>> {
    let mut h = blake3::Hasher::new();
    h.update(b"starkscale/freivalds/v1\0");
    h.update(digest);
    let mut xof = h.finalize_xof();
    (0..FREIVALDS_VECTORS)
        .map(|_| {
            (0..n)
                .map(|_| {
                    let mut b = [0u8; 8];
                    xof.fill(&mut b);
                    Val::from_int(u64::from_le_bytes(b) % MODULUS)
                })
                .collect()
        })
        .collect()
}

/// Projects `m` (rows × n) onto every vector of `rs` in one pass over `m`:
/// `out[c][i] = Σ_t m[i][t]·rs[c][t]`, rows in parallel.
fn project_all(m: &IntMatrix, rs: &[Vec<Val>]) -> Vec<Vec<Val>> {
    use p3_maybe_rayon::prelude::*;
    let n = m.cols();
    let per_row: Vec<Vec<Val>> = m
        .data()
        .par_chunks(n.max(1))
        .map(|row| {
            let mut acc = vec![Val::ZERO; rs.len()];
            for (t, v) in row.iter().enumerate() {
                let v = to_field(*v);
                for (a, r) in acc.iter_mut().zip(rs) {
                    *a += v * r[t];
                }
            }
            acc
        })
        .collect();
    (0..rs.len())
        .map(|c| per_row.iter().map(|row| row[c]).collect())
        .collect()
}

/// The AIR inputs for statement (X, Y) with the given digest.
pub(crate) fn effective_vectors(
    x: &IntMatrix,
    y: &IntMatrix,
    digest: &[u8; 32],
) -> EffectiveVectors {
    let n = x.cols();
    if n <= DIRECT_MAX_VECTORS {
        let column =
            |m: &IntMatrix, c: usize| (0..m.rows()).map(|i| to_field(m.get(i, c))).collect();
        EffectiveVectors {
            xs: (0..n).map(|c| column(x, c)).collect(),
            ys: (0..n).map(|c| column(y, c)).collect(),
        }
    } else {
        let rs = freivalds_randomness(digest, n);
        EffectiveVectors {
            xs: project_all(x, &rs),
            ys: project_all(y, &rs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile bounds (a peer's manifest, a caller of `from_parts`) cannot overflow the check in
    /// release builds: past u128 the product is refused as too large.
    #[test]
    fn the_exactness_check_never_overflows() {
        let err = check_exact(usize::MAX, u64::MAX, u64::MAX).unwrap_err();
        assert_eq!(err.worst, u128::MAX);
        assert!(check_exact(1 << 15, 127, 127).is_ok());
        assert!(check_exact(1 << 15, 1 << 20, 1 << 20).is_err());
    }

    #[test]
    fn a_verifying_key_refuses_a_weight_bound_no_field_element_holds() {
        let commitment = [0u8; 32];
        assert!(crate::VerifyingKey::from_parts(4, 4, HALF_MODULUS, commitment).is_ok());
        assert!(crate::VerifyingKey::from_parts(4, 4, HALF_MODULUS + 1, commitment).is_err());
        assert!(crate::VerifyingKey::from_parts(4, 4, u64::MAX, commitment).is_err());
    }
}
