//! The node's state database (redb): every accepted signed frame of every job — announcement,
//! claims, shard proofs, settlement — and the chunk index, so a restarted node resumes where it
//! stopped. Frames are stored as received (signed), so restoring re-checks their signatures.
//!
//! Keys are `job id ‖ kind ‖ id`: one announcement and one settlement per job, one proof per
//! shard (the first verified one), claims by frame hash. Writing a key twice keeps the first
//! value, so replays never duplicate anything.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const FRAMES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("frames");
const CHUNKS: TableDefinition<&[u8], u64> = TableDefinition::new("chunks");
/// Models by id: the owner's signed manifest (canonical bytes) and whether W is all here.
const MODELS: TableDefinition<&[u8], (&[u8], bool)> = TableDefinition::new("models");

/// What a stored frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum FrameKind {
    /// The signed JobAnnounced.
    Announce = 0,
    /// A signed ShardClaimed that won.
    Claim = 1,
    /// A verified signed ShardProved.
    Proof = 2,
    /// The signed JobSettled (carries the settlement artefact).
    Settled = 3,
    /// The signed JobFailed.
    Failed = 4,
}

impl FrameKind {
    fn from_u8(v: u8) -> Option<Self> {
        [
            Self::Announce,
            Self::Claim,
            Self::Proof,
            Self::Settled,
            Self::Failed,
        ]
        .into_iter()
        .find(|k| *k as u8 == v)
    }
}

/// A stored frame: its kind, the id part of its key, and its bytes.
pub type StoredFrame = (FrameKind, Vec<u8>, Vec<u8>);

/// The state database of one node.
pub struct StateDb {
    db: Database,
}

fn key(job: &[u8; 32], kind: FrameKind, id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(33 + id.len());
    k.extend_from_slice(job);
    k.push(kind as u8);
    k.extend_from_slice(id);
    k
}

/// A stored model: id, signed manifest bytes, and whether its weights are all held.
pub type StoredModel = ([u8; 32], Vec<u8>, bool);

impl StateDb {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let db = Database::create(path).with_context(|| {
            format!(
                "cannot open the state database {} (is another node using this data directory?)",
                path.display()
            )
        })?;
        let tx = db.begin_write()?;
        {
            tx.open_table(FRAMES)?;
            tx.open_table(CHUNKS)?;
            tx.open_table(MODELS)?;
        }
        tx.commit()?;
        Ok(Self { db })
    }

    /// Stores a frame unless one is stored under the same key. Returns whether it was new.
    pub fn put_frame(
        &self,
        job: &[u8; 32],
        kind: FrameKind,
        id: &[u8],
        frame: &[u8],
    ) -> anyhow::Result<bool> {
        let k = key(job, kind, id);
        let tx = self.db.begin_write()?;
        let new = {
            let mut table = tx.open_table(FRAMES)?;
            if table.get(k.as_slice())?.is_some() {
                false
            } else {
                table.insert(k.as_slice(), frame)?;
                true
            }
        };
        tx.commit()?;
        Ok(new)
    }

    /// Stores a frame, replacing any stored under the same key (the settled proof of a shard
    /// replaces the one this node recorded first). Returns whether one was replaced.
    pub fn replace_frame(
        &self,
        job: &[u8; 32],
        kind: FrameKind,
        id: &[u8],
        frame: &[u8],
    ) -> anyhow::Result<bool> {
        let k = key(job, kind, id);
        let tx = self.db.begin_write()?;
        let replaced = {
            let mut table = tx.open_table(FRAMES)?;
            let old = table.insert(k.as_slice(), frame)?;
            old.is_some()
        };
        tx.commit()?;
        Ok(replaced)
    }

    /// Drops every frame stored for `job` (an earlier round of a job submitted again).
    pub fn forget_job(&self, job: &[u8; 32]) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(FRAMES)?;
            let keys: Vec<Vec<u8>> = table
                .range(job.as_slice()..)?
                .map_while(|item| {
                    let key = item.ok()?.0.value().to_vec();
                    key.starts_with(job).then_some(key)
                })
                .collect();
            for key in keys {
                table.remove(key.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores a model (its signed manifest's canonical bytes) and whether every chunk of its
    /// W is stored here; a model stored complete stays complete.
    pub fn put_model(&self, id: &[u8; 32], manifest: &[u8], complete: bool) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(MODELS)?;
            let was_complete = table.get(id.as_slice())?.is_some_and(|v| v.value().1);
            table.insert(id.as_slice(), (manifest, complete || was_complete))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets a model (an abandoned upload).
    pub fn forget_model(&self, id: &[u8; 32]) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(MODELS)?;
            table.remove(id.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes chunks from the index.
    pub fn forget_chunks(&self, ids: &[[u8; 32]]) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(CHUNKS)?;
            for id in ids {
                table.remove(id.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every stored model.
    pub fn models(&self) -> anyhow::Result<Vec<StoredModel>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(MODELS)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (k, v) = item?;
            let Ok(id) = <[u8; 32]>::try_from(k.value()) else {
                continue;
            };
            let (bytes, complete) = v.value();
            out.push((id, bytes.to_vec(), complete));
        }
        Ok(out)
    }

    /// Records a stored chunk in the index.
    pub fn put_chunk(&self, id: &[u8; 32], len: u64) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(CHUNKS)?;
            table.insert(id.as_slice(), len)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every stored frame, grouped by job, in key order (announce, claims, proofs, settled),
    /// each with the id part of its key.
    pub fn frames(&self) -> anyhow::Result<BTreeMap<[u8; 32], Vec<StoredFrame>>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(FRAMES)?;
        let mut out: BTreeMap<[u8; 32], Vec<StoredFrame>> = BTreeMap::new();
        for item in table.iter()? {
            let (k, v) = item?;
            let k = k.value();
            let (Some(job), Some(kind)) =
                (k.get(..32), k.get(32).and_then(|b| FrameKind::from_u8(*b)))
            else {
                continue;
            };
            let Ok(job) = <[u8; 32]>::try_from(job) else {
                continue;
            };
            let id = k.get(33..).unwrap_or_default().to_vec();
            out.entry(job)
                .or_default()
                .push((kind, id, v.value().to_vec()));
        }
        Ok(out)
    }

    /// Number of chunks in the index.
    pub fn chunk_count(&self) -> anyhow::Result<u64> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(CHUNKS)?.len()?)
    }
}

