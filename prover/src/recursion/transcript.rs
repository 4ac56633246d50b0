//! The transcript (challenger) table: replays a `DuplexChallenger<Val, Perm, 16, 8>` — the
//! shard configuration's Fiat–Shamir sponge — one duplexing per row, and looks up every
//! permutation in the Poseidon2 table.
//!
//! Duplex rule (as in `p3_challenger::DuplexChallenger::duplexing`): with `n` buffered inputs,
//! the rate slots `0..n` are overwritten by them; if `n > 0` the slots `n..8` are zeroed and
//! `n` is added to the first capacity slot (slot 8); if `n = 0` (a squeeze) the rate is left
//! as the previous output. Samples are popped from the output's rate, slot 7 first.
//!
//! The schedule (how many values each duplexing absorbs) is fixed by the verifier's shape and
//! enters as periodic columns, as do the values the verifier knows (seeds, public values) and,
//! in this first version, the samples it expects. In the full circuit the unknown absorbed
//! values (commitments, openings) arrive on buses from the tables that produce them and the
//! samples leave on buses to the tables that use them.

use std::borrow::Cow;

use p3_air::{Air, AirBuilder, BaseAir, PermutationAirBuilder};
use p3_field::PrimeCharacteristicRing;
use p3_lookup::{Count, InteractionBuilder, LookupBus};
use p3_matrix::dense::RowMajorMatrix;
use p3_symmetric::Permutation;

use super::poseidon2::{BUS, WIDTH};
use crate::config::Val;

/// Rate of the sponge.
pub const RATE: usize = 8;
const ACTIVE: usize = 0;
const ABS: usize = 1;
const PREV: usize = ABS + RATE;
const IN: usize = PREV + WIDTH;
const OUT: usize = IN + WIDTH;
/// Width of the table.
pub const COLS: usize = OUT + WIDTH;

// Periodic columns, each `RATE` wide: absorb mask, "absorbed value is known", the known value,
// "sample is checked", the expected sample.
const P_MASK: usize = 0;
const P_BIND: usize = RATE;
const P_ABS: usize = 2 * RATE;
const P_CHECK: usize = 3 * RATE;
const P_SAMPLE: usize = 4 * RATE;
// Whether the row is one of the schedule's duplexings.
const P_ACTIVE: usize = 5 * RATE;
const PERIODIC: usize = 5 * RATE + 1;

/// A call on the challenger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `observe(value)`.
    Observe(Val),
    /// `sample()`; the value the verifier expects.
    Sample(Val),
}

/// One duplexing of a replayed transcript.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Duplex {
    /// Values absorbed (at most [`RATE`]).
    pub absorbed: Vec<Val>,
    /// Samples popped from this duplexing's output: (rate slot, expected value).
    pub samples: Vec<(usize, Val)>,
}

/// The duplexings a sequence of calls makes, with what each absorbs and which samples it
/// serves (a pure function of the calls: the verifier computes it).
pub fn schedule(calls: &[Call]) -> Vec<Duplex> {
    let mut rows: Vec<Duplex> = Vec::new();
    let mut input: Vec<Val> = Vec::new();
    // Output slots still available, popped from the end.
    let mut output_left = 0usize;
    for call in calls {
        match *call {
            Call::Observe(v) => {
                output_left = 0;
                input.push(v);
                if input.len() == RATE {
                    rows.push(Duplex {
                        absorbed: std::mem::take(&mut input),
                        samples: Vec::new(),
                    });
                    output_left = RATE;
                }
            }
            Call::Sample(v) => {
                if !input.is_empty() || output_left == 0 {
                    rows.push(Duplex {
                        absorbed: std::mem::take(&mut input),
                        samples: Vec::new(),
                    });
                    output_left = RATE;
                }
                output_left -= 1;
                if let Some(row) = rows.last_mut() {
                    row.samples.push((output_left, v));
                }
            }
        }
    }
    rows
}

/// The transcript table for a fixed schedule.
#[derive(Clone, Debug)]
pub struct TranscriptTable {
    periodic: Vec<Vec<Val>>,
}

impl TranscriptTable {
    /// The table replaying `duplexes` (every absorbed value and sample known to the verifier).
    pub fn new(duplexes: &[Duplex]) -> Self {
        let height = duplexes.len().next_power_of_two().max(super::MIN_ROWS);
        let mut periodic = vec![vec![Val::ZERO; height]; PERIODIC];
        for (r, d) in duplexes.iter().enumerate() {
            periodic[P_ACTIVE][r] = Val::ONE;
            for (i, v) in d.absorbed.iter().enumerate() {
                periodic[P_MASK + i][r] = Val::ONE;
                periodic[P_BIND + i][r] = Val::ONE;
                periodic[P_ABS + i][r] = *v;
            }
            for (slot, v) in &d.samples {
                periodic[P_CHECK + slot][r] = Val::ONE;
                periodic[P_SAMPLE + slot][r] = *v;
            }
        }
        Self { periodic }
    }

