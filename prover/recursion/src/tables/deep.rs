//! The DEEP table: for every query, the batched sum of the values opened at the query's point,
//! `S_x = Σ_j α^j · v_j`, over every column of the input trees in the verifier's order (main
//! trace, quotient chunks, preprocessed trace; the α-powers run on across them). The program
//! table turns it into the reduced opening `(S_ζ − S_x) / (ζ − x)`.
//!
//! One row per leaf chunk (up to 8 values, as the openings table hashed them) of each query's
//! input openings, in that order. The row reads its chunk on [`super::tree::CHUNK_BUS`] — the
//! very values the openings table hashed to the committed roots — and accumulates
//!
//! ```text
//! u   = Σ_t α^t · v_t                  (t < 8; unabsorbed slots are zero)
//! fin = acc + pw · u
//! acc' = fin,  pw' = pw · α^count      (within a query)
//! acc = 0, pw = 1                      (a query's first chunk)
//! ```
//!
//! On a query's last chunk it offers `fin = S_x` on the extension-value bus under the query's
//! id. The powers `α, …, α^8` are columns constant down the table, read from the transcript on
//! row 0 (the FRI batching challenge) and chained by multiplication on every row.

use p3_air::{Air, AirBuilder, PermutationAirBuilder};
use p3_field::{BasedVectorSpace, PrimeCharacteristicRing};
use p3_lookup::{Count, InteractionBuilder, LookupBus};
use p3_matrix::dense::RowMajorMatrix;

use super::ext::{coeffs, ext_mul, D};
use super::tree::{CHUNK_BUS, DIGEST};
use starkscale_prover::config::{Challenge, Val};

// Copies of layout columns the buses read.
const ACTIVE: usize = 0;
const CHUNK: usize = 1;
const FIRST: usize = 2;
const OFFER: usize = 3;
const OUT_ID: usize = 4;
// The chunk's values.
const V: usize = 5;
// α^1 ..= α^8.
const AP: usize = V + DIGEST;
const U: usize = AP + DIGEST * D;
const ACNT: usize = U + D;
const PW: usize = ACNT + D;
const ACC: usize = PW + D;
const FIN: usize = ACC + D;
/// Width of the table.
pub const COLS: usize = FIN + D;

const P_ACTIVE: usize = 0;
const P_CHUNK: usize = 1;
const P_FIRST: usize = 2;
const P_START: usize = 3;
// No transition constraint from this row to the next (a query's last chunk, or padding).
const P_BREAK: usize = 4;
const P_OFFER: usize = 5;
const P_OUT_ID: usize = 6;
// One-hot: the chunk holds `t + 1` values.
const P_CNT: usize = 7;
const PERIODIC: usize = P_CNT + DIGEST;

/// One chunk the DEEP table reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeepRow {
    /// Its id on the chunk bus.
    pub chunk: u32,
    /// Values in it (1..=8).
    pub count: usize,
    /// The query's first chunk.
    pub start: bool,
    /// On the query's last chunk: the id under which `S_x` is offered.
    pub out: Option<u32>,
}

/// The DEEP table of one proof.
#[derive(Clone, Debug)]
pub struct DeepTable {
    periodic: Vec<Vec<Val>>,
    // Transcript positions of the batching challenge's coefficients.
    alpha: [u32; D],
}

fn height(rows: &[DeepRow]) -> usize {
    rows.len().next_power_of_two().max(super::MIN_ROWS)
}

impl DeepTable {
    /// The table for `rows`, reading α at transcript positions `alpha`.
    pub fn new(rows: &[DeepRow], alpha: [u32; D]) -> Self {
        let height = height(rows);
        let mut periodic = vec![vec![Val::ZERO; height]; PERIODIC];
        periodic[P_FIRST][0] = Val::ONE;
        for pad in periodic[P_BREAK].iter_mut().skip(rows.len()) {
            *pad = Val::ONE;
        }
        for (r, row) in rows.iter().enumerate() {
            periodic[P_ACTIVE][r] = Val::ONE;
            periodic[P_CHUNK][r] = Val::from_u32(row.chunk);
            periodic[P_START][r] = Val::from_bool(row.start);
            if let Some(id) = row.out {
                periodic[P_BREAK][r] = Val::ONE;
                periodic[P_OFFER][r] = Val::ONE;
                periodic[P_OUT_ID][r] = Val::from_u32(id);
            }
            let count = row.count.clamp(1, DIGEST);
            periodic[P_CNT + count - 1][r] = Val::ONE;
        }
        Self { periodic, alpha }
    }
}

