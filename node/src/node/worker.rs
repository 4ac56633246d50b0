//! Worker: claims open shards within capacity, fetches their chunks, checks the weight
//! commitment, proves on the blocking pool, signs and publishes the proof.

use std::ops::Range;

use ed25519_dalek::SigningKey;
use libp2p::PeerId;
use starkscale_protocol::chunk::{verify_chunk, ChunkRef, CHUNK_SIZE};
use starkscale_protocol::codec::Bytes;
use starkscale_protocol::ids::{JobId, NetworkId, PeerKey};
use starkscale_protocol::lease::{claim_rank, ClaimOutcome, Freshness};
use starkscale_protocol::manifest::Manifest;
use starkscale_protocol::matrix::IntMatrix;
use starkscale_protocol::messages::{
    topics, ChunkResponse, FetchChunk, Request, Response, ShardClaimed, ShardProved,
};
use starkscale_protocol::SignedEnvelope;
use tracing::{info, warn};

use super::{
    now_ms, Internal, Node, CLAIM_SETTLE_MS, KEPT_KEY_EXTRA_CLAIMS, KEY_HOLDER_HEAD_START_MS,
};
use crate::convert::{shard_verifying_key, to_protocol};
use crate::metrics::Metrics;
use crate::network::Client;
use crate::store::Store;

/// The libp2p peer id of an ed25519 protocol key.
pub fn peer_id_of(key: &PeerKey) -> Option<PeerId> {
    let pk = libp2p::identity::ed25519::PublicKey::try_from_bytes(key.as_bytes()).ok()?;
    Some(libp2p::identity::PublicKey::from(pk).to_peer_id())
}

/// Peers to fetch a job's chunks from: its entry peer first, then every connected peer.
async fn source_peers(net: &Client, manifest: &Manifest, me: PeerId) -> Vec<PeerId> {
    let mut peers: Vec<PeerId> = peer_id_of(&manifest.entry).into_iter().collect();
    if let Ok(info) = net.info().await {
        for p in info.connected {
            if !peers.contains(&p) {
                peers.push(p);
            }
        }
    }
    peers.retain(|p| *p != me);
    peers
}

/// Decodes canonical matrix bytes (4-byte little-endian signed entries, row-major).
pub fn bytes_to_matrix(rows: usize, cols: usize, bytes: &[u8]) -> anyhow::Result<IntMatrix> {
    if bytes.len() != rows * cols * 4 {
        anyhow::bail!("{} bytes for a {rows} × {cols} matrix", bytes.len());
    }
    let data = bytes
        .chunks_exact(4)
        .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    Ok(IntMatrix::new(rows, cols, data)?)
}

/// Fetches chunks (local store first, then `peers` in order), checking each against its
/// hash, and returns their concatenation.
pub async fn fetch_chunks(
    net: &Client,
    store: &Store,
    peers: &[PeerId],
    chunks: &[(usize, ChunkRef)],
    metrics: &Metrics,
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for (index, chunk) in chunks {
        if let Some(bytes) = store.get_chunk(chunk.id.as_bytes()) {
            out.extend_from_slice(&bytes);
            continue;
        }
        let mut last_error = anyhow::anyhow!("no peer to fetch chunk {index} from");
        let mut found = None;
        for peer in peers {
            let request = Request::FetchChunk(FetchChunk { id: chunk.id }).to_frame()?;
            match net.request(*peer, request).await {
                Ok(bytes) => match Response::from_frame(&bytes) {
                    Ok(Response::Chunk(ChunkResponse::Found(Bytes(data)))) => {
                        match verify_chunk(*index, chunk, &data) {
                            Ok(()) => {
                                found = Some(data);
                                break;
                            }
                            Err(e) => {
                                last_error = anyhow::anyhow!("peer {peer} sent a bad chunk: {e}")
                            }
                        }
                    }
                    Ok(_) => {
                        last_error = anyhow::anyhow!("peer {peer} does not have chunk {index}")
                    }
                    Err(e) => last_error = anyhow::anyhow!("peer {peer}: {e}"),
                },
                Err(e) => last_error = e,
            }
        }
        let data = found.ok_or(last_error)?;
        metrics.chunk_bytes_fetched.inc_by(data.len() as u64);
        store.put_chunk(&data)?;
        out.extend_from_slice(&data);
    }
    Ok(out)
}

/// The chunks covering byte range `bytes` of a blob, with the offset of the range in the
/// first chunk.
fn chunks_for(chunks: &[ChunkRef], bytes: Range<u64>) -> (Vec<(usize, ChunkRef)>, usize) {
    if bytes.is_empty() {
        return (Vec::new(), 0);
    }
    let size = CHUNK_SIZE as u64;
    let first = (bytes.start / size) as usize;
    let last = ((bytes.end - 1) / size) as usize;
    let list = (first..=last.min(chunks.len().saturating_sub(1)))
        .map(|i| (i, chunks[i]))
        .collect();
    (list, (bytes.start - first as u64 * size) as usize)
}

