#!/usr/bin/env bash
# Side-by-side write/read throughput of several scimtrail builds or settings, interleaved in one
# run so the noisy machine affects them alike (BENCHMARKS.md). Loopback only; bounded in time.
#
#   side-by-side.sh ROUNDS SECONDS LABEL=BINARY[:SERVE-FLAGS] ...
#
# e.g. side-by-side.sh 3 10 before=/tmp/old-target/release/scimtrail \
#        commit=target/release/scimtrail "checkpoint=target/release/scimtrail:--durability checkpoint"
#
# Each run: a fresh data directory, `serve` on a free port, then `scimtrail-load` ($CONCURRENCY,
# default 16, connections: POST users for SECONDS, then GET them for SECONDS). Prints one line per run with
# requests/s, p50/p99 and the server's CPU time per request (user+system from /proc).
set -euo pipefail
rounds=$1; seconds=$2; shift 2
here=$(cd "$(dirname "$0")/../../.." && pwd)
load=${LOAD:-$here/target/release/scimtrail-load}
tick=$(getconf CLK_TCK)
printf '%-12s %5s %10s %16s %10s %16s %14s\n' label round "creates/s" "create p50/p99" "GETs/s" "GET p50/p99" "CPU µs/req"
for r in $(seq 1 "$rounds"); do
  for spec in "$@"; do
    label=${spec%%=*}; rest=${spec#*=}; bin=${rest%%:*}; flags=""
    [[ "$rest" == *:* ]] && flags=${rest#*:}
    dir=$(mktemp -d)
    port=$(( 20000 + RANDOM % 20000 ))
    # shellcheck disable=SC2086
    (cd "$dir" && SCIMTRAIL_BOOTSTRAP_TOKEN=benchtoken RUST_LOG=warn exec "$bin" serve --listen 127.0.0.1:$port $flags >"$dir/out" 2>"$dir/err") &
    pid=$!
    for _ in $(seq 1 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
    t0=$(awk '{print $14+$15}' /proc/$pid/stat)
    out=$("$load" --url "http://127.0.0.1:$port" --token benchtoken --concurrency "${CONCURRENCY:-16}" --seconds "$seconds")
    t1=$(awk '{print $14+$15}' /proc/$pid/stat)
    kill -TERM $pid; wait $pid || true
    c=$(echo "$out" | awk '/^create/ {print $2, $6, $9, $12}')
    g=$(echo "$out" | awk '/^get/ {print $2, $6, $9, $12}')
    read -r cn cr cp50 cp99 <<<"$c"; read -r gn gr gp50 gp99 <<<"$g"
    cpu=$(awk -v a="$t0" -v b="$t1" -v t="$tick" -v n=$((cn + gn)) 'BEGIN { printf "%.0f", (b - a) / t * 1e6 / n }')
    printf '%-12s %5s %10s %16s %10s %16s %14s\n' "$label" "$r" "$cr" "$cp50/$cp99 ms" "$gr" "$gp50/$gp99 ms" "$cpu"
    rm -rf "$dir"
  done
done
