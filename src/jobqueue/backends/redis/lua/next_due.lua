-- Seconds until the earliest delayed job of these queues is due (0 if one is due), or -1 if none.
-- ARGV: now, queue...
local now = clock(ARGV[1])
local best = nil
for q = 2, #ARGV do
  local first = redis.call('ZRANGE', P .. 'delayed:' .. ARGV[q], 0, 0, 'WITHSCORES')
  if first[2] then
    local due = tonumber(first[2])
    if best == nil or due < best then best = due end
  end
end
if best == nil then
  return '-1'
end
return fmt(math.max(0, best - now))
