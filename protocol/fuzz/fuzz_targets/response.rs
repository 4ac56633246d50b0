//! Fuzzes the response decoder. Properties: no input panics; a frame that decodes re-encodes
//! to exactly the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use starkscale_protocol::messages::Response;

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = Response::from_frame(data) {
        assert_eq!(response.to_frame().ok().as_deref(), Some(data));
    }
});
