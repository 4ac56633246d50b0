//! The in-circuit shard verifier: one circuit proves, for one or several real shard proofs,
//! everything the native verifier checks:
//! - the Fiat–Shamir transcript is the native verifier's: every challenge (α, ζ, the batching
//!   and folding challenges, the query indices) is recomputed from the seeds, the statement's
//!   public values, the verifying key's commitment and the proof's commitments, openings and
//!   proof-of-work witnesses, with the three proof-of-work checks;
//! - every Merkle opening the proof contains (the three input trees and every FRI round, at
//!   every query) hashes from its opened values to the commitment the transcript absorbed, at
//!   the leaf the query index selects;
//! - the DEEP quotient, FRI folding, the final polynomial and the AIR's constraints at ζ
//!   ([`crate::checks`]).
//!
//! # Layout and witness
//!
//! [`ShardLayout`] is everything the circuit's verifier fixes: the transcript's call sequence
//! (which calls observe or sample, the values it knows — seeds, the statement's public values,
//! the preprocessed commitment — and which tables read each call), the openings' shapes and
//! where their roots and indices come from, the index rows. [`ShardWitness`] is the rest: the
//! values of every call and the openings. The prover gets both from a replay of the native
//! verifier on its proof ([`shard_circuit`]); the verifier gets the layout from the statement
//! alone ([`layout_for`]), and a test checks the two agree.
//!
//! # Several proofs
//!
//! [`tables`] and [`witness`] move the `i`-th proof's transcript positions and ids into range
//! `i`, so the circuits of several proofs share one Poseidon2 table and prove together without
//! reading each other's values.

use std::ops::Range;

use p3_matrix::dense::RowMajorMatrix;

use std::collections::HashMap;

use super::circuit::{permutation_rows, CircuitError, Table, Witness};
use crate::checks::{self, Checks, Positions, Shape};
use crate::native::openings::{self, ProofOpenings, Tree};
use crate::native::replay::{Event, Tag};
use crate::tables::deep::{self, DeepTable};
use crate::tables::ext::{self as ext_table, ExtArithTable, D};
use crate::tables::fri::{self, FriRow, FriTable, FriWitness};
use crate::tables::index::{self, Check, IndexRow, IndexTable};
use crate::tables::poseidon2::{self, Poseidon2Table};
use crate::tables::transcript::{self, Call, Step, TranscriptTable};
use crate::tables::tree::{self, OpeningLayout, OpeningWitness, TreeTable, DIGEST};
use p3_air::BaseAir;
use p3_field::{PrimeCharacteristicRing, PrimeField32};

use starkscale_prover::config::{Challenge, Val};
use starkscale_prover::error::VerifyError;
use starkscale_prover::matrix::IntMatrix;
use starkscale_prover::shard::{ShardProof, VerifyingKey};
use starkscale_prover::statement::Binding;

/// Transcript positions and index ids of one proof stay below this, so that proofs checked
/// together get disjoint ranges.
pub const SPAN: u32 = 1 << 22;
/// Most proofs one circuit checks (every offset position stays below the field's modulus).
pub const MAX_PROOFS: u32 = 256;
/// The tables each proof adds, after the shared permutation table: the one place their order
/// in the circuit is written ([`ProofTable::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofTable {
    /// The transcript (challenger) table.
    Transcript,
    /// The Merkle-openings table.
    Openings,
    /// The index, proof-of-work and domain-value table.
    Index,
    /// The program table (the verifier's arithmetic).
    Program,
    /// The DEEP table.
    Deep,
    /// The FRI table.
    Fri,
}

impl ProofTable {
    /// Every proof table, in circuit order.
    pub const ALL: [ProofTable; 6] = [
        ProofTable::Transcript,
        ProofTable::Openings,
        ProofTable::Index,
        ProofTable::Program,
        ProofTable::Deep,
        ProofTable::Fri,
    ];

    /// Where this table of the `slot`-th proof sits among the circuit's tables.
    pub fn position(self, slot: usize) -> usize {
        1 + slot * TABLES_PER_PROOF + self as usize
    }
}

