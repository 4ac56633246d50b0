//! Conversions between the protocol's wire types and the prover's types.

use starkscale_protocol::manifest::Manifest;
use starkscale_protocol::matrix::IntMatrix;

/// A protocol matrix as a prover matrix.
pub fn to_prover(m: &IntMatrix) -> anyhow::Result<starkscale_prover::IntMatrix> {
    Ok(starkscale_prover::IntMatrix::new(
        m.rows(),
        m.cols(),
        m.data().to_vec(),
    )?)
}

/// A prover matrix as a protocol matrix.
pub fn to_protocol(m: &starkscale_prover::IntMatrix) -> anyhow::Result<IntMatrix> {
    Ok(IntMatrix::new(m.rows(), m.cols(), m.data().to_vec())?)
}

/// The verifying key of shard `index` (`rows × k`) from the job's model (its owner's keys).
pub fn shard_verifying_key(
    manifest: &Manifest,
    index: u32,
    rows: u32,
    k: u32,
) -> anyhow::Result<starkscale_prover::VerifyingKey> {
    let key = manifest
        .shard_keys()
        .get(index as usize)
        .ok_or_else(|| anyhow::anyhow!("manifest has no key for shard {index}"))?;
    if manifest.config_id() != starkscale_prover::CONFIG_ID {
        anyhow::bail!(
            "job uses proving configuration {}, this node speaks {}",
            manifest.config_id(),
            starkscale_prover::CONFIG_ID
        );
    }
    Ok(starkscale_prover::VerifyingKey::from_parts(
        rows,
        k,
        key.weight_bound,
        key.commitment,
    )?)
}
