//! In-circuit verification of shard proofs: a complete verifier of STARKScale shard proofs
//! inside a Plonky3 proof.
//!
//! The goal is one recursive proof per job: a Plonky3 proof that the aggregator verified
//! every shard proof. The circuit is a set of tables proved together with `p3-batch-stark`,
//! tied by LogUp buses so that a value used in one table is the value produced in another.
//! The design note is `prover/recursion/docs/design.md`. The Plonky3 internals it mirrors are in
//! `prover/recursion/docs/plonky3-notes.md`.
//!
//! For one or several real shard proofs in one circuit ([`verifier`]), the circuit proves
//! everything `starkscale_prover::verify` checks:
//! - **part 1**: the Fiat–Shamir transcript (every challenge, the proof-of-work checks, the
//!   query indices) is the native verifier's, and every Merkle opening hashes from its opened
//!   values to the absorbed commitment, at the leaf the query index selects;
//! - **part 2** ([`checks`]): the DEEP quotient of every query (ζ ≠ x), FRI folding at every
//!   round's arity, the final polynomial at the final point, and the shard AIR's constraints
//!   at ζ against the quotient (ζ^N ≠ 1), from the opened values, the public X and Y.
//!
//! A differential test (`tests/differential.rs`) checks that a circuit proof can be made
//! exactly when the native verifier accepts. Binding each proof's statement to an aggregate's
//! public values (one proof per job) is the next step; today the statement enters through
//! the layout.
//!
//! Each table's fixed layout (which rows are real, what they do, where their inputs come
//! from) is set by the verifier through periodic columns, never left to the prover:
//! - [`tables::poseidon2`]: the Poseidon2-16 permutation table (the prover's exact permutation),
//!   serving `(input ‖ output)` on its bus with a multiplicity.
//! - [`tables::transcript`]: one duplexing of the shard configuration's `DuplexChallenger` per
//!   row. It offers each call's value as `(position, value)` on the transcript bus.
//! - [`tables::tree`]: the Merkle openings: leaf sponge rows, then one compression per level.
//!   Roots are read on the transcript bus, indices on the index bus; leaf chunks are offered
//!   on the chunk bus.
//! - [`tables::index`]: sampled values decomposed into canonical bits. It offers query indices
//!   (shifted per tree), checks proof of work, and computes the domain points from the bits.
//! - [`tables::deep`]: the batched input openings of each query, `Σ α^j v_j`.
//! - [`tables::fri`]: one query's fold in one commit-phase round.
//! - [`tables::ext`] and [`tables::program`]: the program table, challenge-field arithmetic one
//!   operation per row, and the program it runs:
//!   the constraint check at ζ, the DEEP quotients, the final polynomial.
//! - [`circuit`]: the table enum, the witness, and prove / verify; [`config`]: the circuit's
//!   named configuration and conjectured security; [`error`]: typed errors.
//! - [`native::replay`] and [`native::openings`]: the native side. They run the native
//!   verifier with a recording challenger and a recording MMCS to get the transcript and the
//!   full Merkle paths.

pub mod checks;
pub mod circuit;
pub mod config;
pub mod error;
pub mod native;
pub mod tables;
pub mod verifier;

pub use tables::MIN_ROWS;
