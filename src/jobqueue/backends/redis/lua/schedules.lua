-- Periodic schedules' stored state (StoredSchedule), in P.."schedules" (the set of names) and one
-- hash per schedule, P.."schedule:"..name: spec, paused ('0'/'1'), last_tick, last_job_id (the
-- last two absent until fire.lua writes them).
-- ARGV: "put", then 5 values per schedule: name, spec, paused, last_tick, last_job_id ('' none):
--   a new schedule is stored as given, one already stored takes only the new spec (its paused
--   flag and last tick belong to every scheduler, not to the one registering);
-- or "pause", name, paused: returns the schedule's {spec, paused, last_tick, last_job_id}, or nil
--   if unknown;
-- or "all": returns {name, {spec, paused, last_tick, last_job_id}, ...} (names whose hash is gone
--   are left out).
local FIELDS = {'spec', 'paused', 'last_tick', 'last_job_id'}
local op = ARGV[1]
if op == 'put' then
  for i = 2, #ARGV, 5 do
    local key = P .. 'schedule:' .. ARGV[i]
    if redis.call('EXISTS', key) == 1 then
      redis.call('HSET', key, 'spec', ARGV[i + 1])
    else
      redis.call('HSET', key, 'spec', ARGV[i + 1], 'paused', ARGV[i + 2])
      if ARGV[i + 3] ~= '' then
        redis.call('HSET', key, 'last_tick', ARGV[i + 3])
      end
      if ARGV[i + 4] ~= '' then
        redis.call('HSET', key, 'last_job_id', ARGV[i + 4])
      end
    end
    redis.call('SADD', P .. 'schedules', ARGV[i])  -- also when only its hash was left
  end
  return 0
elseif op == 'pause' then
  local key = P .. 'schedule:' .. ARGV[2]
  if redis.call('EXISTS', key) == 0 then
    return false
  end
  redis.call('HSET', key, 'paused', ARGV[3])
  return redis.call('HMGET', key, unpack(FIELDS))
end
local out = {}
for _, name in ipairs(redis.call('SMEMBERS', P .. 'schedules')) do
  local fields = redis.call('HMGET', P .. 'schedule:' .. name, unpack(FIELDS))
  if fields[1] then  -- a schedule whose hash was deleted by hand is gone, not an error
    out[#out + 1] = name
    out[#out + 1] = fields
  end
end
return out
