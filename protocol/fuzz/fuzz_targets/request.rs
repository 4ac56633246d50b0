//! Fuzzes the request decoder. Properties: no input panics; a frame that decodes re-encodes to
//! exactly the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use starkscale_protocol::messages::Request;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = Request::from_frame(data) {
        assert_eq!(request.to_frame().ok().as_deref(), Some(data));
    }
});
