//! Models on real networks: weights registered once by their owner (from .npy and
//! .safetensors files), inferences through peers that never received the upload, proving keys
//! kept between inferences (no setup the second time, seen in the nodes' metrics), and
//! settlements that prove nothing about another model or another X.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use starkscale_node::client::{self, Outcome, SubmitOptions};
use starkscale_node::demo::LocalNet;
use starkscale_node::models;
use starkscale_node::tensor::{read_weights, WeightSource};
use starkscale_protocol::codec::Bytes;
use starkscale_protocol::ids::NetworkId;
use starkscale_protocol::messages::{
    ModelUploadReply, RegisterModel, Request, Response, UploadChunk,
};
use starkscale_protocol::{IntMatrix, ModelId};
use starkscale_tests::build_network;

const TIMEOUT: Duration = Duration::from_secs(180);

/// Deterministic small integers in `-bound..=bound` (a linear congruential generator).
fn entries(count: usize, seed: u64, bound: i64) -> Vec<i64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..count)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % (2 * bound as u64 + 1)) as i64 - bound
        })
        .collect()
}

/// A NumPy v1.0 .npy file of int8 entries with `shape`.
fn write_npy_i8(path: &Path, shape: &[usize], data: &[i64]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '|i1', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(data.iter().map(|v| *v as i8 as u8));
    std::fs::write(path, bytes).unwrap();
}

/// The sum of a counter over every node.
fn total(net: &LocalNet, counter: impl Fn(&starkscale_node::metrics::Metrics) -> u64) -> u64 {
    net.nodes.iter().map(|n| counter(&n.metrics)).sum()
}

fn setups(net: &LocalNet) -> u64 {
    total(net, |m| m.setups.get())
}

fn key_hits(net: &LocalNet) -> u64 {
    total(net, |m| m.proving_key_hits.get())
}

/// Reads W from `source`, builds the owner's model (setup on "the owner's machine", here)
/// and registers it through `via`.
async fn register(
    net: &LocalNet,
    via: usize,
    source: WeightSource,
    rows_per_shard: u32,
) -> (ModelId, IntMatrix) {
    let w = read_weights(&source).unwrap();
    let owner = SigningKey::from_bytes(&[7; 32]);
    let model = models::build("test layer", &w, rows_per_shard, &owner).unwrap();
    let id = client::register(&net.addrs[via], &model, &w, TIMEOUT, |_| {})
        .await
        .unwrap();
    assert_eq!(id, model.id());
    (id, w)
}

async fn infer(net: &LocalNet, via: usize, model: ModelId, x: &IntMatrix) -> Outcome {
    client::infer(
        &net.addrs[via],
        model,
        x,
        &SubmitOptions::new(TIMEOUT),
        |_| {},
    )
    .await
    .unwrap()
}

/// Infers `x` through `via` twice-checked: the verified result is W·X computed here.
async fn infer_exact(
    net: &LocalNet,
    via: usize,
    model: ModelId,
    w: &IntMatrix,
    x: &IntMatrix,
) -> Outcome {
    let out = infer(net, via, model, x).await;
    assert_eq!(out.model, model);
    assert_eq!(
        out.verified.result.data(),
        w.checked_mul(x).unwrap().data(),
        "the verified result is not W·X"
    );
    out
}

