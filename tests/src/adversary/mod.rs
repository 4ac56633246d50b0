//! Misbehaving peers for fault tests: a real libp2p peer (same swarm code as a node) with its
//! own ed25519 identity that speaks the wire protocol but cheats in one chosen way.
//!
//! An adversary is told the data of the jobs the harness submits (a real cheater could fetch
//! it like any worker); it needs it to make proofs of the wrong thing. Everything it sends is
//! signed with its own key unless the cheat is about signatures.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use libp2p::{Multiaddr, PeerId};
use rand::{Rng, RngCore, SeedableRng};
use starkscale_node::identity::Identity;
use starkscale_node::network::{self, Client, GossipParams, NetConfig, NetEvent, Verdict};
use starkscale_node::node::now_ms;
use starkscale_protocol::codec::{Bytes, MessageKind};
use starkscale_protocol::envelope::forge;
use starkscale_protocol::ids::{JobId, NetworkId, PeerKey, SignatureBytes};
use starkscale_protocol::manifest::Manifest;
use starkscale_protocol::matrix::IntMatrix;
use starkscale_protocol::messages::{
    topics, AggregatorHeartbeat, ChunkResponse, FetchChunk, JobAnnounced, Request, Response,
    ShardClaimed, ShardProved,
};
use starkscale_protocol::{JobSpec, SignedEnvelope};
use tokio::sync::{mpsc, oneshot};

mod catchup;
mod grind;
mod proofs;
mod settle;
mod submit;

/// The ways an adversary cheats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cheat {
    /// Claims a shard and gossips a wrong output with a proof made for other data (X changed).
    WrongOutput,
    /// Claims a shard and gossips an honest proof with bytes flipped.
    FlippedProof,
    /// Re-signs other workers' valid proofs as its own (stolen proofs).
    StolenProof,
    /// Gossips a proof it made for one shard (or an earlier job) as the proof of another.
    Replay,
    /// Gossips claims and proofs with forged or missing signatures.
    ForgedSignature,
    /// Claims shards that do not exist in the job's plan.
    BogusClaims,
    /// Claims as many shards as it may, with the longest lease, and proves nothing.
    ClaimHog,
    /// Advertises the aggregator role and settles jobs with a wrong result.
    WrongAggregator,
    /// Oversized and malformed messages on every topic and request, absurd job dimensions,
    /// and garbage in answer to chunk requests.
    Flood,
    /// Announces a job of its own (valid manifest) and never serves its data.
    WithholdData,
    /// Advertises the aggregator role, proves every shard itself without holding a lease,
    /// and settles crediting itself: once at once, and once more after the honest proofs
    /// are in (every proof in its settlements is valid; only the credits are stolen).
    CreditThief,
    /// Once a job is announced, grinds a key that ranks first for it among the candidates,
    /// heartbeats once with it and fails the job in its name (data unavailable).
    Grinder,
    /// Answers every catch-up request with a page of valid but useless frames (its own
    /// heartbeats) and a cursor that always offers one more page.
    CatchUpFlood,
    /// Answers every catch-up request with a page of invalid frames, and always one more.
    CatchUpGarbage,
    /// Floods every peer with job submissions (oversized, deeply nested, huge arrays, valid
    /// but unprovable jobs), many at once and again as soon as they are answered, and answers
    /// catch-up requests like [`Cheat::CatchUpFlood`].
    SubmitFlood,
}

impl Cheat {
    /// Every kind, in a fixed order.
    pub const ALL: [Cheat; 14] = [
        Cheat::WrongOutput,
        Cheat::FlippedProof,
        Cheat::StolenProof,
        Cheat::Replay,
        Cheat::ForgedSignature,
        Cheat::BogusClaims,
        Cheat::ClaimHog,
        Cheat::WrongAggregator,
        Cheat::Flood,
        Cheat::CreditThief,
        Cheat::Grinder,
        Cheat::CatchUpFlood,
        Cheat::CatchUpGarbage,
        Cheat::SubmitFlood,
    ];

    /// Whether every run of the cheat sends messages honest peers reject (and so penalise).
    /// A wrong aggregator's settlement is only checked where it is elected; hogs and
    /// withholders send nothing invalid.
    pub fn is_penalisable(self) -> bool {
        matches!(
            self,
            Cheat::WrongOutput
                | Cheat::FlippedProof
                | Cheat::StolenProof
                | Cheat::Replay
                | Cheat::ForgedSignature
                | Cheat::BogusClaims
                | Cheat::Flood
                | Cheat::CatchUpGarbage
        )
    }
}

