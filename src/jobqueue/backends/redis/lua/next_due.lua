-- Seconds until the earliest delayed job of these queues is due (0 if one is due), or -1 if none.
-- A paused queue's jobs are left out (queues.lua): a due one would end every wait at once.
-- ARGV: now, queue...
local now = clock(ARGV[1])
local best = nil
local paused = #ARGV >= 2 and redis.call('HMGET', P .. 'paused', unpack(ARGV, 2)) or {}
for q = 2, #ARGV do
  local first = {}
  if paused[q - 1] ~= '1' then
    first = redis.call('ZRANGE', P .. 'delayed:' .. ARGV[q], 0, 0, 'WITHSCORES')
  end
  if first[2] then
    local due = tonumber(first[2])
    if best == nil or due < best then best = due end
  end
end
if best == nil then
  return '-1'
end
return fmt(math.max(0, best - now))
