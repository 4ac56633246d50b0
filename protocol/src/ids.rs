//! Fixed-size identifiers: job ids, chunk ids, peer keys, network ids and signatures.
//!
//! Every 32-byte identifier prints as lowercase hex, parses from hex, and serialises as raw
//! bytes in binary formats (bincode) but as a hex string in human-readable ones (JSON), so the
//! node can show them in logs and status output without extra conversions.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

/// Why a hex string could not be parsed into an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HexError {
    /// The string has the wrong number of hex digits.
    #[error("expected {expected} hex digits, found {found}")]
    Length {
        /// Number of hex digits required.
        expected: usize,
        /// Number of characters found.
        found: usize,
    },
    /// A character is not a hex digit.
    #[error("invalid hex digit {found:?} at position {position}")]
    Digit {
        /// Zero-based character position.
        position: usize,
        /// The offending character.
        found: char,
    },
}

/// Writes bytes as lowercase hex.
pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for byte in bytes {
        write!(f, "{byte:02x}")?;
    }
    Ok(())
}

/// Parses exactly `N` bytes from `2 * N` hex digits.
pub(crate) fn parse_hex<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() != 2 * N {
        return Err(HexError::Length {
            expected: 2 * N,
            found: chars.len(),
        });
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        let mut value = 0u8;
        for j in 0..2 {
            let position = 2 * i + j;
            let c = chars[position];
            let digit = c
                .to_digit(16)
                .ok_or(HexError::Digit { position, found: c })?;
            // `to_digit(16)` is below 16, so it fits in a nibble.
            value = (value << 4) | (digit as u8);
        }
        *byte = value;
    }
    Ok(out)
}

/// Defines a 32-byte identifier newtype with hex Display/FromStr and dual-mode serde.
macro_rules! id32 {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The all-zero value (used where a message carries no such id).
            pub const ZERO: Self = Self([0u8; 32]);

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                write_hex(f, &self.0[..6])?;
                write!(f, "…)")
            }
        }

        impl FromStr for $name {
            type Err = HexError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex::<32>(s).map(Self)
            }
        }

        impl From<[u8; 32]> for $name {
            fn from(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.collect_str(self)
                } else {
                    serialize_array(&self.0, serializer)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let text = String::deserialize(deserializer)?;
                    text.parse().map_err(de::Error::custom)
                } else {
                    deserialize_array::<D, 32>(deserializer).map(Self)
                }
            }
        }
    };
}

/// Serialises a byte array as a fixed-length tuple (no length prefix in bincode).
fn serialize_array<S: Serializer, const N: usize>(
    bytes: &[u8; N],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut tuple = serializer.serialize_tuple(N)?;
    for byte in bytes {
        tuple.serialize_element(byte)?;
    }
    tuple.end()
}

/// Deserialises a fixed-length byte tuple written by [`serialize_array`].
fn deserialize_array<'de, D: Deserializer<'de>, const N: usize>(
    deserializer: D,
) -> Result<[u8; N], D::Error> {
    struct ArrayVisitor<const N: usize>;
    impl<'de, const N: usize> Visitor<'de> for ArrayVisitor<N> {
        type Value = [u8; N];
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{N} bytes")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = [0u8; N];
            for (i, slot) in out.iter_mut().enumerate() {
                *slot = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(i, &self))?;
            }
            Ok(out)
        }
    }
    deserializer.deserialize_tuple(N, ArrayVisitor::<N>)
}

id32!(
    /// Content-derived identity of a job: the same model and X give the same id on every peer.
    ///
    /// Computed by [`crate::manifest::content_job_id`] from the model id and the dimensions
    /// and chunk ids of X.
    JobId
);

id32!(
    /// Identity of a model: the hash of its owner's manifest ([`crate::model::SignedModel::id`]).
    /// It fixes W's chunk hashes, the shard plan and every shard's verifying key.
    ModelId
);

id32!(
    /// Identity of a content-addressed chunk: `blake3(chunk bytes)`.
    ChunkId
);

id32!(
    /// An ed25519 public key as it travels on the wire (not yet checked to be a valid point).
    PeerKey
);

id32!(
    /// Identity of a STARKScale network (testnet, mainnet, a test's private network).
    ///
    /// It is mixed into every signature so a message signed for one network never verifies on
    /// another.
    NetworkId
);

impl ChunkId {
    /// The id of a chunk with these bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
}

impl NetworkId {
    /// Derives a network id from a human-readable name such as `"starkscale-testnet"`.
    pub fn from_name(name: &str) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("starkscale/1 network id");
        hasher.update(name.as_bytes());
        Self(*hasher.finalize().as_bytes())
    }
}

impl From<&ed25519_dalek::VerifyingKey> for PeerKey {
    fn from(key: &ed25519_dalek::VerifyingKey) -> Self {
        Self(key.to_bytes())
    }
}

impl From<&ed25519_dalek::SigningKey> for PeerKey {
    fn from(key: &ed25519_dalek::SigningKey) -> Self {
        Self(key.verifying_key().to_bytes())
    }
}

/// A detached ed25519 signature (64 bytes) as it travels on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignatureBytes(pub [u8; 64]);

impl fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureBytes(")?;
        write_hex(f, &self.0[..6])?;
        write!(f, "…)")
    }
}

impl fmt::Display for SignatureBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl Serialize for SignatureBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serialize_array(&self.0, serializer)
        }
    }
}

impl<'de> Deserialize<'de> for SignatureBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            parse_hex::<64>(&text).map(Self).map_err(de::Error::custom)
        } else {
            deserialize_array::<D, 64>(deserializer).map(Self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = JobId([0xab; 32]);
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<JobId>(), Ok(id));
    }

    #[test]
    fn hex_errors_say_what_is_wrong() {
        assert_eq!(
            "abc".parse::<JobId>(),
            Err(HexError::Length {
                expected: 64,
                found: 3
            })
        );
        let mut bad = "0".repeat(64);
        bad.replace_range(5..6, "g");
        assert_eq!(
            bad.parse::<ChunkId>(),
            Err(HexError::Digit {
                position: 5,
                found: 'g'
            })
        );
    }

    #[test]
    fn json_uses_hex_and_bincode_uses_raw_bytes() {
        let key = PeerKey([7; 32]);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"{}\"", "07".repeat(32)));
        assert_eq!(serde_json::from_str::<PeerKey>(&json).unwrap(), key);
        let raw = crate::codec::to_canonical_bytes(&key).unwrap();
        assert_eq!(raw, vec![7u8; 32]);
        let sig = SignatureBytes([9; 64]);
        let raw = crate::codec::to_canonical_bytes(&sig).unwrap();
        assert_eq!(raw, vec![9u8; 64]);
    }

    #[test]
    fn network_ids_differ_by_name() {
        assert_ne!(NetworkId::from_name("a"), NetworkId::from_name("b"));
        assert_eq!(NetworkId::from_name("a"), NetworkId::from_name("a"));
    }
}
