//! The one concrete STARK configuration every shard proof is made and checked under.
//!
//! Field, hash, FRI parameters and the configuration id live here and nowhere else. A proof
//! names the configuration it was made under ([`CONFIG_ID`]); the id is also hashed into the
//! statement digest, so a proof made under one configuration can never verify under another.
//!
//! # Conjectured security
//!
//! KoalaBear (p = 2^31 - 2^24 + 1) with its degree-4 extension (≈124-bit challenge field),
//! Poseidon2-16 sponge and 2-to-1 compression with 8-element (≈248-bit) digests, FRI with
//! rate 2^-[`LOG_BLOWUP`], [`NUM_QUERIES`] queries and [`QUERY_POW_BITS`] bits of grinding
//! before the queries are drawn, plus 16 bits of grinding before the batching challenge and
//! before the out-of-domain point. Under the standard FRI conjecture (each query gains
//! `LOG_BLOWUP` bits) the low-degree test has 3·36 + 16 = 124 conjectured bits. Plonky3's own
//! estimator ([`p3_uni_stark::ConjecturedSecurity`]), which also charges the DEEP-ALI,
//! batching and per-round folding terms at the instance's real width and height, reports
//! **112 bits** at the smallest shard (2^6 rows), **108 bits** at 2^10 rows and **102 bits**
//! at the 2^16-row maximum, for any k up to 2^15; a test checks every accepted shape stays at
//! or above [`MIN_SECURITY_BITS`] = 100.
//!
//! # Recursion-friendly (configuration 2)
//!
//! Shard proofs are the inner proofs of the recursive aggregation, so the FRI settings keep
//! the in-circuit verifier small: folding arity 8 ([`MAX_LOG_ARITY`] = 3, a third of the
//! commit-phase Merkle trees of arity 2) and a final polynomial of 2^5 coefficients (the
//! verifier evaluates it directly instead of opening the last small trees). The price is a
//! 2^6-row minimum trace height ([`crate::shard::MIN_LOG_HEIGHT`]). Configuration 1 (arity 2,
//! 32 queries, final polynomial of one coefficient) is retired: its proofs are refused.

use p3_challenger::DuplexChallenger;
use p3_commit::ExtensionMmcs;
use p3_dft::Radix2DitParallel;
use p3_field::extension::BinomialExtensionField;
use p3_field::Field;
use p3_fri::{FriParameters, TwoAdicFriPcs};
use p3_koala_bear::{default_koalabear_poseidon2_16, KoalaBear, Poseidon2KoalaBear};
use p3_merkle_tree::MerkleTreeMmcs;
use p3_symmetric::{PaddingFreeSponge, TruncatedPermutation};
use p3_uni_stark::StarkConfig;

/// Identifier of this configuration, carried in every proof and hashed into every statement.
///
/// Bump it whenever anything in this file changes: field, hash, FRI parameters, the AIR or the
/// statement encoding.
pub const CONFIG_ID: u32 = 2;

/// Human-readable name of [`CONFIG_ID`].
pub const CONFIG_NAME: &str =
    "koalabear-d4/poseidon2-16/fri-b3-q36-pow16-arity8-final32/rowwise-v1";

/// log2 of the FRI blowup factor (rate 1/8).
pub const LOG_BLOWUP: usize = 3;
/// Number of FRI queries.
pub const NUM_QUERIES: usize = 36;
/// Proof-of-work bits ground before the FRI query indices are drawn.
pub const QUERY_POW_BITS: usize = 16;
/// Proof-of-work bits ground before the challenge that batches all openings into one FRI
/// instance (the batching term grows with trace width × height).
pub const BATCH_POW_BITS: usize = 16;
/// Proof-of-work bits ground before the out-of-domain point is drawn (the DEEP-ALI term grows
/// with trace height).
pub const OOD_POW_BITS: usize = 16;
/// log2 of the final FRI polynomial length.
pub const LOG_FINAL_POLY_LEN: usize = 5;
/// log2 of the maximum FRI folding arity.
pub const MAX_LOG_ARITY: usize = 3;
/// Conjectured bits of the low-degree test: `LOG_BLOWUP * NUM_QUERIES + QUERY_POW_BITS`.
pub const CONJECTURED_LDT_BITS: usize = LOG_BLOWUP * NUM_QUERIES + QUERY_POW_BITS;
/// The floor every accepted shard shape must meet under Plonky3's conjectured estimator.
pub const MIN_SECURITY_BITS: usize = 100;

/// The base field: KoalaBear, p = 2^31 - 2^24 + 1.
pub type Val = KoalaBear;
/// The challenge field: the degree-4 binomial extension of [`Val`].
pub type Challenge = BinomialExtensionField<Val, 4>;
/// Poseidon2 permutation of width 16 with the crate's fixed round constants.
pub type Perm = Poseidon2KoalaBear<16>;
/// Leaf hash: a padding-free Poseidon2 sponge (rate 8, 8-element digests).
pub type Hash = PaddingFreeSponge<Perm, 16, 8, 8>;
/// Node compression: truncated Poseidon2 permutation, 2-to-1.
pub type Compress = TruncatedPermutation<Perm, 2, 8, 16>;
/// Merkle commitments to base-field matrices.
pub type ValMmcs =
    MerkleTreeMmcs<<Val as Field>::Packing, <Val as Field>::Packing, Hash, Compress, 2, 8>;
