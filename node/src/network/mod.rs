//! The transport layer: one event-loop task owns the libp2p [`Swarm`]; everything else talks
//! to it through a bounded [`Command`] channel via [`Client`], and hears from it through a
//! bounded channel of [`NetEvent`]s.
//!
//! This layer moves bytes. It knows topics, peers and frames, not what the bytes mean: the
//! application decodes, validates and answers (see [`crate::node`]).

mod behaviour;
mod codec;

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId, PublishError};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, identity, kad, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

pub use behaviour::GossipParams;
pub use codec::MAX_FRAME;

use behaviour::{Behaviour, BehaviourEvent};

/// Capacity of the command and event channels.
const CHANNEL_CAPACITY: usize = 1024;
/// Peers to dial on discovery before relying on kademlia lookups alone.
const MAX_DIALED_PEERS: usize = 50;
/// How often the kademlia routing table is refreshed.
const KADEMLIA_REFRESH: Duration = Duration::from_secs(30);
/// How long a publish that found no subscribed peers keeps being retried.
const PUBLISH_RETRY_WINDOW: Duration = Duration::from_secs(60);

/// What the application decided about a gossip message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: deliver and forward.
    Accept,
    /// Not useful (duplicate, stale, unknown job): drop without penalty.
    Ignore,
    /// Invalid: drop and penalise the peer that sent it.
    Reject,
}

/// Something the network heard.
#[derive(Debug)]
pub enum NetEvent {
    /// A gossip message awaiting a [`Verdict`].
    Gossip {
        /// Topic name.
        topic: String,
        /// Id to report the verdict under.
        message_id: MessageId,
        /// The peer that forwarded it to us.
        source: PeerId,
        /// Payload.
        data: Vec<u8>,
    },
    /// A request-response request awaiting an answer on `channel`.
    Request {
        /// Requesting peer.
        peer: PeerId,
        /// Payload.
        data: Vec<u8>,
        /// Where the answer goes.
        channel: ResponseChannel<Vec<u8>>,
    },
    /// A connection to a new peer was established.
    PeerConnected(PeerId),
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
        /// Why the connection closed, if it closed on an error.
        cause: Option<String>,
    },
    /// A dial failed.
    DialFailed {
        /// The peer dialed, when known.
        peer: Option<PeerId>,
        /// Why.
        error: String,
    },
}

/// Facts about the local peer.
#[derive(Clone, Debug)]
pub struct NetInfo {
    /// Our peer id.
    pub peer_id: PeerId,
    /// Addresses we listen on.
    pub listen_addrs: Vec<Multiaddr>,
    /// Peers we are connected to.
    pub connected: Vec<PeerId>,
    /// Peers we refuse to talk to (banned or blocked).
    pub banned: Vec<PeerId>,
}

enum Command {
    Publish {
        topic: String,
        data: Vec<u8>,
    },
    Validate {
        message_id: MessageId,
        source: PeerId,
        verdict: Verdict,
    },
    Request {
        peer: PeerId,
        data: Vec<u8>,
        reply: oneshot::Sender<anyhow::Result<Vec<u8>>>,
    },
    Respond {
        channel: ResponseChannel<Vec<u8>>,
        data: Vec<u8>,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<anyhow::Result<()>>,
    },
    Ban {
        peer: PeerId,
    },
    Unblock {
        peer: PeerId,
    },
    Info {
        reply: oneshot::Sender<NetInfo>,
    },
    PeerScore {
        peer: PeerId,
        reply: oneshot::Sender<Option<f64>>,
    },
}

/// A cheap, cloneable handle to the event loop.
#[derive(Clone, Debug)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
}

impl Client {
    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn send(&self, cmd: Command) -> anyhow::Result<()> {
        self.tx
            .send(cmd)
            .await
            .map_err(|_| anyhow::anyhow!("network event loop has stopped"))
    }

    /// Publishes `data` on `topic`; retried in the background until peers have subscribed.
    pub async fn publish(&self, topic: &str, data: Vec<u8>) -> anyhow::Result<()> {
        self.send(Command::Publish {
            topic: topic.to_string(),
            data,
        })
        .await
    }

    /// Reports the verdict for a gossip message.
    pub async fn validate(
        &self,
        message_id: MessageId,
        source: PeerId,
        verdict: Verdict,
    ) -> anyhow::Result<()> {
        self.send(Command::Validate {
            message_id,
            source,
            verdict,
        })
        .await
    }

