//! The settlement artefact: what a job settles to, and its offline verification.
//!
//! **Partial, and named so:** until the recursive proof exists (recursion issues), the
//! artefact carries every verified shard proof rather than one aggregated proof. Its format
//! string says so ([`SETTLEMENT_FORMAT`]), and verification checks each shard proof.
//!
//! The artefact holds the manifest (dims, chunk hashes of W and X, shard commitments), X, the
//! result Y, each worker's signed `ShardProved` frame (who proved what, for payouts) and the
//! aggregator's ed25519 signature over all of it.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey as DalekKey};
use serde::{Deserialize, Serialize};
use starkscale_protocol::codec::{limits, Bytes};
use starkscale_protocol::ids::{JobId, NetworkId, PeerKey, SignatureBytes};
use starkscale_protocol::job::Operand;
use starkscale_protocol::manifest::Manifest;
use starkscale_protocol::matrix::IntMatrix;
use starkscale_protocol::messages::{ShardCredit, ShardProved};
use starkscale_protocol::validate::ProofCheckError;
use starkscale_protocol::{JobLimits, SignedEnvelope};

use crate::convert::{shard_verifying_key, to_prover};

/// Format of this artefact. Says plainly that it holds shard proofs, not a recursive proof.
pub const SETTLEMENT_FORMAT: &str =
    "starkscale-settlement/1: every shard proof verified individually (no recursive proof yet)";

const SIGNING_DOMAIN: &[u8] = b"starkscale/1 settlement\0";

/// The body of a settlement.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settlement {
    /// [`SETTLEMENT_FORMAT`].
    pub format: String,
    /// The network it was settled on.
    pub network: NetworkId,
    /// The job's manifest.
    pub manifest: Manifest,
    /// The right-hand side X.
    pub x: IntMatrix,
    /// The exact result Y = W·X.
    pub result: IntMatrix,
    /// Each shard's signed `ShardProved` frame, in shard order.
    pub shard_proofs: Vec<Bytes>,
    /// The aggregator.
    pub aggregator: PeerKey,
    /// When it was settled (unix ms).
    pub settled_at_ms: u64,
}

/// A settlement with the aggregator's signature.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignedSettlement {
    /// Canonical bytes of the [`Settlement`].
    pub body: Bytes,
    /// Signer.
    pub aggregator: PeerKey,
    /// ed25519 signature over the domain, the network and `body`.
    pub signature: SignatureBytes,
}

fn signing_bytes(network: &NetworkId, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNING_DOMAIN.len() + 32 + body.len());
    out.extend_from_slice(SIGNING_DOMAIN);
    out.extend_from_slice(network.as_bytes());
    out.extend_from_slice(body);
    out
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_fixed_int_encoding()
        .with_limit::<{ limits::JOB_SETTLED }>()
}

/// Why a settlement is not acceptable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettlementError {
    /// Bytes could not be decoded.
    #[error("this is not a valid STARKScale settlement: {0} (a settlement is the file `starkscale submit --save` writes)")]
    Malformed(String),
    /// The aggregator's signature does not verify.
    #[error("aggregator signature does not verify")]
    Signature,
    /// Another format.
    #[error("unknown settlement format {0:?}")]
    Format(String),
    /// Something inside does not check out.
    #[error("settlement rejected: {0}")]
    Invalid(String),
    /// This node could not check it for a reason of its own (a shard key it cannot derive, a
    /// configuration it does not speak, a conversion): not evidence against the aggregator.
    #[error("settlement not checkable here: {0}")]
    Local(String),
    /// It was settled on another network than the one it is checked for.
    #[error("settlement was made on network {found}, not on this node's network {expected}")]
    Network {
        /// The network it is checked for.
        expected: NetworkId,
        /// The network it names (and was signed for).
        found: NetworkId,
    },
}

/// What a verified settlement establishes.
#[derive(Clone, Debug)]
pub struct VerifiedSettlement {
    /// The job.
    pub job: JobId,
    /// The verified result.
    pub result: IntMatrix,
    /// Who proved which shard.
    pub credits: Vec<ShardCredit>,
    /// The aggregator.
    pub aggregator: PeerKey,
    /// The settlement body.
    pub settlement: Settlement,
}

