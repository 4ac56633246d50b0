//! Test utilities: N-node networks in one process.
