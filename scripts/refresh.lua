-- wrk script: refresh-token rotation where every request presents a distinct token.
-- Each thread owns a queue of tokens (its share of the file named by TOKENS); a request takes
-- one, its response gives back the successor. With more tokens than requests in flight, no token
-- is ever presented twice.
local thread_count = 0
local threads = {}

function setup(thread)
  thread:set("index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  queue = {}
  head, tail = 1, 0
  local i = 0
  local total = tonumber(os.getenv("WRK_THREADS") or "2")
  for line in io.lines(os.getenv("TOKENS")) do
    if i % total == index then
      tail = tail + 1
      queue[tail] = line
    end
    i = i + 1
  end
  failures = 0
end

function request()
  if head > tail then
    return wrk.format("POST", "/api/auth/refresh", {["Content-Type"] = "application/json"}, "{}")
  end
  local token = queue[head]
  queue[head] = nil
  head = head + 1
  return wrk.format("POST", "/api/auth/refresh", {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if status == 200 and token then
    tail = tail + 1
    queue[tail] = token
  else
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("wrk refresh: %d requests, %.1f req/s, non-2xx %d, p50 %.2f ms, p99 %.2f ms\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
