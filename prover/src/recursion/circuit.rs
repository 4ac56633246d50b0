//! The table set and its proof: every table is one variant of [`Table`] (batch-stark proves
//! instances of one AIR type), traces come from native witnesses, and the tables are proved
//! together with `p3-batch-stark` under the shard configuration, their buses balanced by
//! LogUp.
//!
//! Part 1 so far proves Merkle paths: one [`MerklePathTable`] instance per path and one
//! [`Poseidon2Table`] serving every compression they look up.

use std::collections::HashMap;

use p3_air::{Air, AirBuilder, BaseAir, PermutationAirBuilder};
use p3_batch_stark::{prove_batch, verify_batch, BatchProof, ProverData, StarkInstance};
use p3_field::PrimeField32;
use p3_lookup::InteractionBuilder;
use p3_matrix::dense::RowMajorMatrix;
use p3_matrix::Matrix;

use super::merkle::{self, MerklePath, MerklePathTable};
use super::poseidon2::{self, Poseidon2Table, WIDTH};
use crate::config::{stark_config, ShardStarkConfig, Val};

/// One table of the circuit.
#[derive(Clone, Debug)]
pub enum Table {
    /// The Poseidon2 permutation table (its round constants live on the heap).
    Poseidon2(Box<Poseidon2Table>),
    /// A Merkle-path table.
    Merkle(MerklePathTable),
}

impl<F> BaseAir<F> for Table {
    fn width(&self) -> usize {
        match self {
            Self::Poseidon2(t) => <Poseidon2Table as BaseAir<F>>::width(t.as_ref()),
            Self::Merkle(t) => <MerklePathTable as BaseAir<F>>::width(t),
        }
    }

    fn num_public_values(&self) -> usize {
        match self {
            Self::Poseidon2(t) => <Poseidon2Table as BaseAir<F>>::num_public_values(t.as_ref()),
            Self::Merkle(t) => <MerklePathTable as BaseAir<F>>::num_public_values(t),
        }
    }
}

impl<AB> Air<AB> for Table
where
    AB: AirBuilder<F = Val> + PermutationAirBuilder + InteractionBuilder,
{
    fn eval(&self, builder: &mut AB) {
        match self {
            Self::Poseidon2(t) => t.as_ref().eval(builder),
            Self::Merkle(t) => t.eval(builder),
        }
    }
}

/// Why the circuit could not be proved or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum CircuitError {
    /// Nothing to prove.
    #[error("no Merkle paths to check")]
    Empty,
    /// The prover refused (an inconsistent witness).
    #[error("the circuit could not be proved: {0}")]
    Prove(String),
    /// The proof does not verify.
    #[error("the circuit proof does not verify: {0}")]
    Verify(String),
}

/// Traces and public values of every table, in the order of [`Witness::tables`].
#[derive(Clone, Debug)]
pub struct Witness {
    /// One trace per table.
    pub traces: Vec<RowMajorMatrix<Val>>,
    /// One public-value vector per table.
    pub public_values: Vec<Vec<Val>>,
}

impl Witness {
    /// The witness checking `paths`: a Merkle-path table per path, then the permutation table
    /// with each distinct compression once and its multiplicity.
    pub fn for_paths(paths: &[MerklePath]) -> Result<Self, CircuitError> {
        if paths.is_empty() || paths.iter().any(|p| p.siblings.is_empty()) {
            return Err(CircuitError::Empty);
        }
        let mut traces = Vec::with_capacity(paths.len() + 1);
        let mut public_values = Vec::with_capacity(paths.len() + 1);
        let mut counts: HashMap<[u32; WIDTH], ([Val; WIDTH], u32)> = HashMap::new();
        let mut order = Vec::new();
        for path in paths {
            let (trace, lookups) = merkle::trace(path);
            for input in lookups {
                let key = input.map(|v| v.as_canonical_u32());
                let entry = counts.entry(key).or_insert_with(|| {
                    order.push(key);
                    (input, 0)
                });
                entry.1 += 1;
            }
            traces.push(trace);
            public_values.push(path.public_values());
        }
        let rows: Vec<_> = order.iter().map(|k| counts[k]).collect();
        traces.insert(0, poseidon2::trace(&rows));
        public_values.insert(0, Vec::new());
        Ok(Self {
            traces,
            public_values,
        })
    }

    /// The tables these traces fill: the permutation table, then one Merkle table per path.
    pub fn tables(&self) -> Vec<Table> {
        tables(self.traces.len().saturating_sub(1))
    }
}

fn tables(paths: usize) -> Vec<Table> {
    let mut out = vec![Table::Poseidon2(Box::default())];
    out.extend((0..paths).map(|_| Table::Merkle(MerklePathTable)));
    out
}

/// A proof of the circuit, with the trace heights it was made for.
pub struct CircuitProof {
    /// The batch proof.
    pub proof: BatchProof<ShardStarkConfig>,
    /// log2 of each table's height.
    pub degree_bits: Vec<usize>,
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
    let airs = witness.tables();
    let bits = degree_bits(&witness.traces);
    let run = || {
        let data = ProverData::<ShardStarkConfig>::from_airs_and_degrees(&config, &airs, &bits)
            .map_err(|e| CircuitError::Prove(format!("{e:?}")))?;
        let traces: Vec<&RowMajorMatrix<Val>> = witness.traces.iter().collect();
        let instances = StarkInstance::new_multiple(&airs, &traces, &witness.public_values);
        prove_batch(&config, &instances, &data).map_err(|e| CircuitError::Prove(format!("{e:?}")))
    };
    let proof = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .map_err(|e| CircuitError::Prove(panic_message(e)))??;
    Ok(CircuitProof {
        proof,
        degree_bits: bits,
    })
}

/// Verifies a proof that the Merkle paths whose public values (leaf, root, index) are given,
/// one vector per path, all hash to their roots.
pub fn verify(path_publics: &[Vec<Val>], proof: &CircuitProof) -> Result<(), CircuitError> {
    if path_publics.is_empty() || proof.degree_bits.len() != path_publics.len() + 1 {
        return Err(CircuitError::Verify(format!(
            "{} tables in the proof for {} paths",
            proof.degree_bits.len(),
            path_publics.len()
        )));
    }
    let config = stark_config();
    let airs = tables(path_publics.len());
    let mut publics = vec![Vec::new()];
    publics.extend(path_publics.iter().cloned());
    let run = || {
        let data = ProverData::<ShardStarkConfig>::from_airs_and_degrees(
            &config,
            &airs,
            &proof.degree_bits,
        )
        .map_err(|e| CircuitError::Verify(format!("{e:?}")))?;
        verify_batch(&config, &airs, &proof.proof, &publics, &data.common)
            .map_err(|e| CircuitError::Verify(format!("{e:?}")))
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .map_err(|e| CircuitError::Verify(panic_message(e)))?
}
