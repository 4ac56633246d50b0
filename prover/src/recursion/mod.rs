//! In-circuit verification of shard proofs: **part 1 of the recursive verifier, partial**.
//!
//! The goal is one recursive proof per job: a Plonky3 proof that the aggregator verified
//! every shard proof. The circuit is a set of tables proved together with `p3-batch-stark`,
//! tied by LogUp buses so that a value used in one table is the value produced in another.
//! The design note is `prover/docs/recursion.md`. The Plonky3 internals it mirrors are in
//! `prover/docs/recursion-notes.md`.
//!
//! Part 1 ([`verifier`]) proves, for real shard proofs, that the Fiat–Shamir transcript
//! (every challenge, the proof-of-work checks, the query indices) is the native verifier's.
//! It also proves that every Merkle opening the proof contains hashes from its opened values
//! to the absorbed commitment, at the leaf the query index selects. It does **not** yet check
//! FRI folding, the DEEP quotient or the AIR constraints at ζ (part 2), so it is not yet a
//! verifier.
//!
//! Each table's fixed layout (which rows are real, what they do, where their inputs come
//! from) is set by the verifier through periodic columns, never left to the prover:
//! - [`poseidon2`]: the Poseidon2-16 permutation table (the prover's exact permutation),
//!   serving `(input ‖ output)` on its bus with a multiplicity.
//! - [`transcript`]: one duplexing of the shard configuration's `DuplexChallenger` per row.
//!   It offers each call's value as `(position, value)` on the transcript bus.
//! - [`tree`]: the Merkle openings: leaf sponge rows, then one compression per level. Roots
//!   are read on the transcript bus, indices on the index bus.
//! - [`index`]: sampled values decomposed into canonical bits. It offers query indices
//!   (shifted per tree) and checks proof of work.
//! - [`ext`]: challenge-field arithmetic (one add or multiply per row). Here it computes ζ^N
//!   from the transcript's ζ.
//! - [`circuit`]: the table enum, the witness, and prove / verify.
//! - [`replay`] and [`openings`]: the native side. They run the native verifier with a
//!   recording challenger and a recording MMCS to get the transcript and the full Merkle
//!   paths.

/// `BaseAir` for a table whose whole layout is its periodic columns (a `periodic` field).
macro_rules! periodic_table {
    ($table:ty, $width:expr) => {
        impl p3_air::BaseAir<crate::config::Val> for $table {
            fn width(&self) -> usize {
                $width
            }

            fn num_periodic_columns(&self) -> usize {
                self.periodic.len()
            }

            fn periodic_columns(&self) -> std::borrow::Cow<'_, [Vec<crate::config::Val>]> {
                std::borrow::Cow::Borrowed(&self.periodic)
            }
        }
    };
}

pub mod circuit;
pub mod ext;
pub mod index;
pub mod openings;
pub mod poseidon2;
pub mod replay;
pub mod transcript;
pub mod tree;
pub mod verifier;

use p3_air::{AirBuilder, WindowAccess};
use p3_field::PrimeCharacteristicRing;

/// Fewest rows of any table: the circuit is proved under the shard configuration, whose FRI
/// needs every trace longer than its final polynomial.
pub const MIN_ROWS: usize = 1 << crate::shard::MIN_LOG_HEIGHT;

/// Expressions of a list of variables.
pub(crate) type Exprs<AB> = Vec<<AB as AirBuilder>::Expr>;

/// A table row window as expressions: public values, the current row, the next row.
pub(crate) fn window<AB: AirBuilder>(builder: &AB) -> (Exprs<AB>, Exprs<AB>, Exprs<AB>) {
    let exprs = |vars: &[AB::Var]| -> Vec<AB::Expr> { vars.iter().map(|v| (*v).into()).collect() };
    let public = builder
        .public_values()
        .iter()
        .map(|v| (*v).into())
        .collect();
    let main = builder.main();
    let (local, next) = (exprs(main.current_slice()), exprs(main.next_slice()));
    (public, local, next)
}

/// The periodic columns' values at the current row, as expressions.
pub(crate) fn periodic<AB: AirBuilder>(builder: &AB) -> Exprs<AB> {
    builder
        .periodic_values()
        .iter()
        .map(|v| (*v).into())
        .collect()
}

/// Real rows come first: `active` is boolean, row 0 is real, and no real row follows an
/// inactive one (the padding after a table's last real row).
pub(crate) fn real_rows_first<AB: AirBuilder>(
    builder: &mut AB,
    active: AB::Expr,
    next_active: AB::Expr,
) {
    builder.assert_bool(active.clone());
    builder.when_first_row().assert_one(active.clone());
    builder
        .when_transition()
        .assert_zero(next_active * (AB::Expr::ONE - active));
}
