//! The extension-field program table: a straight-line program over the challenge field
//! (KoalaBear⁴, `X^4 = 3`), one operation per row. It is where the shard verifier's arithmetic
//! on challenges and opened values runs: the DEEP quotient, the final polynomial, the
//! constraint check at ζ.
//!
//! Every value has an id. A row produces its result `(id, c)` on [`BUS`] with a free
//! multiplicity, and looks up its operands `(id_a, a)`, `(id_b, b)` there, so an operand is
//! exactly a value some row (or another table offering on the bus: the index, DEEP and FRI
//! tables) produced. A row may also read one extension value (or one base value) `t` on the
//! transcript bus. What each row computes:
//!
//! - **general**: `c = m·a·b + l_a·a + l_b·b + l_t·t + κ` with `m, l_a, l_b, l_t` base
//!   constants and `κ` an extension constant, all fixed by the program (add, subtract,
//!   multiply, multiply-add of a transcript value, constants, Horner steps);
//! - **inverse**: `a·c = 1` (so `a ≠ 0`);
//! - **assertion**: the general formula with `c = 0` (an equality the verifier checks);
//! - **input**: in a stand-alone table (tests), row 0's `c` is the first four public values and
//!   the last row's `c` the last four.
//!
//! The program (which rows are real, their kinds, constants, operand ids and transcript
//! positions) is fixed by the verifier and enters as periodic columns; the prover only
//! supplies the values.

use std::borrow::Cow;
use std::collections::HashMap;

use p3_air::{Air, AirBuilder, BaseAir, PermutationAirBuilder};
use p3_field::{BasedVectorSpace, PrimeCharacteristicRing};
use p3_lookup::{Count, InteractionBuilder, LookupBus};
use p3_matrix::dense::RowMajorMatrix;

pub use super::program::{ExtOp, ExtProgram, Kind, Op, Program, Read, Ref};
use crate::error::ProgramError;
use starkscale_prover::config::{Challenge, Val};

/// Name of the bus carrying `(id, value[4])` tuples.
pub const BUS: &str = "ext-values";
/// Extension degree.
pub const D: usize = 4;
/// `X^4 = W` in the challenge field.
pub const W: u32 = 3;

// Witness columns. The first ones are copies of program columns that the buses read (pinned
// to them): the active flag, operand and result ids, read flags, transcript positions and
// masks.
const ACTIVE: usize = 0;
const READ_A: usize = 1;
const ID_A: usize = 2;
const ID_B: usize = 3;
const ID_C: usize = 4;
/// First column of operand `a`.
pub const A: usize = 5;
/// First column of operand `b`.
pub const B: usize = A + D;
/// First column of the result `c`.
pub const C: usize = B + D;
const MULT: usize = C + D;
const READ_B: usize = MULT + 1;
/// First column of the transcript value `t`.
pub const T: usize = READ_B + 1;
const T_POS: usize = T + D;
const T_MASK: usize = T_POS + D;
/// Width of the table.
pub const COLS: usize = T_MASK + D;
/// Public values of a stand-alone table: the input, then the output.
pub const NUM_PUBLIC: usize = 2 * D;

// Program (periodic) columns.
const P_ACTIVE: usize = 0;
const P_INPUT: usize = 1;
const P_OUTPUT: usize = 2;
const P_GEN: usize = 3;
const P_INV: usize = 4;
const P_ZERO: usize = 5;
const P_M: usize = 6;
const P_LA: usize = 7;
const P_LB: usize = 8;
const P_LT: usize = 9;
const P_K: usize = 10;
const P_READ_A: usize = P_K + D;
const P_READ_B: usize = P_READ_A + 1;
const P_ID_A: usize = P_READ_B + 1;
const P_ID_B: usize = P_ID_A + 1;
const P_ID_C: usize = P_ID_B + 1;
const P_T_POS: usize = P_ID_C + 1;
const P_T_MASK: usize = P_T_POS + D;
const PERIODIC: usize = P_T_MASK + D;

