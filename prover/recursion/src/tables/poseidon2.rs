//! The Poseidon2 permutation table: every row is one Poseidon2-16 permutation over KoalaBear
//! with the round constants of `p3_koala_bear::default_koalabear_poseidon2_16` (the permutation
//! the shard configuration hashes, compresses and draws challenges with), plus a multiplicity:
//! how many lookups elsewhere consume this row's `(input ‖ output)` tuple on [`BUS`].

use p3_air::{Air, AirBuilder, BaseAir, PermutationAirBuilder, WindowAccess};
use p3_koala_bear::{
    GenericPoseidon2LinearLayersKoalaBear, KOALABEAR_POSEIDON2_HALF_FULL_ROUNDS,
    KOALABEAR_POSEIDON2_PARTIAL_ROUNDS_16, KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL,
    KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL, KOALABEAR_POSEIDON2_RC_16_INTERNAL,
    KOALABEAR_S_BOX_DEGREE,
};
use p3_lookup::{InteractionBuilder, LookupBus};
use p3_matrix::dense::RowMajorMatrix;
use p3_poseidon2_air::{num_cols, Poseidon2Air, RoundConstants};
use p3_uni_stark::SubAirBuilder;

use starkscale_prover::config::Val;

/// Permutation width.
pub const WIDTH: usize = 16;
const HALF_FULL: usize = KOALABEAR_POSEIDON2_HALF_FULL_ROUNDS;
const PARTIAL: usize = KOALABEAR_POSEIDON2_PARTIAL_ROUNDS_16;
const SBOX_REGISTERS: usize = 0;

/// The permutation AIR of `p3-poseidon2-air` instantiated for the prover's permutation.
pub type PermAir = Poseidon2Air<
    Val,
    GenericPoseidon2LinearLayersKoalaBear,
    WIDTH,
    KOALABEAR_S_BOX_DEGREE,
    SBOX_REGISTERS,
    HALF_FULL,
    PARTIAL,
>;

/// Columns of the permutation AIR: inputs first, outputs last.
pub const PERM_COLS: usize =
    num_cols::<WIDTH, KOALABEAR_S_BOX_DEGREE, SBOX_REGISTERS, HALF_FULL, PARTIAL>();
/// Column of the multiplicity.
pub const MULT_COL: usize = PERM_COLS;
/// Width of the table.
pub const COLS: usize = PERM_COLS + 1;
/// Name of the bus carrying `(input[16] ‖ output[16])` tuples.
pub const BUS: &str = "poseidon2-16";

/// The round constants of `default_koalabear_poseidon2_16`.
pub fn round_constants() -> RoundConstants<Val, WIDTH, HALF_FULL, PARTIAL> {
    RoundConstants::new(
        KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
        KOALABEAR_POSEIDON2_RC_16_INTERNAL,
        KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL,
    )
}

/// The permutation table.
#[derive(Clone)]
pub struct Poseidon2Table {
    perm: PermAir,
}

impl std::fmt::Debug for Poseidon2Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Poseidon2Table")
    }
}

impl Default for Poseidon2Table {
    fn default() -> Self {
        Self {
            perm: PermAir::new(round_constants()),
        }
    }
}

impl<F> BaseAir<F> for Poseidon2Table {
    fn width(&self) -> usize {
        COLS
    }
}

impl<AB> Air<AB> for Poseidon2Table
where
    AB: AirBuilder<F = Val> + PermutationAirBuilder + InteractionBuilder,
{
    fn eval(&self, builder: &mut AB) {
        {
            let mut sub = SubAirBuilder::<AB, PermAir, AB::Var>::new(builder, 0..PERM_COLS);
            self.perm.eval(&mut sub);
        }
        let main = builder.main();
        let row = main.current_slice();
        let tuple: Vec<AB::Expr> = row[..WIDTH]
            .iter()
            .chain(&row[PERM_COLS - WIDTH..PERM_COLS])
            .map(|v| (*v).into())
            .collect();
        let mult: AB::Expr = row[MULT_COL].into();
        LookupBus::new(BUS).table_entry(builder, tuple, mult);
    }
}

/// The table's trace: one row per `(input, multiplicity)`, padded to a power of two (at least
/// 4 rows) with zero-input rows of multiplicity 0 (every row must be a real permutation).
pub fn trace(rows: &[([Val; WIDTH], u32)]) -> RowMajorMatrix<Val> {
    use p3_field::PrimeCharacteristicRing;
    let height = rows.len().next_power_of_two().max(super::MIN_ROWS);
    let mut inputs: Vec<[Val; WIDTH]> = rows.iter().map(|(input, _)| *input).collect();
    inputs.resize(height, [Val::ZERO; WIDTH]);
    let perm = p3_poseidon2_air::generate_trace_rows::<
        Val,
        GenericPoseidon2LinearLayersKoalaBear,
        WIDTH,
        KOALABEAR_S_BOX_DEGREE,
        SBOX_REGISTERS,
        HALF_FULL,
        PARTIAL,
    >(inputs, &round_constants(), 0);
    let mut values = Vec::with_capacity(height * COLS);
    for (i, row) in perm.values.chunks_exact(PERM_COLS).enumerate() {
        values.extend_from_slice(row);
        values.push(Val::from_u32(rows.get(i).map_or(0, |(_, m)| *m)));
    }
    RowMajorMatrix::new(values, COLS)
}

/// The output of row `row` of a trace made by [`trace`].
pub fn output_of(trace: &RowMajorMatrix<Val>, row: usize) -> [Val; WIDTH] {
    let start = row * COLS + PERM_COLS - WIDTH;
    std::array::from_fn(|i| trace.values[start + i])
}

#[cfg(test)]
mod tests {
    use p3_field::PrimeCharacteristicRing;
    use p3_symmetric::Permutation;

    use super::*;

    #[test]
    fn table_rows_are_the_provers_permutation() {
        let perm = p3_koala_bear::default_koalabear_poseidon2_16();
        let inputs: Vec<[Val; WIDTH]> = (0..5u32)
            .map(|s| std::array::from_fn(|i| Val::from_u32(s * 1000 + i as u32 * 7 + 1)))
            .collect();
        let rows: Vec<_> = inputs.iter().map(|i| (*i, 1)).collect();
        let t = trace(&rows);
        assert_eq!(t.values.len() / COLS, crate::MIN_ROWS);
        for (row, input) in inputs.iter().enumerate() {
            assert_eq!(output_of(&t, row), perm.permute(*input), "row {row}");
        }
        let last = crate::MIN_ROWS - 1;
        assert_eq!(output_of(&t, last), perm.permute([Val::ZERO; WIDTH]));
    }
}

#[cfg(test)]
mod corruption {
    //! The permutation table corrupted in a real proof's circuit (the fixture's first table).
    use p3_field::PrimeCharacteristicRing;

    use super::*;
    use crate::verifier::fixture::refused;

    #[test]
    fn a_wrong_round_or_multiplicity_fails() {
        // A state inside the rounds (the permutation AIR's constraints).
        assert!(refused(0, COLS, (3, 40), |v| v + Val::ONE), "round state");
        // An output other than the permutation's (constraints, and the bus).
        assert!(
            refused(0, COLS, (3, PERM_COLS - 1), |v| v + Val::ONE),
            "output"
        );
        // One use more than the other tables make (the bus alone).
        assert!(
            refused(0, COLS, (3, MULT_COL), |v| v + Val::ONE),
            "multiplicity"
        );
    }
}
