//! Shard plans: how a job's rows of W are cut into shards.
//!
//! A plan is fully determined by `(m_rows, rows_per_shard)`, which the manifest carries, so
//! every peer computes the same shards: shard `i` covers rows
//! `[i·rows_per_shard, min((i+1)·rows_per_shard, m))`; only the last may be shorter.

use std::ops::Range;

/// The default work per shard: 3·2^20 multiply-accumulates (a 2048×1536 block), measured at
/// ≈ 1.2 s to prove on 2 threads.
pub const DEFAULT_TARGET_ENTRIES_PER_SHARD: u64 = 3 << 20;

/// The most shards one job may have (bounds per-job state and gossip volume).
pub const MAX_SHARDS_PER_JOB: u32 = 1 << 16;

/// One shard: a block of rows of W.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShardRange {
    /// Shard index, from 0.
    pub index: u32,
    /// Rows of W (and of Y) in this shard.
    pub rows: Range<u32>,
}

impl ShardRange {
    /// Number of rows.
    pub fn len(&self) -> u32 {
        self.rows.end.saturating_sub(self.rows.start)
    }

    /// Whether the shard has no rows (never true for shards of a valid plan).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows as a `usize` range, for slicing matrices.
    pub fn rows_usize(&self) -> Range<usize> {
        self.rows.start as usize..self.rows.end as usize
    }
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A plan needs at least one row.
    #[error("cannot plan shards for a matrix with no rows")]
    NoRows,
    /// The inner dimension must be at least 1.
    #[error("cannot plan shards for k = 0")]
    ZeroK,
    /// The target work per shard must be at least 1.
    #[error("target entries per shard must be at least 1")]
    ZeroTarget,
    /// `rows_per_shard` must be at least 1.
    #[error("rows per shard must be at least 1")]
    ZeroRowsPerShard,
}

/// A deterministic cut of `m_rows` rows into shards of `rows_per_shard` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardPlan {
    m_rows: u32,
    rows_per_shard: u32,
}

impl ShardPlan {
    /// Plans shards of about `target_entries_per_shard` entries of W each: `target / k` rows
    /// per shard, at least 1 and at most `m_rows`.
    pub fn new(m_rows: u32, k: u32, target_entries_per_shard: u64) -> Result<Self, PlanError> {
        if k == 0 {
            return Err(PlanError::ZeroK);
        }
        if target_entries_per_shard == 0 {
            return Err(PlanError::ZeroTarget);
        }
        let rows = (target_entries_per_shard / u64::from(k)).clamp(1, u64::from(m_rows.max(1)));
        // `rows` ≤ m_rows ≤ u32::MAX.
        let rows_per_shard = u32::try_from(rows).unwrap_or(u32::MAX);
        Self::from_rows_per_shard(m_rows, rows_per_shard)
    }

    /// The plan a manifest describes.
    pub fn from_rows_per_shard(m_rows: u32, rows_per_shard: u32) -> Result<Self, PlanError> {
        if m_rows == 0 {
            return Err(PlanError::NoRows);
        }
        if rows_per_shard == 0 {
            return Err(PlanError::ZeroRowsPerShard);
        }
        Ok(Self {
            m_rows,
            rows_per_shard,
        })
    }

    /// Rows of W.
    pub fn m_rows(&self) -> u32 {
        self.m_rows
    }

    /// Rows per shard (the last shard may have fewer).
    pub fn rows_per_shard(&self) -> u32 {
        self.rows_per_shard
    }

    /// Number of shards: `ceil(m_rows / rows_per_shard)`.
    pub fn shard_count(&self) -> u32 {
        self.m_rows.div_ceil(self.rows_per_shard)
    }

    /// Shard `index`, if it exists.
    pub fn shard(&self, index: u32) -> Option<ShardRange> {
        if index >= self.shard_count() {
            return None;
        }
        let start = u64::from(index) * u64::from(self.rows_per_shard);
        let end = (start + u64::from(self.rows_per_shard)).min(u64::from(self.m_rows));
        // Both are ≤ m_rows, a u32.
        let start = u32::try_from(start).ok()?;
        let end = u32::try_from(end).ok()?;
        Some(ShardRange {
            index,
            rows: start..end,
        })
    }

