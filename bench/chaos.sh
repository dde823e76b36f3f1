#!/usr/bin/env bash
# Chaos run of the Checkout BFF: orchestrate's `checkout` example and the hand-written
# `baseline_checkout`, one after the other, each in front of freshly started mock services
# (`mock_services`, their own process) that fail about 30% of checkout requests' downstream calls
# in mixed ways: 500s, connection resets, hangs and slow answers. Figures: BENCHMARKS.md.
#
#   bench/chaos.sh [--duration SECONDS] [--connections C] [--servers "orchestrate baseline"]
#                  [--chaos SPEC] [--seed SEED] [--log LEVEL] [--no-pin]
#
#   --duration 60        seconds of wrk per server
#   --connections 64     wrk connections (one wrk thread)
#   --servers ".."       which servers, in order (default both; the comparison needs both)
#   --chaos SPEC         the mocks' fault mix (mock_services --chaos), default:
#                        cart=500:20,inventory=reset:17,pricing=hang:31,shipping=hang:7,tax=500:19,inventory=slow300ms:10
#   --seed SEED          faults at random from SEED instead of every N-th request (mock_services --chaos-seed)
#   --log LEVEL          orchestrate's RUST_LOG (default warn: no line per request; `info` logs every
#                        request and call, for an investigation, and costs CPU)
#   --no-pin             no taskset (default as in load.sh: the server alone on the last CPU)
#
# For each server it reports, and checks (FAIL lines and a non-zero exit when one fails):
#   - the share answered 200 and the count of every status and error code; orchestrate may answer
#     only 200, 502, 504, and 503 only with code OVERLOADED (shed); the checkout example must
#     answer at least as many 200s, as a share, as the baseline;
#   - every request answered (no wrk socket error or timeout; wrk's --timeout is 5 s) and wrk's max
#     latency within the endpoint's 2 s deadline + 10 ms;
#   - no downstream request in flight at the mocks one second after the load stops (orphans: the
#     sum of `inFlight` from each mock's GET /_mock/stats);
#   - the server's peak RSS (VmHWM), within the baseline's + 10 MiB, and that it is still alive
#     (it answers a request after the run).
# The baseline's figures are the reference: its checks are printed as notes and fail nothing.
#
# On a machine shared with other benchmarks, run it under the lock they use, e.g.
#   flock /tmp/orchestrate-cargo.lock bench/chaos.sh
# (it runs `cargo build`, so it must not be started from inside another cargo lock holder).
# Every process started here is stopped by its PID on exit. Results: target/bench-chaos/<time>/
# (summary.md, results.tsv, wrk.log, each process's log, orchestrate's /metrics, mock stats).
#
# Environment: BENCH_PORT_BASE (default 27200: mocks on +1..+5, orchestrate +10, baseline +11;
# below Linux's ephemeral range, 32768-60999 by default, where any process's outgoing connection,
# or its TIME_WAIT for a minute after, can hold the port and make a server's bind fail),
# BENCH_OUT (result directory), CARGO_TARGET_DIR (where the release binaries are built).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=60
connections=64
servers="orchestrate baseline"
chaos="cart=500:20,inventory=reset:17,pricing=hang:31,shipping=hang:7,tax=500:19,inventory=slow300ms:10"
seed=""
log_level=warn
pin=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --servers) servers="$2"; shift 2 ;;
    --chaos) chaos="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --log) log_level="$2"; shift 2 ;;
    --no-pin) pin=0; shift ;;
    -h|--help) sed -n "2,/^set -euo/p" "$0" | sed "$ d"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
for server in $servers; do
  case "$server" in orchestrate | baseline) ;; *) echo "unknown server: $server" >&2; exit 2 ;; esac
done

deadline_ms=2000
grace_ms=10
port_base="${BENCH_PORT_BASE:-27200}"
orch_port=$((port_base + 10))
base_port=$((port_base + 11))
out="${BENCH_OUT:-target/bench-chaos/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
request='{"cartId":"c1","userId":"u1"}'
services=(cart inventory pricing shipping tax)