/// A model registered on node 0 of four serves inferences through nodes 2 and 3, which never
/// received its upload; the second inference runs no setup anywhere (every shard's proving
/// key was kept), and its settlement proves nothing about another model or another X.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registered_model_serves_inference_through_other_peers_and_keeps_its_keys() {
    let net = build_network(4, |_, _| {}).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (m, k) = (64usize, 48usize);
    let path = dir.path().join("w.npy");
    write_npy_i8(&path, &[m, k], &entries(m * k, 1, 127));
    let source = WeightSource::parse(path.to_str().unwrap(), false).unwrap();
    let (model, w) = register(&net, 0, source, 16).await;

    // An unknown model is a clear error, before anything runs.
    let x1 = IntMatrix::new(k, 1, entries(k, 2, 127)).unwrap();
    let unknown = ModelId([3; 32]);
    let err = client::infer(
        &net.addrs[1],
        unknown,
        &x1,
        &SubmitOptions::new(TIMEOUT),
        |_| {},
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("model") && err.contains("register"), "{err}");

    let first = infer_exact(&net, 2, model, &w, &x1).await;
    assert_eq!(first.verified.credits.len(), 4, "four shards of 16 rows");
    let (setups_before, hits_before) = (setups(&net), key_hits(&net));
    assert!(setups_before >= 4, "every shard was set up once to prove");

    // A second X through another peer: every worker already holds its shard's key.
    let x2 = IntMatrix::new(k, 3, entries(k * 3, 3, 127)).unwrap();
    let second = infer_exact(&net, 3, model, &w, &x2).await;
    assert_eq!(
        setups(&net),
        setups_before,
        "the second inference set up a shard again"
    );
    assert!(
        key_hits(&net) >= hits_before + 4,
        "every shard of the second inference should have used a kept proving key ({} → {})",
        hits_before,
        key_hits(&net)
    );

    // Every peer now knows the model (from the job announcements), with its owner's keys.
    let listed = client::list_models(&net.addrs[1], TIMEOUT).await.unwrap();
    assert!(listed.iter().any(|s| s.model == model), "{listed:?}");
    let (fetched, _) = client::fetch_model(&net.addrs[3], model, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(fetched.id(), model);

    // A peer that only heard of the model stores no chunk nobody opened an upload for.
    let session = client::Session::connect(&net.addrs[1]).await.unwrap();
    let stray = Request::UploadChunk(UploadChunk {
        model,
        index: 0,
        data: Bytes(vec![0; 64]),
    });
    let deadline = std::time::Instant::now() + TIMEOUT;
    match session.request(&stray, deadline).await.unwrap() {
        Response::ModelUpload(ModelUploadReply::Rejected { reason }) => {
            assert!(reason.contains("no upload"), "{reason}")
        }
        other => panic!("a chunk outside any upload was not refused: {other:?}"),
    }

    // The settlement checks against the model id alone (no W), and against nothing else.
    let network = NetworkId::from_name(starkscale_node::node::DEFAULT_NETWORK);
    client::verify_for_model(&second.settlement, &model, Some(&x2), &network).unwrap();
    client::verify_for_model(&second.settlement, &model, None, &network).unwrap();
    let other = client::verify_for_model(&second.settlement, &unknown, None, &network)
        .unwrap_err()
        .to_string();
    assert!(other.contains("not for model"), "{other}");
    let other_x = client::verify_for_model(&second.settlement, &model, Some(&x1), &network)
        .unwrap_err()
        .to_string();
    assert!(other_x.contains("X"), "{other_x}");
    net.shutdown().await;
}

/// A two-node network: a model read from a Hugging Face style .safetensors file (an I8 tensor
/// stored in × out, transposed on reading) is registered through the node that does not
/// prove it alone, inferred twice, and the second time no shard is set up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_safetensors_model_on_two_nodes_reuses_its_proving_keys() {
    let net = build_network(2, |_, _| {}).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (m, k) = (40usize, 24usize);
    // Stored in × out (k × m): the file's row i is W's column i.
    let stored = entries(m * k, 9, 100);
    let bytes: Vec<u8> = stored.iter().map(|v| *v as i8 as u8).collect();
    let path: PathBuf = dir.path().join("layer.safetensors");
    let view = TensorView::new(Dtype::I8, vec![k, m], &bytes).unwrap();
    let bias = [0u8; 4];
    let bias_view = TensorView::new(Dtype::I8, vec![4], &bias).unwrap();
    safetensors::serialize_to_file(
        vec![("mlp.weight", view), ("mlp.bias", bias_view)],
        None,
        &path,
    )
    .unwrap();
    let arg = format!("{}:mlp.weight", path.display());
    let (model, w) = register(&net, 1, WeightSource::parse(&arg, true).unwrap(), 10).await;
    assert_eq!((w.rows(), w.cols()), (m, k));
    assert_eq!(w.get(3, 5), Some(stored[5 * m + 3]), "W is the transpose");

    let x1 = IntMatrix::new(k, 1, entries(k, 10, 127)).unwrap();
    infer_exact(&net, 0, model, &w, &x1).await;
    let setups_before = setups(&net);
    let hits_before = key_hits(&net);
    let x2 = IntMatrix::new(k, 1, entries(k, 11, 127)).unwrap();
    infer_exact(&net, 1, model, &w, &x2).await;
    assert_eq!(
        setups(&net),
        setups_before,
        "the second inference set up a shard again"
    );
    assert!(key_hits(&net) >= hits_before + 4);
    net.shutdown().await;
}

