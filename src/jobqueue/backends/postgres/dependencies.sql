-- The statements of jobs that wait for other jobs (dependencies.py), with the placeholders of
-- queries.sql. A parent finishing resolves its children in the statement that finishes it
-- (complete_parents, fail_parents, cancel), through the resolve_children function of schema.sql.

-- name: enqueue_dependent
-- enqueue (queries.sql) for a round that holds jobs with parents: the same parameters, rows and
-- checks, and in $2 each such job's parents (dp, in order) and whether it runs when a parent
-- fails (ro). After the capacity locks, the parents are locked in id order and read at their
-- latest committed version, and the unfinished parents of the children stored are flagged
-- has_children: a parent finishing meanwhile waits for this statement, and then finds the flag
-- and the edge (or this statement waited for it, and finds it finished). Each job that passed the key and capacity checks is judged on its
-- parents: one naming a job not stored comes back as M with that id (nothing stored, its key
-- left free, no capacity taken); one whose parent was dead-lettered or cancelled is stored
-- DEAD_LETTERED unless it runs anyway (taking no capacity); one with unfinished parents BLOCKED.
-- Rows besides enqueue's: M (ord, the missing parent); for each job stored with parents, B
-- (BLOCKED), F (DEAD_LETTERED, its error in ids) or R (PENDING or SCHEDULED), with its id as job.
WITH input AS (
    SELECT i.id, i.queue, i.task, COALESCE(($7::text[])[i.ord]::json, i.payload) AS payload, i.priority,
           i.max_retries, i.key, i.key_ttl, i.delay, i.ra, i.timeout, i.rate_key, i.parents,
           COALESCE(i.run_anyway, false) AS run_anyway, i.ord, t.now, COALESCE(i.ra, t.now + i.delay) AS due
    FROM ROWS FROM (json_to_recordset($2::json) AS (
             id text, q text, t text, p json, pr int, mr int, k text, kt float8, d float8,
             ra float8, "to" float8, rk text, dp text[], ro bool)) WITH ORDINALITY
         AS i(id, queue, task, payload, priority, max_retries, key, key_ttl, delay, ra, timeout, rate_key,
              parents, run_anyway, ord),
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
candidates AS MATERIALIZED (
    SELECT i.* FROM input i
    WHERE i.ord NOT IN (SELECT ord FROM stored) AND i.ord NOT IN (SELECT ord FROM held)
),
locked AS MATERIALIZED (
    SELECT p.id, p.state FROM {schema}.jobs p
    WHERE p.id = ANY (ARRAY(SELECT DISTINCT unnest(c.parents) FROM candidates c))
      AND (SELECT count(*) FROM caps) >= 0  -- the capacity locks first, as every producer takes them
    ORDER BY p.id
    FOR UPDATE
),
-- The parents' states as one jsonb object: each job reads its parents' by key (no join of two
-- CTEs, which without hash joins would cost parents x parents for a fan-in).
states AS (
    SELECT COALESCE(jsonb_object_agg(l.id, l.state), '{}') AS of FROM locked l
),
judged AS (
    SELECT c.*, v.missing, v.open, v.failure
    FROM candidates c CROSS JOIN LATERAL (
        SELECT (array_agg(e.parent ORDER BY e.pos) FILTER (WHERE e.state IS NULL))[1] AS missing,
               count(*) FILTER (WHERE e.state NOT IN ('COMPLETED', 'DEAD_LETTERED', 'CANCELLED')) AS open,
               (array_agg('parent job ' || e.parent || ' was ' || replace(lower(e.state), '_', '-')
                          ORDER BY e.pos)
                    FILTER (WHERE e.state IN ('DEAD_LETTERED', 'CANCELLED') AND NOT c.run_anyway)
               )[1] AS failure
        FROM (SELECT u.parent, u.pos, (SELECT s.of FROM states s) ->> u.parent AS state
              FROM unnest(c.parents) WITH ORDINALITY AS u(parent, pos)) AS e
    ) AS v
),
ranked AS (
    -- The jobs before this one that will wait in its queue, plus this one.
    SELECT g.*, 1 + count(*) FILTER (WHERE g.missing IS NULL AND g.failure IS NULL) OVER (
               PARTITION BY g.queue ORDER BY g.ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS rn
    FROM judged g
),
admitted AS (
    SELECT r.* FROM ranked r LEFT JOIN caps c ON c.queue = r.queue
    WHERE c.cap IS NULL OR c.waiting + r.rn <= c.cap
),
keyed AS (
    INSERT INTO {schema}.idempotency_keys AS k (key, job_id, expires_at)
    SELECT a.key, a.id, a.now + a.key_ttl FROM admitted a WHERE a.key IS NOT NULL AND a.missing IS NULL
    ON CONFLICT (key) DO UPDATE SET job_id = EXCLUDED.job_id, expires_at = EXCLUDED.expires_at
    WHERE k.expires_at <= {now} OR k.job_id IS NULL
    RETURNING k.job_id
),
inserted AS (
    INSERT INTO {schema}.jobs (id, queue, task, payload, priority, state, max_retries, idempotency_key,
                               created_at, run_at, timeout, error, finished_at, parents, blocking_parents,
                               runs_if_parents_fail, rate_key)
    SELECT a.id, a.queue, a.task, a.payload, a.priority,
           CASE WHEN a.failure IS NOT NULL THEN 'DEAD_LETTERED'
                WHEN a.open > 0 THEN 'BLOCKED'
                WHEN a.due > a.now THEN 'SCHEDULED'
                ELSE 'PENDING' END,
           a.max_retries, a.key, a.now, a.due, a.timeout, a.failure,
           CASE WHEN a.failure IS NOT NULL THEN a.now END, a.parents,
           CASE WHEN a.parents IS NOT NULL THEN a.open END,
           CASE WHEN a.parents IS NOT NULL THEN a.run_anyway END, a.rate_key
    FROM admitted a
    WHERE a.missing IS NULL AND (a.key IS NULL OR a.id IN (SELECT job_id FROM keyed))
    ORDER BY a.ord
    ON CONFLICT (id) DO NOTHING
    RETURNING id, queue, state, parents, error
),
-- Only the parents of children stored: a child refused for capacity costs its parents nothing.
flagged AS (
    UPDATE {schema}.jobs p SET has_children = true
    WHERE p.id = ANY (ARRAY(
              SELECT DISTINCT u.parent FROM inserted i CROSS JOIN LATERAL unnest(i.parents) AS u(parent)
              WHERE (SELECT s.of FROM states s) ->> u.parent NOT IN ('COMPLETED', 'DEAD_LETTERED', 'CANCELLED')))
      AND NOT p.has_children
),
edges AS (
    INSERT INTO {schema}.job_dependencies (parent_id, child_id, resolved)
    SELECT u.parent, i.id,
           (SELECT s.of FROM states s) ->> u.parent IN ('COMPLETED', 'DEAD_LETTERED', 'CANCELLED')
    FROM inserted i CROSS JOIN LATERAL unnest(i.parents) AS u(parent)
    -- An edge left by an earlier job of this id (ids are the caller's to choose) takes the new one's.
    ON CONFLICT (parent_id, child_id) DO UPDATE SET resolved = EXCLUDED.resolved
),
counted AS (
    INSERT INTO {schema}.queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, {shard}, count(*) FROM inserted GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
),
notified AS (
    SELECT count(pg_notify($5, q)) AS n
    FROM (SELECT DISTINCT queue AS q FROM inserted
          WHERE $5::text IS NOT NULL AND state IN ('PENDING', 'SCHEDULED')) AS d
)
SELECT 'A' AS outcome, NULL::bigint AS ord, NULL::text AS job, {now} AS now,
       (SELECT array_agg(id) FROM inserted) AS ids
FROM notified
UNION ALL
SELECT 'S', s.ord, row_to_json(s)::text, NULL, NULL FROM stored s
UNION ALL
SELECT 'D', h.ord, row_to_json(h)::text, NULL, NULL FROM held h
UNION ALL
SELECT 'M', a.ord, a.missing, NULL, NULL FROM admitted a WHERE a.missing IS NOT NULL
UNION ALL
SELECT CASE i.state WHEN 'BLOCKED' THEN 'B' WHEN 'DEAD_LETTERED' THEN 'F' ELSE 'R' END, NULL, i.id, NULL,
       ARRAY[i.error]
FROM inserted i WHERE i.parents IS NOT NULL
UNION ALL
SELECT 'K', a.ord, NULL, NULL, NULL FROM admitted a
WHERE a.missing IS NULL AND a.id NOT IN (SELECT id FROM inserted);

-- name: complete_parents
-- complete (queries.sql) for the attempts it left: those of jobs a child has named, which resolve
-- their children in this statement (resolve_children), and so in its transaction. Returns the
-- ids it completed, each with freed (as complete's) and the queues of the children it released
-- (woken: the same on every row; NULL when none). Jobs are locked in id order, as a child's enqueue locks its parents.
-- Children are released as of {now_late}: a child enqueued while this statement waited for its
-- parent's lock was stamped later than {now}, and would otherwise look due in the future.
WITH done AS (
    UPDATE {schema}.jobs j
    SET state = 'COMPLETED', result = d.result::json, finished_at = {now},
        lease_expires_at = NULL, worker_id = NULL
    FROM (SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[]) AS u(id, token, result)
          ORDER BY u.id COLLATE "C") AS d
    WHERE j.id = d.id AND j.state = 'PROCESSING' AND j.lease_token = d.token
    RETURNING j.id, j.queue, j.has_children
),
released AS (
    SELECT r.* FROM (SELECT array_agg(id) AS ids FROM done WHERE has_children) AS f
    CROSS JOIN LATERAL {schema}.resolve_children(
        f.ids, array_fill('COMPLETED'::text, ARRAY[cardinality(f.ids)]), {now_late}) AS r
    WHERE f.ids IS NOT NULL
),
counted AS (
    INSERT INTO {schema}.queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, {shard}, sum(n) FROM (
        SELECT queue, 'COMPLETED' AS state, 1 AS n FROM done
        UNION ALL SELECT queue, 'PROCESSING', -1 FROM done
        UNION ALL SELECT moved_queue, moved_state, delta FROM released
    ) AS d GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
)
SELECT id, {freed}, (SELECT array_agg(DISTINCT moved_queue) FROM released
                     WHERE moved_state IN ('PENDING', 'SCHEDULED')) AS woken
FROM done;

-- name: fail_parents
-- fail (queries.sql) for the failures it left: jobs a child has named dead-lettered, resolving
-- their children as complete_parents does, the attempts recorded as fail records them; the last
-- two columns are as complete_parents'.
WITH t AS (SELECT {now} AS now),
done AS (
    UPDATE {schema}.jobs j
    SET state = CASE WHEN f.delay IS NULL THEN 'DEAD_LETTERED' ELSE 'FAILED' END,
        retry_count = j.retry_count + 1, error = f.error,
        next_retry_at = CASE WHEN f.delay IS NULL THEN NULL ELSE t.now + GREATEST(f.delay, 0.0) END,
        run_at = CASE WHEN f.delay IS NULL THEN j.run_at ELSE t.now + GREATEST(f.delay, 0.0) END,
        finished_at = CASE WHEN f.delay IS NULL THEN t.now ELSE j.finished_at END,
        lease_expires_at = NULL, worker_id = NULL
    FROM (SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[], $5::float8[], $6::bool[], $7::text[])
                  AS u(id, token, error, delay, if_expired, traceback)
          ORDER BY u.id COLLATE "C") AS f, t
    WHERE j.id = f.id AND j.state = 'PROCESSING' AND j.lease_token = f.token
      AND (NOT f.if_expired OR j.lease_expires_at <= t.now)
    RETURNING j.id, j.queue, j.state, j.has_children, j.lease_token, j.retry_count, j.last_attempt, f.error,
              f.traceback
),
{record_errors}
released AS (
    SELECT r.* FROM (SELECT array_agg(id) AS ids FROM done
                     WHERE has_children AND state = 'DEAD_LETTERED') AS f
    CROSS JOIN LATERAL {schema}.resolve_children(
        f.ids, array_fill('DEAD_LETTERED'::text, ARRAY[cardinality(f.ids)]), {now_late}) AS r
    WHERE f.ids IS NOT NULL
),
counted AS (
    INSERT INTO {schema}.queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, {shard}, sum(n) FROM (
        SELECT queue, state, 1 AS n FROM done
        UNION ALL SELECT queue, 'PROCESSING', -1 FROM done
        UNION ALL SELECT moved_queue, moved_state, delta FROM released
    ) AS d GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
)
SELECT id, queue, state, {freed}, (SELECT array_agg(DISTINCT moved_queue) FROM released
                                   WHERE moved_state IN ('PENDING', 'SCHEDULED')) AS woken
FROM done;

-- name: get_jobs
-- The jobs with the ids $1 that are stored, in no particular order.
SELECT {job_columns} FROM {schema}.jobs WHERE id = ANY ($1::text[]);

-- name: children
-- Up to $2 jobs enqueued depends_on job $1, smallest (oldest) id first.
SELECT child_id FROM {schema}.job_dependencies WHERE parent_id = $1 ORDER BY child_id LIMIT $2;
