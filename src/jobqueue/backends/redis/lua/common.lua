-- Prepended to every script of this folder when it is loaded (see scripts.py).
--
-- KEYS[1] is the namespace, e.g. "{jobqueue}:". Its braces are a Redis Cluster hash tag, so every
-- key the scripts build from it lives in one slot and a script may touch any of them.
-- Keys (P = KEYS[1]):
--   P.."job:"..id          hash, one per job: JOB_FIELDS, plus "rank" (its ready_score). "spec"
--                          holds what never changes and no script reads, as one JSON array
--                          [id, priority, max_retries, idempotency_key, timeout, payload] that
--                          the client builds: one field to write instead of six. An absent
--                          retry_count or lease_token is 0; lease_expires_at and worker_id mean
--                          something only while PROCESSING (finishing a job leaves them, which
--                          saves an HDEL per job; readers ignore them). Dependencies add fields
--                          and keys of their own: see dependencies.lua
--   P.."ready:"..queue     zset of due waiting jobs, score ready_score(priority, seq)
--   P.."delayed:"..queue   zset of waiting jobs due later (SCHEDULED, FAILED), score = due time
--   P.."leases"            zset of PROCESSING jobs, score = lease_expires_at
--   P.."state:"..STATE     zset of the ids in one state (score 0: ordered by id), for listing; every
--                          job is in exactly one, so together they are the index of all jobs
--   P.."done:"..STATE      zset of finished jobs (COMPLETED, DEAD_LETTERED, CANCELLED) by finished_at
--   P.."counts"            hash "queue|STATE" -> number of jobs (capacity checks and stats)
--   P.."keys"              hash idempotency key -> job id
--   P.."keyexp"            zset idempotency key -> expires at
--   P.."seq"               counter giving each job its FIFO position (never decremented: it is also
--                          the count of jobs the store has accepted, enqueued_total)
--   P.."errors:"..id       list, one per job that has failed an attempt: the latest attempts'
--                          records (fail.lua writes them, attempt_errors reads them), deleted with
--                          the job (forget_jobs)
--   P.."workers"           hash worker id -> its last report, P.."workers:expiry" zset worker id ->
--                          when that report expires (workers.lua)
--   P.."wake:"..queue      pub/sub channel: work may be claimable in that queue
--   P.."probe"             string written by readiness probes (probe.lua), expires after a minute
--   P.."tasks"             hash task name -> its job defaults as registered by workers (tasks.lua)
--   P.."schedules"         set of the names of the periodic schedules (schedules.lua)
--   P.."schedule:"..name   hash, one per schedule: spec, paused, last_tick, last_job_id (fire.lua)
--   P.."paused"            hash queue -> '1' paused / '0' resumed, no field if never set (queues.lua);
--                          claim.lua and next_due.lua skip the paused queues
--   P.."limits"            hash queue -> its limits in force (encoded as parse_limits reads them; no
--                          field: none), P.."configured_limits" the last configured ('' for none)
--                          (limits.lua); claim.lua reads the first for the queues it claims from
--   P.."slot_waited"       hash queue -> '1' while the last claim of a queue with a slot limit got
--                          fewer jobs than it asked for (claim.lua); leave() wakes workers only then
--   P.."rate"              zset queue -> tat of the queue's token bucket (no member: full)
--   P.."key_rate:"..queue  zset rate key -> tat of that key's bucket in the queue (no member: full)
--   P.."key_rated"         set of the queues that may have key buckets, for prune.lua
--   P.."running:"..queue   hash rate key -> PROCESSING jobs of the queue with that key (no field: 0),
--                          kept for every job with a rate_key, limited queue or not, so that a
--                          key_concurrency set while jobs run counts them
--   P.."rate_keys"         hash job id -> its rate_key, for jobs that have one (also the job hash's
--                          "rate_key"): a claim walking a queue past full keys reads the keys of a
--                          whole chunk of ids with one HMGET
--
-- Times are POSIX seconds. Every stored time is written with fmt (17 significant digits), so it
-- reads back as exactly the double it was computed as: a float time survives the round trip.