/// int16 activations against int8 weights at k = 4096 overflow the field's exact bound
/// (127 · 32767 · 4096 ≈ 1.7·10¹⁰): the client splits X into two byte limbs, the network proves
/// both limb products, and the recombined result is the exact W·X, checked again offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn int16_activations_at_k_4096_give_the_exact_product() {
    let net = build_network(3, |_, _| {}).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (m, k) = (8usize, 4096usize);
    let mut weights = entries(m * k, 21, 127);
    weights[0] = 127;
    let path = dir.path().join("w.npy");
    write_npy_i8(&path, &[m, k], &weights);
    let source = WeightSource::parse(path.to_str().unwrap(), false).unwrap();
    let (model, w) = register(&net, 0, source, 4).await;
    let mut xs = entries(k * 2, 22, 32767);
    xs[0] = -32768;
    xs[1] = 32767;
    let x = IntMatrix::new(k, 2, xs).unwrap();
    assert!(
        starkscale_prover::check_exact(k, 127, x.max_abs()).is_err(),
        "the test needs an X that is not exact unsplit"
    );
    // Through a peer that has not seen the model: it learns it on the first submission.
    let out = infer_exact(&net, 1, model, &w, &x).await;
    assert_eq!(out.limbs, 2);
    assert_eq!(
        out.verified.settlement.x.cols(),
        4,
        "two limbs of two columns"
    );
    // Offline: the settlement checks against the caller's X (recombined), not another X.
    let network = NetworkId::from_name(starkscale_node::node::DEFAULT_NETWORK);
    let again = client::verify_for_model(&out.settlement, &model, Some(&x), &network).unwrap();
    assert_eq!(again.result, w.checked_mul(&x).unwrap());
    let mut other = x.data().to_vec();
    other[5] += 1;
    let other = IntMatrix::new(k, 2, other).unwrap();
    let err = client::verify_for_model(&out.settlement, &model, Some(&other), &network)
        .unwrap_err()
        .to_string();
    assert!(err.contains("another X"), "{err}");
    net.shutdown().await;
}

/// An upload that stops half-way is removed once idle: the model is forgotten and its chunks
/// leave the disk; registering again starts over and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_upload_leaves_no_half_model_behind() {
    let net = build_network(1, |_, cfg| cfg.upload_idle = Duration::from_secs(2))
        .await
        .unwrap();
    // 640 × 1024 entries of 4 bytes: three 1 MiB chunks.
    let (m, k) = (640usize, 1024usize);
    let w = IntMatrix::new(m, k, entries(m * k, 31, 127)).unwrap();
    let owner = SigningKey::from_bytes(&[8; 32]);
    let model = models::build("abandoned", &w, 320, &owner).unwrap();
    let id = model.id();
    let bytes =
        starkscale_protocol::job::entries_to_bytes(&w, starkscale_protocol::job::Operand::Matrix)
            .unwrap();
    let chunks = starkscale_protocol::chunk::split_into_chunks(&bytes);
    assert_eq!(chunks.len(), 3);
    let session = client::Session::connect(&net.addrs[0]).await.unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    let register = Request::RegisterModel(RegisterModel {
        model: model.clone(),
    });
    match session.request(&register, deadline).await.unwrap() {
        Response::ModelUpload(ModelUploadReply::Missing { total_missing, .. }) => {
            assert_eq!(total_missing, 3)
        }
        other => panic!("{other:?}"),
    }
    let first = Request::UploadChunk(UploadChunk {
        model: id,
        index: 0,
        data: Bytes(chunks[0].1.to_vec()),
    });
    match session.request(&first, deadline).await.unwrap() {
        Response::ModelUpload(ModelUploadReply::Missing { total_missing, .. }) => {
            assert_eq!(total_missing, 2)
        }
        other => panic!("{other:?}"),
    }
    let chunk_file = net
        .dir()
        .join("node0")
        .join("chunks")
        .join(chunks[0].0.id.to_string());
    assert!(chunk_file.exists(), "the uploaded chunk is stored");
    let listed = client::list_models(&net.addrs[0], TIMEOUT).await.unwrap();
    assert!(listed.iter().any(|s| s.model == id));

    // The uploader goes away; after the idle time the half model is gone.
    drop(session);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let listed = client::list_models(&net.addrs[0], TIMEOUT).await.unwrap();
    assert!(!listed.iter().any(|s| s.model == id), "{listed:?}");
    let err = client::fetch_model(&net.addrs[0], id, TIMEOUT)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not know"), "{err}");
    assert!(!chunk_file.exists(), "the abandoned chunk is still on disk");

    // Registering again starts over and completes.
    let again = client::register(&net.addrs[0], &model, &w, TIMEOUT, |_| {})
        .await
        .unwrap();
    assert_eq!(again, id);
    let (_, complete) = client::fetch_model(&net.addrs[0], id, TIMEOUT)
        .await
        .unwrap();
    assert!(complete);
    assert!(chunk_file.exists());
    net.shutdown().await;
}
