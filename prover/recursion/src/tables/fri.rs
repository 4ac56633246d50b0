//! The FRI folding table: one row per query and commit-phase round.
//!
//! A round of arity `A = 2^a` (a ≤ 3) opens a row of `A` extension values `e_j` at the points
//! `s · ω_A^{rev_a(j)}`, where `s = g_{h+a}^{rev_h(i')}` for the folded index `i'` and folded
//! log height `h` (`TwoAdicFriFolding::fold_row`). The row checks and computes:
//!
//! 1. **The query's own value**: `Σ_j sel_j · e_j = in`, where `sel_j` is 1 exactly for the
//!    position `j` the index's `a` low bits (at this round) name, and `in` is the value the
//!    previous round folded to (round 0: the reduced opening from the program table).
//! 2. **The fold at β**: the Lagrange interpolation of the `A` values at β, as `a` arity-2
//!    folds with β, β², β⁴ on pairs `(e(x), e(−x))`:
//!    `f(x²) = (e(x) + e(−x))/2 + β'·(e(x) − e(−x))/(2x)`. The inverse points `1/(2x)` are
//!    `s⁻¹`, `s⁻²`, `s⁻⁴` times constants fixed by the arity; `s⁻¹` comes from the index table
//!    (a product of constants selected by the index bits).
//!
//! The row's `e_j` are read on the chunk bus from the openings table (the values hashed into
//! the round's commitment), β on the transcript bus, `in`, `s⁻¹` and the position bits on the
//! extension-value bus; the fold is offered there as the next round's `in` (or, for the last
//! round, the value the final polynomial must take at the query's final point).

use p3_air::{Air, AirBuilder, PermutationAirBuilder};
use p3_field::{BasedVectorSpace, Field, PrimeCharacteristicRing, TwoAdicField};
use p3_lookup::{Count, InteractionBuilder, LookupBus};
use p3_matrix::dense::RowMajorMatrix;
use p3_util::reverse_bits_len;

use super::ext::{coeffs, ext_mul, BUS as VALUES, D};
use super::tree::{CHUNK_BUS, DIGEST};
use starkscale_prover::config::{Challenge, Val};

/// Largest log arity of a round.
pub const MAX_LOG_ARITY: usize = 3;
const ARITY: usize = 1 << MAX_LOG_ARITY;
const CHUNKS: usize = ARITY * D / DIGEST;

// Copies of layout columns the buses read.
const ACTIVE: usize = 0;
const CH: usize = 1;
const RC: usize = CH + CHUNKS;
const IN_ID: usize = RC + CHUNKS;
const SINV_ID: usize = IN_ID + 1;
const BIT_ID: usize = SINV_ID + 1;
const HB: usize = BIT_ID + MAX_LOG_ARITY;
const OUT_ID: usize = HB + MAX_LOG_ARITY;
const BPOS: usize = OUT_ID + 1;
// Values.
const E: usize = BPOS + D;
const IN: usize = E + ARITY * D;
const SINV: usize = IN + D;
const SINV2: usize = SINV + 1;
const SINV4: usize = SINV2 + 1;
const BITS: usize = SINV4 + 1;
const SEL: usize = BITS + MAX_LOG_ARITY;
const BETA: usize = SEL + ARITY;
const BETA2: usize = BETA + D;
const BETA4: usize = BETA2 + D;
const SM1: usize = BETA4 + D;
const SM2: usize = SM1 + 4;
const SM3: usize = SM2 + 2;
const F1: usize = SM3 + 1;
const F2: usize = F1 + 4 * D;
const F3: usize = F2 + 2 * D;
const OUT: usize = F3 + D;
/// Width of the table.
pub const COLS: usize = OUT + D;

