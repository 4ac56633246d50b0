//! The one canonical encoding, its framing and its size limits.
//!
//! # Encoding
//!
//! Bodies are bincode 2 through serde with `config::standard()` switched to **fixed-width
//! little-endian integers** (`with_fixed_int_encoding`). Fixed width was chosen over varint
//! because:
//! - every value has exactly one encoding (varint decoders accept some over-long forms), so a
//!   successful decode followed by an encode gives back the same bytes — the fuzz targets assert
//!   it — and content-based gossip message ids cannot be varied by re-encoding;
//! - bincode's decode limit counts the in-memory size of each decoded integer, which with fixed
//!   width equals the number of wire bytes, so the byte limit below is also an allocation bound.
//!
//! # Frames
//!
//! Every message on the wire is a frame: `version: u16 LE || kind: u8 || bincode body`.
//! Decoding checks, in order: total length against the kind's limit (before any parsing) →
//! version (unknown versions are refused with [`CodecError::UnsupportedVersion`]) → kind →
//! body with a bincode limit equal to the kind's limit → no trailing bytes. Nothing here panics
//! on any input, and no allocation exceeds the kind's limit (serde pre-allocates at most 1 MiB
//! for a sequence; a `Vec` may then grow to twice what the input actually holds).

use std::fmt;

use bincode::config::{self, Configuration, Fixint, LittleEndian, NoLimit};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::chunk::CHUNK_SIZE;

/// The wire protocol version carried in every frame.
pub const PROTOCOL_VERSION: u16 = 2;

/// Bytes before the body: version (2) and kind (1).
pub const HEADER_LEN: usize = 3;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Maximum frame sizes per message kind (header included), and maxima of fields inside them.
pub mod limits {
    use super::{CHUNK_SIZE, KIB, MIB};

    /// `JobAnnounced`: a manifest (≈ 50 bytes per 1 MiB chunk of data).
    pub const JOB_ANNOUNCED: usize = MODEL_MANIFEST + 256 * KIB;
    /// A signed model manifest (its chunk list and shard keys), alone or in a reply.
    pub const MODEL_MANIFEST: usize = 768 * KIB;
    /// The answer to a model upload step (the chunks still missing).
    pub const MODEL_UPLOAD: usize = 128 * KIB;
    /// A list of the models a node knows.
    pub const MODEL_LIST: usize = 4 * MIB;
    /// `ShardClaimed`.
    pub const SHARD_CLAIMED: usize = KIB;
    /// `ShardProved`: proof plus output rows.
    pub const SHARD_PROVED: usize = 16 * MIB;
    /// `AggregatorHeartbeat`.
    pub const AGGREGATOR_HEARTBEAT: usize = 4 * KIB;
    /// `JobSettled`: settlement artefact, optional inline result, credits.
    pub const JOB_SETTLED: usize = 16 * MIB;
    /// `JobFailed`.
    pub const JOB_FAILED: usize = 4 * KIB;
    /// Small requests: `FetchChunk`, `JobStatus`, `CatchUp`.
    pub const SMALL_REQUEST: usize = 256;
    /// `SubmitJob`: X's canonical bytes (2^24 entries of 4 bytes) and the model id.
    pub const SUBMIT_JOB: usize = 72 * MIB;
    /// `Chunk` response: one chunk plus framing.
    pub const CHUNK: usize = CHUNK_SIZE + KIB;
    /// `SubmitResult` response.
    pub const SUBMIT_RESULT: usize = 4 * KIB;
    /// `StatusReport` response.
    pub const STATUS_REPORT: usize = 64 * KIB;
    /// `CatchUpReport` response: signed envelopes, paginated by the responder.
    pub const CATCH_UP_REPORT: usize = 64 * MIB;
    /// The largest frame of any kind.
    pub const MAX_FRAME: usize = SUBMIT_JOB;

    /// Largest proof inside `ShardProved`.
    pub const MAX_PROOF_BYTES: usize = 8 * MIB;
    /// Largest settlement artefact inside `JobSettled`.
    pub const MAX_SETTLEMENT_BYTES: usize = 8 * MIB;
    /// `NodeStatusReport` response.
    pub const NODE_STATUS_REPORT: usize = 4 * MIB;
    /// `Settlement` response: one settlement artefact plus framing.
    pub const SETTLEMENT: usize = MAX_SETTLEMENT_BYTES + KIB;
    /// Largest number of output entries one shard may carry (8 bytes each on the wire).
    pub const MAX_SHARD_OUTPUT_ENTRIES: usize = 1 << 19;
    /// Largest inline result in `JobSettled` (larger results travel as shard outputs only).
    pub const MAX_INLINE_RESULT_ENTRIES: usize = 1 << 19;
    /// Longest free-text reason (`JobFailed`, `Rejected`).
    pub const MAX_REASON_BYTES: usize = 1024;
}

