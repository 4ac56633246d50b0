//! The transcript (challenger) table: replays a `DuplexChallenger<Val, Perm, 16, 8>` — the
//! shard configuration's Fiat–Shamir sponge — one duplexing per row, and looks up every
//! permutation in the Poseidon2 table.
//!
//! Duplex rule (as in `p3_challenger::DuplexChallenger::duplexing`): with `n` buffered inputs,
//! the rate slots `0..n` are overwritten by them; if `n > 0` the slots `n..8` are zeroed and
//! `n` is added to the first capacity slot (slot 8); if `n = 0` (a squeeze) the rate is left
//! as the previous output. Samples are popped from the output's rate, slot 7 first.
//!
//! Every call has a position `pos` (its index in the call sequence). The schedule (how many
//! values each duplexing absorbs), the values the verifier knows (seeds, public values, the
//! preprocessed commitment) and, where a test wants it, the sample it expects enter as
//! periodic columns: the verifier fixes them. Values it does not know (the proof's
//! commitments, openings and proof-of-work witnesses) are free witness; each call's value is
//! offered as `(pos, value)` on [`BUS`] with a multiplicity the verifier fixes, so the tables
//! that use a commitment (the Merkle openings) or a sample (query indices, proof-of-work
//! checks, the arithmetic on ζ) read exactly the value the sponge absorbed or produced.

use p3_air::{Air, AirBuilder, PermutationAirBuilder};
use p3_field::PrimeCharacteristicRing;
use p3_lookup::{Count, InteractionBuilder, LookupBus};
use p3_matrix::dense::RowMajorMatrix;
use p3_symmetric::Permutation;

use super::poseidon2::{self, WIDTH};
use starkscale_prover::config::Val;

/// Name of the bus carrying `(pos, value)`: the value of the transcript's call `pos`.
pub const BUS: &str = "transcript";
/// Rate of the sponge.
pub const RATE: usize = 8;
const ACTIVE: usize = 0;
const ABS: usize = 1;
const PREV: usize = ABS + RATE;
const IN: usize = PREV + WIDTH;
const OUT: usize = IN + WIDTH;
// Copies of the periodic positions and multiplicities of the values offered on the bus
// (interactions cannot read periodic columns): absorbed slots, then sampled slots.
const A_POS: usize = OUT + WIDTH;
const A_SENDS: usize = A_POS + RATE;
const S_POS: usize = A_SENDS + RATE;
const S_SENDS: usize = S_POS + RATE;
/// Width of the table.
pub const COLS: usize = S_SENDS + RATE;

// Periodic columns, each `RATE` wide: absorb mask, "absorbed value is known", the known value,
// "sample is checked", the expected sample, then the bus copies' sources.
const P_MASK: usize = 0;
const P_BIND: usize = RATE;
const P_ABS: usize = 2 * RATE;
const P_CHECK: usize = 3 * RATE;
const P_SAMPLE: usize = 4 * RATE;
const P_A_POS: usize = 5 * RATE;
const P_A_SENDS: usize = 6 * RATE;
const P_S_POS: usize = 7 * RATE;
const P_S_SENDS: usize = 8 * RATE;
// Whether the row is one of the schedule's duplexings.
const P_ACTIVE: usize = 9 * RATE;
const PERIODIC: usize = 9 * RATE + 1;

/// A call on the challenger, with its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `observe(value)`.
    Observe(Val),
    /// `sample()` returned `value`.
    Sample(Val),
}

impl Call {
    /// The call's value.
    pub fn value(&self) -> Val {
        match *self {
            Call::Observe(v) | Call::Sample(v) => v,
        }
    }
}

/// What the verifier fixes about one call: whether it observes or samples, its value if the
/// verifier knows it, and how many times other tables read it on [`BUS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// `observe` (else `sample`).
    pub observe: bool,
    /// The value, when the verifier knows it (an expected sample, a known absorbed value).
    pub known: Option<Val>,
    /// Reads of the value by other tables.
    pub sends: u32,
}

