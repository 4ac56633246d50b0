//! The table set and its proof: every table is one variant of [`Table`] (batch-stark proves
//! instances of one AIR type), traces come from native witnesses, and the tables are proved
//! together with `p3-batch-stark` under the shard configuration, their buses balanced by
//! LogUp.
//!
//! [`super::verifier`] assembles the shard verifier's tables; [`Witness::add_transcript`] and
//! [`Witness::add_ext`] build stand-alone transcript and arithmetic circuits (used by tests).

use std::collections::HashMap;

use p3_air::{Air, AirBuilder, BaseAir, PermutationAirBuilder};
use p3_batch_stark::{prove_batch, verify_batch, BatchProof, ProverData, StarkInstance};
use p3_field::PrimeField32;
use p3_lookup::InteractionBuilder;
use p3_matrix::dense::RowMajorMatrix;
use p3_matrix::Matrix;

use crate::tables::deep::DeepTable;
use crate::tables::ext::{self, ExtArithTable, ExtProgram};
use crate::tables::fri::FriTable;
use crate::tables::index::IndexTable;
use crate::tables::poseidon2::{self, Poseidon2Table, WIDTH};
use crate::tables::transcript::{self, Call, TranscriptTable};
use crate::tables::tree::TreeTable;
use starkscale_prover::config::{stark_config, Challenge, ShardStarkConfig, Val};

/// One table of the circuit.
#[derive(Clone, Debug)]
pub enum Table {
    /// The Poseidon2 permutation table (its round constants live on the heap).
    Poseidon2(Box<Poseidon2Table>),
    /// An extension-field arithmetic table.
    Ext(ExtArithTable),
    /// A transcript (challenger) table.
    Transcript(TranscriptTable),
    /// A Merkle-opening table (leaf hashing and paths of many openings).
    Tree(TreeTable),
    /// The query-index, proof-of-work and domain-value table.
    Index(IndexTable),
    /// The DEEP (batched input opening) table.
    Deep(DeepTable),
    /// The FRI folding table.
    Fri(FriTable),
}

macro_rules! each_table {
    ($table:expr, $t:ident => $body:expr) => {
        match $table {
            Table::Poseidon2(t) => {
                let $t = t.as_ref();
                $body
            }
            Table::Ext($t) => $body,
            Table::Transcript($t) => $body,
            Table::Tree($t) => $body,
            Table::Index($t) => $body,
            Table::Deep($t) => $body,
            Table::Fri($t) => $body,
        }
    };
}

impl BaseAir<Val> for Table {
    fn width(&self) -> usize {
        each_table!(self, t => BaseAir::<Val>::width(t))
    }

    fn num_public_values(&self) -> usize {
        each_table!(self, t => BaseAir::<Val>::num_public_values(t))
    }

    fn num_periodic_columns(&self) -> usize {
        each_table!(self, t => BaseAir::<Val>::num_periodic_columns(t))
    }

    fn periodic_columns(&self) -> std::borrow::Cow<'_, [Vec<Val>]> {
        each_table!(self, t => BaseAir::<Val>::periodic_columns(t))
    }
}

impl<AB> Air<AB> for Table
where
    AB: AirBuilder<F = Val> + PermutationAirBuilder + InteractionBuilder,
{
    fn eval(&self, builder: &mut AB) {
        each_table!(self, t => t.eval(builder))
    }
}

pub use crate::error::CircuitError;

/// The tables of a circuit with their traces and public values, in proving order.
#[derive(Clone, Debug, Default)]
pub struct Witness {
    /// The tables.
    pub tables: Vec<Table>,
    /// One trace per table.
    pub traces: Vec<RowMajorMatrix<Val>>,
    /// One public-value vector per table.
    pub public_values: Vec<Vec<Val>>,
}

impl Witness {
    /// Adds an arithmetic table running `program` on `input`; returns the output.
    pub fn add_ext(
        &mut self,
        program: &ExtProgram,
        input: Challenge,
    ) -> Result<Challenge, CircuitError> {
        let (trace, output) = ext::trace(program, input)
            .map_err(|source| CircuitError::Program { proof: 0, source })?;
        self.push(
            Table::Ext(ExtArithTable::new(program)),
            trace,
            ext::public_values(input, output),
        );
        Ok(output)
    }

