//! The shard AIR: one trace row per output row of the shard.
//!
//! # Layout
//!
//! For a shard W_s (m rows × k columns, padded with zero rows to a power-of-two height N) and
//! `v` right-hand vectors x_0..x_{v-1} (the job's columns, or Freivalds combinations of them):
//!
//! | part | columns | contents at row r |
//! | --- | --- | --- |
//! | preprocessed | `w_0 .. w_{k-1}` | row r of W_s (committed once, at setup: the verifying key) |
//! | main | `y_0 .. y_{v-1}` | the claimed outputs (W_s·x_c)\[r\] |
//! | periodic (period N) | `o_0 .. o_{v-1}` | the public outputs Y_s\[r\]\[c\] the verifier holds |
//! | public values | `digest[0..8]`, then `x[c][j]` | statement digest, then every vector entry |
//!
//! Every constraint reads only the current row, so neither trace is opened at the next row,
//! and every constraint has degree 1 (a preprocessed cell times a public constant).
//! Binding the outputs costs the verifier one period-N periodic column per vector: O(m).
//!
//! # Constraints, for every vector c and every row
//!
//! 1. `y_c - Σ_j w_j · x[c][j] = 0` — the main column is the row's dot product.
//! 2. `y_c - o_c = 0` — the main column is the public output.
//!
//! The digest binds job id, shard index, worker key, configuration, commitment, X and Y into
//! the Fiat–Shamir transcript before any challenge is drawn (Plonky3 observes public values
//! first), so the proof cannot be replayed for another statement or re-targeted at another Y
//! after seeing the out-of-domain point.

use std::borrow::Cow;

use p3_air::{Air, AirBuilder, BaseAir, WindowAccess};
use p3_field::PrimeCharacteristicRing;
use p3_matrix::dense::RowMajorMatrix;

use crate::config::Val;

/// Number of public values taken by the statement digest.
pub const DIGEST_LEN: usize = 8;

/// The shard AIR. The prover's instance carries the weights; the verifier's does not.
#[derive(Clone, Debug)]
pub struct ShardAir {
    /// Width of the preprocessed trace: the inner dimension k.
    k: usize,
    /// Number of right-hand vectors proven at once.
    vectors: usize,
    /// The weight shard as a preprocessed trace (prover only).
    weights: Option<RowMajorMatrix<Val>>,
    /// Public outputs as periodic columns of period N, one per vector.
    outputs: Vec<Vec<Val>>,
}

impl ShardAir {
    /// An AIR for `vectors` right-hand vectors of length `k`, with the public outputs given as
    /// one column of length N (the padded trace height) per vector.
    pub fn new(k: usize, outputs: Vec<Vec<Val>>, weights: Option<RowMajorMatrix<Val>>) -> Self {
        Self {
            k,
            vectors: outputs.len(),
            weights,
            outputs,
        }
    }

    /// Number of public values this AIR expects: the digest, then `vectors · k` entries.
    pub fn public_len(&self) -> usize {
        DIGEST_LEN + self.vectors * self.k
    }

    /// Builds the main trace: one column per vector, holding W_s·x_c.
    ///
    /// `xs[c][j]` is entry j of vector c. Rows past the weights' height are zero.
    pub fn main_trace(weights: &RowMajorMatrix<Val>, xs: &[Vec<Val>]) -> RowMajorMatrix<Val> {
        let width = xs.len();
        let height = weights.values.len() / weights.width.max(1);
        let mut values = Val::zero_vec(height * width);
        let k = weights.width;
        if k > 0 {
            for (row, out) in weights
                .values
                .chunks_exact(k)
                .zip(values.chunks_exact_mut(width))
            {
                for (c, x) in xs.iter().enumerate() {
                    out[c] = dot(row, x);
                }
            }
        }
        RowMajorMatrix::new(values, width)
    }
}

/// Σ a_i · b_i over the base field.
pub(crate) fn dot(a: &[Val], b: &[Val]) -> Val {
    a.iter().zip(b).map(|(x, y)| *x * *y).sum()
}

/// Sums expressions as a balanced tree, so symbolic expression depth is log2(k) rather than
/// k (a linear chain of k additions overflows the stack in Plonky3's recursive degree pass).
fn balanced_sum<E: PrimeCharacteristicRing>(mut terms: Vec<E>) -> E {
    if terms.is_empty() {
        return E::ZERO;
    }
    while terms.len() > 1 {
        let mut next = Vec::with_capacity(terms.len().div_ceil(2));
        let mut iter = terms.into_iter();
        while let Some(a) = iter.next() {
            next.push(match iter.next() {
                Some(b) => a + b,
                None => a,
            });
        }
        terms = next;
    }
    terms.pop().unwrap_or(E::ZERO)
}

impl BaseAir<Val> for ShardAir {
    fn width(&self) -> usize {
        self.vectors
    }

    fn preprocessed_trace(&self) -> Option<RowMajorMatrix<Val>> {
        self.weights.clone()
    }

    fn preprocessed_width(&self) -> usize {
        self.k
    }

    fn num_periodic_columns(&self) -> usize {
        self.outputs.len()
    }

    fn periodic_columns(&self) -> Cow<'_, [Vec<Val>]> {
        Cow::Borrowed(&self.outputs)
    }

    fn main_next_row_columns(&self) -> Vec<usize> {
        Vec::new()
    }

    fn preprocessed_next_row_columns(&self) -> Vec<usize> {
        Vec::new()
    }

    fn num_public_values(&self) -> usize {
        self.public_len()
    }

    fn num_constraints(&self) -> Option<usize> {
        Some(2 * self.vectors)
    }

    fn max_constraint_degree(&self) -> Option<usize> {
        Some(1)
    }
}

impl<AB: AirBuilder<F = Val>> Air<AB> for ShardAir {
    fn eval(&self, builder: &mut AB) {
        let main = builder.main();
        let y = main.current_slice();
        let dots: Vec<AB::Expr> = {
            let w = builder.preprocessed().current_slice();
            let public = builder.public_values();
            (0..self.vectors)
                .map(|c| {
                    let x = &public[DIGEST_LEN + c * self.k..DIGEST_LEN + (c + 1) * self.k];
                    balanced_sum(
                        w.iter()
                            .zip(x)
                            .map(|(wj, xj)| (*wj).into() * (*xj).into())
                            .collect(),
                    )
                })
                .collect()
        };
        let outputs: Vec<AB::Expr> = builder
            .periodic_values()
            .iter()
            .map(|o| (*o).into())
            .collect();
        for (c, (dot, out)) in dots.into_iter().zip(outputs).enumerate() {
            // Constraint 1: y_c = Σ_j w_j · x[c][j].
            builder.assert_eq(y[c], dot);
            // Constraint 2: y_c = o_c, the public output of this row.
            builder.assert_eq(y[c], out);
        }
    }
}
