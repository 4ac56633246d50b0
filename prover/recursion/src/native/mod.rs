//! The native side: the native verifier run once with a recording challenger and a recording
//! Merkle scheme, giving the transcript the circuit replays and the full Merkle paths it
//! re-hashes.

pub mod openings;
pub mod replay;