/// The coefficients of a challenge-field element.
pub fn coeffs(x: Challenge) -> [Val; D] {
    let c = x.as_basis_coefficients_slice();
    std::array::from_fn(|i| c[i])
}

/// The public values of a stand-alone run: input and output coefficients.
pub fn public_values(input: Challenge, output: Challenge) -> Vec<Val> {
    let mut out = coeffs(input).to_vec();
    out.extend_from_slice(&coeffs(output));
    out
}

/// The program table.
#[derive(Clone, Debug)]
pub struct ExtArithTable {
    periodic: Vec<Vec<Val>>,
    // Input and output bound to public values (a stand-alone table).
    public_io: bool,
}

/// Rows of the table for `program`.
fn height(program: &Program) -> usize {
    program.ops.len().next_power_of_two().max(super::MIN_ROWS)
}

impl ExtArithTable {
    /// The table running `program` in a proof's circuit: value ids start at `offset`, and
    /// transcript positions and external ids are moved by `offset` too (the proof's range).
    pub fn for_program(program: &Program, offset: u32) -> Self {
        Self::build(program, offset, false)
    }

    /// A stand-alone table of `program` with public input and output.
    pub fn new(program: &ExtProgram) -> Self {
        Self::build(&program.program(), 0, true)
    }

    fn build(program: &Program, offset: u32, public_io: bool) -> Self {
        let id = |r: Ref| -> Val {
            match r {
                Ref::Local(i) => Val::from_u32(offset) + Val::from_usize(i),
                Ref::Extern(e) => Val::from_u32(offset) + Val::from_u32(e),
            }
        };
        let height = height(program);
        let mut periodic = vec![vec![Val::ZERO; height]; PERIODIC];
        for (r, op) in program.ops.iter().enumerate() {
            let mut set = |column: usize, value: Val| periodic[column][r] = value;
            set(P_ACTIVE, Val::ONE);
            set(P_ID_C, id(Ref::Local(r)));
            match op.kind {
                Kind::Input => set(P_INPUT, Val::ONE),
                Kind::Inverse => set(P_INV, Val::ONE),
                Kind::General => set(P_GEN, Val::ONE),
                Kind::AssertZero => {
                    set(P_GEN, Val::ONE);
                    set(P_ZERO, Val::ONE);
                }
            }
            if matches!(op.kind, Kind::General | Kind::AssertZero) {
                set(P_M, op.m);
                set(P_LA, op.la);
                set(P_LB, op.lb);
                set(P_LT, op.lt);
                for (i, k) in coeffs(op.k).into_iter().enumerate() {
                    set(P_K + i, k);
                }
            }
            if let Some(a) = op.a {
                set(P_READ_A, Val::ONE);
                set(P_ID_A, id(a));
            }
            if let Some(b) = op.b {
                set(P_READ_B, Val::ONE);
                set(P_ID_B, id(b));
            }
            match op.t {
                Some(Read::Ext(p)) => {
                    for (i, pos) in p.iter().enumerate() {
                        set(P_T_POS + i, Val::from_u32(offset + pos));
                        set(P_T_MASK + i, Val::ONE);
                    }
                }
                Some(Read::Base(pos)) => {
                    set(P_T_POS, Val::from_u32(offset + pos));
                    set(P_T_MASK, Val::ONE);
                }
                None => {}
            }
        }
        if public_io {
            if let Some(last) = program.ops.len().checked_sub(1) {
                periodic[P_OUTPUT][last] = Val::ONE;
            }
        }
        Self {
            periodic,
            public_io,
        }
    }
}

impl BaseAir<Val> for ExtArithTable {
    fn width(&self) -> usize {
        COLS
    }

    fn num_public_values(&self) -> usize {
        if self.public_io {
            NUM_PUBLIC
        } else {
            0
        }
    }

    fn num_periodic_columns(&self) -> usize {
        PERIODIC
    }