const P_ACTIVE: usize = 0;
const P_CH: usize = 1;
const P_RC: usize = P_CH + CHUNKS;
const P_IN_ID: usize = P_RC + CHUNKS;
const P_SINV_ID: usize = P_IN_ID + 1;
const P_BIT_ID: usize = P_SINV_ID + 1;
const P_HB: usize = P_BIT_ID + MAX_LOG_ARITY;
const P_OUT_ID: usize = P_HB + MAX_LOG_ARITY;
const P_BPOS: usize = P_OUT_ID + 1;
// Arity flags: a = 1, 2, 3.
const P_A: usize = P_BPOS + D;
// The fold constants: 1/(2c) for each level's pairs.
const P_MU1: usize = P_A + MAX_LOG_ARITY;
const P_MU2: usize = P_MU1 + 4;
const P_MU3: usize = P_MU2 + 2;
const PERIODIC: usize = P_MU3 + 1;

/// One row: a query's fold in one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FriRow {
    /// The round's log arity (1..=3).
    pub log_arity: usize,
    /// Chunk id of the round's leaf (its `A·4/8` chunks follow).
    pub chunk: u32,
    /// Transcript positions of β.
    pub beta: [u32; D],
    /// Id of the value entering the round.
    pub input: u32,
    /// Id of `s⁻¹`.
    pub sinv: u32,
    /// Ids of the position bits (the first `log_arity` are used).
    pub bits: [u32; MAX_LOG_ARITY],
    /// Id the fold is offered under.
    pub output: u32,
}

/// The constants of each level's arity-2 folds for arity `2^a`: `1/(2c)` for each pair's
/// point `c·s^(2^level)`, from the points `ω_A^{rev_a(j)}` of `fold_row`.
pub fn fold_constants(log_arity: usize) -> Vec<Vec<Val>> {
    let arity = 1usize << log_arity;
    let omega = Val::two_adic_generator(log_arity);
    let mut points: Vec<Val> = (0..arity)
        .map(|j| omega.exp_u64(reverse_bits_len(j, log_arity) as u64))
        .collect();
    let mut levels = Vec::with_capacity(log_arity);
    while points.len() > 1 {
        let mus = points
            .chunks_exact(2)
            .map(|pair| pair[0].double().inverse())
            .collect();
        levels.push(mus);
        points = points
            .chunks_exact(2)
            .map(|pair| pair[0].square())
            .collect();
    }
    levels
}

/// The fold of one round natively, exactly as the table computes it: `evals` at the points
/// `s·ω_A^{rev_a(j)}`, folded at β (`sinv` = s⁻¹).
pub fn fold(evals: &[Challenge], beta: Challenge, sinv: Val) -> Challenge {
    let log_arity = evals.len().trailing_zeros() as usize;
    let mut level: Vec<Challenge> = evals.to_vec();
    let (mut b, mut si) = (beta, sinv);
    for mus in fold_constants(log_arity) {
        level = level
            .chunks_exact(2)
            .zip(mus)
            .map(|(pair, mu)| (pair[0] + pair[1]).halve() + b * (pair[0] - pair[1]) * (si * mu))
            .collect();
        b = b.square();
        si = si.square();
    }
    level.first().copied().unwrap_or_default()
}

/// The FRI table of one proof.
#[derive(Clone, Debug)]
pub struct FriTable {
    periodic: Vec<Vec<Val>>,
}

fn height(rows: &[FriRow]) -> usize {
    rows.len().next_power_of_two().max(super::MIN_ROWS)
}

impl FriTable {
    /// The table for `rows`.
    pub fn new(rows: &[FriRow]) -> Self {
        let height = height(rows);
        let mut periodic = vec![vec![Val::ZERO; height]; PERIODIC];
        for (r, row) in rows.iter().enumerate() {
            let a = row.log_arity.clamp(1, MAX_LOG_ARITY);
            let mut set = |column: usize, value: Val| periodic[column][r] = value;
            set(P_ACTIVE, Val::ONE);
            for i in 0..((1 << a) * D / DIGEST) {
                set(P_CH + i, Val::from_u32(row.chunk) + Val::from_usize(i));
                set(P_RC + i, Val::ONE);
            }
            set(P_IN_ID, Val::from_u32(row.input));
            set(P_SINV_ID, Val::from_u32(row.sinv));
            for t in 0..a {
                set(P_BIT_ID + t, Val::from_u32(row.bits[t]));
                set(P_HB + t, Val::ONE);
            }
            set(P_OUT_ID, Val::from_u32(row.output));
            for (i, pos) in row.beta.iter().enumerate() {
                set(P_BPOS + i, Val::from_u32(*pos));
            }
            set(P_A + a - 1, Val::ONE);
            for (level, mus) in fold_constants(a).into_iter().enumerate() {
                let base = [P_MU1, P_MU2, P_MU3][level];
                for (t, mu) in mus.into_iter().enumerate() {
                    set(base + t, mu);
                }
            }
        }
        Self { periodic }
    }
}

