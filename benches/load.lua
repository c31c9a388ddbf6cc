-- wrk script for benches/load.sh: each request takes the next entry of a fixed mix of
-- valid, invalid and malformed credentials, and every thread counts the statuses it gets.
-- The keys come from the environment (see load.sh).

local valid = os.getenv("LOAD_VALID")
local revoked = os.getenv("LOAD_REVOKED")
local replaced = os.getenv("LOAD_REPLACED")
local space = os.getenv("LOAD_SPACE")

-- { path, headers } per request kind, in the order they are sent.
local mix = {
  { "/me", { ["Authorization"] = "Bearer " .. valid } },                -- 200
  { "/me", { ["X-API-Key"] = valid } },                                 -- 200
  { "/spaces/one/items", { ["X-API-Key"] = space } },                   -- 200
  { "/spaces/two/items", { ["X-API-Key"] = space } },                   -- 403
  { "/me", { ["Authorization"] = "Bearer " .. revoked } },              -- 401, store hit
  { "/me", { ["X-API-Key"] = replaced } },                              -- 401, wrong secret
  { "/me", { ["X-API-Key"] = valid:sub(1, #valid - 1) } },              -- 401, truncated
  { "/me", { ["X-API-Key"] = valid:sub(1, 20) .. "!" .. valid:sub(22) } }, -- 401, charset
  { "/me", { ["Authorization"] = "Bearer" } },                          -- 401, no token
  { "/me", { ["X-API-Key"] = string.rep("A", 8192) } },                 -- 401, 8 KB
  { "/me", {} },                                                        -- 401, no key
  { "/me", { ["Authorization"] = "Bearer " .. valid, ["X-API-Key"] = valid } }, -- 400
  { "/health", {} },                                                    -- 200, public
}

local requests = {}
for i, entry in ipairs(mix) do
  requests[i] = wrk.format("GET", entry[1], entry[2])
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  statuses = {}
end

function request()
  counter = counter + 1
  return requests[(counter - 1) % #requests + 1]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  local keys = {}
  for status in pairs(total) do table.insert(keys, status) end
  table.sort(keys)
  for _, status in ipairs(keys) do
    io.write(string.format("status %d: %d\n", status, total[status]))
  end
  local errors = summary.errors
  io.write(string.format("requests: %d\n", summary.requests))
  io.write(string.format("socket errors: connect %d, read %d, write %d, timeout %d, status %d\n",
    errors.connect, errors.read, errors.write, errors.timeout, errors.status))
end
