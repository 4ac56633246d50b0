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
/// The tables each proof adds, in circuit order (after the shared permutation table).
pub const PROOF_TABLES: [&str; 6] = ["transcript", "openings", "index", "program", "deep", "fri"];
/// Tables each proof adds.
const TABLES_PER_PROOF: usize = PROOF_TABLES.len();
/// Shapes whose reference layout [`layout_for`] keeps.
const REFERENCE_CACHE: usize = 16;
/// Challenge-field samples in draw order: the constraint-batching α, ζ, the FRI batching
/// challenge, then one folding challenge per commit-phase round.
const CONSTRAINT_ALPHA: u32 = 0;
const ZETA: u32 = 1;
const FRI_ALPHA: u32 = 2;
const FIRST_BETA: u32 = 3;

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
    /// The proof's shape (part 2).
    pub shape: Shape,
    /// Transcript positions part 2 reads.
    pub positions: Positions,
    /// Each query's first chunk id of each tree's opening (trees in
    /// [`ProofOpenings::trees`] order) and each tree's number of opened values.
    pub chunks: Vec<Vec<u32>>,
    /// Values opened per query in each tree.
    pub tree_values: Vec<usize>,
    /// Part 2: domain values, DEEP and FRI rows, the program.
    pub checks: Checks,
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
    let outputs = statement_outputs(vk, x, y, binding)?;
    let layout = layout(&events, &public, &outputs, &prep_root, &opened)?;
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
    let layout = layout(&events, &public, &outputs, &prep_root, &opened)?;
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

