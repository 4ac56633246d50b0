//! # starkscale-protocol
//!
//! The pure rules and types of the STARKScale network: no I/O, no async, no networking. Every
//! function here is a deterministic function of its inputs (time is always an argument), so all
//! peers that see the same messages reach the same conclusions.
//!
//! | module | what lives there |
//! | --- | --- |
//! | [`matrix`] | [`IntMatrix`], the dense integer matrix |
//! | [`job`] | job JSON parsing and validation, limits, canonical bytes, [`JobId`] |
//! | [`plan`] | [`ShardPlan`]: rows of W cut into shards |
//! | [`chunk`] | content-addressed chunks ([`ChunkId`] = blake3 of the bytes) |
//! | [`model`] | [`SignedModel`]: W's chunk hashes, shard plan and keys, signed by its owner |
//! | [`manifest`] | [`Manifest`]: what `JobAnnounced` carries (a model and X), bound to the job id |
//! | [`codec`] | the canonical encoding (bincode 2, fixed-width ints), frames, size limits |
//! | [`envelope`] | ed25519-signed envelopes bound to network, kind and job |
//! | [`messages`] | gossip payloads, topics, request-response messages |
//! | [`lease`] | claim/lease resolution, capacity, backup claims, final proofs |
//! | [`election`] | aggregator ranking (rendezvous hashing) and takeover |
//! | [`status`] | job statuses and the per-job record |
//! | [`validate`] | gossip validation: Accept / Ignore / Reject |
//! | [`catchup`] | the budget of one catch-up from one peer (pages, bytes, frames waiting) |
//! | [`admission`] | the rate of job submissions one entry peer takes from one peer |
//!
//! ```
//! use starkscale_protocol::{JobLimits, JobSpec, ShardPlan};
//!
//! let spec = JobSpec::from_json(
//!     r#"{"matrix": [[1, 2], [3, 4]], "vector": [5, 6]}"#,
//!     &JobLimits::default(),
//! )?;
//! assert_eq!(spec.reference_product()?.data(), &[17, 39]);
//! let plan = ShardPlan::new(spec.m() as u32, spec.k() as u32, 2)?;
//! assert_eq!(plan.shard_count(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod admission;
pub mod catchup;
pub mod chunk;
pub mod codec;
pub mod election;
pub mod envelope;
pub mod ids;
pub mod job;
pub mod lease;
pub mod manifest;
pub mod matrix;
pub mod messages;
pub mod model;
pub mod plan;
pub mod status;
pub mod validate;

#[cfg(test)]
mod testutil;
#[cfg(test)]
mod wire_tests;

pub use ed25519_dalek;

pub use chunk::{ChunkRef, CHUNK_SIZE};
pub use codec::{CodecError, MessageKind, WireMessage, PROTOCOL_VERSION};
pub use envelope::{EnvelopeError, GossipPayload, SignedEnvelope};
pub use ids::{ChunkId, JobId, ModelId, NetworkId, PeerKey, SignatureBytes};
pub use job::{JobLimits, JobSpec, JobSpecError};
pub use lease::{Claim, ClaimOutcome, LeaseBook, LeaseRules};
pub use manifest::{Manifest, ManifestError};
pub use matrix::IntMatrix;
pub use model::{ModelManifest, SignedModel};
pub use plan::{ShardPlan, ShardRange};
pub use status::{JobRecord, JobStatus, SettlePolicy};
pub use validate::{GossipContext, NeedsProofCheck, Reason, Verdict};