/// Tables each proof adds.
const TABLES_PER_PROOF: usize = ProofTable::ALL.len();
/// Shapes whose reference layout [`layout_for`] keeps.
const REFERENCE_CACHE: usize = 16;
/// Challenge-field samples in draw order: the constraint-batching α, ζ, the FRI batching
/// challenge, then one folding challenge per commit-phase round.
const CONSTRAINT_ALPHA: u32 = 0;
const ZETA: u32 = 1;
const FRI_ALPHA: u32 = 2;
const FIRST_BETA: u32 = 3;

mod batch;
#[cfg(test)]
pub(crate) mod fixture;
mod layout;
mod witness;

pub use batch::{public_values, tables, witness, witness_lenient};
pub use layout::ShardLayout;
pub use witness::ShardWitness;

fn invalid(what: impl Into<String>) -> VerifyError {
    VerifyError::Invalid(what.into())
}

/// The layout and witness of `proof`, after every check of [`starkscale_prover::shard::verify`].
pub fn shard_circuit(
    vk: &VerifyingKey,
    x: &IntMatrix,
    y: &IntMatrix,
    binding: &Binding,
    proof: &ShardProof,
) -> Result<(ShardLayout, ShardWitness), VerifyError> {
    // One native verification records both the transcript and the Merkle openings.
    let (events, public, opened) = openings::replay_shard(vk, x, y, binding, proof)?;
    let prep_root = vk.commitment.map(Val::new);
    let outputs = statement_outputs(vk, x, y, binding)?;
    let layout = layout::from_replay(&events, &public, &outputs, &prep_root, &opened)?;
    Ok((layout, witness_of(&events, &opened)))
}

/// What a prover would hand the circuit for `proof`, whether or not it verifies: the layout
/// and witness of its lenient replay (`replay_shard_lenient`: proof-of-work and Merkle checks
/// recorded but not enforced), and the native verdict. The circuit must refuse the witness of
/// every proof the native verifier refuses (the differential tests).
pub fn shard_circuit_lenient(
    vk: &VerifyingKey,
    x: &IntMatrix,
    y: &IntMatrix,
    binding: &Binding,
    proof: &ShardProof,
) -> Result<(ShardLayout, ShardWitness, Result<(), String>), VerifyError> {
    let (events, public, opened, verdict) =
        openings::replay_shard_lenient(vk, x, y, binding, proof)?;
    let prep_root = vk.commitment.map(Val::new);
    let outputs = statement_outputs(vk, x, y, binding)?;
    let layout = layout::from_replay(&events, &public, &outputs, &prep_root, &opened)?;
    Ok((layout, witness_of(&events, &opened), verdict))
}

fn witness_of(events: &[Event], opened: &ProofOpenings) -> ShardWitness {
    ShardWitness {
        values: events.iter().map(|e| e.call.value()).collect(),
        openings: opened
            .queries
            .iter()
            .flat_map(|q| &q.openings)
            .map(|(_, o)| OpeningWitness {
                values: o.values.clone(),
                index: o.index,
                siblings: o.siblings.clone(),
            })
            .collect(),
    }
}

