//! The circuit's configuration: what its proofs are made under, named and versioned like the
//! shard configuration, with its conjectured security.
//!
//! The circuit is a p3-batch-stark proof over the tables of [`crate::tables`], tied by LogUp
//! buses, under the **shard configuration itself** (KoalaBear⁴, Poseidon2-16 Merkle trees,
//! FRI at rate 1/8 with 36 queries, 16 bits of query grinding, arity 8, final polynomial of 32
//! coefficients). Proving the circuit under the configuration of the proofs it checks is what
//! lets a later circuit check circuit proofs the same way (2-to-1 recursion).
//!
//! Conjectured security, in bits, is the least of
//! - the FRI low-degree test: `LOG_BLOWUP · NUM_QUERIES + QUERY_POW_BITS` = 124;
//! - the out-of-domain point: `log2|EF| − log2(d · N)` for the tallest table of `N` rows and
//!   the largest constraint degree `d` = 3, plus its 16 bits of grinding;
//! - the LogUp buses: `log2|EF| − log2(T)` for `T` lookup terms in all (each interaction of
//!   each row is one term of the rational sum, so a forged balance needs a collision among
//!   them);
//! - the hash: 124 bits of collision resistance (8 × 31-bit digests).
//!
//! with `log2|EF|` = 124 (the degree-4 extension of KoalaBear).

use starkscale_prover::config::{LOG_BLOWUP, NUM_QUERIES, OOD_POW_BITS, QUERY_POW_BITS};

/// Version of the circuit: its tables, buses and layout. A circuit proof names it; a change
/// to what the circuit checks or how gets a new id.
pub const CIRCUIT_ID: u32 = 1;
/// What the id stands for.
pub const CIRCUIT_NAME: &str = "starkscale-circuit/1: shard-verifier tables \
     (poseidon2, transcript, openings, index, program, deep, fri) on p3-batch-stark 0.8 with LogUp, \
     under shard configuration 2";
/// The shard configuration whose proofs the circuit verifies (and that it is proved under).
pub const SHARD_CONFIG_ID: u32 = starkscale_prover::CONFIG_ID;
/// Bits of the challenge field.
const FIELD_BITS: usize = 124;
/// Largest constraint degree of any table.
pub const MAX_CONSTRAINT_DEGREE: usize = 3;

/// Conjectured security of a circuit proof whose tallest table has `2^max_log_height` rows and
/// whose buses carry `lookup_terms` terms in all (see the module notes).
pub fn conjectured_security_bits(max_log_height: usize, lookup_terms: u64) -> usize {
    let ldt = LOG_BLOWUP * NUM_QUERIES + QUERY_POW_BITS;
    let log2_ceil = |v: u64| (64 - v.saturating_sub(1).leading_zeros()) as usize;
    let ood = (FIELD_BITS + OOD_POW_BITS)
        .saturating_sub(log2_ceil(MAX_CONSTRAINT_DEGREE as u64) + max_log_height);
    let logup = FIELD_BITS.saturating_sub(log2_ceil(lookup_terms.max(1)));
    ldt.min(ood).min(logup).min(FIELD_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures the README and the design note state.
    #[test]
    fn the_documented_figures_hold() {
        // One 3M-entry shard: tables of at most 2^17 rows, under 2^22 lookup terms.
        assert_eq!(conjectured_security_bits(17, 1 << 22), 102);
        // 256 proofs in one circuit: tables of 2^24 rows, 2^30 terms.
        assert_eq!(conjectured_security_bits(24, 1 << 30), 94);
        // The low-degree test bounds small circuits.
        assert_eq!(conjectured_security_bits(10, 1 << 12), 112);
    }
}
