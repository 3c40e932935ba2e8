-- Counts by queue and state, and reserved idempotency keys, from one moment.
-- Returns {key count, {"queue|STATE", n, ...}}.
return {redis.call('ZCARD', P .. 'keyexp'), redis.call('HGETALL', P .. 'counts')}
