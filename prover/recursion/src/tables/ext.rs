//! The extension-field arithmetic table: a straight-line program over the challenge field
//! (KoalaBear⁴, `X^4 = 3`), one operation per row. Every value has an id (its row); a row
//! produces its result `(id, c)` on [`BUS`] with a multiplicity and looks up its operands
//! `(id_a, a)`, `(id_b, b)` there, so an operand is exactly a value another row produced.
//!
//! The program (which rows are real, which add or multiply, the operand and result ids) is
//! fixed by the verifier and enters as periodic columns; the prover only supplies the values.
//! Row 0 is the program's input, bound to the first four public values (in the full circuit
//! it will come from the transcript table, e.g. the out-of-domain point ζ); the last row's
//! result is bound to the last four public values. The verifier's arithmetic on challenges
//! (powers of ζ, vanishing polynomial, folding) is built from these rows.

use std::borrow::Cow;

use p3_air::{Air, AirBuilder, BaseAir, PermutationAirBuilder};
use p3_field::{BasedVectorSpace, PrimeCharacteristicRing};
use p3_lookup::{Count, InteractionBuilder, LookupBus};
use p3_matrix::dense::RowMajorMatrix;

use starkscale_prover::config::{Challenge, Val};

/// Name of the bus carrying `(id, value[4])` tuples.
pub const BUS: &str = "ext-values";
/// Extension degree.
pub const D: usize = 4;
/// `X^4 = W` in the challenge field.
pub const W: u32 = 3;

// Copies of the program's active flag, "is an operation", and ids, for the bus (interactions
// cannot read periodic columns); each is constrained equal to its periodic column.
const ACTIVE: usize = 0;
const OP_ROW: usize = 1;
const ID_A: usize = 2;
const ID_B: usize = 3;
const ID_C: usize = 4;
const A: usize = 5;
const B: usize = A + D;
const C: usize = B + D;
const MULT: usize = C + D;
// Copy of the input flag, for the transcript bus.
const IN_ROW: usize = MULT + 1;
/// Width of the table.
pub const COLS: usize = IN_ROW + 1;
/// Public values: the input, then the output.
pub const NUM_PUBLIC: usize = 2 * D;

// Periodic (program) columns.
const P_ACTIVE: usize = 0;
const P_INPUT: usize = 1;
const P_OUTPUT: usize = 2;
const P_MUL: usize = 3;
const P_ID_A: usize = 4;
const P_ID_B: usize = 5;
const P_ID_C: usize = 6;
// An add row (P_MUL marks the multiply rows; neither is set on the input row or padding).
const P_ADD: usize = 7;
const PERIODIC: usize = 8;

/// One operation; operands are ids of earlier values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtOp {
    /// `a + b`.
    Add(usize, usize),
    /// `a · b`.
    Mul(usize, usize),
}

/// A program: value 0 is the input, value `i + 1` the result of `ops[i]`; the last value is
/// the output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtProgram {
    /// The operations in order.
    pub ops: Vec<ExtOp>,
}

impl ExtProgram {
    /// `x^(2^n)` by `n` squarings.
    pub fn square_n(n: usize) -> Self {
        Self {
            ops: (0..n).map(|i| ExtOp::Mul(i, i)).collect(),
        }
    }

    /// Runs the program natively on `input`; returns every value (input first).
    pub fn run(&self, input: Challenge) -> Result<Vec<Challenge>, String> {
        let mut values = vec![input];
        for (i, op) in self.ops.iter().enumerate() {
            let (a, b) = match *op {
                ExtOp::Add(a, b) | ExtOp::Mul(a, b) => (a, b),
            };
            if a > i || b > i {
                return Err(format!("operation {i} reads a value not yet computed"));
            }
            values.push(match op {
                ExtOp::Add(..) => values[a] + values[b],
                ExtOp::Mul(..) => values[a] * values[b],
            });
        }
        Ok(values)
    }
}

