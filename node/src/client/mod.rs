//! The submitting client: uploads a job through one peer, follows it, downloads the
//! settlement and verifies every proof and the result locally before reporting success.
//!
//! A peer that stops answering is an error within seconds, naming the peer and what was
//! asked. Once the entry peer has accepted the job, losing it does not lose the job: the
//! client follows the job through another peer it can reach (learned from the entry peer,
//! found by its own network, or given with [`SubmitOptions::more_peers`]).

use std::time::{Duration, Instant};

use anyhow::Context;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use starkscale_protocol::codec::Bytes;
use starkscale_protocol::ids::{JobId, ModelId, NetworkId};
use starkscale_protocol::messages::{
    GetModel, GetSettlement, JobStatusRequest, ListModels, ModelReply, ModelUploadReply,
    NodeStatusRequest, RegisterModel, Request, Response, SettlementReply, StatusReply, Submission,
    SubmitJob, SubmitResult, UploadChunk,
};
use starkscale_protocol::status::JobStatus;
use starkscale_protocol::SignedModel;
use starkscale_protocol::{JobLimits, JobSpec};

use crate::identity::Identity;
use crate::network::{self, Client, GossipParams, NetConfig, NetEvent};
use crate::settlement::{verify_settlement_on, SettlementError, VerifiedSettlement};

mod models;
pub use models::{fetch_model, infer, list_models, read_rhs, register, verify_for_model};
use models::{limbs_for, model_on, register_on};

/// Progress of a submitted job, as the client sees it.
#[derive(Clone, Debug)]
pub enum Progress {
    /// Accepted by the entry peer.
    Accepted(JobId),
    /// A new status.
    Status {
        /// Shards in the job.
        total: u32,
        /// Shards with a verified proof.
        proved: u32,
        /// Shards leased to workers.
        leased: u32,
        /// Human-readable status.
        text: String,
    },
    /// The settlement was downloaded and is being verified.
    Verifying,
    /// The owner's setup of a model (one commitment per shard) is being computed.
    Committing {
        /// Shards.
        shards: u32,
    },
    /// W is being uploaded: chunks sent of those the peer was missing.
    Uploading {
        /// Chunks sent so far.
        sent: u32,
        /// Chunks the peer was missing when the upload (re)started.
        missing: u32,
        /// Chunks of W in all.
        total: u32,
    },
    /// The peer holds the whole model.
    Registered(ModelId),
}

/// A settled, locally verified job.
#[derive(Debug)]
pub struct Outcome {
    /// The job id.
    pub job: JobId,
    /// The model the job ran against.
    pub model: ModelId,
    /// Byte limbs X was split into (1: not split). When split, the settlement proves the
    /// limb products and `verified.result` holds their exact recombination, W·X.
    pub limbs: u32,
    /// The verified settlement (result, credits, aggregator).
    pub verified: VerifiedSettlement,
    /// The signed settlement artefact.
    pub settlement: Vec<u8>,
    /// Submit to verified result.
    pub elapsed: Duration,
    /// The peer the job was followed through after the entry peer was lost, if it was.
    pub followed_via: Option<PeerId>,
}

/// The peer id at the end of a `/p2p/<id>` multiaddr.
pub fn peer_of(addr: &Multiaddr) -> anyhow::Result<PeerId> {
    addr.iter()
        .find_map(|p| match p {
            Protocol::P2p(id) => Some(id),
            _ => None,
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "peer address {addr} has no /p2p/<peer id> part: use the full address a node prints at start"
            )
        })
}

/// Parses and checks a job locally, so bad input fails before touching the network.
pub fn load_job(json: &[u8]) -> anyhow::Result<JobSpec> {
    let spec = JobSpec::from_json_slice(json, &JobLimits::default())?;
    starkscale_prover::check_exact(spec.k(), spec.w().max_abs(), spec.x().max_abs())?;
    Ok(spec)
}

