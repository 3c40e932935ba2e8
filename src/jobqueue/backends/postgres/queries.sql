-- Every SQL statement the PostgreSQL backend runs, by name (sql.py loads them).
--
-- Placeholders, expanded once per backend: {schema} is the app's quoted schema name; {now} is
-- the current time in POSIX seconds, the server's clock unless $1 carries an injected one (tests
-- pass a FakeClock's time; production passes NULL), so every statement takes $1 even when it has
-- no use for it; {now_late} is the same time taken when it is evaluated, rather than when the
-- transaction started (so after any lock waits before it); {shard} picks the queue_counts row of
-- this connection; {job_columns} (or {x.job_columns}) lists the jobs columns in the order of
-- jobqueue.job.Job's fields; {freed} is the column freed of sql.py (FREED).
--
-- Count changes: every statement that moves jobs between states adds its net change per (queue,
-- state) to queue_counts in the same statement, sorted, so that two statements of one shard lock
-- those rows in the same order.

-- name: enqueue
-- Store new jobs: capped queues are locked and filled in batch order up to their capacity, live
-- keys are reported, keys reserved, jobs inserted, counts added, all in one statement.
-- $2: the jobs as a JSON array of objects (one parse on the server instead of eleven arrays
-- encoded by the driver): id, q queue, t task, p payload, pr priority, mr max_retries, k key,
-- kt key_ttl, d delay, ra run_at, to timeout, rk rate_key (left out when NULL). $3/$4: the capped queues of the batch (sorted) and
-- their capacities. $5: a NOTIFY channel, or NULL (the pool path announces after commit
-- instead). $6: look for ids already stored (a first round leaves that to ON CONFLICT (id): a
-- stored id then comes back as K). $7: NULL, or for each job its payload as text where it holds a
-- \u0000 escape (and p is null): json_to_recordset cannot read one, a cast to json can. The batch
-- holds no id or key twice (the caller splits such
-- batches into rounds). Rows: one A row with the server's now and the ids inserted (the caller
-- has the rest of each job); S id already stored and D key held, each with that job as JSON; K
-- admitted but beaten to its key or id by a concurrent producer (the caller runs it again). A job
-- in none of these was refused for capacity.
WITH input AS (
    SELECT i.id, i.queue, i.task, COALESCE(($7::text[])[i.ord]::json, i.payload) AS payload, i.priority,
           i.max_retries, i.key, i.key_ttl, i.delay, i.ra, i.timeout, i.rate_key, i.ord,
           t.now, COALESCE(i.ra, t.now + i.delay) AS due
    FROM ROWS FROM (json_to_recordset($2::json) AS (
             id text, q text, t text, p json, pr int, mr int, k text, kt float8, d float8,
             ra float8, "to" float8, rk text)) WITH ORDINALITY
         AS i(id, queue, task, payload, priority, max_retries, key, key_ttl, delay, ra, timeout, rate_key, ord),
         (SELECT {now} AS now) AS t
),
caps AS MATERIALIZED (
    SELECT c.queue, c.cap, {schema}.lock_waiting(c.queue) AS waiting
    FROM unnest($3::text[], $4::bigint[]) AS c(queue, cap)  -- in array order: sorted
),
stored AS (
    SELECT i.ord, j.* FROM input i JOIN {schema}.jobs j ON j.id = i.id WHERE $6::bool
),
held AS (
    SELECT i.ord, j.*
    FROM input i
    JOIN {schema}.idempotency_keys k ON k.key = i.key AND k.expires_at > i.now
    JOIN {schema}.jobs j ON j.id = k.job_id
    WHERE i.key IS NOT NULL AND i.ord NOT IN (SELECT ord FROM stored)
),
ranked AS (
    SELECT i.*, row_number() OVER (PARTITION BY i.queue ORDER BY i.ord) AS rn
    FROM input i
    WHERE i.ord NOT IN (SELECT ord FROM stored) AND i.ord NOT IN (SELECT ord FROM held)
),
admitted AS (
    SELECT r.* FROM ranked r LEFT JOIN caps c ON c.queue = r.queue
    WHERE c.cap IS NULL OR c.waiting + r.rn <= c.cap
),
keyed AS (
    INSERT INTO {schema}.idempotency_keys AS k (key, job_id, expires_at)
    SELECT a.key, a.id, a.now + a.key_ttl FROM admitted a WHERE a.key IS NOT NULL
    ON CONFLICT (key) DO UPDATE SET job_id = EXCLUDED.job_id, expires_at = EXCLUDED.expires_at
    -- Seen on the latest row version: a producer that took the key a moment ago wins.
    WHERE k.expires_at <= {now} OR k.job_id IS NULL
    RETURNING k.job_id
),
inserted AS (
    INSERT INTO {schema}.jobs (id, queue, task, payload, priority, state, max_retries,
                               idempotency_key, created_at, run_at, timeout, rate_key)
    SELECT a.id, a.queue, a.task, a.payload, a.priority,
           CASE WHEN a.due > a.now THEN 'SCHEDULED' ELSE 'PENDING' END,
           a.max_retries, a.key, a.now, a.due, a.timeout, a.rate_key
    FROM admitted a
    WHERE a.key IS NULL OR a.id IN (SELECT job_id FROM keyed)
    ORDER BY a.ord
    ON CONFLICT (id) DO NOTHING
    RETURNING id, queue, state
),
counted AS (
    INSERT INTO {schema}.queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, {shard}, count(*) FROM inserted GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
),
notified AS (
    SELECT count(pg_notify($5, q)) AS n
    FROM (SELECT DISTINCT queue AS q FROM inserted WHERE $5::text IS NOT NULL) AS d
)
SELECT 'A' AS outcome, NULL::bigint AS ord, NULL::text AS job, {now} AS now,
       (SELECT array_agg(id) FROM inserted) AS ids
