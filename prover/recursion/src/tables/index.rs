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
//! - **Domain values** (query rows): the verifier's base-field points that depend on the
//!   index (the DEEP point x, each FRI round's inverse coset point, the final point) are
//!   products of constants, one selected by each index bit: a [`Chain`] computes
//!   `init · Π (bit_b ? κ_b : 1)`, one column per factor. Each chain's value and the bits a
//!   FRI round selects with are offered once on the extension-value bus
//!   ([`super::ext::BUS`]) as `(id, v, 0, 0, 0)`, ids from the query's value base.
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
const VBASE: usize = INV + 1;
// The chains' product columns follow.
const CHAINS: usize = VBASE + 1;

const P_ACTIVE: usize = 0;
const P_POS: usize = 1;
const P_QUERY: usize = 2;
const P_BASE: usize = 3;
const P_POW: usize = 4;
const P_VBASE: usize = 5;
const PERIODIC: usize = 6;

/// A base-field value computed from a query index's bits: `init · Π (bit_b ? κ_b : 1)` over
/// the `(b, κ_b)` factors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The constant the product starts from.
    pub init: Val,
    /// Each factor: the bit that selects it and its constant.
    pub factors: Vec<(usize, Val)>,
}

impl Chain {
    /// The chain's value for the index `bits` (bit `b` of `index`).
    pub fn eval(&self, index: u64) -> Val {
        self.factors
            .iter()
            .filter(|(b, _)| (index >> b) & 1 == 1)
            .fold(self.init, |acc, (_, k)| acc * *k)
    }
}

/// What query rows offer on the extension-value bus, in id order from the query's value base:
/// each chain's value, then each listed bit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Domain {
    /// The chains.
    pub chains: Vec<Chain>,
    /// Bits offered on their own.
    pub bits: Vec<usize>,
}

impl Domain {
    /// Values offered per query.
    pub fn len(&self) -> usize {
        self.chains.len() + self.bits.len()
    }

    /// Whether nothing is offered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The offered values for `index`, in id order.
    pub fn values(&self, index: u64) -> Vec<Val> {
        self.chains
            .iter()
            .map(|c| c.eval(index))
            .chain(self.bits.iter().map(|b| Val::from_u64((index >> b) & 1)))
            .collect()
    }

    fn columns(&self) -> usize {
        self.chains.iter().map(|c| c.factors.len().max(1)).sum()
    }
}

/// What a row checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A query index; its ids start at `base`.
    Query {
        /// First index id of this query.
        base: u32,
        /// First id of its domain values on the extension-value bus.
        values: u32,
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
    domain: Domain,
}

impl IndexTable {
    /// The table for `rows`: query indices of `index_bits` bits, offered shifted by each of
    /// `shifts` (with how many openings read each), and proof-of-work checks of `pow_bits`.
    pub fn new(
        rows: &[IndexRow],
        index_bits: usize,
        shifts: &[(usize, u32)],
        pow_bits: usize,
        domain: &Domain,
    ) -> Self {
        let height = rows.len().next_power_of_two().max(super::MIN_ROWS);
        let mut periodic = vec![vec![Val::ZERO; height]; PERIODIC];
        for (r, row) in rows.iter().enumerate() {
            periodic[P_ACTIVE][r] = Val::ONE;
            periodic[P_POS][r] = Val::from_u32(row.pos);
            match row.check {
                Check::Query { base, values } => {
                    periodic[P_QUERY][r] = Val::ONE;
                    periodic[P_BASE][r] = Val::from_u32(base);
                    periodic[P_VBASE][r] = Val::from_u32(values);
                }
                Check::Pow => periodic[P_POW][r] = Val::ONE,
            }
        }
        Self {
            periodic,
            index_bits: index_bits.min(BITS),
            pow_bits: pow_bits.min(BITS),
            shifts: shifts.to_vec(),
            domain: domain.clone(),
        }
    }

    fn width(&self) -> usize {
        CHAINS + self.domain.columns()
    }
}

impl p3_air::BaseAir<Val> for IndexTable {
    fn width(&self) -> usize {
        IndexTable::width(self)
    }

    fn num_periodic_columns(&self) -> usize {
        self.periodic.len()
    }

