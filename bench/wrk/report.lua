-- Shared by every wrk run of bench/run.sh: counts answers that are not a
-- success (HTTP status, and for GeWe routes the envelope's "ret":200) and
-- prints one JSON line at the end.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

function init(args)
  failed = 0
  check_ret = os.getenv("BENCH_CHECK_RET") == "1"
end

function response(status, headers, body)
  if status ~= 200 or (check_ret and not string.find(body, '"ret":200', 1, true)) then
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("failed") or 0)
  end
  io.write(string.format(
    '{"requests": %d, "duration_s": %.3f, "rps": %.1f, "failed": %d, "socket_errors": %d, ' ..
    '"p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    bad + summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end
