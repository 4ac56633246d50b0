//! The Merkle-opening table: checks many Merkle openings at once, each from the opened row's
//! values to the committed root, exactly as `MerkleTreeMmcs` computes them with the shard
//! configuration's hash and compression.
//!
//! One permutation per row. An opening takes `⌈len/8⌉` **leaf rows** that hash its values with
//! the padding-free sponge (`PaddingFreeSponge<Perm, 16, 8, 8>`: state zero, each chunk of up
//! to 8 values overwrites the first rate slots, the rest of the state carries over, permute;
//! the digest is the first 8 elements), then one **compression row** per tree level
//! (`TruncatedPermutation`: the first 8 elements of `perm(left ‖ right)`, the running digest
//! on the side its index bit says).
//!
//! The layout (which rows hash which opening, how many values each leaf row absorbs, where
//! each path ends) is fixed by the verifier in periodic columns. Each row's permutation is
//! looked up on the Poseidon2 table's bus. On each opening's last row:
//! - its 8 root elements are read on the transcript bus at the positions where the
//!   transcript absorbed that commitment, so the root is the one the challenges were drawn
//!   from;
//! - its index, accumulated from the direction bits (`acc = Σ bit·2^level`), is read on the
//!   index bus under the opening's index id, so the path is the one the query index selects.
//!
//! The leaf rows' values are the opened values (witness). Slots a leaf row does not absorb
//! are zero, and every leaf row offers its eight values once on [`CHUNK_BUS`] as
//! `(chunk id, v0..v7)`: the DEEP table reads the input trees' leaves there and the FRI table
//! the commit-phase rounds' leaves, so the values they reduce and fold are the values hashed.

use p3_air::{Air, AirBuilder, PermutationAirBuilder};
use p3_field::PrimeCharacteristicRing;
use p3_lookup::{Count, InteractionBuilder, LookupBus};
use p3_matrix::dense::RowMajorMatrix;
use p3_symmetric::Permutation;

use super::poseidon2::{self, WIDTH};
use super::{index, transcript};
use starkscale_prover::config::Val;

/// Digest width and sponge rate.
pub const DIGEST: usize = 8;
/// Name of the bus carrying `(chunk id, v0..v7)`: the values of one leaf row.
pub const CHUNK_BUS: &str = "leaf-chunks";

// Witness columns. The first four are copies of periodic columns the buses read.
const ACTIVE: usize = 0;
const LAST: usize = 1;
const ROOT_POS: usize = 2;
const INDEX_ID: usize = 3;
const VAL: usize = 4;
const BIT: usize = VAL + DIGEST;
const PREV: usize = BIT + 1;
const IN: usize = PREV + WIDTH;
const OUT: usize = IN + WIDTH;
const ACC: usize = OUT + WIDTH;
const PREV_ACC: usize = ACC + 1;
const CHUNK: usize = PREV_ACC + 1;
const LEAF: usize = CHUNK + 1;
/// Width of the table.
pub const COLS: usize = LEAF + 1;

// Periodic columns (the layout).
const P_LEAF: usize = 0;
// Leaf rows: slot j takes an opened value.
const P_MASK: usize = 1;
// Leaf rows: rate slot j keeps the previous state (not absorbed, not the first chunk).
const P_KEEP: usize = P_MASK + DIGEST;
// Leaf rows after the first: the capacity carries over.
const P_KEEP_CAP: usize = P_KEEP + DIGEST;
const P_COMP: usize = P_KEEP_CAP + 1;
// Compression rows after an opening's first: the index accumulator carries over.
const P_ACC_KEEP: usize = P_COMP + 1;
// Compression rows: 2^level.
const P_POW: usize = P_ACC_KEEP + 1;
const P_LAST: usize = P_POW + 1;
const P_ROOT_POS: usize = P_LAST + 1;
const P_INDEX_ID: usize = P_ROOT_POS + 1;
// Leaf rows: the chunk id under which the row's values are offered.
const P_CHUNK: usize = P_INDEX_ID + 1;
const PERIODIC: usize = P_CHUNK + 1;

