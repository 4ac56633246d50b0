//! STARKScale shard prover: a Plonky3 0.8 STARK that one shard of a matrix multiplication
//! was computed exactly.
//!
//! A job multiplies W (m × k) by X (k × n), signed integers, exactly. A shard is a block of
//! W's rows. [`setup`] commits a weight shard (its [`VerifyingKey`] is what a verifier holds
//! instead of the data); [`prove`] computes Y_s = W_s·X and proves it; [`verify`] checks the
//! proof from the verifying key, X, Y_s and the [`Binding`] (job id, shard index, worker key)
//! alone. See [`air`] for the constraint system, [`statement`] for the binding and Freivalds,
//! [`config`] for the one configuration and its security.
//!
//! ```
//! use starkscale_prover::{setup, prove, verify, Binding, IntMatrix};
//! let w = IntMatrix::new(2, 3, vec![1, 2, 3, -4, 5, 6]).unwrap();
//! let x = IntMatrix::column_vector(vec![7, 8, -9]);
//! let pk = setup(&w).unwrap();
//! let binding = Binding { job_id: [1; 32], shard_index: 0, worker: [2; 32] };
//! let proven = prove(&pk, &x, &binding).unwrap();
//! assert_eq!(proven.output.data(), &[-4, -42]);
//! verify(pk.verifying_key(), &x, &proven.output, &binding, &proven.proof).unwrap();
//! ```

pub mod air;
pub mod codec;
pub mod config;
pub mod error;
pub mod matrix;
pub mod shard;
pub mod statement;

pub use config::{CONFIG_ID, CONFIG_NAME};
pub use error::{DecodeError, OverflowError, ProverError, VerifyError};
pub use matrix::IntMatrix;
pub use shard::{
    compute, prove, prove_output, setup, verify, ProvenShard, ProvingKey, ShardProof, VerifyingKey,
};
pub use statement::{check_exact, Binding, HALF_MODULUS};
