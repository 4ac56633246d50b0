//! Part 2 of the in-circuit verifier: what turns the transcript and the Merkle openings into a
//! complete verification of a shard proof. For one proof's shape and statement this builds
//!
//! - the **domain values** the index table computes from each query index (the DEEP point
//!   `x = g·ω_H^{rev(i)}`, each FRI round's `s⁻¹`, the final point `ω_H^{rev_H(i_final)}`,
//!   and the bits that pick each round's position);
//! - the **DEEP rows**: the input trees' leaf chunks of every query, reduced with the batching
//!   challenge α to `S_x = Σ_j α^j v_j`;
//! - the **FRI rows**: every query's fold in every commit-phase round;
//! - the **program** (the extension-field program table) that checks, once per proof, the AIR's
//!   constraints at ζ against the quotient (`folded(ζ) = Q(ζ)·(ζ^N − 1)`, with `ζ^N ≠ 1`), and
//!   per query the DEEP quotient `ro = (S_ζ − S_x)/(ζ − x)` (with `ζ ≠ x`), which enters FRI
//!   round 0, and the final polynomial at the final point, equal to the last fold.
//!
//! The formulas are p3-uni-stark 0.8's `verify_constraints` and p3-fri 0.8's `open_inputs`,
//! `fold_query` and final-polynomial check, for the shard AIR (degree-1 constraints, one
//! quotient chunk, every input matrix of one height).
//!
//! The periodic output column at ζ, which the native verifier interpolates in O(N), is a
//! Horner evaluation of its coefficients: the verifier of the circuit computes them from Y
//! (an inverse DFT of the public outputs) and fixes them as program constants, so the circuit
//! pays one row per trace row and vector, with no inverses and no committed column.

use p3_dft::TwoAdicSubgroupDft;
use p3_field::{BasedVectorSpace, Field, PrimeCharacteristicRing, TwoAdicField};

use crate::error::LayoutError;
use crate::tables::deep::DeepRow;
use crate::tables::ext::{Op, Program, Read, Ref, D};
use crate::tables::fri::{FriRow, MAX_LOG_ARITY};
use crate::tables::index::{Chain, Domain};
use starkscale_prover::config::{Challenge, Val, LOG_BLOWUP, LOG_FINAL_POLY_LEN, NUM_QUERIES};

/// Ids of values other tables offer on the extension-value bus start here (the program's own
/// values stay below).
pub const EXTERN: u32 = 1 << 21;

/// Transcript positions of the values part 2 reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Positions {
    /// The constraint-batching challenge α.
    pub constraint_alpha: [u32; D],
    /// The out-of-domain point ζ.
    pub zeta: [u32; D],
    /// The FRI batching challenge.
    pub fri_alpha: [u32; D],
    /// Each commit-phase round's folding challenge β.
    pub betas: Vec<[u32; D]>,
    /// The values opened at ζ: main trace, quotient chunk, preprocessed trace.
    pub opened: Vec<[u32; D]>,
    /// The final polynomial's coefficients.
    pub final_poly: Vec<[u32; D]>,
}

/// The shape of a proof, as far as part 2 needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// log2 of the trace height N.
    pub log_n: usize,
    /// Bits of a query index (log2 of the LDE height).
    pub index_bits: usize,
    /// Right-hand vectors of the AIR (main trace width).
    pub vectors: usize,
    /// The inner dimension (preprocessed width).
    pub k: usize,
    /// Each commit-phase round's log arity.
    pub log_arities: Vec<usize>,
    /// Queries.
    pub queries: usize,
}

/// Part 2's layout for one proof: everything the verifier fixes beyond part 1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checks {
    /// The index table's domain values.
    pub domain: Domain,
    /// The DEEP table's rows.
    pub deep: Vec<DeepRow>,
    /// The FRI table's rows.
    pub fri: Vec<FriRow>,
    /// The program.
    pub program: Program,
    /// For each query, the program value holding its reduced opening.
    pub reduced: Vec<usize>,
}

impl Shape {
    fn rounds(&self) -> usize {
        self.log_arities.len()
    }

    /// Id of domain value `j` of query `q`.
    pub fn domain_id(&self, domain: &Domain, q: usize, j: usize) -> u32 {
        EXTERN + (q * domain.len() + j) as u32
    }

