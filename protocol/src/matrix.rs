//! [`IntMatrix`]: a dense, row-major matrix of signed 64-bit integers.
//!
//! It is the in-memory and on-wire form of W, X and output blocks Y. The only invariant it keeps
//! is `data.len() == rows * cols`; range rules for job inputs live in [`crate::job`].

use std::ops::Range;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

/// Why a matrix could not be built or multiplied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MatrixError {
    /// `data.len()` is not `rows * cols`.
    #[error("a {rows}x{cols} matrix needs {expected} entries, found {found}")]
    Shape {
        /// Declared rows.
        rows: usize,
        /// Declared columns.
        cols: usize,
        /// `rows * cols`, or `usize::MAX` when that overflows.
        expected: usize,
        /// Entries actually supplied.
        found: usize,
    },
    /// Inner dimensions of a product differ.
    #[error("cannot multiply a matrix with {left_cols} columns by one with {right_rows} rows")]
    InnerDimension {
        /// Columns of the left operand.
        left_cols: usize,
        /// Rows of the right operand.
        right_rows: usize,
    },
    /// An output entry does not fit in an `i64`.
    #[error("product entry at row {row}, column {col} overflows i64")]
    Overflow {
        /// Output row.
        row: usize,
        /// Output column.
        col: usize,
    },
}

/// A dense row-major matrix of `i64`.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize)]
#[serde(try_from = "RawMatrix")]
pub struct IntMatrix {
    rows: usize,
    cols: usize,
    data: Vec<i64>,
}

/// The unchecked wire form of [`IntMatrix`].
#[derive(Deserialize)]
struct RawMatrix {
    rows: u64,
    cols: u64,
    data: Vec<i64>,
}

impl TryFrom<RawMatrix> for IntMatrix {
    type Error = MatrixError;
    fn try_from(raw: RawMatrix) -> Result<Self, Self::Error> {
        let to_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        IntMatrix::new(to_usize(raw.rows), to_usize(raw.cols), raw.data)
    }
}

impl Serialize for IntMatrix {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("IntMatrix", 3)?;
        s.serialize_field("rows", &(self.rows as u64))?;
        s.serialize_field("cols", &(self.cols as u64))?;
        s.serialize_field("data", &self.data)?;
        s.end()
    }
}

