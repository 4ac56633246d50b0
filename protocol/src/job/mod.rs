//! Job specifications: parsing the client's JSON, validating shapes and ranges, canonical
//! bytes and the content-derived [`JobId`].
//!
//! Two JSON forms are accepted:
//! - matrix × vector: `{"matrix": [[…], …], "vector": […]}` (the vector becomes a k×1 matrix);
//! - matrix × matrix: `{"matrix": [[…], …], "rhs": [[…], …]}` (rhs is k×n, row-major).
//!
//! Every entry must be an integer with `|v| ≤ 2^31 − 1` ([`MAX_ABS_ENTRY`]), so the canonical
//! form stores each entry as 4 little-endian bytes. Errors name the position (`matrix[2][7]`)
//! and the offending text.

use std::fmt;

use crate::chunk::chunk_refs;
use crate::manifest::BlobDescriptor;
use crate::matrix::{IntMatrix, MatrixError};

mod json;

/// Largest absolute value of an input entry: `2^31 − 1`.
pub const MAX_ABS_ENTRY: i64 = (1 << 31) - 1;

/// Size limits a peer applies to jobs it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Most rows of W (m). At most `u32::MAX`: shard plans count rows in `u32`.
    pub max_rows: usize,
    /// Most columns of W = rows of X (k).
    pub max_k: usize,
    /// Most columns of X (n).
    pub max_n: usize,
    /// Most entries in each of W (m·k), X (k·n) and the output Y (m·n).
    pub max_entries: usize,
    /// Longest JSON text accepted.
    pub max_json_bytes: usize,
    /// Most entries of a registered model's W (m·k). Not bounded by `max_entries`: a worker
    /// holds one shard of W, never all of it.
    pub max_model_entries: usize,
}

impl Default for JobLimits {
    fn default() -> Self {
        Self {
            max_rows: 1 << 22,
            max_k: 1 << 16,
            max_n: 1 << 12,
            max_entries: 1 << 24,
            max_json_bytes: 160 << 20,
            max_model_entries: u32::MAX as usize,
        }
    }
}

/// Which operand of the JSON an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// `"matrix"`: W.
    Matrix,
    /// `"vector"`: X as a k×1 column.
    Vector,
    /// `"rhs"`: X as a k×n matrix.
    Rhs,
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Matrix => "matrix",
            Self::Vector => "vector",
            Self::Rhs => "rhs",
        })
    }
}

/// A position inside the job JSON, printed as `matrix[row][col]` or `vector[index]`
/// (zero-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The operand.
    pub operand: Operand,
    /// Row (the index, for a vector).
    pub row: usize,
    /// Column (always 0 for a vector).
    pub col: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operand {
            Operand::Vector => write!(f, "vector[{}]", self.row),
            other => write!(f, "{other}[{}][{}]", self.row, self.col),
        }
    }
}

/// Why a job spec is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobSpecError {
    /// The text is not valid JSON.
    #[error("invalid JSON at line {line}, column {column}: {detail}")]
    Json {
        /// Line (1-based).
        line: usize,
        /// Column (1-based).
        column: usize,
        /// serde_json's description.
        detail: String,
    },
    /// The JSON text is longer than allowed.
    #[error("job JSON is {len} bytes, over the limit of {limit}")]
    InputTooLarge {
        /// Length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The top level is not an object.
    #[error("job JSON must be an object with \"matrix\" and \"vector\" or \"rhs\", found {found}")]
    NotAnObject {
        /// What was found.
        found: String,
    },
    /// A required field is missing.
    #[error("job JSON has no {field} field")]
    MissingField {
        /// The field(s) expected.
        field: &'static str,
    },
    /// A field appears twice.
    #[error("job JSON has the field \"{field}\" twice; give it once")]
    DuplicateField {
        /// The field.
        field: &'static str,
    },
    /// Both `vector` and `rhs` are present.
    #[error("job JSON has both \"vector\" and \"rhs\"; give exactly one")]
    BothRightHandSides,
    /// A field that is not part of the format.
    #[error("unknown field {field:?} in job JSON (expected \"matrix\" and \"vector\" or \"rhs\")")]
    UnknownField {
        /// The field name.
        field: String,
    },
    /// An operand or a row is not an array.
    #[error("{what} must be an array, found {found}")]
    NotAnArray {
        /// What should have been an array (e.g. `matrix row 3`).
        what: String,
        /// What was found.
        found: String,
    },
    /// An operand has no rows or no columns.
    #[error("{operand} is empty")]
    Empty {
        /// The operand.
        operand: Operand,
    },
    /// A row's length differs from the first row's.
    #[error("{operand} row {row} has {len} entries, expected {expected} (the length of row 0)")]
    RaggedRow {
        /// The operand.
        operand: Operand,
        /// Row index (zero-based).
        row: usize,
        /// Its length.
        len: usize,
        /// Length of row 0.
        expected: usize,
    },
    /// An entry is not an integer.
    #[error("{at} is not an integer: {found}")]
    NotAnInteger {
        /// Where.
        at: Position,
        /// The offending JSON text (truncated).
        found: String,
    },
    /// An entry's magnitude exceeds [`MAX_ABS_ENTRY`].
    #[error("{at} = {value} is out of range: |value| must be at most {limit}")]
    OutOfRange {
        /// Where.
        at: Position,
        /// The value as written.
        value: String,
        /// The limit ([`MAX_ABS_ENTRY`]).
        limit: i64,
    },
    /// Inner dimensions differ: W has k columns but X has a different number of rows.
    #[error("matrix has {matrix_cols} columns but {rhs} has {rhs_rows} rows; they must match")]
    InnerDimension {
        /// Columns of W.
        matrix_cols: usize,
        /// Which right-hand operand.
        rhs: Operand,
        /// Rows of X.
        rhs_rows: usize,
    },
    /// A dimension or entry count is over the configured limit.
    #[error("job too large: {what} is {value}, over the limit of {limit}")]
    TooLarge {
        /// Which quantity (e.g. `"entries of W (m·k)"`).
        what: &'static str,
        /// Its value.
        value: usize,
        /// The limit.
        limit: usize,
    },
    /// Canonical bytes have the wrong length for the declared shape.
    #[error("{operand} bytes: expected {expected} bytes for its shape, found {found}")]
    ByteLength {
        /// The operand.
        operand: Operand,
        /// Expected length.
        expected: usize,
        /// Actual length.
        found: usize,
    },
    /// A matrix has an inconsistent shape.
    #[error(transparent)]
    Matrix(#[from] MatrixError),
}

/// A validated job: Y = W·X with W m×k and X k×n.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    w: IntMatrix,
    x: IntMatrix,
}