/// The layout of a replayed transcript and its openings.
fn layout(
    events: &[Event],
    public: &[Val],
    outputs: &[Vec<Val>],
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
                    check: Check::Query {
                        base: base as u32,
                        values: 0,
                    },
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
    let mut chunks = Vec::with_capacity(opened.queries.len());
    let mut next_chunk = 0u32;
    for q in 0..opened.queries.len() {
        let mut firsts = Vec::with_capacity(opened.trees.len());
        for (t, tree) in opened.trees.iter().enumerate() {
            let o = OpeningLayout {
                values: tree.widths.iter().sum(),
                depth: tree.log_height,
                root_pos: tree_roots[t].1 as u32,
                index_id: (q * shifts.len() + shift_id[t]) as u32,
                chunk_base: next_chunk,
            };
            firsts.push(next_chunk);
            next_chunk += o.leaf_rows() as u32;
            openings.push(o);
        }
        chunks.push(firsts);
    }
    if next_chunk >= SPAN {
        return Err(invalid("the openings are too long for the circuit"));
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
    let (shape, tree_values) = shape_of(opened, index_bits)?;
    let positions = positions_of(events, &shape)?;
    let checks = part2(&shape, &positions, &chunks, &tree_values, public, outputs)?;
    // Each query row's domain values start at its id range.
    let mut query = 0;
    for row in &mut index_rows {
        if let Check::Query { values, .. } = &mut row.check {
            *values = shape.domain_id(&checks.domain, query, 0);
            query += 1;
        }
    }
    // The values other tables read from the transcript: the program's, α (DEEP, once) and
    // each round's β (FRI, once per query).
    let mut reads = checks.program.transcript_reads();
    for pos in positions.fri_alpha {
        *reads.entry(pos).or_insert(0) += 1;
    }
    for beta in &positions.betas {
        for pos in beta {
            *reads.entry(*pos).or_insert(0) += shape.queries as u32;
        }
    }
    for (pos, n) in reads {
        let step = steps
            .get_mut(pos as usize)
            .ok_or_else(|| invalid("a read outside the transcript"))?;
        step.sends += n;
    }
    Ok(ShardLayout {
        steps,
        public_range,
        openings,
        index_rows,
        index_bits,
        shifts,
        pow_bits: usize::from(pow_bits.unwrap_or(0)),
        shape,
        positions,
        chunks,
        tree_values,
        checks,
        offset: 0,
    })
}

/// The proof's shape from its openings: trees in the verifier's order (main trace, quotient
/// chunk, preprocessed trace, rounds), every input tree of the full height.
fn shape_of(opened: &ProofOpenings, index_bits: usize) -> Result<(Shape, Vec<usize>), VerifyError> {
    let widths: Vec<&[usize]> = opened.trees.iter().map(|t| t.widths.as_slice()).collect();
    let kinds: Vec<Tree> = opened.trees.iter().map(|t| t.tree).collect();
    let (vectors, k) = match (kinds.get(..3), widths.get(..3)) {
        (Some([Tree::Input(0), Tree::Input(1), Tree::Input(2)]), Some([[v], [4], [k]])) => (*v, *k),
        _ => {
            return Err(invalid(
                "the input trees are not one main, one quotient chunk and one preprocessed matrix",
            ))
        }
    };
    if opened.trees[..3].iter().any(|t| t.index_shift != 0) {
        return Err(invalid("an input tree below the full height"));
    }
    let log_arities = opened.trees[3..]
        .iter()
        .enumerate()
        .map(|(r, t)| match (t.tree, t.log_arity) {
            (Tree::Round(i), Some(a)) if i == r => Ok(a),
            _ => Err(invalid("the FRI rounds are out of order")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let shape = Shape {
        log_n: index_bits
            .checked_sub(starkscale_prover::config::LOG_BLOWUP)
            .ok_or_else(|| invalid("a trace shorter than the blowup"))?,
        index_bits,
        vectors,
        k,
        log_arities,
        queries: opened.queries.len(),
    };
    let values = opened.trees.iter().map(|t| t.widths.iter().sum()).collect();
    Ok((shape, values))
}

/// Where part 2's inputs are in the transcript.
fn positions_of(events: &[Event], shape: &Shape) -> Result<Positions, VerifyError> {
    let challenge = |index: u32| -> Result<[u32; D], VerifyError> {
        let mut out = [0u32; D];
        for (coeff, pos) in out.iter_mut().enumerate() {
            *pos = events
                .iter()
                .position(|e| {
                    e.tag
                        == Tag::Challenge {
                            index,
                            coeff: coeff as u8,
                        }
                })
                .ok_or_else(|| invalid(format!("the transcript has no challenge {index}")))?
                as u32;
        }
        Ok(out)
    };
    // Opened values: every value absorbed between ζ and the FRI batching challenge; the final
    // polynomial: every value absorbed after the last folding challenge, before the queries.
    let values_between = |from: u32, to: usize| -> Vec<u32> {
        (from as usize + 1..to)
            .filter(|&p| events.get(p).map(|e| e.tag) == Some(Tag::Value))
            .map(|p| p as u32)
            .collect()
    };
    let ext = |positions: Vec<u32>, what: &str| -> Result<Vec<[u32; D]>, VerifyError> {
        if !positions.len().is_multiple_of(D) {
            return Err(invalid(format!("{what}: not whole extension values")));
        }
        Ok(positions
            .chunks_exact(D)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect())
    };
    let zeta = challenge(ZETA)?;
    let fri_alpha = challenge(FRI_ALPHA)?;
    let betas = (0..shape.log_arities.len() as u32)
        .map(|r| challenge(FIRST_BETA + r))
        .collect::<Result<Vec<_>, _>>()?;
    let first_query = events
        .iter()
        .position(|e| matches!(e.tag, Tag::IndexSample { .. }))
        .ok_or_else(|| invalid("no query indices"))?;
    let last_challenge = betas.last().unwrap_or(&fri_alpha)[D - 1];
    let opened = ext(
        values_between(zeta[D - 1], fri_alpha[0] as usize),
        "opened values",
    )?;
    let final_poly = ext(
        values_between(last_challenge, first_query),
        "final polynomial",
    )?;
    if opened.len() != shape.vectors + D + shape.k {
        return Err(invalid(format!(
            "{} values opened at ζ, expected {}",
            opened.len(),
            shape.vectors + D + shape.k
        )));
    }
    Ok(Positions {
        constraint_alpha: challenge(CONSTRAINT_ALPHA)?,
        zeta,
        fri_alpha,
        betas,
        opened,
        final_poly,
    })
}

/// One proof's traces and the permutation inputs they look up.
type ProofTraces = (Vec<RowMajorMatrix<Val>>, Vec<[Val; poseidon2::WIDTH]>);

impl ShardLayout {
    /// The same layout in range `slot` (positions and ids moved by `slot · SPAN`).
    fn at(&self, slot: usize) -> Self {
        Self {
            offset: slot as u32 * SPAN,
            ..self.clone()
        }
    }

    /// This layout's place in the list of proofs checked together.
    fn slot(&self) -> usize {
        (self.offset / SPAN) as usize
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
                chunk_base: o.chunk_base + self.offset,
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
                    Check::Query { base, values } => Check::Query {
                        base: base + self.offset,
                        values: values + self.offset,
                    },
                    Check::Pow => Check::Pow,
                },
            })
            .collect()
    }

    fn shifted_deep(&self) -> Vec<deep::DeepRow> {
        self.checks
            .deep
            .iter()
            .map(|r| deep::DeepRow {
                chunk: r.chunk + self.offset,
                out: r.out.map(|id| id + self.offset),
                ..*r
            })
            .collect()
    }

    fn shifted_fri(&self) -> Vec<FriRow> {
        let o = self.offset;
        self.checks
            .fri
            .iter()
            .map(|r| FriRow {
                chunk: r.chunk + o,
                beta: r.beta.map(|p| p + o),
                input: r.input + o,
                sinv: r.sinv + o,
                bits: r.bits.map(|b| b + o),
                output: r.output + o,
                ..*r
            })
            .collect()
    }

    /// This proof's tables (all but the shared permutation table), in [`PROOF_TABLES`] order.
    fn tables(&self) -> [Table; TABLES_PER_PROOF] {
        [
            Table::Transcript(TranscriptTable::new(&self.shifted_steps())),
            Table::Tree(TreeTable::new(&self.shifted_openings())),
            Table::Index(self.index_table()),
            Table::Ext(ExtArithTable::for_program(
                &self.checks.program,
                self.offset,
            )),
            Table::Deep(DeepTable::new(
                &self.shifted_deep(),
                self.positions.fri_alpha.map(|p| p + self.offset),
            )),
            Table::Fri(FriTable::new(&self.shifted_fri())),
        ]
    }

    fn index_table(&self) -> IndexTable {
        IndexTable::new(
            &self.shifted_index_rows(),
            self.index_bits,
            &self.shifts,
            self.pow_bits,
            &self.checks.domain,
        )
    }

    /// The traces of this proof's tables (in [`PROOF_TABLES`] order) for `w`, and the
    /// permutations they look up. With `lenient`, a witness whose checks fail still gives
    /// traces (an assertion keeps its nonzero value, an inverse of zero is zero): the circuit,
    /// not the witness builder, then refuses it.
    fn traces(&self, w: &ShardWitness, lenient: bool) -> Result<ProofTraces, CircuitError> {
        if w.openings.len() != self.openings.len() {
            return Err(CircuitError::WitnessShape {
                proof: self.slot(),
                what: "openings",
                got: w.openings.len(),
                want: self.openings.len(),
            });
        }
        if w.values.len() != self.steps.len() {
            return Err(CircuitError::WitnessShape {
                proof: self.slot(),
                what: "transcript values",
                got: w.values.len(),
                want: self.steps.len(),
            });
        }
        let mut traces = Vec::with_capacity(TABLES_PER_PROOF);
        let mut lookups = Vec::new();
        let (t, l) = transcript::trace(&self.shifted_steps(), &w.values, self.offset);
        lookups.extend(l);
        traces.push(t);
        let (t, l) = tree::trace(&self.shifted_openings(), &w.openings);
        lookups.extend(l);
        traces.push(t);
        traces.push(index::trace(
            &self.index_table(),
            &self.shifted_index_rows(),
            &w.values,
            self.offset,
        ));

        // Part 2's native values, as the tables compute them.
        let at = |pos: u32| w.values.get(pos as usize).copied();
        let ext_at = |p: [u32; D]| fri::from_coeffs(&p.map(|i| at(i).unwrap_or_default()));
        let mask = (1u64 << self.index_bits.min(63)) - 1;
        let indices: Vec<u64> = self
            .index_rows
            .iter()
            .filter(|r| matches!(r.check, Check::Query { .. }))
            .map(|r| at(r.pos).map_or(0, |v| u64::from(v.as_canonical_u32()) & mask))
            .collect();
        let domain = &self.checks.domain;
        let domain_values: Vec<Vec<Val>> = indices.iter().map(|i| domain.values(*i)).collect();
        let mut chunk_values: HashMap<u32, [Val; DIGEST]> = HashMap::new();
        for (o, ow) in self.openings.iter().zip(&w.openings) {
            for c in 0..o.leaf_rows() {
                let mut chunk = [Val::ZERO; DIGEST];
                for (dst, v) in chunk.iter_mut().zip(ow.values.iter().skip(c * DIGEST)) {
                    *dst = *v;
                }
                chunk_values.insert(o.chunk_base + c as u32, chunk);
            }
        }
        let chunk = |id: u32| chunk_values.get(&id).copied().unwrap_or_default();
        let alpha = ext_at(self.positions.fri_alpha);
        let deep_chunks: Vec<[Val; DIGEST]> =
            self.checks.deep.iter().map(|r| chunk(r.chunk)).collect();
        let (deep_trace, sums) = deep::trace(&self.shifted_deep(), &deep_chunks, alpha);
        let zeta = ext_at(self.positions.zeta);
        let opened: Vec<Challenge> = self.positions.opened.iter().map(|p| ext_at(*p)).collect();
        let s_zeta = checks::batched_at_zeta(alpha, &opened);
        let rounds = self.shape.log_arities.len();
        let chains = domain.chains.len();
        let mut folds: Vec<Challenge> = Vec::with_capacity(self.checks.fri.len());
        let mut fri_witness = Vec::with_capacity(self.checks.fri.len());
        for (i, row) in self.checks.fri.iter().enumerate() {
            let (q, r) = (i / rounds.max(1), i % rounds.max(1));
            let dv = domain_values.get(q).cloned().unwrap_or_default();
            let dv_at = |j: usize| dv.get(j).copied().unwrap_or_default();
            let base: Vec<Val> = (0..(1u32 << row.log_arity) * D as u32 / DIGEST as u32)
                .flat_map(|c| chunk(row.chunk + c))
                .collect();
            let evals: Vec<Challenge> = base.chunks_exact(D).map(fri::from_coeffs).collect();
            let input = if r == 0 {
                let s_x = sums.get(q).copied().unwrap_or_default();
                checks::reduced_opening(zeta, dv_at(0), s_zeta, s_x)
            } else {
                folds.last().copied().unwrap_or_default()
            };
            let shift: usize = self.shape.log_arities[..r].iter().sum();
            let witness = FriWitness {
                beta: ext_at(row.beta),
                sinv: dv_at(1 + r),
                bits: (0..row.log_arity)
                    .map(|t| dv_at(chains + shift + t))
                    .collect(),
                evals,
                input,
            };
            folds.push(fri::fold(&witness.evals, witness.beta, witness.sinv));
            fri_witness.push(witness);
        }
        // The program's external operands, by id.
        let shape = &self.shape;
        let mut external: HashMap<u32, Challenge> = HashMap::new();
        for (q, dv) in domain_values.iter().enumerate() {
            for (j, v) in dv.iter().enumerate() {
                external.insert(shape.domain_id(domain, q, j), Challenge::from(*v));
            }
        }
        for (q, s) in sums.iter().enumerate() {
            external.insert(shape.deep_id(domain, q), *s);
        }
        for (i, f) in folds.iter().enumerate() {
            let (q, r) = (i / rounds.max(1), i % rounds.max(1));
            external.insert(shape.fri_id(domain, q, r), *f);
        }
        let program = &self.checks.program;
        let ext_of = |id: u32| external.get(&id).copied();
        let values = program
            .run(at, ext_of, Challenge::ZERO, lenient)
            .map_err(|source| CircuitError::Program {
                proof: self.slot(),
                source,
            })?;
        let extra: HashMap<usize, u32> = if rounds > 0 {
            self.checks.reduced.iter().map(|i| (*i, 1)).collect()
        } else {
            HashMap::new()
        };
        traces.push(ext_table::program_trace(
            program,
            &values,
            at,
            ext_of,
            &extra,
            self.offset,
        ));
        traces.push(deep_trace);
        traces.push(fri::trace(&self.shifted_fri(), &fri_witness));
        Ok((traces, lookups))
    }
}

fn check_count(proofs: usize) -> Result<(), CircuitError> {
    match proofs {
        0 => Err(CircuitError::Empty),
        got if got > MAX_PROOFS as usize => Err(CircuitError::TooManyProofs {
            got,
            max: MAX_PROOFS,
        }),
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
/// Fails if a proof's own checks fail (see [`witness_lenient`] for a witness the circuit
/// refuses instead).
pub fn witness(proofs: &[(ShardLayout, ShardWitness)]) -> Result<Witness, CircuitError> {
    witness_with(proofs, false)
}

/// [`witness`], but a proof whose checks fail still gives traces, for the circuit to refuse:
/// what a prover trying to pass a bad proof would hand the circuit (the differential tests).
pub fn witness_lenient(proofs: &[(ShardLayout, ShardWitness)]) -> Result<Witness, CircuitError> {
    witness_with(proofs, true)
}

fn witness_with(
    proofs: &[(ShardLayout, ShardWitness)],
    lenient: bool,
) -> Result<Witness, CircuitError> {
    check_count(proofs.len())?;
    let mut lookups = Vec::new();
    let mut traces: Vec<RowMajorMatrix<Val>> = Vec::new();
    for (slot, (layout, w)) in proofs.iter().enumerate() {
        let (t, l) = layout.at(slot).traces(w, lenient)?;
        traces.extend(t);
        lookups.extend(l);
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
    pub(crate) const DEEP: usize = 5;
    pub(crate) const FRI: usize = 6;

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
        let w = honest();
        w.prove_and_verify().unwrap();
        assert!(w.security_bits() >= 100, "{} bits", w.security_bits());
    }
}