impl Settlement {
    /// Signs and encodes.
    pub fn sign(&self, key: &SigningKey) -> anyhow::Result<Vec<u8>> {
        let body = bincode::serde::encode_to_vec(self, bincode_config())?;
        let signature = key.sign(&signing_bytes(&self.network, &body));
        let signed = SignedSettlement {
            body: Bytes(body),
            aggregator: PeerKey::from(key),
            signature: SignatureBytes(signature.to_bytes()),
        };
        Ok(bincode::serde::encode_to_vec(&signed, bincode_config())?)
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, SettlementError> {
    if bytes.len() > limits::JOB_SETTLED {
        return Err(SettlementError::Malformed(format!(
            "it is {} bytes, over the {}-byte limit of a settlement",
            bytes.len(),
            limits::JOB_SETTLED
        )));
    }
    let (value, used) = bincode::serde::decode_from_slice(bytes, bincode_config())
        .map_err(|e| SettlementError::Malformed(describe(&e)))?;
    if used != bytes.len() {
        return Err(SettlementError::Malformed(format!(
            "{} bytes follow the end of the settlement",
            bytes.len() - used
        )));
    }
    Ok(value)
}

/// A decoding failure as words (bincode's own `Display` prints its `Debug` form).
fn describe(e: &bincode::error::DecodeError) -> String {
    use bincode::error::DecodeError as E;
    match e {
        E::UnexpectedEnd { .. } => "the data ends before a complete settlement".into(),
        E::LimitExceeded => "it declares more data than a settlement may hold".into(),
        E::Utf8 { .. } => "a text field is not valid UTF-8".into(),
        _ => "its bytes are not a settlement's encoding".into(),
    }
}

fn invalid(msg: impl Into<String>) -> SettlementError {
    SettlementError::Invalid(msg.into())
}

/// Verifies a settlement offline: aggregator signature, format, X against the manifest's chunk
/// hashes, every worker signature and shard proof, and that Y is the proven shard outputs.
///
/// The shard commitments are taken from the manifest. Whoever holds W should also check them
/// with [`check_commitments`]; a node checks them before proving.
/// Offline, any network is accepted (the settlement names and signs its own);
/// [`verify_settlement_skipping`] checks it against a node's.
pub fn verify_settlement(bytes: &[u8]) -> Result<VerifiedSettlement, SettlementError> {
    verify_on(bytes, None, None, &std::collections::HashSet::new())
}

/// [`verify_settlement`] for a settlement that must have been made on `network` (a client or
/// `verify` that knows which network it is on): one made on another network is refused.
pub fn verify_settlement_on(
    bytes: &[u8],
    network: &NetworkId,
) -> Result<VerifiedSettlement, SettlementError> {
    verify_on(
        bytes,
        Some(network),
        None,
        &std::collections::HashSet::new(),
    )
}

/// What a node expects of a gossiped settlement, from its own record of the job and the
/// signed `JobSettled` message that carries it. Checked before any shard proof is, so a
/// settlement for another manifest, aggregator, time, result or credit list costs its
/// decoding and signature checks only.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The manifest this node recorded for the job.
    pub manifest: &'a Manifest,
    /// The aggregator that signed the message.
    pub aggregator: PeerKey,
    /// The message's settle time.
    pub settled_at_ms: u64,
    /// The message's result hash.
    pub result_hash: [u8; 32],
    /// The message's credits, one per shard in order.
    pub credits: &'a [ShardCredit],
}

/// [`verify_settlement`] for a node on `network`: a settlement made on another network, or
/// one that differs from `expected`, is refused before any proof is checked, and shard proof
/// frames whose blake3 hash is in `already_verified` (frames this node verified itself when
/// they were gossiped) are not re-verified; everything else, including their signatures and
/// shapes, still is.
pub fn verify_settlement_skipping(
    bytes: &[u8],
    network: &NetworkId,
    expected: &Expected<'_>,
    already_verified: &std::collections::HashSet<[u8; 32]>,
) -> Result<VerifiedSettlement, SettlementError> {
    verify_on(bytes, Some(network), Some(expected), already_verified)
}

/// The shards a settlement credits, each with its worker and its proof's time, read from its
/// signed proof frames: decoding and signature checks only, no proof is verified. For the
/// rules a node runs before the costly verification.
pub fn settled_shards(
    bytes: &[u8],
    network: &NetworkId,
) -> Result<Vec<(u32, PeerKey, u64)>, SettlementError> {
    let signed: SignedSettlement = decode(bytes)?;
    let settlement: Settlement = decode(&signed.body.0)?;
    settlement
        .shard_proofs
        .iter()
        .map(|frame| {
            let env = SignedEnvelope::<ShardProved>::from_frame(&frame.0, network)
                .map_err(|e| invalid(format!("a shard proof frame: {e}")))?;
            let msg = env.message();
            Ok((msg.shard, msg.worker, msg.proved_at_ms))
        })
        .collect()
}

/// Compares a decoded, signature-checked settlement with what the node expects.
fn check_expected(
    settlement: &Settlement,
    expected: &Expected<'_>,
    network: &NetworkId,
) -> Result<(), SettlementError> {
    if settlement.manifest != *expected.manifest {
        return Err(invalid("settlement is for another manifest than the job's"));
    }
    if settlement.aggregator != expected.aggregator {
        return Err(invalid(
            "settlement signed by another aggregator than the message",
        ));
    }
    if settlement.settled_at_ms != expected.settled_at_ms {
        return Err(invalid(
            "settlement and message give different settle times",
        ));
    }
    if starkscale_protocol::messages::result_hash(&settlement.result) != expected.result_hash {
        return Err(invalid("result hash does not match the settled result"));
    }
    if settlement.shard_proofs.len() != expected.credits.len() {
        return Err(invalid("credits do not match the settled proofs"));
    }
    for (frame, credit) in settlement.shard_proofs.iter().zip(expected.credits) {
        let env = SignedEnvelope::<ShardProved>::from_frame(&frame.0, network)
            .map_err(|e| invalid(format!("shard {}: {e}", credit.shard)))?;
        if env.message().shard != credit.shard || env.message().worker != credit.worker {
            return Err(invalid("credits do not match the settled proofs"));
        }
    }
    Ok(())
}

fn verify_on(
    bytes: &[u8],
    network: Option<&NetworkId>,
    expected: Option<&Expected<'_>>,
    already_verified: &std::collections::HashSet<[u8; 32]>,
) -> Result<VerifiedSettlement, SettlementError> {
    let signed: SignedSettlement = decode(bytes)?;
    let key = DalekKey::from_bytes(signed.aggregator.as_bytes())
        .map_err(|_| SettlementError::Signature)?;
    let settlement: Settlement = decode(&signed.body.0)?;
    let signature = ed25519_dalek::Signature::from_bytes(&signed.signature.0);
    key.verify_strict(
        &signing_bytes(&settlement.network, &signed.body.0),
        &signature,
    )
    .map_err(|_| SettlementError::Signature)?;
    if settlement.aggregator != signed.aggregator {
        return Err(invalid("body names another aggregator than the signer"));
    }
    if settlement.format != SETTLEMENT_FORMAT {
        return Err(SettlementError::Format(settlement.format));
    }
    if let Some(expected) = network.filter(|n| **n != settlement.network) {
        return Err(SettlementError::Network {
            expected: *expected,
            found: settlement.network,
        });
    }
    if let Some(expected) = expected {
        check_expected(&settlement, expected, &settlement.network)?;
    }
    let manifest = &settlement.manifest;
    let plan = manifest.validate(&JobLimits::default()).map_err(|e| {
        // Over this node's limits is this node's affair, not a forged settlement.
        if e.is_local_limit() {
            SettlementError::Local(format!("manifest: {e}"))
        } else {
            invalid(format!("manifest: {e}"))
        }
    })?;
    if manifest.config_id() != starkscale_prover::CONFIG_ID {
        return Err(SettlementError::Local(format!(
            "the model is proved under configuration {}; this build verifies configuration {} only",
            manifest.config_id(),
            starkscale_prover::CONFIG_ID
        )));
    }
    let operand = if settlement.x.cols() == 1 {
        Operand::Vector
    } else {
        Operand::Rhs
    };
    let x_bytes = starkscale_protocol::job::entries_to_bytes(&settlement.x, operand)
        .map_err(|e| invalid(format!("X: {e}")))?;
    let x_chunks = starkscale_protocol::chunk::chunk_refs(&x_bytes);
    if (settlement.x.rows(), settlement.x.cols())
        != (manifest.x.rows as usize, manifest.x.cols as usize)
        || x_chunks != manifest.x.chunks
    {
        return Err(invalid("X does not match the manifest's chunk hashes"));
    }
    let (m, _, n) = manifest.dims();
    if (settlement.result.rows(), settlement.result.cols()) != (m as usize, n as usize) {
        return Err(invalid("result has the wrong shape"));
    }
    if settlement.shard_proofs.len() != plan.shard_count() as usize {
        return Err(invalid(format!(
            "{} shard proofs for {} shards",
            settlement.shard_proofs.len(),
            plan.shard_count()
        )));
    }
    let x = to_prover(&settlement.x).map_err(|e| SettlementError::Local(format!("X: {e}")))?;
    let mut rows = Vec::with_capacity(settlement.result.len());
    let mut credits = Vec::new();
    for (index, frame) in settlement.shard_proofs.iter().enumerate() {
        let env = SignedEnvelope::<ShardProved>::from_frame(&frame.0, &settlement.network)
            .map_err(|e| invalid(format!("shard {index}: {e}")))?;
        let msg = env.message();
        let range = plan
            .shard(index as u32)
            .ok_or_else(|| invalid("shard outside the plan"))?;
        if msg.job != manifest.job || msg.shard != index as u32 {
            return Err(invalid(format!(
                "shard {index}: frame is for another job or shard"
            )));
        }
        let in_shard = |e: ProofCheckError| match e {
            ProofCheckError::Local(e) => SettlementError::Local(format!("shard {index}: {e}")),
            e => invalid(format!("shard {index}: {e}")),
        };
        let vk = shard_key(manifest, index as u32, range.len()).map_err(in_shard)?;
        check_commitment(&vk, msg).map_err(in_shard)?;
        if !already_verified.contains(blake3::hash(&frame.0).as_bytes()) {
            verify_shard(&vk, &x, msg).map_err(in_shard)?;
        }
        rows.extend_from_slice(msg.output.data());
        credits.push(ShardCredit {
            shard: index as u32,
            worker: msg.worker,
        });
    }
    if rows != settlement.result.data() {
        return Err(invalid(
            "result is not the concatenation of the proven shard outputs",
        ));
    }
    Ok(VerifiedSettlement {
        job: manifest.job,
        result: settlement.result.clone(),
        credits,
        aggregator: signed.aggregator,
        settlement,
    })
}

fn local(e: impl std::fmt::Display) -> ProofCheckError {
    ProofCheckError::Local(e.to_string())
}

/// The verifying key of shard `index` (`rows` rows) from the manifest. Failing to derive it
/// is this node's problem (a configuration it does not speak, a shape outside what it
/// verifies), not the sender's.
fn shard_key(
    manifest: &Manifest,
    index: u32,
    rows: u32,
) -> Result<starkscale_prover::VerifyingKey, ProofCheckError> {
    shard_verifying_key(manifest, index, rows, manifest.w().cols).map_err(local)
}

fn check_commitment(
    vk: &starkscale_prover::VerifyingKey,
    msg: &ShardProved,
) -> Result<(), ProofCheckError> {
    if msg.commitment == vk.commitment_bytes() {
        Ok(())
    } else {
        Err(ProofCheckError::Invalid(
            "proof names a commitment other than the job's shard".into(),
        ))
    }
}

/// Checks one shard proof of a job: the shard's key from the manifest, the commitment the
/// proof names, then the STARK against X and the claimed output. Runs on the blocking pool.
pub fn check_shard_proof(
    manifest: &Manifest,
    x: &IntMatrix,
    msg: &ShardProved,
) -> Result<(), ProofCheckError> {
    let plan = manifest.plan().map_err(local)?;
    let range = plan.shard(msg.shard).ok_or_else(|| {
        ProofCheckError::Invalid(format!("shard {} is not in the plan", msg.shard))
    })?;
    let vk = shard_key(manifest, msg.shard, range.len())?;
    check_commitment(&vk, msg)?;
    verify_shard(&vk, &to_prover(x).map_err(local)?, msg)
}

/// Verifies one shard's proof against its verifying key and X. Only a proof that is wrong
/// is [`ProofCheckError::Invalid`]; a conversion that fails here, or a job whose bounds
/// could wrap the field (the entry peer's doing, not the prover's), is
/// [`ProofCheckError::Local`].
pub fn verify_shard(
    vk: &starkscale_prover::VerifyingKey,
    x: &starkscale_prover::IntMatrix,
    msg: &ShardProved,
) -> Result<(), ProofCheckError> {
    use starkscale_prover::VerifyError as E;
    let y = to_prover(&msg.output).map_err(local)?;
    if starkscale_protocol::job::worst_case_accumulator(
        u64::from(vk.k),
        vk.weight_bound,
        x.max_abs(),
    )
    .is_none()
    {
        return Err(local("the job's exactness bound does not fit in 128 bits"));
    }
    let proof = starkscale_prover::ShardProof::from_bytes(&msg.proof.0)
        .map_err(|e| ProofCheckError::Invalid(e.to_string()))?;
    let binding = starkscale_prover::Binding {
        job_id: *msg.job.as_bytes(),
        shard_index: msg.shard,
        worker: *msg.worker.as_bytes(),
    };
    starkscale_prover::verify(vk, x, &y, &binding, &proof).map_err(|e| match e {
        E::Overflow(_) => local(e),
        e => ProofCheckError::Invalid(e.to_string()),
    })
}
