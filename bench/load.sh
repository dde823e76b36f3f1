#!/usr/bin/env bash
# Load test of the Checkout BFF: orchestrate's `checkout` example against the hand-written
# `baseline_checkout`, both in front of the same mock services (`mock_services`, their own
# process), all on loopback. Figures and how to read them: BENCHMARKS.md.
#
#   bench/load.sh [--quick] [--repeats N] [--duration SECONDS] [--connections C] [--modes "template zero hang"] [--no-pin]
#
# Modes:
#   template  the template's latencies (critical path 165 ms): p50/p99 of each server
#   zero      zero-latency mocks: requests/s and p99 of each server, and their ratios
#   hang      shipping never answers: (1) breaker held closed (every request waits for the 500 ms
#             shipping timeout; other services at zero latency; 8 connections), (2) breaker open
#             (template latencies; shipping fails fast)
# Each measured run is a bounded wrk run; orchestrate (A) and the baseline (B) alternate (ABBA..).
# With two or more CPUs the server under test runs alone on the last one and the mocks and wrk on
# the others (taskset; --no-pin to let them mix): zero-latency requests/s then measure the
# server's own cost instead of how the scheduler interleaves four busy processes, which made
# unpinned runs on this two-core machine vary by ±30% from one run to the next.
# Peak RSS (VmHWM) of each server is read before it stops. Every process started here is stopped
# by its PID on exit. Results: target/bench-load/<time>/ (results.tsv, summary.md, logs).
#
# Environment: BENCH_PORT_BASE (default 47100: mocks on +1..+5, orchestrate +10, baseline +11),
# BENCH_OUT (result directory), CARGO_TARGET_DIR (where the release binaries are built).
set -euo pipefail
cd "$(dirname "$0")/.."

repeats=5
duration=15
connections=32
warmup=3
modes="template zero hang"
quick=0
pin=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; repeats=1; duration=3; warmup=1; shift ;;
    --repeats) repeats="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --modes) modes="$2"; shift 2 ;;
    --no-pin) pin=0; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

port_base="${BENCH_PORT_BASE:-47100}"
orch_port=$((port_base + 10))
base_port=$((port_base + 11))
out="${BENCH_OUT:-target/bench-load/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
results="$out/results.tsv"
printf 'mode\tserver\trepeat\trps\tp50_ms\tp90_ms\tp99_ms\tmax_ms\terrors\tnon2xx\trequests\tserver_cpu_us\tmocks_cpu_us\n' >"$results"
request='{"cartId":"c1","userId":"u1"}'
shipping_timeout_ms=500

log() { printf '[load] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need() { # need <command> <debian package>
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get install -y -qq "$2" >/dev/null 2>&1 || { $sudo apt-get update -qq && $sudo apt-get install -y -qq "$2" >/dev/null; }
}
need wrk wrk
need curl curl
need jq jq
# Hung shipping connections pile up in the mock process; keep file descriptors plentiful.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---- processes ------------------------------------------------------------------------------

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop() { # stop <pid>: by PID, then wait for it
  local pid="$1" kept=() p
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${pids[@]}"; do [ "$p" != "$pid" ] && kept+=("$p"); done
  pids=("${kept[@]+"${kept[@]}"}")
}

