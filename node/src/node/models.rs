//! Models at a node: registration and resumable upload of W, the models it knows (from
//! uploads and from the jobs it saw), persisted across restarts.

use std::collections::{BTreeSet, HashSet};

use libp2p::PeerId;
use starkscale_protocol::chunk::verify_chunk;
use starkscale_protocol::codec::{Bytes, WireMessage};
use starkscale_protocol::ids::ModelId;
use starkscale_protocol::messages::{
    ListModels, ModelList, ModelReply, ModelSummary, ModelUploadReply, RegisterModel, UploadChunk,
    MAX_MISSING_LISTED,
};
use starkscale_protocol::SignedModel;
use tracing::{info, warn};

use super::state::{KnownModel, Upload};
use super::{now_ms, Node};

/// Uploads in progress at once at one node; more are refused until one ends.
const MAX_UPLOADS: usize = 8;
/// Models fetched for submissions and not yet used by a job that a node keeps in memory.
const MAX_LEARNED_MODELS: usize = 64;
/// Uploads one peer may have in progress at once.
const MAX_UPLOADS_PER_PEER: usize = 2;
impl Node {
    /// Remembers a checked model (and persists it); `complete` when W is all stored here.
    pub(super) fn remember_model(&mut self, model: SignedModel, complete: bool) {
        let id = model.id();
        let entry = self.models.entry(id).or_insert_with(|| KnownModel {
            model: model.clone(),
            complete: false,
            jobs_seen: 0,
            proved_shards: Default::default(),
        });
        let was = entry.complete;
        entry.complete |= complete;
        if was && !complete {
            return;
        }
        let frame = RegisterModel { model }.to_frame();
        match frame {
            Ok(frame) => {
                if let Err(e) = self.db.put_model(id.as_bytes(), &frame, complete) {
                    warn!(model = %id, error = %e, "could not persist a model");
                }
            }
            Err(e) => warn!(model = %id, error = %e, "could not encode a model"),
        }
    }

    /// Keeps, in memory only, a model fetched from peers for a submission; at most
    /// [`MAX_LEARNED_MODELS`] such models not yet used by a job are held (a job's announcement
    /// persists its model as usual).
    pub(super) fn learn_model(&mut self, model: SignedModel) {
        let id = model.id();
        if self.models.contains_key(&id) {
            return;
        }
        let unused = self
            .models
            .values()
            .filter(|m| !m.complete && m.jobs_seen == 0)
            .count();
        if unused >= MAX_LEARNED_MODELS {
            return;
        }
        self.models.insert(
            id,
            KnownModel {
                model,
                complete: false,
                jobs_seen: 0,
                proved_shards: Default::default(),
            },
        );
    }

    /// Restores the models stored in the database.
    pub(super) fn restore_models(&mut self) -> anyhow::Result<()> {
        for (id, frame, complete) in self.db.models()? {
            let model = match RegisterModel::from_frame(&frame) {
                Ok(r) if r.model.id().0 == id => r.model,
                _ => {
                    warn!(model = %ModelId(id), "a stored model does not decode; skipped");
                    continue;
                }
            };
            if let Err(e) = model.validate(&self.limits) {
                warn!(model = %ModelId(id), error = %e, "a stored model does not validate; skipped");
                continue;
            }
            self.models.insert(
                ModelId(id),
                KnownModel {
                    model,
                    complete,
                    jobs_seen: 0,
                    proved_shards: Default::default(),
                },
            );
        }
        Ok(())
    }

