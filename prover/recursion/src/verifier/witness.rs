//! A proof's witness and the traces of its tables: the native values each table computes.

use super::layout::ProofTraces;
use super::*;

/// The prover's side: every call's value and every opening.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardWitness {
    /// The value of each transcript call.
    pub values: Vec<Val>,
    /// The openings, in layout order.
    pub openings: Vec<OpeningWitness>,
}

impl ShardLayout {
    /// The traces of this proof's tables (in [`ProofTable::ALL`] order) for `w`, and the
    /// permutations they look up. With `lenient`, a witness whose checks fail still gives
    /// traces (an assertion keeps its nonzero value, an inverse of zero is zero): the circuit,
    /// not the witness builder, then refuses it.
    pub(super) fn traces(
        &self,
        w: &ShardWitness,
        lenient: bool,
    ) -> Result<ProofTraces, CircuitError> {
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
        let mut traces: [Option<RowMajorMatrix<Val>>; TABLES_PER_PROOF] = Default::default();
        let mut put = |table: ProofTable, trace: RowMajorMatrix<Val>| {
            traces[table as usize] = Some(trace);
        };
        let mut lookups = Vec::new();
        let (t, l) = transcript::trace(&self.shifted_steps(), &w.values, self.offset);
        lookups.extend(l);
        put(ProofTable::Transcript, t);
        let (t, l) = tree::trace(&self.shifted_openings(), &w.openings);
        lookups.extend(l);
        put(ProofTable::Openings, t);
        put(
            ProofTable::Index,
            index::trace(
                &self.index_table(),
                &self.shifted_index_rows(),
                &w.values,
                self.offset,
            ),
        );

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
        put(
            ProofTable::Program,
            ext_table::program_trace(program, &values, at, ext_of, &extra, self.offset),
        );
        put(ProofTable::Deep, deep_trace);
        put(
            ProofTable::Fri,
            fri::trace(&self.shifted_fri(), &fri_witness),
        );
        let traces = traces.into_iter().flatten().collect();
        Ok((traces, lookups))
    }
}
