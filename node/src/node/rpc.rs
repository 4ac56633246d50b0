//! Request-response handlers: chunks, submissions, status, settlements and catch-up.

use libp2p::request_response::ResponseChannel;
use libp2p::PeerId;
use starkscale_protocol::chunk::split_into_chunks;
use starkscale_protocol::codec::Bytes;
use starkscale_protocol::election::aggregator_at;
use starkscale_protocol::ids::{JobId, ModelId};
use starkscale_protocol::lease::ShardState;
use starkscale_protocol::manifest::{Manifest, ManifestParams};
use starkscale_protocol::messages::{
    topics, CatchUp, CatchUpReport, ChunkResponse, GetModel, JobAnnounced, JobSummary, ModelReply,
    NodeStatusReport, NodeStatusRequest, Request, Response, SettlementReply, ShardSummary,
    StatusReply, Submission, SubmitJob, SubmitResult,
};
use starkscale_protocol::{JobLimits, SignedEnvelope};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info};

use super::{now_ms, Internal, Node};

/// Submissions prepared (parsed, committed, stored) at once on the blocking pool.
const PREPARING_AT_ONCE: usize = 2;
/// Submissions held at once, preparing or waiting to (each holds its body in memory).
const HELD_AT_ONCE: usize = 8;
/// Submissions one peer may have held at once (so no one peer fills [`HELD_AT_ONCE`]).
const HELD_PER_PEER: usize = 2;
/// How long an admitted submission waits for a preparation slot before it is refused.
const PREPARE_WAIT: Duration = Duration::from_secs(5);

/// What an entry peer admits: a rate per submitting peer, a bound on the submissions it
/// holds and on those it prepares at once. Further ones are refused at once with a reason
/// saying to retry, never queued without bound.
pub(super) struct SubmitGate {
    rate: starkscale_protocol::admission::SubmitWindow<PeerId>,
    held_by: std::collections::HashMap<PeerId, Arc<Semaphore>>,
    held: Arc<Semaphore>,
    preparing: Arc<Semaphore>,
}

impl Default for SubmitGate {
    fn default() -> Self {
        Self {
            rate: Default::default(),
            held_by: Default::default(),
            held: Arc::new(Semaphore::new(HELD_AT_ONCE)),
            preparing: Arc::new(Semaphore::new(PREPARING_AT_ONCE)),
        }
    }
}

impl SubmitGate {
    /// Admits a submission from `peer` now (its rate, then a place among the peer's own and
    /// among all those held), or says why not. The permits are held until it is prepared.
    fn admit(&mut self, peer: &PeerId) -> Result<[OwnedSemaphorePermit; 2], String> {
        self.rate
            .admit(peer, now_ms())
            .map_err(|refusal| format!("{refusal}"))?;
        if self.held_by.len() > 1024 {
            self.held_by
                .retain(|_, s| s.available_permits() < HELD_PER_PEER);
        }
        let own = self
            .held_by
            .entry(*peer)
            .or_insert_with(|| Arc::new(Semaphore::new(HELD_PER_PEER)))
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                format!(
                    "entry peer busy: it is already preparing {HELD_PER_PEER} submissions from this peer; wait for their answers before sending more"
                )
            })?;
        let all = self.held.clone().try_acquire_owned().map_err(|_| {
            format!(
                "entry peer busy: it already holds {HELD_AT_ONCE} submissions; retry in a few seconds or submit through another peer"
            )
        })?;
        Ok([own, all])
    }
}

/// Waits (at most [`PREPARE_WAIT`]) for one of the [`PREPARING_AT_ONCE`] preparation slots.
async fn preparation_slot(preparing: Arc<Semaphore>) -> Result<OwnedSemaphorePermit, String> {
    let busy = || {
        format!(
            "entry peer busy: {PREPARING_AT_ONCE} submissions were being prepared for {} s; retry in a few seconds or submit through another peer",
            PREPARE_WAIT.as_secs()
        )
    };
    match tokio::time::timeout(PREPARE_WAIT, preparing.acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_)) | Err(_) => Err(busy()),
    }
}

/// A submission after parsing and preparation on the blocking pool.
pub(crate) enum Prepared {
    /// A job this node already knows: nothing to announce.
    Known(JobId),
    /// A new job, its chunks stored, ready to announce.
    New(Box<Manifest>),
}

