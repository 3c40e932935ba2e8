-- Mark attempts COMPLETED with their results, each only while its lease is held; a job with
-- children resolves its open edges to them (dependencies.lua).
-- ARGV: now, completed/dead/cancelled retention ('' keeps), then id, token, result JSON per attempt.
-- (One retention list for all scripts that finish jobs; this one reads the first.)
-- Returns 1 (done) or 0 (stale lease) per attempt, then one 2 more if children were released or
-- a concurrency slot freed (the caller wakes its own waiters, as after an enqueue; this script
-- publishes to the other processes').
local now = clock(ARGV[1])
local stamp = fmt(now)
local ch = changes()
local out = {}
local finished = 0
local released = false
local leases, done = P .. 'leases', P .. 'done:COMPLETED'
for i = 5, #ARGV, 3 do
  local id, token = ARGV[i], ARGV[i + 1]
  local key = job_key(id)
  local v = redis.call('HMGET', key, 'state', 'lease_token', 'queue', 'children', 'rate_key')
  local held = v[1] == 'PROCESSING' and v[2] == token
  out[#out + 1] = held and 1 or 0
  if held then
    redis.call('HSET', key, 'state', 'COMPLETED', 'result', ARGV[i + 2], 'finished_at', stamp)
    ch:remove(leases, id)
    ch:add(done, stamp, id)
    ch:move(v[3], id, 'PROCESSING', 'COMPLETED')
    finished = finished + 1
    released = leave(ch, v[3], v[5]) or released
    if v[4] then
      local _, freed = resolve_children(ch, id, 'COMPLETED', now, stamp)
      released = released or freed
    end
  end
end
ch:write()
retain('COMPLETED', now, ARGV[2], finished)
if released then
  out[#out + 1] = 2
end
return out
