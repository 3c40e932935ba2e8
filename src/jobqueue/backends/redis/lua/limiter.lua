-- Prepended (after common.lua) to claim.lua: what a claim of a queue with limits admits, and the
-- tokens it spends. A queue without limits never comes here (claim.lua's HMGET of P.."limits"
-- finds no field for it).

-- Redis before 6.2 has no ZMSCORE: one ZSCORE per member there.
local function zmscore(key, members)
  local scores = redis.pcall('ZMSCORE', key, unpack(members))
  if type(scores) == 'table' and scores.err then
    scores = {}
    for i, member in ipairs(members) do
      scores[i] = redis.call('ZSCORE', key, member)
    end
  end
  return scores
end

-- How many ids a walk past the jobs of full keys reads per step (after a first step of the claim's
-- own size, which is all it reads when the jobs at the head are admitted).
local WALK = 500

-- The jobs of a limited queue that its limits admit now, in claim order, at most `limit`: appended
-- to `candidates` as {score, id, ready key, rate key or false}. Returns the plan that spend_plan
-- carries out for the jobs the claim takes of them, which are a prefix of them (candidates of all
-- queues are merged by score), so that the tokens and counts it simulated for a job hold as long
-- as every job before it of the queue is taken too. `merged`: the claim has several queues (else
-- the scores are not read).
local function admit(queue, ready, limits, limit, now, candidates, merged)
  local budget = limit
  local plan = {queue = queue, limits = limits, taken = {}}
  if limits.concurrency then
    local running = tonumber(redis.call('HGET', P .. 'counts', queue .. '|PROCESSING')) or 0
    budget = math.min(budget, math.max(0, limits.concurrency - running))
  end
  if limits.rate and budget > 0 then
    plan.tat = tonumber(redis.call('ZSCORE', P .. 'rate', queue))
    budget = math.min(budget, available(limits.rate, plan.tat, now))
  end
  if budget <= 0 then
    return plan
  end
  if not (limits.key_rate or limits.key_concurrency) then
    local top = redis.call('ZRANGE', ready, 0, budget - 1, 'WITHSCORES')
    for i = 1, #top, 2 do
      candidates[#candidates + 1] = {tonumber(top[i + 1]), top[i], ready, false}
    end
    return plan
  end
  -- Per-key limits: walk the queue in its order past the jobs of keys that are full, until
  -- `budget` jobs are admitted or the queue ends. The walk has no bound: a key with thousands of
  -- jobs at the head must not hide another key's job behind them. Each step reads its ids' keys
  -- with one HMGET, and the state of the keys met for the first time with one read each.
  local key_rate, key_concurrency = limits.key_rate, limits.key_concurrency
  local running, tats, full = {}, {}, {}
  plan.tats = {} -- each key's tat before this claim (false: full bucket)
  local admitted = {} -- ids, in order
  local start, size = 0, math.min(budget, SLICE)
  while #admitted < budget do
    -- Ids alone: scores (which would double the reply and cost Redis more than the ids) are read
    -- for the admitted jobs only.
    local ids = redis.call('ZRANGE', ready, start, start + size - 1)
    if #ids == 0 then
      break
    end
    local keys = redis.call('HMGET', P .. 'rate_keys', unpack(ids))
    local new = {}
    for _, key in ipairs(keys) do
      if key and running[key] == nil then
        running[key] = 0
        new[#new + 1] = key
      end
    end
    if #new > 0 then
      if key_concurrency then
        local counts = redis.call('HMGET', P .. 'running:' .. queue, unpack(new))
        for i, key in ipairs(new) do
          running[key] = tonumber(counts[i]) or 0
        end
      end
      if key_rate then
        local scores = zmscore(P .. 'key_rate:' .. queue, new)
        for i, key in ipairs(new) do
          local tat = tonumber(scores[i]) or false
          tats[key], plan.tats[key] = tat, tat
        end
      end
    end
    for j = 1, #ids do
      local key = keys[j]
      local ok = true
      if key then
        if full[key] then
          ok = false
        elseif (key_concurrency and running[key] >= key_concurrency)
            or (key_rate and available(key_rate, tats[key], now) == 0) then
          full[key] = true -- the rest of its jobs are skipped without a look
          ok = false
        else
          running[key] = running[key] + 1
          if key_rate then
            tats[key] = spend(key_rate, tats[key], now)
          end
        end
      end
      if ok then
        admitted[#admitted + 1] = ids[j]
        candidates[#candidates + 1] = {0, ids[j], ready, key}
        if #admitted == budget then
          break
        end
      end
    end
    if #ids < size then
      break
    end
    start = start + size
    size = WALK
  end
  -- Scores order the candidates of several queues; a claim of one queue needs none.
  if merged and #admitted > 0 then
    local scores = zmscore(ready, admitted)
    for i = 1, #admitted do
      candidates[#candidates - #admitted + i][1] = tonumber(scores[i])
    end
  end
  return plan
end

-- Spend the tokens of the jobs taken from a limited queue (plan.taken: their rate keys, false for
-- none, in claim order), one at a time as Rate.spend does. A token spent is never given back.
local function spend_plan(plan, now)
  local limits, taken = plan.limits, plan.taken
  if #taken == 0 then
    return
  end
  if limits.rate then
    local tat = plan.tat
    for _ = 1, #taken do
      tat = spend(limits.rate, tat, now)
    end
    redis.call('ZADD', P .. 'rate', fmt(tat), plan.queue)
  end
  if limits.key_rate then
    local tats, args = {}, {}
    for _, key in ipairs(taken) do
      if key then
        local tat = tats[key]
        if tat == nil then
          tat = plan.tats[key]
        end
        tats[key] = spend(limits.key_rate, tat, now)
      end
    end
    for key, tat in pairs(tats) do
      args[#args + 1] = fmt(tat)
      args[#args + 1] = key
    end
    variadic('ZADD', P .. 'key_rate:' .. plan.queue, args)
  end
end