/// Builds the manifest of `model` applied to X (canonical bytes, k×`cols`), checks it and
/// the exactness bound, and returns it with X's chunks. No setup: the keys are the owner's.
/// CPU-bound (parsing, hashing): runs on the blocking pool.
pub fn prepare_infer(
    model: starkscale_protocol::SignedModel,
    cols: u32,
    x_bytes: &[u8],
    params: ManifestParams,
    limits: &JobLimits,
) -> anyhow::Result<(Manifest, Vec<Vec<u8>>)> {
    let id = model.id();
    let k = model.manifest.w.cols as usize;
    let rows_needed = (cols as usize).saturating_mul(k).saturating_mul(4);
    if cols == 0 || x_bytes.len() != rows_needed {
        anyhow::bail!(
            "X has {} bytes; model {id} needs X with {k} rows (its W is {}x{k}), so {cols} columns take {rows_needed} bytes",
            x_bytes.len(),
            model.manifest.w.rows,
        );
    }
    let operand = if cols == 1 {
        starkscale_protocol::job::Operand::Vector
    } else {
        starkscale_protocol::job::Operand::Rhs
    };
    let x = starkscale_protocol::job::matrix_from_canonical(operand, k, cols as usize, x_bytes)?;
    let w_bound = model.weight_bound();
    starkscale_prover::check_exact(k, w_bound, x.max_abs())?;
    let manifest = Manifest::new(model, &x, params)?;
    manifest.validate(limits)?;
    let chunks = split_into_chunks(x_bytes)
        .into_iter()
        .map(|(_, c)| c.to_vec())
        .collect();
    Ok((manifest, chunks))
}

/// Asks `peers` in turn for model `id`; the first answer that is validly signed and hashes to
/// `id` is taken (a model is self-certifying, so any peer may serve it).
pub(super) async fn fetch_model(
    net: &crate::network::Client,
    peers: &[PeerId],
    id: ModelId,
    limits: &JobLimits,
) -> Option<starkscale_protocol::SignedModel> {
    let request = Request::GetModel(GetModel { model: id }).to_frame().ok()?;
    for peer in peers {
        let Ok(bytes) = net.request(*peer, request.clone()).await else {
            continue;
        };
        if let Ok(Response::Model(ModelReply::Found { model, .. })) = Response::from_frame(&bytes) {
            if model.id() == id && model.validate(limits).is_ok() {
                return Some(model);
            }
        }
    }
    None
}

fn respond_frame(response: &Response) -> Vec<u8> {
    response.to_frame().unwrap_or_default()
}

impl Node {
    pub(super) async fn on_request(
        &mut self,
        peer: PeerId,
        data: Vec<u8>,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        let request = match Request::from_frame(&data) {
            Ok(r) => r,
            Err(e) => {
                debug!(%peer, error = %e, "malformed request");
                // Dropping the channel closes the stream: the peer sees a failed request.
                return;
            }
        };
        let response = match request {
            Request::FetchChunk(req) => {
                Response::Chunk(match self.store.get_chunk(req.id.as_bytes()) {
                    Some(bytes) => {
                        self.metrics.chunk_bytes_served.inc_by(bytes.len() as u64);
                        ChunkResponse::Found(Bytes(bytes))
                    }
                    None => ChunkResponse::NotFound,
                })
            }
            Request::SubmitJob(req) => return self.on_submit(peer, req, channel).await,
            Request::JobStatus(req) => Response::Status(match self.jobs.get(&req.job) {
                Some(record) => StatusReply::Known(record.report(now_ms(), &self.settle)),
                None => StatusReply::Unknown,
            }),
            Request::GetSettlement(req) => Response::Settlement(
                match self.local.get(&req.job).and_then(|l| l.settled.as_ref()) {
                    Some((_, settlement)) => SettlementReply::Found(Bytes(settlement.clone())),
                    None => SettlementReply::NotSettled,
                },
            ),
            Request::CatchUp(req) => Response::CatchUp(self.catch_up_report(req)),
            Request::RegisterModel(req) => Response::ModelUpload(self.on_register_model(peer, req)),
            Request::UploadChunk(req) => Response::ModelUpload(self.on_upload_chunk(peer, req)),
            Request::GetModel(req) => Response::Model(self.model_reply(&req.model)),
            Request::ListModels(req) => Response::ModelList(self.model_list(req)),
            Request::NodeStatus(req) => Response::NodeStatus(self.node_status(req).await),
        };
        let _ = self.net.respond(channel, respond_frame(&response)).await;
    }

