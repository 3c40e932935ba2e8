-- Prepended (after common.lua) to the scripts that store new jobs, enqueue.lua and fire.lua, so
-- that a fired tick becomes a job exactly as an enqueued one does.

-- Store new jobs, each atomically: same id stored already, live idempotency key, capacity,
-- parents, insert.
-- args[first..last]: 11 values per job: id, queue, task, spec (see common.lua), priority,
--   idempotency key ('' none), key_ttl, run_at ('' = now + delay), delay, capacity ('' unbounded),
--   rate key ('' none).
-- key_grace: seconds an expired idempotency key is kept ('' forever). holders (optional): gets
--   the id of the job holding each duplicate, by the job's position in this call. links
--   (optional): the jobs with parents, by the index in args of their first value, as
--   {anyway = runs when a parent fails, json = the parents as a JSON array} (dependencies.lua).
-- Returns {now, outcome...}: 1 accepted, 0 rejected (full), or the holder's fields (duplicate);
--   for a job with parents, also 2 (BLOCKED), an error text (dead-lettered at once) or -k (its
--   k-th parent is not stored).
local function store_jobs(now, key_grace, args, first, last, holders, links)
  local stamp = fmt(now)
  local out = {stamp}
  local n = (last - first + 1) / 11
  -- A stored id means a producer sent the same job again: rare, so one EXISTS over the whole batch
  -- decides whether each job needs a look of its own.
  local job_keys = {}
  for i = first, last, 11 do
    job_keys[#job_keys + 1] = job_key(args[i])
  end
  local stored = 0
  for i = 1, #job_keys, SLICE do
    stored = stored + redis.call('EXISTS', unpack(job_keys, i, math.min(#job_keys, i + SLICE - 1)))
  end
  local seq = redis.call('INCRBY', P .. 'seq', n) - n
  local ch = changes()
  local depth = {} -- queue -> waiting jobs, counting this batch's
  local inserted = {}
  local with_keys = false
  -- Key names built once per call, not once per job.
  local state_keys = {PENDING = P .. 'state:PENDING', SCHEDULED = P .. 'state:SCHEDULED'}
  local ready_keys = {}
  local keyed = {} -- rate_keys: id, key, ...
  local j = 0
  for i = first, last, 11 do
    j = j + 1
    local id, queue, task, spec, priority = args[i], args[i + 1], args[i + 2], args[i + 3], args[i + 4]
    local key, key_ttl, run_at, delay, capacity = args[i + 5], args[i + 6], args[i + 7], args[i + 8], args[i + 9]
    local rate_key = args[i + 10]
    local jkey = job_keys[j]
    local holder = nil
    if inserted[id] or (stored > 0 and redis.call('EXISTS', jkey) == 1) then
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
      out[#out + 1] = redis.call('HMGET', job_key(holder), unpack(JOB_FIELDS))
      if holders then
        holders[j] = holder
      end
    else
      local full = false
      if capacity ~= '' then
        if depth[queue] == nil then
          depth[queue] = waiting(queue)
        end
        full = depth[queue] >= tonumber(capacity)
      end
      local link = links and links[i]
      local missing = false
      if link and not full then
        missing = weigh_parents(link) -- after the key and the capacity, as the contract says
      end
      if full then
        out[#out + 1] = 0
      elseif missing then
        out[#out + 1] = -missing
      else
        -- A child dead-lettered at once does not wait; a BLOCKED one does, and counts.
        if depth[queue] ~= nil and not (link and link.failed) then
          depth[queue] = depth[queue] + 1
        end
        local due, due_text = now, stamp -- most jobs are due now: no second formatting
        if run_at ~= '' then
          due, due_text = tonumber(run_at), run_at
        elseif delay ~= '0.0' then
          due = now + tonumber(delay)
          due_text = fmt(due)
        end
        local state = 'PENDING'
        if due > now then
          state = 'SCHEDULED'
        end
        if link then
          state = child_state(link, state)
        end
        seq = seq + 1
        local rank = fmt(ready_score(priority, seq))
        if rate_key == '' then
          redis.call('HSET', jkey, 'spec', spec, 'queue', queue, 'task', task, 'state', state, 'created_at', stamp,
            'run_at', due_text, 'rank', rank)
        else
          redis.call('HSET', jkey, 'spec', spec, 'queue', queue, 'task', task, 'state', state, 'created_at', stamp,
            'run_at', due_text, 'rank', rank, 'rate_key', rate_key)
          keyed[#keyed + 1] = id
          keyed[#keyed + 1] = rate_key
        end
        if key ~= '' then
          with_keys = true
          redis.call('HSET', P .. 'keys', key, id)
          redis.call('ZADD', P .. 'keyexp', fmt(now + tonumber(key_ttl)), key)
        end
        local outcome = 1
        if link then
          outcome = store_child(ch, id, jkey, queue, state, link, stamp)
        end
        if outcome == 1 then
          ch:add(state_keys[state], 0, id)
          ch:count(queue, state, 1)
          if due <= now then
            local ready = ready_keys[queue]
            if not ready then
              ready = P .. 'ready:' .. queue
              ready_keys[queue] = ready
            end
            ch:add(ready, rank, id)
          else
            ch:add(P .. 'delayed:' .. queue, due_text, id)
          end
          ch:wake(queue)
        end
        inserted[id] = true
        out[#out + 1] = outcome
      end
    end
  end
  ch:write()
  variadic('HSET', P .. 'rate_keys', keyed)
  -- Keys expired longer ago than the grace are forgotten by the calls that add keys (the cleaner
  -- for keys): a few more than each call adds, so that they cannot pile up under any steady load.
  if with_keys and key_grace ~= '' then
    sweep_keys(now - tonumber(key_grace), n + 10)
  end
  return out
end