fn check_limit(what: &'static str, value: usize, limit: usize) -> Result<(), JobSpecError> {
    if value > limit {
        Err(JobSpecError::TooLarge { what, value, limit })
    } else {
        Ok(())
    }
}

impl JobSpec {
    /// Validates W and X: non-empty, matching inner dimension, entries in range, sizes within
    /// `limits`.
    pub fn new(w: IntMatrix, x: IntMatrix, limits: &JobLimits) -> Result<Self, JobSpecError> {
        let rhs = if x.cols() == 1 {
            Operand::Vector
        } else {
            Operand::Rhs
        };
        for (m, operand) in [(&w, Operand::Matrix), (&x, rhs)] {
            if m.is_empty() {
                return Err(JobSpecError::Empty { operand });
            }
        }
        if w.cols() != x.rows() {
            return Err(JobSpecError::InnerDimension {
                matrix_cols: w.cols(),
                rhs,
                rhs_rows: x.rows(),
            });
        }
        check_limit(
            "rows of matrix (m)",
            w.rows(),
            limits.max_rows.min(u32::MAX as usize),
        )?;
        // Dimensions travel as u32 in manifests.
        let max_dim = u32::MAX as usize;
        check_limit("inner dimension (k)", w.cols(), limits.max_k.min(max_dim))?;
        check_limit("columns of rhs (n)", x.cols(), limits.max_n.min(max_dim))?;
        check_limit("entries of W (m·k)", w.len(), limits.max_entries)?;
        check_limit("entries of X (k·n)", x.len(), limits.max_entries)?;
        let out = w.rows().saturating_mul(x.cols());
        check_limit("entries of Y (m·n)", out, limits.max_entries)?;
        check_range(&w, Operand::Matrix)?;
        check_range(&x, rhs)?;
        Ok(Self { w, x })
    }

    /// The JSON form: `vector` when n = 1, `rhs` otherwise.
    pub fn to_json(&self) -> String {
        let rows = |m: &IntMatrix| -> Vec<Vec<i64>> {
            (0..m.rows())
                .filter_map(|r| m.row(r).map(<[i64]>::to_vec))
                .collect()
        };
        let value = if self.x.cols() == 1 {
            serde_json::json!({ "matrix": rows(&self.w), "vector": self.x.data() })
        } else {
            serde_json::json!({ "matrix": rows(&self.w), "rhs": rows(&self.x) })
        };
        value.to_string()
    }

    /// W (m×k).
    pub fn w(&self) -> &IntMatrix {
        &self.w
    }

    /// X (k×n).
    pub fn x(&self) -> &IntMatrix {
        &self.x
    }

    /// m: rows of W.
    pub fn m(&self) -> usize {
        self.w.rows()
    }

    /// k: columns of W, rows of X.
    pub fn k(&self) -> usize {
        self.w.cols()
    }

    /// n: columns of X.
    pub fn n(&self) -> usize {
        self.x.cols()
    }

    /// The exact product Y = W·X (i128 accumulation; fails only if an entry overflows i64,
    /// which needs k ≥ 2 with entries near the limit).
    pub fn reference_product(&self) -> Result<IntMatrix, MatrixError> {
        self.w.checked_mul(&self.x)
    }