periodic_table!(DeepTable, COLS);

impl<AB> Air<AB> for DeepTable
where
    AB: AirBuilder<F = Val> + PermutationAirBuilder + InteractionBuilder,
{
    fn eval(&self, builder: &mut AB) {
        let (_, local, next) = super::window(builder);
        let periodic = super::periodic(builder);
        let p = |i: usize| periodic[i].clone();
        let c = |i: usize| local[i].clone();
        let ext = |row: &[AB::Expr], at: usize| -> Vec<AB::Expr> { row[at..at + D].to_vec() };
        for (column, source) in [
            (ACTIVE, P_ACTIVE),
            (CHUNK, P_CHUNK),
            (FIRST, P_FIRST),
            (OFFER, P_OFFER),
            (OUT_ID, P_OUT_ID),
        ] {
            builder.assert_eq(c(column), p(source));
        }
        // α^1..α^8: constant down the table, α^(t+1) = α^t · α.
        for i in 0..DIGEST * D {
            builder
                .when_transition()
                .assert_eq(next[AP + i].clone(), c(AP + i));
        }
        let alpha = ext(&local, AP);
        for t in 1..DIGEST {
            let product = ext_mul(&ext(&local, AP + (t - 1) * D), &alpha);
            for (i, v) in product.into_iter().enumerate() {
                builder.assert_eq(c(AP + t * D + i), v);
            }
        }
        // u = v_0 + Σ_{t ≥ 1} α^t · v_t.
        for i in 0..D {
            let mut u = if i == 0 { c(V) } else { AB::Expr::ZERO };
            for t in 1..DIGEST {
                u += c(AP + (t - 1) * D + i) * c(V + t);
            }
            builder.assert_eq(c(U + i), u);
            // α^count, selected by the layout's one-hot count.
            let acnt = (0..DIGEST).fold(AB::Expr::ZERO, |acc, t| {
                acc + p(P_CNT + t) * c(AP + t * D + i)
            });
            builder.assert_eq(c(ACNT + i), acnt);
        }
        // fin = acc + pw · u.
        let pw_u = ext_mul(&ext(&local, PW), &ext(&local, U));
        for (i, v) in pw_u.into_iter().enumerate() {
            builder.assert_eq(c(FIN + i), c(ACC + i) + v);
        }
        // A query's first chunk starts from acc = 0, pw = 1; later chunks carry fin and
        // pw · α^count from the previous row.
        let next_pw = ext_mul(&ext(&local, PW), &ext(&local, ACNT));
        for i in 0..D {
            builder.assert_zero(p(P_START) * c(ACC + i));
            builder.assert_zero(p(P_START) * (c(PW + i) - AB::Expr::from_bool(i == 0)));
            let carry = AB::Expr::ONE - p(P_BREAK);
            builder
                .when_transition()
                .assert_zero(carry.clone() * (next[ACC + i].clone() - c(FIN + i)));
            builder
                .when_transition()
                .assert_zero(carry * (next[PW + i].clone() - next_pw[i].clone()));
        }

        // The chunk, read from the openings table; α from the transcript; S_x offered.
        let chunk: Vec<AB::Expr> = std::iter::once(c(CHUNK))
            .chain((V..V + DIGEST).map(c))
            .collect();
        LookupBus::new(CHUNK_BUS).lookup_key(builder, chunk, Count::bounded(c(ACTIVE), 1));
        let transcript = LookupBus::new(super::transcript::BUS);
        for (i, pos) in self.alpha.iter().enumerate() {
            transcript.lookup_key(
                builder,
                vec![AB::Expr::from_u32(*pos), c(AP + i)],
                Count::bounded(c(FIRST), 1),
            );
        }
        let out: Vec<AB::Expr> = std::iter::once(c(OUT_ID))
            .chain((FIN..FIN + D).map(c))
            .collect();
        LookupBus::new(super::ext::BUS).table_entry(builder, out, c(OFFER));
    }
}

