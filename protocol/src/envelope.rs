//! Signed envelopes: how every gossip message is authenticated.
//!
//! A gossip frame of kind K carries `{job, signer, signature, payload}` where `payload` is the
//! canonical encoding of the message. The signature is ed25519 (checked with `verify_strict`)
//! over
//!
//! ```text
//! "starkscale/1" (12 bytes) ‖ network id (32) ‖ kind tag (1) ‖ job id or zeros (32) ‖ payload
//! ```
//!
//! All fields before the payload have fixed width, so the signed bytes are unambiguous, and a
//! signature made for one kind, job or network never verifies for another. The payload must
//! name the same job as the envelope and its author (claimer, worker, aggregator, entry peer)
//! must be the signer.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};

use crate::codec::{decode_body, decode_frame, encode_frame, to_canonical_bytes};
use crate::codec::{Bytes, CodecError, MessageKind};
use crate::ids::{JobId, NetworkId, PeerKey, SignatureBytes};

/// Domain-separation prefix of every signature.
pub const SIGNING_DOMAIN: &[u8; 12] = b"starkscale/1";

/// A message that travels as gossip inside a [`SignedEnvelope`].
pub trait GossipPayload: Serialize + DeserializeOwned {
    /// Its frame kind (and signature kind tag).
    const KIND: MessageKind;
    /// The job it is about, or [`JobId::ZERO`].
    fn job(&self) -> JobId;
    /// The key it names as its author; must be the envelope's signer.
    fn author(&self) -> PeerKey;
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The frame could not be decoded.
    #[error("envelope: {0}")]
    Frame(CodecError),
    /// The payload inside the envelope could not be decoded.
    #[error("payload: {0}")]
    Payload(CodecError),
    /// Envelope and payload name different jobs.
    #[error("envelope is for job {envelope} but its payload is about job {payload}")]
    JobMismatch {
        /// Job in the envelope.
        envelope: JobId,
        /// Job in the payload.
        payload: JobId,
    },
    /// The payload's author is not the signer.
    #[error("signed by {signer} but the payload's author is {author}")]
    AuthorMismatch {
        /// The signer.
        signer: PeerKey,
        /// The author the payload names.
        author: PeerKey,
    },
    /// The signer key is not a valid ed25519 point.
    #[error("signer {signer} is not a valid ed25519 public key")]
    InvalidKey {
        /// The key.
        signer: PeerKey,
    },
    /// The signature does not verify (wrong key, kind, job, network, or altered bytes).
    #[error("bad {kind} signature from {signer}")]
    BadSignature {
        /// Message kind.
        kind: MessageKind,
        /// Claimed signer.
        signer: PeerKey,
    },
}

/// The bytes a signature covers.
pub fn signing_bytes(
    network: &NetworkId,
    kind: MessageKind,
    job: &JobId,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNING_DOMAIN.len() + 32 + 1 + 32 + payload.len());
    out.extend_from_slice(SIGNING_DOMAIN);
    out.extend_from_slice(network.as_bytes());
    out.push(kind.tag());
    out.extend_from_slice(job.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// The wire body of an envelope.
#[derive(Deserialize)]
struct RawEnvelope {
    job: JobId,
    signer: PeerKey,
    signature: SignatureBytes,
    payload: Bytes,
}

/// The same, borrowed, for encoding without copying the payload.
#[derive(Serialize)]
struct RawEnvelopeRef<'a> {
    job: &'a JobId,
    signer: &'a PeerKey,
    signature: &'a SignatureBytes,
    #[serde(serialize_with = "serialize_slice")]
    payload: &'a [u8],
}

