-- Seconds until the earliest delayed job of these queues is due (0 if one is due), or the next
-- token of an empty rate bucket of theirs (the queue's or a key's) comes, or -1 if neither.
-- A paused queue's jobs are left out (queues.lua): a due one would end every wait at once.
-- A bucket with a token is no reason to wake (the jobs may be held by a concurrency limit, whose
-- freed slot wakes waiters itself): waking then would spin.
-- ARGV: now, queue...
local now = clock(ARGV[1])
local best = nil
local paused = #ARGV >= 2 and redis.call('HMGET', P .. 'paused', unpack(ARGV, 2)) or {}
local limited = #ARGV >= 2 and redis.call('HMGET', P .. 'limits', unpack(ARGV, 2)) or {}

-- In seconds from now. An empty bucket's next token is never 'now' (a wait ending at once would
-- find no token and spin): float rounding of times near 2^31 s must not make it so.
local TOKEN_MIN = 1e-6

local function consider(seconds)
  if best == nil or seconds < best then best = seconds end
end

-- The first empty bucket among a queue's key buckets, by tat (the empty ones are those whose tat
-- lies over about (burst - 1) intervals ahead: the range starts a little before, more than a
-- rounding of now, and the exact test decides).
local function next_key_token(queue, rate)
  local from = fmt(now + (rate.burst - 1) * rate.interval - 1e-6)
  local offset, STEP = 0, 16
  while true do
    local found = redis.call('ZRANGEBYSCORE', P .. 'key_rate:' .. queue, from, '+inf', 'WITHSCORES', 'LIMIT',
      offset, STEP)
    for i = 2, #found, 2 do
      local tat = tonumber(found[i])
      if available(rate, tat, now) == 0 then
        return next_token_at(rate, tat)
      end
    end
    if #found < 2 * STEP then
      return nil
    end
    offset = offset + STEP
  end
end

for q = 2, #ARGV do
  local queue = ARGV[q]
  if paused[q - 1] ~= '1' then
    local first = redis.call('ZRANGE', P .. 'delayed:' .. queue, 0, 0, 'WITHSCORES')
    if first[2] then
      consider(math.max(0, tonumber(first[2]) - now))
    end
    local limits = parse_limits(limited[q - 1])
    if limits and limits.rate then
      local tat = tonumber(redis.call('ZSCORE', P .. 'rate', queue))
      if tat and available(limits.rate, tat, now) == 0 then
        consider(math.max(TOKEN_MIN, next_token_at(limits.rate, tat) - now))
      end
    end
    if limits and limits.key_rate then
      local at = next_key_token(queue, limits.key_rate)
      if at then
        consider(math.max(TOKEN_MIN, at - now))
      end
    end
  end
end
if best == nil then
  return '-1'
end
return fmt(best)