periodic_table!(FriTable, COLS);

impl<AB> Air<AB> for FriTable
where
    AB: AirBuilder<F = Val> + PermutationAirBuilder + InteractionBuilder,
{
    fn eval(&self, builder: &mut AB) {
        let (_, local, _) = super::window(builder);
        let periodic = super::periodic(builder);
        let p = |i: usize| periodic[i].clone();
        let c = |i: usize| local[i].clone();
        let ext = |at: usize| -> Vec<AB::Expr> { local[at..at + D].to_vec() };
        let mut pins = vec![
            (ACTIVE, P_ACTIVE),
            (IN_ID, P_IN_ID),
            (SINV_ID, P_SINV_ID),
            (OUT_ID, P_OUT_ID),
        ];
        pins.extend((0..CHUNKS).map(|i| (CH + i, P_CH + i)));
        pins.extend((0..CHUNKS).map(|i| (RC + i, P_RC + i)));
        pins.extend((0..MAX_LOG_ARITY).map(|t| (BIT_ID + t, P_BIT_ID + t)));
        pins.extend((0..MAX_LOG_ARITY).map(|t| (HB + t, P_HB + t)));
        pins.extend((0..D).map(|i| (BPOS + i, P_BPOS + i)));
        for (column, source) in pins {
            builder.assert_eq(c(column), p(source));
        }

        // 1. The query's own value sits at the position its bits name.
        for t in 0..MAX_LOG_ARITY {
            builder.assert_zero((AB::Expr::ONE - c(HB + t)) * c(BITS + t));
        }
        for j in 0..ARITY {
            let sel = (0..MAX_LOG_ARITY).fold(AB::Expr::ONE, |acc, t| {
                let bit = c(BITS + t);
                acc * if (j >> t) & 1 == 1 {
                    bit
                } else {
                    AB::Expr::ONE - bit
                }
            });
            builder.assert_eq(c(SEL + j), sel);
        }
        for i in 0..D {
            let chosen =
                (0..ARITY).fold(AB::Expr::ZERO, |acc, j| acc + c(SEL + j) * c(E + j * D + i));
            builder.assert_eq(chosen, c(IN + i));
        }

        // 2. Powers of s⁻¹ and β, the fold constants times s⁻ᵏ.
        builder.assert_eq(c(SINV2), c(SINV) * c(SINV));
        builder.assert_eq(c(SINV4), c(SINV2) * c(SINV2));
        for (to, from) in [(BETA2, BETA), (BETA4, BETA2)] {
            let sq = ext_mul(&ext(from), &ext(from));
            for (i, v) in sq.into_iter().enumerate() {
                builder.assert_eq(c(to + i), v);
            }
        }
        for t in 0..4 {
            builder.assert_eq(c(SM1 + t), c(SINV) * p(P_MU1 + t));
        }
        for t in 0..2 {
            builder.assert_eq(c(SM2 + t), c(SINV2) * p(P_MU2 + t));
        }
        builder.assert_eq(c(SM3), c(SINV4) * p(P_MU3));
        // The three levels of arity-2 folds (degree 3).
        let half = AB::Expr::from(Val::ONE.halve());
        let level_fold =
            |builder: &mut AB, pairs: usize, from: usize, to: usize, b: usize, sm: usize| {
                for t in 0..pairs {
                    let (lo, hi) = (ext(from + 2 * t * D), ext(from + (2 * t + 1) * D));
                    let diff: Vec<AB::Expr> =
                        (0..D).map(|i| lo[i].clone() - hi[i].clone()).collect();
                    let bd = ext_mul(&ext(b), &diff);
                    for i in 0..D {
                        let f = (lo[i].clone() + hi[i].clone()) * half.clone()
                            + bd[i].clone() * c(sm + t);
                        builder.assert_eq(c(to + t * D + i), f);
                    }
                }
            };
        level_fold(builder, 4, E, F1, BETA, SM1);
        level_fold(builder, 2, F1, F2, BETA2, SM2);
        level_fold(builder, 1, F2, F3, BETA4, SM3);
        for i in 0..D {
            let out = p(P_A) * c(F1 + i) + p(P_A + 1) * c(F2 + i) + p(P_A + 2) * c(F3 + i);
            builder.assert_eq(c(OUT + i), out);
        }

        // Buses.
        let chunks = LookupBus::new(CHUNK_BUS);
        for ch in 0..CHUNKS {
            let key: Vec<AB::Expr> = std::iter::once(c(CH + ch))
                .chain((0..DIGEST).map(|v| c(E + ch * DIGEST + v)))
                .collect();
            chunks.lookup_key(builder, key, Count::bounded(c(RC + ch), 1));
        }
        let values = LookupBus::new(VALUES);
        let key = |id: usize, at: usize| -> Vec<AB::Expr> {
            std::iter::once(c(id)).chain(ext(at)).collect()
        };
        let base = |id: AB::Expr, v: AB::Expr| -> Vec<AB::Expr> {
            vec![id, v, AB::Expr::ZERO, AB::Expr::ZERO, AB::Expr::ZERO]
        };
        values.lookup_key(builder, key(IN_ID, IN), Count::bounded(c(ACTIVE), 1));
        values.lookup_key(
            builder,
            base(c(SINV_ID), c(SINV)),
            Count::bounded(c(ACTIVE), 1),
        );
        for t in 0..MAX_LOG_ARITY {
            values.lookup_key(
                builder,
                base(c(BIT_ID + t), c(BITS + t)),
                Count::bounded(c(HB + t), 1),
            );
        }
        values.table_entry(builder, key(OUT_ID, OUT), c(ACTIVE));
        let transcript = LookupBus::new(super::transcript::BUS);
        for i in 0..D {
            transcript.lookup_key(
                builder,
                vec![c(BPOS + i), c(BETA + i)],
                Count::bounded(c(ACTIVE), 1),
            );
        }
    }
}