/// What the verifier fixes about one opening.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpeningLayout {
    /// Number of opened values hashed into the leaf.
    pub values: usize,
    /// Tree height (levels of compression).
    pub depth: usize,
    /// Transcript position of the root's first element (the others follow).
    pub root_pos: u32,
    /// The index-bus id under which the index table offers this opening's leaf index.
    pub index_id: u32,
    /// The chunk id of the leaf's first row on [`CHUNK_BUS`] (its rows take consecutive ids).
    pub chunk_base: u32,
}

impl OpeningLayout {
    /// Rows hashing the leaf: one per chunk of up to 8 values.
    pub fn leaf_rows(&self) -> usize {
        self.values.div_ceil(DIGEST)
    }

    fn rows(&self) -> usize {
        self.leaf_rows() + self.depth
    }
}

/// One opening's witness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpeningWitness {
    /// The opened values, in the order the leaf hash absorbs them.
    pub values: Vec<Val>,
    /// The leaf index.
    pub index: usize,
    /// Siblings from the leaf level up.
    pub siblings: Vec<[Val; DIGEST]>,
}

/// The Merkle-opening table for a fixed list of openings.
#[derive(Clone, Debug)]
pub struct TreeTable {
    periodic: Vec<Vec<Val>>,
}

/// Rows a table of these openings has.
fn height(openings: &[OpeningLayout]) -> usize {
    let rows: usize = openings.iter().map(OpeningLayout::rows).sum();
    rows.next_power_of_two().max(super::MIN_ROWS)
}

impl TreeTable {
    /// The table checking `openings`, in order.
    pub fn new(openings: &[OpeningLayout]) -> Self {
        let height = height(openings);
        let mut periodic = vec![vec![Val::ZERO; height]; PERIODIC];
        let mut r = 0;
        for o in openings {
            for chunk in 0..o.leaf_rows() {
                periodic[P_LEAF][r] = Val::ONE;
                let absorbed = (o.values - chunk * DIGEST).min(DIGEST);
                for j in 0..DIGEST {
                    let absorbs = j < absorbed;
                    periodic[P_MASK + j][r] = Val::from_bool(absorbs);
                    periodic[P_KEEP + j][r] = Val::from_bool(!absorbs && chunk > 0);
                }
                periodic[P_KEEP_CAP][r] = Val::from_bool(chunk > 0);
                periodic[P_CHUNK][r] = Val::from_u32(o.chunk_base) + Val::from_usize(chunk);
                r += 1;
            }
            for level in 0..o.depth {
                periodic[P_COMP][r] = Val::ONE;
                periodic[P_ACC_KEEP][r] = Val::from_bool(level > 0);
                periodic[P_POW][r] = Val::from_u64(1 << level);
                if level + 1 == o.depth {
                    periodic[P_LAST][r] = Val::ONE;
                    periodic[P_ROOT_POS][r] = Val::from_u32(o.root_pos);
                    periodic[P_INDEX_ID][r] = Val::from_u32(o.index_id);
                }
                r += 1;
            }
        }
        Self { periodic }
    }
}

periodic_table!(TreeTable, COLS);

