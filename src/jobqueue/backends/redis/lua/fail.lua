-- Count failed attempts: FAILED until now + delay, or DEAD_LETTERED when the delay is ''; a job
-- dead-lettered with children resolves its open edges to them (dependencies.lua). Each attempt
-- failed is also recorded in the job's list of errors (P.."errors:"..id, common.lua).
-- ARGV: now, completed/dead/cancelled retention, errors kept per job, then id, token, error, delay,
--   if_expired (1/0), traceback (as JSON: a string or null) per attempt. With if_expired (the
--   reaper), only while the lease is still expired.
-- Returns 1 (done) or 0 (stale lease, or renewed in the meantime) per attempt.
local now = clock(ARGV[1])
local stamp = fmt(now)
local keep = tonumber(ARGV[5])
local ch = changes()
local out = {}
local dead = 0
for i = 6, #ARGV, 6 do
  local id, token, err, delay, if_expired = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local key = job_key(id)
  local v = redis.call('HMGET', key, 'state', 'lease_token', 'queue', 'lease_expires_at', 'rank', 'retry_count',
    'children', 'rate_key', 'last_attempt', 'worker_id')
  local held = v[1] == 'PROCESSING' and v[2] == token and (if_expired == '0' or tonumber(v[4]) <= now)
  if held then
    local queue = v[3]
    local retries = (tonumber(v[6]) or 0) + 1
    -- The attempt's record, [attempt, started_at, failed_at, worker_id, error, traceback] as JSON
    -- text: the times are stored as fmt wrote them (exact doubles), and the client sent the
    -- traceback encoded, so that only the short error is escaped here. RPUSH answers the length:
    -- the list is trimmed only once it holds more than `keep`, by one entry.
    local errors = P .. 'errors:' .. id
    local n = redis.call('RPUSH', errors, '[' .. retries .. ',' .. (v[9] or 'null') .. ',' .. stamp .. ','
      .. (v[10] and cjson.encode(v[10]) or 'null') .. ',' .. cjson.encode(err) .. ',' .. ARGV[i + 5] .. ']')
    if n > keep then
      redis.call('LTRIM', errors, -keep, -1)
    end
    ch:remove(P .. 'leases', id)
    leave(ch, queue, v[8])
    if delay == '' then
      redis.call('HSET', key, 'state', 'DEAD_LETTERED', 'error', err, 'finished_at', stamp, 'retry_count', retries)
      ch:add(P .. 'done:DEAD_LETTERED', stamp, id)
      ch:move(queue, id, 'PROCESSING', 'DEAD_LETTERED')
      dead = dead + 1
      if v[7] then
        dead = dead + resolve_children(ch, id, 'DEAD_LETTERED', now, stamp)
      end
    else
      local due = now + math.max(0, tonumber(delay))
      redis.call('HSET', key, 'state', 'FAILED', 'error', err, 'next_retry_at', fmt(due), 'run_at', fmt(due),
        'retry_count', retries)
      -- A retry always re-enters its queue, whatever the capacity.
      schedule(ch, queue, id, v[5], due, now)
      ch:move(queue, id, 'PROCESSING', 'FAILED')
      ch:wake(queue)
    end
  end
  out[#out + 1] = held and 1 or 0
end
ch:write()
retain('DEAD_LETTERED', now, ARGV[3], dead)
return out
