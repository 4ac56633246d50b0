//! The extension-field arithmetic table: a straight-line program over the challenge field
//! (KoalaBear⁴, `X^4 = 3`), one operation per row. Every value has an id (its row); a row
//! produces its result `(id, c)` on [`BUS`] with a multiplicity and looks up its operands
//! `(id_a, a)`, `(id_b, b)` there, so an operand is exactly a value another row produced.
//!
//! Row 0 is the program's input, bound to the first four public values (in the full circuit
//! it will come from the transcript table, e.g. the out-of-domain point ζ); the last real row's
//! result is bound to the last four public values. The verifier's arithmetic on challenges
//! (powers of ζ, vanishing polynomial, folding) is built from these rows.

use p3_air::{Air, AirBuilder, BaseAir, PermutationAirBuilder};
use p3_field::{BasedVectorSpace, PrimeCharacteristicRing};
use p3_lookup::{Count, InteractionBuilder, LookupBus};
use p3_matrix::dense::RowMajorMatrix;

use crate::config::{Challenge, Val};

/// Name of the bus carrying `(id, value[4])` tuples.
pub const BUS: &str = "ext-values";
/// Extension degree.
pub const D: usize = 4;
/// `X^4 = W` in the challenge field.
pub const W: u32 = 3;

const ACTIVE: usize = 0;
const IS_INPUT: usize = 1;
const IS_MUL: usize = 2;
const ID_A: usize = 3;
const ID_B: usize = 4;
const ID_C: usize = 5;
const A: usize = 6;
const B: usize = A + D;
const C: usize = B + D;
const MULT: usize = C + D;
/// Width of the table.
pub const COLS: usize = MULT + 1;
/// Public values: the input, then the output.
pub const NUM_PUBLIC: usize = 2 * D;

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

/// The arithmetic table.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExtArithTable;

impl<F> BaseAir<F> for ExtArithTable {
    fn width(&self) -> usize {
        COLS
    }

    fn num_public_values(&self) -> usize {
        NUM_PUBLIC
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
        let (public, local, next) = super::window(builder);
        let col = |row: &[AB::Expr], c: usize| -> AB::Expr { row[c].clone() };
        let span = |row: &[AB::Expr], start: usize| -> Vec<AB::Expr> {
            (0..D).map(|i| col(row, start + i)).collect()
        };
        let (active, is_input, is_mul) = (
            col(&local, ACTIVE),
            col(&local, IS_INPUT),
            col(&local, IS_MUL),
        );
        let next_active = col(&next, ACTIVE);
        super::real_rows_first(builder, active.clone(), next_active.clone());
        builder.assert_bool(is_input.clone());
        builder.assert_bool(is_mul.clone());

        // Row 0 is the input; ids count the rows.
        let (a, b, c) = (span(&local, A), span(&local, B), span(&local, C));
        {
            let mut first = builder.when_first_row();
            first.assert_one(is_input.clone());
            first.assert_zero(col(&local, ID_C));
            for (ci, pi) in c.iter().zip(&public[..D]) {
                first.assert_eq(ci.clone(), pi.clone());
            }
        }
        {
            let mut transition = builder.when_transition();
            transition.assert_zero(col(&next, IS_INPUT));
            transition.assert_zero(
                next_active.clone() * (col(&next, ID_C) - col(&local, ID_C) - AB::Expr::ONE),
            );
        }

        // The operation.
        let op_row = active.clone() * (AB::Expr::ONE - is_input.clone());
        let product = ext_mul(&a, &b);
        for i in 0..D {
            let sum = a[i].clone() + b[i].clone();
            let expected =
                is_mul.clone() * product[i].clone() + (AB::Expr::ONE - is_mul.clone()) * sum;
            builder.assert_zero(op_row.clone() * (c[i].clone() - expected));
        }

        // The last real row's result is the output.
        for (ci, pi) in c.iter().zip(&public[D..]) {
            let d = ci.clone() - pi.clone();
            super::on_last_real_row(builder, active.clone(), next_active.clone(), d);
        }

        // Operands are values produced by other rows; results are offered to them.
        let bus = LookupBus::new(BUS);
        let key = |id: usize, v: &[AB::Expr]| -> Vec<AB::Expr> {
            std::iter::once(col(&local, id))
                .chain(v.iter().cloned())
                .collect()
        };
        bus.lookup_key(builder, key(ID_A, &a), Count::bounded(op_row.clone(), 1));
        bus.lookup_key(builder, key(ID_B, &b), Count::bounded(op_row, 1));
        bus.table_entry(builder, key(ID_C, &c), col(&local, MULT));
    }
}

/// The table's trace for `program` run on `input`, and the output.
pub fn trace(
    program: &ExtProgram,
    input: Challenge,
) -> Result<(RowMajorMatrix<Val>, Challenge), String> {
    let values = program.run(input)?;
    let mut uses = vec![0u32; values.len()];
    for op in &program.ops {
        let (ExtOp::Add(a, b) | ExtOp::Mul(a, b)) = *op;
        uses[a] += 1;
        uses[b] += 1;
    }
    let height = values.len().next_power_of_two().max(4);
    let mut rows = vec![Val::ZERO; height * COLS];
    for (id, value) in values.iter().enumerate() {
        let row = &mut rows[id * COLS..(id + 1) * COLS];
        row[ACTIVE] = Val::ONE;
        row[ID_C] = Val::from_usize(id);
        row[C..C + D].copy_from_slice(&coeffs(*value));
        row[MULT] = Val::from_u32(uses[id]);
        match id.checked_sub(1).map(|i| program.ops[i]) {
            None => row[IS_INPUT] = Val::ONE,
            Some(ExtOp::Add(a, b) | ExtOp::Mul(a, b)) => {
                row[IS_MUL] = Val::from_bool(matches!(program.ops[id - 1], ExtOp::Mul(..)));
                row[ID_A] = Val::from_usize(a);
                row[ID_B] = Val::from_usize(b);
                row[A..A + D].copy_from_slice(&coeffs(values[a]));
                row[B..B + D].copy_from_slice(&coeffs(values[b]));
            }
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