    /// Chunks of `model`'s W not in the local store.
    fn missing_chunks(&self, model: &SignedModel) -> BTreeSet<u32> {
        model
            .manifest
            .w
            .chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| !self.store.has_chunk(c.id.as_bytes()))
            .map(|(i, _)| i as u32)
            .collect()
    }

    fn upload_reply(&mut self, id: ModelId) -> ModelUploadReply {
        let missing = self
            .uploads
            .get(&id)
            .map(|u| u.missing.clone())
            .unwrap_or_default();
        if missing.is_empty() {
            self.uploads.remove(&id);
            if let Some(known) = self.models.get(&id) {
                let model = known.model.clone();
                if !known.complete {
                    info!(model = %id, name = %model.manifest.name, "model registered: every chunk of W is here");
                }
                self.remember_model(model, true);
            }
            return ModelUploadReply::Complete { model: id };
        }
        ModelUploadReply::Missing {
            model: id,
            total_missing: missing.len() as u32,
            chunks: missing.into_iter().take(MAX_MISSING_LISTED).collect(),
        }
    }

    /// `RegisterModel`: checks the owner's signature and the manifest, then answers with the
    /// chunks still missing (none when W is already here: registering is idempotent, and an
    /// interrupted upload resumes where it stopped).
    pub(super) fn on_register_model(
        &mut self,
        peer: PeerId,
        req: RegisterModel,
    ) -> ModelUploadReply {
        let model = req.model;
        if let Err(e) = model.validate(&self.limits) {
            return ModelUploadReply::Rejected {
                reason: format!("the model manifest is not valid: {e}"),
            };
        }
        let id = model.id();
        self.expire_uploads(now_ms());
        let missing = self.missing_chunks(&model);
        if !missing.is_empty() && !self.uploads.contains_key(&id) {
            let by_peer = self.uploads.values().filter(|u| u.peer == peer).count();
            if by_peer >= MAX_UPLOADS_PER_PEER {
                return ModelUploadReply::Rejected {
                    reason: format!(
                        "this peer already has {MAX_UPLOADS_PER_PEER} model uploads in progress here: finish one first"
                    ),
                };
            }
            if self.uploads.len() >= MAX_UPLOADS {
                return ModelUploadReply::Rejected {
                    reason: format!(
                        "this node has {MAX_UPLOADS} model uploads in progress: retry in a few minutes or register through another peer"
                    ),
                };
            }
        }
        self.remember_model(model, false);
        self.track_upload(id, missing, peer);
        self.upload_reply(id)
    }

    /// `UploadChunk`: one chunk of W, checked against the model's chunk hash before it is
    /// stored.
    pub(super) fn on_upload_chunk(&mut self, _peer: PeerId, req: UploadChunk) -> ModelUploadReply {
        let UploadChunk {
            model: id,
            index,
            data: Bytes(data),
        } = req;
        let Some(known) = self.models.get(&id) else {
            return ModelUploadReply::Rejected {
                reason: format!(
                    "model {id} is not registered here: send its manifest (RegisterModel) first"
                ),
            };
        };
        let Some(chunk) = known.model.manifest.w.chunks.get(index as usize).copied() else {
            return ModelUploadReply::Rejected {
                reason: format!(
                    "model {id} has {} chunks; there is no chunk {index}",
                    known.model.manifest.w.chunks.len()
                ),
            };
        };
        // Chunks are stored only for an upload opened by RegisterModel (and so counted
        // against the upload caps), not for every model this node heard of.
        if !self.uploads.contains_key(&id) {
            return ModelUploadReply::Rejected {
                reason: format!(
                    "no upload of model {id} is open here (it expired or is complete): send its manifest (RegisterModel) again to resume"
                ),
            };
        }
        if let Err(e) = verify_chunk(index as usize, &chunk, &data) {
            return ModelUploadReply::Rejected {
                reason: format!("chunk {index} of model {id} does not match its hash: {e}"),
            };
        }
        let new = !self.store.has_chunk(&chunk.id.0);
        if let Err(e) = self.store.put_chunk(&data) {
            return ModelUploadReply::Rejected {
                reason: format!("this node could not store the chunk: {e}"),
            };
        }
        if let Some(upload) = self.uploads.get_mut(&id) {
            if new {
                upload.stored.push(chunk.id.0);
            }
            // Only progress renews the idle clock: a chunk sent again does not hold the slot.
            if upload.missing.remove(&index) {
                upload.last_ms = now_ms();
            }
        }
        self.upload_reply(id)
    }

    /// Records the chunks of `id` still to come from `peer` (none: the upload is over). An
    /// upload already open keeps its peer and idle clock: registering again does not renew
    /// it, only chunks do.
    fn track_upload(&mut self, id: ModelId, missing: BTreeSet<u32>, peer: PeerId) {
        if missing.is_empty() {
            self.uploads.remove(&id);
        } else if let Some(upload) = self.uploads.get_mut(&id) {
            upload.missing = missing;
        } else {
            let last_ms = now_ms();
            self.uploads.insert(
                id,
                Upload {
                    missing,
                    peer,
                    last_ms,
                    stored: Vec::new(),
                },
            );
        }
    }

    /// Removes uploads idle for the configured `upload_idle`: a model whose W never fully
    /// arrived and that no job uses is forgotten, with the chunks no other model or job
    /// references (so bad input does not leave half a model behind).
    pub(super) fn expire_uploads(&mut self, now: u64) {
        let idle = self.cfg.upload_idle.as_millis() as u64;
        let expired: Vec<ModelId> = self
            .uploads
            .iter()
            .filter(|(_, u)| now.saturating_sub(u.last_ms) >= idle)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let Some(upload) = self.uploads.remove(&id) else {
                continue;
            };
            let in_use = self.jobs.values().any(|r| r.manifest.model_id() == id);
            let complete = self.models.get(&id).is_some_and(|m| m.complete);
            if in_use || complete {
                continue;
            }
            if self.models.remove(&id).is_none() {
                continue;
            }
            let mut referenced: HashSet<[u8; 32]> = HashSet::new();
            for other in self.models.values() {
                referenced.extend(other.model.manifest.w.chunks.iter().map(|c| c.id.0));
            }
            for record in self.jobs.values() {
                referenced.extend(record.manifest.x.chunks.iter().map(|c| c.id.0));
                referenced.extend(record.manifest.w().chunks.iter().map(|c| c.id.0));
            }
            // Only chunks this upload wrote itself: a manifest may list chunks that were
            // here before it (another model's, a job's being prepared).
            let orphans: Vec<[u8; 32]> = upload
                .stored
                .iter()
                .copied()
                .filter(|c| !referenced.contains(c))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            if let Err(e) = self.store.remove_chunks(&orphans) {
                warn!(model = %id, error = %e, "could not remove an abandoned upload's chunks");
            }
            if let Err(e) = self.db.forget_model(id.as_bytes()) {
                warn!(model = %id, error = %e, "could not forget an abandoned model");
            }
            info!(model = %id, chunks = orphans.len(), "model upload abandoned: the model and its chunks are removed (register again to start over)");
        }
    }

    /// `GetModel`.
    pub(super) fn model_reply(&self, id: &ModelId) -> ModelReply {
        match self.models.get(id) {
            Some(known) => ModelReply::Found {
                model: known.model.clone(),
                complete: known.complete,
            },
            None => ModelReply::Unknown,
        }
    }

    /// `ListModels`.
    pub(super) fn model_list(&self, _req: ListModels) -> ModelList {
        let mut models: Vec<ModelSummary> = self
            .models
            .iter()
            .map(|(id, known)| {
                let m = &known.model.manifest;
                ModelSummary {
                    model: *id,
                    name: m.name.clone(),
                    owner: m.owner,
                    dims: (m.w.rows, m.w.cols),
                    shards: m.shard_keys.len() as u32,
                    complete: known.complete,
                }
            })
            .collect();
        models.sort_by_key(|m| m.model);
        models.truncate(10_000);
        ModelList { models }
    }

    /// A job named `model`: remember it and count the job.
    pub(super) fn model_used(&mut self, model: &SignedModel) {
        let id = model.id();
        if !self.models.contains_key(&id) {
            let complete = self.missing_chunks(model).is_empty();
            self.remember_model(model.clone(), complete);
        }
        if let Some(known) = self.models.get_mut(&id) {
            known.jobs_seen += 1;
        }
    }
}