/// Merkle commitments to extension-field matrices.
pub type ChallengeMmcs = ExtensionMmcs<Val, Challenge, ValMmcs>;
/// DFT used for low-degree extensions.
pub type Dft = Radix2DitParallel<Val>;
/// The polynomial commitment scheme.
pub type Pcs = TwoAdicFriPcs<Val, Dft, ValMmcs, ChallengeMmcs>;
/// The Fiat–Shamir challenger.
pub type Challenger = DuplexChallenger<Val, Perm, 16, 8>;
/// The full STARK configuration.
pub type ShardStarkConfig = StarkConfig<Pcs, Challenge, Challenger>;

/// FRI parameters of this configuration over the given MMCS.
pub fn fri_parameters<M>(mmcs: M) -> FriParameters<M> {
    FriParameters {
        log_blowup: LOG_BLOWUP,
        log_final_poly_len: LOG_FINAL_POLY_LEN,
        max_log_arity: MAX_LOG_ARITY,
        num_queries: NUM_QUERIES,
        batch_proof_of_work_bits: BATCH_POW_BITS,
        commit_proof_of_work_bits: 0,
        query_proof_of_work_bits: QUERY_POW_BITS,
        mmcs,
    }
}

/// The polynomial commitment scheme of this configuration.
pub fn pcs() -> Pcs {
    let perm = default_koalabear_poseidon2_16();
    let hash = Hash::new(perm.clone());
    let compress = Compress::new(perm);
    let val_mmcs = ValMmcs::new(hash, compress, 0);
    let challenge_mmcs = ChallengeMmcs::new(val_mmcs.clone());
    Pcs::new(Dft::default(), val_mmcs, fri_parameters(challenge_mmcs))
}

/// Builds the STARK configuration. Deterministic: every peer builds the same one.
pub fn stark_config() -> ShardStarkConfig {
    let challenger = Challenger::new(default_koalabear_poseidon2_16());
    ShardStarkConfig::new(pcs(), challenger).with_ood_proof_of_work_bits(OOD_POW_BITS)
}

/// Plonky3's conjectured security estimate, in bits, for a shard AIR of inner dimension `k`,
/// `vectors` right-hand vectors and a trace of `2^degree_bits` rows under this configuration.
///
/// It composes the FRI low-degree test, the DEEP-ALI and constraint-batching terms at the
/// instance's real shape, and the hash's collision resistance.
pub fn conjectured_security_bits(k: usize, vectors: usize, degree_bits: usize) -> usize {
    use p3_security::fri::FriRegime;
    use p3_uni_stark::{AirLayout, ConjecturedSecurity, OpeningShape, StarkSecurityParams};

    let air = crate::air::ShardAir::new(k, vec![Vec::new(); vectors], None);
    let layout = AirLayout {
        preprocessed_width: k,
        main_width: vectors,
        num_public_values: air.public_len(),
        num_periodic_columns: vectors,
        ..Default::default()
    };
    let fri = FriRegime {
        log_blowup: LOG_BLOWUP,
        num_queries: NUM_QUERIES,
        log_final_poly_len: LOG_FINAL_POLY_LEN,
        max_log_arity: MAX_LOG_ARITY,
        commit_pow_bits: 0,
        query_pow_bits: QUERY_POW_BITS,
    };
    let config = stark_config();
    let domain = <Pcs as p3_commit::Pcs<Challenge, Challenger>>::natural_domain_for_degree(
        config.pcs_ref(),
        1 << degree_bits,
    );
    // 4 × 31-bit limbs of challenge field; 8 × 31-bit digests give ≈124 bits of collision
    // resistance.
    let params = StarkSecurityParams::from_air::<Val, Challenge, _>(
        fri,
        &air,
        layout,
        domain,
        124,
        124,
        1,
        OpeningShape::TwoAdic,
        p3_security::GrindingSites {
            out_of_domain: OOD_POW_BITS,
            batch_combination: BATCH_POW_BITS,
            ..p3_security::GrindingSites::NONE
        },
    );
    ConjecturedSecurity::compute_from_params(&params, degree_bits).security_bits
}

/// Access to the PCS of a configuration.
trait PcsRef {
    fn pcs_ref(&self) -> &Pcs;
}

impl PcsRef for ShardStarkConfig {
    fn pcs_ref(&self) -> &Pcs {
        use p3_uni_stark::StarkGenericConfig;
        self.pcs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shard shape the prover accepts meets the security floor.
    #[test]
    fn every_accepted_shape_has_at_least_100_conjectured_bits() {
        let max_bits = crate::shard::MAX_SHARD_ROWS.trailing_zeros() as usize;
        for degree_bits in [crate::shard::MIN_LOG_HEIGHT, 10, max_bits] {
            for k in [1, 1536, crate::shard::MAX_K] {
                for vectors in [1, 4] {
                    let bits = conjectured_security_bits(k, vectors, degree_bits);
                    assert!(
                        bits >= MIN_SECURITY_BITS,
                        "k = {k}, vectors = {vectors}, 2^{degree_bits} rows: {bits} bits"
                    );
                }
            }
        }
    }

    #[test]
    fn ldt_conjecture_matches_the_documented_figure() {
        assert_eq!(CONJECTURED_LDT_BITS, 124);
    }

    /// The estimator's figures the module docs and the README state: 112 bits at the smallest
    /// shard, 108 at 2^10 rows, 102 at the 2^16-row maximum (the same for any k).
    #[test]
    fn estimator_matches_the_documented_figures() {
        let max_bits = crate::shard::MAX_SHARD_ROWS.trailing_zeros() as usize;
        for (degree_bits, bits) in [
            (crate::shard::MIN_LOG_HEIGHT, 112),
            (10, 108),
            (max_bits, 102),
        ] {
            for k in [1, 1536, crate::shard::MAX_K] {
                assert_eq!(
                    conjectured_security_bits(k, 1, degree_bits),
                    bits,
                    "2^{degree_bits} rows, k = {k}"
                );
            }
        }
    }
}