impl<AB> Air<AB> for TreeTable
where
    AB: AirBuilder<F = Val> + PermutationAirBuilder + InteractionBuilder,
{
    fn eval(&self, builder: &mut AB) {
        let (_, local, next) = super::window(builder);
        let periodic = super::periodic(builder);
        let p = |i: usize| periodic[i].clone();
        let c = |i: usize| local[i].clone();

        // The bus copies of the layout.
        for (column, value) in [
            (ACTIVE, p(P_LEAF) + p(P_COMP)),
            (LAST, p(P_LAST)),
            (ROOT_POS, p(P_ROOT_POS)),
            (INDEX_ID, p(P_INDEX_ID)),
            (CHUNK, p(P_CHUNK)),
            (LEAF, p(P_LEAF)),
        ] {
            builder.assert_eq(c(column), value);
        }
        // Every row sees the previous row's output and index accumulator.
        for i in 0..WIDTH {
            builder
                .when_transition()
                .assert_eq(next[PREV + i].clone(), c(OUT + i));
        }
        builder
            .when_transition()
            .assert_eq(next[PREV_ACC].clone(), c(ACC));

        // Leaf rows: the sponge absorbs up to 8 opened values over the carried state.
        for j in 0..DIGEST {
            builder.assert_zero(
                p(P_LEAF) * c(IN + j) - p(P_MASK + j) * c(VAL + j) - p(P_KEEP + j) * c(PREV + j),
            );
            builder
                .assert_zero(p(P_LEAF) * c(IN + DIGEST + j) - p(P_KEEP_CAP) * c(PREV + DIGEST + j));
            // A slot the row does not absorb holds zero (readers of the chunk take it as is).
            builder.assert_zero((p(P_LEAF) - p(P_MASK + j)) * c(VAL + j));
        }
        // Compression rows: the running digest (the previous output) and the sibling (in the
        // value columns), ordered by the direction bit; the bit joins the index.
        let comp = p(P_COMP);
        let bit = c(BIT);
        builder.assert_zero(comp.clone() * bit.clone() * (AB::Expr::ONE - bit.clone()));
        for j in 0..DIGEST {
            let (cur, sib) = (c(PREV + j), c(VAL + j));
            let left = cur.clone() + bit.clone() * (sib.clone() - cur.clone());
            let right = sib.clone() + bit.clone() * (cur - sib);
            builder.assert_zero(comp.clone() * (c(IN + j) - left));
            builder.assert_zero(comp.clone() * (c(IN + DIGEST + j) - right));
        }
        builder
            .assert_zero(comp * c(ACC) - p(P_ACC_KEEP) * c(PREV_ACC) - p(P_POW) * p(P_COMP) * bit);

        // Every real row's permutation.
        let tuple: Vec<AB::Expr> = (IN..IN + WIDTH).chain(OUT..OUT + WIDTH).map(c).collect();
        LookupBus::new(poseidon2::BUS).lookup_key(builder, tuple, Count::bounded(c(ACTIVE), 1));
        // The last row: the root the transcript absorbed, the index the query selected.
        let roots = LookupBus::new(transcript::BUS);
        for j in 0..DIGEST {
            let key = vec![c(ROOT_POS) + AB::Expr::from_usize(j), c(OUT + j)];
            roots.lookup_key(builder, key, Count::bounded(c(LAST), 1));
        }
        LookupBus::new(index::BUS).lookup_key(
            builder,
            vec![c(INDEX_ID), c(ACC)],
            Count::bounded(c(LAST), 1),
        );
        // Every leaf row's values, offered once to the DEEP and FRI tables.
        let chunk: Vec<AB::Expr> = std::iter::once(c(CHUNK))
            .chain((VAL..VAL + DIGEST).map(c))
            .collect();
        LookupBus::new(CHUNK_BUS).table_entry(builder, chunk, c(LEAF));
    }
}

/// The table's trace for `openings` (layout and witness in the same order), and the
/// permutation inputs it looks up.
pub fn trace(
    layout: &[OpeningLayout],
    openings: &[OpeningWitness],
) -> (RowMajorMatrix<Val>, Vec<[Val; WIDTH]>) {
    let perm = p3_koala_bear::default_koalabear_poseidon2_16();
    let height = height(layout);
    let mut rows = vec![Val::ZERO; height * COLS];
    let mut lookups = Vec::new();
    let mut r = 0;
    let mut prev = [Val::ZERO; WIDTH];
    let mut prev_acc = Val::ZERO;
    for (o, w) in layout.iter().zip(openings) {
        let mut emit = |r: &mut usize,
                        vals: &[Val],
                        bit: u32,
                        input: [Val; WIDTH],
                        acc: Val,
                        chunk: Option<Val>| {
            let out = perm.permute(input);
            let row = &mut rows[*r * COLS..(*r + 1) * COLS];
            row[ACTIVE] = Val::ONE;
            if let Some(chunk) = chunk {
                row[CHUNK] = chunk;
                row[LEAF] = Val::ONE;
            }
            row[VAL..VAL + vals.len()].copy_from_slice(vals);
            row[BIT] = Val::from_u32(bit);
            row[PREV..PREV + WIDTH].copy_from_slice(&prev);
            row[IN..IN + WIDTH].copy_from_slice(&input);
            row[OUT..OUT + WIDTH].copy_from_slice(&out);
            row[ACC] = acc;
            row[PREV_ACC] = prev_acc;
            lookups.push(input);
            prev = out;
            prev_acc = acc;
            *r += 1;
            out
        };
        // The leaf hash.
        let mut state = [Val::ZERO; WIDTH];
        for (i, chunk) in w.values.chunks(DIGEST).take(o.leaf_rows()).enumerate() {
            state[..chunk.len()].copy_from_slice(chunk);
            let id = Val::from_u32(o.chunk_base) + Val::from_usize(i);
            state = emit(&mut r, chunk, 0, state, Val::ZERO, Some(id));
        }
        // The path.
        let mut cur: [Val; DIGEST] = std::array::from_fn(|j| state[j]);
        let mut acc = 0u64;
        for (level, sib) in w.siblings.iter().enumerate().take(o.depth) {
            let bit = ((w.index >> level) & 1) as u32;
            acc += u64::from(bit) << level;
            let (left, right) = if bit == 0 { (cur, *sib) } else { (*sib, cur) };
            let mut input = [Val::ZERO; WIDTH];
            input[..DIGEST].copy_from_slice(&left);
            input[DIGEST..].copy_from_slice(&right);
            let out = emit(&mut r, sib, bit, input, Val::from_u64(acc), None);
            cur = std::array::from_fn(|j| out[j]);
        }
        if o.depth > 0 && r > 0 {
            let last = &mut rows[(r - 1) * COLS..r * COLS];
            last[LAST] = Val::ONE;
            last[ROOT_POS] = Val::from_u32(o.root_pos);
            last[INDEX_ID] = Val::from_u32(o.index_id);
        }
    }
    // Padding rows still carry the previous output forward.
    for pad in r..height {
        let row = &mut rows[pad * COLS..(pad + 1) * COLS];
        row[PREV..PREV + WIDTH].copy_from_slice(&prev);
        row[PREV_ACC] = prev_acc;
        prev = [Val::ZERO; WIDTH];
        prev_acc = Val::ZERO;
    }
    (RowMajorMatrix::new(rows, COLS), lookups)
}