impl Step {
    /// Every call known to the verifier, read by no other table.
    pub fn known(calls: &[Call]) -> Vec<Step> {
        calls
            .iter()
            .map(|c| Step {
                observe: matches!(c, Call::Observe(_)),
                known: Some(c.value()),
                sends: 0,
            })
            .collect()
    }
}

/// One call's place in a duplexing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    /// Position of the call.
    pub pos: u32,
    /// Its value, when the verifier knows it.
    pub known: Option<Val>,
    /// Reads of the value by other tables.
    pub sends: u32,
}

/// One duplexing of a replayed transcript.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Duplex {
    /// Calls absorbed (at most [`RATE`]), in rate-slot order.
    pub absorbed: Vec<Slot>,
    /// Calls served from this duplexing's output: (rate slot, call).
    pub samples: Vec<(usize, Slot)>,
}

/// The duplexings a sequence of calls makes, with what each absorbs and which samples it
/// serves (a pure function of the steps: the verifier computes it).
pub fn layout(steps: &[Step]) -> Vec<Duplex> {
    let mut rows: Vec<Duplex> = Vec::new();
    let mut input: Vec<Slot> = Vec::new();
    // Output slots still available, popped from the end.
    let mut output_left = 0usize;
    for (pos, step) in steps.iter().enumerate() {
        let slot = Slot {
            pos: pos as u32,
            known: step.known,
            sends: step.sends,
        };
        if step.observe {
            output_left = 0;
            input.push(slot);
            if input.len() == RATE {
                rows.push(Duplex {
                    absorbed: std::mem::take(&mut input),
                    samples: Vec::new(),
                });
                output_left = RATE;
            }
        } else {
            if !input.is_empty() || output_left == 0 {
                rows.push(Duplex {
                    absorbed: std::mem::take(&mut input),
                    samples: Vec::new(),
                });
                output_left = RATE;
            }
            output_left -= 1;
            if let Some(row) = rows.last_mut() {
                row.samples.push((output_left, slot));
            }
        }
    }
    rows
}

/// The duplexings of `calls`, every value known to the verifier (samples checked).
pub fn schedule(calls: &[Call]) -> Vec<Duplex> {
    layout(&Step::known(calls))
}

/// The transcript table for a fixed schedule.
#[derive(Clone, Debug)]
pub struct TranscriptTable {
    periodic: Vec<Vec<Val>>,
}

impl TranscriptTable {
    /// The table replaying `duplexes`.
    pub fn new(duplexes: &[Duplex]) -> Self {
        let height = duplexes.len().next_power_of_two().max(super::MIN_ROWS);
        let mut periodic = vec![vec![Val::ZERO; height]; PERIODIC];
        for (r, d) in duplexes.iter().enumerate() {
            periodic[P_ACTIVE][r] = Val::ONE;
            for (i, slot) in d.absorbed.iter().enumerate() {
                periodic[P_MASK + i][r] = Val::ONE;
                if let Some(v) = slot.known {
                    periodic[P_BIND + i][r] = Val::ONE;
                    periodic[P_ABS + i][r] = v;
                }
                periodic[P_A_POS + i][r] = Val::from_u32(slot.pos);
                periodic[P_A_SENDS + i][r] = Val::from_u32(slot.sends);
            }
            for (i, slot) in &d.samples {
                if let Some(v) = slot.known {
                    periodic[P_CHECK + i][r] = Val::ONE;
                    periodic[P_SAMPLE + i][r] = v;
                }
                periodic[P_S_POS + i][r] = Val::from_u32(slot.pos);
                periodic[P_S_SENDS + i][r] = Val::from_u32(slot.sends);
            }
        }
        Self { periodic }
    }
}

