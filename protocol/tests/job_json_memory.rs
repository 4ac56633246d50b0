//! Peak memory of parsing a job JSON body far over the limits: proportional to what the
//! limits accept, not to the body (a generic JSON tree of the body took about 16 bytes of
//! memory per byte of `1,1,1,…`, gigabytes for a body at the submission limit). Measured as
//! the growth of the process's peak resident set (Linux: `/proc/self/clear_refs` resets it),
//! so the test needs no timing and no allocator hooks.

#![allow(clippy::unwrap_used, missing_docs)]

use starkscale_protocol::{JobLimits, JobSpec, JobSpecError};

const MIB: usize = 1 << 20;

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

/// How far the resident set grew above its size before `f`, at its peak while `f` ran.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    // "5" resets the peak resident set size to the current one.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_bytes("VmRSS:");
    let out = f();
    (out, status_bytes("VmHWM:").saturating_sub(before))
}

/// Parses `body` under `limits`, checks it is refused with an error containing `expected`
/// within 16 MiB of memory, and reports the figures.
fn refused_cheaply(body: &str, limits: &JobLimits, expected: &str) {
    let (err, peak) = peak_of(|| JobSpec::from_json(body, limits).map(|_| ()));
    let err: JobSpecError = err.unwrap_err();
    eprintln!(
        "{} MiB body: peak {} KiB ({err})",
        body.len() / MIB,
        peak >> 10
    );
    assert!(err.to_string().contains(expected), "{err}");
    assert!(peak < 16 * MIB, "peak {peak} bytes");
}

#[test]
fn a_body_over_the_limits_costs_memory_of_the_limits_not_of_the_body() {
    let limits = JobLimits {
        max_entries: 1 << 16,
        ..JobLimits::default()
    };
    // 64 MiB: one row of 32 Mi ones, then a vector.
    let cols = 32 * MIB;
    let mut body = String::with_capacity(2 * cols + 64);
    body.push_str(r#"{"matrix": [["#);
    for _ in 0..cols - 1 {
        body.push_str("1,");
    }
    body.push_str(r#"1]], "vector": [1]}"#);
    refused_cheaply(&body, &limits, "columns of matrix (k) is 33554432");

    // Many short rows, each accepted until the entry limit.
    let mut body = String::from(r#"{"matrix": ["#);
    for _ in 0..MIB {
        body.push_str("[1,2,3,4],");
    }
    body.push_str(r#"[1,2,3,4]], "vector": [1,2,3,4]}"#);
    refused_cheaply(&body, &limits, "entries of W (m·k) is 4194308");

    // An accepted job costs about its entries.
    let body = format!(
        r#"{{"matrix": [{}], "vector": [1,2,3,4]}}"#,
        vec!["[1,2,3,4]"; 1 << 14].join(",")
    );
    let (spec, peak) = peak_of(|| JobSpec::from_json(&body, &limits));
    assert_eq!(spec.unwrap().m(), 1 << 14);
    eprintln!("accepted 2^16 entries: peak {} KiB", peak >> 10);
    assert!(peak < 16 * MIB, "peak {peak} bytes");
}