FROM notified
UNION ALL
SELECT 'S', s.ord, row_to_json(s)::text, NULL, NULL FROM stored s
UNION ALL
SELECT 'D', h.ord, row_to_json(h)::text, NULL, NULL FROM held h
UNION ALL
SELECT 'K', a.ord, NULL, NULL, NULL FROM admitted a WHERE a.id NOT IN (SELECT id FROM inserted);

-- name: notify
-- Wake the workers listening on channel $1; $2 names the queues that received work.
SELECT pg_notify($1, $2);

-- name: claim
-- Lease up to $3 due jobs of the queues $2 to worker $4 for $5 seconds, highest priority first,
-- then oldest. SKIP LOCKED lets many workers claim at once without waiting for each other; the
-- per-queue LIMIT walks jobs_waiting from its start, so the cost does not grow with the backlog.
-- A paused queue is skipped before its jobs are read: the NOT EXISTS names only the outer queue,
-- so it gates the scan (a one-time filter per queue), a probe of queue_pauses_paused, which is
-- empty while no queue is paused. Read with this statement's snapshot: every claim that starts
-- after a pause committed sees it.
-- Limits (limits.py): gate probes queue_limits_limited, empty while no queue has limits; with none
-- among $2 every step on limits below is skipped by a one-time filter. With queue limits only,
-- queue_budgets (schema.sql) locks those queues' rows and says how many jobs each may give, the
-- scan takes no more, and spent moves the buckets on. With per-key limits the scan does not run:
-- claim_limited claims from all the queues instead, in the same order.
WITH t AS (SELECT {now} AS now),
gate AS (
    SELECT COALESCE(bool_or(true), false) AS limited,
           COALESCE(bool_or(l.key_rate_count IS NOT NULL OR l.key_concurrency IS NOT NULL), false) AS keyed
    FROM {schema}.queue_limits l WHERE l.queue = ANY ($2::text[]) AND l.limited
),
budgets AS MATERIALIZED (
    SELECT b.budget_queue, b.budget, b.budget_slots FROM {schema}.queue_budgets($2, (SELECT now FROM t)) AS b
    WHERE (SELECT limited AND NOT keyed FROM gate)
),
picked AS (
    SELECT j.id, j.state, j.priority, j.seq
    FROM unnest($2::text[]) AS q(name)
    LEFT JOIN budgets b ON b.budget_queue = q.name
    CROSS JOIN LATERAL (
        SELECT id, state, priority, seq FROM {schema}.jobs
        WHERE queue = q.name AND state IN ('PENDING', 'SCHEDULED', 'FAILED')
          AND run_at <= (SELECT now FROM t)
          AND NOT EXISTS (SELECT 1 FROM {schema}.queue_pauses p WHERE p.queue = q.name AND p.paused)
        ORDER BY priority DESC, seq
        LIMIT LEAST($3, b.budget)
        FOR UPDATE SKIP LOCKED
    ) AS j
    WHERE NOT (SELECT keyed FROM gate)
    ORDER BY j.priority DESC, j.seq
    LIMIT $3
),
claimed AS (
    UPDATE {schema}.jobs j
    SET state = 'PROCESSING', lease_token = j.lease_token + 1, lease_expires_at = t.now + $5,
        worker_id = $4, last_attempt = t.now, started_at = COALESCE(j.started_at, t.now),
        next_retry_at = NULL
    FROM picked p, t
    WHERE j.id = p.id
    RETURNING {j.job_columns}, p.state AS old_state, j.seq
),
counted AS (
    INSERT INTO {schema}.queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, {shard}, sum(n) FROM (
        SELECT queue, old_state AS state, -1 AS n FROM claimed
        UNION ALL SELECT queue, 'PROCESSING', 1 FROM claimed
    ) AS d GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
),
-- Rate.spend for the jobs taken: the rows are locked (queue_budgets), and an UPDATE computes on
-- their latest version.
-- One UPDATE per row, so also here: slot_waited, whether the slots held this claim back (it asked
-- for more than they allow), written only when it changes (FREED, sql.py, reads it).
spent AS (
    UPDATE {schema}.queue_limits l
    SET tat = CASE WHEN l.rate_count IS NOT NULL AND s.n IS NOT NULL
                   THEN GREATEST(COALESCE(l.tat, t.now), t.now) + s.n * (l.rate_per / l.rate_count) ELSE l.tat END,
        slot_waited = COALESCE(b.budget_slots < $3, l.slot_waited)
    FROM budgets b
    LEFT JOIN (SELECT queue, count(*) AS n FROM claimed GROUP BY queue) AS s ON s.queue = b.budget_queue, t
    WHERE l.queue = b.budget_queue
      AND ((l.rate_count IS NOT NULL AND s.n IS NOT NULL)
           OR (b.budget_slots IS NOT NULL AND l.slot_waited IS DISTINCT FROM (b.budget_slots < $3)))
)
SELECT {job_columns} FROM (
    SELECT {job_columns}, seq FROM claimed
    UNION ALL
    SELECT {f.job_columns}, f.seq FROM {schema}.claim_limited($2, $3::integer, $4, $5, (SELECT now FROM t)) AS f
    WHERE (SELECT keyed FROM gate)
) AS c ORDER BY priority DESC, seq;