periodic_table!(TranscriptTable, COLS);

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
        // Known absorbed values and expected samples; the bus copies pinned to the schedule.
        for i in 0..RATE {
            builder.assert_zero(p(P_BIND + i) * (local[ABS + i].clone() - p(P_ABS + i)));
            builder.assert_zero(p(P_CHECK + i) * (local[OUT + i].clone() - p(P_SAMPLE + i)));
            for (column, source) in [
                (A_POS, P_A_POS),
                (A_SENDS, P_A_SENDS),
                (S_POS, P_S_POS),
                (S_SENDS, P_S_SENDS),
            ] {
                builder.assert_eq(local[column + i].clone(), p(source + i));
            }
        }
        let tuple: Vec<AB::Expr> = local[IN..IN + WIDTH]
            .iter()
            .chain(&local[OUT..OUT + WIDTH])
            .cloned()
            .collect();
        LookupBus::new(poseidon2::BUS).lookup_key(builder, tuple, Count::bounded(active, 1));
        // Every call's value, offered to the tables that read it.
        let bus = LookupBus::new(BUS);
        for i in 0..RATE {
            for (pos, value, sends) in [(A_POS, ABS, A_SENDS), (S_POS, OUT, S_SENDS)] {
                let key = vec![local[pos + i].clone(), local[value + i].clone()];
                bus.table_entry(builder, key, local[sends + i].clone());
            }
        }
    }
}

/// The trace replaying `duplexes` with the calls' values (`values[pos − first]`; samples are
/// recomputed), and the permutation inputs it looks up.
pub fn trace(
    duplexes: &[Duplex],
    values: &[Val],
    first: u32,
) -> (RowMajorMatrix<Val>, Vec<[Val; WIDTH]>) {
    let perm = p3_koala_bear::default_koalabear_poseidon2_16();
    let height = duplexes.len().next_power_of_two().max(super::MIN_ROWS);
    let mut rows = vec![Val::ZERO; height * COLS];
    let mut state = [Val::ZERO; WIDTH];
    let mut lookups = Vec::with_capacity(duplexes.len());
    let value = |pos: u32| {
        pos.checked_sub(first)
            .and_then(|i| values.get(i as usize))
            .copied()
            .unwrap_or(Val::ZERO)
    };
    for (r, d) in duplexes.iter().enumerate() {
        let prev = state;
        let n = d.absorbed.len();
        let row = &mut rows[r * COLS..(r + 1) * COLS];
        for (i, slot) in d.absorbed.iter().enumerate() {
            state[i] = value(slot.pos);
            row[ABS + i] = state[i];
            row[A_POS + i] = Val::from_u32(slot.pos);
            row[A_SENDS + i] = Val::from_u32(slot.sends);
        }
        if n > 0 {
            state[n..RATE].fill(Val::ZERO);
            state[RATE] += Val::from_usize(n);
        }
        let input = state;
        state = perm.permute(state);
        for (i, slot) in &d.samples {
            row[S_POS + i] = Val::from_u32(slot.pos);
            row[S_SENDS + i] = Val::from_u32(slot.sends);
        }
        row[ACTIVE] = Val::ONE;
        row[PREV..PREV + WIDTH].copy_from_slice(&prev);
        row[IN..IN + WIDTH].copy_from_slice(&input);
        row[OUT..OUT + WIDTH].copy_from_slice(&state);
        lookups.push(input);
    }
    (RowMajorMatrix::new(rows, COLS), lookups)
}

#[cfg(test)]
mod tests {
    //! The bus copies of the schedule, corrupted in the fixture's transcript table (the other
    //! constraints have tests in `tests/recursion_transcript.rs`).
    use super::*;
    use crate::verifier::fixture::{refused, TRANSCRIPT};

    #[test]
    fn the_bus_copies_are_pinned() {
        for (row, col) in [
            (9, A_POS + 3),
            (9, A_SENDS),
            (30, S_POS + 7),
            (30, S_SENDS + 4),
        ] {
            assert!(
                refused(TRANSCRIPT, COLS, (row, col), |v| v + Val::ONE),
                "row {row} column {col}"
            );
        }
    }
}