    /// All shards in index order.
    pub fn shards(&self) -> impl Iterator<Item = ShardRange> + '_ {
        (0..self.shard_count()).filter_map(|i| self.shard(i))
    }

    /// The shard holding `row`, if it is a row of W.
    pub fn shard_of_row(&self, row: u32) -> Option<u32> {
        (row < self.m_rows).then(|| row / self.rows_per_shard)
    }
}

/// Rows per shard for a job of shape m×k×n: about `target / k` rows, capped so a shard's
/// output fits in one `ShardProved` message and the job has at most [`MAX_SHARDS_PER_JOB`]
/// shards.
pub fn suggest_rows_per_shard(m: u32, k: u32, n: u32, target_entries_per_shard: u64) -> u32 {
    let by_work = ShardPlan::new(m, k.max(1), target_entries_per_shard.max(1))
        .map(|p| p.rows_per_shard())
        .unwrap_or(1);
    let max_out = crate::codec::limits::MAX_SHARD_OUTPUT_ENTRIES as u64;
    let by_output = u32::try_from((max_out / u64::from(n.max(1))).max(1)).unwrap_or(u32::MAX);
    let min_for_count = m.div_ceil(MAX_SHARDS_PER_JOB).max(1);
    by_work.min(by_output).max(min_for_count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn blocks_cover_rows_in_order() {
        let plan = ShardPlan::new(10, 4, 12).unwrap();
        assert_eq!(plan.rows_per_shard(), 3);
        let shards: Vec<_> = plan.shards().collect();
        assert_eq!(shards.len(), 4);
        assert_eq!(shards[0].rows, 0..3);
        assert_eq!(shards[3].rows, 9..10);
        assert_eq!(plan.shard(4), None);
        assert_eq!(plan.shard_of_row(9), Some(3));
        assert_eq!(plan.shard_of_row(10), None);
    }

    #[test]
    fn at_least_one_row_and_at_most_m() {
        assert_eq!(ShardPlan::new(5, 1000, 10).unwrap().rows_per_shard(), 1);
        assert_eq!(ShardPlan::new(5, 1, 1000).unwrap().rows_per_shard(), 5);
        assert_eq!(ShardPlan::new(5, 1, 1000).unwrap().shard_count(), 1);
        assert_eq!(ShardPlan::new(0, 1, 1), Err(PlanError::NoRows));
        assert_eq!(ShardPlan::new(1, 0, 1), Err(PlanError::ZeroK));
        assert_eq!(ShardPlan::new(1, 1, 0), Err(PlanError::ZeroTarget));
        assert_eq!(
            ShardPlan::from_rows_per_shard(1, 0),
            Err(PlanError::ZeroRowsPerShard)
        );
    }

    #[test]
    fn seed_sized_plan_and_suggestions() {
        let plan = ShardPlan::new(2048, 1536, DEFAULT_TARGET_ENTRIES_PER_SHARD).unwrap();
        assert_eq!(plan.shard_count(), 1);
        assert_eq!(suggest_rows_per_shard(10, 10, 1, 30), 3);
        // Output cap: n = 2^12 allows 2^7 rows per shard.
        assert_eq!(
            suggest_rows_per_shard(1 << 20, 1, 1 << 12, u64::MAX),
            1 << 7
        );
        // Shard-count cap.
        assert_eq!(suggest_rows_per_shard(u32::MAX, 1 << 16, 1, 1), 1 << 16);
    }

    proptest! {
        #[test]
        fn plans_partition_rows(m in 1u32..100_000, k in 1u32..10_000, target in 1u64..10_000_000) {
            let plan = ShardPlan::new(m, k, target).unwrap();
            let again = ShardPlan::from_rows_per_shard(m, plan.rows_per_shard()).unwrap();
            prop_assert_eq!(plan, again);
            let mut next = 0u32;
            let mut count = 0u32;
            for shard in plan.shards() {
                prop_assert_eq!(shard.index, count);
                prop_assert_eq!(shard.rows.start, next);
                prop_assert!(!shard.is_empty());
                prop_assert!(shard.len() <= plan.rows_per_shard());
                if shard.index + 1 < plan.shard_count() {
                    prop_assert_eq!(shard.len(), plan.rows_per_shard());
                }
                next = shard.rows.end;
                count += 1;
            }
            prop_assert_eq!(next, m);
            prop_assert_eq!(count, plan.shard_count());
        }
    }
}