    fn periodic_columns(&self) -> Cow<'_, [Vec<Val>]> {
        Cow::Borrowed(&self.periodic)
    }
}

/// `a · b` in `F[X]/(X^4 − W)` on coefficient expressions.
pub(crate) fn ext_mul<E: PrimeCharacteristicRing + Clone>(a: &[E], b: &[E]) -> [E; D] {
    let w = E::from_u32(W);
    let p = |i: usize, j: usize| a[i].clone() * b[j].clone();
    [
        p(0, 0) + w.clone() * (p(1, 3) + p(2, 2) + p(3, 1)),
        p(0, 1) + p(1, 0) + w.clone() * (p(2, 3) + p(3, 2)),
        p(0, 2) + p(1, 1) + p(2, 0) + w * p(3, 3),
        p(0, 3) + p(1, 2) + p(2, 1) + p(3, 0),
    ]
}

impl<AB> Air<AB> for ExtArithTable
where
    AB: AirBuilder<F = Val> + PermutationAirBuilder + InteractionBuilder,
{
    fn eval(&self, builder: &mut AB) {
        let (public, local, _) = super::window(builder);
        let periodic = super::periodic(builder);
        let p = |i: usize| periodic[i].clone();
        let span = |start: usize| -> Vec<AB::Expr> { local[start..start + D].to_vec() };
        let (a, b, c, t) = (span(A), span(B), span(C), span(T));

        // The bus reads copies of the program columns, pinned to them here.
        let mut pins = vec![
            (ACTIVE, P_ACTIVE),
            (READ_A, P_READ_A),
            (READ_B, P_READ_B),
            (ID_A, P_ID_A),
            (ID_B, P_ID_B),
            (ID_C, P_ID_C),
        ];
        pins.extend((0..D).map(|i| (T_POS + i, P_T_POS + i)));
        pins.extend((0..D).map(|i| (T_MASK + i, P_T_MASK + i)));
        for (column, program) in pins {
            builder.assert_eq(local[column].clone(), p(program));
        }

        // Operands and transcript coefficients that are not read are zero.
        for i in 0..D {
            let (ra, rb) = (local[READ_A].clone(), local[READ_B].clone());
            builder.assert_zero((AB::Expr::ONE - ra) * a[i].clone());
            builder.assert_zero((AB::Expr::ONE - rb) * b[i].clone());
            builder.assert_zero((AB::Expr::ONE - local[T_MASK + i].clone()) * t[i].clone());
        }

        // General rows (degree 3): c = m·a·b + l_a·a + l_b·b + l_t·t + κ. The coefficients are
        // zero on every other row, so the constraint holds there with the flag zero.
        let product = ext_mul(&a, &b);
        for i in 0..D {
            let formula = p(P_M) * product[i].clone()
                + p(P_LA) * a[i].clone()
                + p(P_LB) * b[i].clone()
                + p(P_LT) * t[i].clone()
                + p(P_K + i);
            builder.assert_zero(p(P_GEN) * c[i].clone() - formula);
            // Assertions: the result is zero.
            builder.assert_zero(p(P_ZERO) * c[i].clone());
        }
        // Inverse rows: a·c = 1.
        let inverse = ext_mul(&a, &c);
        for (i, v) in inverse.into_iter().enumerate() {
            builder.assert_zero(p(P_INV) * (v - AB::Expr::from_bool(i == 0)));
        }
        // Stand-alone tables: the input and the output are public values. A proof's program
        // has no input rows: one would offer a free value, so the table cannot be proved with
        // one (the constraint below cannot hold on it).
        if self.public_io {
            for i in 0..D {
                builder.assert_zero(p(P_INPUT) * (c[i].clone() - public[i].clone()));
                builder.assert_zero(p(P_OUTPUT) * (c[i].clone() - public[D + i].clone()));
            }
        } else {
            builder.assert_zero(p(P_INPUT));
        }

        // Operands are values produced by other rows or tables; results are offered to them
        // (padding rows offer nothing).
        let bus = LookupBus::new(BUS);
        let key = |id: usize, v: &[AB::Expr]| -> Vec<AB::Expr> {
            std::iter::once(local[id].clone())
                .chain(v.iter().cloned())
                .collect()
        };
        bus.lookup_key(
            builder,
            key(ID_A, &a),
            Count::bounded(local[READ_A].clone(), 1),
        );
        bus.lookup_key(
            builder,
            key(ID_B, &b),
            Count::bounded(local[READ_B].clone(), 1),
        );
        bus.table_entry(
            builder,
            key(ID_C, &c),
            local[ACTIVE].clone() * local[MULT].clone(),
        );
        let transcript = LookupBus::new(super::transcript::BUS);
        for i in 0..D {
            transcript.lookup_key(
                builder,
                vec![local[T_POS + i].clone(), t[i].clone()],
                Count::bounded(local[T_MASK + i].clone(), 1),
            );
        }
    }
}