    /// Id of query `q`'s `S_x`.
    pub fn deep_id(&self, domain: &Domain, q: usize) -> u32 {
        EXTERN + (self.queries * domain.len() + q) as u32
    }

    /// Id of query `q`'s fold in round `r`.
    pub fn fri_id(&self, domain: &Domain, q: usize, r: usize) -> u32 {
        self.deep_id(domain, self.queries) + (q * self.rounds() + r) as u32
    }

    /// The domain values of a query: `x`, each round's `s⁻¹`, the final point, then the bits
    /// below the total folding shift.
    pub fn domain(&self) -> Domain {
        let h = self.index_bits;
        let omega_h = Val::two_adic_generator(h);
        // ω_H^{2^{H−1−b}} for b < H: bit b of i contributes 2^{H−1−b} to rev_H(i).
        let rev_factor = |b: usize| omega_h.exp_power_of_2(h - 1 - b);
        let mut chains = vec![Chain {
            init: Val::GENERATOR,
            factors: (0..h).map(|b| (b, rev_factor(b))).collect(),
        }];
        let mut shift = 0;
        for &a in &self.log_arities {
            // s = g_{h'+a}^{rev_{h'}(i >> (shift + a))} with h' = H − shift − a.
            let folded = h - shift - a;
            let g_inv = Val::two_adic_generator(folded + a).inverse();
            chains.push(Chain {
                init: Val::ONE,
                factors: (0..folded)
                    .map(|b| (shift + a + b, g_inv.exp_power_of_2(folded - 1 - b)))
                    .collect(),
            });
            shift += a;
        }
        // The final point: ω_H^{rev_H(i >> shift)}, with i >> shift of H − shift bits.
        chains.push(Chain {
            init: Val::ONE,
            factors: (0..h - shift).map(|b| (shift + b, rev_factor(b))).collect(),
        });
        Domain {
            chains,
            bits: (0..shift).collect(),
        }
    }
}

/// Part 2's layout: `chunks[q][t]` is the first chunk id of query `q`'s opening of tree `t`
/// (input trees in the verifier's order, then the rounds) and `values[t]` its number of
/// values; `xs` are the AIR's right-hand vectors (the public values after the digest) and
/// `outputs` its periodic output columns (length N each).
pub fn checks(
    shape: &Shape,
    positions: &Positions,
    chunks: &[Vec<u32>],
    values: &[usize],
    xs: &[Vec<Val>],
    outputs: &[Vec<Val>],
) -> Result<Checks, LayoutError> {
    let rounds = shape.rounds();
    if positions.betas.len() != rounds
        || values.len() != 3 + rounds
        || chunks.len() != shape.queries
        || chunks.iter().any(|c| c.len() != values.len())
    {
        return Err(LayoutError::Shape {
            what: "rounds, trees and queries",
        });
    }
    if let Some(&log_arity) = shape
        .log_arities
        .iter()
        .find(|a| !(1..=MAX_LOG_ARITY).contains(*a))
    {
        return Err(LayoutError::Arity { log_arity });
    }
    // The shape the formulas below are written for (the reference proof's, but checked here
    // so the verifier relies on nothing it did not derive): every query, the final polynomial
    // of the configuration, folded down to its final height.
    let final_height = LOG_BLOWUP + LOG_FINAL_POLY_LEN;
    let folded: usize = shape.log_arities.iter().sum();
    if shape.queries != NUM_QUERIES
        || positions.final_poly.len() != 1 << LOG_FINAL_POLY_LEN
        || shape.index_bits != shape.log_n + LOG_BLOWUP
        || shape.index_bits.checked_sub(folded) != Some(final_height.min(shape.index_bits))
    {
        return Err(LayoutError::Shape {
            what: "queries, final polynomial and folding schedule",
        });
    }
    let domain = shape.domain();
    // Every external id stays inside the proof's range.
    if shape.fri_id(&domain, shape.queries, 0) >= crate::verifier::SPAN {
        return Err(LayoutError::TooLong {
            ops: shape.fri_id(&domain, shape.queries, 0) as usize,
            max: crate::verifier::SPAN as usize,
        });
    }
    let mut deep = Vec::new();
    let mut fri = Vec::new();
    for (q, trees) in chunks.iter().enumerate() {
        let inputs: Vec<(u32, usize)> = (0..3).map(|t| (trees[t], values[t])).collect();
        let total: usize = inputs.iter().map(|(_, n)| n.div_ceil(8)).sum();
        let mut row = 0;
        for (first, n) in inputs {
            for c in 0..n.div_ceil(8) {
                row += 1;
                deep.push(DeepRow {
                    chunk: first + c as u32,
                    count: (n - 8 * c).min(8),
                    start: row == 1,
                    out: (row == total).then(|| shape.deep_id(&domain, q)),
                });
            }
        }
        let mut shift = 0;
        for (r, &a) in shape.log_arities.iter().enumerate() {
            let mut bits = [0u32; MAX_LOG_ARITY];
            for (t, id) in bits.iter_mut().enumerate().take(a) {
                *id = shape.domain_id(&domain, q, domain.chains.len() + shift + t);
            }
            fri.push(FriRow {
                log_arity: a,
                chunk: trees[3 + r],
                beta: positions.betas[r],
                // Round 0's input is the reduced opening, fixed below.
                input: if r == 0 {
                    0
                } else {
                    shape.fri_id(&domain, q, r - 1)
                },
                sinv: shape.domain_id(&domain, q, 1 + r),
                bits,
                output: shape.fri_id(&domain, q, r),
            });
            shift += a;
        }
    }
    let (program, reduced) = program(shape, positions, &domain, xs, outputs)?;
    for (q, ro) in reduced.iter().enumerate() {
        if let Some(row) = fri.get_mut(q * rounds) {
            row.input = *ro as u32;
        }
    }
    Ok(Checks {
        domain,
        deep,
        fri,
        program,
        reduced,
    })
}

