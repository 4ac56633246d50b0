//! Submission floods: job JSON that is oversized, deeply nested, one huge array, or valid
//! but refused only after it is parsed (entries too large for exact proving), sent to every
//! connected peer in bursts of many at once, a new burst as soon as the last is answered.

use std::sync::{Arc, Mutex};

use libp2p::PeerId;
use starkscale_node::network::Client;
use starkscale_protocol::codec::Bytes;
use starkscale_protocol::messages::{Request, Response, Submission, SubmitJob, SubmitResult};

use super::AdversaryStats;

/// Submissions sent to one peer at once.
const BURST: usize = 12;
/// Bytes of JSON an entry peer refuses without parsing (its limit is 160 MiB).
const OVERSIZED: usize = (160 << 20) + 1;

/// A submission request carrying `json`.
fn submission(json: Vec<u8>) -> Vec<u8> {
    Request::SubmitJob(SubmitJob {
        submission: Submission::Json(Bytes(json)),
        deadline_ms: None,
    })
    .to_frame()
    .unwrap_or_default()
}

/// The flood's payloads: 128 KiB of nested arrays, a matrix with one row of 1 Mi entries,
/// and a valid 256 × 256 job whose entries are too large for an exact proof (refused only
/// once parsed and checked).
fn payloads() -> Vec<Vec<u8>> {
    let depth = 1 << 16;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let row = vec!["1"; 1 << 20].join(",");
    let huge_row = format!(r#"{{"matrix": [[{row}]], "vector": [1]}}"#);
    let big = i32::MAX.to_string();
    let big_row = format!("[{}]", vec![big.as_str(); 256].join(","));
    let unexact = format!(
        r#"{{"matrix": [{}], "vector": {big_row}}}"#,
        vec![big_row.as_str(); 256].join(",")
    );
    [nested, huge_row, unexact]
        .into_iter()
        .map(|json| submission(json.into_bytes()))
        .collect()
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
    let mut oversized = Some(submission(vec![b' '; OVERSIZED]));
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
