//! This node's view of the aggregator candidates (heartbeats heard) and the candidates that
//! count for a job, and the context gossip validation reads.

use starkscale_protocol::election::{job_candidates, Candidate};
use starkscale_protocol::ids::PeerKey;
use starkscale_protocol::lease::Freshness;
use starkscale_protocol::status::JobRecord;
use starkscale_protocol::validate::GossipContext;

use super::{now_ms, Node, AGGREGATOR_TTL_MS};

impl Node {
    pub(super) fn ctx<'a>(
        &'a self,
        freshness: Freshness,
        aggregators: &'a [Candidate],
    ) -> GossipContext<'a> {
        GossipContext {
            network: self.network,
            now_ms: now_ms(),
            freshness,
            limits: self.limits,
            max_skew_ms: self.rules.max_skew_ms,
            settle: self.settle,
            jobs: &self.jobs,
            aggregators,
            started_ms: self.started_ms,
        }
    }

    /// Live aggregator candidates with since when they have been candidates.
    pub(super) fn aggregator_candidates(&self) -> Vec<Candidate> {
        let now = now_ms();
        self.aggregators
            .iter()
            .filter(|(_, seen)| now.saturating_sub(**seen) < AGGREGATOR_TTL_MS)
            .map(|(key, _)| Candidate {
                key: *key,
                since_ms: self.aggregator_since.get(key).copied().unwrap_or(now),
            })
            .collect()
    }

    /// Records a heartbeat: a key that was not a live candidate starts a new candidacy.
    pub(super) fn heard_aggregator(&mut self, key: PeerKey) {
        let now = now_ms();
        let live = self
            .aggregators
            .get(&key)
            .is_some_and(|seen| now.saturating_sub(*seen) < AGGREGATOR_TTL_MS);
        if !live {
            self.aggregator_since.insert(key, now);
        }
        self.aggregators.insert(key, now);
    }

    /// The candidates that count for `record`'s job: those its manifest names, or, when it
    /// names none, those known here before it was created.
    pub(super) fn job_candidates(&self, record: &JobRecord) -> Vec<PeerKey> {
        job_candidates(
            &record.manifest.aggregators,
            record.manifest.created_ms,
            &self.aggregator_candidates(),
            self.started_ms,
        )
    }

    pub(super) fn aggregator_keys(&self) -> Vec<PeerKey> {
        let now = now_ms();
        self.aggregators
            .iter()
            .filter(|(_, seen)| now.saturating_sub(**seen) < AGGREGATOR_TTL_MS)
            .map(|(k, _)| *k)
            .collect()
    }
}