/// The coefficients of a challenge-field element.
pub fn coeffs(x: Challenge) -> [Val; D] {
    let c = x.as_basis_coefficients_slice();
    std::array::from_fn(|i| c[i])
}

/// The public values of a run: input and output coefficients.
pub fn public_values(input: Challenge, output: Challenge) -> Vec<Val> {
    let mut out = coeffs(input).to_vec();
    out.extend_from_slice(&coeffs(output));
    out
}

/// The arithmetic table of one program.
#[derive(Clone, Debug)]
pub struct ExtArithTable {
    periodic: Vec<Vec<Val>>,
    // Where the input is read on the transcript bus (its coefficients' positions); `None`:
    // input and output are public values.
    input_pos: Option<[u32; D]>,
}

impl ExtArithTable {
    /// The table running `program` on a challenge the transcript sampled (coefficient `i` is
    /// the transcript's call `positions[i]`); no public values. Its value ids start at
    /// `id_base`, so that the tables of several proofs never read each other's values.
    pub fn reading(program: &ExtProgram, positions: [u32; D], id_base: u32) -> Self {
        Self {
            input_pos: Some(positions),
            ..Self::with_ids(program, id_base)
        }
    }

    /// The table running `program` (its layout is what the verifier fixes).
    pub fn new(program: &ExtProgram) -> Self {
        Self::with_ids(program, 0)
    }

    fn with_ids(program: &ExtProgram, id_base: u32) -> Self {
        let value_id = |i: usize| Val::from_u32(id_base) + Val::from_usize(i);
        let rows = program.ops.len() + 1;
        let height = rows.next_power_of_two().max(super::MIN_ROWS);
        let mut periodic = vec![vec![Val::ZERO; height]; PERIODIC];
        let mut set = |column: usize, id: usize, value: Val| periodic[column][id] = value;
        for id in 0..rows {
            set(P_ACTIVE, id, Val::ONE);
            set(P_ID_C, id, value_id(id));
            match id.checked_sub(1).map(|i| program.ops[i]) {
                None => set(P_INPUT, id, Val::ONE),
                Some(op) => {
                    let (ExtOp::Add(a, b) | ExtOp::Mul(a, b)) = op;
                    let mul = matches!(op, ExtOp::Mul(..));
                    set(P_MUL, id, Val::from_bool(mul));
                    set(P_ADD, id, Val::from_bool(!mul));
                    set(P_ID_A, id, value_id(a));
                    set(P_ID_B, id, value_id(b));
                }
            }
        }
        periodic[P_OUTPUT][rows - 1] = Val::ONE;
        Self {
            periodic,
            input_pos: None,
        }
    }
}

impl BaseAir<Val> for ExtArithTable {
    fn width(&self) -> usize {
        COLS
    }

