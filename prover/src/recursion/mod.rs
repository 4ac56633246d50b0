//! In-circuit verification of shard proofs: **partial, under construction (issue 7)**.
//!
//! The goal is one recursive proof per job: a Plonky3 proof that the aggregator verified
//! every shard proof. The circuit is a set of tables proved together with `p3-batch-stark`,
//! tied by LogUp buses so that a value used in one table is the value produced in another.
//!
//! Built so far (each table's fixed layout — which rows are real, what they do — is set by the
//! verifier through public values or periodic columns, never left to the prover):
//! - [`poseidon2`]: the Poseidon2-16 permutation table (the prover's exact permutation,
//!   `default_koalabear_poseidon2_16`), one permutation per row, serving `(input ‖ output)`
//!   tuples on [`poseidon2::BUS`] with a multiplicity column.
//! - [`merkle`]: the Merkle-path table: one 2-to-1 compression per row, with the direction
//!   bit, the running index and the chaining of each output into the next row; it looks up
//!   every compression in the permutation table and binds the leaf digest, root, index and
//!   depth as public values.
//! - [`transcript`]: the transcript (challenger) table: one duplexing of the shard
//!   configuration's `DuplexChallenger` per row (overwrite, zero-fill, length tag in the
//!   capacity, squeezes), every permutation looked up in the permutation table; the absorb
//!   schedule, the known absorbed values and the expected samples are periodic columns.
//! - [`ext`]: the extension-field arithmetic table: a straight-line program over the challenge
//!   field, one add or multiply per row, operands looked up by value id on its bus (so every
//!   operand is a value another row produced), the program fixed by periodic columns, input and
//!   output bound as public values.
//! - [`circuit`]: the table set ([`circuit::Table`]), the [`circuit::Witness`] builder (add
//!   Merkle paths, a transcript, an arithmetic program), and prove / verify with
//!   `p3-batch-stark` under the shard configuration.
//!
//! - [`replay`]: a recording challenger; [`crate::shard::replay_transcript`] runs the native
//!   verifier on a real shard proof with it, giving the exact calls the transcript table
//!   replays (a test proves a real proof's whole transcript in the circuit).
//!
//! Not built yet (the rest of issue 7): extracting a real proof's Merkle openings (leaf sponge
//! hashing of the opened rows, pruned multi-openings restored to full paths); sending the
//! transcript's samples to the arithmetic table and the commitments it absorbs to the Merkle
//! tables over buses instead of periodic expectations; the recursion-friendly inner shard
//! configuration; the benchmark. See `prover/docs/recursion-notes.md` for the native
//! verifier's exact transcript and Merkle rules.

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