/// The table's trace for `program` with the values of [`Program::run`]; `uses` counts how
/// many times each value is read (by this program and by other tables). `offset` is the
/// table's [`ExtArithTable::for_program`] offset.
pub fn program_trace(
    program: &Program,
    values: &[Challenge],
    transcript: impl Fn(u32) -> Option<Val>,
    external: impl Fn(u32) -> Option<Challenge>,
    extra_uses: &HashMap<usize, u32>,
    offset: u32,
) -> RowMajorMatrix<Val> {
    let id = |r: Ref| -> Val {
        match r {
            Ref::Local(i) => Val::from_u32(offset) + Val::from_usize(i),
            Ref::Extern(e) => Val::from_u32(offset) + Val::from_u32(e),
        }
    };
    let mut uses = vec![0u32; values.len()];
    for op in &program.ops {
        for r in [op.a, op.b].into_iter().flatten() {
            if let Ref::Local(i) = r {
                if let Some(u) = uses.get_mut(i) {
                    *u += 1;
                }
            }
        }
    }
    for (i, n) in extra_uses {
        if let Some(u) = uses.get_mut(*i) {
            *u += n;
        }
    }
    let value_of = |r: Ref| -> Challenge {
        match r {
            Ref::Local(i) => values.get(i).copied().unwrap_or_default(),
            Ref::Extern(e) => external(e).unwrap_or_default(),
        }
    };
    let height = height(program);
    let mut rows = vec![Val::ZERO; height * COLS];
    for (r, op) in program.ops.iter().enumerate() {
        let row = &mut rows[r * COLS..(r + 1) * COLS];
        row[ACTIVE] = Val::ONE;
        row[ID_C] = id(Ref::Local(r));
        row[C..C + D].copy_from_slice(&coeffs(values.get(r).copied().unwrap_or_default()));
        row[MULT] = Val::from_u32(uses[r]);
        if let Some(a) = op.a {
            row[READ_A] = Val::ONE;
            row[ID_A] = id(a);
            row[A..A + D].copy_from_slice(&coeffs(value_of(a)));
        }
        if let Some(b) = op.b {
            row[READ_B] = Val::ONE;
            row[ID_B] = id(b);
            row[B..B + D].copy_from_slice(&coeffs(value_of(b)));
        }
        if let Some(read) = op.t {
            let positions: Vec<u32> = match read {
                Read::Ext(p) => p.to_vec(),
                Read::Base(p) => vec![p],
            };
            for (i, pos) in positions.into_iter().enumerate() {
                row[T_POS + i] = Val::from_u32(offset + pos);
                row[T_MASK + i] = Val::ONE;
                row[T + i] = transcript(pos).unwrap_or_default();
            }
        }
    }
    RowMajorMatrix::new(rows, COLS)
}

