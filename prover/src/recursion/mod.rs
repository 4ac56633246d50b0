//! In-circuit verification of shard proofs: **partial, under construction (issue 7)**.
//!
//! The goal is one recursive proof per job: a Plonky3 proof that the aggregator verified
//! every shard proof. The circuit is a set of tables proved together with `p3-batch-stark`,
//! tied by LogUp buses so that a value used in one table is the value produced in another.
//!
//! Built so far:
//! - [`poseidon2`]: the Poseidon2-16 permutation table (the prover's exact permutation,
//!   `default_koalabear_poseidon2_16`), one permutation per row, serving `(input ‖ output)`
//!   tuples on the [`poseidon2::BUS`] with a multiplicity column.
//! - [`merkle`]: the Merkle-path table: one 2-to-1 compression per row, with the direction
//!   bit, the running index and the chaining of each output into the next row; it looks up
//!   every compression in the permutation table and binds the path's leaf digest, root and
//!   index as public values.
//! - [`circuit`]: the table set ([`circuit::Table`]), trace generation from native Merkle
//!   paths, and prove / verify with `p3-batch-stark`.
//!
//! Not built yet (the rest of issue 7, then issues after it): leaf hashing (sponge rows) of the
//! opened values, the transcript (challenger) table that replays the shard verifier's
//! Fiat–Shamir, the extension-field arithmetic table, the recursion-friendly inner shard
//! configuration, and wiring all of it to a real shard proof. See `prover/docs/
//! recursion-notes.md` for the native verifier's exact transcript and Merkle rules.

pub mod circuit;
pub mod merkle;
pub mod poseidon2;
