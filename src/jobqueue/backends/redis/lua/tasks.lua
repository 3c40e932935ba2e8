-- Tasks' job defaults as workers registered them (RegisteredTask.to_json), in the hash P.."tasks".
-- ARGV: "put", name, defaults, name, defaults, ... (replaces those names); or "all": returns
-- {name, defaults, ...}.
if ARGV[1] == 'put' then
  for i = 2, #ARGV, 2 do
    redis.call('HSET', P .. 'tasks', ARGV[i], ARGV[i + 1])
  end
  return 0
end
return redis.call('HGETALL', P .. 'tasks')