    async fn node_status(&self, req: NodeStatusRequest) -> NodeStatusReport {
        let now = now_ms();
        let aggregators = self.aggregator_keys();
        let peers = match self.net.info().await {
            Ok(info) => info.connected.iter().map(|p| p.to_string()).collect(),
            Err(_) => Vec::new(),
        };
        let mut jobs: Vec<JobSummary> = self
            .jobs
            .values()
            .filter(|r| req.include_finished || !r.status(now, &self.settle).is_terminal())
            .map(|r| {
                let shards = r
                    .plan
                    .shards()
                    .map(|range| {
                        let (state, owner, lease_expires_ms) =
                            match r.leases.state(range.index, now) {
                                ShardState::Open => ("open", None, None),
                                ShardState::Held { primary, .. } => {
                                    ("leased", Some(primary.holder), Some(primary.end_ms))
                                }
                                ShardState::Proved { worker, .. } => ("proved", Some(worker), None),
                            };
                        ShardSummary {
                            index: range.index,
                            first_row: range.rows.start,
                            end_row: range.rows.end,
                            state: state.into(),
                            owner,
                            lease_expires_ms,
                        }
                    })
                    .collect();
                JobSummary {
                    report: r.report(now, &self.settle),
                    aggregator: aggregator_at(
                        &r.manifest.job,
                        &self.job_candidates(r),
                        r.settle_deadline_ms(&self.settle),
                        self.settle.step_ms,
                        now,
                    ),
                    entry: r.manifest.entry,
                    dims: r.manifest.dims(),
                    shards,
                }
            })
            .collect();
        jobs.sort_by_key(|j| (j.report.deadline_ms, j.report.job));
        NodeStatusReport {
            node: self.me,
            now_ms: now,
            peers,
            aggregators,
            jobs,
            shard_entries: self.cfg.shard_entries,
        }
    }

    /// Whether a job ended without a result (failed or expired): it may be submitted again.
    fn is_over_unsettled(&self, record: &starkscale_protocol::status::JobRecord) -> bool {
        matches!(
            record.terminal_status(now_ms(), &self.settle),
            Some(starkscale_protocol::status::JobStatus::Failed { .. })
                | Some(starkscale_protocol::status::JobStatus::Expired)
        )
    }

    fn catch_up_report(&self, req: CatchUp) -> CatchUpReport {
        let mut report = CatchUpReport::default();
        let mut jobs: Vec<_> = self
            .jobs
            .values()
            .filter(|r| r.manifest.deadline_ms >= req.since_ms)
            .map(|r| r.manifest.job)
            .collect();
        jobs.sort();
        let mut frames = Vec::new();
        for job in &jobs {
            if let Some(local) = self.local.get(job) {
                frames.push(local.announce.clone());
            }
        }
        // Claims of every job come before its settlement: a peer checks a settlement's credits
        // against the leases it knows. Settled jobs: the settlement carries every proof, so
        // proofs are left out; failed jobs: the failure; open jobs: their verified proofs.
        for job in &jobs {
            if let Some(local) = self.local.get(job) {
                frames.extend(local.claims.iter().cloned());
            }
        }
        for job in &jobs {
            let Some(local) = self.local.get(job) else {
                continue;
            };
            if let Some((frame, _)) = &local.settled {
                frames.push(frame.clone());
            }
            if let Some(frame) = &local.failed {
                frames.push(frame.clone());
            }
            frames.extend(local.failure_reports.values().cloned());
        }
        jobs.retain(|job| self.jobs.get(job).is_some_and(|r| r.outcome.is_none()));
        for job in &jobs {
            if let Some(local) = self.local.get(job) {
                frames.extend(local.proofs.values().cloned());
            }
        }
        let start = req.cursor as usize;
        for (i, frame) in frames.into_iter().enumerate().skip(start) {
            if !report.push(frame) {
                report.next_cursor = Some(i as u64);
                break;
            }
        }
        report
    }

    /// Refuses a submission with `reason`.
    async fn refuse_submission(&self, channel: ResponseChannel<Vec<u8>>, reason: String) {
        let r = Response::SubmitResult(SubmitResult::Rejected { reason });
        let _ = self.net.respond(channel, respond_frame(&r)).await;
    }