-- name: complete
-- Complete attempts ($2 ids, $3 tokens, $4 JSON results); returns the ids it completed, so a
-- stale lease is simply absent, each with its queue when that has a concurrency limit (freed: the
-- caller wakes waiting workers, since a slot is free). A job a child has named (has_children, read on its latest version
-- once its lock is granted) is left to complete_parents (dependencies.sql), which resolves its
-- children too: this statement costs what it did before dependencies existed.
WITH done AS (
    UPDATE {schema}.jobs j
    SET state = 'COMPLETED', result = d.result::json, finished_at = {now},
        lease_expires_at = NULL, worker_id = NULL
    FROM unnest($2::text[], $3::bigint[], $4::text[]) AS d(id, token, result)
    WHERE j.id = d.id AND j.state = 'PROCESSING' AND j.lease_token = d.token AND NOT j.has_children
    RETURNING j.id, j.queue
),
counted AS (
    INSERT INTO {schema}.queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, {shard}, sum(n) FROM (
        SELECT queue, 'COMPLETED' AS state, 1 AS n FROM done
        UNION ALL SELECT queue, 'PROCESSING', -1 FROM done
    ) AS d GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
)
SELECT id, {freed} FROM done;

-- name: fail
-- Count failed attempts ($2 ids, $3 tokens, $4 errors, $5 retry delays: NULL dead-letters,
-- $6 if_expired: only while the lease is still expired, so a heartbeat in between wins; $7
-- tracebacks). A job a child has named is dead-lettered by fail_parents (dependencies.sql), as
-- complete leaves it. Each attempt failed is recorded (RECORD_ERRORS, sql.py).
-- Rows: id, queue, new state, and freed as in complete.
WITH t AS (SELECT {now} AS now),
done AS (
    UPDATE {schema}.jobs j
    SET state = CASE WHEN f.delay IS NULL THEN 'DEAD_LETTERED' ELSE 'FAILED' END,
        retry_count = j.retry_count + 1, error = f.error,
        next_retry_at = CASE WHEN f.delay IS NULL THEN NULL ELSE t.now + GREATEST(f.delay, 0.0) END,
        run_at = CASE WHEN f.delay IS NULL THEN j.run_at ELSE t.now + GREATEST(f.delay, 0.0) END,
        finished_at = CASE WHEN f.delay IS NULL THEN t.now ELSE j.finished_at END,
        lease_expires_at = NULL, worker_id = NULL
    FROM unnest($2::text[], $3::bigint[], $4::text[], $5::float8[], $6::bool[], $7::text[])
             AS f(id, token, error, delay, if_expired, traceback), t
    WHERE j.id = f.id AND j.state = 'PROCESSING' AND j.lease_token = f.token
      AND (NOT f.if_expired OR j.lease_expires_at <= t.now)
      AND (f.delay IS NOT NULL OR NOT j.has_children)
    RETURNING j.id, j.queue, j.state, j.lease_token, j.retry_count, j.last_attempt, f.error, f.traceback
),
{record_errors}
counted AS (
    INSERT INTO {schema}.queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, {shard}, sum(n) FROM (
        SELECT queue, state, 1 AS n FROM done
        UNION ALL SELECT queue, 'PROCESSING', -1 FROM done
    ) AS d GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
)
SELECT id, queue, state, {freed} FROM done;

