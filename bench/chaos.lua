-- wrk script of bench/chaos.sh: POSTs the checkout request, counts every answer by status, by the
-- error body's `code` and the 200s with `"partialData":true`, and when done prints one line that
-- chaos.sh parses (latencies in microseconds):
--   RESULT requests=<n> duration_s=<s> rps=<r> p50_us=<..> p99_us=<..> max_us=<..>
--          connect=<n> read=<n> write=<n> timeout=<n> statuses=<status:n,..> codes=<status/CODE:n,..> partial=<n>
-- The counters live in each wrk thread's own Lua state; `done` runs in another one and reads
-- them through `thread:get`, so any `-t` works.
wrk.method = "POST"
wrk.body = '{"cartId":"c1","userId":"u1"}'
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Per thread: counts keyed by status, by "status/CODE", and the partial 200s.
statuses = {}
codes = {}
partial = 0

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 then
    if body and string.find(body, '"partialData":true', 1, true) then
      partial = partial + 1
    end
  else
    local code = body and string.match(body, '"code"%s*:%s*"([%w_]+)"') or "none"
    local key = status .. "/" .. code
    codes[key] = (codes[key] or 0) + 1
  end
end

local function merge(into, from)
  for k, v in pairs(from or {}) do
    into[k] = (into[k] or 0) + v
  end
end

local function list(t)
  local keys = {}
  for k in pairs(t) do table.insert(keys, tostring(k)) end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    table.insert(parts, k .. ":" .. (t[k] or t[tonumber(k)]))
  end
  return (#parts > 0) and table.concat(parts, ",") or "-"
end

function done(summary, latency, requests)
  local all_statuses, all_codes, all_partial = {}, {}, 0
  for _, thread in ipairs(threads) do
    merge(all_statuses, thread:get("statuses"))
    merge(all_codes, thread:get("codes"))
    all_partial = all_partial + (thread:get("partial") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_us=%d p99_us=%d max_us=%d connect=%d read=%d write=%d timeout=%d statuses=%s codes=%s partial=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, list(all_statuses), list(all_codes), all_partial))
end
