//! The client's side of models: registering (with a resumable upload), reading a model from
//! a peer, listing models, reading X, and checking a settlement against a model id.

use super::*;

/// Registers `model` (whose W is `w`) at the peer of `session`: sends the signed manifest,
/// then every chunk of W the peer is missing, so an interrupted upload resumes.
pub(super) async fn register_on(
    session: &Session,
    model: &SignedModel,
    w: &starkscale_protocol::IntMatrix,
    deadline: Instant,
    progress: &mut impl FnMut(Progress),
) -> anyhow::Result<ModelId> {
    let id = model.id();
    let w_bytes =
        starkscale_protocol::job::entries_to_bytes(w, starkscale_protocol::job::Operand::Matrix)?;
    let chunks: Vec<&[u8]> = w_bytes.chunks(starkscale_protocol::CHUNK_SIZE).collect();
    let total = chunks.len() as u32;
    let peer = format!("at {}", session.addr);
    let register = Request::RegisterModel(RegisterModel {
        model: model.clone(),
    });
    let mut reply = match session.request(&register, deadline).await? {
        Response::ModelUpload(reply) => reply,
        other => return Err(unexpected(&peer, &register, &other)),
    };
    let mut sent = 0u32;
    let mut missing_at_start = None;
    loop {
        let next = match reply {
            ModelUploadReply::Complete { model } if model == id => {
                progress(Progress::Registered(id));
                return Ok(id);
            }
            ModelUploadReply::Complete { model } => {
                anyhow::bail!("the peer {peer} completed model {model}, not {id}")
            }
            ModelUploadReply::Rejected { reason } => {
                anyhow::bail!("the peer {peer} refused the model: {reason}")
            }
            ModelUploadReply::Missing {
                chunks: listed,
                total_missing,
                ..
            } => {
                let missing = *missing_at_start.get_or_insert(total_missing);
                progress(Progress::Uploading {
                    sent,
                    missing,
                    total,
                });
                match listed.first() {
                    Some(index) => *index,
                    None => anyhow::bail!("the peer {peer} reports chunks missing but lists none"),
                }
            }
        };
        let data = chunks.get(next as usize).ok_or_else(|| {
            anyhow::anyhow!("the peer {peer} asks for chunk {next} of a model of {total} chunks")
        })?;
        let upload = Request::UploadChunk(UploadChunk {
            model: id,
            index: next,
            data: Bytes(data.to_vec()),
        });
        reply = match session.request(&upload, deadline).await? {
            Response::ModelUpload(reply) => reply,
            other => return Err(unexpected(&peer, &upload, &other)),
        };
        sent += 1;
    }
}

/// Registers `model` with W `w` through the peer at `addr` (uploading what it is missing)
/// and returns its id.
pub async fn register(
    addr: &Multiaddr,
    model: &SignedModel,
    w: &starkscale_protocol::IntMatrix,
    timeout: Duration,
    mut progress: impl FnMut(Progress),
) -> anyhow::Result<ModelId> {
    let session = Session::connect(addr).await?;
    register_on(&session, model, w, Instant::now() + timeout, &mut progress).await
}

/// Runs X against registered model `model` through the peer at `addr`, follows the job,
/// downloads the settlement and verifies it against the model id.
pub async fn infer(
    addr: &Multiaddr,
    model: ModelId,
    x: &starkscale_protocol::IntMatrix,
    options: &SubmitOptions,
    progress: impl FnMut(Progress),
) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let session = Session::connect(addr).await?;
    session.dial_more(&options.more_peers).await;
    infer_on(&session, model, x, options, start, progress).await
}

/// A model's signed manifest from the peer at `addr` (checked: signature and id).
pub async fn fetch_model(
    addr: &Multiaddr,
    model: ModelId,
    timeout: Duration,
) -> anyhow::Result<(SignedModel, bool)> {
    let session = Session::connect(addr).await?;
    match model_on(&session, model, Instant::now() + timeout).await? {
        Some(found) => Ok(found),
        None => anyhow::bail!(
            "the peer at {addr} does not know model {model}: check the id, or register the model"
        ),
    }
}

/// Model `model` from the peer of `session` (checked: signature, id, layout), with whether
/// the peer holds all of W; `None` if the peer does not know it.
pub(super) async fn model_on(
    session: &Session,
    model: ModelId,
    deadline: Instant,
) -> anyhow::Result<Option<(SignedModel, bool)>> {
    let request = Request::GetModel(GetModel { model });
    let peer = format!("at {}", session.addr);
    match session.request(&request, deadline).await? {
        Response::Model(ModelReply::Found {
            model: found,
            complete,
        }) => {
            if found.id() != model {
                anyhow::bail!("the peer {peer} answered with another model than {model}");
            }
            found
                .validate(&JobLimits::default())
                .map_err(|e| anyhow::anyhow!("the peer {peer} sent an invalid model: {e}"))?;
            Ok(Some((found, complete)))
        }
        Response::Model(ModelReply::Unknown) => Ok(None),
        other => Err(unexpected(&peer, &request, &other)),
    }
}

