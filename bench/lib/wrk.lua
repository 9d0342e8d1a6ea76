-- bench/lib/wrk.lua: optional path list (WRK_PATHS: a file, one path a line), JSON summary.
local paths = {}
local file = os.getenv("WRK_PATHS")
if file ~= nil and file ~= "" then
  for line in io.lines(file) do paths[#paths + 1] = line end
end

if #paths > 0 then
  local i = 0
  function init(args)
    i = math.random(0, #paths - 1)
  end
  function request()
    i = i % #paths + 1
    return wrk.format(nil, paths[i])
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
