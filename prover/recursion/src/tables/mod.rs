//! The circuit's tables, one AIR each, tied together by LogUp buses; each table's layout
//! (which rows are real, what they do, where their inputs come from) is fixed by the verifier
//! through periodic columns.

/// `BaseAir` for a table whose whole layout is its periodic columns (a `periodic` field).
macro_rules! periodic_table {
    ($table:ty, $width:expr) => {
        impl p3_air::BaseAir<starkscale_prover::config::Val> for $table {
            fn width(&self) -> usize {
                $width
            }

            fn num_periodic_columns(&self) -> usize {
                self.periodic.len()
            }

            fn periodic_columns(
                &self,
            ) -> std::borrow::Cow<'_, [Vec<starkscale_prover::config::Val>]> {
                std::borrow::Cow::Borrowed(&self.periodic)
            }
        }
    };
}

pub mod deep;
pub mod ext;
pub mod fri;
pub mod index;
pub mod poseidon2;
pub mod program;
pub mod transcript;
pub mod tree;

use p3_air::{AirBuilder, WindowAccess};
use p3_field::PrimeCharacteristicRing;

/// Fewest rows of any table: the circuit is proved under the shard configuration, whose FRI
/// needs every trace longer than its final polynomial.
pub const MIN_ROWS: usize = 1 << starkscale_prover::shard::MIN_LOG_HEIGHT;

/// Expressions of a list of variables.
pub(crate) type Exprs<AB> = Vec<<AB as AirBuilder>::Expr>;

/// A table row window as expressions: public values, the current row, the next row.
pub(crate) fn window<AB: AirBuilder>(builder: &AB) -> (Exprs<AB>, Exprs<AB>, Exprs<AB>) {
    let exprs = |vars: &[AB::Var]| -> Vec<AB::Expr> { vars.iter().map(|v| (*v).into()).collect() };
    let public = builder
        .public_values()
        .iter()
        .map(|v| (*v).into())
        .collect();
    let main = builder.main();
    let (local, next) = (exprs(main.current_slice()), exprs(main.next_slice()));
    (public, local, next)
}

/// The periodic columns' values at the current row, as expressions.
pub(crate) fn periodic<AB: AirBuilder>(builder: &AB) -> Exprs<AB> {
    builder
        .periodic_values()
        .iter()
        .map(|v| (*v).into())
        .collect()
}

/// Real rows come first: `active` is boolean, row 0 is real, and no real row follows an
/// inactive one (the padding after a table's last real row).
pub(crate) fn real_rows_first<AB: AirBuilder>(
    builder: &mut AB,
    active: AB::Expr,
    next_active: AB::Expr,
) {
    builder.assert_bool(active.clone());
    builder.when_first_row().assert_one(active.clone());
    builder
        .when_transition()
        .assert_zero(next_active * (AB::Expr::ONE - active));
}
