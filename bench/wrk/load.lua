-- One wrk script for every scenario, configured through the environment so the bench needs no
-- generated files:
--   BENCH_METHOD        GET (default) or POST
--   BENCH_BODY          request body; sent as application/x-www-form-urlencoded (the login form)
--   BENCH_AUTHORIZATION value of the Authorization header (the bearer token)
--   BENCH_DELAY_MS      pause of each connection between two requests (a paced load), 0 = none
--   BENCH_ROTATE_FILE   a file of values, one a line: each request carries one picked at random
--                       (the data-scale scenario: many bearer tokens, many users' login forms)
--   BENCH_ROTATE_FIELD  what a line is: "authorization" (the header's whole value) or "body"
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

-- Rotation: every request is built once, in init() (after wrk has set the Host header), so
-- picking one costs a random number and a table lookup whether the file holds one line or
-- 100,000: the one-token and the many-token runs load the generator alike.
local rotate_file = os.getenv("BENCH_ROTATE_FILE")
local rotate_field = os.getenv("BENCH_ROTATE_FIELD") or "authorization"
if rotate_file ~= nil and rotate_file ~= "" then
  if rotate_field == "body" then
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
  local prepared = {}
  local count = 0

  function init(args)
    for line in io.lines(rotate_file) do
      if line ~= "" then
        count = count + 1
        if rotate_field == "body" then
          prepared[count] = wrk.format(nil, nil, nil, line)
        else
          wrk.headers["Authorization"] = line
          prepared[count] = wrk.format()
        end
      end
    end
    if count == 0 then
      error("BENCH_ROTATE_FILE holds no line: " .. rotate_file)
    end
    math.randomseed(os.time() + count)
  end

  function request()
    return prepared[math.random(count)]
  end
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
