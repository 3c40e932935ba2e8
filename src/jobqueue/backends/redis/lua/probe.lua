-- A write that changes nothing anyone reads, for readiness probes: a server at maxmemory with
-- noeviction refuses it (OOM), as it would refuse a job. ARGV: now.
redis.call('SET', P .. 'probe', ARGV[1], 'PX', 60000)
return 1
