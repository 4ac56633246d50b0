//! The index table: turns transcript samples into bits, once per sample, for the two uses a
//! verifier has for sampled bits.
//!
//! - **Query rows**: a FRI query index is `sample_bits(L)`, the low `L` bits of the sample's
//!   canonical value. The row offers the index shifted right by each amount the openings
//!   need (0 for the input trees, the folded bits for each FRI round's tree) on [`BUS`] as
//!   `(index id, value)`, where the ids of query `q` are `base(q) + shift number`.
//! - **Proof-of-work rows**: the check `sample_bits(bits) == 0` after absorbing the witness:
//!   the low `bits` bits are zero.
//!
//! Each row reads its sample on the transcript bus at the position the verifier fixed, and
//! decomposes it into 31 boolean bits. The decomposition is made unique by a canonicity
//! check: KoalaBear's modulus is `2^31 − 2^24 + 1`, so a value whose bits 24..31 are all one
//! must have bits 0..24 all zero (otherwise `v + p < 2^31` would give a second
//! decomposition of a small `v`).

use p3_air::{Air, AirBuilder, PermutationAirBuilder};
use p3_field::{Field, PrimeCharacteristicRing, PrimeField32};
use p3_lookup::{Count, InteractionBuilder, LookupBus};
use p3_matrix::dense::RowMajorMatrix;

use super::transcript;
use starkscale_prover::config::Val;

/// Name of the bus carrying `(index id, index value)`.
pub const BUS: &str = "query-index";
/// Bits of a canonical KoalaBear value.
pub const BITS: usize = 31;
/// The low bits that must be zero when the high 7 are all one.
const HIGH: usize = 24;

const ACTIVE: usize = 0;
const POS: usize = 1;
const QUERY: usize = 2;
const BASE: usize = 3;
const BIT: usize = 4;
const ALL_HIGH: usize = BIT + BITS;
const INV: usize = ALL_HIGH + 1;
/// Width of the table.
pub const COLS: usize = INV + 1;

const P_ACTIVE: usize = 0;
const P_POS: usize = 1;
const P_QUERY: usize = 2;
const P_BASE: usize = 3;
const P_POW: usize = 4;
const PERIODIC: usize = 5;

/// What a row checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A query index; its ids start at `base`.
    Query {
        /// First index id of this query.
        base: u32,
    },
    /// A proof-of-work check.
    Pow,
}

/// One row: the sample's transcript position and what it is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexRow {
    /// Transcript position of the sample.
    pub pos: u32,
    /// What it checks.
    pub check: Check,
}

/// The index table.
#[derive(Clone, Debug)]
pub struct IndexTable {
    periodic: Vec<Vec<Val>>,
    index_bits: usize,
    pow_bits: usize,
    // (shift, number of openings reading the shifted index), in id order.
    shifts: Vec<(usize, u32)>,
}

impl IndexTable {
    /// The table for `rows`: query indices of `index_bits` bits, offered shifted by each of
    /// `shifts` (with how many openings read each), and proof-of-work checks of `pow_bits`.
    pub fn new(
        rows: &[IndexRow],
        index_bits: usize,
        shifts: &[(usize, u32)],
        pow_bits: usize,
    ) -> Self {
        let height = rows.len().next_power_of_two().max(super::MIN_ROWS);
        let mut periodic = vec![vec![Val::ZERO; height]; PERIODIC];
        for (r, row) in rows.iter().enumerate() {
            periodic[P_ACTIVE][r] = Val::ONE;
            periodic[P_POS][r] = Val::from_u32(row.pos);
            match row.check {
                Check::Query { base } => {
                    periodic[P_QUERY][r] = Val::ONE;
                    periodic[P_BASE][r] = Val::from_u32(base);
                }
                Check::Pow => periodic[P_POW][r] = Val::ONE,
            }
        }
        Self {
            periodic,
            index_bits: index_bits.min(BITS),
            pow_bits: pow_bits.min(BITS),
            shifts: shifts.to_vec(),
        }
    }
}

periodic_table!(IndexTable, COLS);

