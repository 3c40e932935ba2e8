-- Delete finished jobs (COMPLETED, DEAD_LETTERED or CANCELLED) by id, as prune deletes them
-- (forget_jobs); any other is left as it is. ARGV: id... (distinct). Returns the ids deleted.
local ids, states, rows = {}, {}, {}
for _, id in ipairs(ARGV) do
  local v = redis.call('HMGET', job_key(id), 'state', unpack(FORGET_FIELDS))
  local state = v[1]
  if state == 'COMPLETED' or state == 'DEAD_LETTERED' or state == 'CANCELLED' then
    ids[#ids + 1] = id
    states[#states + 1] = state
    rows[#rows + 1] = {v[2], v[3], v[4], v[5]}
  end
end
if #ids > 0 then
  forget_jobs(ids, states, rows)
end
return ids