/// How many byte limbs X must be split into for its product with `model` to be exact
/// (1: not split); checks X's shape against the model.
pub(super) fn limbs_for(
    model: &SignedModel,
    x: &starkscale_protocol::IntMatrix,
) -> anyhow::Result<usize> {
    let k = model.manifest.w.cols as usize;
    if x.rows() != k {
        anyhow::bail!(
            "X has {} rows, but model {} is {} × {k}: X must be {k} × n",
            x.rows(),
            model.id(),
            model.manifest.w.rows
        );
    }
    let w_bound = model.weight_bound();
    crate::limbs::needed(k, w_bound, x)
}

/// The models the peer at `addr` knows.
pub async fn list_models(
    addr: &Multiaddr,
    timeout: Duration,
) -> anyhow::Result<Vec<starkscale_protocol::messages::ModelSummary>> {
    let session = Session::connect(addr).await?;
    let request = Request::ListModels(ListModels {});
    match session.request(&request, Instant::now() + timeout).await? {
        Response::ModelList(list) => Ok(list.models),
        other => Err(unexpected(&format!("at {addr}"), &request, &other)),
    }
}

/// Reads X for `infer`: a `.npy` integer array (1-D of length k, or 2-D k × n), or JSON — a
/// list of k integers, a list of k rows, or `{"vector": […]}` / `{"rhs": [[…]]}`.
pub fn read_rhs(path: &std::path::Path) -> anyhow::Result<starkscale_protocol::IntMatrix> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read X from {name}"))?;
    if name.to_ascii_lowercase().ends_with(".npy") {
        return crate::npy::read_matrix(&bytes, &name);
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{name} is neither a .npy file nor JSON"))?;
    let value = match value {
        serde_json::Value::Object(mut map) => match (map.remove("vector"), map.remove("rhs")) {
            (Some(v), None) | (None, Some(v)) => v,
            _ => anyhow::bail!("{name}: a JSON object for X has one key, \"vector\" or \"rhs\""),
        },
        other => other,
    };
    let int = |v: &serde_json::Value| {
        v.as_i64()
            .ok_or_else(|| anyhow::anyhow!("{name}: X holds {v}, not an integer: quantise first"))
    };
    let serde_json::Value::Array(items) = value else {
        anyhow::bail!("{name}: X must be a list of integers or a list of rows");
    };
    if items.iter().all(|v| v.is_array()) && !items.is_empty() {
        let cols = items[0].as_array().map_or(0, |r| r.len());
        let mut data = Vec::with_capacity(items.len() * cols);
        for (i, row) in items.iter().enumerate() {
            let row = row.as_array().map_or(&[][..], |r| r.as_slice());
            if row.len() != cols {
                anyhow::bail!(
                    "{name}: row {i} of X has {} entries, row 0 has {cols}",
                    row.len()
                );
            }
            for v in row {
                data.push(int(v)?);
            }
        }
        Ok(starkscale_protocol::IntMatrix::new(
            items.len(),
            cols,
            data,
        )?)
    } else {
        let data = items.iter().map(int).collect::<anyhow::Result<Vec<_>>>()?;
        Ok(starkscale_protocol::IntMatrix::new(data.len(), 1, data)?)
    }
}

/// Verifies a settlement made on `network` for model `model` (every proof against the
/// model's keys, the signatures, and X when given): what a user who pins a model id checks.
/// No setup and no W.
pub fn verify_for_model(
    settlement: &[u8],
    model: &ModelId,
    x: Option<&starkscale_protocol::IntMatrix>,
    network: &NetworkId,
) -> anyhow::Result<VerifiedSettlement> {
    let mut verified = verify_on(settlement, network)?;
    let found = verified.settlement.manifest.model_id();
    if found != *model {
        anyhow::bail!(
            "this settlement is for model {found}, not for model {model}: it proves nothing about the model you named"
        );
    }
    if let Some(x) = x {
        let proven = &verified.settlement.x;
        if proven != x {
            // X may have been split into byte limbs (see `limbs`): then the settlement's X is
            // exactly the split of this X, and the result is recombined.
            let n = x.cols();
            let limbs = if n > 0 && proven.cols() % n == 0 {
                proven.cols() / n
            } else {
                0
            };
            if !(2..=crate::limbs::MAX_LIMBS).contains(&limbs)
                || proven.rows() != x.rows()
                || crate::limbs::split(x, limbs) != *proven
            {
                anyhow::bail!("this settlement was computed for another X than this job's");
            }
            verified.result = crate::limbs::join(&verified.result, n, limbs)?;
        }
    }
    Ok(verified)
}
