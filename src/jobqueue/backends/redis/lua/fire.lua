-- Fire one tick of a schedule: unless the schedule is unknown, paused or at this tick (or a later
-- one) already, store its job exactly as enqueue does and record the tick. Check, job and record
-- are one script, so however many schedulers fire the same tick, one job comes of it.
-- ARGV: now, key_grace, schedule name, tick time, then the job's 11 values (store_jobs.lua).
-- Returns nil (not fired) or enqueue's reply for the one job; a job refused for capacity spends
-- the tick all the same (last_job_id then absent).
local key = P .. 'schedule:' .. ARGV[3]
local stored = redis.call('HMGET', key, 'paused', 'last_tick')
-- A missing schedule has no paused field (false here), a paused one has '1'.
if stored[1] ~= '0' or (stored[2] and tonumber(stored[2]) >= tonumber(ARGV[4])) then
  return false
end
local holders = {}
local out = store_jobs(clock(ARGV[1]), ARGV[2], ARGV, 5, #ARGV, holders)
-- The tick is kept as the caller's text: it reads back as exactly the float it was sent as.
if out[2] == 0 then
  redis.call('HSET', key, 'last_tick', ARGV[4])
  redis.call('HDEL', key, 'last_job_id')
else
  redis.call('HSET', key, 'last_tick', ARGV[4], 'last_job_id', holders[1] or ARGV[5])
end
return out
