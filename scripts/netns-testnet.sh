#!/usr/bin/env bash
# N hosts in Linux network namespaces on one bridge, each running a starkscale node, with a
# bandwidth limit (tc tbf) and random packet loss (nftables numgen) on every host; then a job
# is submitted from the last host and timed. Everything is removed on exit. Needs root.
#
#   scripts/netns-testnet.sh [HOSTS] [LOSS_PERCENT] [ROWS] [COLS] [RATE]
#   defaults:                  5       2              1024   1024   100mbit
set -euo pipefail
cd "$(dirname "$0")/.."

hosts="${1:-5}"; loss="${2:-2}"; rows="${3:-1024}"; cols="${4:-1024}"; rate="${5:-100mbit}"
prefix=ssnet; bridge=ssbr0; subnet=10.77.0
bin="$PWD/target/release/starkscale"
work="$(mktemp -d /tmp/starkscale-netns.XXXXXX)"

if [ "$(id -u)" -ne 0 ]; then echo "run as root (network namespaces need it)" >&2; exit 1; fi
for tool in ip tc; do command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install iproute2)" >&2; exit 1; }; done
if ! command -v nft >/dev/null; then
    echo "installing nftables for packet loss" >&2
    (apt-get update -qq && apt-get install -y -qq nftables) >/dev/null
fi
[ -x "$bin" ] || cargo build --release -p starkscale-node

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for i in $(seq 0 $((hosts - 1))); do ip netns del "$prefix$i" 2>/dev/null || true; done
    ip link del "$bridge" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Leftovers of an interrupted run (veths vanish asynchronously after their netns is deleted).
for i in $(seq 0 $((hosts - 1))); do
    ip netns del "$prefix$i" 2>/dev/null || true
    ip link del "ssv$i" 2>/dev/null || true
done
ip link del "$bridge" 2>/dev/null || true
for _ in $(seq 1 50); do
    ip link show "ssv0" >/dev/null 2>&1 || ip link show "$bridge" >/dev/null 2>&1 || break
    sleep 0.1
done

ip link add "$bridge" type bridge
ip addr add "$subnet.254/24" dev "$bridge"
ip link set "$bridge" up
for i in $(seq 0 $((hosts - 1))); do
    ns="$prefix$i"
    ip netns add "$ns"
    ip link add "ssv$i" type veth peer name eth0 netns "$ns"
    ip link set "ssv$i" master "$bridge" up
    ip netns exec "$ns" ip addr add "$subnet.$((i + 1))/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip link set lo up
    # Bandwidth: token bucket on the host's egress.
    ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$rate" burst 256kb latency 50ms
    # Loss: drop LOSS% of incoming packets at random.
    ip netns exec "$ns" nft add table inet ssloss
    ip netns exec "$ns" nft add chain inet ssloss input '{ type filter hook input priority 0; policy accept; }'
    ip netns exec "$ns" nft add rule inet ssloss input numgen random mod 100 '<' "$loss" counter drop
done
echo "== $hosts hosts on $subnet.0/24, $rate each, ${loss}% packet loss"

cat >"$work/node.toml" <<TOML
shard_entries = 262144
TOML
boot=""
for i in $(seq 0 $((hosts - 1))); do
    ns="$prefix$i"; addr="/ip4/$subnet.$((i + 1))/tcp/7070"
    args=(node --config "$work/node.toml" --listen "$addr" --data-dir "$work/h$i")
    [ -n "$boot" ] && args+=(--bootstrap "$boot")
    ip netns exec "$ns" "$bin" "${args[@]}" >"$work/h$i.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do
        full=$(grep -o "$addr/p2p/[A-Za-z0-9]*" "$work/h$i.log" | head -1 || true)
        [ -n "$full" ] && break
        sleep 0.1
    done
    [ -n "$full" ] || { echo "host $i did not start:"; cat "$work/h$i.log"; exit 1; }
    [ -z "$boot" ] && boot="$full"
    echo "host $i: $full"
done
sleep 3  # mesh formation and aggregator heartbeats

"$bin" example-job --rows "$rows" --cols "$cols" --seed 7 >"$work/job.json"
last=$((hosts - 1))
echo "== submitting a ${rows}×${cols} job from host $last through host 0"
start=$(date +%s.%N)
ip netns exec "$prefix$last" "$bin" submit "$work/job.json" --peer "$boot" --timeout 600 --json >"$work/out.json"
end=$(date +%s.%N)
python3 - "$work/out.json" "$start" "$end" <<'PY'
import json, sys
out = json.load(open(sys.argv[1]))
secs = float(sys.argv[3]) - float(sys.argv[2])
print(f"settled and verified: {out['shards']} shards by {len(set(out['workers']))} workers, "
      f"{len(out['result'])} result entries, submit → verified {out['elapsed_ms']} ms "
      f"(command wall time {secs:.1f} s)")
PY
echo "== packets received and dropped by the loss rule, per host"
for i in $(seq 0 $((hosts - 1))); do
    rx=$(ip netns exec "$prefix$i" cat /sys/class/net/eth0/statistics/rx_packets)
    dropped=$(ip netns exec "$prefix$i" nft list chain inet ssloss input | grep -o 'packets [0-9]*' | awk '{print $2}')
    echo "host $i: received $rx, dropped $dropped"
done
