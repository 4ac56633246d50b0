//! A proof's layout: what the circuit's verifier fixes (built from a replay, or from the
//! statement alone), and its tables in the proof's range.

use super::*;

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
    pub(super) offset: u32,
}

/// The layout of a replayed transcript and its openings.
pub(super) fn from_replay(
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
pub(super) fn shape_of(
    opened: &ProofOpenings,
    index_bits: usize,
) -> Result<(Shape, Vec<usize>), VerifyError> {
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
pub(super) fn positions_of(events: &[Event], shape: &Shape) -> Result<Positions, VerifyError> {
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
pub(super) type ProofTraces = (Vec<RowMajorMatrix<Val>>, Vec<[Val; poseidon2::WIDTH]>);

impl ShardLayout {
    /// The same layout in range `slot` (positions and ids moved by `slot · SPAN`).
    pub(super) fn at(&self, slot: usize) -> Self {
        Self {
            offset: slot as u32 * SPAN,
            ..self.clone()
        }
    }

    /// This layout's place in the list of proofs checked together.
    pub(super) fn slot(&self) -> usize {
        (self.offset / SPAN) as usize
    }

    pub(super) fn shifted_steps(&self) -> Vec<transcript::Duplex> {
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

    pub(super) fn shifted_openings(&self) -> Vec<OpeningLayout> {
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

    pub(super) fn shifted_index_rows(&self) -> Vec<IndexRow> {
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

    pub(super) fn shifted_deep(&self) -> Vec<deep::DeepRow> {
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

    pub(super) fn shifted_fri(&self) -> Vec<FriRow> {
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

    /// This proof's tables (all but the shared permutation table), in [`ProofTable::ALL`]
    /// order.
    pub(super) fn tables(&self) -> [Table; TABLES_PER_PROOF] {
        ProofTable::ALL.map(|t| self.table(t))
    }

    fn table(&self, table: ProofTable) -> Table {
        match table {
            ProofTable::Transcript => {
                Table::Transcript(TranscriptTable::new(&self.shifted_steps()))
            }
            ProofTable::Openings => Table::Tree(TreeTable::new(&self.shifted_openings())),
            ProofTable::Index => Table::Index(self.index_table()),
            ProofTable::Program => Table::Ext(ExtArithTable::for_program(
                &self.checks.program,
                self.offset,
            )),
            ProofTable::Deep => Table::Deep(DeepTable::new(
                &self.shifted_deep(),
                self.positions.fri_alpha.map(|p| p + self.offset),
            )),
            ProofTable::Fri => Table::Fri(FriTable::new(&self.shifted_fri())),
        }
    }

    pub(super) fn index_table(&self) -> IndexTable {
        IndexTable::new(
            &self.shifted_index_rows(),
            self.index_bits,
            &self.shifts,
            self.pow_bits,
            &self.checks.domain,
        )
    }
}