pin_server=""
pin_load=""
cpus=$(nproc)
if [ "$pin" = 1 ] && [ "$cpus" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  pin_server="taskset -c $((cpus - 1))"
  pin_load="taskset -c 0-$((cpus - 2))"
fi

log "building the release binaries"
cargo build --release --quiet --example checkout --example baseline_checkout --example mock_services
bin="${CARGO_TARGET_DIR:-target}/release/examples"

service_env=()
services=(cart inventory pricing shipping tax)
for i in "${!services[@]}"; do
  upper=$(printf '%s' "${services[$i]}" | tr '[:lower:]' '[:upper:]')
  service_env+=("ORCHESTRATE_${upper}_URL=http://127.0.0.1:$((port_base + i + 1))")
done
expected=$("$bin/mock_services" --expected | jq -S .)

wait_for_port() { # wait_for_port <port> <pid> <name>
  local i
  for i in $(seq 1 100); do
    kill -0 "$2" 2>/dev/null || die "$3 exited; see $out/$3.log"
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  die "$3 does not listen on port $1"
}

start_mocks() { # start_mocks <latency scale> [mock_services arguments..]; sets mocks_pid
  local scale="$1"; shift
  $pin_load "$bin/mock_services" --port-base "$port_base" --latency-scale "$scale" "$@" >"$out/mocks.log" 2>&1 &
  mocks_pid=$!
  pids+=("$mocks_pid")
  wait_for_port $((port_base + 5)) "$mocks_pid" mocks
}

start_orchestrate() { # start_orchestrate [config file]; sets orch_pid
  # RUST_LOG=warn: no log line per request and call (the example's default is `info`); the
  # baseline logs nothing either. Metrics, trace context and request ids stay on.
  env -u ORCHESTRATE_CONFIG "${service_env[@]}" ORCHESTRATE_LISTEN="127.0.0.1:$orch_port" RUST_LOG=warn \
    ${1:+ORCHESTRATE_CONFIG="$1"} $pin_server "$bin/checkout" >"$out/orchestrate.log" 2>&1 &
  orch_pid=$!
  pids+=("$orch_pid")
  wait_for_port "$orch_port" "$orch_pid" orchestrate
}

start_baseline() { # sets base_pid
  env "${service_env[@]}" BASELINE_LISTEN="127.0.0.1:$base_port" $pin_server "$bin/baseline_checkout" >"$out/baseline.log" 2>&1 &
  base_pid=$!
  pids+=("$base_pid")
  wait_for_port "$base_port" "$base_pid" baseline
}

peak_rss_mib() { # peak_rss_mib <pid>: VmHWM in MiB
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# ---- requests -------------------------------------------------------------------------------

post() { # post <port>: the response body
  curl -sS --max-time 5 -X POST -H 'content-type: application/json' -d "$request" "http://127.0.0.1:$1/checkout/summary"
}

check_contract() { # check_contract <name> <port>: the body is the contract's, exactly
  local body
  body=$(post "$2") || die "$1 did not answer"
  if ! diff <(printf '%s' "$body" | jq -S .) <(printf '%s\n' "$expected") >"$out/$1.diff"; then
    die "$1 does not answer the contract's JSON; see $out/$1.diff"
  fi
  log "$1 answers the contract's JSON"
}

check_partial() { # check_partial <name> <port>: shipping null, partialData, failedServices
  local body
  body=$(post "$2") || die "$1 did not answer"
  [ "$(printf '%s' "$body" | jq -c '[.shipping, .partialData, .failedServices, .total]')" = '[null,true,["shipping"],16234]' ] \
    || die "$1 did not degrade shipping: $body"
}

wrk_run() { # wrk_run <seconds> <port>: the RESULT line
  $pin_load wrk -t1 -c"$connections" -d"${1}s" --timeout 5s -s bench/checkout.lua "http://127.0.0.1:$2/checkout/summary" \
    | grep '^RESULT' || die "wrk printed no result"
}

cpu_ticks() { # cpu_ticks <pid>: user + system CPU time so far, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

measure() { # measure <mode> <server> <repeat> <port>: one wrk run, appended to results.tsv
  # Besides wrk's figures: the CPU time the server and the mocks spent per request during the run
  # (from /proc/<pid>/stat), which the machine's noise disturbs far less than requests/s.
  local line pid server_before mocks_before server_after mocks_after
  pid=$orch_pid
  [ "$2" = baseline ] && pid=$base_pid
  server_before=$(cpu_ticks "$pid")
  mocks_before=$(cpu_ticks "$mocks_pid")
  line=$(wrk_run "$duration" "$4")
  server_after=$(cpu_ticks "$pid")
  mocks_after=$(cpu_ticks "$mocks_pid")
  printf '%s\n' "$line" >>"$out/wrk.log"
  printf '%s\n' "$line" | awk -v mode="$1" -v server="$2" -v rep="$3" -v tick_us=$((1000000 / $(getconf CLK_TCK))) \
    -v server_ticks=$((server_after - server_before)) -v mocks_ticks=$((mocks_after - mocks_before)) '{
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      n = (v["requests"] > 0) ? v["requests"] : 1
      printf "%s\t%s\t%s\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t%.1f\t%.1f\n", mode, server, rep, v["rps"],
        v["p50_us"] / 1000, v["p90_us"] / 1000, v["p99_us"] / 1000, v["max_us"] / 1000, v["errors"], v["non2xx"], v["requests"],
        server_ticks * tick_us / n, mocks_ticks * tick_us / n
    }' | tee -a "$results" >&2
}

alternate() { # alternate <mode>: the A/B repeats, ABBA order
  local r
  log "$1: warm-up (${warmup}s each)"
  wrk_run "$warmup" "$orch_port" >/dev/null
  wrk_run "$warmup" "$base_port" >/dev/null
  for r in $(seq 1 "$repeats"); do
    if [ $((r % 2)) -eq 1 ]; then
      measure "$1" orchestrate "$r" "$orch_port"; measure "$1" baseline "$r" "$base_port"
    else
      measure "$1" baseline "$r" "$base_port"; measure "$1" orchestrate "$r" "$orch_port"
    fi
  done
}

record_rss() { # record_rss <mode>
  printf '%s\torchestrate\t%s\n%s\tbaseline\t%s\n' "$1" "$(peak_rss_mib "$orch_pid")" "$1" "$(peak_rss_mib "$base_pid")" \
    | tee -a "$out/rss.tsv" >&2
}

stop_all() {
  stop "$orch_pid"; stop "$base_pid"; stop "$mocks_pid"
}

# ---- the modes ------------------------------------------------------------------------------

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "kernel: $(uname -sr)"
  echo "rustc: $(rustc --version)"
  echo "wrk: $(wrk --version 2>&1 | head -1)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "settings: repeats=$repeats duration=${duration}s connections=$connections wrk threads=1 pinning: servers ${pin_server:-none}, mocks and wrk ${pin_load:-none}"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
} >"$out/machine.txt"
log "results in $out"

for mode in $modes; do
  case "$mode" in
    template | zero)
      scale=1
      [ "$mode" = zero ] && scale=0
      log "$mode: mocks at latency scale $scale"
      start_mocks "$scale"
      start_orchestrate
      start_baseline
      check_contract orchestrate "$orch_port"
      check_contract baseline "$base_port"
      alternate "$mode"
      record_rss "$mode"
      stop_all
      ;;
    hang)
      # (1) Shipping hangs, the breaker held closed by a configuration that needs a million
      # failures: every request waits for the shipping timeout. Other services answer at once, so
      # the latency is the timeout plus the BFF's own cost.
      hold="$out/hold-breaker.toml"
      printf '[services.shipping.breaker]\nfailures = 1000000\nwithin = "1s"\n' >"$hold"
      log "hang: shipping hangs, breaker held closed"
      start_mocks 0 --hang shipping
      start_orchestrate "$hold"
      start_baseline
      check_partial orchestrate "$orch_port"
      check_partial baseline "$base_port"
      # 8 connections: with wrk's closed loop, every connection's request hangs and times out in
      # lockstep with the others, so each timeout is a burst of as many answers and new requests
      # at the same instant; with 32 the p99 measures that burst's queue (about 5 ms on two cores)
      # more than the server.
      saved_connections=$connections
      connections=8
      measure hang-closed orchestrate 1 "$orch_port"
      measure hang-closed baseline 1 "$base_port"
      connections=$saved_connections
      record_rss hang-closed
      stop_all
      # (2) Shipping hangs with the declared breaker (the example's rate form: 50% of at least 20
      # calls within 10 s open it for 60 s): trip it with a burst of 30 requests at once, then
      # measure while it is open. Template latencies for the healthy services.
      log "hang: shipping hangs, breaker open"
      start_mocks 1 --hang shipping
      start_orchestrate
      start_baseline
      burst=()
      for _ in $(seq 30); do check_partial orchestrate "$orch_port" & burst+=($!); done
      wait "${burst[@]}"
      start=$(date +%s%N)
      check_partial orchestrate "$orch_port"
      took=$(( ($(date +%s%N) - start) / 1000000 ))
      [ "$took" -lt "$shipping_timeout_ms" ] || die "the shipping breaker did not open (a request took ${took} ms)"
      log "breaker open: a request takes ${took} ms"
      # At most 60 s of open breaker: one orchestrate run, then the baseline.
      measure hang-open orchestrate 1 "$orch_port"
      measure hang-open baseline 1 "$base_port"
      record_rss hang-open
      stop_all
      ;;
    *) die "unknown mode: $mode" ;;
  esac
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"