    /// Adds a transcript table replaying `calls` on the shard configuration's challenger
    /// (samples carry the values the verifier expects), with a permutation table serving it.
    pub fn add_transcript(&mut self, calls: &[Call]) -> Result<(), CircuitError> {
        let duplexes = transcript::schedule(calls);
        if duplexes.is_empty() {
            return Err(CircuitError::Empty);
        }
        let values: Vec<Val> = calls.iter().map(Call::value).collect();
        let (trace, lookups) = transcript::trace(&duplexes, &values, 0);
        let rows = permutation_rows(lookups);
        self.push(
            Table::Poseidon2(Box::default()),
            poseidon2::trace(&rows),
            Vec::new(),
        );
        self.push(
            Table::Transcript(TranscriptTable::new(&duplexes)),
            trace,
            Vec::new(),
        );
        Ok(())
    }

    /// Proves the witness and verifies the proof against its own tables and public values:
    /// whether the circuit accepts it (what tests and corruption checks ask).
    pub fn prove_and_verify(&self) -> Result<(), CircuitError> {
        let proof = prove(self)?;
        verify(&self.tables, &self.public_values, &proof)
    }

    /// The proof's conjectured security ([`crate::config::conjectured_security_bits`]) at
    /// this witness's table heights and bus traffic.
    pub fn security_bits(&self) -> usize {
        let heights: Vec<usize> = self.traces.iter().map(Matrix::height).collect();
        let tallest = heights.iter().map(|h| h.trailing_zeros() as usize).max();
        crate::config::conjectured_security_bits(
            tallest.unwrap_or(0),
            lookup_terms(&self.tables, &heights),
        )
    }

    fn push(&mut self, table: Table, trace: RowMajorMatrix<Val>, public: Vec<Val>) {
        self.tables.push(table);
        self.traces.push(trace);
        self.public_values.push(public);
    }
}

/// Checks that every bus carries tuples of one width across all `tables` (p3-lookup checks
/// widths within one AIR only; across AIRs it is the assembler's duty).
pub fn check_bus_widths(tables: &[Table]) -> Result<(), CircuitError> {
    let interactions = tables.iter().flat_map(|table| {
        let layout = p3_air::symbolic::AirLayout::from_air(table);
        let builder =
            p3_lookup::InteractionSymbolicBuilder::<Val, Challenge>::from_air(table, layout);
        builder
            .global_interactions()
            .iter()
            .map(|i| (i.bus_name.clone(), i.fields.len()))
            .collect::<Vec<_>>()
    });
    widths_agree(interactions)
}

fn widths_agree(
    interactions: impl IntoIterator<Item = (String, usize)>,
) -> Result<(), CircuitError> {
    let mut widths: HashMap<String, usize> = HashMap::new();
    for (bus, width) in interactions {
        let first = *widths.entry(bus.clone()).or_insert(width);
        if first != width {
            return Err(CircuitError::BusWidth {
                bus,
                first,
                other: width,
            });
        }
    }
    Ok(())
}

/// Terms of the LogUp sums of `tables` at these heights: each bus interaction of each row.
pub fn lookup_terms(tables: &[Table], heights: &[usize]) -> u64 {
    tables
        .iter()
        .zip(heights)
        .map(|(table, height)| {
            let layout = p3_air::symbolic::AirLayout::from_air(table);
            let builder =
                p3_lookup::InteractionSymbolicBuilder::<Val, Challenge>::from_air(table, layout);
            (builder.global_interactions().len() * height) as u64
        })
        .sum()
}

/// The permutation table's rows for `lookups`: each distinct input once, in first-use order,
/// with the number of times it is looked up.
pub(crate) fn permutation_rows(
    lookups: impl IntoIterator<Item = [Val; WIDTH]>,
) -> Vec<([Val; WIDTH], u32)> {
    let mut counts: HashMap<[u32; WIDTH], usize> = HashMap::new();
    let mut rows: Vec<([Val; WIDTH], u32)> = Vec::new();
    for input in lookups {
        let key = input.map(|v| v.as_canonical_u32());
        let index = *counts.entry(key).or_insert_with(|| {
            rows.push((input, 0));
            rows.len() - 1
        });
        rows[index].1 += 1;
    }
    rows
}