-- name: heartbeat
-- Extend leases ($2 ids, $3 tokens) to now + $4 seconds; returns the ids still held.
UPDATE {schema}.jobs j SET lease_expires_at = {now} + $4
FROM unnest($2::text[], $3::bigint[]) AS h(id, token)
WHERE j.id = h.id AND j.state = 'PROCESSING' AND j.lease_token = h.token
RETURNING j.id;

-- name: release
-- Graceful shutdown: back to PENDING ($2 ids, $3 tokens) without counting the attempt.
WITH done AS (
    UPDATE {schema}.jobs j
    SET state = 'PENDING', run_at = {now}, lease_expires_at = NULL, worker_id = NULL
    FROM unnest($2::text[], $3::bigint[]) AS r(id, token)
    WHERE j.id = r.id AND j.state = 'PROCESSING' AND j.lease_token = r.token
    RETURNING j.id, j.queue
),
counted AS (
    INSERT INTO {schema}.queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, {shard}, sum(n) FROM (
        SELECT queue, 'PENDING' AS state, 1 AS n FROM done
        UNION ALL SELECT queue, 'PROCESSING', -1 FROM done
    ) AS d GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
)
SELECT id, queue FROM done;

-- name: expired_leases
-- PROCESSING jobs whose lease ended, oldest expiry first, at most $2 (walks jobs_leases).
SELECT {job_columns} FROM {schema}.jobs
WHERE state = 'PROCESSING' AND lease_expires_at <= {now}
ORDER BY lease_expires_at, id LIMIT $2;

-- name: due_in
-- Seconds until the earliest delayed or retried job of the queues $2 is due (<= 0: one is due
-- now), or until an empty rate bucket of theirs (a limited queue's own, or one of its keys') has a
-- token again; NULL when neither: one seek of jobs_due per queue, and of rate_buckets_due per
-- queue with a key rate. A paused queue's jobs are no work (a wait they ended would end at once
-- again: the worker would spin), skipped as claim skips them. So are a limited queue's jobs due
-- already: those the last claim left were held back by a limit, and are woken by a freed slot (a
-- NOTIFY) or by their token (the buckets here); only those coming due later end the wait.
WITH t AS (SELECT {now} AS now),
q AS (
    SELECT q.name, l.limited, l.rate_count, l.rate_per, l.rate_burst, l.tat,
           l.key_rate_count, l.key_rate_per, l.key_rate_burst
    FROM unnest($2::text[]) AS q(name)
    LEFT JOIN {schema}.queue_limits l ON l.queue = q.name AND l.limited
    WHERE NOT EXISTS (SELECT 1 FROM {schema}.queue_pauses p WHERE p.queue = q.name AND p.paused)
)
SELECT min(d.at) - (SELECT now FROM t) FROM (
    SELECT (SELECT run_at FROM {schema}.jobs
            WHERE queue = q.name AND state IN ('SCHEDULED', 'FAILED')
              AND run_at > CASE WHEN q.limited THEN (SELECT now FROM t) ELSE '-infinity'::float8 END
            ORDER BY run_at LIMIT 1) AS at
    FROM q
    UNION ALL
    -- Rate.next_token_at of the queue's bucket, when it is empty
    SELECT q.tat - (q.rate_burst - 1) * (q.rate_per / q.rate_count) FROM q
    WHERE q.rate_count IS NOT NULL
      AND {schema}.bucket_tokens(q.tat, (SELECT now FROM t), q.rate_per, q.rate_count, q.rate_burst) = 0
    UNION ALL
    -- the same for the key bucket that refills first of those empty (the range keeps the seek to
    -- the buckets within a token of empty)
    SELECT (SELECT b.tat FROM {schema}.rate_buckets b
            WHERE b.queue = q.name
              AND b.tat > (SELECT now FROM t) + (q.key_rate_burst - 2) * (q.key_rate_per / q.key_rate_count)
              AND {schema}.bucket_tokens(b.tat, (SELECT now FROM t), q.key_rate_per, q.key_rate_count,
                                         q.key_rate_burst) = 0
            ORDER BY b.tat LIMIT 1) - (q.key_rate_burst - 1) * (q.key_rate_per / q.key_rate_count)
    FROM q WHERE q.key_rate_count IS NOT NULL
) AS d;