log() { printf '[chaos] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null \
  && [ "$((port_base + 11))" -ge "$eph_lo" ] && [ "$port_base" -le "$eph_hi" ]; then
  log "warning: ports $port_base..$((port_base + 11)) are in the ephemeral range $eph_lo-$eph_hi; a bind may fail (BENCH_PORT_BASE)"
fi

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
# Hung connections pile up in the mock process; keep file descriptors plentiful.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---- processes (as in load.sh) ----------------------------------------------------------------

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

pin_server=()
pin_load=()
cpus=$(nproc)
if [ "$pin" = 1 ] && [ "$cpus" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  pin_server=(taskset -c $((cpus - 1)))
  pin_load=(taskset -c "0-$((cpus - 2))")
fi

log "building the release binaries"
cargo build --release --quiet --example checkout --example baseline_checkout --example mock_services
bin="${CARGO_TARGET_DIR:-target}/release/examples"

service_env=()
for i in "${!services[@]}"; do
  upper=$(printf '%s' "${services[$i]}" | tr '[:lower:]' '[:upper:]')
  service_env+=("ORCHESTRATE_${upper}_URL=http://127.0.0.1:$((port_base + i + 1))")
done

wait_for_port() { # wait_for_port <port> <pid> <name>
  local i
  for i in $(seq 1 100); do
    kill -0 "$2" 2>/dev/null || die "$3 exited; see $out/$3.log"
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  die "$3 does not listen on port $1"
}

start_mocks() { # start_mocks <server>: the five mocks with the fault mix; sets mocks_pid
  local args=(--port-base "$port_base" --latency-scale 1 --chaos "$chaos")
  [ -n "$seed" ] && args+=(--chaos-seed "$seed")
  "${pin_load[@]}" "$bin/mock_services" "${args[@]}" >"$out/mocks-$1.log" 2>&1 &
  mocks_pid=$!
  pids+=("$mocks_pid")
  wait_for_port $((port_base + 5)) "$mocks_pid" "mocks-$1"
}

start_server() { # start_server <server>; sets server_pid and server_port
  if [ "$1" = orchestrate ]; then
    server_port=$orch_port
    env -u ORCHESTRATE_CONFIG "${service_env[@]}" ORCHESTRATE_LISTEN="127.0.0.1:$orch_port" RUST_LOG="$log_level" \
      "${pin_server[@]}" "$bin/checkout" >"$out/orchestrate.log" 2>&1 &
  else
    server_port=$base_port
    env "${service_env[@]}" BASELINE_LISTEN="127.0.0.1:$base_port" "${pin_server[@]}" "$bin/baseline_checkout" >"$out/baseline.log" 2>&1 &
  fi
  server_pid=$!
  pids+=("$server_pid")
  wait_for_port "$server_port" "$server_pid" "$1"
}

peak_rss_mib() { # peak_rss_mib <pid>: VmHWM in MiB
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

cpu_ticks() { # cpu_ticks <pid>: user + system CPU time so far, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

mock_stats() { # mock_stats <file>: one line per service, "service requests inFlight faults"
  local i port
  : >"$1"
  for i in "${!services[@]}"; do
    port=$((port_base + i + 1))
    curl -sS --max-time 2 "http://127.0.0.1:$port/_mock/stats" \
      | jq -r --arg s "${services[$i]}" '"\($s) \(.requests) \(.inFlight) \(.faults)"' >>"$1" \
      || die "mock ${services[$i]} does not answer /_mock/stats"
  done
}

alive() { # alive <pid> <port>: running (not a zombie) and answers a request with any status
  local state code
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || echo gone)
  [ "$state" = gone ] || [ "$state" = Z ] && return 1
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -X POST -H 'content-type: application/json' \
    -d "$request" "http://127.0.0.1:$2/checkout/summary" || true)
  [ "${code:-000}" != 000 ]
}

# ---- one run per server -------------------------------------------------------------------------

results="$out/results.tsv"
printf 'server\tkey\tvalue\n' >"$results"
put() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$results"; }
get() { awk -F'\t' -v s="$1" -v k="$2" '$1 == s && $2 == k { v = $3 } END { print v }' "$results"; }

run() { # run <server>
  local server="$1" line before after
  log "$server: fresh mocks ($chaos${seed:+, seed $seed}), ${duration}s at $connections connections"
  start_mocks "$server"
  start_server "$server"
  before=$(cpu_ticks "$server_pid")
  # wrk's --timeout (5 s) is above the deadline + grace, so a late answer is measured, not dropped.
  line=$("${pin_load[@]}" wrk -t1 -c"$connections" -d"${duration}s" --timeout 5s -s bench/chaos.lua \
    "http://127.0.0.1:$server_port/checkout/summary" | tee -a "$out/wrk-$server.log" | grep '^RESULT') \
    || die "wrk printed no result for $server; see $out/wrk-$server.log"
  after=$(cpu_ticks "$server_pid")
  printf '%s %s\n' "$server" "$line" >>"$out/wrk.log"
  # The load has stopped (wrk exited and closed its connections); a second later nothing the
  # server started may still be waiting at a mock.
  sleep 1
  mock_stats "$out/mocks-$server.stats"
  if [ "$server" = orchestrate ]; then
    curl -sS --max-time 3 "http://127.0.0.1:$server_port/metrics" >"$out/orchestrate-metrics.txt" || true
  fi
  put "$server" rss_mib "$(peak_rss_mib "$server_pid")"
  if alive "$server_pid" "$server_port"; then put "$server" alive yes; else put "$server" alive no; fi
  put "$server" cpu_us_per_request "$(printf '%s\n' "$line" | awk -v t=$((after - before)) -v us=$((1000000 / $(getconf CLK_TCK))) '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "requests") n = kv[2] }
    printf "%.0f", (n > 0) ? t * us / n : 0 }')"
  printf '%s\n' "$line" | tr ' ' '\n' | awk -F= -v s="$server" 'NF == 2 { printf "%s\t%s\t%s\n", s, $1, $2 }' >>"$results"
  awk -v s="$server" '{ r += $2; f += $3; d += $4 } END { printf "%s\tdownstream\t%d\n%s\torphans\t%d\n%s\tfaults\t%d\n", s, r, s, f, s, d }' \
    "$out/mocks-$server.stats" >>"$results"
  stop "$server_pid"
  stop "$mocks_pid"
}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "kernel: $(uname -sr)"
  echo "rustc: $(rustc --version)"
  echo "wrk: $(wrk --version 2>&1 | head -1)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "settings: duration=${duration}s connections=$connections wrk threads=1 chaos=$chaos seed=${seed:-none (request counter)} RUST_LOG=$log_level pinning: servers ${pin_server[*]:-none}, mocks and wrk ${pin_load[*]:-none}"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
} >"$out/machine.txt"
log "results in $out"

