//! The Merkle-path table: checks that a leaf digest and its authentication path hash to a
//! root, exactly as `MerkleTreeMmcs` does with the shard configuration's 2-to-1 compression
//! (`TruncatedPermutation`: the first 8 elements of `perm(left ‖ right)`).
//!
//! One row per level. Columns: `active` (a real row; real rows come first), the direction
//! `bit` (1 when the running digest is the right child), the running digest `cur`, the
//! sibling `sib`, the permutation output `out` (all 16 elements: the lookup names the whole
//! tuple), and `pow = 2^level`, `acc = Σ bit·2^level` (the index read back from the bits).
//!
//! Constraints: the first row starts from the leaf digest (public), with `pow = 1`; each real
//! row's `out[0..8]` is the next real row's `cur`; on the last real row `out[0..8]` is the root
//! (public), `acc` is the leaf index (public) and `pow` is `2^(depth − 1)` (public: the path has
//! exactly as many levels as the tree). Every real row looks up
//! `(bit ? sib ‖ cur : cur ‖ sib) ‖ out` on the permutation table's bus, so `out` is the real
//! permutation of the ordered pair.

use p3_air::{Air, AirBuilder, BaseAir, PermutationAirBuilder};
use p3_field::PrimeCharacteristicRing;
use p3_lookup::{Count, InteractionBuilder, LookupBus};
use p3_matrix::dense::RowMajorMatrix;
use p3_symmetric::Permutation;

use super::poseidon2::{BUS, WIDTH};
use crate::config::Val;

/// Digest width.
pub const DIGEST: usize = 8;
const ACTIVE: usize = 0;
const BIT: usize = 1;
const CUR: usize = 2;
const SIB: usize = CUR + DIGEST;
const OUT: usize = SIB + DIGEST;
const POW: usize = OUT + WIDTH;
const ACC: usize = POW + 1;
/// Width of the table.
pub const COLS: usize = ACC + 1;
/// Public values: leaf digest, root, leaf index, and `2^(depth − 1)` (pins the path's length
/// to the tree's height).
pub const NUM_PUBLIC: usize = 2 * DIGEST + 2;

/// The Merkle-path table for one path.
#[derive(Clone, Copy, Debug, Default)]
pub struct MerklePathTable;

impl<F> BaseAir<F> for MerklePathTable {
    fn width(&self) -> usize {
        COLS
    }

    fn num_public_values(&self) -> usize {
        NUM_PUBLIC
    }
}

impl<AB> Air<AB> for MerklePathTable
where
    AB: AirBuilder<F = Val> + PermutationAirBuilder + InteractionBuilder,
{
    fn eval(&self, builder: &mut AB) {
        let (public, local, next) = super::window(builder);
        let col = |row: &[AB::Expr], c: usize| -> AB::Expr { row[c].clone() };
        let (active, bit) = (col(&local, ACTIVE), col(&local, BIT));
        let next_active = col(&next, ACTIVE);

        super::real_rows_first(builder, active.clone(), next_active.clone());
        builder.assert_bool(bit.clone());

        // The first row starts the path at the leaf.
        {
            let mut first = builder.when_first_row();
            first.assert_one(col(&local, POW));
            first.assert_eq(col(&local, ACC), bit.clone());
            for (j, leaf) in public[..DIGEST].iter().enumerate() {
                first.assert_eq(col(&local, CUR + j), leaf.clone());
            }
        }
        // Chaining between real rows.
        {
            let mut chain = builder.when_transition();
            let gate = next_active.clone();
            for j in 0..DIGEST {
                chain.assert_zero(gate.clone() * (col(&next, CUR + j) - col(&local, OUT + j)));
            }
            chain.assert_zero(gate.clone() * (col(&next, POW) - col(&local, POW) * AB::Expr::TWO));
            chain.assert_zero(
                gate * (col(&next, ACC) - col(&local, ACC) - col(&next, BIT) * col(&next, POW)),
            );
        }
        // The last real row ends at the root with the whole index: inside the trace it is the
        // row whose successor is inactive, at its end the last row if active.
        let ends = (0..DIGEST)
            .map(|j| col(&local, OUT + j) - public[DIGEST + j].clone())
            .chain([
                col(&local, ACC) - public[2 * DIGEST].clone(),
                col(&local, POW) - public[2 * DIGEST + 1].clone(),
            ]);
        for d in ends {
            super::on_last_real_row(builder, active.clone(), next_active.clone(), d);
        }

        // The compression of the ordered pair, looked up in the permutation table.
        let mut tuple = Vec::with_capacity(2 * WIDTH);
        for j in 0..DIGEST {
            let (c, s) = (col(&local, CUR + j), col(&local, SIB + j));
            tuple.push(c.clone() + bit.clone() * (s.clone() - c.clone()));
        }
        for j in 0..DIGEST {
            let (c, s) = (col(&local, CUR + j), col(&local, SIB + j));
            tuple.push(s.clone() + bit.clone() * (c - s));
        }
        tuple.extend((0..WIDTH).map(|j| col(&local, OUT + j)));
        LookupBus::new(BUS).lookup_key(builder, tuple, Count::bounded(active, 1));
    }
}

/// A Merkle authentication path as `MerkleTreeMmcs` checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerklePath {
    /// Digest of the opened leaf row.
    pub leaf: [Val; DIGEST],
    /// Index of the leaf.
    pub index: u32,
    /// Siblings from the leaf level up.
    pub siblings: Vec<[Val; DIGEST]>,
    /// The committed root.
    pub root: [Val; DIGEST],
}

impl MerklePath {
    /// The public values of the path's table: leaf, root, index.
    pub fn public_values(&self) -> Vec<Val> {
        let mut out = self.leaf.to_vec();
        out.extend_from_slice(&self.root);
        out.push(Val::from_u32(self.index));
        out.push(Val::from_u64(1 << self.siblings.len().saturating_sub(1)));
        out
    }
}

/// The table's trace for `path`, and the permutation inputs it looks up (one per level).
pub fn trace(path: &MerklePath) -> (RowMajorMatrix<Val>, Vec<[Val; WIDTH]>) {
    let perm = p3_koala_bear::default_koalabear_poseidon2_16();
    let height = path.siblings.len().next_power_of_two().max(super::MIN_ROWS);
    let mut values = vec![Val::ZERO; height * COLS];
    let mut lookups = Vec::with_capacity(path.siblings.len());
    let (mut cur, mut acc, mut pow) = (path.leaf, 0u64, 1u64);
    for (level, sib) in path.siblings.iter().enumerate() {
        let bit = (path.index >> level) & 1;
        let mut input = [Val::ZERO; WIDTH];
        let (left, right) = if bit == 0 { (cur, *sib) } else { (*sib, cur) };
        input[..DIGEST].copy_from_slice(&left);
        input[DIGEST..].copy_from_slice(&right);
        let out = perm.permute(input);
        acc += u64::from(bit) * pow;
        let row = &mut values[level * COLS..(level + 1) * COLS];
        row[ACTIVE] = Val::ONE;
        row[BIT] = Val::from_u32(bit);
        row[CUR..CUR + DIGEST].copy_from_slice(&cur);
        row[SIB..SIB + DIGEST].copy_from_slice(sib);
        row[OUT..OUT + WIDTH].copy_from_slice(&out);
        row[POW] = Val::from_u64(pow);
        row[ACC] = Val::from_u64(acc);
        lookups.push(input);
        cur.copy_from_slice(&out[..DIGEST]);
        pow *= 2;
    }
    (RowMajorMatrix::new(values, COLS), lookups)
}
