#!/usr/bin/env bash
# Runs the prover benchmark and the 4-node network benchmark; prints their tables.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p starkscale-prover --bench shard "$@"
cargo bench -p starkscale-node --bench network
