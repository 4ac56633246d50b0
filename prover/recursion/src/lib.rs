//! In-circuit verification of shard proofs: **part 1 of the recursive verifier, partial**.
//!
//! The goal is one recursive proof per job: a Plonky3 proof that the aggregator verified
//! every shard proof. The circuit is a set of tables proved together with `p3-batch-stark`,
//! tied by LogUp buses so that a value used in one table is the value produced in another.
//! The design note is `prover/recursion/docs/design.md`. The Plonky3 internals it mirrors are in
//! `prover/recursion/docs/plonky3-notes.md`.
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
//! - [`tables::poseidon2`]: the Poseidon2-16 permutation table (the prover's exact permutation),
//!   serving `(input ‖ output)` on its bus with a multiplicity.
//! - [`tables::transcript`]: one duplexing of the shard configuration's `DuplexChallenger` per row.
//!   It offers each call's value as `(position, value)` on the transcript bus.
//! - [`tables::tree`]: the Merkle openings: leaf sponge rows, then one compression per level. Roots
//!   are read on the transcript bus, indices on the index bus.
//! - [`tables::index`]: sampled values decomposed into canonical bits. It offers query indices
//!   (shifted per tree) and checks proof of work.
//! - [`tables::ext`]: challenge-field arithmetic (one add or multiply per row). Here it computes ζ^N
//!   from the transcript's ζ.
//! - [`circuit`]: the table enum, the witness, and prove / verify.
//! - [`native::replay`] and [`native::openings`]: the native side. They run the native verifier with a
//!   recording challenger and a recording MMCS to get the transcript and the full Merkle
//!   paths.

pub mod checks;
pub mod circuit;
pub mod config;
pub mod error;
pub mod native;
pub mod tables;
pub mod verifier;

pub use tables::MIN_ROWS;