/// One row's witness: the round's leaf values (`A` extension values), the value entering it,
/// β, s⁻¹ and the position bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FriWitness {
    /// The leaf's values.
    pub evals: Vec<Challenge>,
    /// The value entering the round.
    pub input: Challenge,
    /// The folding challenge.
    pub beta: Challenge,
    /// s⁻¹.
    pub sinv: Val,
    /// The position bits (low first).
    pub bits: Vec<Val>,
}

/// The table's trace for `rows` with their witnesses.
pub fn trace(rows: &[FriRow], witnesses: &[FriWitness]) -> RowMajorMatrix<Val> {
    let height = height(rows);
    let mut out = vec![Val::ZERO; height * COLS];
    let ones_sel = |bits: &[Val], j: usize| -> Val {
        (0..MAX_LOG_ARITY).fold(Val::ONE, |acc, t| {
            let bit = bits.get(t).copied().unwrap_or_default();
            acc * if (j >> t) & 1 == 1 {
                bit
            } else {
                Val::ONE - bit
            }
        })
    };
    for r in 0..height {
        let t = &mut out[r * COLS..(r + 1) * COLS];
        let (Some(row), Some(w)) = (rows.get(r), witnesses.get(r)) else {
            // Padding: every value zero; the selector of position 0 is 1.
            t[SEL] = Val::ONE;
            continue;
        };
        let a = row.log_arity.clamp(1, MAX_LOG_ARITY);
        t[ACTIVE] = Val::ONE;
        for i in 0..((1 << a) * D / DIGEST) {
            t[CH + i] = Val::from_u32(row.chunk) + Val::from_usize(i);
            t[RC + i] = Val::ONE;
        }
        t[IN_ID] = Val::from_u32(row.input);
        t[SINV_ID] = Val::from_u32(row.sinv);
        for b in 0..a {
            t[BIT_ID + b] = Val::from_u32(row.bits[b]);
            t[HB + b] = Val::ONE;
            t[BITS + b] = w.bits.get(b).copied().unwrap_or_default();
        }
        t[OUT_ID] = Val::from_u32(row.output);
        for (i, pos) in row.beta.iter().enumerate() {
            t[BPOS + i] = Val::from_u32(*pos);
        }
        for (j, e) in w.evals.iter().take(ARITY).enumerate() {
            t[E + j * D..E + (j + 1) * D].copy_from_slice(&coeffs(*e));
        }
        t[IN..IN + D].copy_from_slice(&coeffs(w.input));
        let (s1, s2) = (w.sinv, w.sinv.square());
        let s4 = s2.square();
        t[SINV] = s1;
        t[SINV2] = s2;
        t[SINV4] = s4;
        let bits: Vec<Val> = t[BITS..BITS + MAX_LOG_ARITY].to_vec();
        for j in 0..ARITY {
            t[SEL + j] = ones_sel(&bits, j);
        }
        let (b1, b2) = (w.beta, w.beta.square());
        let b4 = b2.square();
        t[BETA..BETA + D].copy_from_slice(&coeffs(b1));
        t[BETA2..BETA2 + D].copy_from_slice(&coeffs(b2));
        t[BETA4..BETA4 + D].copy_from_slice(&coeffs(b4));
        let mus = fold_constants(a);
        let mu = |level: usize, i: usize| -> Val {
            mus.get(level)
                .and_then(|m| m.get(i))
                .copied()
                .unwrap_or_default()
        };
        let sm1: Vec<Val> = (0..4).map(|i| s1 * mu(0, i)).collect();
        let sm2: Vec<Val> = (0..2).map(|i| s2 * mu(1, i)).collect();
        let sm3 = s4 * mu(2, 0);
        t[SM1..SM1 + 4].copy_from_slice(&sm1);
        t[SM2..SM2 + 2].copy_from_slice(&sm2);
        t[SM3] = sm3;
        let e = |j: usize| w.evals.get(j).copied().unwrap_or_default();
        let f = |lo: Challenge, hi: Challenge, b: Challenge, sm: Val| {
            (lo + hi).halve() + b * (lo - hi) * sm
        };
        let f1: Vec<Challenge> = (0..4)
            .map(|i| f(e(2 * i), e(2 * i + 1), b1, sm1[i]))
            .collect();
        let f2: Vec<Challenge> = (0..2)
            .map(|i| f(f1[2 * i], f1[2 * i + 1], b2, sm2[i]))
            .collect();
        let f3 = f(f2[0], f2[1], b4, sm3);
        for (i, v) in f1.iter().enumerate() {
            t[F1 + i * D..F1 + (i + 1) * D].copy_from_slice(&coeffs(*v));
        }
        for (i, v) in f2.iter().enumerate() {
            t[F2 + i * D..F2 + (i + 1) * D].copy_from_slice(&coeffs(*v));
        }
        t[F3..F3 + D].copy_from_slice(&coeffs(f3));
        let out_v = [f1[0], f2[0], f3][a - 1];
        t[OUT..OUT + D].copy_from_slice(&coeffs(out_v));
    }
    RowMajorMatrix::new(out, COLS)
}