/// Fetches X of a job.
pub async fn fetch_x(
    net: &Client,
    store: &Store,
    peers: &[PeerId],
    manifest: &Manifest,
    metrics: &Metrics,
) -> anyhow::Result<IntMatrix> {
    let list: Vec<_> = manifest.x.chunks.iter().copied().enumerate().collect();
    let bytes = fetch_chunks(net, store, peers, &list, metrics).await?;
    bytes_to_matrix(manifest.x.rows as usize, manifest.x.cols as usize, &bytes)
}

/// Fetches rows `rows` of W of a job.
pub async fn fetch_w_rows(
    net: &Client,
    store: &Store,
    peers: &[PeerId],
    manifest: &Manifest,
    rows: Range<u32>,
    metrics: &Metrics,
) -> anyhow::Result<IntMatrix> {
    let row_bytes = u64::from(manifest.w().cols) * 4;
    let range = u64::from(rows.start) * row_bytes..u64::from(rows.end) * row_bytes;
    let (list, offset) = chunks_for(&manifest.w().chunks, range.clone());
    let bytes = fetch_chunks(net, store, peers, &list, metrics).await?;
    let len = (range.end - range.start) as usize;
    let slice = bytes
        .get(offset..offset + len)
        .ok_or_else(|| anyhow::anyhow!("chunks do not cover rows {rows:?}"))?;
    bytes_to_matrix(rows.len(), manifest.w().cols as usize, slice)
}

