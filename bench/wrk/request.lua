-- One request, repeated: BENCH_METHOD BENCH_PATH with BENCH_BODY (JSON) and, when BENCH_KEY is
-- set, `Authorization: Bearer BENCH_KEY`. With BENCH_IDEMPOTENT_EVERY=N, every Nth request of a
-- connection carries an Idempotency-Key unique to the run (BENCH_RUN), thread and request.
-- `done` prints one JSON line that bench/load.py reads.

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local body = os.getenv("BENCH_BODY")
local key = os.getenv("BENCH_KEY")
local every = tonumber(os.getenv("BENCH_IDEMPOTENT_EVERY") or "0")
local run = os.getenv("BENCH_RUN") or tostring(os.time())

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local headers = {}
local sent = 0

function init(args)
  if key then headers["Authorization"] = "Bearer " .. key end
  if body then headers["Content-Type"] = "application/json" end
end

function request()
  sent = sent + 1
  if every > 0 and sent % every == 0 then
    headers["Idempotency-Key"] = run .. "-" .. tid .. "-" .. sent
  else
    headers["Idempotency-Key"] = nil
  end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "non_2xx_3xx": %d, "p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99)))
end