impl<AB> Air<AB> for IndexTable
where
    AB: AirBuilder<F = Val> + PermutationAirBuilder + InteractionBuilder,
{
    fn eval(&self, builder: &mut AB) {
        let (_, local, _) = super::window(builder);
        let periodic = super::periodic(builder);
        let p = |i: usize| periodic[i].clone();
        let c = |i: usize| local[i].clone();
        for (column, source) in [
            (ACTIVE, P_ACTIVE),
            (POS, P_POS),
            (QUERY, P_QUERY),
            (BASE, P_BASE),
        ] {
            builder.assert_eq(c(column), p(source));
        }
        let bits: Vec<AB::Expr> = (0..BITS).map(|j| c(BIT + j)).collect();
        for b in &bits {
            builder.assert_bool(b.clone());
        }
        // Canonical: if bits 24..31 are all one (ALL_HIGH = 1, forced by the inverse), the low
        // 24 bits are zero.
        let high = bits[HIGH..]
            .iter()
            .fold(AB::Expr::ZERO, |acc, b| acc + b.clone())
            - AB::Expr::from_usize(BITS - HIGH);
        builder.assert_eq(c(ALL_HIGH), AB::Expr::ONE - high.clone() * c(INV));
        builder.assert_zero(high * c(ALL_HIGH));
        let low = bits[..HIGH]
            .iter()
            .fold(AB::Expr::ZERO, |acc, b| acc + b.clone());
        builder.assert_zero(c(ALL_HIGH) * low);
        // Proof of work: the low bits are zero.
        for b in &bits[..self.pow_bits] {
            builder.assert_zero(p(P_POW) * b.clone());
        }

        let value = |from: usize, to: usize| -> AB::Expr {
            (from..to).rev().fold(AB::Expr::ZERO, |acc, j| {
                acc * AB::Expr::TWO + bits[j].clone()
            })
        };
        LookupBus::new(transcript::BUS).lookup_key(
            builder,
            vec![c(POS), value(0, BITS)],
            Count::bounded(c(ACTIVE), 1),
        );
        let offers = LookupBus::new(BUS);
        for (id, (shift, reads)) in self.shifts.iter().enumerate() {
            let shifted = value((*shift).min(self.index_bits), self.index_bits);
            offers.table_entry(
                builder,
                vec![c(BASE) + AB::Expr::from_usize(id), shifted],
                c(QUERY) * AB::Expr::from_u32(*reads),
            );
        }
    }
}

/// The trace for `rows` with the samples' values (`values[pos − first]`).
pub fn trace(rows: &[IndexRow], values: &[Val], first: u32) -> RowMajorMatrix<Val> {
    let height = rows.len().next_power_of_two().max(super::MIN_ROWS);
    let mut out = vec![Val::ZERO; height * COLS];
    for r in 0..height {
        let t = &mut out[r * COLS..(r + 1) * COLS];
        // Padding rows decompose 0.
        let mut v = 0;
        if let Some(row) = rows.get(r) {
            v = row
                .pos
                .checked_sub(first)
                .and_then(|i| values.get(i as usize))
                .map_or(0, PrimeField32::as_canonical_u32);
            t[ACTIVE] = Val::ONE;
            t[POS] = Val::from_u32(row.pos);
            if let Check::Query { base } = row.check {
                t[QUERY] = Val::ONE;
                t[BASE] = Val::from_u32(base);
            }
        }
        for j in 0..BITS {
            t[BIT + j] = Val::from_u32((v >> j) & 1);
        }
        let high = Val::from_u32((v >> HIGH).count_ones()) - Val::from_usize(BITS - HIGH);
        t[INV] = high.try_inverse().unwrap_or(Val::ZERO);
        t[ALL_HIGH] = Val::ONE - high * t[INV];
    }
    RowMajorMatrix::new(out, COLS)
}

#[cfg(test)]
mod tests {
    //! Each constraint of the table, corrupted in the fixture's index table (rows 0..=2: the
    //! proof-of-work checks; 3..=38: the query indices; then padding, which decomposes 0).
    use super::*;
    use crate::verifier::fixture::{refused, INDEX};

    fn corrupted(cell: (usize, usize), f: impl Fn(Val) -> Val) -> bool {
        refused(INDEX, COLS, cell, f)
    }

    #[test]
    fn the_layout_copies_are_pinned() {
        assert!(corrupted((3, ACTIVE), |_| Val::ZERO), "active flag");
        assert!(corrupted((3, POS), |v| v + Val::ONE), "sample position");
        assert!(corrupted((3, QUERY), |_| Val::ZERO), "query flag");
        assert!(corrupted((3, BASE), |v| v + Val::ONE), "index id base");
    }

    #[test]
    fn bits_are_boolean_and_proof_of_work_is_checked() {
        assert!(corrupted((5, BIT + 3), |_| Val::TWO), "boolean bit");
        assert!(corrupted((1, BIT), |_| Val::ONE), "proof-of-work bit");
    }

    /// The second decomposition of 0 (0 + p = 2^31 − 2^24 + 1) on a padding row: the sum is
    /// still 0 and the high-bits flag is honestly 1, so only the canonicity check sees it.
    #[test]
    fn the_decomposition_is_canonical() {
        let pad = 60;
        let mut w = crate::verifier::fixture::honest();
        let row = &mut w.traces[INDEX].values[pad * COLS..(pad + 1) * COLS];
        row[BIT] = Val::ONE;
        for b in &mut row[BIT + HIGH..BIT + BITS] {
            *b = Val::ONE;
        }
        row[ALL_HIGH] = Val::ONE;
        row[INV] = Val::ZERO;
        assert!(
            w.prove_and_verify().is_err(),
            "non-canonical decomposition accepted"
        );
        // The flag that says the high bits are all one cannot be claimed when they are not.
        assert!(corrupted((pad, ALL_HIGH), |_| Val::ONE), "high-bits flag");
    }
}