for server in $servers; do run "$server"; done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"

# ---- checks and summary ---------------------------------------------------------------------

failures=0
checks="$out/checks.txt"
: >"$checks"
verdict() { # verdict <server> <ok: 0/1> <text>: a PASS/FAIL line for orchestrate, a note for the baseline
  local line
  if [ "$1" = orchestrate ]; then
    if [ "$2" = 1 ]; then line="PASS $3"; else line="FAIL $3"; failures=$((failures + 1)); fi
  else
    if [ "$2" = 1 ]; then line="note (baseline, reference) ok: $3"; else line="note (baseline, reference) not met: $3"; fi
  fi
  printf '%s\n' "$line" >>"$checks"
}
share() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? 100 * a / b : 0 }'; }
status_count() { # status_count <server> <status>
  get "$1" statuses | tr ',' '\n' | awk -F: -v s="$2" '$1 == s { n = $2 } END { print n + 0 }'
}

for server in $servers; do
  requests=$(get "$server" requests)
  ok=$(status_count "$server" 200)
  put "$server" ok_share "$(share "$ok" "$requests")"
  unexpected=$(get "$server" statuses | tr ',' '\n' | awk -F: '$1 != "-" && $1 != 200 && $1 != 502 && $1 != 504 && $1 != 503 { printf "%s%s:%s", sep, $1, $2; sep = "," }')
  bad503=$(get "$server" codes | tr ',' '\n' | awk -F'[/:]' '$1 == 503 && $2 != "OVERLOADED" { n += $3 } END { print n + 0 }')
  verdict "$server" "$([ -z "$unexpected" ] && [ "$bad503" = 0 ] && echo 1 || echo 0)" \
    "$server: only designed statuses (200, 502, 504, 503 OVERLOADED): $(get "$server" statuses)${unexpected:+ — unexpected $unexpected}$([ "$bad503" != 0 ] && echo " — $bad503 503s not OVERLOADED")"
  unanswered=$(( $(get "$server" connect) + $(get "$server" read) + $(get "$server" write) + $(get "$server" timeout) ))
  put "$server" unanswered "$unanswered"
  verdict "$server" "$([ "$unanswered" = 0 ] && echo 1 || echo 0)" \
    "$server: every request answered (wrk connect/read/write/timeout errors: $(get "$server" connect)/$(get "$server" read)/$(get "$server" write)/$(get "$server" timeout))"
  max_ms=$(awk -v us="$(get "$server" max_us)" 'BEGIN { printf "%.1f", us / 1000 }')
  put "$server" max_ms "$max_ms"
  verdict "$server" "$(awk -v m="$max_ms" -v l=$((deadline_ms + grace_ms)) 'BEGIN { print (m <= l) ? 1 : 0 }')" \
    "$server: max latency $max_ms ms ≤ deadline + ${grace_ms} ms = $((deadline_ms + grace_ms)) ms"
  orphans=$(get "$server" orphans)
  verdict "$server" "$([ "$orphans" = 0 ] && echo 1 || echo 0)" \
    "$server: downstream requests in flight 1 s after the load: $orphans ($(awk '{ printf "%s%s %s", sep, $1, $3; sep = ", " }' "$out/mocks-$server.stats"))"
  verdict "$server" "$([ "$(get "$server" alive)" = yes ] && echo 1 || echo 0)" "$server: alive after the run"
