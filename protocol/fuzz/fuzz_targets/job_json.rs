//! Fuzzes the job JSON parser with small limits. Properties: no input panics; an accepted job
//! survives a JSON round trip unchanged, and its reference product never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use starkscale_protocol::{JobLimits, JobSpec};

fuzz_target!(|data: &[u8]| {
    let limits = JobLimits {
        max_rows: 64,
        max_k: 64,
        max_n: 16,
        max_entries: 4096,
        max_json_bytes: 1 << 16,
        ..JobLimits::default()
    };
    if let Ok(spec) = JobSpec::from_json_slice(data, &limits) {
        let again = JobSpec::from_json(&spec.to_json(), &limits);
        assert_eq!(again.as_ref().ok(), Some(&spec));
        let _ = spec.reference_product();
    }
});