/// Stored frames of one job, counted.
#[derive(Clone, Debug, serde::Serialize)]
pub struct JobCounts {
    /// Job id (hex).
    pub job: String,
    /// Announcements (1 when present).
    pub announcements: usize,
    /// Winning claims.
    pub claims: usize,
    /// Verified shard proofs.
    pub proofs: usize,
    /// Shards with a stored proof.
    pub proved_shards: Vec<u32>,
    /// Settlements (1 when settled).
    pub settlements: usize,
    /// Failures (1 when failed).
    pub failures: usize,
}

/// What a state database holds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// Chunks in the index.
    pub chunks: u64,
    /// Jobs.
    pub jobs: Vec<JobCounts>,
}

/// Summarises the database at `path` (the node must be stopped: one process per database).
pub fn summarise(path: &Path) -> anyhow::Result<Summary> {
    if !path.exists() {
        anyhow::bail!(
            "no state database at {}: is this a node's data directory?",
            path.display()
        );
    }
    let db = StateDb::open(path)?;
    let mut jobs = Vec::new();
    for (job, frames) in db.frames()? {
        let count = |k: FrameKind| frames.iter().filter(|(kind, _, _)| *kind == k).count();
        let proved_shards = frames
            .iter()
            .filter(|(k, _, _)| *k == FrameKind::Proof)
            .filter_map(|(_, id, _)| Some(u32::from_be_bytes(id.as_slice().try_into().ok()?)))
            .collect();
        jobs.push(JobCounts {
            job: hex::encode(job),
            announcements: count(FrameKind::Announce),
            claims: count(FrameKind::Claim),
            proofs: count(FrameKind::Proof),
            proved_shards,
            settlements: count(FrameKind::Settled),
            failures: count(FrameKind::Failed),
        });
    }
    Ok(Summary {
        chunks: db.chunk_count()?,
        jobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_reopening_and_are_never_duplicated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let db = StateDb::open(&path).unwrap();
            assert!(db
                .put_frame(&[1; 32], FrameKind::Announce, &[], b"a")
                .unwrap());
            assert!(!db
                .put_frame(&[1; 32], FrameKind::Announce, &[], b"other")
                .unwrap());
            assert!(db
                .put_frame(&[1; 32], FrameKind::Proof, &0u32.to_be_bytes(), b"p0")
                .unwrap());
            db.put_chunk(&[9; 32], 100).unwrap();
        }
        let db = StateDb::open(&path).unwrap();
        let frames = db.frames().unwrap();
        assert_eq!(
            frames[&[1; 32]],
            vec![
                (FrameKind::Announce, vec![], b"a".to_vec()),
                (
                    FrameKind::Proof,
                    0u32.to_be_bytes().to_vec(),
                    b"p0".to_vec()
                )
            ]
        );
        assert_eq!(db.chunk_count().unwrap(), 1);
    }
}
