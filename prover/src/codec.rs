//! Canonical bincode 2 encoding with a hard size limit on decode.
//!
//! Decoding checks the input length against the limit before touching it, tells bincode the
//! same limit (so no length prefix can make it allocate more), rejects trailing bytes and never
//! panics.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::DecodeError;

/// Largest encoded shard proof accepted (8 MiB).
pub const MAX_PROOF_BYTES: usize = 8 << 20;
/// Largest encoded verifying key accepted.
pub const MAX_VERIFYING_KEY_BYTES: usize = 1 << 10;

fn config<const LIMIT: usize>() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<LIMIT>,
> {
    bincode::config::standard().with_limit::<LIMIT>()
}

/// Encodes `value` canonically.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding into a Vec cannot fail for the plain data types of this crate.
    bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap_or_default()
}

/// Decodes `bytes` as `T`, refusing anything longer than `LIMIT` or with trailing bytes.
pub fn decode<T: DeserializeOwned, const LIMIT: usize>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    if bytes.len() > LIMIT {
        return Err(DecodeError::TooLong {
            what,
            len: bytes.len(),
            limit: LIMIT,
        });
    }
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, config::<LIMIT>()).map_err(|e| {
            DecodeError::Malformed {
                what,
                detail: e.to_string(),
            }
        })?;
    if used != bytes.len() {
        return Err(DecodeError::Trailing {
            what,
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}