/// The program: the constraint check at ζ, then per query the reduced opening and the final
/// polynomial. Returns it and each query's reduced-opening value.
fn program(
    shape: &Shape,
    positions: &Positions,
    domain: &Domain,
    xs: &[Vec<Val>],
    outputs: &[Vec<Val>],
) -> Result<(Program, Vec<usize>), LayoutError> {
    let (v, k) = (shape.vectors, shape.k);
    if xs.len() != v
        || outputs.len() != v
        || xs.iter().any(|x| x.len() != k)
        || outputs.iter().any(|o| o.len() != 1 << shape.log_n)
    {
        return Err(LayoutError::Statement {
            vectors: xs.len(),
            outputs: outputs.len(),
            expected: v,
            k,
        });
    }
    if positions.opened.len() != v + D + k || positions.final_poly.is_empty() || k == 0 {
        return Err(LayoutError::Shape {
            what: "opened values and final polynomial",
        });
    }
    let ext = Read::Ext;
    let mut p = Program::default();
    let zeta = p.push(Op::read(ext(positions.zeta)));
    let alpha_c = p.push(Op::read(ext(positions.constraint_alpha)));
    let alpha = p.push(Op::read(ext(positions.fri_alpha)));

    // S_ζ = Σ_j α^j p_j(ζ), by Horner from the last opened value.
    let opened = &positions.opened;
    let mut sz = p.push(Op::read(ext(opened[opened.len() - 1])));
    for pos in opened[..opened.len() - 1].iter().rev() {
        sz = p.push(Op::mul_add_read(sz, alpha, ext(*pos)));
    }

    // The shard AIR's constraints at ζ, folded as the native folder does: for each vector c,
    // y_c − Σ_j w_j(ζ)·x[c][j], then y_c − o_c(ζ); acc ← acc·α + constraint.
    let (trace, quotient, prep) = (&opened[..v], &opened[v..v + D], &opened[v + D..]);
    let mut folded: Option<Ref> = None;
    let fold_in = |p: &mut Program, folded: &mut Option<Ref>, term: Ref| {
        *folded = Some(match *folded {
            None => term,
            Some(acc) => {
                let scaled = p.push(Op::mul(acc, alpha_c));
                p.push(Op::add(scaled, term))
            }
        });
    };
    for c in 0..v {
        let mut dot = p.push(Op::add_scaled_read(None, ext(prep[0]), xs[c][0]));
        for j in 1..k {
            dot = p.push(Op::add_scaled_read(Some(dot), ext(prep[j]), xs[c][j]));
        }
        let coeffs = p3_dft::Radix2Dit::default().idft(outputs[c].clone());
        let top = coeffs.len() - 1;
        let mut o = p.push(Op::constant(Challenge::from(coeffs[top])));
        for coeff in coeffs[..top].iter().rev() {
            o = p.push(Op::mul_add_const(o, zeta, Challenge::from(*coeff)));
        }
        let y = p.push(Op::read(ext(trace[c])));
        let c1 = p.push(Op::sub(y, dot));
        fold_in(&mut p, &mut folded, c1);
        let c2 = p.push(Op::sub(y, o));
        fold_in(&mut p, &mut folded, c2);
    }
    let folded = folded.ok_or(LayoutError::Shape {
        what: "constraints (no vectors)",
    })?;
    // Q(ζ) = Σ_i X^i · q_i(ζ) (one chunk, its four base columns opened at ζ).
    let x_basis = p.push(Op::constant(Challenge::from_basis_coefficients_fn(|i| {
        Val::from_bool(i == 1)
    })));
    let mut q = p.push(Op::read(ext(quotient[D - 1])));
    for pos in quotient[..D - 1].iter().rev() {
        q = p.push(Op::mul_add_read(q, x_basis, ext(*pos)));
    }
    // Z(ζ) = ζ^N − 1, nonzero (ζ outside the trace domain), and folded = Q·Z.
    let mut zn = zeta;
    for _ in 0..shape.log_n {
        zn = p.push(Op::mul(zn, zn));
    }
    let vanishing = p.push(Op::add_const(zn, -Challenge::ONE));
    p.push(Op::inverse(vanishing));
    let qz = p.push(Op::mul(q, vanishing));
    p.push(Op::assert_eq(folded, qz));

    // Per query: the DEEP quotient and the final polynomial.
    let rounds = shape.rounds();
    let final_point = 1 + rounds;
    let fp = &positions.final_poly;
    let mut reduced = Vec::with_capacity(shape.queries);
    for q in 0..shape.queries {
        let x = p.push(Op::copy(Ref::Extern(shape.domain_id(domain, q, 0))));
        let den = p.push(Op::sub(zeta, x));
        let inv = p.push(Op::inverse(den));
        let sx = p.push(Op::copy(Ref::Extern(shape.deep_id(domain, q))));
        let num = p.push(Op::sub(sz, sx));
        let ro = p.push(Op::mul(num, inv));
        if let Ref::Local(i) = ro {
            reduced.push(i);
        }
        let xf = p.push(Op::copy(Ref::Extern(shape.domain_id(
            domain,
            q,
            final_point,
        ))));
        let mut h = p.push(Op::read(ext(fp[fp.len() - 1])));
        for pos in fp[..fp.len() - 1].iter().rev() {
            h = p.push(Op::mul_add_read(h, xf, ext(*pos)));
        }
        let last = if rounds > 0 {
            p.push(Op::copy(Ref::Extern(shape.fri_id(domain, q, rounds - 1))))
        } else {
            ro
        };
        p.push(Op::assert_eq(h, last));
    }
    if p.ops.len() >= EXTERN as usize {
        return Err(LayoutError::TooLong {
            ops: p.ops.len(),
            max: EXTERN as usize,
        });
    }
    Ok((p, reduced))
}

/// `S_ζ = Σ_j α^j p_j(ζ)` natively.
pub fn batched_at_zeta(alpha: Challenge, opened: &[Challenge]) -> Challenge {
    opened
        .iter()
        .rev()
        .fold(Challenge::ZERO, |acc, v| acc * alpha + *v)
}

/// The reduced opening natively: `(S_ζ − S_x) / (ζ − x)` (zero when ζ = x: the circuit
/// refuses that case).
pub fn reduced_opening(zeta: Challenge, x: Val, s_zeta: Challenge, s_x: Challenge) -> Challenge {
    (s_zeta - s_x)
        * (zeta - Challenge::from(x))
            .try_inverse()
            .unwrap_or_default()
}
