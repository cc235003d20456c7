-- wrk script: each request is a new delivery (a unique body.n, the source's idempotency path)
-- carrying the source's API key.
local counter = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function request()
  counter = counter + 1
  local body = '{"n":"' .. tid .. '-' .. counter .. '","order":{"id":' .. counter .. ',"total":42}}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-Key"] = "bench-key-0123456789"}, body)
end
