-- wrk script: client_credentials grants. CLIENT_ID and CLIENT_SECRET name a confidential client;
-- each request is `POST /token` with client_secret_basic.
local function b64(data)
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return ((data:gsub(".", function(x)
    local r, byte = "", x:byte()
    for i = 8, 1, -1 do r = r .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

wrk.method = "POST"
wrk.path = "/token"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. b64(os.getenv("CLIENT_ID") .. ":" .. os.getenv("CLIENT_SECRET"))

function done(summary, latency, requests)
  io.write(string.format("wrk client_credentials %s: %d requests, %.1f tokens/s, non-2xx %d, p50 %.2f ms, p99 %.2f ms\n",
    os.getenv("CLIENT_ID"), summary.requests, summary.requests / (summary.duration / 1e6),
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
