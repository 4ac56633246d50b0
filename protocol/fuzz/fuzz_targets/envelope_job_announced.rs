//! Fuzzes the `JobAnnounced` decoders: the whole signed frame, and the bare payload body.
//!
//! Properties: no input panics; a body that decodes re-encodes to exactly the same bytes
//! (the encoding is canonical); a frame that decodes and verifies re-encodes to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use starkscale_protocol::codec::{decode_body, to_canonical_bytes};
use starkscale_protocol::messages::JobAnnounced;
use starkscale_protocol::{GossipPayload, NetworkId, SignedEnvelope};

fuzz_target!(|data: &[u8]| {
    let network = NetworkId::from_name("fuzz");
    if let Ok(env) = SignedEnvelope::<JobAnnounced>::from_frame(data, &network) {
        assert_eq!(env.to_frame().ok().as_deref(), Some(data));
    }
    if let Ok(body) = decode_body::<JobAnnounced>(<JobAnnounced as GossipPayload>::KIND, data) {
        assert_eq!(to_canonical_bytes(&body).ok().as_deref(), Some(data));
    }
});
