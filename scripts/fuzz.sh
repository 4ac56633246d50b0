#!/usr/bin/env bash
# Runs every protocol fuzz target with cargo-fuzz on nightly, for SECONDS each (default 60) or,
# with FUZZ_RUNS=N set, for exactly N executions each. Logs go to target/fuzz-logs/.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 0 [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../protocol/fuzz"
secs="${1:-60}"; shift || true
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzzing needs a nightly toolchain: rustup toolchain install nightly" >&2; exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2; cargo install cargo-fuzz --locked
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then mapfile -t targets < <(cargo +nightly fuzz list); fi
logs="../../target/fuzz-logs"; mkdir -p "$logs"
for t in "${targets[@]}"; do
    if [ -n "${FUZZ_RUNS:-}" ]; then
        echo "== $t ($FUZZ_RUNS executions)"
        limit=(-runs="$FUZZ_RUNS")
    else
        echo "== $t ($secs s)"
        limit=(-max_total_time="$secs")
    fi
    cargo +nightly fuzz run "$t" -- "${limit[@]}" -print_final_stats=1 2>&1 | tee "$logs/$t.log" | grep -E "^(Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY)" || true
    if ! grep -q "^Done" "$logs/$t.log"; then echo "$t did not finish cleanly; see $logs/$t.log" >&2; exit 1; fi
done