/// The challenge-field value of coefficients.
pub fn from_coeffs(c: &[Val]) -> Challenge {
    Challenge::from_basis_coefficients_fn(|i| c.get(i).copied().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use p3_fri::{FriFoldingStrategy, TwoAdicFriFolding};

    use super::*;

    /// The table's fold (arity-2 folds with β, β², β⁴) equals Plonky3's `fold_row` (Lagrange
    /// interpolation) at every arity and several indices.
    #[test]
    fn the_fold_is_plonky3s() {
        let folding: TwoAdicFriFolding<(), ()> = TwoAdicFriFolding(std::marker::PhantomData);
        let beta = from_coeffs(&[Val::new(5), Val::new(77), Val::new(123_456), Val::new(9)]);
        for log_arity in 1..=MAX_LOG_ARITY {
            let evals: Vec<Challenge> = (0..1u32 << log_arity)
                .map(|j| {
                    from_coeffs(&[
                        Val::new(3 * j + 1),
                        Val::new(j * j),
                        Val::new(7),
                        Val::new(j),
                    ])
                })
                .collect();
            for (index, log_height) in [(0usize, 4usize), (5, 4), (11, 6), (1, 1)] {
                let native: Challenge = FriFoldingStrategy::<Val, Challenge>::fold_row(
                    &folding,
                    index,
                    log_height,
                    log_arity,
                    beta,
                    evals.iter().copied(),
                );
                let s = Val::two_adic_generator(log_height + log_arity)
                    .exp_u64(reverse_bits_len(index, log_height) as u64);
                assert_eq!(
                    fold(&evals, beta, s.inverse()),
                    native,
                    "arity 2^{log_arity}"
                );
            }
        }
    }
}

#[cfg(test)]
mod corruption {
    //! Each constraint of the table, corrupted in the fixture's FRI table (one round of arity
    //! 2: row q folds query q; only position bit 0 is used).
    use super::*;
    use crate::verifier::fixture::{refused, FRI};

    fn corrupted(cell: (usize, usize)) -> bool {
        refused(FRI, COLS, cell, |v| v + Val::ONE)
    }

    #[test]
    fn the_layout_copies_are_pinned() {
        for (cell, what) in [
            ((3, ACTIVE), "active flag"),
            ((3, CH), "chunk id"),
            ((3, RC), "chunk read flag"),
            ((3, IN_ID), "input id"),
            ((3, SINV_ID), "s⁻¹ id"),
            ((3, BIT_ID), "bit id"),
            ((3, HB), "bit flag"),
            ((3, OUT_ID), "output id"),
            ((3, BPOS + 2), "β position"),
        ] {
            assert!(corrupted(cell), "{what}");
        }
    }

    #[test]
    fn the_querys_own_value_is_selected_by_its_bits() {
        assert!(corrupted((2, BITS + 1)), "a bit beyond the arity");
        assert!(corrupted((2, BITS)), "the position bit (read on the bus)");
        assert!(corrupted((2, SEL + 1)), "a selector");
        assert!(corrupted((2, IN + 1)), "the value entering the round");
        assert!(
            corrupted((2, E + 4)),
            "a leaf value (read on the chunk bus)"
        );
    }

    #[test]
    fn the_fold_is_enforced() {
        assert!(corrupted((4, SINV)), "s⁻¹ (read on the bus)");
        assert!(corrupted((4, SINV2)), "s⁻²");
        assert!(corrupted((4, SINV4)), "s⁻⁴");
        assert!(corrupted((4, BETA + 3)), "β (read on the transcript)");
        assert!(corrupted((4, BETA2)), "β²");
        assert!(corrupted((4, BETA4 + 1)), "β⁴");
        assert!(corrupted((4, SM1)), "s⁻¹ times the level-1 constant");
        assert!(corrupted((4, SM2 + 1)), "s⁻² times a level-2 constant");
        assert!(corrupted((4, SM3)), "s⁻⁴ times the level-3 constant");
        assert!(corrupted((4, F1 + 2)), "a level-1 fold");
        assert!(corrupted((4, F2 + 5)), "a level-2 fold");
        assert!(corrupted((4, F3)), "the level-3 fold");
        assert!(corrupted((4, OUT + 3)), "the offered fold");
    }
}
