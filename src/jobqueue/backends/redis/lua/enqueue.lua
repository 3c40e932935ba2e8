-- Store new jobs, each atomically: same id stored already, live idempotency key, capacity, insert.
-- ARGV: now, key_grace, then 11 values per job: id, queue, task, payload (JSON), priority,
--   max_retries, idempotency key ('' none), key_ttl, run_at ('' = now + delay), delay, timeout
--   ('' none), capacity ('' unbounded) -- that is 12 per job.
-- Returns {now, outcome...}: 1 accepted, 0 rejected (full), or the holder's fields (duplicate).
local now = clock(ARGV[1])
local out = {fmt(now)}
local woken = {}
for i = 3, #ARGV, 12 do
  local id, queue, task, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local priority, max_retries, key, key_ttl = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  local run_at, delay, timeout, capacity = ARGV[i + 8], ARGV[i + 9], ARGV[i + 10], ARGV[i + 11]
  local jkey = job_key(id)
  local holder = nil
  if redis.call('EXISTS', jkey) == 1 then
    holder = id -- the same job sent again (a producer retrying after a lost answer)
  elseif key ~= '' then
    local expires = redis.call('ZSCORE', P .. 'keyexp', key)
    if expires and tonumber(expires) > now then
      local held = redis.call('HGET', P .. 'keys', key)
      -- A key whose job was pruned is free again.
      if held and redis.call('EXISTS', job_key(held)) == 1 then
        holder = held
      end
    end
  end
  if holder then
    out[#out + 1] = read_job(holder)
  elseif capacity ~= '' and waiting(queue) >= tonumber(capacity) then
    out[#out + 1] = 0
  else
    local due = now + tonumber(delay)
    if run_at ~= '' then
      due = tonumber(run_at)
    end
    local state = 'PENDING'
    if due > now then
      state = 'SCHEDULED'
    end
    local seq = redis.call('INCR', P .. 'seq')
    redis.call('HSET', jkey, 'id', id, 'queue', queue, 'task', task, 'payload', payload,
      'priority', priority, 'state', state, 'retry_count', 0, 'max_retries', max_retries,
      'created_at', fmt(now), 'run_at', fmt(due), 'lease_token', 0, 'seq', seq)
    if key ~= '' then
      redis.call('HSET', jkey, 'idempotency_key', key)
      redis.call('HSET', P .. 'keys', key, id)
      redis.call('ZADD', P .. 'keyexp', fmt(now + tonumber(key_ttl)), key)
    end
    if timeout ~= '' then
      redis.call('HSET', jkey, 'timeout', timeout)
    end
    redis.call('ZADD', P .. 'ids', 0, id)
    redis.call('ZADD', P .. 'state:' .. state, 0, id)
    count(queue, state, 1)
    schedule(queue, id, priority, seq, due, now)
    woken[queue] = true
    out[#out + 1] = 1
  end
end
for queue in pairs(woken) do
  wake(queue)
end
-- Keys expired longer ago than the grace are forgotten here, a few per call (the cleaner for keys).
if ARGV[2] ~= '' then
  sweep_keys(now - tonumber(ARGV[2]), 10)
end
return out