/// Every kind of frame; the discriminant is the kind tag on the wire and in signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum MessageKind {
    /// Gossip: a new job's manifest.
    JobAnnounced = 1,
    /// Gossip: a worker leases a shard.
    ShardClaimed = 2,
    /// Gossip: a worker publishes a shard proof.
    ShardProved = 3,
    /// Gossip: an aggregator advertises itself.
    AggregatorHeartbeat = 4,
    /// Gossip: a job's final proof.
    JobSettled = 5,
    /// Gossip: a job failed.
    JobFailed = 6,
    /// Request: one chunk by id.
    FetchChunk = 16,
    /// Request: submit a job.
    SubmitJob = 17,
    /// Request: a job's status.
    JobStatus = 18,
    /// Request: state sync for a late joiner.
    CatchUp = 19,
    /// Request: a settled job's settlement artefact.
    GetSettlement = 20,
    /// Request: an operator's view of a node.
    NodeStatus = 21,
    /// Request: start (or resume) the upload of a model's W.
    RegisterModel = 22,
    /// Request: one chunk of a model's W.
    UploadChunk = 23,
    /// Request: a model's signed manifest.
    GetModel = 24,
    /// Request: the models a node knows.
    ListModels = 25,
    /// Response to `FetchChunk`.
    Chunk = 32,
    /// Response to `SubmitJob`.
    SubmitResult = 33,
    /// Response to `JobStatus`.
    StatusReport = 34,
    /// Response to `CatchUp`.
    CatchUpReport = 35,
    /// Response to `GetSettlement`.
    Settlement = 36,
    /// Response to `NodeStatus`.
    NodeStatusReport = 37,
    /// Response to `RegisterModel` and `UploadChunk`.
    ModelUpload = 38,
    /// Response to `GetModel`.
    Model = 39,
    /// Response to `ListModels`.
    ModelList = 40,
}

impl MessageKind {
    /// All kinds, in tag order.
    pub const ALL: [MessageKind; 25] = [
        Self::JobAnnounced,
        Self::ShardClaimed,
        Self::ShardProved,
        Self::AggregatorHeartbeat,
        Self::JobSettled,
        Self::JobFailed,
        Self::FetchChunk,
        Self::SubmitJob,
        Self::JobStatus,
        Self::CatchUp,
        Self::GetSettlement,
        Self::NodeStatus,
        Self::RegisterModel,
        Self::UploadChunk,
        Self::GetModel,
        Self::ListModels,
        Self::Chunk,
        Self::SubmitResult,
        Self::StatusReport,
        Self::CatchUpReport,
        Self::Settlement,
        Self::NodeStatusReport,
        Self::ModelUpload,
        Self::Model,
        Self::ModelList,
    ];

    /// The gossip kinds (those sent in signed envelopes on a topic).
    pub const GOSSIP: [MessageKind; 6] = [
        Self::JobAnnounced,
        Self::ShardClaimed,
        Self::ShardProved,
        Self::AggregatorHeartbeat,
        Self::JobSettled,
        Self::JobFailed,
    ];

    /// The tag byte.
    pub fn tag(self) -> u8 {
        self as u8
    }

