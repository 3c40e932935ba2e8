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
--   P.."seq"               counter giving each job its FIFO position
--   P.."wake:"..queue      pub/sub channel: work may be claimable in that queue
--   P.."probe"             string written by readiness probes (probe.lua), expires after a minute
--   P.."tasks"             hash task name -> its job defaults as registered by workers (tasks.lua)
--   P.."schedules"         set of the names of the periodic schedules (schedules.lua)
--   P.."schedule:"..name   hash, one per schedule: spec, paused, last_tick, last_job_id (fire.lua)
--   P.."paused"            hash queue -> '1' paused / '0' resumed, no field if never set (queues.lua);
--                          claim.lua and next_due.lua skip the paused queues
--
-- Times are POSIX seconds. Every stored time is written with fmt (17 significant digits), so it
-- reads back as exactly the double it was computed as: a float time survives the round trip.

local P = KEYS[1]

local JOB_FIELDS = {
  'spec', 'queue', 'task', 'state', 'retry_count', 'created_at', 'run_at', 'started_at',
  'finished_at', 'last_attempt', 'next_retry_at', 'error', 'result', 'lease_expires_at',
  'worker_id', 'lease_token', 'parents',
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
  return setmetatable({zadd = {}, zrem = {}, incr = {}, woken = {}}, Changes)
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
  for queue in pairs(self.woken) do
    redis.call('PUBLISH', P .. 'wake:' .. queue, '1')
  end
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

-- Delete up to `limit` jobs of a finished state that finished before `cutoff`; returns how many.
local function sweep_jobs(state, cutoff, limit)
  local done = P .. 'done:' .. state
  local ids = redis.call('ZRANGEBYSCORE', done, '-inf', '(' .. fmt(cutoff), 'LIMIT', 0, limit)
  if #ids == 0 then
    return 0
  end
  local ch = changes()
  local keys = {}
  for _, id in ipairs(ids) do
    local key = job_key(id)
    keys[#keys + 1] = key
    local v = redis.call('HMGET', key, 'queue', 'parents', 'children')
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
  end
  for i = 1, #keys, SLICE do
    redis.call('DEL', unpack(keys, i, math.min(#keys, i + SLICE - 1)))
  end
  variadic('ZREM', P .. 'state:' .. state, ids)
  variadic('ZREM', done, ids)
  ch:write()
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