/// The stand-alone table's trace for `program` run on `input`, and the output.
pub fn trace(
    program: &ExtProgram,
    input: Challenge,
) -> Result<(RowMajorMatrix<Val>, Challenge), ProgramError> {
    let general = program.program();
    let values = general.run(|_| None, |_| None, input, false)?;
    let output = *values.last().ok_or(ProgramError::Empty)?;
    let trace = program_trace(&general, &values, |_| None, |_| None, &HashMap::new(), 0);
    Ok((trace, output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_multiplication_is_the_challenge_fields() {
        let x = Challenge::from_basis_coefficients_fn(|i| Val::from_u32(7 + 11 * i as u32));
        let y =
            Challenge::from_basis_coefficients_fn(|i| Val::from_u32(1_000_003 * (i as u32 + 2)));
        let a = coeffs(x);
        let b = coeffs(y);
        assert_eq!(ext_mul(&a, &b), coeffs(x * y));
    }
}

#[cfg(test)]
mod program_tests {
    //! Each constraint of the program table, corrupted in the fixture's program (8 × 20
    //! weights, one vector, N = 64): row 0 reads ζ, rows 3..=27 compute S_ζ, 28..=47 the dot
    //! product at ζ, 113 is `y − dot`, 129 the inverse of ζ^N − 1, 131 the constraint
    //! assertion, then per query (from row 132) the DEEP quotient and the final polynomial.
    use super::*;
    use crate::verifier::fixture::{refused, EXT};

    fn corrupted(cell: (usize, usize)) -> bool {
        refused(EXT, COLS, cell, |v| v + Val::ONE)
    }

    #[test]
    fn the_program_copies_are_pinned() {
        for (cell, what) in [
            ((113, ACTIVE), "active flag"),
            ((113, READ_A), "read flag of a"),
            ((113, READ_B), "read flag of b"),
            ((113, ID_A), "operand id of a"),
            ((113, ID_B), "operand id of b"),
            ((113, ID_C), "result id"),
            ((0, T_POS + 1), "transcript position"),
            ((0, T_MASK + 2), "transcript mask"),
        ] {
            assert!(corrupted(cell), "{what}");
        }
    }

    #[test]
    fn unread_inputs_are_zero() {
        assert!(corrupted((0, A)), "an operand the row does not read");
        assert!(
            corrupted((0, B + 2)),
            "a second operand the row does not read"
        );
        assert!(
            corrupted((113, T + 1)),
            "a transcript value the row does not read"
        );
    }

    /// An input row in a proof's program would offer a value nothing constrains: such a table
    /// cannot be proved (found by a review).
    #[test]
    fn a_proofs_program_has_no_free_input() {
        let kappa = Challenge::from_basis_coefficients_fn(|i| Val::from_usize(i + 5));
        let mut p = Program::default();
        let input = p.push(Op::input());
        let k = p.push(Op::constant(kappa));
        p.push(Op::assert_eq(input, k));
        let trace = program_trace(
            &p,
            &[kappa, kappa, Challenge::ZERO],
            |_| None,
            |_| None,
            &HashMap::new(),
            0,
        );
        let w = crate::circuit::Witness {
            tables: vec![crate::circuit::Table::Ext(ExtArithTable::for_program(
                &p, 0,
            ))],
            traces: vec![trace],
            public_values: vec![vec![]],
        };
        assert!(w.prove_and_verify().is_err());
    }

    #[test]
    fn each_kind_of_row_is_enforced() {
        assert!(corrupted((0, T)), "a transcript read (the transcript bus)");
        assert!(
            corrupted((10, C + 1)),
            "a multiply-add of a transcript value"
        );
        assert!(corrupted((30, C)), "a scaled transcript read");
        assert!(corrupted((60, C + 2)), "a Horner step over constants");
        assert!(corrupted((113, C + 3)), "a subtraction");
        assert!(corrupted((129, C)), "an inverse");
        assert!(corrupted((131, C)), "an assertion");
        assert!(
            corrupted((137, MULT)),
            "a result's multiplicity (the value bus)"
        );
    }
}