    /// The kind with this tag byte.
    pub fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.tag() == tag)
    }

    /// Whether this kind travels as gossip.
    pub fn is_gossip(self) -> bool {
        Self::GOSSIP.contains(&self)
    }

    /// The largest frame of this kind, header included.
    pub fn max_frame_bytes(self) -> usize {
        match self {
            Self::JobAnnounced => limits::JOB_ANNOUNCED,
            Self::ShardClaimed => limits::SHARD_CLAIMED,
            Self::ShardProved => limits::SHARD_PROVED,
            Self::AggregatorHeartbeat => limits::AGGREGATOR_HEARTBEAT,
            Self::JobSettled => limits::JOB_SETTLED,
            Self::JobFailed => limits::JOB_FAILED,
            Self::FetchChunk
            | Self::JobStatus
            | Self::CatchUp
            | Self::GetSettlement
            | Self::NodeStatus
            | Self::GetModel
            | Self::ListModels => limits::SMALL_REQUEST,
            Self::RegisterModel | Self::Model => limits::MODEL_MANIFEST,
            Self::UploadChunk => limits::CHUNK,
            Self::ModelUpload => limits::MODEL_UPLOAD,
            Self::ModelList => limits::MODEL_LIST,
            Self::NodeStatusReport => limits::NODE_STATUS_REPORT,
            Self::Settlement => limits::SETTLEMENT,
            Self::SubmitJob => limits::SUBMIT_JOB,
            Self::Chunk => limits::CHUNK,
            Self::SubmitResult => limits::SUBMIT_RESULT,
            Self::StatusReport => limits::STATUS_REPORT,
            Self::CatchUpReport => limits::CATCH_UP_REPORT,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why bytes could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input is longer than the kind allows; nothing was parsed.
    #[error("{} frame of {len} bytes exceeds the limit of {limit} bytes", kind_name(.kind))]
    TooLarge {
        /// The kind, or `None` if the header was not read yet.
        kind: Option<MessageKind>,
        /// Input length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The input is shorter than a frame header.
    #[error("frame of {len} bytes is shorter than the {HEADER_LEN}-byte header")]
    TooShort {
        /// Input length.
        len: usize,
    },
    /// The frame was made by a protocol version this build does not speak.
    #[error("unsupported protocol version {found} (this build speaks version {supported})")]
    UnsupportedVersion {
        /// Version in the frame.
        found: u16,
        /// Version this build speaks.
        supported: u16,
    },
    /// The kind tag is not known.
    #[error("unknown message kind tag {tag}")]
    UnknownKind {
        /// The tag byte.
        tag: u8,
    },
    /// The frame is of a different kind than the caller expected.
    #[error("expected a {expected} frame, found {found}")]
    WrongKind {
        /// Kind the caller asked for.
        expected: MessageKind,
        /// Kind in the frame.
        found: MessageKind,
    },
    /// The frame's kind is not one the caller accepts here (e.g. a gossip kind sent as a
    /// request).
    #[error("a {found} frame is not a {context}")]
    UnexpectedKind {
        /// What the caller accepts (`"request"`, `"response"`, `"gossip message"`).
        context: &'static str,
        /// Kind in the frame.
        found: MessageKind,
    },
    /// bincode rejected the body.
    #[error("malformed {kind} body: {detail}")]
    Decode {
        /// The kind being decoded.
        kind: MessageKind,
        /// bincode's description.
        detail: String,
    },
    /// The body decoded but bytes were left over.
    #[error("{kind} body has {extra} trailing bytes")]
    TrailingBytes {
        /// The kind being decoded.
        kind: MessageKind,
        /// Number of unread bytes.
        extra: usize,
    },
    /// bincode could not encode a value.
    #[error("cannot encode {}: {detail}", kind_name(.kind))]
    Encode {
        /// The kind being encoded, if any.
        kind: Option<MessageKind>,
        /// bincode's description.
        detail: String,
    },
    /// An encoded message would exceed its kind's limit (peers would refuse it).
    #[error("encoded {kind} is {len} bytes, over the limit of {limit}")]
    EncodedTooLarge {
        /// The kind.
        kind: MessageKind,
        /// Encoded length.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

fn kind_name(kind: &Option<MessageKind>) -> String {
    kind.map_or_else(|| "unknown".to_string(), |k| k.to_string())
}

/// The canonical bincode configuration without a limit (used for encoding and hashing).
pub fn canonical_config() -> Configuration<LittleEndian, Fixint, NoLimit> {
    config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
}

/// Encodes a value with the canonical configuration (no frame, no limit).
pub fn to_canonical_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, canonical_config()).map_err(|e| CodecError::Encode {
        kind: None,
        detail: e.to_string(),
    })
}

/// Decodes with a compile-time bincode limit.
fn decode_limited<T: DeserializeOwned, const N: usize>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(bytes, canonical_config().with_limit::<N>())
}

/// Decodes a canonical body of `kind` (no header): length check first, then bincode with the
/// kind's limit, then a trailing-bytes check.
pub fn decode_body<T: DeserializeOwned>(kind: MessageKind, bytes: &[u8]) -> Result<T, CodecError> {
    let limit = kind.max_frame_bytes();
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            kind: Some(kind),
            len: bytes.len(),
            limit,
        });
    }
    // Each arm names its limit as a constant so bincode enforces it while allocating.
    let decoded = match kind {
        MessageKind::JobAnnounced => decode_limited::<T, { limits::JOB_ANNOUNCED }>(bytes),
        MessageKind::ShardClaimed => decode_limited::<T, { limits::SHARD_CLAIMED }>(bytes),
        MessageKind::ShardProved => decode_limited::<T, { limits::SHARD_PROVED }>(bytes),
        MessageKind::AggregatorHeartbeat => {
            decode_limited::<T, { limits::AGGREGATOR_HEARTBEAT }>(bytes)
        }
        MessageKind::JobSettled => decode_limited::<T, { limits::JOB_SETTLED }>(bytes),
        MessageKind::JobFailed => decode_limited::<T, { limits::JOB_FAILED }>(bytes),
        MessageKind::FetchChunk
        | MessageKind::JobStatus
        | MessageKind::CatchUp
        | MessageKind::GetSettlement
        | MessageKind::NodeStatus
        | MessageKind::GetModel
        | MessageKind::ListModels => decode_limited::<T, { limits::SMALL_REQUEST }>(bytes),
        MessageKind::RegisterModel | MessageKind::Model => {
            decode_limited::<T, { limits::MODEL_MANIFEST }>(bytes)
        }
        MessageKind::UploadChunk => decode_limited::<T, { limits::CHUNK }>(bytes),
        MessageKind::ModelUpload => decode_limited::<T, { limits::MODEL_UPLOAD }>(bytes),
        MessageKind::ModelList => decode_limited::<T, { limits::MODEL_LIST }>(bytes),
        MessageKind::NodeStatusReport => decode_limited::<T, { limits::NODE_STATUS_REPORT }>(bytes),
        MessageKind::Settlement => decode_limited::<T, { limits::SETTLEMENT }>(bytes),
        MessageKind::SubmitJob => decode_limited::<T, { limits::SUBMIT_JOB }>(bytes),
        MessageKind::Chunk => decode_limited::<T, { limits::CHUNK }>(bytes),
        MessageKind::SubmitResult => decode_limited::<T, { limits::SUBMIT_RESULT }>(bytes),
        MessageKind::StatusReport => decode_limited::<T, { limits::STATUS_REPORT }>(bytes),
        MessageKind::CatchUpReport => decode_limited::<T, { limits::CATCH_UP_REPORT }>(bytes),
    };
    let (value, used) = decoded.map_err(|e| CodecError::Decode {
        kind,
        detail: e.to_string(),
    })?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            kind,
            extra: bytes.len().saturating_sub(used),
        });
    }
    Ok(value)
}