    /// Sends a request and waits for the response.
    pub async fn request(&self, peer: PeerId, data: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Request { peer, data, reply }).await?;
        rx.await
            .map_err(|_| anyhow::anyhow!("network event loop dropped the request"))?
    }

    /// Answers a request.
    pub async fn respond(
        &self,
        channel: ResponseChannel<Vec<u8>>,
        data: Vec<u8>,
    ) -> anyhow::Result<()> {
        self.send(Command::Respond { channel, data }).await
    }

    /// Dials an address and waits until the dial was started.
    pub async fn dial(&self, addr: Multiaddr) -> anyhow::Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Dial { addr, reply }).await?;
        rx.await
            .map_err(|_| anyhow::anyhow!("network event loop dropped the dial"))?
    }

    /// Disconnects and blacklists a peer that broke the protocol (also used to cut links when
    /// simulating a network split).
    pub async fn ban(&self, peer: PeerId) -> anyhow::Result<()> {
        self.send(Command::Ban { peer }).await
    }

    /// Lifts a ban and dials the peer again (healing a simulated split).
    pub async fn unblock(&self, peer: PeerId) -> anyhow::Result<()> {
        self.send(Command::Unblock { peer }).await
    }

    /// Our listen addresses and connected peers.
    pub async fn info(&self) -> anyhow::Result<NetInfo> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Info { reply }).await?;
        rx.await
            .map_err(|_| anyhow::anyhow!("network event loop dropped the query"))
    }
}

impl Client {
    /// Gossipsub's score of `peer`, if it has one.
    pub async fn peer_score(&self, peer: PeerId) -> anyhow::Result<Option<f64>> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::PeerScore { peer, reply }).await?;
        rx.await
            .map_err(|_| anyhow::anyhow!("network event loop dropped the query"))
    }
}

/// Network settings.
#[derive(Clone)]
pub struct NetConfig {
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start.
    pub bootstrap: Vec<Multiaddr>,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Gossip parameters.
    pub gossip: GossipParams,
    /// Where libp2p's own metrics are recorded, if anywhere.
    pub metrics: Option<std::sync::Arc<libp2p::metrics::Metrics>>,
}

/// Builds the swarm, starts listening and dialing, and returns the handle, the event stream
/// and the event loop (to be spawned).
pub fn new(
    key: identity::Keypair,
    config: NetConfig,
) -> anyhow::Result<(Client, mpsc::Receiver<NetEvent>, EventLoop)> {
    let gossip = config.gossip.clone();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|key| Behaviour::new(key, &gossip).map_err(Into::into))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build();
    let mut topics = Vec::new();
    for name in &config.topics {
        let topic = IdentTopic::new(name.clone());
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .map_err(|e| anyhow::anyhow!("subscribing to {name}: {e}"))?;
        topics.push(name.clone());
    }
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    }
    for addr in &config.bootstrap {
        if let Err(e) = swarm.dial(addr.clone()) {
            warn!(%addr, error = %e, "bootstrap dial failed");
        }
    }
    let peer_id = *swarm.local_peer_id();
    let (cmd_tx, cmd_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (event_tx, event_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let event_loop = EventLoop {
        swarm,
        commands: cmd_rx,
        events: event_tx,
        pending_requests: Default::default(),
        pending_publishes: VecDeque::new(),
        listen_addrs: Vec::new(),
        connected: HashSet::new(),
        banned: HashSet::new(),
        metrics: config.metrics.clone(),
    };
    Ok((
        Client {
            tx: cmd_tx,
            peer_id,
        },
        event_rx,
        event_loop,
    ))
}

/// Owns the swarm. Run it with [`EventLoop::run`] in its own task.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    pending_requests:
        std::collections::HashMap<OutboundRequestId, oneshot::Sender<anyhow::Result<Vec<u8>>>>,
    pending_publishes: VecDeque<(String, Vec<u8>, Instant)>,
    listen_addrs: Vec<Multiaddr>,
    connected: HashSet<PeerId>,
    banned: HashSet<PeerId>,
    metrics: Option<std::sync::Arc<libp2p::metrics::Metrics>>,
}

