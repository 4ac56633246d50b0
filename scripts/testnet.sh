#!/usr/bin/env bash
# A local testnet of N node processes, each with its own data directory and log.
#   scripts/testnet.sh start [N]   start N nodes (default 4) under ./testnet/
#   scripts/testnet.sh addrs       print each node's full address
#   scripts/testnet.sh stop        stop them
set -euo pipefail
cd "$(dirname "$0")/.."
dir=./testnet
bin=./target/release/starkscale
case "${1:-}" in
start)
    n="${2:-4}"
    cargo build --release -p starkscale-node
    mkdir -p "$dir"
    boot=""
    for i in $(seq 0 $((n - 1))); do
        port=$((17100 + i))
        args=(node --listen "/ip4/127.0.0.1/tcp/$port" --data-dir "$dir/node$i")
        if [ -n "$boot" ]; then args+=(--bootstrap "$boot"); fi
        "$bin" "${args[@]}" >"$dir/node$i.log" 2>&1 &
        echo $! >"$dir/node$i.pid"
        for _ in $(seq 1 50); do
            addr=$(grep -o "/ip4/127.0.0.1/tcp/$port/p2p/[A-Za-z0-9]*" "$dir/node$i.log" | head -1 || true)
            [ -n "$addr" ] && break
            sleep 0.1
        done
        [ -z "$boot" ] && boot="$addr"
        echo "node$i $addr"
    done
    ;;
addrs)
    for log in "$dir"/node*.log; do grep -o "/ip4/[^ ]*/p2p/[A-Za-z0-9]*" "$log" | head -1; done
    ;;
stop)
    for pid in "$dir"/node*.pid; do kill "$(cat "$pid")" 2>/dev/null || true; rm -f "$pid"; done
    ;;
*)
    echo "usage: $0 start [N] | addrs | stop" >&2; exit 2
    ;;
esac