-- name: get_job
SELECT {job_columns} FROM {schema}.jobs WHERE id = $1;

-- name: list_jobs
-- One page, oldest first ($1 cursor, $2 limit, then the filters given: {filters} becomes one
-- "AND column = $n" per filter, one statement per set of filters (sql.listing_statements). Not
-- "($n IS NULL OR column = $n)": a generic plan takes that for a filter matching one row, and
-- sorts every job after the cursor instead of walking the id index to the first page.
SELECT {job_columns} FROM {schema}.jobs WHERE id > $1{filters} ORDER BY id LIMIT $2;

-- name: list_running_jobs
-- list_jobs for state PROCESSING: the literal state lets the plan read the small jobs_leases
-- index and sort what it finds, where walking the id index would pass every other job first.
SELECT {job_columns} FROM {schema}.jobs WHERE state = 'PROCESSING' AND id > $1{filters} ORDER BY id LIMIT $2;

-- name: list_dead_jobs
-- list_jobs for state DEAD_LETTERED, by the jobs_dead index ($1 cursor, $2 limit, {filters}).
SELECT {job_columns} FROM {schema}.jobs WHERE state = 'DEAD_LETTERED' AND id > $1{filters} ORDER BY id LIMIT $2;

-- name: replay
-- Move dead job $2 back to PENDING with a fresh attempt budget, if its queue holds fewer than $3
-- waiting jobs (NULL: no limit; checked under the queue's lock, as enqueue does). Answers
-- ('done', job), ('full', state), or (state) when the job is not dead-lettered; no row: no job.
WITH t AS (SELECT {now} AS now),
cur AS (SELECT id, queue, state FROM {schema}.jobs WHERE id = $2),
room AS MATERIALIZED (
    SELECT cur.id, CASE WHEN $3::bigint IS NULL THEN true
                        ELSE {schema}.lock_waiting(cur.queue) < $3 END AS ok
    FROM cur WHERE cur.state = 'DEAD_LETTERED'
),
done AS (
    UPDATE {schema}.jobs j
    SET state = 'PENDING', retry_count = 0, finished_at = NULL, next_retry_at = NULL, run_at = t.now
    FROM t, room
    WHERE j.id = room.id AND room.ok AND j.state = 'DEAD_LETTERED'
    RETURNING {j.job_columns}
),
counted AS (
    INSERT INTO {schema}.queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, {shard}, sum(n) FROM (
        SELECT queue, 'PENDING' AS state, 1 AS n FROM done
        UNION ALL SELECT queue, 'DEAD_LETTERED', -1 FROM done
    ) AS d GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
)
SELECT 'done' AS outcome, {done.job_columns} FROM done
UNION ALL
SELECT CASE WHEN room.ok IS false THEN 'full' ELSE cur.state END, cur.id, {job_nulls}
FROM cur LEFT JOIN room ON room.id = cur.id WHERE NOT EXISTS (SELECT 1 FROM done);

-- name: cancel
-- Cancel job $2, waiting (BLOCKED too) or running: a running one's lease ends with it (its
-- worker's token then matches no PROCESSING job). Answers ('done', job, queues to wake: those of
-- the children it released, and its own when it freed a slot of a concurrency limit), or (state)
-- when it is finished; no row: no job. Its children are resolved as in complete.
WITH cur AS (SELECT id, queue, state FROM {schema}.jobs WHERE id = $2 FOR UPDATE),
done AS (
    UPDATE {schema}.jobs j
    SET state = 'CANCELLED', finished_at = {now}, next_retry_at = NULL, lease_expires_at = NULL, worker_id = NULL
    FROM cur
    WHERE j.id = cur.id AND cur.state IN ('PENDING', 'BLOCKED', 'SCHEDULED', 'FAILED', 'PROCESSING')
    RETURNING {j.job_columns}, cur.state AS old_state, j.has_children
),
released AS (
    SELECT r.* FROM done
    CROSS JOIN LATERAL {schema}.resolve_children(ARRAY[done.id], ARRAY['CANCELLED'], {now_late}) AS r
    WHERE done.has_children
),
counted AS (
    INSERT INTO {schema}.queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, {shard}, sum(n) FROM (
        SELECT queue, 'CANCELLED' AS state, 1 AS n FROM done
        UNION ALL SELECT queue, old_state, -1 FROM done
        UNION ALL SELECT moved_queue, moved_state, delta FROM released
    ) AS d GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
)
SELECT 'done' AS outcome, {done.job_columns},
       (SELECT array_agg(DISTINCT w.queue) FROM (
            SELECT moved_queue AS queue FROM released WHERE moved_state IN ('PENDING', 'SCHEDULED')
            UNION ALL
            SELECT done.queue WHERE done.old_state = 'PROCESSING' AND EXISTS (
                SELECT 1 FROM {schema}.queue_limits l WHERE l.queue = done.queue AND l.holds_slots)
        ) AS w) AS woken
FROM done
UNION ALL
SELECT cur.state, cur.id, {job_nulls}, NULL
FROM cur WHERE NOT EXISTS (SELECT 1 FROM done);

-- name: stats
-- Counts by queue and state (summed over shards), and in the row with no queue the number of
-- reserved keys: one statement, so one snapshot.
SELECT queue, state, sum(n)::bigint AS n FROM {schema}.queue_counts
GROUP BY queue, state HAVING sum(n) <> 0
UNION ALL
SELECT NULL, NULL, count(*) FROM {schema}.idempotency_keys;

-- name: prune
-- Delete up to $5 finished jobs that finished before their state's cutoff ($2 COMPLETED, $3
-- DEAD_LETTERED, $4 CANCELLED; NULL keeps them) with their dependency edges and failed attempts,
-- free the keys they held, and delete expired keys and the rate buckets full again (the same as
-- never used, so the buckets of keys come and go). Returns (jobs deleted, keys deleted); the caller repeats while a
-- full batch was deleted.
WITH gone AS (
    DELETE FROM {schema}.jobs WHERE id IN (
        SELECT id FROM {schema}.jobs
        WHERE (state = 'COMPLETED' AND finished_at < $2)
           OR (state = 'DEAD_LETTERED' AND finished_at < $3)
           OR (state = 'CANCELLED' AND finished_at < $4)
        LIMIT $5
    )
    RETURNING id, queue, state, idempotency_key
),
edges_as_child AS (
    DELETE FROM {schema}.job_dependencies d USING gone WHERE d.child_id = gone.id
),
edges_as_parent AS (
    -- Resolved all (the parent finished): a job no longer stored has no children to list.
    DELETE FROM {schema}.job_dependencies d USING gone WHERE d.parent_id = gone.id
),
errors AS (
    DELETE FROM {schema}.attempt_errors e USING gone WHERE e.job_id = gone.id
),
freed AS (
    UPDATE {schema}.idempotency_keys k SET job_id = NULL
    FROM gone WHERE k.key = gone.idempotency_key AND k.job_id = gone.id AND k.expires_at > {now}
),
expired AS (
    DELETE FROM {schema}.idempotency_keys WHERE expires_at <= {now} RETURNING 1
),
-- Buckets a claim is spending from are locked: skipped (so never a deadlock with its writes in
-- key order), and left for the next prune.
refilled AS (
    DELETE FROM {schema}.rate_buckets b
    USING (SELECT queue, rate_key FROM {schema}.rate_buckets WHERE tat <= {now} FOR UPDATE SKIP LOCKED) AS r
    WHERE b.queue = r.queue AND b.rate_key = r.rate_key
),
counted AS (
    INSERT INTO {schema}.queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, {shard}, -count(*) FROM gone GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
)
SELECT (SELECT count(*) FROM gone) AS jobs, (SELECT count(*) FROM expired) AS keys;