done
if [[ " $servers " == *" orchestrate "* && " $servers " == *" baseline "* ]]; then
  o=$(get orchestrate ok_share); b=$(get baseline ok_share)
  verdict orchestrate "$(awk -v o="$o" -v b="$b" 'BEGIN { print (o >= b) ? 1 : 0 }')" \
    "answered 200: orchestrate $o% ≥ baseline $b%"
  # In a closed loop the count follows each server's mean latency (a request failed fast frees its
  # connection sooner than one rescued by a retry), so the share is what is compared.
  printf 'note: 200s in all: orchestrate %s of %s requests, baseline %s of %s\n' "$(status_count orchestrate 200)" \
    "$(get orchestrate requests)" "$(status_count baseline 200)" "$(get baseline requests)" >>"$checks"
  o=$(get orchestrate rss_mib); b=$(get baseline rss_mib)
  verdict orchestrate "$(awk -v o="$o" -v b="$b" 'BEGIN { print (o <= b + 10) ? 1 : 0 }')" \
    "peak RSS: orchestrate $o MiB ≤ baseline $b MiB + 10 MiB"
fi

# orchestrate's own view: breaker openings (warn lines), calls by outcome and retries (/metrics).
breakers="–"; outcomes="–"; retries="–"
if [[ " $servers " == *" orchestrate "* ]]; then
  breakers=$({ grep -a 'circuit breaker opened' "$out/orchestrate.log" || true; } | sed -n 's/.*service="\{0,1\}\([a-z]*\).*/\1/p' | sort | uniq -c \
    | awk '{ printf "%s%s %d", sep, $2, $1; sep = ", " }')
  breakers=${breakers:-none}
  outcomes=$(awk '/^orchestrate_calls_total\{/ {
      match($0, /service="[^"]*"/); s = substr($0, RSTART + 9, RLENGTH - 10)
      match($0, /outcome="[^"]*"/); o = substr($0, RSTART + 9, RLENGTH - 10)
      print s, o, $NF }' "$out/orchestrate-metrics.txt" 2>/dev/null | sort -k1,1 -k2,2 \
    | awk '$1 != last { printf "%s%s: ", (NR > 1) ? "; " : "", $1; last = $1; sep = "" } { printf "%s%s %s", sep, $2, $3; sep = ", " }')
  retries=$(awk '/^orchestrate_retries_total\{/ {
      match($0, /service="[^"]*"/); s = substr($0, RSTART + 9, RLENGTH - 10)
      match($0, /reason="[^"]*"/); r = substr($0, RSTART + 8, RLENGTH - 9)
      printf "%s%s %s %s", sep, s, r, $NF; sep = ", " }' "$out/orchestrate-metrics.txt" 2>/dev/null)
  outcomes=${outcomes:-–}; retries=${retries:-none}