/// The table's trace: `chunks[r]` is row `r`'s chunk (its values, zero-padded to 8), `alpha`
/// the batching challenge. Returns the trace and each query's `S_x` in row order.
pub fn trace(
    rows: &[DeepRow],
    chunks: &[[Val; DIGEST]],
    alpha: Challenge,
) -> (RowMajorMatrix<Val>, Vec<Challenge>) {
    let height = height(rows);
    let mut out = vec![Val::ZERO; height * COLS];
    let powers: Vec<Challenge> = (1..=DIGEST).map(|t| alpha.exp_u64(t as u64)).collect();
    let mut sums = Vec::new();
    let (mut acc, mut pw) = (Challenge::ZERO, Challenge::ONE);
    for r in 0..height {
        let t = &mut out[r * COLS..(r + 1) * COLS];
        for (j, power) in powers.iter().enumerate() {
            t[AP + j * D..AP + (j + 1) * D].copy_from_slice(&coeffs(*power));
        }
        t[FIRST] = Val::from_bool(r == 0);
        let Some(row) = rows.get(r) else {
            continue;
        };
        let values = chunks.get(r).copied().unwrap_or_default();
        if row.start {
            (acc, pw) = (Challenge::ZERO, Challenge::ONE);
        }
        let u = values
            .iter()
            .enumerate()
            .fold(Challenge::ZERO, |s, (j, v)| {
                s + if j == 0 {
                    Challenge::from(*v)
                } else {
                    powers[j - 1] * *v
                }
            });
        let acnt = powers[row.count.clamp(1, DIGEST) - 1];
        let fin = acc + pw * u;
        t[ACTIVE] = Val::ONE;
        t[CHUNK] = Val::from_u32(row.chunk);
        t[V..V + DIGEST].copy_from_slice(&values);
        t[U..U + D].copy_from_slice(&coeffs(u));
        t[ACNT..ACNT + D].copy_from_slice(&coeffs(acnt));
        t[PW..PW + D].copy_from_slice(&coeffs(pw));
        t[ACC..ACC + D].copy_from_slice(&coeffs(acc));
        t[FIN..FIN + D].copy_from_slice(&coeffs(fin));
        if let Some(id) = row.out {
            t[OFFER] = Val::ONE;
            t[OUT_ID] = Val::from_u32(id);
            sums.push(fin);
        }
        (acc, pw) = (fin, pw * acnt);
    }
    (RowMajorMatrix::new(out, COLS), sums)
}

/// `α` from its coefficients.
pub fn challenge(c: [Val; D]) -> Challenge {
    Challenge::from_basis_coefficients_fn(|i| c[i])
}

#[cfg(test)]
mod tests {
    //! Each constraint of the table, corrupted in the fixture's DEEP table (8 × 20 weights, one
    //! vector: per query a main-trace chunk of 1 value, a quotient chunk of 4, then the
    //! preprocessed chunks of 8, 8 and 4; rows 0..=4 are query 0, row 4 offers its `S_x`).
    use super::*;
    use crate::verifier::fixture::{refused, DEEP};

    fn corrupted(cell: (usize, usize)) -> bool {
        refused(DEEP, COLS, cell, |v| v + Val::ONE)
    }

    #[test]
    fn the_layout_copies_are_pinned() {
        for (cell, what) in [
            ((2, ACTIVE), "active flag"),
            ((2, CHUNK), "chunk id"),
            ((0, FIRST), "first-row flag"),
            ((4, OFFER), "offer flag"),
            ((4, OUT_ID), "output id"),
        ] {
            assert!(corrupted(cell), "{what}");
        }
    }

    #[test]
    fn the_powers_of_alpha_are_read_once_and_chained() {
        assert!(corrupted((0, AP)), "α read on row 0");
        assert!(corrupted((7, AP + 1)), "α constant down the table");
        assert!(corrupted((9, AP + 3 * D + 2)), "α^4 = α^3 · α");
    }

    #[test]
    fn the_accumulation_is_enforced() {
        assert!(corrupted((3, V + 5)), "a value read from the chunk bus");
        assert!(corrupted((3, U + 1)), "u = Σ α^t v_t");
        assert!(corrupted((1, ACNT)), "α^count");
        assert!(corrupted((2, FIN + 2)), "fin = acc + pw · u");
        assert!(corrupted((5, ACC)), "a query starts from acc = 0");
        assert!(corrupted((5, PW)), "a query starts from pw = 1");
        assert!(
            corrupted((3, ACC + 3)),
            "acc carried from the previous chunk"
        );
        assert!(corrupted((3, PW + 1)), "pw carried times α^count");
        assert!(corrupted((4, FIN)), "the offered S_x");
    }
}
