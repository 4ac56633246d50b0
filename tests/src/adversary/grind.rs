//! The election grinder: once a job is announced, it searches for a key that ranks first for
//! that job among the candidates it has heard, makes it a candidate with one heartbeat, and
//! fails the job in that key's name.

use std::collections::BTreeSet;

use ed25519_dalek::SigningKey;
use starkscale_node::node::now_ms;
use starkscale_protocol::election::rank_aggregators;
use starkscale_protocol::ids::{JobId, NetworkId, PeerKey};
use starkscale_protocol::messages::{
    AggregatorHeartbeat, Capabilities, FailureReason, JobFailed, Load,
};
use starkscale_protocol::SignedEnvelope;

/// A key (derived from `seed`) that ranks first for `job` among `candidates` plus itself,
/// and how many keys it tried. About `candidates.len() + 1` tries are expected.
pub(super) fn grind(
    job: &JobId,
    candidates: &BTreeSet<PeerKey>,
    seed: [u8; 32],
) -> (SigningKey, u64) {
    let mut known: Vec<PeerKey> = candidates.iter().copied().collect();
    for tries in 1u64.. {
        let mut hasher = blake3::Hasher::new_derive_key("starkscale/tests grinder key");
        hasher.update(&seed);
        hasher.update(&tries.to_le_bytes());
        let key = SigningKey::from_bytes(hasher.finalize().as_bytes());
        let me = PeerKey::from(&key);
        known.push(me);
        if rank_aggregators(job, &known).first() == Some(&me) {
            return (key, tries);
        }
        known.pop();
    }
    unreachable!("the search above only ends by returning")
}

/// The heartbeat of an aggregator-role cheater: it aggregates, proves nothing.
pub(super) fn heartbeat(me: PeerKey) -> AggregatorHeartbeat {
    AggregatorHeartbeat {
        aggregator: me,
        sent_at_ms: now_ms(),
        capabilities: Capabilities {
            aggregate: true,
            prove: false,
            max_concurrent_leases: 0,
            config_ids: vec![starkscale_prover::CONFIG_ID],
        },
        load: Load {
            active_leases: 0,
            pending_aggregations: 0,
        },
    }
}

/// The ground key's heartbeat (making it a candidate) and its failure report for `job`.
pub(super) fn frames(
    key: &SigningKey,
    network: &NetworkId,
    job: &JobId,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let me = PeerKey::from(key);
    let heartbeat = heartbeat(me);
    let failure = JobFailed {
        job: *job,
        reporter: me,
        failed_at_ms: now_ms(),
        reason: FailureReason::DataUnavailable {
            detail: "X could not be fetched from any peer".into(),
        },
    };
    Some((sign(key, network, heartbeat)?, sign(key, network, failure)?))
}

fn sign<T: starkscale_protocol::envelope::GossipPayload>(
    key: &SigningKey,
    network: &NetworkId,
    msg: T,
) -> Option<Vec<u8>> {
    SignedEnvelope::sign(key, network, msg)
        .ok()?
        .to_frame()
        .ok()
}
