//! The composed libp2p behaviour: gossipsub, identify, kademlia and request-response.

use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::{gossipsub, identify, identity, kad, request_response, StreamProtocol};

use super::codec::{FrameCodec, PROTOCOL};

/// Gossip and request-response limits and mesh sizes, set for the network size.
#[derive(Clone, Debug)]
pub struct GossipParams {
    /// Target mesh degree.
    pub mesh_n: usize,
    /// Lower mesh bound.
    pub mesh_n_low: usize,
    /// Upper mesh bound.
    pub mesh_n_high: usize,
    /// Largest gossip message.
    pub max_transmit_size: usize,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Request-response timeout.
    pub request_timeout: Duration,
}

impl Default for GossipParams {
    fn default() -> Self {
        // Small testnets: the gossipsub defaults (6/5/12) never form a full mesh below 6 peers.
        Self {
            mesh_n: 4,
            mesh_n_low: 2,
            mesh_n_high: 8,
            // Shard proofs are a few hundred KiB; settlements travel over request-response.
            max_transmit_size: starkscale_protocol::codec::limits::SHARD_PROVED + 4096,
            heartbeat: Duration::from_millis(300),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// Gossipsub's own peer scoring, next to the node's reject counting: every topic penalises
/// invalid messages (the node's Reject verdicts) quadratically and rewards first deliveries a
/// little; the proof topic weighs most. Mesh-delivery penalties are off (small testnets carry
/// too little traffic per topic to judge delivery rates), and so is the IP colocation penalty
/// (testnets run many peers on one host).
fn peer_score_params() -> gossipsub::PeerScoreParams {
    use starkscale_protocol::messages::topics;
    let mut params = gossipsub::PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    for topic in topics::ALL {
        let weight = if topic == topics::SHARD_PROVED {
            1.0
        } else {
            0.5
        };
        let topic_params = gossipsub::TopicScoreParams {
            topic_weight: weight,
            first_message_deliveries_weight: 0.5,
            first_message_deliveries_decay: 0.9,
            first_message_deliveries_cap: 20.0,
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            invalid_message_deliveries_weight: -20.0,
            invalid_message_deliveries_decay: 0.99,
            ..Default::default()
        };
        params
            .topics
            .insert(gossipsub::IdentTopic::new(topic).hash(), topic_params);
    }
    params
}

/// Score thresholds: below -100 a peer gets no gossip, below -500 nothing it publishes is
/// taken, below -1000 it is ignored altogether.
fn peer_score_thresholds() -> gossipsub::PeerScoreThresholds {
    gossipsub::PeerScoreThresholds {
        gossip_threshold: -100.0,
        publish_threshold: -500.0,
        graylist_threshold: -1000.0,
        ..Default::default()
    }
}

/// The node's network behaviour.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Manifests, claims, proofs, settlements.
    pub gossipsub: gossipsub::Behaviour,
    /// Exchange of listen addresses and protocols.
    pub identify: identify::Behaviour,
    /// Peer discovery.
    pub kademlia: kad::Behaviour<kad::store::MemoryStore>,
    /// Chunks, submissions, status, catch-up.
    pub rpc: request_response::Behaviour<FrameCodec>,
}

impl Behaviour {
    /// Builds the behaviour for `key` with `params`.
    pub fn new(key: &identity::Keypair, params: &GossipParams) -> anyhow::Result<Self> {
        let gossip_config = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(params.heartbeat)
            .heartbeat_initial_delay(Duration::from_millis(100))
            .mesh_n(params.mesh_n)
            .mesh_n_low(params.mesh_n_low)
            .mesh_n_high(params.mesh_n_high)
            .mesh_outbound_min(1)
            .max_transmit_size(params.max_transmit_size)
            .validation_mode(gossipsub::ValidationMode::Strict)
            // Every message waits for the application's Accept / Ignore / Reject.
            .validate_messages()
            // Proofs are large: send to the mesh, not a full copy to every peer.
            .flood_publish(false)
            .message_id_fn(|m: &gossipsub::Message| {
                gossipsub::MessageId::from(blake3::hash(&m.data).as_bytes().to_vec())
            })
            // Shorter than the node's re-announcement period, so re-sent frames (identical
            // bytes) are delivered again to peers that missed them.
            .duplicate_cache_time(Duration::from_secs(15))
            .build()
            .map_err(|e| anyhow::anyhow!("gossipsub configuration: {e}"))?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )
        .map_err(|e| anyhow::anyhow!("gossipsub: {e}"))?;
        gossipsub
            .with_peer_score(peer_score_params(), peer_score_thresholds())
            .map_err(|e| anyhow::anyhow!("gossipsub peer scoring: {e}"))?;
        let identify =
            identify::Behaviour::new(identify::Config::new("/starkscale/2".into(), key.public()));
        let peer_id = key.public().to_peer_id();
        let mut kad_config = kad::Config::new(StreamProtocol::new("/starkscale/2/kad"));
        kad_config.set_query_timeout(Duration::from_secs(30));
        let mut kademlia =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        // Loopback and private testnets: act as a DHT server without waiting for a public
        // address confirmation.
        kademlia.set_mode(Some(kad::Mode::Server));
        let rpc = request_response::Behaviour::with_codec(
            FrameCodec,
            [(PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(params.request_timeout),
        );
        Ok(Self {
            gossipsub,
            identify,
            kademlia,
            rpc,
        })
    }
}