    /// A submission: admitted (rate and room, see [`SubmitGate`]) or refused at once; once
    /// admitted it waits for a preparation slot, then is parsed and prepared on the blocking
    /// pool, which reports back with [`Internal::SubmissionReady`].
    async fn on_submit(&mut self, peer: PeerId, req: SubmitJob, channel: ResponseChannel<Vec<u8>>) {
        let Submission::Infer {
            model: model_id,
            cols,
            x: Bytes(bytes),
        } = req.submission;
        let held = match self.submit_gate.admit(&peer) {
            Ok(permit) => permit,
            Err(reason) => {
                debug!(%peer, %reason, "submission refused");
                return self.refuse_submission(channel, reason).await;
            }
        };
        let now = now_ms();
        let deadline = req
            .deadline_ms
            .filter(|d| *d > now)
            .unwrap_or(now + self.cfg.job_deadline.as_millis() as u64);
        // A failed or expired job may be submitted again (a new round).
        let known: HashSet<JobId> = self
            .jobs
            .iter()
            .filter(|(_, r)| !self.is_over_unsettled(r))
            .map(|(j, _)| *j)
            .collect();
        let known_model = self.models.get(&model_id).map(|m| m.model.clone());
        let (tx, me, limits) = (self.internal.clone(), self.me, self.limits);
        let (store, net) = (self.store.clone(), self.net.clone());
        let preparing = self.submit_gate.preparing.clone();
        let my_peer = self.net.peer_id();
        // Waiting for a slot must not hold up the node's event loop.
        tokio::spawn(async move {
            let refuse = |reason: String, channel| {
                let net = net.clone();
                async move {
                    debug!(%peer, %reason, "submission refused");
                    let r = Response::SubmitResult(SubmitResult::Rejected { reason });
                    let _ = net.respond(channel, respond_frame(&r)).await;
                }
            };
            let slot = match preparation_slot(preparing).await {
                Ok(slot) => slot,
                Err(reason) => return refuse(reason, channel).await,
            };
            let fetched = known_model.is_none();
            let model = match known_model {
                Some(model) => model,
                None => {
                    let peers: Vec<PeerId> = match net.info().await {
                        Ok(info) => info
                            .connected
                            .into_iter()
                            .filter(|p| *p != my_peer)
                            .collect(),
                        Err(_) => Vec::new(),
                    };
                    match fetch_model(&net, &peers, model_id, &limits).await {
                        Some(model) => model,
                        None => {
                            return refuse(format!(
                                "model {model_id} is unknown here and to this node's peers: register it first (`starkscale model register`), or check the id"
                            ), channel)
                            .await
                        }
                    }
                }
            };
            // Parsing, hashing and writing chunks are CPU and disk work: the blocking pool.
            tokio::task::spawn_blocking(move || {
                let prepared = (|| {
                    let params = ManifestParams {
                        created_ms: now_ms(),
                        deadline_ms: deadline,
                        entry: me,
                    };
                    let learned = fetched.then(|| model.clone());
                    let prepared = prepare_infer(model, cols, &bytes, params, &limits);
                    drop(bytes);
                    // A model fetched for a submission is kept (in memory) once the
                    // submission holds up, or when X only needs splitting into limbs: the
                    // client then reads the model to split X.
                    let keep = match &prepared {
                        Ok(_) => true,
                        Err(e) => e
                            .downcast_ref::<starkscale_prover::OverflowError>()
                            .is_some(),
                    };
                    if let Some(model) = learned.filter(|_| keep) {
                        let _ = tx.blocking_send(Internal::ModelLearned(Box::new(model)));
                    }
                    let (manifest, chunks) = prepared?;
                    if known.contains(&manifest.job) {
                        return Ok(Prepared::Known(manifest.job));
                    }
                    for chunk in &chunks {
                        store.put_chunk(chunk).map_err(|e| {
                            anyhow::anyhow!("entry peer could not store the job: {e}")
                        })?;
                    }
                    Ok(Prepared::New(Box::new(manifest)))
                })()
                .map_err(|e: anyhow::Error| e.to_string());
                drop((slot, held));
                let _ = tx.blocking_send(Internal::SubmissionReady {
                    prepared,
                    reply: channel,
                });
            });
        });
    }