    fn num_public_values(&self) -> usize {
        if self.input_pos.is_some() {
            0
        } else {
            NUM_PUBLIC
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
fn ext_mul<E: PrimeCharacteristicRing + Clone>(a: &[E], b: &[E]) -> [E; D] {
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
        let (a, b, c) = (span(A), span(B), span(C));

        // The input and the output: public, or the input read from the transcript.
        builder.assert_eq(local[IN_ROW].clone(), p(P_INPUT));
        match self.input_pos {
            None => {
                for i in 0..D {
                    builder.assert_zero(p(P_INPUT) * (c[i].clone() - public[i].clone()));
                    builder.assert_zero(p(P_OUTPUT) * (c[i].clone() - public[D + i].clone()));
                }
            }
            Some(positions) => {
                let bus = LookupBus::new(super::transcript::BUS);
                let in_row = local[IN_ROW].clone();
                for (i, pos) in positions.iter().enumerate() {
                    let key = vec![in_row.clone() * AB::Expr::from_u32(*pos), c[i].clone()];
                    bus.lookup_key(builder, key, Count::bounded(in_row.clone(), 1));
                }
            }
        }
        // The operation of each program row (degree 3: the row's kind is one periodic column).
        let op_row = p(P_ACTIVE) - p(P_INPUT);
        let product = ext_mul(&a, &b);
        for i in 0..D {
            let sum = a[i].clone() + b[i].clone();
            builder.assert_zero(
                p(P_MUL) * (c[i].clone() - product[i].clone()) + p(P_ADD) * (c[i].clone() - sum),
            );
        }

        // The bus reads copies of the program columns, pinned to them here.
        for (column, program) in [
            (ACTIVE, p(P_ACTIVE)),
            (OP_ROW, op_row),
            (ID_A, p(P_ID_A)),
            (ID_B, p(P_ID_B)),
            (ID_C, p(P_ID_C)),
        ] {
            builder.assert_eq(local[column].clone(), program);
        }
        // Operands are values produced by other rows; results are offered to them (padding rows
        // offer nothing).
        let bus = LookupBus::new(BUS);
        let key = |id: usize, v: &[AB::Expr]| -> Vec<AB::Expr> {
            std::iter::once(local[id].clone())
                .chain(v.iter().cloned())
                .collect()
        };
        let op = local[OP_ROW].clone();
        bus.lookup_key(builder, key(ID_A, &a), Count::bounded(op.clone(), 1));
        bus.lookup_key(builder, key(ID_B, &b), Count::bounded(op, 1));
        bus.table_entry(
            builder,
            key(ID_C, &c),
            local[ACTIVE].clone() * local[MULT].clone(),
        );
    }
}

/// The table's trace for `program` run on `input`, and the output.
/// Value ids start at `id_base` (0 for [`ExtArithTable::new`], the table's base for
/// [`ExtArithTable::reading`]).
pub fn trace(
    program: &ExtProgram,
    input: Challenge,
    id_base: u32,
) -> Result<(RowMajorMatrix<Val>, Challenge), String> {
    let value_id = |i: usize| Val::from_u32(id_base) + Val::from_usize(i);
    let values = program.run(input)?;
    let mut uses = vec![0u32; values.len()];
    for op in &program.ops {
        let (ExtOp::Add(a, b) | ExtOp::Mul(a, b)) = *op;
        uses[a] += 1;
        uses[b] += 1;
    }
    let height = values.len().next_power_of_two().max(super::MIN_ROWS);
    let mut rows = vec![Val::ZERO; height * COLS];
    for (id, value) in values.iter().enumerate() {
        let row = &mut rows[id * COLS..(id + 1) * COLS];
        row[ACTIVE] = Val::ONE;
        row[ID_C] = value_id(id);
        row[C..C + D].copy_from_slice(&coeffs(*value));
        row[MULT] = Val::from_u32(uses[id]);
        row[IN_ROW] = Val::from_bool(id == 0);
        if let Some(ExtOp::Add(a, b) | ExtOp::Mul(a, b)) = id.checked_sub(1).map(|i| program.ops[i])
        {
            row[OP_ROW] = Val::ONE;
            row[ID_A] = value_id(a);
            row[ID_B] = value_id(b);
            row[A..A + D].copy_from_slice(&coeffs(values[a]));
            row[B..B + D].copy_from_slice(&coeffs(values[b]));
        }
    }
    let output = *values.last().ok_or("empty program")?;
    Ok((RowMajorMatrix::new(rows, COLS), output))
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
mod reading_tests {
    //! The arithmetic table reading ζ from the transcript (the fixture's last table).
    use super::*;
    use crate::verifier::fixture::{refused, EXT};

    #[test]
    fn the_input_is_the_transcripts_challenge() {
        assert!(refused(EXT, COLS, (0, IN_ROW), |_| Val::ZERO), "input flag");
        assert!(
            refused(EXT, COLS, (0, C + 1), |v| v + Val::ONE),
            "input value"
        );
        assert!(refused(EXT, COLS, (1, C), |v| v + Val::ONE), "a square");
    }
}