impl Node {
    /// Starts fetching X of `job` unless it is here or on its way.
    pub(super) fn fetch_x(&mut self, job: JobId) {
        let Some(local) = self.local.get_mut(&job) else {
            return;
        };
        if local.x.is_some() || local.x_fetching {
            return;
        }
        local.x_fetching = true;
        let Some(record) = self.jobs.get(&job) else {
            return;
        };
        let manifest = record.manifest.clone();
        let (net, store, tx) = (self.net.clone(), self.store.clone(), self.internal.clone());
        let me = self.net.peer_id();
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let peers = source_peers(&net, &manifest, me).await;
            let x = fetch_x(&net, &store, &peers, &manifest, &metrics)
                .await
                .map_err(|e| e.to_string());
            let _ = tx.send(Internal::XFetched { job, x }).await;
        });
    }

    pub(super) async fn on_x_fetched(&mut self, job: JobId, x: Result<IntMatrix, String>) {
        let Some(local) = self.local.get_mut(&job) else {
            return;
        };
        local.x_fetching = false;
        match x {
            Ok(x) => {
                local.x = Some(x);
                local.x_failures = 0;
                // A data-unavailability report of ours is moot now: this node may settle.
                local.reported_failure = false;
                let waiting = std::mem::take(&mut local.waiting_for_x);
                for (frame, origin) in waiting {
                    self.on_gossip_frame(frame, origin).await;
                }
            }
            Err(e) => {
                let now = now_ms();
                if local.x_failures == 0 {
                    local.x_first_failure_ms = now;
                }
                local.x_failures += 1;
                let backoff = 1_000 * u64::from(local.x_failures.min(5));
                local.x_retry_at_ms = now + backoff;
                warn!(%job, error = %e, attempts = local.x_failures, "could not fetch X; will retry");
            }
        }
    }

    /// Retries fetching X of open jobs whose last attempt failed, after a backoff.
    pub(super) fn retry_x_fetches(&mut self) {
        let now = now_ms();
        let due: Vec<JobId> = self
            .local
            .iter()
            .filter(|(job, l)| {
                l.x.is_none()
                    && !l.x_fetching
                    && l.x_failures > 0
                    && l.x_retry_at_ms <= now
                    && self
                        .jobs
                        .get(job)
                        .is_some_and(|r| !r.status(now, &self.settle).is_terminal())
            })
            .map(|(job, _)| *job)
            .collect();
        for job in due {
            self.fetch_x(job);
        }
    }

    /// Claims open shards up to capacity. Shards this node still holds a lease on (after a
    /// restart) are resumed first.
    pub(super) async fn claim_open_shards(&mut self) {
        let now = now_ms();
        for (job, record) in &self.jobs {
            if record.outcome.is_some() {
                continue;
            }
            for range in record.plan.shards() {
                let key = (*job, range.index);
                if record.leases.holder(range.index, now) == Some(self.me)
                    && !self.working.contains(&key)
                    && !self.pending_work.contains_key(&key)
                    && !self.failed.contains(&key)
                    && !self.proved.contains(&key)
                {
                    info!(job = %job, shard = range.index, "resuming a shard this node holds");
                    self.pending_work.insert(key, now);
                }
            }
        }
        let mut active = (self.working.len() + self.pending_work.len()) as u32;
        // Shards whose proving key this node kept cost a proof only (no fetch of W, no
        // setup): it takes up to KEPT_KEY_EXTRA_CLAIMS of them beyond its capacity, so a
        // peer that proved two shards of a model last time proves both again.
        if active >= self.cfg.capacity + KEPT_KEY_EXTRA_CLAIMS {
            return;
        }
        let mut claims = Vec::new();
        let mut jobs: Vec<_> = self.jobs.iter().collect();
        jobs.sort_by_key(|(_, r)| (r.manifest.created_ms, r.manifest.job));
        for (job, record) in jobs {
            if record.status(now, &self.settle).is_terminal() {
                continue;
            }
            let mut open = record.leases.open_shards(now);
            open.sort_by_key(|s| claim_rank(job, *s, &self.me));
            // Shards go first to peers that kept their proving key: a peer without the key
            // leaves a shard proved in an earlier job of the model to them for a head start.
            let model = record.manifest.model_id();
            let early = now < record.manifest.created_ms + KEY_HOLDER_HEAD_START_MS;
            let proved_before = |shard: u32| {
                self.models
                    .get(&model)
                    .is_some_and(|m| m.proved_shards.contains(&shard))
            };
            let held: Vec<bool> = match self.keys.lock() {
                Ok(cache) => open.iter().map(|s| cache.holds(&model, *s)).collect(),
                Err(_) => vec![false; open.len()],
            };
            for (shard, held) in open.into_iter().zip(held) {
                let room = if held {
                    self.cfg.capacity + KEPT_KEY_EXTRA_CLAIMS
                } else {
                    self.cfg.capacity
                };
                if active >= room {
                    continue;
                }
                if early && !held && proved_before(shard) {
                    continue;
                }
                if self.pending_work.contains_key(&(*job, shard))
                    || self.working.contains(&(*job, shard))
                {
                    continue;
                }
                let claim = record.leases.new_claim(
                    shard,
                    self.me,
                    now,
                    self.cfg.lease.as_millis() as u64,
                    false,
                );
                // A claim this node would lose (say it let a lease on the shard lapse) is
                // not worth sending.
                if !matches!(
                    record.leases.check_claim(&claim, now, Freshness::Live),
                    Ok(ClaimOutcome::Won { .. })
                ) {
                    continue;
                }
                claims.push(ShardClaimed {
                    job: *job,
                    shard,
                    claimed_at_ms: claim.claimed_at_ms,
                    lease_expires_ms: claim.lease_expires_ms,
                    claimer: self.me,
                    backup: false,
                });
                active += 1;
            }
        }
        for claim in claims {
            match SignedEnvelope::sign(&self.key, &self.network, claim).and_then(|e| {
                e.to_frame()
                    .map_err(starkscale_protocol::EnvelopeError::Frame)
            }) {
                Ok(frame) => {
                    self.pending_work
                        .insert((claim.job, claim.shard), now + CLAIM_SETTLE_MS);
                    self.publish(topics::SHARD_CLAIMED, frame).await;
                }
                Err(e) => warn!(error = %e, "could not sign a claim"),
            }
        }
    }

    /// Starts work on claimed shards whose settle time has passed and that we still hold.
    pub(super) fn start_due_work(&mut self) {
        let now = now_ms();
        let due: Vec<_> = self
            .pending_work
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| *k)
            .collect();
        for (job, shard) in due {
            self.pending_work.remove(&(job, shard));
            let Some(record) = self.jobs.get(&job) else {
                continue;
            };
            if record.leases.holder(shard, now) != Some(self.me) {
                info!(%job, shard, "lost the claim race; not proving");
                continue;
            }
            let Some(range) = record.plan.shard(shard) else {
                continue;
            };
            self.working.insert((job, shard));
            let manifest = record.manifest.clone();
            let (net, store, tx) = (self.net.clone(), self.store.clone(), self.internal.clone());
            let (key, network) = (self.key.clone(), self.network);
            let me = self.net.peer_id();
            let metrics = self.metrics.clone();
            // X is usually fetched already (on announcement): do not read it again.
            let known_x = self.local.get(&job).and_then(|l| l.x.clone());
            let model = manifest.model_id();
            let kept = self.keys.lock().ok().and_then(|mut c| c.get(&model, shard));
            let keys = self.keys.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let peers = source_peers(&net, &manifest, me).await;
                let frame = async {
                    // A proving key kept from an earlier job of this model holds the shard's
                    // weights: no fetch of W and no setup.
                    let pk = match kept {
                        Some(pk) => {
                            metrics.proving_key_hits.inc();
                            Some(pk)
                        }
                        None => None,
                    };
                    let w = match pk {
                        Some(_) => None,
                        None => Some(
                            fetch_w_rows(
                                &net,
                                &store,
                                &peers,
                                &manifest,
                                range.rows.clone(),
                                &metrics,
                            )
                            .await?,
                        ),
                    };
                    let x = match known_x {
                        Some(x) => x,
                        None => fetch_x(&net, &store, &peers, &manifest, &metrics).await?,
                    };
                    tokio::task::spawn_blocking(move || {
                        let pk = match (pk, w) {
                            (Some(pk), _) => pk,
                            (None, Some(w)) => {
                                let pk = std::sync::Arc::new(setup_shard(&manifest, shard, &w)?);
                                metrics.setups.inc();
                                if let Ok(mut cache) = keys.lock() {
                                    cache.insert(model, shard, pk.clone());
                                    metrics.proving_key_bytes.set(cache.used() as i64);
                                }
                                pk
                            }
                            (None, None) => anyhow::bail!("no weights and no proving key"),
                        };
                        prove_shard(&key, &network, &manifest, shard, &pk, &x)
                    })
                    .await?
                }
                .await
                .map_err(|e: anyhow::Error| e.to_string());
                let elapsed = started.elapsed();
                let _ = tx
                    .send(Internal::WorkDone {
                        job,
                        shard,
                        frame,
                        elapsed,
                    })
                    .await;
            });
        }
    }

    pub(super) async fn on_work_done(
        &mut self,
        job: JobId,
        shard: u32,
        frame: Result<Vec<u8>, String>,
        elapsed: std::time::Duration,
    ) {
        self.working.remove(&(job, shard));
        match frame {
            Ok(frame) => {
                info!(%job, shard, "shard proved; publishing");
                self.metrics.proofs_made.inc();
                self.proved.insert((job, shard));
                crate::metrics::Metrics::observe(&self.metrics.prove_seconds, elapsed);
                self.publish(topics::SHARD_PROVED, frame).await;
            }
            Err(e) => {
                warn!(%job, shard, error = %e, "could not prove shard");
                self.failed.insert((job, shard));
            }
        }
    }
}

