//! On-disk storage: content-addressed chunks and per-job records, written atomically.
//!
//! Chunks live at `chunks/<blake3 hex>` and are re-hashed when read, so a corrupted file is
//! never served. Job records (manifest, proofs, settlement) live under `jobs/<job id hex>/`.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// A directory of files written with write-to-temporary then rename.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

fn atomic_write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("installing {}", path.display()))?;
    Ok(())
}

impl Store {
    /// Opens (creating) a store rooted at `root`.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root.join("chunks"))
            .with_context(|| format!("creating data directory {}", root.display()))?;
        std::fs::create_dir_all(root.join("jobs"))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn chunk_path(&self, id: &[u8; 32]) -> PathBuf {
        self.root.join("chunks").join(hex::encode(id))
    }

    /// Stores a chunk under its blake3 hash and returns the hash.
    pub fn put_chunk(&self, bytes: &[u8]) -> anyhow::Result<[u8; 32]> {
        let id = *blake3::hash(bytes).as_bytes();
        let path = self.chunk_path(&id);
        if !path.exists() {
            atomic_write(&path, bytes)?;
        }
        Ok(id)
    }

    /// Reads a chunk, re-checking its hash; `None` if absent or corrupt.
    pub fn get_chunk(&self, id: &[u8; 32]) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.chunk_path(id)).ok()?;
        (blake3::hash(&bytes).as_bytes() == id).then_some(bytes)
    }

    fn job_path(&self, job: &[u8; 32], name: &str) -> PathBuf {
        self.root.join("jobs").join(hex::encode(job)).join(name)
    }

    /// Writes a named record of a job.
    pub fn put_job_record(&self, job: &[u8; 32], name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        atomic_write(&self.job_path(job, name), bytes)
    }

    /// Reads a named record of a job.
    pub fn get_job_record(&self, job: &[u8; 32], name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.job_path(job, name)).ok()
    }

    /// Ids of every job with a stored record.
    pub fn job_ids(&self) -> Vec<[u8; 32]> {
        let Ok(entries) = std::fs::read_dir(self.root.join("jobs")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| hex::decode(e.file_name().to_string_lossy().as_bytes()).ok())
            .filter_map(|b| b.try_into().ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = store.put_chunk(b"hello").unwrap();
        assert_eq!(store.get_chunk(&id).unwrap(), b"hello");
        std::fs::write(dir.path().join("chunks").join(hex::encode(id)), b"evil").unwrap();
        assert!(store.get_chunk(&id).is_none());
        assert!(store.get_chunk(&[0; 32]).is_none());
    }

    #[test]
    fn job_records_persist() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .put_job_record(&[3; 32], "settlement", b"abc")
            .unwrap();
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(
            reopened.get_job_record(&[3; 32], "settlement").unwrap(),
            b"abc"
        );
        assert_eq!(reopened.job_ids(), vec![[3; 32]]);
    }
}
