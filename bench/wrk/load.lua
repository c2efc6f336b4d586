-- One wrk script for every scenario, configured through the environment so the bench needs no
-- generated files:
--   BENCH_METHOD        GET (default) or POST
--   BENCH_BODY          request body; sent as application/x-www-form-urlencoded (the login form)
--   BENCH_AUTHORIZATION value of the Authorization header (the bearer token)
--   BENCH_DELAY_MS      pause of each connection between two requests (a paced load), 0 = none
-- No response() callback: defining one makes wrk parse every body, which would cost the load
-- generator CPU that the server needs on a 2-core machine. Statuses >= 400 are counted by wrk
-- itself (summary.errors.status).

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local authorization = os.getenv("BENCH_AUTHORIZATION")
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0

wrk.method = method
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
if authorization ~= nil and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

-- One JSON line the bench parses; latencies in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
