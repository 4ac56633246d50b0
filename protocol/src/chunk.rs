//! Content-addressed chunks: how bulk matrix data is cut, named and checked.
//!
//! A matrix travels as its canonical bytes (see [`crate::job::JobSpec::w_bytes`]) cut into
//! [`CHUNK_SIZE`] pieces; each piece is named by [`ChunkId`] = `blake3(bytes)` and checked
//! against that name on arrival.

use serde::{Deserialize, Serialize};

pub use crate::ids::ChunkId;

/// The protocol's chunk size: 1 MiB. Every chunk but the last of a blob is exactly this long.
pub const CHUNK_SIZE: usize = 1 << 20;

/// One chunk as listed in a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkRef {
    /// `blake3(bytes)`.
    pub id: ChunkId,
    /// Length in bytes.
    pub len: u32,
}

/// Why a chunk or a set of chunks does not match its description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The bytes do not hash to the expected id.
    #[error("chunk {index} hashes to {found}, expected {expected}")]
    HashMismatch {
        /// Position in the blob's chunk list.
        index: usize,
        /// The id listed.
        expected: ChunkId,
        /// The hash of the bytes received.
        found: ChunkId,
    },
    /// The chunk has the wrong length.
    #[error("chunk {index} has {found} bytes, expected {expected}")]
    LengthMismatch {
        /// Position in the blob's chunk list.
        index: usize,
        /// Length listed.
        expected: usize,
        /// Length received.
        found: usize,
    },
    /// A different number of chunks than listed.
    #[error("expected {expected} chunks, found {found}")]
    CountMismatch {
        /// Chunks listed.
        expected: usize,
        /// Chunks received.
        found: usize,
    },
}

/// Cuts `bytes` into [`CHUNK_SIZE`] pieces and names each one.
pub fn split_into_chunks(bytes: &[u8]) -> Vec<(ChunkRef, &[u8])> {
    split_with_size(bytes, CHUNK_SIZE)
}

/// Cuts `bytes` into `size`-byte pieces (the last may be shorter; `size` 0 is treated as 1).
pub fn split_with_size(bytes: &[u8], size: usize) -> Vec<(ChunkRef, &[u8])> {
    bytes
        .chunks(size.max(1))
        .map(|piece| {
            let chunk = ChunkRef {
                id: ChunkId::of(piece),
                // Pieces are at most CHUNK_SIZE (1 MiB) in the protocol; saturate otherwise.
                len: u32::try_from(piece.len()).unwrap_or(u32::MAX),
            };
            (chunk, piece)
        })
        .collect()
}

/// The chunk list a blob of `bytes` has under the protocol's chunk size.
pub fn chunk_refs(bytes: &[u8]) -> Vec<ChunkRef> {
    split_into_chunks(bytes)
        .into_iter()
        .map(|(r, _)| r)
        .collect()
}

/// Checks one received chunk against its listing.
pub fn verify_chunk(index: usize, expected: &ChunkRef, bytes: &[u8]) -> Result<(), ChunkError> {
    if bytes.len() != expected.len as usize {
        return Err(ChunkError::LengthMismatch {
            index,
            expected: expected.len as usize,
            found: bytes.len(),
        });
    }
    let found = ChunkId::of(bytes);
    if found != expected.id {
        return Err(ChunkError::HashMismatch {
            index,
            expected: expected.id,
            found,
        });
    }
    Ok(())
}

/// Checks every chunk of a blob and concatenates them.
pub fn assemble_chunks<B: AsRef<[u8]>>(
    listing: &[ChunkRef],
    chunks: &[B],
) -> Result<Vec<u8>, ChunkError> {
    if listing.len() != chunks.len() {
        return Err(ChunkError::CountMismatch {
            expected: listing.len(),
            found: chunks.len(),
        });
    }
    let total: usize = chunks.iter().map(|c| c.as_ref().len()).sum();
    let mut out = Vec::with_capacity(total);
    for (index, (expected, bytes)) in listing.iter().zip(chunks).enumerate() {
        verify_chunk(index, expected, bytes.as_ref())?;
        out.extend_from_slice(bytes.as_ref());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sizes_and_ids() {
        let data: Vec<u8> = (0..10u8).collect();
        let pieces = split_with_size(&data, 4);
        let lens: Vec<u32> = pieces.iter().map(|(r, _)| r.len).collect();
        assert_eq!(lens, vec![4, 4, 2]);
        assert_eq!(pieces[2].0.id, ChunkId::of(&[8, 9]));
        assert!(split_into_chunks(&[]).is_empty());
        let big = vec![1u8; CHUNK_SIZE + 5];
        let refs = chunk_refs(&big);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].len as usize, CHUNK_SIZE);
        assert_eq!(refs[1].len, 5);
    }

    #[test]
    fn assemble_checks_every_chunk() {
        let data: Vec<u8> = (0..10u8).collect();
        let pieces = split_with_size(&data, 4);
        let listing: Vec<ChunkRef> = pieces.iter().map(|(r, _)| *r).collect();
        let bodies: Vec<Vec<u8>> = pieces.iter().map(|(_, b)| b.to_vec()).collect();
        assert_eq!(assemble_chunks(&listing, &bodies).unwrap(), data);

        let mut tampered = bodies.clone();
        tampered[1][0] ^= 1;
        assert!(matches!(
            assemble_chunks(&listing, &tampered),
            Err(ChunkError::HashMismatch { index: 1, .. })
        ));
        let mut short = bodies.clone();
        short[2].pop();
        assert!(matches!(
            assemble_chunks(&listing, &short),
            Err(ChunkError::LengthMismatch { index: 2, .. })
        ));
        assert!(matches!(
            assemble_chunks(&listing, &bodies[..2]),
            Err(ChunkError::CountMismatch { .. })
        ));
    }
}
