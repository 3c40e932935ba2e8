-- Jobs that wait for other jobs (depends_on). Prepended after common.lua to the scripts that store
-- jobs (enqueue, enqueue_linked, fire) and to those that finish them (complete, fail, cancel), so
-- that linking a child and resolving its edges happen in the same script as the step that causes
-- them: a child enqueued while its parent finishes sees it either finished or not yet, never half.
--
-- Keys and fields (P = KEYS[1]):
--   P.."children:"..id   zset of the jobs enqueued depends_on job `id` (score 0: by id), for
--                        children(); a child leaves it when deleted, and it goes with its parent
--   P.."waiters:"..id    list of the children whose edge to job `id` is still open; the first time
--                        the job finishes the list is taken whole and deleted, so each edge
--                        resolves once and a replayed parent finishing again resolves nothing
--   job hash "parents"   the child's depends_on as a JSON array (in JOB_FIELDS); absent without
--   job hash "waits"     while BLOCKED: how many of its edges are still open
--   job hash "anyway"    '1' for a child enqueued on_parent_failure="run"
--   job hash "children"  '1' once some child named the job: the scripts that finish or delete a
--                        job read it with the fields they read anyway, and look for children only
--                        when it is set, so a job without children costs no command more

-- The error of a child dead-lettered because of its parent: job.parent_failed_error's text.
local function parent_failed_error(parent, state)
  if state == 'CANCELLED' then
    return 'parent job ' .. parent .. ' was cancelled'
  end
  return 'parent job ' .. parent .. ' was dead-lettered'
end

-- Read a new child's parents before anything of it is stored. Returns the position of the first
-- parent not stored (then nothing of the child may be stored), or false; fills link.parents,
-- link.open (the unfinished parents: those edges stay open) and link.failed, link.failed_state
-- (the first parent whose failure fails the child at once; never set for a child that runs anyway).
local function weigh_parents(link)
  local parents = cjson.decode(link.json)
  local open = {}
  for k, parent in ipairs(parents) do
    local state = redis.call('HGET', job_key(parent), 'state')
    if not state then
      return k
    elseif state == 'DEAD_LETTERED' or state == 'CANCELLED' then
      if not link.anyway and not link.failed then
        link.failed, link.failed_state = parent, state
      end
    elseif state ~= 'COMPLETED' then
      open[#open + 1] = parent
    end
  end
  link.parents, link.open = parents, open
  return false
end

-- The state a new child is stored in: DEAD_LETTERED when a parent has failed it already, BLOCKED
-- while an edge is open, else what it would be without parents (`due_state`).
local function child_state(link, due_state)
  if link.failed then
    return 'DEAD_LETTERED'
  elseif #link.open > 0 then
    return 'BLOCKED'
  end
  return due_state
end

-- Store what a new child has beyond a job's fields, and its edges: every parent lists it, and
-- the open ones will resolve it. A BLOCKED or dead child is indexed here (a due one as any job).
-- Returns the child's outcome for store_jobs: 1 due (PENDING or SCHEDULED), 2 BLOCKED, or the
-- error of a child dead-lettered at once.
local function store_child(ch, id, key, queue, state, link, stamp)
  for _, parent in ipairs(link.parents) do
    redis.call('ZADD', P .. 'children:' .. parent, 0, id)
    redis.call('HSET', job_key(parent), 'children', '1')
  end
  if state == 'BLOCKED' then
    for _, parent in ipairs(link.open) do
      redis.call('RPUSH', P .. 'waiters:' .. parent, id)
    end
    redis.call('HSET', key, 'parents', link.json, 'waits', #link.open, 'anyway', link.anyway and '1' or '0')
    ch:add(state_key('BLOCKED'), 0, id)
    ch:count(queue, 'BLOCKED', 1)
    return 2
  end
  redis.call('HSET', key, 'parents', link.json)
  if state == 'DEAD_LETTERED' then
    local err = parent_failed_error(link.failed, link.failed_state)
    redis.call('HSET', key, 'error', err, 'finished_at', stamp)
    ch:add(state_key('DEAD_LETTERED'), 0, id)
    ch:add(P .. 'done:DEAD_LETTERED', stamp, id)
    ch:count(queue, 'DEAD_LETTERED', 1)
    return err
  end
  return 1
end

-- Job `id` has just finished as `state` (COMPLETED, DEAD_LETTERED or CANCELLED): resolve its open
-- edges. A child whose last edge resolves is released (PENDING, or SCHEDULED until its run_at)
-- and its queue woken; a failed parent dead-letters a child that does not run anyway, which then
-- resolves its own open edges (the cascade). Only a BLOCKED child changes: one cancelled,
-- dead-lettered or replayed meanwhile keeps its state.
-- The cascade is a worklist, not recursion: a job enters it only as it leaves BLOCKED, so at
-- most once, and each waiters list is taken once: the loop ends after one pass over the edges.
-- Returns how many children were dead-lettered, and whether any was released.
local function resolve_children(ch, id, state, now, stamp)
  local work, head = {id, state}, 1
  local dead, released = 0, false
  while work[head] do
    local parent, cause = work[head], work[head + 1]
    head = head + 2
    local list = P .. 'waiters:' .. parent
    local children = redis.call('LRANGE', list, 0, -1)
    if #children > 0 then
      redis.call('DEL', list)
    end
    for _, child in ipairs(children) do
      local key = job_key(child)
      local v = redis.call('HMGET', key, 'state', 'queue', 'waits', 'anyway', 'run_at', 'rank', 'children')
      if v[1] == 'BLOCKED' then
        local queue = v[2]
        if cause == 'COMPLETED' or v[4] == '1' then
          local waits = tonumber(v[3]) - 1
          if waits > 0 then
            redis.call('HSET', key, 'waits', waits)
          else
            -- Due at its own run_at, fixed at enqueue, or now if that has passed (as a replay).
            local due = math.max(tonumber(v[5]), now)
            local next_state = 'PENDING'
            if due > now then
              next_state = 'SCHEDULED'
            end
            redis.call('HSET', key, 'state', next_state, 'run_at', fmt(due), 'waits', 0)
            schedule(ch, queue, child, v[6], due, now)
            ch:move(queue, child, 'BLOCKED', next_state)
            ch:wake(queue)
            released = true
          end
        else
          redis.call('HSET', key, 'state', 'DEAD_LETTERED', 'error', parent_failed_error(parent, cause),
            'finished_at', stamp)
          ch:add(P .. 'done:DEAD_LETTERED', stamp, child)
          ch:move(queue, child, 'BLOCKED', 'DEAD_LETTERED')
          dead = dead + 1
          if v[7] then
            work[#work + 1] = child
            work[#work + 1] = 'DEAD_LETTERED'
          end
        end
      end
    end
  end
  return dead, released
end