/// The layout of the circuit checking a proof of this statement, from the statement and the
/// shape alone: what a verifier of the circuit's proof computes, without the shard proof.
///
/// The transcript's call sequence, the openings and the index rows depend only on the shape
/// (k, rows, vectors), so they are taken from a reference proof of the same shape (pseudo-
/// random weights and inputs, proved here once per shape and cached: the cost of one shard
/// proof of that shape); the statement's public values and the verifying key's commitment
/// then replace the reference's.
/// For an honest proof of the statement this equals [`shard_circuit`]'s layout (tested).
pub fn layout_for(
    vk: &VerifyingKey,
    x: &IntMatrix,
    y: &IntMatrix,
    binding: &Binding,
) -> Result<ShardLayout, VerifyError> {
    let (_, public, _) = starkscale_prover::shard::statement_inputs(vk, x, y, binding)?;
    let (rows, k, n) = (vk.rows as usize, vk.k as usize, x.cols());
    let mut layout = reference_layout(rows, k, n)?;
    if layout.public_range.len() != public.len() {
        return Err(invalid("the reference statement has another shape"));
    }
    for (step, v) in layout.steps[layout.public_range.clone()]
        .iter_mut()
        .zip(&public)
    {
        step.known = Some(*v);
    }
    let prep = layout
        .openings
        .get(2)
        .map(|o| o.root_pos as usize)
        .ok_or_else(|| invalid("no preprocessed opening"))?;
    for (j, limb) in vk.commitment.iter().enumerate() {
        if let Some(step) = layout.steps.get_mut(prep + j) {
            step.known = Some(Val::new(*limb));
        }
    }
    // The program's constants are the statement's (its vectors and outputs).
    let outputs = statement_outputs(vk, x, y, binding)?;
    layout.checks = part2(
        &layout.shape,
        &layout.positions,
        &layout.chunks,
        &layout.tree_values,
        &public,
        &outputs,
    )?;
    Ok(layout)
}

/// The AIR's periodic output columns for the statement (each of the trace's height).
fn statement_outputs(
    vk: &VerifyingKey,
    x: &IntMatrix,
    y: &IntMatrix,
    binding: &Binding,
) -> Result<Vec<Vec<Val>>, VerifyError> {
    let (air, _, _) = starkscale_prover::shard::statement_inputs(vk, x, y, binding)?;
    Ok(air.periodic_columns().to_vec())
}

/// Part 2's layout from the shape and the statement (`public`: the digest, then the vectors).
fn part2(
    shape: &Shape,
    positions: &Positions,
    chunks: &[Vec<u32>],
    tree_values: &[usize],
    public: &[Val],
    outputs: &[Vec<Val>],
) -> Result<Checks, VerifyError> {
    let xs: Vec<Vec<Val>> = public
        .get(starkscale_prover::air::DIGEST_LEN..)
        .unwrap_or_default()
        .chunks(shape.k.max(1))
        .map(<[Val]>::to_vec)
        .collect();
    checks::checks(shape, positions, chunks, tree_values, &xs, outputs)
        .map_err(|e| invalid(e.to_string()))
}

/// The layout of a reference proof of shape (rows, k, n), made once per shape in a process
/// (the cache keeps the last [`REFERENCE_CACHE`] shapes).
fn reference_layout(rows: usize, k: usize, n: usize) -> Result<ShardLayout, VerifyError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Cache = Mutex<HashMap<(usize, usize, usize), ShardLayout>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Cache::default);
    if let Some(layout) = cache
        .lock()
        .ok()
        .and_then(|c| c.get(&(rows, k, n)).cloned())
    {
        return Ok(layout);
    }
    let reference = |rows: usize, cols: usize, salt: usize| {
        let data = (0..rows * cols)
            .map(|i| ((i * 7919 + salt) % 7) as i64 - 3)
            .collect();
        IntMatrix::new(rows, cols, data)
    };
    let shape_error = |e: starkscale_prover::ProverError| invalid(format!("reference proof: {e}"));
    let w0 = reference(rows, k, 1).map_err(|e| invalid(e.to_string()))?;
    let x0 = reference(k, n, 2).map_err(|e| invalid(e.to_string()))?;
    let pk0 = starkscale_prover::shard::setup(&w0).map_err(shape_error)?;
    let b0 = Binding {
        job_id: [0; 32],
        shard_index: 0,
        worker: [0; 32],
    };
    let proven = starkscale_prover::shard::prove(&pk0, &x0, &b0).map_err(shape_error)?;
    let (layout, _) = shard_circuit(pk0.verifying_key(), &x0, &proven.output, &b0, &proven.proof)?;
    if let Ok(mut c) = cache.lock() {
        if c.len() >= REFERENCE_CACHE {
            c.clear();
        }
        c.insert((rows, k, n), layout.clone());
    }
    Ok(layout)
}