-- name: delete_jobs
-- Delete the finished jobs (COMPLETED, DEAD_LETTERED, CANCELLED) among the ids $2, as prune
-- deletes them (edges, failed attempts, key, counts); returns the ids deleted. Others are left
-- as they are.
WITH gone AS (
    DELETE FROM {schema}.jobs
    WHERE id = ANY ($2::text[]) AND state IN ('COMPLETED', 'DEAD_LETTERED', 'CANCELLED')
    RETURNING id, queue, state, idempotency_key
),
edges_as_child AS (
    DELETE FROM {schema}.job_dependencies d USING gone WHERE d.child_id = gone.id
),
edges_as_parent AS (
    DELETE FROM {schema}.job_dependencies d USING gone WHERE d.parent_id = gone.id
),
errors AS (
    DELETE FROM {schema}.attempt_errors e USING gone WHERE e.job_id = gone.id
),
freed AS (
    UPDATE {schema}.idempotency_keys k SET job_id = NULL
    FROM gone WHERE k.key = gone.idempotency_key AND k.job_id = gone.id AND k.expires_at > {now}
),
counted AS (
    INSERT INTO {schema}.queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, {shard}, -count(*) FROM gone GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
)
SELECT id FROM gone;

-- name: check_leases
-- The positions (1-based) of the leases ($1 ids, $2 tokens) whose job is PROCESSING under that
-- token. Reads only.
SELECT l.ord FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS l(id, token, ord)
JOIN {schema}.jobs j ON j.id = l.id
WHERE j.state = 'PROCESSING' AND j.lease_token = l.token;

