-- One page of jobs, oldest (lowest id) first, after the cursor, matching the filters.
-- ARGV: cursor ('' from the start), limit, state, queue, task ('' = any).
-- Returns {more (1/0), fields...}.
local limit = tonumber(ARGV[2])
local state, queue, task = ARGV[3], ARGV[4], ARGV[5]
local index = P .. 'ids'
if state ~= '' then
  index = P .. 'state:' .. state
end
local start = '-'
if ARGV[1] ~= '' then
  start = '(' .. ARGV[1]
end
local out = {0}
local CHUNK = 500
while true do
  local ids = redis.call('ZRANGEBYLEX', index, start, '+', 'LIMIT', 0, CHUNK)
  for _, id in ipairs(ids) do
    local keep = true
    if queue ~= '' or task ~= '' then
      local v = redis.call('HMGET', job_key(id), 'queue', 'task')
      keep = (queue == '' or v[1] == queue) and (task == '' or v[2] == task)
    end
    if keep then
      if #out > limit then
        out[1] = 1
        return out
      end
      out[#out + 1] = read_job(id)
    end
  end
  if #ids < CHUNK then
    return out
  end
  start = '(' .. ids[#ids]
end
