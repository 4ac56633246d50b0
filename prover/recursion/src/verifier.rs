//! The in-circuit shard verifier, part 1: one circuit proves, for a real shard proof, that
//! - the Fiat–Shamir transcript is the native verifier's: every challenge (α, ζ, the batching
//!   and folding challenges, the query indices) is recomputed from the seeds, the statement's
//!   public values, the verifying key's commitment and the proof's commitments, openings and
//!   proof-of-work witnesses, with the three proof-of-work checks;
//! - every Merkle opening the proof contains (the three input trees and every FRI round, at
//!   every query) hashes from its opened values to the commitment the transcript absorbed, at
//!   the leaf the query index selects;
//! - ζ^N, the first step of the out-of-domain check, is computed from the transcript's ζ.
//!
//! It does **not** yet check the FRI folding, the DEEP quotient or the AIR constraints at ζ
//! (part 2), so it is not yet a full verifier.
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

use super::circuit::{permutation_rows, CircuitError, Table, Witness};
use crate::native::openings::{self, ProofOpenings, Tree};
use crate::native::replay::{Event, Tag};
use crate::tables::ext::{ExtArithTable, ExtProgram};
use crate::tables::index::{self, Check, IndexRow, IndexTable};
use crate::tables::poseidon2::{self, Poseidon2Table};
use crate::tables::transcript::{self, Call, Step, TranscriptTable};
use crate::tables::tree::{self, OpeningLayout, OpeningWitness, TreeTable};
use p3_field::BasedVectorSpace;

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
/// Tables each proof adds: transcript, openings, index, arithmetic.
const TABLES_PER_PROOF: usize = 4;
/// Shapes whose reference layout [`layout_for`] keeps.
const REFERENCE_CACHE: usize = 16;
/// The challenge ζ is the second challenge-field sample (after the constraint-batching α).
const ZETA: u32 = 1;

/// What the circuit's verifier fixes for one shard proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardLayout {
    /// The transcript's calls.
    pub steps: Vec<Step>,
    /// Positions of the statement's public values among the steps.
    pub public_range: Range<usize>,
    /// Every opening, query by query, trees in [`ProofOpenings::trees`] order.
    pub openings: Vec<OpeningLayout>,
    /// The index table's rows.
    pub index_rows: Vec<IndexRow>,
    /// Bits of a query index (log2 of the trace's low-degree extension: trace rows plus the
    /// blowup).
    pub index_bits: usize,
    /// Index shifts the openings read, with how many openings read each.
    pub shifts: Vec<(usize, u32)>,
    /// Proof-of-work bits.
    pub pow_bits: usize,
    /// Positions of ζ's coefficients.
    pub zeta: [u32; 4],
    /// Added to every position and id: the proof's range when several are checked together,
    /// set by [`tables`] and [`witness`] from the proof's place in their list, never by hand.
    offset: u32,
}

/// The prover's side: every call's value and every opening.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardWitness {
    /// The value of each transcript call.
    pub values: Vec<Val>,
    /// The openings, in layout order.
    pub openings: Vec<OpeningWitness>,
}

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
    let layout = layout(&events, &public, &prep_root, &opened)?;
    let witness = ShardWitness {
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
    };
    Ok((layout, witness))
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
    Ok(layout)
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