impl IntMatrix {
    /// Builds a matrix from row-major data, checking `data.len() == rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<i64>) -> Result<Self, MatrixError> {
        let expected = rows.saturating_mul(cols);
        if expected != data.len() {
            return Err(MatrixError::Shape {
                rows,
                cols,
                expected,
                found: data.len(),
            });
        }
        Ok(Self { rows, cols, data })
    }

    /// A `len × 1` column matrix.
    pub fn column(data: Vec<i64>) -> Self {
        Self {
            rows: data.len(),
            cols: 1,
            data,
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

    /// Number of entries (`rows * cols`).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the matrix has no entries.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The row-major entries.
    pub fn data(&self) -> &[i64] {
        &self.data
    }

    /// Consumes the matrix, returning its row-major entries.
    pub fn into_data(self) -> Vec<i64> {
        self.data
    }

    /// The entry at `(row, col)`, if inside the matrix.
    pub fn get(&self, row: usize, col: usize) -> Option<i64> {
        if row < self.rows && col < self.cols {
            self.data.get(row * self.cols + col).copied()
        } else {
            None
        }
    }

    /// One row, if inside the matrix.
    pub fn row(&self, row: usize) -> Option<&[i64]> {
        if row < self.rows {
            self.data.get(row * self.cols..(row + 1) * self.cols)
        } else {
            None
        }
    }

    /// A copy of rows `range` (for a shard's weights or outputs), if inside the matrix.
    pub fn row_block(&self, range: Range<usize>) -> Option<IntMatrix> {
        if range.start > range.end || range.end > self.rows {
            return None;
        }
        let data = self
            .data
            .get(range.start * self.cols..range.end * self.cols)?
            .to_vec();
        Some(Self {
            rows: range.end - range.start,
            cols: self.cols,
            data,
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

    /// The exact product `self · rhs`, accumulating in `i128` and failing if an entry does not
    /// fit in an `i64`.
    pub fn checked_mul(&self, rhs: &IntMatrix) -> Result<IntMatrix, MatrixError> {
        if self.cols != rhs.rows {
            return Err(MatrixError::InnerDimension {
                left_cols: self.cols,
                right_rows: rhs.rows,
            });
        }
        let (m, k, n) = (self.rows, self.cols, rhs.cols);
        let mut out = Vec::with_capacity(m.saturating_mul(n));
        let mut acc = vec![0i128; n];
        for (row, w_row) in self.data.chunks_exact(k.max(1)).enumerate().take(m) {
            acc.iter_mut().for_each(|a| *a = 0);
            for (&w, x_row) in w_row.iter().zip(rhs.data.chunks_exact(n.max(1))) {
                for (a, &x) in acc.iter_mut().zip(x_row) {
                    *a += i128::from(w) * i128::from(x);
                }
            }
            for (col, &a) in acc.iter().enumerate() {
                out.push(i64::try_from(a).map_err(|_| MatrixError::Overflow { row, col })?);
            }
        }
        if k == 0 {
            out.resize(m.saturating_mul(n), 0);
        }
        IntMatrix::new(m, n, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_is_checked() {
        assert!(IntMatrix::new(2, 3, vec![0; 6]).is_ok());
        assert_eq!(
            IntMatrix::new(2, 3, vec![0; 5]),
            Err(MatrixError::Shape {
                rows: 2,
                cols: 3,
                expected: 6,
                found: 5
            })
        );
        assert!(IntMatrix::new(usize::MAX, 2, vec![]).is_err());
    }

    #[test]
    fn product_is_exact() {
        let w = IntMatrix::new(2, 2, vec![1, 2, 3, 4]).unwrap();
        let x = IntMatrix::new(2, 2, vec![5, 6, 7, 8]).unwrap();
        let y = w.checked_mul(&x).unwrap();
        assert_eq!(y.data(), &[19, 22, 43, 50]);
        let v = IntMatrix::column(vec![1, -1]);
        assert_eq!(w.checked_mul(&v).unwrap().data(), &[-1, -1]);
        assert!(matches!(
            v.checked_mul(&w),
            Err(MatrixError::InnerDimension { .. })
        ));
    }

    #[test]
    fn product_overflow_is_reported() {
        let w = IntMatrix::new(1, 2, vec![i64::MAX, i64::MAX]).unwrap();
        let x = IntMatrix::column(vec![1, 1]);
        assert_eq!(
            w.checked_mul(&x),
            Err(MatrixError::Overflow { row: 0, col: 0 })
        );
    }

    #[test]
    fn rows_and_blocks() {
        let w = IntMatrix::new(3, 2, vec![1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(w.row(1), Some(&[3, 4][..]));
        assert_eq!(w.row(3), None);
        assert_eq!(w.get(2, 1), Some(6));
        assert_eq!(w.get(2, 2), None);
        assert_eq!(w.row_block(1..3).unwrap().data(), &[3, 4, 5, 6]);
        assert!(w.row_block(2..4).is_none());
        assert_eq!(w.max_abs(), 6);
    }

    #[test]
    fn wire_form_rejects_bad_shapes() {
        let good = IntMatrix::new(1, 2, vec![3, -4]).unwrap();
        let bytes = crate::codec::to_canonical_bytes(&good).unwrap();
        let kind = crate::codec::MessageKind::ShardProved;
        let back: IntMatrix = crate::codec::decode_body(kind, &bytes).unwrap();
        assert_eq!(back, good);
        let mut bad = bytes.clone();
        bad[0] = 2; // rows = 2 but only two entries
        assert!(crate::codec::decode_body::<IntMatrix>(kind, &bad).is_err());
    }
}
