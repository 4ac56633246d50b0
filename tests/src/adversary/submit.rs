//! Submission floods: submissions that are oversized, name a model nobody registered (refused
//! only after the entry peer asked its peers for it), or carry an X of the wrong size, sent
//! to every connected peer in bursts of many at once, a new burst as soon as the last is
//! answered.

use std::sync::{Arc, Mutex};

use libp2p::PeerId;
use starkscale_node::network::Client;
use starkscale_protocol::codec::Bytes;
use starkscale_protocol::ids::ModelId;
use starkscale_protocol::messages::{Request, Response, Submission, SubmitJob, SubmitResult};

use super::AdversaryStats;

/// Submissions sent to one peer at once.
const BURST: usize = 12;
/// Bytes of X an entry peer refuses without decoding (over the submission frame limit).
const OVERSIZED: usize = starkscale_protocol::codec::limits::SUBMIT_JOB + 1;

/// A submission request: X's bytes against `model`.
fn submission(model: ModelId, cols: u32, x: Vec<u8>) -> Vec<u8> {
    Request::SubmitJob(SubmitJob {
        submission: Submission::Infer {
            model,
            cols,
            x: Bytes(x),
        },
        deadline_ms: None,
    })
    .to_frame()
    .unwrap_or_default()
}

/// The flood's payloads: 4 MiB of X against a model nobody registered, a zero-column X, and
/// a 1-byte X.
fn payloads() -> Vec<Vec<u8>> {
    let unknown = ModelId([0x5a; 32]);
    vec![
        submission(unknown, 1, vec![1; 4 << 20]),
        submission(unknown, 0, Vec::new()),
        submission(ModelId([0xa5; 32]), 7, vec![1]),
    ]
}

/// How an entry peer answered one flood submission, for the stats.
fn outcome(answer: anyhow::Result<Vec<u8>>) -> &'static str {
    match answer.map(|bytes| Response::from_frame(&bytes)) {
        Ok(Ok(Response::SubmitResult(SubmitResult::Rejected { reason }))) => {
            if reason.contains("submissions per") {
                "refused: rate"
            } else if reason.starts_with("entry peer busy") {
                "refused: busy"
            } else {
                "refused: invalid"
            }
        }
        Ok(Ok(Response::SubmitResult(SubmitResult::Accepted { .. }))) => "accepted",
        Ok(_) => "other answer",
        Err(_) => "no answer",
    }
}

/// Floods every connected peer until the adversary's network stops: one oversized
/// submission to the first peer, then bursts of [`BURST`] submissions at once to each.
pub(super) async fn flood(net: Client, stats: Arc<Mutex<AdversaryStats>>) {
    let payloads = payloads();
    let mut oversized = Some(submission(ModelId([1; 32]), 1, vec![0; OVERSIZED]));
    let mut round = 0usize;
    loop {
        let Ok(info) = net.info().await else {
            return;
        };
        if info.connected.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        }
        let mut sends = tokio::task::JoinSet::new();
        for peer in info.connected {
            let frames = oversized
                .take()
                .into_iter()
                .chain((0..BURST).map(|i| payloads[(round + i) % payloads.len()].clone()));
            for frame in frames {
                sends.spawn(send(net.clone(), peer, frame, stats.clone()));
            }
        }
        sends.join_all().await;
        round += 1;
    }
}

/// Sends one submission and counts how it was answered.
async fn send(net: Client, peer: PeerId, frame: Vec<u8>, stats: Arc<Mutex<AdversaryStats>>) {
    if let Ok(mut s) = stats.lock() {
        s.submissions_sent += 1;
    }
    let answer = outcome(net.request(peer, frame).await);
    if let Ok(mut s) = stats.lock() {
        *s.submission_answers.entry(answer.into()).or_default() += 1;
    }
}