/// How an adversary is set up.
#[derive(Clone, Debug)]
pub struct AdversaryConfig {
    /// Identity seed.
    pub seed: [u8; 32],
    /// What it does.
    pub cheat: Cheat,
    /// Network name (signatures are bound to it).
    pub network: String,
    /// Peers to connect to.
    pub bootstrap: Vec<Multiaddr>,
    /// Lease it asks for on shards it claims to prove (the claim hog asks for `max_lease`).
    pub lease: Duration,
    /// The longest lease the network's rules allow.
    pub max_lease: Duration,
    /// Most leases one peer may hold in one job (the network's rule).
    pub max_leases_per_job: u32,
}

/// What an adversary did, for the harness's report.
#[derive(Clone, Debug, Default)]
pub struct AdversaryStats {
    /// Frames published, by topic.
    pub published: BTreeMap<String, u64>,
    /// Shard proofs it published (each must be refused by every honest peer).
    pub proofs_sent: u64,
    /// Settlements it published (each must be refused).
    pub settlements_sent: u64,
    /// Shard proofs a credit thief made for itself.
    pub proofs_made: u64,
    /// Failure reports a grinder sent in the name of a ground key.
    pub failures_sent: u64,
    /// Keys a grinder tried before one ranked first.
    pub keys_ground: u64,
    /// Catch-up pages served by a catch-up flooder.
    pub catch_up_pages_served: u64,
    /// Requests it sent that no honest peer should answer with data.
    pub bad_requests_sent: u64,
    /// Chunk requests it answered with garbage.
    pub garbage_chunks_served: u64,
    /// Job submissions a submission flooder sent.
    pub submissions_sent: u64,
    /// How its submissions were answered (`refused: rate`, `refused: busy`, …), by count.
    pub submission_answers: BTreeMap<String, u64>,
}

/// A running adversary.
pub struct Adversary {
    /// Its protocol key.
    pub key: PeerKey,
    /// Its libp2p peer id.
    pub peer_id: PeerId,
    /// What it does.
    pub cheat: Cheat,
    /// Its network handle.
    pub net: Client,
    stats: Arc<Mutex<AdversaryStats>>,
    jobs: Arc<Mutex<Vec<JobSpec>>>,
    own_jobs: Arc<Mutex<Vec<(JobId, String)>>>,
    armed: Arc<std::sync::atomic::AtomicBool>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    net_task: tokio::task::JoinHandle<()>,
}

impl Adversary {
    /// Starts an adversary and connects it to its bootstrap peers.
    pub async fn start(cfg: AdversaryConfig) -> anyhow::Result<Self> {
        let identity = Identity::from_seed(cfg.seed);
        let key = identity.signing_key();
        let (net, events, event_loop) = network::new(
            identity.keypair()?,
            NetConfig {
                listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
                bootstrap: cfg.bootstrap.clone(),
                topics: topics::ALL.iter().map(|t| t.to_string()).collect(),
                gossip: GossipParams {
                    // Lets it try messages larger than honest peers accept.
                    max_transmit_size: 20 << 20,
                    ..GossipParams::default()
                },
                metrics: None,
            },
        )?;
        let net_task = tokio::spawn(event_loop.run());
        let stats = Arc::new(Mutex::new(AdversaryStats::default()));
        let jobs = Arc::new(Mutex::new(Vec::new()));
        let own_jobs = Arc::new(Mutex::new(Vec::new()));
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let mut state = State {
            me: PeerKey::from(&key),
            key,
            network: NetworkId::from_name(&cfg.network),
            rng: rand::rngs::StdRng::from_seed(cfg.seed),
            net: net.clone(),
            stats: stats.clone(),
            jobs: jobs.clone(),
            own_jobs: own_jobs.clone(),
            armed: armed.clone(),
            manifests: HashMap::new(),
            honest_proofs: HashMap::new(),
            own_proofs: Vec::new(),
            own_settle_proofs: HashMap::new(),
            candidates: BTreeSet::new(),
            done: HashSet::new(),
            cfg: cfg.clone(),
        };
        let task = tokio::spawn(async move { state.run(events, shutdown_rx).await });
        Ok(Self {
            key: PeerKey::from(&identity.signing_key()),
            peer_id: net.peer_id(),
            cheat: cfg.cheat,
            net,
            stats,
            jobs,
            own_jobs,
            armed,
            shutdown: Some(shutdown_tx),
            task,
            net_task,
        })
    }

