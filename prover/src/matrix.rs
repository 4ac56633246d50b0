//! A dense row-major matrix of signed integers: the exact values a job multiplies.

use serde::{Deserialize, Serialize};

use crate::error::ProverError;

/// A dense row-major matrix of signed integers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntMatrix {
    rows: usize,
    cols: usize,
    data: Vec<i64>,
}

impl IntMatrix {
    /// A `rows × cols` matrix from row-major `data`.
    ///
    /// Fails if `data.len() != rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<i64>) -> Result<Self, ProverError> {
        let expected = rows.checked_mul(cols).ok_or(ProverError::Shape {
            what: "matrix",
            detail: format!("{rows} × {cols} entries overflow usize"),
        })?;
        if data.len() != expected {
            return Err(ProverError::Shape {
                what: "matrix",
                detail: format!(
                    "{rows} × {cols} needs {expected} entries, got {}",
                    data.len()
                ),
            });
        }
        Ok(Self { rows, cols, data })
    }

    /// A `len × 1` column vector.
    pub fn column_vector(values: Vec<i64>) -> Self {
        Self {
            rows: values.len(),
            cols: 1,
            data: values,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The row-major entries.
    pub fn data(&self) -> &[i64] {
        &self.data
    }

    /// Entry (r, c). Panics if out of range (callers index within checked shapes).
    pub fn get(&self, r: usize, c: usize) -> i64 {
        self.data[r * self.cols + c]
    }

    /// Row `r` as a slice.
    pub fn row(&self, r: usize) -> &[i64] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Rows `[start, end)` as a new matrix (a shard of W).
    pub fn row_block(&self, start: usize, end: usize) -> Result<Self, ProverError> {
        if start > end || end > self.rows {
            return Err(ProverError::Shape {
                what: "row block",
                detail: format!("rows {start}..{end} of a matrix with {} rows", self.rows),
            });
        }
        Ok(Self {
            rows: end - start,
            cols: self.cols,
            data: self.data[start * self.cols..end * self.cols].to_vec(),
        })
    }

    /// The largest absolute value of any entry (0 for an empty matrix).
    pub fn max_abs(&self) -> u64 {
        self.data
            .iter()
            .map(|v| v.unsigned_abs())
            .max()
            .unwrap_or(0)
    }

    /// The product `self · rhs` without overflow checks, for inputs already bounded by
    /// [`crate::check_exact`] (every accumulator then stays below 2^31, far inside i64).
    ///
    /// Row-times-vector dot products for one right-hand column, the schoolbook (i, j, t) loop
    /// otherwise. Wrapping arithmetic keeps it panic-free even on unchecked inputs.
    pub(crate) fn matmul_bounded(&self, rhs: &IntMatrix) -> IntMatrix {
        let (m, k, n) = (self.rows, self.cols, rhs.cols);
        let mut out = vec![0i64; m * n];
        if n == 1 {
            for (o, row) in out.iter_mut().zip(self.data.chunks_exact(k.max(1))) {
                *o = row
                    .iter()
                    .zip(&rhs.data)
                    .fold(0i64, |a, (w, x)| a.wrapping_add(w.wrapping_mul(*x)));
            }
        } else {
            for i in 0..m {
                let acc = &mut out[i * n..(i + 1) * n];
                for (j, &w) in self.row(i).iter().enumerate() {
                    for (a, &x) in acc.iter_mut().zip(rhs.row(j)) {
                        *a = a.wrapping_add(w.wrapping_mul(x));
                    }
                }
            }
        }
        IntMatrix {
            rows: m,
            cols: n,
            data: out,
        }
    }

    /// The exact product `self · rhs` with the schoolbook (i, j, t) loop, checking overflow.
    ///
    /// This is the native computation proofs are compared against in benchmarks. Fails if the
    /// inner dimensions differ or an accumulator leaves the i64 range.
    pub fn matmul(&self, rhs: &IntMatrix) -> Result<IntMatrix, ProverError> {
        if self.cols != rhs.rows {
            return Err(ProverError::Shape {
                what: "product",
                detail: format!(
                    "left is {} × {}, right is {} × {}: inner dimensions differ",
                    self.rows, self.cols, rhs.rows, rhs.cols
                ),
            });
        }
        let n = rhs.cols;
        let mut out = vec![0i64; self.rows * n];
        let overflow = || ProverError::Shape {
            what: "product",
            detail: "an accumulator overflowed i64".into(),
        };
        for i in 0..self.rows {
            let acc = &mut out[i * n..(i + 1) * n];
            for (j, &w) in self.row(i).iter().enumerate() {
                if w == 0 {
                    continue;
                }
                for (a, &x) in acc.iter_mut().zip(rhs.row(j)) {
                    *a = w
                        .checked_mul(x)
                        .and_then(|p| a.checked_add(p))
                        .ok_or_else(overflow)?;
                }
            }
        }
        Ok(IntMatrix {
            rows: self.rows,
            cols: n,
            data: out,
        })
    }
}