    /// Rows the table's trace must have.
    pub fn height(&self) -> usize {
        self.periodic[0].len()
    }
}

impl BaseAir<Val> for TranscriptTable {
    fn width(&self) -> usize {
        COLS
    }

    fn num_periodic_columns(&self) -> usize {
        PERIODIC
    }

    fn periodic_columns(&self) -> Cow<'_, [Vec<Val>]> {
        Cow::Borrowed(&self.periodic)
    }
}

impl<AB> Air<AB> for TranscriptTable
where
    AB: AirBuilder<F = Val> + PermutationAirBuilder + InteractionBuilder,
{
    fn eval(&self, builder: &mut AB) {
        let (_, local, next) = super::window(builder);
        let periodic = super::periodic(builder);
        let (active, next_active) = (local[ACTIVE].clone(), next[ACTIVE].clone());
        super::real_rows_first(builder, active.clone(), next_active.clone());
        let p = |i: usize| periodic[i].clone();
        // The rows that duplex are the schedule's, not the prover's choice.
        builder.assert_eq(active.clone(), p(P_ACTIVE));
        // What this row absorbs, given the previous output `prev` (zeros before row 0). The
        // mask is the schedule's, so the input is pinned once the absorbed values are.
        let input = |row: &[AB::Expr], prev: &[AB::Expr]| -> Vec<AB::Expr> {
            let squeeze = AB::Expr::ONE - p(P_MASK);
            let mut input: Vec<AB::Expr> = (0..RATE)
                .map(|i| p(P_MASK + i) * row[ABS + i].clone() + squeeze.clone() * prev[i].clone())
                .collect();
            let n = (0..RATE).fold(AB::Expr::ZERO, |acc, i| acc + p(P_MASK + i));
            input.push(prev[RATE].clone() + n);
            input.extend(prev[RATE + 1..WIDTH].iter().cloned());
            input
        };
        // Each row keeps the previous row's output (zeros before row 0) and absorbs into it.
        for i in 0..WIDTH {
            builder
                .when_first_row()
                .assert_zero(local[PREV + i].clone());
            builder.when_transition().assert_zero(
                next_active.clone() * (next[PREV + i].clone() - local[OUT + i].clone()),
            );
        }
        let expected_input = input(&local, &local[PREV..PREV + WIDTH]);
        for (i, e) in expected_input.into_iter().enumerate() {
            builder.assert_zero(active.clone() * (local[IN + i].clone() - e));
        }
        // Known absorbed values and expected samples.
        for i in 0..RATE {
            builder.assert_zero(p(P_BIND + i) * (local[ABS + i].clone() - p(P_ABS + i)));
            builder.assert_zero(p(P_CHECK + i) * (local[OUT + i].clone() - p(P_SAMPLE + i)));
        }
        let tuple: Vec<AB::Expr> = local[IN..IN + WIDTH]
            .iter()
            .chain(&local[OUT..OUT + WIDTH])
            .cloned()
            .collect();
        LookupBus::new(BUS).lookup_key(builder, tuple, Count::bounded(active, 1));
    }
}

/// The trace replaying `duplexes`, and the permutation inputs it looks up.
pub fn trace(duplexes: &[Duplex]) -> (RowMajorMatrix<Val>, Vec<[Val; WIDTH]>) {
    let perm = p3_koala_bear::default_koalabear_poseidon2_16();
    let height = duplexes.len().next_power_of_two().max(super::MIN_ROWS);
    let mut values = vec![Val::ZERO; height * COLS];
    let mut state = [Val::ZERO; WIDTH];
    let mut lookups = Vec::with_capacity(duplexes.len());
    for (r, d) in duplexes.iter().enumerate() {
        let prev = state;
        let n = d.absorbed.len();
        for (i, v) in d.absorbed.iter().enumerate() {
            state[i] = *v;
        }
        if n > 0 {
            state[n..RATE].fill(Val::ZERO);
            state[RATE] += Val::from_usize(n);
        }
        let input = state;
        state = perm.permute(state);
        let row = &mut values[r * COLS..(r + 1) * COLS];
        row[ACTIVE] = Val::ONE;
        row[PREV..PREV + WIDTH].copy_from_slice(&prev);
        row[ABS..ABS + n].copy_from_slice(&d.absorbed);
        row[IN..IN + WIDTH].copy_from_slice(&input);
        row[OUT..OUT + WIDTH].copy_from_slice(&state);
        lookups.push(input);
    }
    (RowMajorMatrix::new(values, COLS), lookups)
}
