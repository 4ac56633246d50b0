//! Fuzzes gossip validation end to end (header, kind dispatch, envelope, rules) against a peer
//! that knows no jobs. Property: no input panics, and nothing unsigned is ever accepted.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use starkscale_protocol::lease::Freshness;
use starkscale_protocol::validate::{validate_any, GossipContext};
use starkscale_protocol::{JobId, JobLimits, JobRecord, NetworkId, SettlePolicy};

fuzz_target!(|data: &[u8]| {
    let jobs: BTreeMap<JobId, JobRecord> = BTreeMap::new();
    let ctx = GossipContext {
        network: NetworkId::from_name("fuzz"),
        now_ms: 1_700_000_000_000,
        freshness: Freshness::Live,
        limits: JobLimits::default(),
        max_skew_ms: 30_000,
        settle: SettlePolicy::default(),
        jobs: &jobs,
        aggregators: &[],
        started_ms: 0,
    };
    assert!(!validate_any(data, &ctx).is_accept());
});