    /// Lets it start cheating (until then it only connects, so a harness can wait for it to
    /// join every node before anyone has a reason to ban it).
    pub fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Tells the adversary a job's data.
    pub fn know(&self, spec: &JobSpec) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.push(spec.clone());
        }
    }

    /// Its full listen address (`…/p2p/<peer id>`), once listening.
    pub async fn address(&self) -> anyhow::Result<Multiaddr> {
        for _ in 0..100 {
            if let Some(addr) = self.net.info().await?.listen_addrs.into_iter().next() {
                return Ok(addr.with(libp2p::multiaddr::Protocol::P2p(self.peer_id)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!("adversary did not start listening")
    }

    /// Jobs it announced itself (a withholder's).
    pub fn own_jobs(&self) -> Vec<JobId> {
        self.own_jobs
            .lock()
            .map(|j| j.iter().map(|(id, _)| *id).collect())
            .unwrap_or_default()
    }

    /// The job JSON of the jobs it announced itself (to submit them again honestly).
    pub fn own_job_json(&self) -> Vec<String> {
        self.own_jobs
            .lock()
            .map(|j| j.iter().map(|(_, json)| json.clone()).collect())
            .unwrap_or_default()
    }

    /// What it has done so far.
    pub fn stats(&self) -> AdversaryStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops it.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        self.net_task.abort();
    }
}

struct State {
    cfg: AdversaryConfig,
    key: SigningKey,
    me: PeerKey,
    network: NetworkId,
    rng: rand::rngs::StdRng,
    net: Client,
    stats: Arc<Mutex<AdversaryStats>>,
    jobs: Arc<Mutex<Vec<JobSpec>>>,
    own_jobs: Arc<Mutex<Vec<(JobId, String)>>>,
    armed: Arc<std::sync::atomic::AtomicBool>,
    manifests: HashMap<JobId, Manifest>,
    /// Honest ShardProved frames seen, by job and shard.
    honest_proofs: HashMap<JobId, BTreeMap<u32, Vec<u8>>>,
    /// Valid proofs this adversary made itself, kept for replay.
    own_proofs: Vec<ShardProved>,
    /// Aggregator candidates heard (a grinder ranks against them).
    candidates: BTreeSet<PeerKey>,
    /// A credit thief's own ShardProved frames, by job and shard.
    own_settle_proofs: HashMap<JobId, BTreeMap<u32, Vec<u8>>>,
    /// Things done once (job, step).
    done: HashSet<(JobId, u32)>,
}

impl State {
    async fn run(
        &mut self,
        mut events: mpsc::Receiver<NetEvent>,
        mut shutdown: oneshot::Receiver<()>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(event) = events.recv() => self.on_event(event).await,
                _ = tick.tick(), if self.armed() => self.on_tick().await,
            }
        }
    }

    fn armed(&self) -> bool {
        self.armed.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn publish(&mut self, topic: &'static str, frame: Vec<u8>) {
        if let Ok(mut s) = self.stats.lock() {
            *s.published.entry(topic.to_string()).or_default() += 1;
            if topic == topics::SHARD_PROVED {
                s.proofs_sent += 1;
            }
            if topic == topics::JOB_SETTLED {
                s.settlements_sent += 1;
            }
        }
        let _ = self.net.publish(topic, frame).await;
    }

    fn sign<T: starkscale_protocol::envelope::GossipPayload>(&self, msg: T) -> Option<Vec<u8>> {
        SignedEnvelope::sign(&self.key, &self.network, msg)
            .ok()?
            .to_frame()
            .ok()
    }

    async fn on_event(&mut self, event: NetEvent) {
        match event {
            NetEvent::Gossip {
                topic,
                message_id,
                source,
                data,
            } => {
                // Never forwards anything.
                let _ = self.net.validate(message_id, source, Verdict::Ignore).await;
                if self.armed() {
                    self.on_gossip(&topic, data).await;
                }
            }
            NetEvent::Request {
                peer: _,
                data,
                channel,
            } => {
                match self.cfg.cheat {
                    Cheat::Flood => {
                        if let Ok(Request::FetchChunk(FetchChunk { .. })) =
                            Request::from_frame(&data)
                        {
                            let mut garbage = vec![0u8; 4096];
                            self.rng.fill_bytes(&mut garbage);
                            let frame = Response::Chunk(ChunkResponse::Found(Bytes(garbage)))
                                .to_frame()
                                .unwrap_or_default();
                            if let Ok(mut s) = self.stats.lock() {
                                s.garbage_chunks_served += 1;
                            }
                            let _ = self.net.respond(channel, frame).await;
                        }
                    }
                    Cheat::CatchUpFlood | Cheat::CatchUpGarbage | Cheat::SubmitFlood
                        if self.armed() =>
                    {
                        if let Ok(Request::CatchUp(req)) = Request::from_frame(&data) {
                            let invalid = self.cfg.cheat == Cheat::CatchUpGarbage;
                            let page = catchup::endless_page(
                                &req,
                                &self.key,
                                &self.network,
                                invalid,
                                &mut self.rng,
                            );
                            if let Some(page) = page {
                                if let Ok(mut s) = self.stats.lock() {
                                    s.catch_up_pages_served += 1;
                                }
                                let _ = self.net.respond(channel, page).await;
                            }
                        }
                    }
                    _ => {}
                }
                // Anything else: the channel is dropped and the asker gets an error.
            }
            NetEvent::PeerConnected(peer) => {
                if self.cfg.cheat == Cheat::Flood && self.armed() {
                    self.flood_requests(peer).await;
                }
            }
            NetEvent::PeerDisconnected { .. } | NetEvent::DialFailed { .. } => {}
        }
    }

    async fn on_gossip(&mut self, topic: &str, data: Vec<u8>) {
        if topic == topics::JOB_ANNOUNCED {
            if let Ok(env) = SignedEnvelope::<JobAnnounced>::from_frame(&data, &self.network) {
                let manifest = env.into_message().manifest;
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    self.manifests.entry(manifest.job)
                {
                    slot.insert(manifest.clone());
                    self.on_announced(manifest).await;
                }
            }
        } else if topic == topics::AGGREGATOR_HEARTBEAT {
            if let Ok(env) = SignedEnvelope::<AggregatorHeartbeat>::from_frame(&data, &self.network)
            {
                self.candidates.insert(env.message().aggregator);
            }
        } else if topic == topics::SHARD_PROVED {
            if let Ok(env) = SignedEnvelope::<ShardProved>::from_frame(&data, &self.network) {
                let msg = env.message().clone();
                if msg.worker != self.me {
                    self.honest_proofs
                        .entry(msg.job)
                        .or_default()
                        .insert(msg.shard, data);
                    if self.cfg.cheat == Cheat::StolenProof {
                        self.steal(msg).await;
                    }
                }
            }
        }
    }

    /// The data of a job it was told about: the spec whose W and X are the job's.
    fn spec(&self, job: &JobId) -> Option<JobSpec> {
        let manifest = self.manifests.get(job)?;
        let wanted = (manifest.w().clone(), manifest.x.clone());
        self.jobs
            .lock()
            .ok()?
            .iter()
            .find(|spec| spec.descriptors() == wanted)
            .cloned()
    }

    /// A backdated claim (as early as the rules allow, so it beats honest claims).
    fn claim(&self, manifest: &Manifest, shard: u32, lease: Duration) -> Option<Vec<u8>> {
        let at = manifest.created_ms;
        let expires = (at + lease.as_millis() as u64).min(manifest.deadline_ms);
        self.sign(ShardClaimed {
            job: manifest.job,
            shard,
            claimed_at_ms: at,
            lease_expires_ms: expires,
            claimer: self.me,
            backup: false,
        })
    }

    async fn on_announced(&mut self, manifest: Manifest) {
        let Ok(plan) = manifest.plan() else {
            return;
        };
        let count = plan.shard_count();
        let job = manifest.job;
        let pick = self.rng.gen_range(0..count);
        match self.cfg.cheat {
            Cheat::WrongOutput | Cheat::FlippedProof | Cheat::Replay | Cheat::StolenProof => {
                // The shard it attacks, held by a backdated claim so that its proof passes the
                // lease rule and reaches proof verification. A thief holds short leases on
                // several shards (to re-sign honest proofs of them later, too).
                let (target, leases) = if self.cfg.cheat == Cheat::StolenProof {
                    let held = count.min(self.cfg.max_leases_per_job);
                    (pick.min(held - 1), (0..held).collect::<Vec<_>>())
                } else {
                    (pick, vec![pick])
                };
                let lease = if self.cfg.cheat == Cheat::StolenProof {
                    Duration::from_millis(1_000)
                } else {
                    self.cfg.lease
                };
                for shard in leases {
                    if let Some(frame) = self.claim(&manifest, shard, lease) {
                        self.publish(topics::SHARD_CLAIMED, frame).await;
                    }
                }
                let Some(spec) = self.spec(&job) else {
                    return;
                };
                let mut bystander = [0u8; 32];
                self.rng.fill_bytes(&mut bystander);
                let attack = proofs::ProofAttack {
                    cheat: self.cfg.cheat,
                    shard: target,
                    other: if count > 1 {
                        (target + 1 + self.rng.gen_range(0..count - 1)) % count
                    } else {
                        target
                    },
                    replay_from: self.own_proofs.last().cloned(),
                    bystander,
                };
                let (key, network) = (self.key.clone(), self.network);
                let made = tokio::task::spawn_blocking(move || {
                    proofs::bad_proof(&attack, &key, &network, &manifest, &spec)
                })
                .await;
                if let Ok(Ok((frame, honest))) = made {
                    self.own_proofs.extend(honest);
                    self.done.insert((job, target));
                    self.publish(topics::SHARD_PROVED, frame).await;
                }
            }
            Cheat::ForgedSignature => self.forge(&manifest, pick).await,
            Cheat::BogusClaims => {
                for shard in [count, count + 7, u32::MAX] {
                    if let Some(frame) = self.claim(&manifest, shard, self.cfg.lease) {
                        self.publish(topics::SHARD_CLAIMED, frame).await;
                    }
                }
            }
            Cheat::ClaimHog => {
                for shard in 0..count.min(self.cfg.max_leases_per_job) {
                    if let Some(frame) = self.claim(&manifest, shard, self.cfg.max_lease) {
                        self.publish(topics::SHARD_CLAIMED, frame).await;
                    }
                }
            }
            Cheat::CreditThief => self.steal_credits(manifest).await,
            Cheat::Grinder => self.grind_and_fail(&job).await,
            Cheat::WrongAggregator
            | Cheat::WithholdData
            | Cheat::CatchUpFlood
            | Cheat::CatchUpGarbage
            | Cheat::SubmitFlood => {}
            Cheat::Flood => self.flood(&manifest).await,
        }
    }

    async fn steal(&mut self, mut msg: ShardProved) {
        if !self.done.insert((msg.job, msg.shard)) {
            return;
        }
        msg.worker = self.me;
        msg.proved_at_ms = now_ms();
        if let Some(frame) = self.sign(msg) {
            self.publish(topics::SHARD_PROVED, frame).await;
        }
    }

    /// Claims and proofs with broken signatures: its own signature over a claim in the entry
    /// peer's name, an all-zero ("missing") signature, and a signature with one bit flipped.
    async fn forge(&mut self, manifest: &Manifest, shard: u32) {
        use ed25519_dalek::Signer;
        use starkscale_protocol::codec::to_canonical_bytes;
        use starkscale_protocol::envelope::signing_bytes;
        let job = manifest.job;
        let victim = manifest.entry;
        let claim = ShardClaimed {
            job,
            shard,
            claimed_at_ms: manifest.created_ms,
            lease_expires_ms: (manifest.created_ms + self.cfg.lease.as_millis() as u64)
                .min(manifest.deadline_ms),
            claimer: victim,
            backup: false,
        };
        let proof = ShardProved {
            job,
            shard,
            worker: victim,
            config_id: manifest.config_id(),
            proved_at_ms: now_ms(),
            output: IntMatrix::new(1, 1, vec![0]).expect("1x1"),
            commitment: [0; 32],
            proof: Bytes(vec![0; 64]),
        };
        let (Ok(claim), Ok(proof)) = (to_canonical_bytes(&claim), to_canonical_bytes(&proof))
        else {
            return;
        };
        for (kind, topic, payload) in [
            (MessageKind::ShardClaimed, topics::SHARD_CLAIMED, claim),
            (MessageKind::ShardProved, topics::SHARD_PROVED, proof),
        ] {
            let ours = self
                .key
                .sign(&signing_bytes(&self.network, kind, &job, &payload))
                .to_bytes();
            let mut flipped = ours;
            flipped[7] ^= 0x20;
            for signature in [ours, [0; 64], flipped] {
                if let Ok(frame) =
                    forge::frame(kind, &job, &victim, &SignatureBytes(signature), &payload)
                {
                    self.publish(topic, frame).await;
                }
            }
        }
    }

    /// Malformed, mislabelled and oversized frames on every topic, and a job announcement
    /// with absurd dimensions.
    async fn flood(&mut self, manifest: &Manifest) {
        for topic in topics::ALL {
            let mut garbage = vec![0u8; 300];
            self.rng.fill_bytes(&mut garbage);
            self.publish(topic, garbage).await;
            // A header of the topic's own kind followed by a body far over its limit.
            let kind = MessageKind::ALL
                .iter()
                .copied()
                .find(|k| topics::for_kind(*k) == Some(topic));
            if let Some(kind) = kind {
                let mut big = proofs::header(kind);
                big.resize(600 << 10, 0xAB);
                self.publish(topic, big).await;
            }
        }
        // Larger than any honest peer's gossip limit.
        self.publish(topics::SHARD_PROVED, vec![7u8; 17 << 20])
            .await;
        // A signed announcement of a job with absurd dimensions, as its own entry peer.
        let mut absurd = manifest.clone();
        absurd.entry = self.me;
        absurd.model.manifest.w.rows = u32::MAX;
        absurd.model.manifest.w.cols = u32::MAX;
        absurd.x.rows = u32::MAX;
        if let Some(frame) = self.sign(JobAnnounced { manifest: absurd }) {
            self.publish(topics::JOB_ANNOUNCED, frame).await;
        }
    }

    /// Malformed and oversized requests to a peer.
    async fn flood_requests(&mut self, peer: PeerId) {
        let mut garbage = vec![0u8; 200];
        self.rng.fill_bytes(&mut garbage);
        // Small request kinds have a 256-byte limit.
        let mut big_status = proofs::header(MessageKind::JobStatus);
        big_status.resize(64 << 10, 1);
        // A gossip kind sent as a request.
        let mut misplaced = proofs::header(MessageKind::ShardClaimed);
        misplaced.resize(100, 0);
        let requests = [garbage, big_status, misplaced, vec![0u8; 3], Vec::new()];
        let n = requests.len() as u64;
        let net = self.net.clone();
        tokio::spawn(async move {
            for request in requests {
                let _ = net.request(peer, request).await;
            }
        });
        if let Ok(mut s) = self.stats.lock() {
            s.bad_requests_sent += n;
        }
    }

    /// A withholder announces one job of its own, with a valid manifest, once peers listen.
    async fn announce_withheld(&mut self) {
        if !self.own_jobs.lock().is_ok_and(|j| j.is_empty()) {
            return;
        }
        // A job that names fewer candidates than the failure quorum cannot fail (it would
        // only expire): wait until the candidates' heartbeats have been heard.
        if self.candidates.len() < starkscale_protocol::election::FAILURE_QUORUM {
            return;
        }
        if self
            .net
            .info()
            .await
            .map_or(true, |i| i.connected.is_empty())
        {
            return;
        }
        let json = starkscale_node::demo::random_job_json(16, 32, u64::from(self.rng.next_u32()));
        let Ok(spec) =
            JobSpec::from_json_slice(json.as_bytes(), &starkscale_protocol::JobLimits::default())
        else {
            return;
        };
        let (me, deadline) = (self.me, now_ms() + 90_000);
        let Ok(Ok((manifest, _chunks))) = tokio::task::spawn_blocking(move || {
            let model = starkscale_node::models::one_off(&spec, 1 << 10)?;
            let x = starkscale_protocol::job::entries_to_bytes(
                spec.x(),
                starkscale_protocol::job::Operand::Vector,
            )?;
            let params = starkscale_protocol::manifest::ManifestParams {
                created_ms: now_ms(),
                deadline_ms: deadline,
                entry: me,
            };
            starkscale_node::node::prepare_infer(
                model,
                1,
                &x,
                params,
                &starkscale_protocol::JobLimits::default(),
            )
        })
        .await
        else {
            return;
        };
        let mut manifest = manifest;
        // Like an honest entry peer, it names the candidates it heard (so its job can fail).
        let heard: Vec<PeerKey> = self.candidates.iter().copied().collect();
        manifest.set_aggregators(&heard);
        let job = manifest.job;
        if let Some(frame) = self.sign(JobAnnounced { manifest }) {
            if let Ok(mut own) = self.own_jobs.lock() {
                own.push((job, json));
            }
            self.publish(topics::JOB_ANNOUNCED, frame).await;
        }
    }

    async fn on_tick(&mut self) {
        if self.cfg.cheat == Cheat::SubmitFlood && self.done.insert((JobId::ZERO, 0)) {
            tokio::spawn(submit::flood(self.net.clone(), self.stats.clone()));
            return;
        }
        if self.cfg.cheat == Cheat::WithholdData {
            self.announce_withheld().await;
            return;
        }
        if !matches!(self.cfg.cheat, Cheat::WrongAggregator | Cheat::CreditThief) {
            return;
        }
        if let Some(frame) = self.sign(grind::heartbeat(self.me)) {
            self.publish(topics::AGGREGATOR_HEARTBEAT, frame).await;
        }
        // Settle every job whose proofs it has all seen: with a wrong result, or (a thief)
        // with its own proofs.
        let ready: Vec<JobId> = self
            .manifests
            .iter()
            .filter(|(job, m)| {
                let shards = m.plan().map(|p| p.shard_count()).unwrap_or(0);
                !self.done.contains(&(**job, u32::MAX))
                    && self
                        .honest_proofs
                        .get(job)
                        .is_some_and(|p| p.len() as u32 == shards)
            })
            .map(|(job, _)| *job)
            .collect();
        for job in ready {
            self.done.insert((job, u32::MAX));
            let proofs = if self.cfg.cheat == Cheat::CreditThief {
                self.own_settle_proofs.get(&job)
            } else {
                self.honest_proofs.get(&job)
            };
            let (Some(manifest), Some(spec), Some(proofs)) =
                (self.manifests.get(&job), self.spec(&job), proofs)
            else {
                continue;
            };
            let bump = self.cfg.cheat == Cheat::WrongAggregator;
            let frame = settle::settlement_frame(
                &self.key,
                &self.network,
                manifest,
                spec.x(),
                proofs,
                bump,
            );
            if let Some(frame) = frame {
                self.publish(topics::JOB_SETTLED, frame).await;
            }
        }
    }

    /// A grinder makes a key that ranks first for the job, a candidate, and fails the job.
    async fn grind_and_fail(&mut self, job: &JobId) {
        let (key, tries) = grind::grind(job, &self.candidates, self.cfg.seed);
        let Some((heartbeat, failure)) = grind::frames(&key, &self.network, job) else {
            return;
        };
        self.publish(topics::AGGREGATOR_HEARTBEAT, heartbeat).await;
        // Let the heartbeat arrive first: the failure must come from a known candidate.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.publish(topics::JOB_FAILED, failure).await;
        if let Ok(mut s) = self.stats.lock() {
            s.failures_sent += 1;
            s.keys_ground += tries;
        }
    }

    /// A credit thief proves every shard itself and settles at once, crediting itself.
    async fn steal_credits(&mut self, manifest: Manifest) {
        let job = manifest.job;
        let Some(spec) = self.spec(&job) else {
            return;
        };
        let (key, network, m) = (self.key.clone(), self.network, manifest.clone());
        let made =
            tokio::task::spawn_blocking(move || settle::prove_all(&key, &network, &m, &spec)).await;
        let Ok(Ok(proofs)) = made else {
            return;
        };
        if let Ok(mut s) = self.stats.lock() {
            s.proofs_made += proofs.len() as u64;
        }
        let Some(spec) = self.spec(&job) else {
            return;
        };
        let frame = settle::settlement_frame(
            &self.key,
            &self.network,
            &manifest,
            spec.x(),
            &proofs,
            false,
        );
        self.own_settle_proofs.insert(job, proofs);
        if let Some(frame) = frame {
            self.publish(topics::JOB_SETTLED, frame).await;
        }
    }
}