#[cfg(test)]
mod tests {
    //! Each constraint of the table, corrupted in the fixture's openings table (rows 0..=9:
    //! the trace opening, one leaf row then 9 compressions; rows 20..=22: the preprocessed
    //! leaf's three sponge rows).
    use super::*;
    use crate::verifier::fixture::{refused, TREE};

    fn corrupted(cell: (usize, usize), f: impl Fn(Val) -> Val) -> bool {
        refused(TREE, COLS, cell, f)
    }

    fn plus_one(v: Val) -> Val {
        v + Val::ONE
    }

    #[test]
    fn the_layout_copies_are_pinned() {
        assert!(corrupted((9, LAST), |_| Val::ZERO), "last-row flag");
        assert!(corrupted((9, ROOT_POS), plus_one), "root position");
        assert!(corrupted((9, INDEX_ID), plus_one), "index id");
        assert!(corrupted((5, ACTIVE), |_| Val::ZERO), "active flag");
    }

    #[test]
    fn the_leaf_sponge_is_enforced() {
        // An opened value the sponge did not absorb (only the absorb constraint sees it).
        assert!(corrupted((21, VAL + 2), plus_one), "absorbed value");
        // A rate slot of the last, partial chunk not carried from the previous state.
        assert!(corrupted((22, IN + 6), plus_one), "carried rate slot");
        // The capacity: carried between chunks, zero at the start.
        assert!(
            corrupted((21, IN + DIGEST + 3), plus_one),
            "carried capacity"
        );
        assert!(corrupted((20, IN + DIGEST), plus_one), "initial capacity");
    }

    #[test]
    fn the_leaf_chunks_are_offered_as_hashed() {
        // The trace leaf absorbs one value: its other slots must be zero.
        assert!(corrupted((0, VAL + 3), plus_one), "an unabsorbed slot");
        assert!(corrupted((21, CHUNK), plus_one), "chunk id");
        assert!(corrupted((21, LEAF), |_| Val::ZERO), "leaf flag");
    }

    #[test]
    fn the_path_is_enforced() {
        // A sibling the compression did not use (only the ordering constraint sees it).
        assert!(corrupted((3, VAL), plus_one), "sibling");
        assert!(corrupted((4, BIT), |_| Val::TWO), "boolean direction bit");
        assert!(corrupted((2, PREV), plus_one), "chaining of digests");
        assert!(corrupted((3, PREV_ACC), plus_one), "chaining of the index");
        assert!(corrupted((6, ACC), plus_one), "index accumulator");
        // An output no permutation produced (the permutation bus).
        assert!(corrupted((9, OUT + 12), plus_one), "permutation output");
    }
}