/// Encodes `value` as a frame of `kind`, refusing to produce a frame peers would reject.
pub fn encode_frame<T: Serialize + ?Sized>(
    kind: MessageKind,
    value: &T,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    out.push(kind.tag());
    bincode::serde::encode_into_std_write(value, &mut out, canonical_config()).map_err(|e| {
        CodecError::Encode {
            kind: Some(kind),
            detail: e.to_string(),
        }
    })?;
    let limit = kind.max_frame_bytes();
    if out.len() > limit {
        return Err(CodecError::EncodedTooLarge {
            kind,
            len: out.len(),
            limit,
        });
    }
    Ok(out)
}

/// Reads a frame header: overall size, version and kind. Returns the kind and the body.
pub fn decode_header(bytes: &[u8]) -> Result<(MessageKind, &[u8]), CodecError> {
    if bytes.len() > limits::MAX_FRAME {
        return Err(CodecError::TooLarge {
            kind: None,
            len: bytes.len(),
            limit: limits::MAX_FRAME,
        });
    }
    let (header, body) = match (bytes.get(..HEADER_LEN), bytes.get(HEADER_LEN..)) {
        (Some(header), Some(body)) => (header, body),
        _ => return Err(CodecError::TooShort { len: bytes.len() }),
    };
    let version = u16::from_le_bytes([header[0], header[1]]);
    if version != PROTOCOL_VERSION {
        return Err(CodecError::UnsupportedVersion {
            found: version,
            supported: PROTOCOL_VERSION,
        });
    }
    let kind =
        MessageKind::from_tag(header[2]).ok_or(CodecError::UnknownKind { tag: header[2] })?;
    let limit = kind.max_frame_bytes();
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            kind: Some(kind),
            len: bytes.len(),
            limit,
        });
    }
    Ok((kind, body))
}

/// Decodes a frame that must be of kind `expected`.
pub fn decode_frame<T: DeserializeOwned>(
    expected: MessageKind,
    bytes: &[u8],
) -> Result<T, CodecError> {
    let (found, body) = decode_header(bytes)?;
    if found != expected {
        return Err(CodecError::WrongKind { expected, found });
    }
    decode_body(found, body)
}

