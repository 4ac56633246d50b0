//! The submitting client: uploads a job through one peer, follows it, downloads the
//! settlement and verifies every proof and the result locally before reporting success.

use std::time::{Duration, Instant};

use anyhow::Context;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use starkscale_protocol::codec::Bytes;
use starkscale_protocol::ids::JobId;
use starkscale_protocol::messages::{
    GetSettlement, JobStatusRequest, Request, Response, SettlementReply, StatusReply, Submission,
    SubmitJob, SubmitResult,
};
use starkscale_protocol::status::JobStatus;
use starkscale_protocol::{JobLimits, JobSpec};

use crate::identity::Identity;
use crate::network::{self, Client, GossipParams, NetConfig, NetEvent};
use crate::settlement::{check_commitments, verify_settlement, VerifiedSettlement};

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
}

/// A settled, locally verified job.
#[derive(Debug)]
pub struct Outcome {
    /// The job id.
    pub job: JobId,
    /// The verified settlement (result, credits, aggregator).
    pub verified: VerifiedSettlement,
    /// The signed settlement artefact.
    pub settlement: Vec<u8>,
    /// Submit to verified result.
    pub elapsed: Duration,
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
/// How long a request is retried on a live connection before the peer counts as silent.
const RETRY_FOR: Duration = Duration::from_secs(5);

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

    /// Sends one request. A lost connection is dialed again once; a peer that cannot be
    /// reached, or that does not answer for [`RETRY_FOR`], is an error naming its address.
    pub async fn request(&self, request: &Request, deadline: Instant) -> anyhow::Result<Response> {
        let frame = request.to_frame()?;
        let mut failing_since: Option<Instant> = None;
        loop {
            let err = match self.net.request(self.peer, frame.clone()).await {
                Ok(bytes) => {
                    return Response::from_frame(&bytes).context("peer sent a malformed response")
                }
                Err(e) => e,
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
            let since = *failing_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= RETRY_FOR || Instant::now() >= deadline {
                return Err(err.context(format!("the peer at {} did not answer", self.addr)));
            }
            tracing::debug!(error = %err, "request failed; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Submits `json` through the peer at `addr`, waits for settlement and verifies it.
pub async fn submit(
    json: &[u8],
    addr: &Multiaddr,
    timeout: Duration,
    mut progress: impl FnMut(Progress),
) -> anyhow::Result<Outcome> {
    let owned = json.to_vec();
    let spec = tokio::task::spawn_blocking(move || load_job(&owned)).await??;
    let start = Instant::now();
    let deadline = start + timeout;
    let session = Session::connect(addr).await?;
    let submit = Request::SubmitJob(SubmitJob {
        submission: Submission::Json(Bytes(json.to_vec())),
        deadline_ms: None,
    });
    let job = match session.request(&submit, deadline).await? {
        Response::SubmitResult(SubmitResult::Accepted { job }) => job,
        Response::SubmitResult(SubmitResult::Rejected { reason }) => {
            anyhow::bail!("the peer refused the job: {reason}")
        }
        other => anyhow::bail!("unexpected answer to a submission: {other:?}"),
    };
    if job != spec.id() {
        anyhow::bail!(
            "the peer announced job {job}, but this job's id is {}",
            spec.id()
        );
    }
    progress(Progress::Accepted(job));
    let mut last = String::new();
    loop {
        if Instant::now() >= deadline {
            anyhow::bail!(
                "timed out after {timeout:?} waiting for job {job} (last status: {last})"
            );
        }
        let status = match session
            .request(&Request::JobStatus(JobStatusRequest { job }), deadline)
            .await?
        {
            Response::Status(StatusReply::Known(report)) => report,
            Response::Status(StatusReply::Unknown) => {
                anyhow::bail!("the peer no longer knows job {job}")
            }
            other => anyhow::bail!("unexpected answer to a status query: {other:?}"),
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
    let settlement = match session
        .request(&Request::GetSettlement(GetSettlement { job }), deadline)
        .await?
    {
        Response::Settlement(SettlementReply::Found(Bytes(b))) => b,
        Response::Settlement(SettlementReply::NotSettled) => {
            anyhow::bail!("the peer reports job {job} settled but has no settlement to give")
        }
        other => anyhow::bail!("unexpected answer to a settlement request: {other:?}"),
    };
    progress(Progress::Verifying);
    // Recomputing the shard commitments and verifying every proof is CPU-bound.
    let (verified, settlement) = tokio::task::spawn_blocking(move || {
        verify_against_job(&settlement, &spec).map(|v| (v, settlement))
    })
    .await??;
    Ok(Outcome {
        job,
        verified,
        settlement,
        elapsed: start.elapsed(),
    })
}

/// Asks the peer at `addr` what it knows: peers, aggregators, jobs and their shards.
pub async fn node_status(
    addr: &Multiaddr,
    include_finished: bool,
    timeout: Duration,
) -> anyhow::Result<starkscale_protocol::messages::NodeStatusReport> {
    let session = Session::connect(addr).await?;
    let request =
        Request::NodeStatus(starkscale_protocol::messages::NodeStatusRequest { include_finished });
    match session.request(&request, Instant::now() + timeout).await? {
        Response::NodeStatus(report) => Ok(report),
        other => anyhow::bail!("unexpected answer to a status query: {other:?}"),
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

/// Verifies a settlement for a job whose data we hold: every proof, the signatures, X, and
/// the shard commitments recomputed from our own W.
pub fn verify_against_job(settlement: &[u8], spec: &JobSpec) -> anyhow::Result<VerifiedSettlement> {
    let verified = verify_settlement(settlement)?;
    if verified.job != spec.id() {
        anyhow::bail!("settlement is for job {}, not {}", verified.job, spec.id());
    }
    if &verified.settlement.x != spec.x() {
        anyhow::bail!("settlement was computed for another X");
    }
    check_commitments(&verified.settlement.manifest, spec.w())?;
    Ok(verified)
}