/// How long the client waits for the peer's connection, or to get it back once lost.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request is retried on a live connection, from its first attempt, before the
/// peer counts as silent.
const RETRY_FOR: Duration = Duration::from_secs(8);
/// How long one status query may go unanswered on a live connection.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(4);
/// How long a settlement (up to 8 MiB) may take to arrive.
const SETTLEMENT_WITHIN: Duration = Duration::from_secs(30);
/// How long a submission may take: the upload (up to 160 MiB) and the entry peer's checks.
const SUBMISSION_WITHIN: Duration = Duration::from_secs(120);
/// How often a submission the entry peer was too busy to take is offered again.
const BUSY_RETRY_EVERY: Duration = Duration::from_secs(2);

/// What a request asks, in words, and how long its answer may take.
fn asked(request: &Request) -> (&'static str, Duration) {
    match request {
        Request::SubmitJob(_) => ("a job submission", SUBMISSION_WITHIN),
        Request::JobStatus(_) => ("a job status query", ANSWER_WITHIN),
        Request::GetSettlement(_) => ("a settlement request", SETTLEMENT_WITHIN),
        Request::NodeStatus(_) => ("a node status query", ANSWER_WITHIN),
        Request::FetchChunk(_) => ("a chunk request", SETTLEMENT_WITHIN),
        Request::CatchUp(_) => ("a catch-up request", SETTLEMENT_WITHIN),
        Request::RegisterModel(_) => ("a model registration", SETTLEMENT_WITHIN),
        Request::UploadChunk(_) => ("a chunk upload", SETTLEMENT_WITHIN),
        Request::GetModel(_) => ("a model query", ANSWER_WITHIN),
        Request::ListModels(_) => ("a model list query", ANSWER_WITHIN),
    }
}

/// What kind of answer a response is, in words.
fn answer_kind(response: &Response) -> &'static str {
    match response {
        Response::Chunk(_) => "a data chunk",
        Response::SubmitResult(_) => "a submission result",
        Response::Status(_) => "a job status",
        Response::CatchUp(_) => "a catch-up page",
        Response::Settlement(_) => "a settlement",
        Response::NodeStatus(_) => "a node status report",
        Response::ModelUpload(_) => "a model upload reply",
        Response::Model(_) => "a model",
        Response::ModelList(_) => "a model list",
    }
}

/// The error for an answer of the wrong kind: what was asked and what came back.
fn unexpected(peer: &str, request: &Request, response: &Response) -> anyhow::Error {
    anyhow::anyhow!(
        "the peer {peer} answered {} with {}: it does not speak this client's protocol; try another peer",
        asked(request).0,
        answer_kind(response)
    )
}

/// Options of a submission beyond the job and its entry peer.
#[derive(Clone, Debug)]
pub struct SubmitOptions {
    /// Give up after this long.
    pub timeout: Duration,
    /// The network the job runs on: a settlement made on another network is refused.
    pub network: NetworkId,
    /// More peers to follow the job through if the entry peer is lost after accepting it.
    pub more_peers: Vec<Multiaddr>,
    /// Target W entries per shard of the one-off model of a job file; `None` asks the entry
    /// peer for the size it suggests (its `shard_entries` setting).
    pub shard_entries: Option<u64>,
}

impl SubmitOptions {
    /// Waits up to `timeout`, on the default network, with no extra peers.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            network: NetworkId::from_name(crate::node::DEFAULT_NETWORK),
            more_peers: Vec::new(),
            shard_entries: None,
        }
    }
}

/// The state of the client's connection to its peer.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Link {
    Connecting,
    Up,
    /// A dial failed, with the cause.
    DialFailed(String),
    /// The connection closed, with the cause.
    Lost(String),
}