    pub(super) async fn on_submission_ready(
        &mut self,
        prepared: Result<Prepared, String>,
        reply: ResponseChannel<Vec<u8>>,
    ) {
        let manifest = match prepared {
            Ok(Prepared::New(manifest))
                if self
                    .jobs
                    .get(&manifest.job)
                    .is_none_or(|r| self.is_over_unsettled(r)) =>
            {
                *manifest
            }
            Ok(Prepared::New(manifest)) => {
                let r = Response::SubmitResult(SubmitResult::Accepted { job: manifest.job });
                let _ = self.net.respond(reply, respond_frame(&r)).await;
                return;
            }
            Ok(Prepared::Known(job)) => {
                let r = Response::SubmitResult(SubmitResult::Accepted { job });
                let _ = self.net.respond(reply, respond_frame(&r)).await;
                return;
            }
            Err(reason) => {
                let r = Response::SubmitResult(SubmitResult::Rejected { reason });
                let _ = self.net.respond(reply, respond_frame(&r)).await;
                return;
            }
        };
        let mut manifest = manifest;
        // The job's aggregator candidates are fixed in its signed manifest: those heard now.
        manifest.set_aggregators(&self.aggregator_keys());
        let (job, created_ms) = (manifest.job, manifest.created_ms);
        let announce = SignedEnvelope::sign(&self.key, &self.network, JobAnnounced { manifest })
            .map_err(|e| e.to_string())
            .and_then(|e| e.to_frame().map_err(|e| e.to_string()));
        let response = match announce {
            Ok(frame) => {
                // Apply our own announcement first: publish only what we accept ourselves.
                self.on_gossip_frame(frame.clone(), super::Origin::Local)
                    .await;
                if self
                    .jobs
                    .get(&job)
                    .is_some_and(|r| r.manifest.created_ms == created_ms)
                {
                    info!(%job, "job accepted; announcing");
                    if let Err(e) = self.net.publish(topics::JOB_ANNOUNCED, frame).await {
                        tracing::warn!(error = %e, "publish failed");
                    }
                    SubmitResult::Accepted { job }
                } else {
                    SubmitResult::Rejected {
                        reason: "the entry peer could not validate its own announcement".into(),
                    }
                }
            }
            Err(reason) => SubmitResult::Rejected { reason },
        };
        let _ = self
            .net
            .respond(reply, respond_frame(&Response::SubmitResult(response)))
            .await;
    }

    /// A new peer: ask it for the open work we may have missed.
    /// Catches up from `peer`, page by page, within the catch-up budget (a responder that
    /// keeps its cursor growing is not followed past it).
    pub(super) fn on_peer_connected(&mut self, peer: PeerId) {
        use starkscale_protocol::catchup::CatchUpLedger;
        let (net, tx, ledger) = (
            self.net.clone(),
            self.internal.clone(),
            self.catchup.clone(),
        );
        let budget = starkscale_protocol::catchup::CatchUpBudget::default();
        // The budget is per peer and window, across catch-ups (a reconnect renews nothing).
        let Ok(mut spent) = ledger.lock().map(|mut l| l.spent(&peer, now_ms())) else {
            return;
        };
        if CatchUpLedger::<PeerId>::exhausted(&budget, &spent) {
            debug!(%peer, "catch-up budget of this peer spent for now");
            return;
        }
        tokio::spawn(async move {
            let mut cursor = 0;
            loop {
                let request = Request::CatchUp(CatchUp {
                    since_ms: now_ms().saturating_sub(3_600_000),
                    cursor,
                });
                let Ok(frame) = request.to_frame() else {
                    return;
                };
                let report = match net
                    .request(peer, frame)
                    .await
                    .map(|b| Response::from_frame(&b))
                {
                    Ok(Ok(Response::CatchUp(report))) => report,
                    Ok(_) => {
                        debug!(%peer, "peer answered catch-up with something else");
                        return;
                    }
                    Err(e) => {
                        debug!(%peer, error = %e, "catch-up failed");
                        return;
                    }
                };
                let bytes = report.frames.iter().map(|b| b.0.len() as u64).sum();
                let next = budget.next_page(&mut spent, bytes, cursor, report.next_cursor);
                if let Ok(mut ledger) = ledger.lock() {
                    ledger.record(peer, now_ms(), spent);
                }
                let frames = report.frames.into_iter().map(|b| b.0).collect();
                if tx
                    .send(Internal::CatchUp { from: peer, frames })
                    .await
                    .is_err()
                {
                    return;
                }
                match next {
                    Some(next) => cursor = next,
                    None => {
                        if report.next_cursor.is_some_and(|n| n > cursor) {
                            debug!(%peer, pages = spent.pages, bytes = spent.bytes, "catch-up budget spent");
                        }
                        return;
                    }
                }
            }
        });
    }
}