# ---- summary --------------------------------------------------------------------------------

# Medians of the repeats with the spread (min–max), and per-repeat ratios orchestrate / baseline.
awk -F'\t' -v out="$out" '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    lo = a[1]; hi = a[n]
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function cell(list, fmt,   m) { m = median(list); return sprintf(fmt " (" fmt "–" fmt ")", m, lo, hi) }
  NR == 1 { next }
  {
    key = $1 SUBSEP $2
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    rps[key] = rps[key] " " $4; p50[key] = p50[key] " " $5; p99[key] = p99[key] " " $7; cpu[key] = cpu[key] " " $12
    errors[key] += $9 + $10
    if ($2 == "orchestrate") { orps[$1, $3] = $4; op50[$1, $3] = $5; op99[$1, $3] = $7; ocpu[$1, $3] = $12 }
    else { brps[$1, $3] = $4; bp50[$1, $3] = $5; bp99[$1, $3] = $7; bcpu[$1, $3] = $12 }
    if (!($1 in modeseen)) { modeseen[$1] = 1; modes[++m] = $1 }
    reps[$1] = ($3 > reps[$1]) ? $3 : reps[$1]
  }
  END {
    print "| mode | server | runs | req/s | p50 ms | p99 ms | server CPU µs/request | errors + non-2xx |"
    print "|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= n; i++) {
      split(order[i], k, SUBSEP)
      runs = split(substr(rps[order[i]], 2), tmp, " ")
      printf "| %s | %s | %d | %s | %s | %s | %s | %d |\n", k[1], k[2], runs, cell(rps[order[i]], "%.0f"),
        cell(p50[order[i]], "%.1f"), cell(p99[order[i]], "%.1f"), cell(cpu[order[i]], "%.0f"), errors[order[i]]
    }
    print ""
    print "| mode | orchestrate / baseline | req/s | p50 | p99 | server CPU/request |"
    print "|---|---|---|---|---|---|"
    for (i = 1; i <= m; i++) {
      mode = modes[i]; r1 = ""; r2 = ""; r3 = ""; r4 = ""
      for (r = 1; r <= reps[mode]; r++) {
        if (((mode, r) in orps) && ((mode, r) in brps) && brps[mode, r] > 0 && bp50[mode, r] > 0 && bp99[mode, r] > 0) {
          r1 = r1 " " orps[mode, r] / brps[mode, r]; r2 = r2 " " op50[mode, r] / bp50[mode, r]; r3 = r3 " " op99[mode, r] / bp99[mode, r]
          if (bcpu[mode, r] > 0) r4 = r4 " " ocpu[mode, r] / bcpu[mode, r]
        }
      }
      if (r1 != "") printf "| %s | per-repeat ratios, median (min–max) | %s | %s | %s | %s |\n", mode, cell(r1, "%.3f"), cell(r2, "%.3f"), cell(r3, "%.3f"), (r4 == "") ? "–" : cell(r4, "%.3f")
    }
  }' "$results" >"$out/summary.md"
if [ -s "$out/rss.tsv" ]; then
  { echo; echo "| mode | server | peak RSS (VmHWM) MiB |"; echo "|---|---|---|"
    awk -F'\t' '{ printf "| %s | %s | %s |\n", $1, $2, $3 }' "$out/rss.tsv"; } >>"$out/summary.md"
fi
cat "$out/summary.md"
log "done; results in $out"