/// The layout of a replayed transcript and its openings.
fn layout(
    events: &[Event],
    public: &[Val],
    prep_root: &[Val; 8],
    opened: &ProofOpenings,
) -> Result<ShardLayout, VerifyError> {
    let pos_of = |want: Tag| -> Result<u32, VerifyError> {
        events
            .iter()
            .position(|e| e.tag == want)
            .map(|p| p as u32)
            .ok_or_else(|| invalid(format!("the transcript has no {want:?}")))
    };
    // Roots in absorb order: 0 the trace, 1 the preprocessed trace, 2 the quotient, then one
    // per FRI round. The public values follow the preprocessed root.
    let prep_end = pos_of(Tag::Root {
        index: 1,
        element: 7,
    })? as usize
        + 1;
    let public_range = prep_end..prep_end + public.len();
    if events.get(public_range.clone()).map(|e| {
        e.iter()
            .zip(public)
            .all(|(e, v)| e.tag == Tag::Value && e.call == Call::Observe(*v))
    }) != Some(true)
    {
        return Err(invalid(
            "the public values are not absorbed after the preprocessed commitment",
        ));
    }
    // Which root each tree ends at, by the protocol's order (never by value: two trees can
    // have the same root, e.g. an all-zero trace and the always-zero quotient), checked.
    let mut tree_roots = Vec::with_capacity(opened.trees.len());
    for t in &opened.trees {
        let index = match t.tree {
            Tree::Input(0) => 0,
            Tree::Input(1) => 2,
            Tree::Input(2) => 1,
            Tree::Round(r) => 3 + r as u32,
            Tree::Input(_) => return Err(invalid("a fourth input tree")),
        };
        let start = pos_of(Tag::Root { index, element: 0 })? as usize;
        let absorbed = (0..8).all(|j| {
            events.get(start + j).map(|e| (e.tag, e.call))
                == Some((
                    Tag::Root {
                        index,
                        element: j as u8,
                    },
                    Call::Observe(t.root[j]),
                ))
        });
        if !absorbed {
            return Err(invalid(format!(
                "the root of {:?} is not the commitment absorbed {index}th",
                t.tree
            )));
        }
        tree_roots.push((index, start));
    }
    let queries = opened.queries.len() as u32;
    let mut shifts: Vec<(usize, u32)> = Vec::new();
    let mut shift_id = Vec::with_capacity(opened.trees.len());
    for t in &opened.trees {
        match shifts.iter().position(|(s, _)| *s == t.index_shift) {
            Some(i) => {
                shifts[i].1 += 1;
                shift_id.push(i);
            }
            None => {
                shift_id.push(shifts.len());
                shifts.push((t.index_shift, 1));
            }
        }
    }

    let mut steps = Vec::with_capacity(events.len());
    let mut index_rows = Vec::new();
    let (mut index_bits, mut pow_bits) = (None, None);
    for (pos, e) in events.iter().enumerate() {
        let observe = matches!(e.call, Call::Observe(_));
        let public_value = public_range.contains(&pos);
        let (known, sends) = match e.tag {
            Tag::Seed => (Some(e.call.value()), 0),
            Tag::Value if public_value => (Some(e.call.value()), 0),
            Tag::Root { index, element } => {
                let reads = tree_roots.iter().filter(|(i, _)| *i == index).count() as u32;
                let known = (index == 1).then(|| prep_root[usize::from(element) % 8]);
                (known, reads * queries)
            }
            Tag::IndexSample { bits } => {
                let base = index_rows
                    .iter()
                    .filter(|r: &&IndexRow| matches!(r.check, Check::Query { .. }))
                    .count()
                    * shifts.len();
                index_rows.push(IndexRow {
                    pos: pos as u32,
                    check: Check::Query { base: base as u32 },
                });
                if *index_bits.get_or_insert(bits) != bits {
                    return Err(invalid("query indices of different widths"));
                }
                (None, 1)
            }
            Tag::PowSample { bits } => {
                index_rows.push(IndexRow {
                    pos: pos as u32,
                    check: Check::Pow,
                });
                if *pow_bits.get_or_insert(bits) != bits {
                    return Err(invalid("proof-of-work checks of different difficulty"));
                }
                (None, 1)
            }
            Tag::Challenge { index: ZETA, .. } => (None, 1),
            _ => (None, 0),
        };
        steps.push(Step {
            observe,
            known,
            sends,
        });
    }
    if events.len() >= SPAN as usize {
        return Err(invalid("the transcript is too long for the circuit"));
    }
    if let Some(Tag::Root { index: 1, element }) = events
        .iter()
        .zip(&steps)
        .find(|(e, s)| {
            matches!(e.tag, Tag::Root { index: 1, .. }) && s.known != Some(e.call.value())
        })
        .map(|(e, _)| e.tag)
    {
        return Err(invalid(format!(
            "element {element} of the preprocessed root differs from the verifying key's"
        )));
    }
    let mut openings = Vec::with_capacity(opened.queries.len() * opened.trees.len());
    for q in 0..opened.queries.len() {
        for (t, tree) in opened.trees.iter().enumerate() {
            openings.push(OpeningLayout {
                values: tree.widths.iter().sum(),
                depth: tree.log_height,
                root_pos: tree_roots[t].1 as u32,
                index_id: (q * shifts.len() + shift_id[t]) as u32,
            });
        }
    }
    let mut zeta = [0u32; 4];
    for (coeff, pos) in zeta.iter_mut().enumerate() {
        *pos = pos_of(Tag::Challenge {
            index: ZETA,
            coeff: coeff as u8,
        })?;
    }
    let index_bits = usize::from(index_bits.ok_or_else(|| invalid("no query indices"))?);
    if index_bits != opened.log_max_height
        || opened
            .trees
            .iter()
            .any(|t| t.log_height + t.index_shift != index_bits)
    {
        return Err(invalid(
            "a tree's height and index shift do not add up to the query index width",
        ));
    }
    Ok(ShardLayout {
        steps,
        public_range,
        openings,
        index_rows,
        index_bits,
        shifts,
        pow_bits: usize::from(pow_bits.unwrap_or(0)),
        zeta,
        offset: 0,
    })
}