    fn periodic_columns(&self) -> std::borrow::Cow<'_, [Vec<Val>]> {
        std::borrow::Cow::Borrowed(&self.periodic)
    }
}

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
            (VBASE, P_VBASE),
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

        // Domain values: each chain's running product, one factor per column (degree 2):
        // p_l = p_{l−1} · (1 + bit_b·(κ − 1)), p_{−1} = init.
        let values = LookupBus::new(super::ext::BUS);
        let offer = |builder: &mut AB, id: usize, v: AB::Expr| {
            let tuple = vec![
                c(VBASE) + AB::Expr::from_usize(id),
                v,
                AB::Expr::ZERO,
                AB::Expr::ZERO,
                AB::Expr::ZERO,
            ];
            values.table_entry(builder, tuple, c(QUERY));
        };
        let mut col = CHAINS;
        for (j, chain) in self.domain.chains.iter().enumerate() {
            let mut prev = AB::Expr::from(chain.init);
            if chain.factors.is_empty() {
                builder.assert_eq(c(col), prev.clone());
                col += 1;
            }
            for (b, k) in &chain.factors {
                let factor = AB::Expr::ONE + bits[*b].clone() * AB::Expr::from(*k - Val::ONE);
                builder.assert_eq(c(col), prev * factor);
                prev = c(col);
                col += 1;
            }
            offer(builder, j, c(col - 1));
        }
        for (t, b) in self.domain.bits.iter().enumerate() {
            offer(builder, self.domain.chains.len() + t, bits[*b].clone());
        }
    }
}

/// The trace for `rows` with the samples' values (`values[pos − first]`).
pub fn trace(
    table: &IndexTable,
    rows: &[IndexRow],
    values: &[Val],
    first: u32,
) -> RowMajorMatrix<Val> {
    let cols = table.width();
    let height = rows.len().next_power_of_two().max(super::MIN_ROWS);
    let mut out = vec![Val::ZERO; height * cols];
    for r in 0..height {
        let t = &mut out[r * cols..(r + 1) * cols];
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
            if let Check::Query { base, values } = row.check {
                t[QUERY] = Val::ONE;
                t[BASE] = Val::from_u32(base);
                t[VBASE] = Val::from_u32(values);
            }
        }
        for j in 0..BITS {
            t[BIT + j] = Val::from_u32((v >> j) & 1);
        }
        let high = Val::from_u32((v >> HIGH).count_ones()) - Val::from_usize(BITS - HIGH);
        t[INV] = high.try_inverse().unwrap_or(Val::ZERO);
        t[ALL_HIGH] = Val::ONE - high * t[INV];
        let mut col = CHAINS;
        for chain in &table.domain.chains {
            let mut acc = chain.init;
            if chain.factors.is_empty() {
                t[col] = acc;
                col += 1;
            }
            for (b, k) in &chain.factors {
                if (v >> b) & 1 == 1 {
                    acc *= *k;
                }
                t[col] = acc;
                col += 1;
            }
        }
    }
    RowMajorMatrix::new(out, cols)
}

#[cfg(test)]
mod tests {
    //! Each constraint of the table, corrupted in the fixture's index table (rows 0..=2: the
    //! proof-of-work checks; 3..=38: the query indices; then padding, which decomposes 0).
    use super::*;
    use crate::verifier::fixture::{refused, INDEX};

    fn corrupted(cell: (usize, usize), f: impl Fn(Val) -> Val) -> bool {
        let cols = crate::verifier::fixture::honest().traces[INDEX].width;
        refused(INDEX, cols, cell, f)
    }

    #[test]
    fn the_layout_copies_are_pinned() {
        assert!(corrupted((3, ACTIVE), |_| Val::ZERO), "active flag");
        assert!(corrupted((3, POS), |v| v + Val::ONE), "sample position");
        assert!(corrupted((3, QUERY), |_| Val::ZERO), "query flag");
        assert!(corrupted((3, BASE), |v| v + Val::ONE), "index id base");
    }

    #[test]
    fn the_domain_values_are_the_chains() {
        // Row 3 is query 0; the chains' columns follow the fixed ones (x: 9 factors, the
        // round's s⁻¹: 8, the final point: 8).
        assert!(
            corrupted((3, CHAINS + 4), |v| v + Val::ONE),
            "a factor of x"
        );
        assert!(
            corrupted((3, CHAINS + 8), |v| v + Val::ONE),
            "x itself (offered)"
        );
        assert!(
            corrupted((5, CHAINS + 12), |v| v + Val::ONE),
            "a factor of s⁻¹"
        );
        assert!(
            corrupted((5, CHAINS + 24), |v| v + Val::ONE),
            "the final point"
        );
        assert!(corrupted((3, VBASE), |v| v + Val::ONE), "the value id base");
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
        let cols = w.traces[INDEX].width;
        let row = &mut w.traces[INDEX].values[pad * cols..(pad + 1) * cols];
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
