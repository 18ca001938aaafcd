-- wrk script for the reliability runs: POSTs an AdmissionReview read from
-- $EG_BODY, replacing __UID__ with a unique uid and __TAG__ with the image tag
-- ($EG_TAG_MODE=fresh: a tag never asked before, so every request makes a
-- registry lookup; otherwise $EG_TAG, default 1.0), and checks every answer:
-- HTTP 200, allowed, the uid echoed, and per $EG_EXPECT:
--   patch   - a patch is present        warning - warnings and no patch
--   any     - only the above
-- Prints CHECKED/FAILED_CHECKS and the latency percentiles at the end.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("EG_BODY"), "r"))
  template = f:read("*a")
  f:close()
  mode = os.getenv("EG_TAG_MODE") or "fixed"
  fixed_tag = os.getenv("EG_TAG") or "1.0"
  expect = os.getenv("EG_EXPECT") or "any"
  phase = os.getenv("EG_PHASE") or "p"
  counter = 0
  checked = 0
  failed = 0
  first_failure = ""
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local uid = string.format("%08x-0000-4000-8000-%012d", id, counter)
  local tag = fixed_tag
  if mode == "fresh" then
    tag = string.format("%s-%d-%d", phase, id, counter)
  end
  local body = template:gsub("__UID__", uid):gsub("__TAG__", tag)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  checked = checked + 1
  local ok = status == 200 and body:find('"allowed":true', 1, true) ~= nil
    and body:find('"uid":"%x+%-0000%-4000%-8000%-%d+"') ~= nil
  if ok and expect == "patch" then
    ok = body:find('"patch":"', 1, true) ~= nil
  elseif ok and expect == "warning" then
    ok = body:find('"warnings":[', 1, true) ~= nil and body:find('"patch":"', 1, true) == nil
  end
  if not ok then
    failed = failed + 1
    if first_failure == "" then
      first_failure = status .. " " .. body:sub(1, 300)
    end
  end
end

function done(summary, latency, requests)
  local c, f, first = 0, 0, ""
  for _, t in ipairs(threads) do
    c = c + t:get("checked")
    f = f + t:get("failed")
    if first == "" then first = t:get("first_failure") end
  end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d checked=%d failed_checks=%d errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d\n",
    summary.requests, c, f, e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format("LATENCY p50=%.2fms p99=%.2fms p99.9=%.2fms max=%.2fms rps=%.1f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000, summary.requests / (summary.duration / 1e6)))
  if first ~= "" then io.write("FIRST_FAILURE " .. first .. "\n") end
end
