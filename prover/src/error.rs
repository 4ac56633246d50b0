//! Errors of setup, proving, verification and decoding, each carrying what went wrong and where.

use thiserror::Error;

/// Why a shard could not be set up or proven.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProverError {
    /// Inputs have the wrong shape.
    #[error("bad {what} shape: {detail}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The job could wrap around the field: the exact answer would be lost.
    #[error(transparent)]
    Overflow(#[from] OverflowError),
    /// An input is larger than this configuration supports.
    #[error("{what} is {got}, above the supported maximum {max}: split the job or shrink it")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its value.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// Plonky3 refused to set up or prove.
    #[error("STARK backend failed during {phase}: {detail}")]
    Backend {
        /// The phase that failed.
        phase: &'static str,
        /// The backend's message.
        detail: String,
    },
}

/// The worst-case accumulator of a job could reach half the field modulus.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error(
    "job refused: worst-case accumulator k·max|W|·max|X| = {k}·{w_max}·{x_max} = {worst} \
     exceeds the exact-result bound (p-1)/2 = {bound} of the field; use smaller values \
     (e.g. int8 quantisation) or a smaller inner dimension"
)]
pub struct OverflowError {
    /// Inner dimension.
    pub k: usize,
    /// Largest |W| entry.
    pub w_max: u64,
    /// Largest |X| entry.
    pub x_max: u64,
    /// k · w_max · x_max.
    pub worst: u128,
    /// (p - 1) / 2.
    pub bound: u64,
}

/// Why a shard proof was rejected.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The proof was made under another configuration.
    #[error("proof names configuration {got}, this verifier speaks {expected}")]
    WrongConfig {
        /// Ours.
        expected: u32,
        /// The proof's.
        got: u32,
    },
    /// The statement does not match the verifying key.
    #[error("statement does not match the verifying key: {0}")]
    Shape(String),
    /// An output entry cannot be an exact product under the job's bounds.
    #[error("output entry ({row}, {col}) = {value} is outside the possible range ±{bound}")]
    OutputOutOfRange {
        /// Row.
        row: usize,
        /// Column.
        col: usize,
        /// Value.
        value: i64,
        /// The largest magnitude an exact product can have.
        bound: u128,
    },
    /// The job could wrap around the field.
    #[error(transparent)]
    Overflow(#[from] OverflowError),
    /// The STARK did not verify.
    #[error("STARK verification failed: {0}")]
    Invalid(String),
}

/// Why bytes could not be decoded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// More bytes than the limit for this kind.
    #[error("{what}: {len} bytes exceeds the {limit}-byte limit")]
    TooLong {
        /// What was being decoded.
        what: &'static str,
        /// Input length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a valid encoding.
    #[error("{what}: malformed encoding: {detail}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Decoder message.
        detail: String,
    },
    /// Valid encoding followed by extra bytes.
    #[error("{what}: {extra} trailing bytes after a valid encoding")]
    Trailing {
        /// What was being decoded.
        what: &'static str,
        /// Number of extra bytes.
        extra: usize,
    },
}