impl ShardLayout {
    /// The same layout in range `slot` (positions and ids moved by `slot · SPAN`).
    fn at(&self, slot: usize) -> Self {
        Self {
            offset: slot as u32 * SPAN,
            ..self.clone()
        }
    }

    fn shifted_steps(&self) -> Vec<transcript::Duplex> {
        let mut duplexes = transcript::layout(&self.steps);
        for d in &mut duplexes {
            for slot in d
                .absorbed
                .iter_mut()
                .chain(d.samples.iter_mut().map(|(_, s)| s))
            {
                slot.pos += self.offset;
            }
        }
        duplexes
    }

    fn shifted_openings(&self) -> Vec<OpeningLayout> {
        self.openings
            .iter()
            .map(|o| OpeningLayout {
                root_pos: o.root_pos + self.offset,
                index_id: o.index_id + self.offset,
                ..*o
            })
            .collect()
    }

    fn shifted_index_rows(&self) -> Vec<IndexRow> {
        self.index_rows
            .iter()
            .map(|r| IndexRow {
                pos: r.pos + self.offset,
                check: match r.check {
                    Check::Query { base } => Check::Query {
                        base: base + self.offset,
                    },
                    Check::Pow => Check::Pow,
                },
            })
            .collect()
    }

    fn program(&self) -> (ExtProgram, [u32; 4]) {
        (
            // ζ^N for the N = 2^(index_bits − LOG_BLOWUP) trace rows: that many squarings.
            ExtProgram::square_n(
                self.index_bits
                    .saturating_sub(starkscale_prover::config::LOG_BLOWUP),
            ),
            self.zeta.map(|p| p + self.offset),
        )
    }

    /// This proof's tables (all but the shared permutation table).
    fn tables(&self) -> [Table; TABLES_PER_PROOF] {
        let (program, zeta) = self.program();
        [
            Table::Transcript(TranscriptTable::new(&self.shifted_steps())),
            Table::Tree(TreeTable::new(&self.shifted_openings())),
            Table::Index(IndexTable::new(
                &self.shifted_index_rows(),
                self.index_bits,
                &self.shifts,
                self.pow_bits,
            )),
            Table::Ext(ExtArithTable::reading(&program, zeta, self.offset)),
        ]
    }
}

fn check_count(proofs: usize) -> Result<(), CircuitError> {
    match proofs {
        0 => Err(CircuitError::Empty),
        n if n > MAX_PROOFS as usize => Err(CircuitError::Program(format!(
            "{n} proofs: one circuit checks at most {MAX_PROOFS}"
        ))),
        _ => Ok(()),
    }
}

/// The circuit's tables for `layouts`: the shared permutation table, then each proof's tables,
/// the `i`-th proof's positions and ids in range `i` (so proofs never read each other's
/// values).
pub fn tables(layouts: &[ShardLayout]) -> Result<Vec<Table>, CircuitError> {
    check_count(layouts.len())?;
    let mut out = vec![Table::Poseidon2(Box::<Poseidon2Table>::default())];
    for (slot, layout) in layouts.iter().enumerate() {
        out.extend(layout.at(slot).tables());
    }
    Ok(out)
}

