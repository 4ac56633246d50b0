//! Frames the cheats make: proofs that must be refused (each proves for real, so CPU-bound) and bare frame headers.

use ed25519_dalek::SigningKey;
use starkscale_node::node::now_ms;
use starkscale_protocol::codec::MessageKind;
use starkscale_protocol::ids::{NetworkId, PeerKey};
use starkscale_protocol::manifest::Manifest;
use starkscale_protocol::matrix::IntMatrix;
use starkscale_protocol::messages::ShardProved;
use starkscale_protocol::{JobSpec, SignedEnvelope};

use super::Cheat;

/// A frame header of `kind` (version and kind tag) with no body.
pub(super) fn header(kind: MessageKind) -> Vec<u8> {
    let mut out = starkscale_protocol::codec::PROTOCOL_VERSION
        .to_le_bytes()
        .to_vec();
    out.push(kind.tag());
    out
}

/// A proof-forging cheat against one shard.
pub(super) struct ProofAttack {
    /// The kind of cheat.
    pub cheat: Cheat,
    /// The shard it publishes a proof for.
    pub shard: u32,
    /// Another shard (a replayer proves this one honestly and relabels it).
    pub other: u32,
    /// An honest proof of an earlier job, for a replayer.
    pub replay_from: Option<ShardProved>,
    /// Seed of the bystander whose valid proof a thief copies.
    pub bystander: [u8; 32],
}

/// Makes the bad ShardProved frame of a proof-forging cheat. Returns it and, for a replayer,
/// the honest proof it made (kept to replay in a later job). CPU-bound: proves.
pub(super) fn bad_proof(
    attack: &ProofAttack,
    key: &SigningKey,
    network: &NetworkId,
    manifest: &Manifest,
    spec: &JobSpec,
) -> anyhow::Result<(Vec<u8>, Option<ShardProved>)> {
    let (shard, other, me) = (attack.shard, attack.other, PeerKey::from(key));
    let plan = manifest.plan()?;
    let rows_of = |s: u32| -> anyhow::Result<IntMatrix> {
        let range = plan
            .shard(s)
            .ok_or_else(|| anyhow::anyhow!("no shard {s}"))?;
        spec.w()
            .row_block(range.rows_usize())
            .ok_or_else(|| anyhow::anyhow!("rows of shard {s} out of range"))
    };
    let sign = |msg: ShardProved| -> anyhow::Result<Vec<u8>> {
        Ok(SignedEnvelope::sign(key, network, msg)?.to_frame()?)
    };
    let decode = |frame: &[u8]| -> anyhow::Result<ShardProved> {
        Ok(SignedEnvelope::<ShardProved>::from_frame(frame, network)?.into_message())
    };
    let prove = |signer: &SigningKey, s: u32, x: &IntMatrix| {
        starkscale_node::node::prove_rows(signer, network, manifest, s, &rows_of(s)?, x)
    };
    match attack.cheat {
        Cheat::WrongOutput => {
            // A valid proof, but for X' ≠ X: its output is W·X', not W·X.
            let mut x = spec.x().data().to_vec();
            x[0] += 1;
            let x2 = IntMatrix::new(spec.x().rows(), spec.x().cols(), x)?;
            Ok((prove(key, shard, &x2)?, None))
        }
        Cheat::FlippedProof => {
            let mut msg = decode(&prove(key, shard, spec.x())?)?;
            let mid = msg.proof.0.len() / 2;
            msg.proof.0[mid] ^= 0x01;
            Ok((sign(msg)?, None))
        }
        Cheat::StolenProof => {
            // A bystander's valid proof of the shard, re-signed as its own.
            let bystander = SigningKey::from_bytes(&attack.bystander);
            let mut msg = decode(&prove(&bystander, shard, spec.x())?)?;
            msg.worker = me;
            Ok((sign(msg)?, None))
        }
        Cheat::Replay => {
            // A proof it made honestly, for this job's shard `other` or an earlier job,
            // relabelled as the proof of `shard`.
            let honest = match &attack.replay_from {
                Some(old) if old.job != manifest.job => old.clone(),
                _ => decode(&prove(key, other, spec.x())?)?,
            };
            let key_of = manifest
                .shard_keys()
                .get(shard as usize)
                .map(|k| k.commitment)
                .unwrap_or_default();
            let relabelled = ShardProved {
                job: manifest.job,
                shard,
                worker: me,
                proved_at_ms: now_ms(),
                output: rows_of(shard)?.checked_mul(spec.x())?,
                commitment: key_of,
                ..honest.clone()
            };
            let keep = (honest.job == manifest.job).then_some(honest);
            Ok((sign(relabelled)?, keep))
        }
        other => anyhow::bail!("{other:?} does not forge proofs"),
    }
}