fn serialize_slice<S: Serializer>(bytes: &&[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// A verified (or freshly signed) gossip message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEnvelope<T> {
    message: T,
    job: JobId,
    signer: PeerKey,
    signature: SignatureBytes,
    payload: Vec<u8>,
}

impl<T: GossipPayload> SignedEnvelope<T> {
    /// Signs `message` for `network`. Fails if the key is not the message's author or the
    /// message would be too large for its kind.
    pub fn sign(key: &SigningKey, network: &NetworkId, message: T) -> Result<Self, EnvelopeError> {
        let signer = PeerKey::from(key);
        let author = message.author();
        if author != signer {
            return Err(EnvelopeError::AuthorMismatch { signer, author });
        }
        let payload = to_canonical_bytes(&message).map_err(EnvelopeError::Payload)?;
        let job = message.job();
        let signature = key.sign(&signing_bytes(network, T::KIND, &job, &payload));
        let envelope = Self {
            message,
            job,
            signer,
            signature: SignatureBytes(signature.to_bytes()),
            payload,
        };
        // Refuse now rather than publish something every peer would drop.
        envelope.to_frame().map_err(EnvelopeError::Payload)?;
        Ok(envelope)
    }

    /// Decodes a frame of kind `T::KIND` and verifies it for `network`: size limit, payload
    /// decoding, job and author consistency, then `verify_strict`.
    pub fn from_frame(bytes: &[u8], network: &NetworkId) -> Result<Self, EnvelopeError> {
        let raw: RawEnvelope = decode_frame(T::KIND, bytes).map_err(EnvelopeError::Frame)?;
        let message: T = decode_body(T::KIND, &raw.payload.0).map_err(EnvelopeError::Payload)?;
        if message.job() != raw.job {
            return Err(EnvelopeError::JobMismatch {
                envelope: raw.job,
                payload: message.job(),
            });
        }
        if message.author() != raw.signer {
            return Err(EnvelopeError::AuthorMismatch {
                signer: raw.signer,
                author: message.author(),
            });
        }
        let key = VerifyingKey::from_bytes(raw.signer.as_bytes())
            .map_err(|_| EnvelopeError::InvalidKey { signer: raw.signer })?;
        let signature = Signature::from_bytes(&raw.signature.0);
        key.verify_strict(
            &signing_bytes(network, T::KIND, &raw.job, &raw.payload.0),
            &signature,
        )
        .map_err(|_| EnvelopeError::BadSignature {
            kind: T::KIND,
            signer: raw.signer,
        })?;
        Ok(Self {
            message,
            job: raw.job,
            signer: raw.signer,
            signature: raw.signature,
            payload: raw.payload.0,
        })
    }

    /// Encodes as a gossip frame.
    pub fn to_frame(&self) -> Result<Vec<u8>, CodecError> {
        encode_frame(
            T::KIND,
            &RawEnvelopeRef {
                job: &self.job,
                signer: &self.signer,
                signature: &self.signature,
                payload: &self.payload,
            },
        )
    }

    /// The message.
    pub fn message(&self) -> &T {
        &self.message
    }

    /// Consumes the envelope, returning the message.
    pub fn into_message(self) -> T {
        self.message
    }

    /// The signer (equal to the message's author).
    pub fn signer(&self) -> PeerKey {
        self.signer
    }

    /// The signature.
    pub fn signature(&self) -> &SignatureBytes {
        &self.signature
    }

    /// The job the envelope is bound to ([`JobId::ZERO`] for job-less kinds).
    pub fn job(&self) -> JobId {
        self.job
    }

    /// The canonical payload bytes that were signed.
    pub fn payload_bytes(&self) -> &[u8] {
        &self.payload
    }
}

/// Test helpers that forge envelopes field by field (for signature-binding tests and fuzzing).
#[doc(hidden)]
pub mod forge {
    use super::*;

    /// Builds a frame of `kind` from raw parts without any checks.
    pub fn frame(
        kind: MessageKind,
        job: &JobId,
        signer: &PeerKey,
        signature: &SignatureBytes,
        payload: &[u8],
    ) -> Result<Vec<u8>, CodecError> {
        encode_frame(
            kind,
            &RawEnvelopeRef {
                job,
                signer,
                signature,
                payload,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{JobFailed, ShardClaimed};
    use crate::testutil::{key, sample_claim};

    fn net() -> NetworkId {
        NetworkId::from_name("test")
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let k = key(1);
        let env = SignedEnvelope::sign(&k, &net(), sample_claim(&k)).unwrap();
        let frame = env.to_frame().unwrap();
        let back = SignedEnvelope::<ShardClaimed>::from_frame(&frame, &net()).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.signer(), PeerKey::from(&k));
    }

    #[test]
    fn only_the_author_can_sign() {
        let claim = sample_claim(&key(1));
        assert!(matches!(
            SignedEnvelope::sign(&key(2), &net(), claim),
            Err(EnvelopeError::AuthorMismatch { .. })
        ));
    }

    #[test]
    fn signature_does_not_move_to_another_network() {
        let k = key(1);
        let frame = SignedEnvelope::sign(&k, &net(), sample_claim(&k))
            .unwrap()
            .to_frame()
            .unwrap();
        let other = NetworkId::from_name("other");
        assert!(matches!(
            SignedEnvelope::<ShardClaimed>::from_frame(&frame, &other),
            Err(EnvelopeError::BadSignature { .. })
        ));
    }

    #[test]
    fn signature_does_not_move_to_another_job() {
        let k = key(1);
        let env = SignedEnvelope::sign(&k, &net(), sample_claim(&k)).unwrap();
        // Same signature over a claim for another job.
        let mut moved = *env.message();
        moved.job = JobId([0x42; 32]);
        let payload = to_canonical_bytes(&moved).unwrap();
        let frame = forge::frame(
            MessageKind::ShardClaimed,
            &moved.job,
            &env.signer(),
            env.signature(),
            &payload,
        )
        .unwrap();
        assert!(matches!(
            SignedEnvelope::<ShardClaimed>::from_frame(&frame, &net()),
            Err(EnvelopeError::BadSignature { .. })
        ));
        // Or only the envelope's job changed.
        let frame = forge::frame(
            MessageKind::ShardClaimed,
            &moved.job,
            &env.signer(),
            env.signature(),
            env.payload_bytes(),
        )
        .unwrap();
        assert!(matches!(
            SignedEnvelope::<ShardClaimed>::from_frame(&frame, &net()),
            Err(EnvelopeError::JobMismatch { .. })
        ));
    }

    #[test]
    fn signature_does_not_move_to_another_kind() {
        let k = key(1);
        let failed = JobFailed {
            job: JobId([5; 32]),
            reporter: PeerKey::from(&k),
            failed_at_ms: 1,
            reason: crate::messages::FailureReason::DeadlineExpired,
        };
        let env = SignedEnvelope::sign(&k, &net(), failed).unwrap();
        // Re-frame the same signed bytes under every other gossip kind.
        for kind in MessageKind::GOSSIP {
            if kind == MessageKind::JobFailed {
                continue;
            }
            let frame = forge::frame(
                kind,
                &env.job(),
                &env.signer(),
                env.signature(),
                env.payload_bytes(),
            )
            .unwrap();
            // Whatever the kind, decoding or verification must fail.
            let results = [
                SignedEnvelope::<crate::messages::JobAnnounced>::from_frame(&frame, &net())
                    .is_err(),
                SignedEnvelope::<ShardClaimed>::from_frame(&frame, &net()).is_err(),
                SignedEnvelope::<crate::messages::ShardProved>::from_frame(&frame, &net()).is_err(),
                SignedEnvelope::<crate::messages::AggregatorHeartbeat>::from_frame(&frame, &net())
                    .is_err(),
                SignedEnvelope::<crate::messages::JobSettled>::from_frame(&frame, &net()).is_err(),
                SignedEnvelope::<JobFailed>::from_frame(&frame, &net()).is_err(),
            ];
            assert!(results.iter().all(|r| *r), "{kind}");
        }
        // And the direct check: the signed bytes differ only by the kind tag.
        let a = signing_bytes(&net(), MessageKind::JobFailed, &env.job(), b"x");
        let b = signing_bytes(&net(), MessageKind::ShardClaimed, &env.job(), b"x");
        assert_ne!(a, b);
        let key_v = VerifyingKey::from_bytes(env.signer().as_bytes()).unwrap();
        let sig = Signature::from_bytes(&env.signature().0);
        let bytes = signing_bytes(
            &net(),
            MessageKind::ShardClaimed,
            &env.job(),
            env.payload_bytes(),
        );
        assert!(key_v.verify_strict(&bytes, &sig).is_err());
    }

    #[test]
    fn tampered_payload_or_signature_is_rejected() {
        let k = key(1);
        let env = SignedEnvelope::sign(&k, &net(), sample_claim(&k)).unwrap();
        let frame = env.to_frame().unwrap();
        // Flip each byte of the frame after the header: never accepted.
        for i in 3..frame.len() {
            let mut bad = frame.clone();
            bad[i] ^= 0x01;
            assert!(
                SignedEnvelope::<ShardClaimed>::from_frame(&bad, &net()).is_err(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn invalid_signer_key_is_reported() {
        let k = key(1);
        let env = SignedEnvelope::sign(&k, &net(), sample_claim(&k)).unwrap();
        let mut claim = *env.message();
        // y = 2 does not decompress to a curve point.
        let mut bad_key = [0u8; 32];
        bad_key[0] = 2;
        claim.claimer = PeerKey(bad_key);
        let payload = to_canonical_bytes(&claim).unwrap();
        let frame = forge::frame(
            MessageKind::ShardClaimed,
            &claim.job,
            &claim.claimer,
            env.signature(),
            &payload,
        )
        .unwrap();
        let err = SignedEnvelope::<ShardClaimed>::from_frame(&frame, &net()).unwrap_err();
        assert!(
            matches!(
                err,
                EnvelopeError::InvalidKey { .. } | EnvelopeError::BadSignature { .. }
            ),
            "{err}"
        );
    }
}
