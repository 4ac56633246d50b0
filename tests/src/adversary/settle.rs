//! Settlements the aggregator-role cheats make: fully signed, every proof in them valid, and
//! wrong in one chosen way.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use starkscale_node::node::now_ms;
use starkscale_node::settlement::{Settlement, SETTLEMENT_FORMAT};
use starkscale_protocol::codec::Bytes;
use starkscale_protocol::ids::{NetworkId, PeerKey};
use starkscale_protocol::manifest::Manifest;
use starkscale_protocol::matrix::IntMatrix;
use starkscale_protocol::messages::{result_hash, JobSettled, ShardCredit, ShardProved};
use starkscale_protocol::SignedEnvelope;

/// A signed `JobSettled` frame over `proofs` (ShardProved frames by shard), crediting each
/// shard to the worker of its frame. With `bump_result`, Y[0] is off by one (a wrong result
/// with valid proofs).
pub(super) fn settlement_frame(
    key: &SigningKey,
    network: &NetworkId,
    manifest: &Manifest,
    x: &IntMatrix,
    proofs: &BTreeMap<u32, Vec<u8>>,
    bump_result: bool,
) -> Option<Vec<u8>> {
    let me = PeerKey::from(key);
    let mut rows = Vec::new();
    let mut credits = Vec::new();
    for (shard, frame) in proofs {
        let env = SignedEnvelope::<ShardProved>::from_frame(frame, network).ok()?;
        rows.extend_from_slice(env.message().output.data());
        credits.push(ShardCredit {
            shard: *shard,
            worker: env.message().worker,
        });
    }
    if bump_result {
        *rows.first_mut()? += 1;
    }
    let (m, _, n) = manifest.dims();
    let result = IntMatrix::new(m as usize, n as usize, rows).ok()?;
    let settled_at_ms = now_ms();
    let settlement = Settlement {
        format: SETTLEMENT_FORMAT.into(),
        network: *network,
        manifest: manifest.clone(),
        x: x.clone(),
        result: result.clone(),
        shard_proofs: proofs.values().cloned().map(Bytes).collect(),
        aggregator: me,
        settled_at_ms,
    }
    .sign(key)
    .ok()?;
    let msg = JobSettled {
        job: manifest.job,
        aggregator: me,
        config_id: starkscale_prover::CONFIG_ID,
        settled_at_ms,
        result_hash: result_hash(&result),
        result: Some(result),
        credits,
        settlement: Bytes(settlement),
    };
    SignedEnvelope::sign(key, network, msg)
        .ok()?
        .to_frame()
        .ok()
}

/// A credit thief's own proofs of every shard of the job (it holds no lease on any), signed
/// with its key. CPU-bound: proves every shard.
pub(super) fn prove_all(
    key: &SigningKey,
    network: &NetworkId,
    manifest: &Manifest,
    spec: &starkscale_protocol::JobSpec,
) -> anyhow::Result<BTreeMap<u32, Vec<u8>>> {
    let plan = manifest.plan()?;
    let mut out = BTreeMap::new();
    for range in plan.shards() {
        let rows = spec
            .w()
            .row_block(range.rows_usize())
            .ok_or_else(|| anyhow::anyhow!("rows of shard {} out of range", range.index))?;
        let frame = starkscale_node::node::prove_rows(
            key,
            network,
            manifest,
            range.index,
            &rows,
            spec.x(),
        )?;
        out.insert(range.index, frame);
    }
    Ok(out)
}