    /// `max|W| · max|X| · k`: the largest magnitude any accumulator can reach. A prover must
    /// refuse jobs where this reaches half its field's modulus. Validated entries and
    /// dimensions keep it far below `u128::MAX` (under 2^94).
    pub fn worst_case_accumulator(&self) -> u128 {
        worst_case_accumulator(self.k() as u64, self.w.max_abs(), self.x.max_abs())
            .unwrap_or(u128::MAX)
    }

    /// Canonical bytes of W (4 bytes little-endian per entry, row-major).
    pub fn w_bytes(&self) -> Vec<u8> {
        // `new` keeps every entry within `i32`.
        canonical_bytes(&self.w)
    }

    /// Canonical bytes of X.
    pub fn x_bytes(&self) -> Vec<u8> {
        canonical_bytes(&self.x)
    }

    /// Descriptors (dims and chunk lists) of W and X under the protocol's chunk size.
    pub fn descriptors(&self) -> (BlobDescriptor, BlobDescriptor) {
        // `new` bounds every dimension by u32::MAX.
        let describe = |m: &IntMatrix, bytes: Vec<u8>| BlobDescriptor {
            rows: u32::try_from(m.rows()).unwrap_or(u32::MAX),
            cols: u32::try_from(m.cols()).unwrap_or(u32::MAX),
            total_bytes: bytes.len() as u64,
            chunks: chunk_refs(&bytes),
        };
        (
            describe(&self.w, self.w_bytes()),
            describe(&self.x, self.x_bytes()),
        )
    }

    /// Rebuilds a spec from canonical bytes (as reassembled from chunks).
    pub fn from_canonical_bytes(
        w: (usize, usize, &[u8]),
        x: (usize, usize, &[u8]),
        limits: &JobLimits,
    ) -> Result<Self, JobSpecError> {
        let rhs = if x.1 == 1 {
            Operand::Vector
        } else {
            Operand::Rhs
        };
        let w = matrix_from_bytes(Operand::Matrix, w.0, w.1, w.2)?;
        let x = matrix_from_bytes(rhs, x.0, x.1, x.2)?;
        Self::new(w, x, limits)
    }
}

/// `k · w_max · x_max` with checked arithmetic: the largest magnitude an accumulator of a
/// k-term dot product can reach, or `None` when it does not fit in a `u128` (such a job is
/// far past any field's exactness bound and must be refused, never wrapped).
pub fn worst_case_accumulator(k: u64, w_max: u64, x_max: u64) -> Option<u128> {
    u128::from(k)
        .checked_mul(u128::from(w_max))?
        .checked_mul(u128::from(x_max))
}

/// The first entry of `m` whose magnitude exceeds [`MAX_ABS_ENTRY`], as an error naming it.
fn check_range(m: &IntMatrix, operand: Operand) -> Result<(), JobSpecError> {
    let cols = m.cols().max(1);
    match m
        .data()
        .iter()
        .position(|v| v.unsigned_abs() > MAX_ABS_ENTRY.unsigned_abs())
    {
        Some(i) => Err(JobSpecError::OutOfRange {
            at: Position {
                operand,
                row: i / cols,
                col: i % cols,
            },
            value: m.data()[i].to_string(),
            limit: MAX_ABS_ENTRY,
        }),
        None => Ok(()),
    }
}

/// Canonical bytes of a matrix whose entries are known to be in range.
fn canonical_bytes(m: &IntMatrix) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.len() * 4);
    for &v in m.data() {
        // In range by the caller's contract; the fallback can never be chosen.
        let v = i32::try_from(v).unwrap_or_default();
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Canonical bytes of a matrix from outside (a settlement's X, say): 4-byte little-endian
/// signed entries, row-major. An entry with `|v| > 2^31 − 1` has no canonical form and is
/// refused with its position, never encoded as some other value.
pub fn entries_to_bytes(m: &IntMatrix, operand: Operand) -> Result<Vec<u8>, JobSpecError> {
    check_range(m, operand)?;
    Ok(canonical_bytes(m))
}

/// Reads canonical bytes of one operand, checking the length; range is checked by
/// [`JobSpec::new`] (the one value outside it, `i32::MIN`, is reported there).
fn matrix_from_bytes(
    operand: Operand,
    rows: usize,
    cols: usize,
    bytes: &[u8],
) -> Result<IntMatrix, JobSpecError> {
    let expected = rows.saturating_mul(cols).saturating_mul(4);
    if bytes.len() != expected {
        return Err(JobSpecError::ByteLength {
            operand,
            expected,
            found: bytes.len(),
        });
    }
    let data = bytes
        .chunks_exact(4)
        .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    Ok(IntMatrix::new(rows, cols, data)?)
}

/// A matrix from canonical bytes (4-byte little-endian signed entries, row-major), every
/// entry within [`MAX_ABS_ENTRY`].
pub fn matrix_from_canonical(
    operand: Operand,
    rows: usize,
    cols: usize,
    bytes: &[u8],
) -> Result<IntMatrix, JobSpecError> {
    let m = matrix_from_bytes(operand, rows, cols, bytes)?;
    check_range(&m, operand)?;
    Ok(m)
}

#[cfg(test)]
mod tests;
