-- One page of jobs, oldest (lowest id) first, after the cursor, matching the filters.
-- ARGV: cursor ('' from the start), limit, state, queue, task ('' = any).
-- Returns {more (1/0), fields...}.
--
-- Each state's index is ordered by id; without a state filter the eight are merged. Every job is
-- in exactly one of them, so the merge lists each job once.
local limit = tonumber(ARGV[2])
local state, queue, task = ARGV[3], ARGV[4], ARGV[5]
local STATES = {'PENDING', 'BLOCKED', 'SCHEDULED', 'PROCESSING', 'COMPLETED', 'FAILED', 'DEAD_LETTERED',
  'CANCELLED'}
local sources = {}
if state ~= '' then
  sources[1] = P .. 'state:' .. state
else
  for _, s in ipairs(STATES) do
    sources[#sources + 1] = P .. 'state:' .. s
  end
end
local start = '-'
if ARGV[1] ~= '' then
  start = '(' .. ARGV[1]
end

local CHUNK = 200
local buffers, positions, starts, exhausted = {}, {}, {}, {}
for k = 1, #sources do
  buffers[k], positions[k], starts[k], exhausted[k] = {}, 1, start, false
end

-- The next id of source k, read from Redis a chunk at a time; nil when the source is used up.
local function head(k)
  if positions[k] > #buffers[k] then
    if exhausted[k] then
      return nil
    end
    local ids = redis.call('ZRANGEBYLEX', sources[k], starts[k], '+', 'LIMIT', 0, CHUNK)
    buffers[k], positions[k] = ids, 1
    exhausted[k] = #ids < CHUNK
    if #ids == 0 then
      return nil
    end
    starts[k] = '(' .. ids[#ids]
  end
  return buffers[k][positions[k]]
end

-- Byte order, as ZRANGEBYLEX sorts (Lua's own < follows the server's locale).
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

local out = {0}
while true do
  local best, from = nil, nil
  for k = 1, #sources do
    local id = head(k)
    if id and (best == nil or before(id, best)) then
      best, from = id, k
    end
  end
  if best == nil then
    return out
  end
  positions[from] = positions[from] + 1
  local keep = true
  if queue ~= '' or task ~= '' then
    local v = redis.call('HMGET', job_key(best), 'queue', 'task')
    keep = (queue == '' or v[1] == queue) and (task == '' or v[2] == task)
  end
  if keep then
    if #out > limit then
      out[1] = 1
      return out
    end
    out[#out + 1] = read_job(best)
  end
end
