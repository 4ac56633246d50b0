//! On-disk chunk storage: content-addressed chunks at `chunks/<blake3 hex>`, written atomically
//! and re-hashed when read, so a corrupted file is never served. Job state lives in
//! [`crate::db`].

use std::path::{Path, PathBuf};

use anyhow::Context;

/// A directory of files written with write-to-temporary then rename.
#[derive(Clone)]
pub struct Store {
    root: PathBuf,
    index: Option<std::sync::Arc<crate::db::StateDb>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
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
        Ok(Self {
            root: root.to_path_buf(),
            index: None,
        })
    }

    /// Records every chunk stored from now on in `db`'s chunk index.
    pub fn with_index(mut self, db: std::sync::Arc<crate::db::StateDb>) -> Self {
        self.index = Some(db);
        self
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
            if let Some(index) = &self.index {
                index.put_chunk(&id, bytes.len() as u64)?;
            }
        }
        Ok(id)
    }

    /// Whether a chunk is stored (its file exists; its bytes are checked when read).
    pub fn has_chunk(&self, id: &[u8; 32]) -> bool {
        self.chunk_path(id).exists()
    }

    /// Deletes chunks (files and index entries); absent ones are skipped.
    pub fn remove_chunks(&self, ids: &[[u8; 32]]) -> anyhow::Result<()> {
        for id in ids {
            match std::fs::remove_file(self.chunk_path(id)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).context("removing a chunk"),
            }
        }
        if let Some(index) = &self.index {
            index.forget_chunks(ids)?;
        }
        Ok(())
    }

    /// Reads a chunk, re-checking its hash; `None` if absent or corrupt.
    pub fn get_chunk(&self, id: &[u8; 32]) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.chunk_path(id)).ok()?;
        (blake3::hash(&bytes).as_bytes() == id).then_some(bytes)
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
}