/// A proof of the circuit.
pub struct CircuitProof {
    /// The batch proof (it names each table's height, which [`verify`] checks against the
    /// layout).
    pub proof: BatchProof<ShardStarkConfig>,
}

fn degree_bits(traces: &[RowMajorMatrix<Val>]) -> Vec<usize> {
    traces
        .iter()
        .map(|t| t.height().trailing_zeros() as usize)
        .collect()
}

fn panic_message(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "prover panicked".into())
}

/// Proves the witness's tables together.
pub fn prove(witness: &Witness) -> Result<CircuitProof, CircuitError> {
    let config = stark_config();
    let airs = &witness.tables;
    let bits = degree_bits(&witness.traces);
    let run = || {
        if airs.is_empty() {
            return Err(CircuitError::Empty);
        }
        let data = ProverData::<ShardStarkConfig>::from_airs_and_degrees(&config, airs, &bits)
            .map_err(|e| CircuitError::Prove {
                detail: format!("{e:?}"),
            })?;
        let traces: Vec<&RowMajorMatrix<Val>> = witness.traces.iter().collect();
        let instances = StarkInstance::new_multiple(airs, &traces, &witness.public_values);
        prove_batch(&config, &instances, &data).map_err(|e| CircuitError::Prove {
            detail: format!("{e:?}"),
        })
    };
    let proof = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).map_err(|e| {
        CircuitError::Prove {
            detail: panic_message(e),
        }
    })??;
    Ok(CircuitProof { proof })
}

/// The height (log2) the verifier requires of a table: a table with a layout (periodic
/// columns) has exactly its layout's length, so the layout cannot be repeated in a longer
/// trace; the permutation table's height is free (every row is a real permutation).
fn required_degree_bits(table: &Table) -> Option<usize> {
    let periodic = BaseAir::<Val>::periodic_columns(table);
    periodic
        .first()
        .map(|column| column.len().trailing_zeros() as usize)
}

/// Verifies a proof of `tables` with their public values (one vector per table).
pub fn verify(
    tables: &[Table],
    public_values: &[Vec<Val>],
    proof: &CircuitProof,
) -> Result<(), CircuitError> {
    let bits = &proof.proof.degree_bits;
    if tables.is_empty() || bits.len() != tables.len() || public_values.len() != tables.len() {
        return Err(CircuitError::TableCount {
            got: bits.len(),
            want: tables.len(),
            values: public_values.len(),
        });
    }
    for (i, (table, got)) in tables.iter().zip(bits).enumerate() {
        if let Some(want) = required_degree_bits(table) {
            if *got != want {
                return Err(CircuitError::TableHeight {
                    table: i,
                    got: *got,
                    want,
                });
            }
        }
    }
    check_bus_widths(tables)?;
    let config = stark_config();
    let run = || {
        let data = ProverData::<ShardStarkConfig>::from_airs_and_degrees(&config, tables, bits)
            .map_err(|e| CircuitError::Verify {
                detail: format!("{e:?}"),
            })?;
        verify_batch(&config, tables, &proof.proof, public_values, &data.common).map_err(|e| {
            CircuitError::Verify {
                detail: format!("{e:?}"),
            }
        })
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).map_err(|e| {
        CircuitError::Verify {
            detail: panic_message(e),
        }
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bus_of_two_widths_is_refused() {
        let ok = [
            ("a".to_string(), 2),
            ("b".to_string(), 5),
            ("a".to_string(), 2),
        ];
        assert!(widths_agree(ok).is_ok());
        let bad = [
            ("a".to_string(), 2),
            ("b".to_string(), 5),
            ("a".to_string(), 3),
        ];
        assert!(matches!(
            widths_agree(bad),
            Err(CircuitError::BusWidth {
                first: 2,
                other: 3,
                ..
            })
        ));
        // The shard verifier's tables agree.
        let w = crate::verifier::fixture::honest();
        check_bus_widths(&w.tables).unwrap();
    }
}