fi

cell() { # cell <key> [format]: one table cell per server
  local s
  for s in $servers; do printf ' %s |' "$(get "$s" "$1")"; done
}
{
  # The share of checkout requests that meet at least one fault if faults were independent
  # (each checkout request calls each of the five services once).
  exposed=$(printf '%s\n' "$chaos" | tr ',' '\n' | awk -F'[=:]' '{ p *= 1 - 1 / $NF; if ($2 !~ /^slow/) q *= 1 - 1 / $NF }
    BEGIN { p = 1; q = 1 } END { printf "%.1f%% of checkout requests meet at least one fault (%.1f%% one other than slow)", 100 * (1 - p), 100 * (1 - q) }')
  echo "Chaos run: ${duration}s, $connections connections (a closed loop: each connection sends its next request when the last is answered), mocks at template latencies with \`$chaos\`${seed:+ (seed $seed)}: about $exposed."
  echo
  printf '| |'; for s in $servers; do printf ' %s |' "$s"; done; echo
  printf '|---|'; for _ in $servers; do printf -- '---|'; done; echo
  printf '| requests |'; cell requests; echo
  printf '| **answered 200** |'; for s in $servers; do printf ' **%s%%** (%s) |' "$(get "$s" ok_share)" "$(status_count "$s" 200)"; done; echo
  printf '%s' '| … of them partial (shipping null) |'; cell partial; echo
  printf '| 200s per second |'; for s in $servers; do printf ' %s |' "$(awk -v n="$(status_count "$s" 200)" -v d="$(get "$s" duration_s)" 'BEGIN { printf "%.1f", n / d }')"; done; echo
  printf '| statuses |'; for s in $servers; do printf ' %s |' "$(get "$s" statuses | sed 's/:/: /g; s/,/, /g')"; done; echo
  printf '| error codes |'; for s in $servers; do printf ' %s |' "$(get "$s" codes | sed 's/:/: /g; s/,/, /g; s|/| |g')"; done; echo
  printf '| unanswered (wrk errors) |'; cell unanswered; echo
  printf '| p50 / p99 / **max** ms (limit %d) |' $((deadline_ms + grace_ms))
  for s in $servers; do
    printf ' %s / %s / **%s** |' "$(awk -v u="$(get "$s" p50_us)" 'BEGIN { printf "%.1f", u / 1000 }')" \
      "$(awk -v u="$(get "$s" p99_us)" 'BEGIN { printf "%.1f", u / 1000 }')" "$(get "$s" max_ms)"
  done; echo
  printf '| downstream requests (faults injected) |'
  for s in $servers; do printf ' %s (%s, %s%%) |' "$(get "$s" downstream)" "$(get "$s" faults)" "$(share "$(get "$s" faults)" "$(get "$s" downstream)")"; done; echo
  printf '| in flight at the mocks 1 s later (orphans) |'; cell orphans; echo
  printf '| peak RSS MiB |'; cell rss_mib; echo
  printf '| server CPU µs/request |'; cell cpu_us_per_request; echo
  printf '| alive after the run |'; cell alive; echo
  if [[ " $servers " == *" orchestrate "* ]]; then
    echo
    echo "orchestrate: breaker openings (log): $breakers; calls by outcome (/metrics): $outcomes; retries: $retries."
  fi
  echo
  sed 's/^/    /' "$checks"
} >"$out/summary.md"
echo
cat "$out/summary.md"
log "done; results in $out"
if [ "$failures" -gt 0 ]; then
  log "$failures check(s) failed"
  exit 1
fi
