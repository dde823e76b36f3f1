-- wrk script of bench/load.sh: POSTs the checkout request and, when done, prints one line that
-- load.sh parses (latencies in microseconds):
--   RESULT requests=<n> duration_s=<s> rps=<r> p50_us=<..> p90_us=<..> p99_us=<..> max_us=<..> errors=<socket errors + timeouts> non2xx=<n>
wrk.method = "POST"
wrk.body = '{"cartId":"c1","userId":"u1"}'
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status))
end