impl EventLoop {
    /// Runs until every [`Client`] is dropped.
    pub async fn run(mut self) {
        let mut retry = tokio::time::interval(Duration::from_millis(200));
        let mut refresh = tokio::time::interval(KADEMLIA_REFRESH);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event).await,
                command = self.commands.recv() => match command {
                    Some(c) => self.on_command(c),
                    None => break,
                },
                _ = retry.tick() => self.retry_publishes(),
                _ = refresh.tick() => {
                    // Walks the DHT towards our own id: discovers peers beyond the bootstrap set.
                    let _ = self.swarm.behaviour_mut().kademlia.bootstrap();
                }
            }
        }
        debug!("network event loop stopped");
    }

    fn try_publish(&mut self, topic: &str, data: Vec<u8>, since: Instant) {
        let result = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(IdentTopic::new(topic), data.clone());
        match result {
            Ok(_) | Err(PublishError::Duplicate) => {}
            Err(PublishError::NoPeersSubscribedToTopic) | Err(PublishError::AllQueuesFull(_)) => {
                if since.elapsed() < PUBLISH_RETRY_WINDOW {
                    self.pending_publishes
                        .push_back((topic.to_string(), data, since));
                } else {
                    warn!(
                        topic,
                        "no peer took the message within the retry window; dropped"
                    );
                }
            }
            Err(e) => warn!(topic, error = %e, "publish failed"),
        }
    }

    fn retry_publishes(&mut self) {
        let pending: Vec<_> = self.pending_publishes.drain(..).collect();
        for (topic, data, since) in pending {
            self.try_publish(&topic, data, since);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data } => self.try_publish(&topic, data, Instant::now()),
            Command::Validate {
                message_id,
                source,
                verdict,
            } => {
                let acceptance = match verdict {
                    Verdict::Accept => MessageAcceptance::Accept,
                    Verdict::Ignore => MessageAcceptance::Ignore,
                    Verdict::Reject => MessageAcceptance::Reject,
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &source, acceptance);
            }
            Command::Request { peer, data, reply } => {
                let id = self.swarm.behaviour_mut().rpc.send_request(&peer, data);
                self.pending_requests.insert(id, reply);
            }
            Command::Respond { channel, data } => {
                if self
                    .swarm
                    .behaviour_mut()
                    .rpc
                    .send_response(channel, data)
                    .is_err()
                {
                    debug!("response channel closed before the answer was sent");
                }
            }
            Command::Dial { addr, reply } => {
                let result = self
                    .swarm
                    .dial(addr.clone())
                    .map_err(|e| anyhow::anyhow!("cannot dial {addr}: {e}"));
                let _ = reply.send(result);
            }
            Command::Ban { peer } => {
                if self.banned.insert(peer) {
                    warn!(%peer, "banning peer after repeated protocol violations");
                    self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            }
            Command::Unblock { peer } => {
                if self.banned.remove(&peer) {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .remove_blacklisted_peer(&peer);
                    if let Err(e) = self.swarm.dial(peer) {
                        debug!(%peer, error = %e, "could not redial an unblocked peer");
                    }
                }
            }
            Command::PeerScore { peer, reply } => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::Info { reply } => {
                let _ = reply.send(NetInfo {
                    peer_id: *self.swarm.local_peer_id(),
                    listen_addrs: self.listen_addrs.clone(),
                    connected: self.connected.iter().copied().collect(),
                    banned: self.banned.iter().copied().collect(),
                });
            }
        }
    }

    async fn emit(&mut self, event: NetEvent) {
        if self.events.send(event).await.is_err() {
            debug!("application stopped listening to network events");
        }
    }

    async fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let Some(m) = &self.metrics {
            use libp2p::metrics::Recorder;
            m.record(&event);
            match &event {
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => m.record(e),
                SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => m.record(e),
                SwarmEvent::Behaviour(BehaviourEvent::Kademlia(e)) => m.record(e),
                _ => {}
            }
        }
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.listen_addrs.push(address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if self.banned.contains(&peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if endpoint.is_dialer() {
                    self.swarm
                        .behaviour_mut()
                        .kademlia
                        .add_address(&peer_id, endpoint.get_remote_address().clone());
                }
                if num_established.get() == 1 {
                    if self.connected.is_empty() {
                        let _ = self.swarm.behaviour_mut().kademlia.bootstrap();
                    }
                    self.connected.insert(peer_id);
                    self.emit(NetEvent::PeerConnected(peer_id)).await;
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                self.connected.remove(&peer_id);
                let cause = cause.map(|c| c.to_string());
                self.emit(NetEvent::PeerDisconnected {
                    peer: peer_id,
                    cause,
                })
                .await;
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(peer = ?peer_id, %error, "dial failed");
                self.emit(NetEvent::DialFailed {
                    peer: peer_id,
                    error: dial_cause(&error),
                })
                .await;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                self.emit(NetEvent::Gossip {
                    topic: message.topic.to_string(),
                    message_id,
                    source: propagation_source,
                    data: message.data,
                })
                .await;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                ..
            })) => {
                self.retry_publishes();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                for addr in info.listen_addrs {
                    self.swarm
                        .behaviour_mut()
                        .kademlia
                        .add_address(&peer_id, addr);
                }
            }
            // A small network is best fully connected: chunk fetches go straight to the
            // entry peer and gossip meshes form from direct links.
            SwarmEvent::Behaviour(BehaviourEvent::Kademlia(kad::Event::RoutingUpdated {
                peer,
                ..
            })) if peer != *self.swarm.local_peer_id()
                && !self.connected.contains(&peer)
                && !self.banned.contains(&peer)
                && self.connected.len() < MAX_DIALED_PEERS =>
            {
                debug!(%peer, "dialing a peer discovered through kademlia");
                let _ = self.swarm.dial(peer);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(event)) => self.on_rpc(event).await,
            _ => {}
        }
    }

    async fn on_rpc(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.emit(NetEvent::Request {
                        peer,
                        data: request,
                        channel,
                    })
                    .await;
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending_requests.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                if let Some(reply) = self.pending_requests.remove(&request_id) {
                    let _ = reply.send(Err(anyhow::anyhow!("request to {peer} failed: {error}")));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}

/// The innermost cause of a failed dial, in words ("Connection refused (os error 111)"),
/// instead of libp2p's nested description.
fn dial_cause(error: &libp2p::swarm::DialError) -> String {
    fn innermost(e: &dyn std::error::Error) -> String {
        let mut e = e;
        while let Some(next) = e.source() {
            e = next;
        }
        e.to_string()
    }
    match error {
        libp2p::swarm::DialError::Transport(attempts) if !attempts.is_empty() => {
            let mut causes: Vec<String> = attempts.iter().map(|(_, e)| innermost(e)).collect();
            causes.dedup();
            causes.join("; ")
        }
        other => innermost(other),
    }
}