local P = KEYS[1]

local JOB_FIELDS = {
  'spec', 'queue', 'task', 'state', 'retry_count', 'created_at', 'run_at', 'started_at',
  'finished_at', 'last_attempt', 'next_retry_at', 'error', 'result', 'lease_expires_at',
  'worker_id', 'lease_token', 'parents', 'rate_key',
}

-- Priority (-1000..1000) above a 42-bit sequence: lower score = claimed first, and the score
-- stays below 2^53, so a double holds it exactly.
local SEQ_SPAN = 4398046511104

local function fmt(x)
  return string.format('%.17g', x)
end

-- "now": the time the caller passed (tests with a fake clock), else the Redis server's clock.
local function clock(arg)
  if arg ~= '' then
    return tonumber(arg)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function job_key(id)
  return P .. 'job:' .. id
end

local function read_job(id)
  return redis.call('HMGET', job_key(id), unpack(JOB_FIELDS))
end

local function ready_score(priority, seq)
  return (1000 - tonumber(priority)) * SEQ_SPAN + tonumber(seq)
end

-- Index changes are collected while a script walks its jobs and written once at its end, one
-- variadic command per key: one ZADD of 1,000 members costs far less than 1,000 ZADDs.
local Changes = {}
Changes.__index = Changes

local function changes()
  return setmetatable({zadd = {}, zrem = {}, incr = {}, woken = {}, running = {}}, Changes)
end