-- name: check_writes
-- A write that changes nothing, for readiness probes: fails on a read-only server (a standby, a
-- full disk that made it read-only) as a job's insert would.
UPDATE {schema}.schema_version SET version = version;

-- name: register_tasks
-- Store tasks' job defaults ($2 names, $3 defaults as JSON text), replacing those of the same names.
INSERT INTO {schema}.tasks (name, defaults, updated)
SELECT t.name, t.defaults, {now} FROM unnest($2::text[], $3::text[]) AS t(name, defaults)
ON CONFLICT (name) DO UPDATE SET defaults = EXCLUDED.defaults, updated = EXCLUDED.updated;

-- name: registered_tasks
SELECT name, defaults FROM {schema}.tasks ORDER BY name;

-- ---- paused queues (queues.py) ------------------------------------------------------------

-- name: pause_queue
-- Pause ($2 true) or resume queue $1; $3 initial: keep a state stored before. Answers the state
-- after the call, read from the row's latest version under its lock (so two nodes starting
-- together with the same initial state agree). An explicit resume notifies channel $4 as an
-- enqueue does, delivered at commit, so a worker it wakes claims with the resume visible.
WITH stored AS (
    INSERT INTO {schema}.queue_pauses AS p (queue, paused) VALUES ($1, $2)
    ON CONFLICT (queue) DO UPDATE SET paused = CASE WHEN $3::bool THEN p.paused ELSE EXCLUDED.paused END
    RETURNING p.paused
),
notified AS (
    SELECT pg_notify($4, $1) FROM stored WHERE NOT $3::bool AND NOT stored.paused
)
SELECT paused, (SELECT count(*) FROM notified) AS notified FROM stored;

-- name: paused_queues
SELECT queue FROM {schema}.queue_pauses WHERE paused ORDER BY queue;

-- ---- queue limits (limits.py) ---------------------------------------------------------------

