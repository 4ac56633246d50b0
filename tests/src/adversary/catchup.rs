//! Catch-up floods: answers to `CatchUp` requests that never end (the cursor always grows),
//! with frames that are valid but useless, or invalid.

use ed25519_dalek::SigningKey;
use rand::RngCore;
use starkscale_protocol::codec::{Bytes, MessageKind};
use starkscale_protocol::ids::{NetworkId, PeerKey};
use starkscale_protocol::messages::{CatchUp, CatchUpReport, Response};
use starkscale_protocol::SignedEnvelope;

use super::{grind, proofs};

/// Frames in each page.
const FRAMES_PER_PAGE: usize = 64;

/// A catch-up page answering `req` that always offers one more: valid heartbeats of its own
/// (each accepted, so never penalised), or, with `invalid`, frames with a ShardClaimed header
/// and a random body.
pub(super) fn endless_page(
    req: &CatchUp,
    key: &SigningKey,
    network: &NetworkId,
    invalid: bool,
    rng: &mut impl RngCore,
) -> Option<Vec<u8>> {
    let mut frames = Vec::with_capacity(FRAMES_PER_PAGE);
    for _ in 0..FRAMES_PER_PAGE {
        let frame = if invalid {
            let mut frame = proofs::header(MessageKind::ShardClaimed);
            let mut body = vec![0u8; 512];
            rng.fill_bytes(&mut body);
            frame.extend_from_slice(&body);
            frame
        } else {
            let heartbeat = grind::heartbeat(PeerKey::from(key));
            SignedEnvelope::sign(key, network, heartbeat)
                .ok()?
                .to_frame()
                .ok()?
        };
        frames.push(Bytes(frame));
    }
    let report = CatchUpReport {
        frames,
        next_cursor: Some(req.cursor.saturating_add(1)),
    };
    Response::CatchUp(report).to_frame().ok()
}