function Changes:add(key, score, member)
  local t = self.zadd[key]
  if not t then
    t = {}
    self.zadd[key] = t
  end
  t[#t + 1] = score
  t[#t + 1] = member
end

function Changes:remove(key, member)
  local t = self.zrem[key]
  if not t then
    t = {}
    self.zrem[key] = t
  end
  t[#t + 1] = member
end

function Changes:count(queue, state, delta)
  local field = queue .. '|' .. state
  self.incr[field] = (self.incr[field] or 0) + delta
end

local state_keys = {}

local function state_key(state)
  local key = state_keys[state]
  if not key then
    key = P .. 'state:' .. state
    state_keys[state] = key
  end
  return key
end

-- A job changes state: its counts and its state index follow.
function Changes:move(queue, id, old, new)
  self:count(queue, old, -1)
  self:count(queue, new, 1)
  self:remove(state_key(old), id)
  self:add(state_key(new), 0, id)
end

-- Lua's unpack is bounded by the C stack (~8,000 values): long argument lists go in slices.
local SLICE = 4000

local function variadic(command, key, args)
  for i = 1, #args, SLICE do
    redis.call(command, key, unpack(args, i, math.min(#args, i + SLICE - 1)))
  end
end

-- A job with a rate key starts (+1) or leaves (-1) PROCESSING.
function Changes:run(queue, key, delta)
  local t = self.running[queue]
  if not t then
    t = {}
    self.running[queue] = t
  end
  t[key] = (t[key] or 0) + delta
end

-- Work may have become claimable in a queue: its waiters are told once the changes are written.
function Changes:wake(queue)
  self.woken[queue] = true
end

function Changes:write()
  for key, members in pairs(self.zrem) do
    variadic('ZREM', key, members)
  end
  for key, pairs_ in pairs(self.zadd) do
    variadic('ZADD', key, pairs_)
  end
  for field, delta in pairs(self.incr) do
    if delta ~= 0 then
      redis.call('HINCRBY', P .. 'counts', field, delta)
    end
  end
  -- Running counts: one read and one write per queue, not a HINCRBY per key.
  for queue, deltas in pairs(self.running) do
    local hash, keys = P .. 'running:' .. queue, {}
    for key, delta in pairs(deltas) do
      if delta ~= 0 then
        keys[#keys + 1] = key
      end
    end
    local set, gone = {}, {}
    for i = 1, #keys, SLICE do
      local counts = redis.call('HMGET', hash, unpack(keys, i, math.min(#keys, i + SLICE - 1)))
      for j = 1, #counts do
        local key = keys[i + j - 1]
        local n = (tonumber(counts[j]) or 0) + deltas[key]
        if n > 0 then
          set[#set + 1] = key
          set[#set + 1] = n
        else
          gone[#gone + 1] = key
        end
      end
    end
    variadic('HSET', hash, set)
    variadic('HDEL', hash, gone)
  end
  for queue in pairs(self.woken) do
    redis.call('PUBLISH', P .. 'wake:' .. queue, '1')
  end
end

-- ---- queue limits (limits.lua stores them; jobqueue.limits is the reference) --------------------

-- Stored limits: a JSON array [rate count, rate period, burst, concurrency, key rate count, key
-- period, key burst, key concurrency], 0 for a limit not set. A rate becomes {interval, burst}.
local function rate_of(count, per, burst)
  if count == 0 then
    return nil
  end
  return {interval = per / count, burst = burst}
end

local function parse_limits(raw)
  if not raw or raw == '' then
    return nil
  end
  local a = cjson.decode(raw)
  return {
    rate = rate_of(a[1], a[2], a[3]), concurrency = a[4] > 0 and a[4] or nil,
    key_rate = rate_of(a[5], a[6], a[7]), key_concurrency = a[8] > 0 and a[8] or nil,
  }
end

-- The token bucket (GCRA), as Rate.available, Rate.spend (one token) and Rate.next_token_at do it,
-- operation for operation, so the doubles come out the same. `tat` false or nil: never used.
local EPSILON = 1e-9

local function available(rate, tat, now)
  if not tat or tat <= now then
    return rate.burst
  end
  return math.max(0, math.min(rate.burst, math.floor(rate.burst - (tat - now) / rate.interval + EPSILON)))
end

local function spend(rate, tat, now)
  return math.max(tat or now, now) + rate.interval
end

local function next_token_at(rate, tat)
  return tat - (rate.burst - 1) * rate.interval
end

-- The limits in force of a queue (false: none), read once per script call.
local limits_read = {}

local function limits_of(queue)
  local limits = limits_read[queue]
  if limits == nil then
    limits = parse_limits(redis.call('HGET', P .. 'limits', queue)) or false
    limits_read[queue] = limits
  end
  return limits
end

-- A job leaves PROCESSING (complete, fail, release, cancel): its key runs one job fewer, and in a
-- queue with a concurrency limit a slot is free, which waiting workers (in every process) must
-- hear of at once, if the queue's last claim was held back (slot_waited, claim.lua): else waking
-- them after every job done would only make them claim for nothing. Returns whether they were told.
local function leave(ch, queue, key)
  if key then
    ch:run(queue, key, -1)
  end
  local limits = limits_of(queue)
  if limits and (limits.concurrency or limits.key_concurrency)
      and redis.call('HEXISTS', P .. 'slot_waited', queue) == 1 then
    ch:wake(queue)
    return true
  end
  return false
end

-- The jobs of a queue that count against its capacity (JobState's WAITING_STATES).
local function waiting(queue)
  local c = redis.call('HMGET', P .. 'counts', queue .. '|PENDING', queue .. '|SCHEDULED', queue .. '|FAILED',
    queue .. '|BLOCKED')
  return (tonumber(c[1]) or 0) + (tonumber(c[2]) or 0) + (tonumber(c[3]) or 0) + (tonumber(c[4]) or 0)
end

-- Put a waiting job where a claim finds it: the ready set when due, the delayed set otherwise.
local function schedule(ch, queue, id, rank, due, now)
  if due <= now then
    ch:add(P .. 'ready:' .. queue, rank, id)
  else
    ch:add(P .. 'delayed:' .. queue, fmt(due), id)
  end
end

-- What forget_jobs reads of each job it deletes.
local FORGET_FIELDS = {'queue', 'parents', 'children', 'rate_key'}

-- Delete finished jobs: ids[i] in states[i], rows[i] its FORGET_FIELDS. Their counts, indexes,
-- edges, children lists and failed attempts go with them (a deleted job's idempotency key holds
-- nothing: a key whose job is gone is free).
local function forget_jobs(ids, states, rows)
  local ch = changes()
  local keys, by_state, keyed = {}, {}, {}
  for i, id in ipairs(ids) do
    local v, state = rows[i], states[i]
    -- Its list of failed attempts is deleted whether or not it has one: a DEL of a missing key
    -- costs one lookup, less than keeping a flag on the job and reading it here.
    keys[#keys + 1] = job_key(id)
    keys[#keys + 1] = P .. 'errors:' .. id
    if v[1] then
      ch:count(v[1], state, -1)
    end
    -- A deleted child leaves its parents' lists of children, and their open edges (a child
    -- cancelled, or failed by another parent, while this one ran: a job stored later under its
    -- id is not it); a deleted parent takes its own (dependencies.lua). Both fields are absent
    -- on a job without dependencies.
    if v[2] then
      for _, parent in ipairs(cjson.decode(v[2])) do
        ch:remove(P .. 'children:' .. parent, id)
        redis.call('LREM', P .. 'waiters:' .. parent, 0, id)
      end
    end
    if v[3] then
      keys[#keys + 1] = P .. 'children:' .. id
      keys[#keys + 1] = P .. 'waiters:' .. id
    end
    if v[4] then
      keyed[#keyed + 1] = id
    end
    local list = by_state[state]
    if not list then
      list = {}
      by_state[state] = list
    end
    list[#list + 1] = id
  end
  for i = 1, #keys, SLICE do
    redis.call('DEL', unpack(keys, i, math.min(#keys, i + SLICE - 1)))
  end
  for state, list in pairs(by_state) do
    variadic('ZREM', P .. 'state:' .. state, list)
    variadic('ZREM', P .. 'done:' .. state, list)
  end
  if #keyed > 0 then
    variadic('HDEL', P .. 'rate_keys', keyed)
  end
  ch:write()
end

-- Delete up to `limit` jobs of a finished state that finished before `cutoff`; returns how many.
local function sweep_jobs(state, cutoff, limit)
  local done = P .. 'done:' .. state
  local ids = redis.call('ZRANGEBYSCORE', done, '-inf', '(' .. fmt(cutoff), 'LIMIT', 0, limit)
  if #ids == 0 then
    return 0
  end
  local states, rows = {}, {}
  for i, id in ipairs(ids) do
    states[i] = state
    rows[i] = redis.call('HMGET', job_key(id), unpack(FORGET_FIELDS))
  end
  forget_jobs(ids, states, rows)
  return #ids
end

-- Forget up to `limit` idempotency keys that expired at or before `cutoff`; returns how many.
local function sweep_keys(cutoff, limit)
  local keys = redis.call('ZRANGEBYSCORE', P .. 'keyexp', '-inf', fmt(cutoff), 'LIMIT', 0, limit)
  if #keys > 0 then
    variadic('HDEL', P .. 'keys', keys)
    variadic('ZREM', P .. 'keyexp', keys)
  end
  return #keys
end

-- The built-in cleaner. Each script that finishes jobs in a state (complete: COMPLETED, fail:
-- DEAD_LETTERED, cancel: CANCELLED) also deletes jobs of that state that finished longer ago than
-- its retention (seconds, '' = keep), a few more than it finished and oldest first: memory stays
-- flat under steady load without a separate service, and no call blocks Redis for long.
local function retain(state, now, keep, finished)
  if keep ~= '' and finished > 0 then
    sweep_jobs(state, now - tonumber(keep), finished + 10)
  end
end

-- ---- the script itself follows ----
