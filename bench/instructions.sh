#!/usr/bin/env bash
# Instructions per request of each checkout BFF, counted by valgrind's callgrind: a figure that does
# not move with the machine's load, for comparing the two servers and for profiling (the callgrind
# files it leaves open in kcachegrind or `callgrind_annotate`).
#
#   bench/instructions.sh [seconds]     (default 10)
#
# The mocks run natively at zero latency; each server runs under callgrind (one at a time, both
# serialised onto one thread by valgrind), gets a warm-up, has its counters zeroed, serves wrk
# (4 connections) for the given time, and has its counters dumped. User-space instructions only:
# the kernel's share (sockets, epoll) is not counted. orchestrate is counted twice: as shipped, and
# with its recent requests for /_orchestrate switched off (`[recent] enabled = false`).
#
# Environment: BENCH_PORT_BASE (default 47200), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
port_base="${BENCH_PORT_BASE:-47200}"
target="${CARGO_TARGET_DIR:-target}"
out="$target/bench-instructions"
mkdir -p "$out"
for tool in valgrind:valgrind callgrind_control:valgrind wrk:wrk; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || {
    echo "needs ${tool%%:*} (apt-get install -y ${tool##*:})" >&2
    exit 1
  }
done

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_port() { # wait_for_port <port> <pid>
  local i
  for i in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || { echo "process $2 exited" >&2; exit 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

echo "building the release binaries" >&2
cargo build --release --quiet --example checkout --example baseline_checkout --example mock_services
bin="$target/release/examples"
"$bin/mock_services" --port-base "$port_base" --latency-scale 0 >"$out/mocks.log" 2>&1 &
pids+=($!)
wait_for_port $((port_base + 5)) "${pids[-1]}"
service_env=()
services=(cart inventory pricing shipping tax)
for i in "${!services[@]}"; do
  upper=$(printf '%s' "${services[$i]}" | tr '[:lower:]' '[:upper:]')
  service_env+=("ORCHESTRATE_${upper}_URL=http://127.0.0.1:$((port_base + i + 1))")
done

count() { # count <name> <port> <binary> [VAR=value..]: instructions per request of one server
  local name="$1" port="$2" binary="$3" pid requests total
  shift 3
  rm -f "$out/callgrind.$name".*
  env "${service_env[@]}" "$@" valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.$name" "$binary" \
    >"$out/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_for_port "$port" "$pid"
  wrk -t1 -c4 -d3s -s bench/checkout.lua "http://127.0.0.1:$port/checkout/summary" >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  requests=$(wrk -t1 -c4 -d"${seconds}s" -s bench/checkout.lua "http://127.0.0.1:$port/checkout/summary" \
    | sed -n 's/^RESULT requests=\([0-9]*\).*/\1/p')
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 1
  total=$(callgrind_annotate "$(ls -t "$out/callgrind.$name".* | head -1)" 2>/dev/null \
    | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  printf '| %s | %d | %d |\n' "$name" "$requests" $((total / requests))
}

echo "| server | requests counted | instructions per request |"
echo "|---|---|---|"
count orchestrate $((port_base + 10)) "$bin/checkout" RUST_LOG=warn ORCHESTRATE_LISTEN="127.0.0.1:$((port_base + 10))"
# The same server keeping no recent requests for /_orchestrate: what recording costs.
printf '[recent]\nenabled = false\n' >"$out/recent-off.toml"
count orchestrate-recent-off $((port_base + 12)) "$bin/checkout" RUST_LOG=warn \
  ORCHESTRATE_LISTEN="127.0.0.1:$((port_base + 12))" ORCHESTRATE_CONFIG="$out/recent-off.toml"
count baseline $((port_base + 11)) "$bin/baseline_checkout" BASELINE_LISTEN="127.0.0.1:$((port_base + 11))"
echo "callgrind files in $out" >&2