-- name: set_queue_limits
-- Put queue $1's limits in force ($2-$4 the rate's count, per, burst; $5 concurrency; $6-$8 the
-- key rate's; $9 key concurrency; NULL: none) unless $10 (configured) and they equal the limits
-- last configured ($11, the same eight as an array), in which case nothing changes; $10 also
-- stores them as the last configured. The bucket (tat) is kept. The row's latest version is read
-- under its lock (cur), so nodes starting together agree. Rows: ('set', the limits in force),
-- notifying channel $12 at commit, as a resume does; or ('kept', the limits in force). No row: the
-- row was inserted meanwhile by a node configuring these same limits, which are then in force.
WITH cur AS (
    SELECT rate_count, rate_per, rate_burst, concurrency, key_rate_count, key_rate_per, key_rate_burst,
           key_concurrency
    FROM {schema}.queue_limits WHERE queue = $1 FOR UPDATE
),
stored AS (
    INSERT INTO {schema}.queue_limits AS l (queue, rate_count, rate_per, rate_burst, concurrency, key_rate_count,
                                            key_rate_per, key_rate_burst, key_concurrency, configured)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $10::bool THEN $11::float8[] END)
    ON CONFLICT (queue) DO UPDATE
    SET rate_count = EXCLUDED.rate_count, rate_per = EXCLUDED.rate_per, rate_burst = EXCLUDED.rate_burst,
        concurrency = EXCLUDED.concurrency, key_rate_count = EXCLUDED.key_rate_count,
        key_rate_per = EXCLUDED.key_rate_per, key_rate_burst = EXCLUDED.key_rate_burst,
        key_concurrency = EXCLUDED.key_concurrency, configured = COALESCE(EXCLUDED.configured, l.configured)
    WHERE NOT ($10::bool AND l.configured IS NOT DISTINCT FROM $11::float8[])
    RETURNING rate_count, rate_per, rate_burst, concurrency, key_rate_count, key_rate_per, key_rate_burst,
              key_concurrency
),
notified AS (
    SELECT pg_notify($12, $1) FROM stored
)
SELECT 'set' AS outcome, s.*, (SELECT count(*) FROM notified) AS notified FROM stored s
UNION ALL
SELECT 'kept', c.*, 0 FROM cur c WHERE NOT EXISTS (SELECT 1 FROM stored);

-- name: queue_limits
-- The queues with limits in force, and those limits (as set_queue_limits answers them).
SELECT queue, rate_count, rate_per, rate_burst, concurrency, key_rate_count, key_rate_per, key_rate_burst,
       key_concurrency
FROM {schema}.queue_limits WHERE limited ORDER BY queue;

-- ---- periodic schedules (schedules.py) ------------------------------------------------------

-- name: register_schedules
-- Store schedules ($1 names, sorted and distinct; $2 specs; $3 paused; $4 last ticks; $5 last
-- jobs): a new name as given; a stored one takes the new spec only, keeping its state.
INSERT INTO {schema}.schedules AS s (name, spec, paused, last_tick, last_job_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::bool[], $4::float8[], $5::text[])
ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec
-- An unchanged spec (every restart) writes no new row version.
WHERE s.spec IS DISTINCT FROM EXCLUDED.spec;

-- name: schedules
SELECT name, spec, paused, last_tick, last_job_id FROM {schema}.schedules ORDER BY name;

-- name: pause_schedule
-- Pause ($2 true) or resume schedule $1; no row: no such schedule.
UPDATE {schema}.schedules SET paused = $2 WHERE name = $1
RETURNING name, spec, paused, last_tick, last_job_id;

-- name: fire_tick
-- Spend tick $2 of schedule $1, naming its job $3, unless paused or a tick at or after $2 was
-- fired: the first statement of the fire transaction. A scheduler racing for the same tick waits
-- for the row's lock, then (READ COMMITTED) re-checks the row the winner committed and updates
-- nothing. No row: not fired.
UPDATE {schema}.schedules SET last_tick = $2, last_job_id = $3
WHERE name = $1 AND NOT paused AND (last_tick IS NULL OR last_tick < $2)
RETURNING name;

-- name: set_last_job
-- In the fire transaction, when the tick's job was not the one stored: the job holding its key
-- ($2), or NULL when the queue was full.
UPDATE {schema}.schedules SET last_job_id = $2 WHERE name = $1;

-- ---- schema management (sql.py) -----------------------------------------------------------

-- name: create_schema
CREATE SCHEMA IF NOT EXISTS {schema};

-- name: lock_migrations
-- One migrator at a time per schema (workers starting together on a fresh database).
SELECT pg_advisory_xact_lock(hashtext('jobqueue-migrate'), hashtext($1));

-- name: set_search_path
SET LOCAL search_path TO {schema};

-- name: has_version_table
SELECT to_regclass($1) IS NOT NULL;

-- name: has_jobs_table
SELECT to_regclass($1) IS NOT NULL;

-- name: get_version
SELECT max(version) FROM {schema}.schema_version;

-- name: set_version
WITH cleared AS (DELETE FROM {schema}.schema_version)
INSERT INTO {schema}.schema_version (version) VALUES ($1);