/// Sets up a fetched weight shard and checks its commitment against the model's key for
/// the shard. CPU-bound: runs on the blocking pool.
pub fn setup_shard(
    manifest: &Manifest,
    shard: u32,
    w: &IntMatrix,
) -> anyhow::Result<starkscale_prover::ProvingKey> {
    let w = crate::convert::to_prover(w)?;
    let pk = starkscale_prover::setup(&w)?;
    let expected = shard_verifying_key(manifest, shard, w.rows() as u32, manifest.w().cols)?;
    if pk.verifying_key() != &expected {
        anyhow::bail!(
            "the weights fetched for shard {shard} of model {} do not match its owner's commitment",
            manifest.model_id()
        );
    }
    Ok(pk)
}

/// Sets up shard `shard` from its rows of W (checked against the model's key), proves and
/// signs. CPU-bound.
pub fn prove_rows(
    key: &SigningKey,
    network: &NetworkId,
    manifest: &Manifest,
    shard: u32,
    w: &IntMatrix,
    x: &IntMatrix,
) -> anyhow::Result<Vec<u8>> {
    let pk = setup_shard(manifest, shard, w)?;
    prove_shard(key, network, manifest, shard, &pk, x)
}

/// Proves shard `shard` of a job with its proving key (checked against the model's key) and
/// signs the proof. CPU-bound: runs on the blocking pool.
pub fn prove_shard(
    key: &SigningKey,
    network: &NetworkId,
    manifest: &Manifest,
    shard: u32,
    pk: &starkscale_prover::ProvingKey,
    x: &IntMatrix,
) -> anyhow::Result<Vec<u8>> {
    let x = crate::convert::to_prover(x)?;
    let expected =
        shard_verifying_key(manifest, shard, pk.verifying_key().rows, manifest.w().cols)?;
    if pk.verifying_key() != &expected {
        anyhow::bail!("the proving key kept for shard {shard} is not the model's key");
    }
    let me = PeerKey::from(key);
    let binding = starkscale_prover::Binding {
        job_id: *manifest.job.as_bytes(),
        shard_index: shard,
        worker: *me.as_bytes(),
    };
    let proven = starkscale_prover::prove(pk, &x, &binding)?;
    let msg = ShardProved {
        job: manifest.job,
        shard,
        worker: me,
        config_id: starkscale_prover::CONFIG_ID,
        proved_at_ms: now_ms(),
        output: to_protocol(&proven.output)?,
        commitment: expected.commitment_bytes(),
        proof: Bytes(proven.proof.to_bytes()),
    };
    Ok(SignedEnvelope::sign(key, network, msg)?.to_frame()?)
}