/// The public values of [`tables`]: none (the statement is in the transcript's layout).
pub fn public_values(layouts: &[ShardLayout]) -> Vec<Vec<Val>> {
    vec![Vec::new(); 1 + TABLES_PER_PROOF * layouts.len()]
}

/// The circuit's witness for `proofs` (layout and witness of each, in the order of [`tables`]).
pub fn witness(proofs: &[(ShardLayout, ShardWitness)]) -> Result<Witness, CircuitError> {
    check_count(proofs.len())?;
    let mut lookups = Vec::new();
    let mut traces: Vec<RowMajorMatrix<Val>> = Vec::new();
    for (slot, (layout, w)) in proofs.iter().enumerate() {
        let layout = &layout.at(slot);
        if w.openings.len() != layout.openings.len() || w.values.len() != layout.steps.len() {
            return Err(CircuitError::Prove(
                "the witness does not match the layout".into(),
            ));
        }
        let (t, l) = transcript::trace(&layout.shifted_steps(), &w.values, layout.offset);
        lookups.extend(l);
        traces.push(t);
        let (t, l) = tree::trace(&layout.shifted_openings(), &w.openings);
        lookups.extend(l);
        traces.push(t);
        traces.push(index::trace(
            &layout.shifted_index_rows(),
            &w.values,
            layout.offset,
        ));
        let (program, _) = layout.program();
        let zeta = Challenge::from_basis_coefficients_fn(|c| {
            w.values
                .get(layout.zeta[c] as usize)
                .copied()
                .unwrap_or_default()
        });
        let (t, _) = crate::tables::ext::trace(&program, zeta, layout.offset)
            .map_err(CircuitError::Program)?;
        traces.push(t);
    }
    let mut all = vec![poseidon2::trace(&permutation_rows(lookups))];
    all.extend(traces);
    let layouts: Vec<ShardLayout> = proofs.iter().map(|(l, _)| l.clone()).collect();
    Ok(Witness {
        tables: tables(&layouts)?,
        traces: all,
        public_values: public_values(&layouts),
    })
}

/// A real shard proof's circuit witness (8 × 20 weights, one vector: trees of height 2^9, the
/// preprocessed leaves three sponge rows long), built once, and a check that a corrupted copy
/// is refused. Table order: permutation, transcript, openings, index, arithmetic.
#[cfg(test)]
pub(crate) mod fixture {
    #![allow(clippy::unwrap_used)]
    use std::sync::OnceLock;

    use super::*;

    pub(crate) const TRANSCRIPT: usize = 1;
    pub(crate) const TREE: usize = 2;
    pub(crate) const INDEX: usize = 3;
    pub(crate) const EXT: usize = 4;

    pub(crate) fn honest() -> Witness {
        static W: OnceLock<Witness> = OnceLock::new();
        W.get_or_init(|| {
            let w = IntMatrix::new(8, 20, (0..160).map(|i| i % 9 - 4).collect()).unwrap();
            let x = IntMatrix::new(20, 1, (0..20).map(|i| i % 5 - 2).collect()).unwrap();
            let pk = starkscale_prover::shard::setup(&w).unwrap();
            let binding = Binding {
                job_id: [1; 32],
                shard_index: 0,
                worker: [2; 32],
            };
            let proven = starkscale_prover::shard::prove(&pk, &x, &binding).unwrap();
            let proof = shard_circuit(
                pk.verifying_key(),
                &x,
                &proven.output,
                &binding,
                &proven.proof,
            )
            .unwrap();
            witness(&[proof]).unwrap()
        })
        .clone()
    }

    /// Whether the witness with `cell` of `table` changed by `f` is refused (by the prover or
    /// by the verifier of the honest tables).
    pub(crate) fn refused(
        table: usize,
        cols: usize,
        (row, col): (usize, usize),
        f: impl Fn(Val) -> Val,
    ) -> bool {
        let mut w = honest();
        let cell = &mut w.traces[table].values[row * cols + col];
        *cell = f(*cell);
        w.prove_and_verify().is_err()
    }

    #[test]
    fn the_honest_fixture_verifies() {
        honest().prove_and_verify().unwrap();
    }
}