/// A connection to one peer for client requests.
pub struct Session {
    net: Client,
    peer: PeerId,
    addr: Multiaddr,
    link: tokio::sync::watch::Receiver<Link>,
    task: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Connects to `addr` with a throwaway identity, and fails within [`CONNECT_TIMEOUT`]
    /// (naming the address and the cause) when the peer cannot be reached.
    pub async fn connect(addr: &Multiaddr) -> anyhow::Result<Self> {
        let peer = peer_of(addr)?;
        let (net, mut events, event_loop) = network::new(
            Identity::generate().keypair()?,
            NetConfig {
                listen: vec![],
                bootstrap: vec![addr.clone()],
                topics: vec![],
                gossip: GossipParams::default(),
                metrics: None,
            },
        )?;
        let loop_task = tokio::spawn(event_loop.run());
        let (tx, link) = tokio::sync::watch::channel(Link::Connecting);
        // The client serves nothing: it only follows its link to the peer.
        let watch = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let next = match event {
                    NetEvent::PeerConnected(p) if p == peer => Link::Up,
                    NetEvent::PeerDisconnected { peer: p, cause } if p == peer => {
                        Link::Lost(cause.unwrap_or_else(|| "the peer closed it".into()))
                    }
                    NetEvent::DialFailed { peer: p, error } if p.is_none_or(|p| p == peer) => {
                        Link::DialFailed(error)
                    }
                    _ => continue,
                };
                // A failed parallel dial does not take down a link that is up.
                if matches!(next, Link::DialFailed(_)) && *tx.borrow() == Link::Up {
                    continue;
                }
                let _ = tx.send(next);
            }
        });
        let task = tokio::spawn(async move {
            let _ = loop_task.await;
            watch.abort();
        });
        let session = Self {
            net,
            peer,
            addr: addr.clone(),
            link,
            task,
        };
        session.wait_up().await?;
        Ok(session)
    }

    /// Waits until the link is up, or says why it is not.
    async fn wait_up(&self) -> anyhow::Result<()> {
        let mut link = self.link.clone();
        let addr = &self.addr;
        let waited = tokio::time::timeout(CONNECT_TIMEOUT, async {
            loop {
                let state = link.borrow_and_update().clone();
                match state {
                    Link::Up => return Ok(()),
                    Link::DialFailed(cause) => anyhow::bail!(
                        "could not connect to the peer at {addr}: {cause}. Check that a node runs there and that the address is the full one it printed at start"
                    ),
                    Link::Connecting | Link::Lost(_) => {}
                }
                if link.changed().await.is_err() {
                    anyhow::bail!("the client's network stopped while connecting to {addr}");
                }
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            anyhow::bail!(
                "could not connect to the peer at {addr}: no answer within {} s. Check that a node runs there and that the address is reachable from here",
                CONNECT_TIMEOUT.as_secs()
            )
        })
    }

    /// Dials the peer again and waits for the outcome of that dial.
    async fn reconnect(&self) -> anyhow::Result<()> {
        let mut link = self.link.clone();
        link.borrow_and_update();
        self.net.dial(self.addr.clone()).await?;
        let addr = &self.addr;
        let waited = tokio::time::timeout(CONNECT_TIMEOUT, async {
            loop {
                if link.changed().await.is_err() {
                    anyhow::bail!("the client's network stopped while connecting to {addr}");
                }
                let state = link.borrow_and_update().clone();
                match state {
                    Link::Up => return Ok(()),
                    Link::DialFailed(cause) => {
                        anyhow::bail!("could not connect to it again: {cause}")
                    }
                    Link::Connecting | Link::Lost(_) => {}
                }
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            anyhow::bail!(
                "could not connect to it again within {} s",
                CONNECT_TIMEOUT.as_secs()
            )
        })
    }

    /// Sends one request to the peer. A lost connection is dialed again once; a peer that
    /// cannot be reached, or that leaves the request unanswered (each attempt for as long as
    /// its kind may take, all attempts for at most [`RETRY_FOR`]), is an error naming the
    /// peer and what was asked.
    pub async fn request(&self, request: &Request, deadline: Instant) -> anyhow::Result<Response> {
        let frame = request.to_frame()?;
        let (what, within) = asked(request);
        let started = Instant::now();
        loop {
            let attempt = tokio::time::timeout(within, self.net.request(self.peer, frame.clone()));
            let err = match attempt.await {
                Ok(Ok(bytes)) => {
                    return Response::from_frame(&bytes).with_context(|| {
                        format!("the peer at {} sent a malformed answer to {what}", self.addr)
                    })
                }
                Ok(Err(e)) => e,
                Err(_) => anyhow::anyhow!(
                    "no answer within {} s on a live connection; the peer may be overloaded or stuck: try another peer",
                    within.as_secs()
                ),
            };
            // Connected once (`connect` waited for it): a closed link or a failed redial
            // means the connection was lost.
            let lost = match &*self.link.borrow() {
                Link::Lost(cause) | Link::DialFailed(cause) => Some(cause.clone()),
                _ => None,
            };
            if let Some(cause) = lost {
                tracing::debug!(%cause, "connection lost; dialing again");
                self.reconnect().await.with_context(|| {
                    format!("lost the connection to the peer at {} ({cause})", self.addr)
                })?;
                continue;
            }
            if started.elapsed() >= RETRY_FOR || Instant::now() >= deadline {
                return Err(err.context(format!("the peer at {} did not answer {what}", self.addr)));
            }
            tracing::debug!(error = %err, "request failed; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sends one request to any peer the client's network can reach (one attempt, for as
    /// long as the request's kind may take).
    pub async fn ask(&self, peer: PeerId, request: &Request) -> anyhow::Result<Response> {
        let (what, within) = asked(request);
        let answer = tokio::time::timeout(within, self.net.request(peer, request.to_frame()?));
        match answer.await {
            Ok(Ok(bytes)) => Response::from_frame(&bytes)
                .with_context(|| format!("peer {peer} sent a malformed answer to {what}")),
            Ok(Err(e)) => Err(e.context(format!("peer {peer} did not answer {what}"))),
            Err(_) => anyhow::bail!(
                "peer {peer} did not answer {what} within {} s",
                within.as_secs()
            ),
        }
    }

    /// Dials more peers (to follow a job through if the entry peer is lost). A peer that
    /// cannot be dialed is skipped.
    pub async fn dial_more(&self, addrs: &[Multiaddr]) {
        for addr in addrs {
            if let Err(e) = self.net.dial(addr.clone()).await {
                tracing::warn!(%addr, error = %e, "cannot dial this peer");
            }
        }
    }

    /// Peers other than the entry peer that this client is connected to.
    async fn other_peers(&self) -> Vec<PeerId> {
        match self.net.info().await {
            Ok(info) => info
                .connected
                .into_iter()
                .filter(|p| *p != self.peer)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Where the client follows its job: the entry peer, or once it is lost, another peer that
/// knows the job.
struct Follow<'a> {
    session: &'a Session,
    job: JobId,
    /// The peer answering now; `None`: the entry peer.
    via: Option<PeerId>,
    /// Peers the entry peer named right after accepting the job.
    learned: Vec<PeerId>,
    /// Peers given up on (the entry peer is never asked again once lost).
    failed: std::collections::HashSet<PeerId>,
}

impl<'a> Follow<'a> {
    fn new(session: &'a Session, job: JobId) -> Self {
        Self {
            session,
            job,
            via: None,
            learned: Vec::new(),
            failed: Default::default(),
        }
    }

    /// Asks the entry peer which peers it is connected to, to follow the job through one of
    /// them if the entry peer is lost. Best effort: a failure here loses nothing yet.
    async fn learn_peers(&mut self) {
        let request = Request::NodeStatus(NodeStatusRequest {
            include_finished: false,
        });
        if let Ok(Response::NodeStatus(report)) =
            self.session.ask(self.session.peer, &request).await
        {
            self.learned = report.peers.iter().filter_map(|p| p.parse().ok()).collect();
        }
    }

    /// The peer asked now, for messages.
    fn via_name(&self) -> String {
        match self.via {
            None => format!("at {}", self.session.addr),
            Some(peer) => peer.to_string(),
        }
    }

    /// Asks about the job through the peer followed now; when it fails, through the next
    /// peer that knows the job.
    async fn ask(&mut self, request: &Request, deadline: Instant) -> anyhow::Result<Response> {
        loop {
            let failure = match self.via {
                None => self.session.request(request, deadline).await,
                Some(peer) => self.session.ask(peer, request).await,
            };
            let failure = match failure {
                Ok(response) => return Ok(response),
                Err(e) => e,
            };
            self.failed.insert(self.via.unwrap_or(self.session.peer));
            let Some(next) = self.another_peer().await else {
                let known = self.candidates().await.len() + self.failed.len() - 1;
                return Err(failure.context(format!(
                    "could not follow job {} any further: none of the {known} other peer(s) this client could reach knows the job (give more peers with --peer)",
                    self.job
                )));
            };
            tracing::warn!(
                "{failure:#}; following job {} through peer {next} from now on",
                self.job
            );
            self.via = Some(next);
        }
    }

    /// Peers to try, in order: those learned from the entry peer, then those connected.
    async fn candidates(&self) -> Vec<PeerId> {
        let mut out: Vec<PeerId> = self.learned.clone();
        for p in self.session.other_peers().await {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out.retain(|p| *p != self.session.peer && !self.failed.contains(p));
        out
    }

    /// The first candidate that knows the job.
    async fn another_peer(&mut self) -> Option<PeerId> {
        let query = Request::JobStatus(JobStatusRequest { job: self.job });
        for peer in self.candidates().await {
            match self.session.ask(peer, &query).await {
                Ok(Response::Status(StatusReply::Known(_))) => return Some(peer),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "cannot follow the job through this peer");
                    self.failed.insert(peer);
                }
            }
        }
        None
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Submits `json` through the peer at `addr`, waits for settlement and verifies it (on the
/// default network, with no extra peers: see [`submit_with`]).
pub async fn submit(
    json: &[u8],
    addr: &Multiaddr,
    timeout: Duration,
    progress: impl FnMut(Progress),
) -> anyhow::Result<Outcome> {
    submit_with(json, addr, &SubmitOptions::new(timeout), progress).await
}

/// Submits the job file `json` through the peer at `addr`: registers its one-off model (the
/// client's own setup of W; resumed if W is partly there), then runs X against it, follows
/// the job (through another peer if the entry peer is lost after accepting it), downloads
/// the settlement and verifies it for `options.network` against the model id.
pub async fn submit_with(
    json: &[u8],
    addr: &Multiaddr,
    options: &SubmitOptions,
    mut progress: impl FnMut(Progress),
) -> anyhow::Result<Outcome> {
    let owned = json.to_vec();
    let spec = tokio::task::spawn_blocking(move || load_job(&owned)).await??;
    let start = Instant::now();
    let deadline = start + options.timeout;
    let session = Session::connect(addr).await?;
    session.dial_more(&options.more_peers).await;
    let entries = match options.shard_entries {
        Some(entries) => entries,
        None => {
            let ask = Request::NodeStatus(NodeStatusRequest {
                include_finished: false,
            });
            match session.request(&ask, deadline).await? {
                Response::NodeStatus(report) => report.shard_entries,
                other => return Err(unexpected(&format!("at {addr}"), &ask, &other)),
            }
        }
    };
    let (m, k, n) = (spec.m() as u32, spec.k() as u32, spec.n() as u32);
    let rows = crate::models::rows_per_shard(m, k, n, entries);
    progress(Progress::Committing {
        shards: m.div_ceil(rows.max(1)),
    });
    let (spec, model) = tokio::task::spawn_blocking(move || {
        let model = crate::models::one_off(&spec, entries);
        (spec, model)
    })
    .await?;
    let model = model?;
    register_on(&session, &model, spec.w(), deadline, &mut progress).await?;
    let mut outcome = infer_on(&session, model.id(), spec.x(), options, start, progress).await?;
    outcome.elapsed = start.elapsed();
    Ok(outcome)
}

async fn infer_on(
    session: &Session,
    model: ModelId,
    x: &starkscale_protocol::IntMatrix,
    options: &SubmitOptions,
    start: Instant,
    mut progress: impl FnMut(Progress),
) -> anyhow::Result<Outcome> {
    let timeout = options.timeout;
    let deadline = start + timeout;
    // Activations too wide to be exact against the model's weights are split into byte limbs
    // (extra right-hand columns) and recombined after verification. An entry peer that does
    // not know the model yet fetches it on the first submission; ask again if it refuses.
    let mut limbs = match model_on(session, model, deadline).await? {
        Some((found, _)) => limbs_for(&found, x)?,
        None => 1,
    };
    let original = x;
    let mut sent = crate::limbs::split(original, limbs);
    let job = match submit_job(session, model, &sent, deadline).await {
        Err(e) if limbs == 1 && e.to_string().contains("exact-result bound") => {
            let Some((found, _)) = model_on(session, model, deadline).await? else {
                return Err(e);
            };
            limbs = limbs_for(&found, original)?;
            if limbs == 1 {
                return Err(e);
            }
            sent = crate::limbs::split(original, limbs);
            submit_job(session, model, &sent, deadline).await?
        }
        other => other?,
    };
    let x = &sent;
    let expected = crate::models::job_id(&model, x)?;
    if job != expected {
        anyhow::bail!("the peer announced job {job}, but this job's id is {expected}");
    }
    progress(Progress::Accepted(job));
    let mut follow = Follow::new(session, job);
    follow.learn_peers().await;
    let mut last = String::new();
    loop {
        if Instant::now() >= deadline {
            anyhow::bail!(
                "timed out after {timeout:?} waiting for job {job} (last status: {last})"
            );
        }
        let query = Request::JobStatus(JobStatusRequest { job });
        let status = match follow.ask(&query, deadline).await? {
            Response::Status(StatusReply::Known(report)) => report,
            Response::Status(StatusReply::Unknown) => anyhow::bail!(
                "the peer {} no longer knows job {job}; it may have restarted without its data: submit the job again",
                follow.via_name()
            ),
            other => return Err(unexpected(&follow.via_name(), &query, &other)),
        };
        let text = status.status.to_string();
        if text != last {
            progress(Progress::Status {
                total: status.shards_total,
                proved: status.shards_proved,
                leased: status.shards_leased,
                text: text.clone(),
            });
            last = text;
        }
        match status.status {
            JobStatus::Settled { .. } => break,
            JobStatus::Failed { reason } => anyhow::bail!("job {job} failed: {reason}"),
            JobStatus::Expired => anyhow::bail!("job {job} expired before it settled"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let fetch = Request::GetSettlement(GetSettlement { job });
    let settlement = match follow.ask(&fetch, deadline).await? {
        Response::Settlement(SettlementReply::Found(Bytes(b))) => b,
        Response::Settlement(SettlementReply::NotSettled) => anyhow::bail!(
            "the peer {} reports job {job} settled but has no settlement to give; try `status` on another peer",
            follow.via_name()
        ),
        other => return Err(unexpected(&follow.via_name(), &fetch, &other)),
    };
    progress(Progress::Verifying);
    // Verifying every proof is CPU-bound.
    let network = options.network;
    // Checked against the caller's X: limb products are recombined in exact integers.
    let x = original.clone();
    let (verified, settlement) = tokio::task::spawn_blocking(move || {
        verify_for_model(&settlement, &model, Some(&x), &network).map(|v| (v, settlement))
    })
    .await??;
    if verified.job != job {
        anyhow::bail!(
            "the peer {} gave the settlement of job {}, not of job {job}",
            follow.via_name(),
            verified.job
        );
    }
    Ok(Outcome {
        job,
        model,
        limbs: limbs as u32,
        verified,
        settlement,
        elapsed: start.elapsed(),
        followed_via: follow.via,
    })
}

/// Sends the job to the entry peer; offers it again while the peer is too busy to take it.
async fn submit_job(
    session: &Session,
    model: ModelId,
    x: &starkscale_protocol::IntMatrix,
    deadline: Instant,
) -> anyhow::Result<JobId> {
    let operand = if x.cols() == 1 {
        starkscale_protocol::job::Operand::Vector
    } else {
        starkscale_protocol::job::Operand::Rhs
    };
    let bytes = starkscale_protocol::job::entries_to_bytes(x, operand)?;
    let submit = Request::SubmitJob(SubmitJob {
        submission: Submission::Infer {
            model,
            cols: x.cols() as u32,
            x: Bytes(bytes),
        },
        deadline_ms: None,
    });
    loop {
        match session.request(&submit, deadline).await? {
            Response::SubmitResult(SubmitResult::Accepted { job }) => return Ok(job),
            Response::SubmitResult(SubmitResult::Rejected { reason })
                if reason.starts_with("entry peer busy")
                    && Instant::now() + BUSY_RETRY_EVERY < deadline =>
            {
                tracing::warn!("{reason}; offering the job again");
                tokio::time::sleep(BUSY_RETRY_EVERY).await;
            }
            Response::SubmitResult(SubmitResult::Rejected { reason }) => {
                anyhow::bail!("the peer refused the job: {reason}")
            }
            other => {
                let peer = format!("at {}", session.addr);
                return Err(unexpected(&peer, &submit, &other));
            }
        }
    }
}

/// Asks the peer at `addr` what it knows: peers, aggregators, jobs and their shards.
pub async fn node_status(
    addr: &Multiaddr,
    include_finished: bool,
    timeout: Duration,
) -> anyhow::Result<starkscale_protocol::messages::NodeStatusReport> {
    let session = Session::connect(addr).await?;
    let request = Request::NodeStatus(NodeStatusRequest { include_finished });
    match session.request(&request, Instant::now() + timeout).await? {
        Response::NodeStatus(report) => Ok(report),
        other => Err(unexpected(&format!("at {addr}"), &request, &other)),
    }
}

/// Renders a node status report for people.
pub fn render_status(report: &starkscale_protocol::messages::NodeStatusReport) -> String {
    use std::fmt::Write;
    let short = |k: &starkscale_protocol::ids::PeerKey| k.to_string()[..12].to_string();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {}: {} connected peer(s), {} aggregator candidate(s), {} job(s)",
        report.node,
        report.peers.len(),
        report.aggregators.len(),
        report.jobs.len()
    );
    for job in &report.jobs {
        let (m, k, n) = job.dims;
        let due = job.report.deadline_ms as i64 - report.now_ms as i64;
        let due = if due >= 0 {
            format!("due in {}s", due / 1000)
        } else {
            format!("{}s past due", -due / 1000)
        };
        let _ = writeln!(
            out,
            "job {}  {m}×{k}·{k}×{n}  {}  ({due}; aggregator {}; entry {})",
            job.report.job,
            job.report.status,
            job.aggregator.as_ref().map_or("none yet".into(), short),
            short(&job.entry)
        );
        for s in &job.shards {
            let owner = s
                .owner
                .as_ref()
                .map_or(String::new(), |o| format!(" by {}", short(o)));
            let lease = s.lease_expires_ms.map_or(String::new(), |t| {
                format!(
                    ", lease ends in {}s",
                    (t.saturating_sub(report.now_ms)) / 1000
                )
            });
            let _ = writeln!(
                out,
                "  shard {:>4}  rows {}..{}  {}{owner}{lease}",
                s.index, s.first_row, s.end_row, s.state
            );
        }
    }
    out
}

/// Verifies a settlement made on `network` (every proof, the signatures, X against the
/// manifest): one made on another network is refused, saying so.
pub fn verify_on(settlement: &[u8], network: &NetworkId) -> anyhow::Result<VerifiedSettlement> {
    verify_settlement_on(settlement, network).map_err(|e| match e {
        SettlementError::Network { expected, found } => anyhow::anyhow!(
            "this settlement was made on another network (id {found}) than the one expected here (id {expected}): give --network with the name (or profile) of the network the job ran on"
        ),
        other => other.into(),
    })
}