/// A message type that is sent on its own as one frame of a fixed kind.
pub trait WireMessage: Serialize + DeserializeOwned {
    /// The frame kind.
    const KIND: MessageKind;

    /// Encodes `self` as a frame.
    fn to_frame(&self) -> Result<Vec<u8>, CodecError> {
        encode_frame(Self::KIND, self)
    }

    /// Decodes a frame of [`Self::KIND`].
    fn from_frame(bytes: &[u8]) -> Result<Self, CodecError> {
        decode_frame(Self::KIND, bytes)
    }
}

/// An opaque byte string, encoded as a length-prefixed blob (not as a sequence of numbers).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes(len={})", self.0.len())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Bytes {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> serde::de::Visitor<'de> for BytesVisitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Bytes, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(byte) = seq.next_element::<u8>()? {
                    out.push(byte);
                }
                Ok(Bytes(out))
            }
        }
        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Small {
        a: u32,
        b: Bytes,
    }

    #[test]
    fn tags_round_trip_and_are_unique() {
        for kind in MessageKind::ALL {
            assert_eq!(MessageKind::from_tag(kind.tag()), Some(kind));
        }
        assert_eq!(MessageKind::from_tag(0), None);
        assert!(MessageKind::ALL
            .iter()
            .all(|k| k.max_frame_bytes() <= limits::MAX_FRAME));
    }

    #[test]
    fn frame_round_trip() {
        let value = Small {
            a: 7,
            b: Bytes(vec![1, 2, 3]),
        };
        let frame = encode_frame(MessageKind::ShardClaimed, &value).unwrap();
        assert_eq!(&frame[..3], &[2, 0, MessageKind::ShardClaimed.tag()]);
        // Fixed-width: u32 (4) + length u64 (8) + 3 bytes.
        assert_eq!(frame.len(), 3 + 4 + 8 + 3);
        let back: Small = decode_frame(MessageKind::ShardClaimed, &frame).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn unknown_version_is_refused_clearly() {
        let mut frame = encode_frame(MessageKind::ShardClaimed, &5u32).unwrap();
        frame[0] = 3;
        let err = decode_frame::<u32>(MessageKind::ShardClaimed, &frame).unwrap_err();
        assert_eq!(
            err,
            CodecError::UnsupportedVersion {
                found: 3,
                supported: 2
            }
        );
        assert!(err.to_string().contains("unsupported protocol version 3"));
    }

    #[test]
    fn wrong_kind_unknown_kind_short_and_trailing() {
        let frame = encode_frame(MessageKind::ShardClaimed, &5u32).unwrap();
        assert!(matches!(
            decode_frame::<u32>(MessageKind::JobFailed, &frame),
            Err(CodecError::WrongKind { .. })
        ));
        let mut unknown = frame.clone();
        unknown[2] = 99;
        assert_eq!(
            decode_frame::<u32>(MessageKind::ShardClaimed, &unknown),
            Err(CodecError::UnknownKind { tag: 99 })
        );
        assert_eq!(
            decode_frame::<u32>(MessageKind::ShardClaimed, &frame[..2]),
            Err(CodecError::TooShort { len: 2 })
        );
        let mut trailing = frame.clone();
        trailing.push(0);
        assert!(matches!(
            decode_frame::<u32>(MessageKind::ShardClaimed, &trailing),
            Err(CodecError::TrailingBytes { extra: 1, .. })
        ));
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let big = vec![0u8; limits::SHARD_CLAIMED + 1];
        assert!(matches!(
            decode_body::<u32>(MessageKind::ShardClaimed, &big),
            Err(CodecError::TooLarge { .. })
        ));
        let mut frame = vec![2, 0, MessageKind::ShardClaimed.tag()];
        frame.resize(limits::SHARD_CLAIMED + 1, 0);
        assert!(matches!(
            decode_frame::<u32>(MessageKind::ShardClaimed, &frame),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn lying_length_prefix_does_not_allocate() {
        // A claim-sized frame announcing a 2^60-byte blob must fail on the limit.
        let mut body = 7u32.to_le_bytes().to_vec();
        body.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(matches!(
            decode_body::<Small>(MessageKind::ShardClaimed, &body),
            Err(CodecError::Decode { .. })
        ));
    }

    #[test]
    fn encoding_refuses_oversized_messages() {
        let value = Bytes(vec![0; limits::SHARD_CLAIMED]);
        assert!(matches!(
            encode_frame(MessageKind::ShardClaimed, &value),
            Err(CodecError::EncodedTooLarge { .. })
        ));
    }
}
