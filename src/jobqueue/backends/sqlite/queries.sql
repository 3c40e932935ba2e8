-- Every SQL statement the SQLite backend runs, by name. {job_columns} expands to the jobs
-- columns in the order of jobqueue.job.Job's fields.

-- name: insert_job
-- Store a new job (the caller has already checked its key and its queue's capacity).
INSERT INTO jobs (id, queue, task, payload, priority, state, max_retries, idempotency_key,
                  created_at, run_at, timeout, rate_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: get_key
-- The job holding an idempotency key, if the key is still live and the job still exists.
SELECT {job_columns} FROM idempotency_keys AS k JOIN jobs ON jobs.id = k.job_id
WHERE k.key = ? AND k.expires_at > ?;

-- name: put_key
INSERT INTO idempotency_keys (key, job_id, expires_at) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id, expires_at = excluded.expires_at;

-- name: waiting_count
-- Jobs counting against a queue's capacity.
SELECT COALESCE(SUM(n), 0) FROM queue_counts
WHERE queue = ? AND state IN ('PENDING', 'BLOCKED', 'SCHEDULED', 'FAILED');

-- name: claim_candidates
-- Due waiting jobs of one queue in claim order (walks the jobs_waiting index), none while it is
-- paused. The pause is read in the LIMIT, which SQLite evaluates once before the walk: one seek
-- of queue_settings (in the WHERE clause it ran after the first row, and a paused queue's claim
-- walked all its jobs). A queue with limits (and not paused) answers one more row, first, whose
-- seq is NULL: its limits, PROCESSING count and own bucket, for the limited path (limited.py),
-- which the jobs after it start. One more seek, so an unlimited claim runs no other statement.
SELECT NULL, limits, (SELECT n FROM queue_counts WHERE queue = ?1 AND state = 'PROCESSING'),
       (SELECT tat FROM rate_buckets WHERE queue = ?1 AND rate_key = '')
FROM queue_settings WHERE queue = ?1 AND limits IS NOT NULL AND paused IS NOT 1
UNION ALL
SELECT * FROM (
    SELECT seq, priority, state, rate_key FROM jobs
    WHERE queue = ?1 AND state IN ('PENDING', 'SCHEDULED', 'FAILED') AND run_at <= ?2
    ORDER BY priority DESC, seq
    LIMIT CASE WHEN EXISTS (SELECT 1 FROM queue_settings WHERE queue = ?1 AND paused) THEN 0 ELSE ?3 END
);

-- name: limited_candidates
-- More due waiting jobs of a limited queue, in claim order after the last one looked at (a
-- priority and a seq; a filter on index columns, the walk the same), but of no key that is full
-- (a JSON array): a key at its limit with thousands of jobs at the head is walked past, once.
SELECT seq, priority, state, rate_key FROM jobs
WHERE queue = :queue AND state IN ('PENDING', 'SCHEDULED', 'FAILED') AND run_at <= :now
  AND (priority < :priority OR (priority = :priority AND seq > :seq))
  AND (rate_key IS NULL OR rate_key NOT IN (SELECT value FROM json_each(:full)))
ORDER BY priority DESC, seq LIMIT :limit;

-- name: queue_gate
-- A limited queue's limits, PROCESSING count and own bucket (see claim_candidates), for a hand-off.
SELECT limits, (SELECT n FROM queue_counts WHERE queue = ?1 AND state = 'PROCESSING'),
       (SELECT tat FROM rate_buckets WHERE queue = ?1 AND rate_key = '')
FROM queue_settings WHERE queue = ?1 AND limits IS NOT NULL;

-- name: key_gates
-- Each of these keys' (a JSON array) PROCESSING jobs (a count of jobs_running_keys alone) and
-- bucket: one statement for all the keys a claim meets in one scan.
SELECT k.value,
       (SELECT count(*) FROM jobs WHERE queue = ?1 AND rate_key = k.value AND state = 'PROCESSING'),
       (SELECT tat FROM rate_buckets WHERE queue = ?1 AND rate_key = k.value)
FROM json_each(?2) AS k;

-- name: first_waiting
-- The priority of a queue's first due waiting job, if any: a limited queue's job is handed to a
-- waiting worker only ahead of none, since the jobs held back wait for their turn there; and a
-- slot freed wakes workers only if a job waits for it.
SELECT priority FROM jobs
WHERE queue = ? AND state IN ('PENDING', 'SCHEDULED', 'FAILED') AND run_at <= ?
ORDER BY priority DESC, seq LIMIT 1;

-- name: set_slot_waited
-- Whether the queue's last claim (or hand-off) was held back, written only when it changes.
UPDATE queue_settings SET slot_waited = ?2 WHERE queue = ?1 AND holds_slots AND slot_waited IS NOT ?2;

-- name: slot_waited
SELECT 1 FROM queue_settings WHERE queue = ? AND slot_waited;

-- name: set_buckets
-- The buckets a claim spent from; {rows} rows of (queue, rate_key, tat) in one statement
-- (limited.py widens it: a float bound as a parameter comes back exactly, unlike one in JSON).
-- REPLACE: a bucket is its key and one number, and an overwrite costs less than an upsert's
-- failed insert and update.
INSERT OR REPLACE INTO rate_buckets (queue, rate_key, tat) VALUES {rows};

-- name: empty_key_buckets
-- A queue's key buckets that may hold no token (those past a threshold), soonest first: a walk
-- of the queue's buckets (no index on tat: it cost every claim a second write per bucket, for
-- the sake of this read, by an idle worker, of the buckets prune has not dropped yet).
SELECT tat FROM rate_buckets WHERE queue = ? AND rate_key <> '' AND tat > ? ORDER BY tat LIMIT 8;

-- name: prune_buckets
-- Buckets full again are as good as absent: dropped, so that keys that come and go leave nothing.
DELETE FROM rate_buckets WHERE tat <= ?;

-- name: claim_jobs
-- Lease the chosen jobs (seqs given as a JSON array) to a worker with a fresh token each.
UPDATE jobs SET state = 'PROCESSING', lease_token = lease_token + 1, lease_expires_at = :expires,
    worker_id = :worker, last_attempt = :now, started_at = COALESCE(started_at, :now),
    next_retry_at = NULL
WHERE seq IN (SELECT value FROM json_each(:seqs))
RETURNING {job_columns}, seq;

-- name: complete_jobs
-- Complete many attempts in one statement; given [[id, token, result JSON], ...]. Returns the
-- ids it completed: a stale lease is simply absent, and whether a child named each (its edges
-- are then resolved; dependencies.py), and whether its queue has a concurrency limit (a slot
-- is free then: see limited.slots_wanted). The unary + keeps the planner from walking every
-- PROCESSING job (jobs_state) instead of looking each id up.
UPDATE jobs SET state = 'COMPLETED', result = done.result, finished_at = :now,
    lease_expires_at = NULL, worker_id = NULL
FROM (SELECT value ->> 0 AS id, value ->> 1 AS token, value ->> 2 AS result
      FROM json_each(:items)) AS done
WHERE jobs.id = done.id AND +jobs.state = 'PROCESSING' AND jobs.lease_token = done.token
RETURNING jobs.id, jobs.queue, jobs.has_children,
    jobs.queue IN (SELECT queue FROM queue_settings WHERE holds_slots);

-- name: retry_job
-- A failed attempt with retries left: waits in FAILED until its next run. With :if_expired set
-- (the reaper), only while the lease is still expired: a heartbeat in between wins. Run only
-- after record_error found the same lease holding (and numbered the attempt failed_attempts + 1).
UPDATE jobs SET state = 'FAILED', retry_count = retry_count + 1, error = :error,
    failed_attempts = failed_attempts + 1, next_retry_at = :due, run_at = :due,
    lease_expires_at = NULL, worker_id = NULL
WHERE id = :id AND state = 'PROCESSING' AND lease_token = :token
  AND (NOT :if_expired OR lease_expires_at <= :now)
RETURNING queue, jobs.queue IN (SELECT queue FROM queue_settings WHERE holds_slots);

-- name: dead_letter_job
-- As retry_job, with no retry left (or none wanted).
UPDATE jobs SET state = 'DEAD_LETTERED', retry_count = retry_count + 1, error = :error,
    failed_attempts = failed_attempts + 1, next_retry_at = NULL, finished_at = :now,
    lease_expires_at = NULL, worker_id = NULL
WHERE id = :id AND state = 'PROCESSING' AND lease_token = :token
  AND (NOT :if_expired OR lease_expires_at <= :now)
RETURNING queue, has_children, jobs.queue IN (SELECT queue FROM queue_settings WHERE holds_slots);

-- name: existing_jobs
-- Those of these ids (a JSON array) that are already stored.
SELECT {job_columns} FROM jobs WHERE id IN (SELECT value FROM json_each(?));

-- name: heartbeat_job
UPDATE jobs SET lease_expires_at = ?
WHERE id = ? AND state = 'PROCESSING' AND lease_token = ?;

-- name: release_job
-- Graceful shutdown: back to PENDING without counting the attempt.
UPDATE jobs SET state = 'PENDING', run_at = ?, lease_expires_at = NULL, worker_id = NULL
WHERE id = ? AND state = 'PROCESSING' AND lease_token = ?
RETURNING queue;

-- name: expired_leases
SELECT {job_columns} FROM jobs
WHERE state = 'PROCESSING' AND lease_expires_at <= ?
ORDER BY lease_expires_at, id LIMIT ?;

-- name: next_due
-- When the earliest delayed or retried job of one queue is due (one seek of jobs_due); no row if
-- there is none, or the queue is paused (its jobs are no work then: see claim_candidates). A
-- limited queue (not paused) answers one more row, its first column NULL: its limits and its own
-- bucket, whose next token may end the wait too (limited.py). A limited queue's jobs already due
-- ($2 is now) are left out: the claim before this wait found them held back by the limits, which
-- a token or a freed slot lifts (each ends the wait), and counting them due would spin the worker.
SELECT NULL, limits, (SELECT tat FROM rate_buckets WHERE queue = ?1 AND rate_key = '')
FROM queue_settings WHERE queue = ?1 AND limits IS NOT NULL AND paused IS NOT 1
UNION ALL
SELECT * FROM (
    SELECT run_at, NULL, NULL FROM jobs WHERE queue = ?1 AND state IN ('SCHEDULED', 'FAILED')
      AND (run_at > ?2 OR NOT EXISTS (SELECT 1 FROM queue_settings WHERE queue = ?1 AND limits IS NOT NULL))
    ORDER BY run_at
    LIMIT CASE WHEN EXISTS (SELECT 1 FROM queue_settings WHERE queue = ?1 AND paused) THEN 0 ELSE 1 END
);

-- name: get_job
SELECT {job_columns} FROM jobs WHERE id = ?;

-- name: list_jobs
-- One page, oldest first; NULL filters match everything.
SELECT {job_columns} FROM jobs
WHERE id > :cursor
  AND (:state IS NULL OR state = :state)
  AND (:queue IS NULL OR queue = :queue)
  AND (:task IS NULL OR task = :task)
ORDER BY id LIMIT :limit;

-- name: replay_job
UPDATE jobs SET state = 'PENDING', retry_count = 0, finished_at = NULL, next_retry_at = NULL,
    run_at = ?
WHERE id = ? AND state = 'DEAD_LETTERED'
RETURNING {job_columns};

-- name: cancel_job
-- A waiting or running job: a running one's lease ends (its token no longer holds: the worker's
-- complete, fail, heartbeat and release of it find no PROCESSING job), and whether that freed a
-- slot of a concurrency limit.
UPDATE jobs SET state = 'CANCELLED', finished_at = ?, next_retry_at = NULL, lease_expires_at = NULL,
    worker_id = NULL
WHERE id = ? AND state IN ('PENDING', 'BLOCKED', 'SCHEDULED', 'FAILED', 'PROCESSING')
RETURNING {job_columns}, has_children,
    jobs.queue IN (SELECT queue FROM queue_settings WHERE holds_slots);

-- name: check_leases
-- Which of these leases (a JSON array of [id, token]) still hold: their positions in it.
SELECT lease.key FROM json_each(?) AS lease JOIN jobs ON jobs.id = lease.value ->> 0
WHERE +jobs.state = 'PROCESSING' AND jobs.lease_token = lease.value ->> 1;

-- name: delete_jobs
-- Finished jobs of these ids (a JSON array), deleted as prune_jobs deletes them.
DELETE FROM jobs
WHERE id IN (SELECT value FROM json_each(?)) AND state IN ('COMPLETED', 'DEAD_LETTERED', 'CANCELLED')
RETURNING queue, id, state, parents, has_children, failed_attempts;

-- name: queue_counts
SELECT queue, state, n FROM queue_counts WHERE n <> 0;

-- name: add_counts
-- Apply one batch's net changes to the counts.
INSERT INTO queue_counts (queue, state, n) VALUES (?, ?, ?)
ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n;

-- name: key_count
SELECT count(*) FROM idempotency_keys;

-- name: prune_jobs
-- Finished jobs of one state that finished before a cutoff (with their ids, parents and whether
-- they had children: the edges on either side go with them; and whether they failed, for their
-- attempt_errors).
DELETE FROM jobs
WHERE state = ? AND finished_at < ? AND state IN ('COMPLETED', 'DEAD_LETTERED', 'CANCELLED')
RETURNING queue, id, parents, has_children, failed_attempts;

-- name: prune_keys
DELETE FROM idempotency_keys WHERE expires_at <= ?;

-- name: took_handed_job
-- A handed job is now the worker's: one slot fewer, its id in the list the worker's next claim reads.
UPDATE waiting_workers SET slots = slots - 1, handed = json_insert(handed, '$[#]', :id)
WHERE worker_id = :worker
RETURNING address;

-- name: register_waiting
INSERT INTO waiting_workers (worker_id, address, queues, slots, lease) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (worker_id) DO UPDATE SET address = excluded.address, queues = excluded.queues,
    slots = excluded.slots, lease = excluded.lease, handed = '[]';

-- name: get_waiting
-- A waiting worker's free slots and the ids of the jobs handed to it since it registered.
SELECT slots, handed FROM waiting_workers WHERE worker_id = ?;

-- name: unregister_waiting
-- A waiting worker claims again or stops: the ids of the jobs handed to it since it registered.
DELETE FROM waiting_workers WHERE worker_id = ? RETURNING handed;

-- name: insert_handed_job
-- A new job stored already claimed (first attempt, lease token 1) by the waiting worker of its
-- queue with the most free slots; nothing is inserted if there is none, or if the queue is
-- paused (read here, not at the worker's registration: a pause may come after it). The job's row
-- is the first write of the enqueue, so that a duplicate id fails before anything is written.
-- The last column says whether the queue has limits (read here for the same reason): the
-- enqueue then checks them, and takes the job back (unhand_job) if they hold it back.
INSERT INTO jobs (id, queue, task, payload, priority, state, max_retries, idempotency_key,
                  created_at, run_at, timeout, lease_token, lease_expires_at, worker_id,
                  last_attempt, started_at, rate_key)
SELECT :id, :queue, :task, :payload, :priority, 'PROCESSING', :max_retries, :key,
       :now, :now, :timeout, 1, :now + lease, worker_id, :now, :now, :rate_key
FROM waiting_workers
WHERE slots > 0 AND EXISTS (SELECT 1 FROM json_each(queues) WHERE value = :queue)
ORDER BY slots DESC
LIMIT CASE WHEN EXISTS (SELECT 1 FROM queue_settings WHERE queue = :queue AND paused) THEN 0 ELSE 1 END
RETURNING worker_id, lease_expires_at,
    EXISTS (SELECT 1 FROM queue_settings WHERE queue = :queue AND limits IS NOT NULL);

-- name: unhand_job
-- A job insert_handed_job stored for a worker that its queue's limits hold back: waiting, as
-- insert_job would have stored it.
UPDATE jobs SET state = 'PENDING', run_at = :due, lease_token = 0, lease_expires_at = NULL,
    worker_id = NULL, last_attempt = NULL, started_at = NULL
WHERE id = :id;

-- name: handed_jobs
-- Those of these ids (a JSON array) still leased to this worker.
SELECT {job_columns} FROM jobs
WHERE id IN (SELECT value FROM json_each(?)) AND state = 'PROCESSING' AND worker_id = ?;

-- name: release_handed
-- Handed jobs the worker never got: back to PENDING, the attempt not counted.
UPDATE jobs SET state = 'PENDING', lease_expires_at = NULL, worker_id = NULL, started_at = NULL,
    last_attempt = NULL
WHERE id IN (SELECT value FROM json_each(?)) AND state = 'PROCESSING' AND worker_id = ?
RETURNING queue;

-- ---- paused queues (queues.py) ---------------------------------------------------------------

-- name: queue_paused
-- A queue's paused state: no row, or NULL, while it was never set.
SELECT paused FROM queue_settings WHERE queue = ?;

-- name: set_queue_paused
INSERT INTO queue_settings (queue, paused) VALUES (?1, ?2)
ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused;

-- name: paused_queues
SELECT queue FROM queue_settings WHERE paused ORDER BY queue;

-- name: queue_limits_of
-- A queue's limits in force and last configured (NULL: none, never).
SELECT limits, configured FROM queue_settings WHERE queue = ?;

-- name: set_queue_limits
INSERT INTO queue_settings (queue, limits, configured, holds_slots) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (queue) DO UPDATE SET limits = excluded.limits, configured = excluded.configured,
    holds_slots = excluded.holds_slots;

-- name: all_queue_limits
SELECT queue, limits FROM queue_settings WHERE limits IS NOT NULL ORDER BY queue;

-- name: put_task
INSERT INTO tasks (name, defaults, updated) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET defaults = excluded.defaults, updated = excluded.updated;

-- name: get_tasks
SELECT name, defaults FROM tasks ORDER BY name;

-- name: put_schedule
-- Register a schedule: a known one takes the new spec and keeps its paused flag and last tick.
INSERT INTO schedules (name, spec, paused, last_tick, last_job_id) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET spec = excluded.spec;

-- name: get_schedules
SELECT name, spec, paused, last_tick, last_job_id FROM schedules ORDER BY name;

-- name: pause_schedule
UPDATE schedules SET paused = :paused WHERE name = :name
RETURNING name, spec, paused, last_tick, last_job_id;

-- name: spend_tick
-- Take a tick for the job about to be enqueued in the same transaction, unless the schedule is
-- unknown, paused, or already at or past it (another scheduler fired it): then no row.
UPDATE schedules SET last_tick = :at, last_job_id = :job_id
WHERE name = :name AND NOT paused AND (last_tick IS NULL OR last_tick < :at)
RETURNING 1;

-- name: set_tick_job
-- The tick's job was not the one offered: the holder of its key, or none (the queue was full).
UPDATE schedules SET last_job_id = ? WHERE name = ?;

-- ---- depends_on (dependencies.py) ---------------------------------------------------------

-- name: parent_states
-- The states of those of these ids (a JSON array) that are stored.
SELECT id, state FROM jobs WHERE id IN (SELECT value FROM json_each(?));

-- name: insert_child
-- Store a new job with parents (BLOCKED, or as its parents' states at enqueue decide).
INSERT INTO jobs (id, queue, task, payload, priority, state, max_retries, idempotency_key,
                  created_at, run_at, timeout, finished_at, error, parents, blocking_parents,
                  runs_if_parents_fail, rate_key)
VALUES (:id, :queue, :task, :payload, :priority, :state, :max_retries, :key,
        :now, :due, :timeout, :finished_at, :error, :parents, :blocking, :runs_anyway, :rate_key);

-- name: insert_edges
-- The edges from these parents (a JSON array of ids) to one child, all resolved or none.
INSERT INTO dependencies (parent, child, resolved)
SELECT value, :child, :resolved FROM json_each(:parents);

-- name: flag_parents
-- These jobs (a JSON array of ids) have a child waiting on them: their finish must resolve it.
UPDATE jobs SET has_children = 1
WHERE id IN (SELECT value FROM json_each(?)) AND NOT has_children;

-- name: resolve_edges
-- The edges from these parents (a JSON array of ids) not yet resolved, resolved now.
UPDATE dependencies SET resolved = 1
WHERE parent IN (SELECT value FROM json_each(?)) AND NOT resolved
RETURNING parent, child;

-- name: resolve_children
-- Apply resolved edges to their children, given [[child id, edges resolved, cause or null], ...]:
-- a child given a cause (its parent dead-lettered or cancelled) is dead-lettered unless it runs
-- anyway; one with no edge left unresolved is released: PENDING, or SCHEDULED until its own due
-- time, and due no earlier than now (a worker measures its wait from run_at). Only BLOCKED
-- children change. SET expressions read the row as it was before this update.
UPDATE jobs SET
    blocking_parents = jobs.blocking_parents - r.n,
    state = CASE
        WHEN r.cause IS NOT NULL AND NOT jobs.runs_if_parents_fail THEN 'DEAD_LETTERED'
        WHEN jobs.blocking_parents > r.n THEN 'BLOCKED'
        WHEN jobs.run_at > :now THEN 'SCHEDULED'
        ELSE 'PENDING' END,
    run_at = CASE
        WHEN r.cause IS NOT NULL AND NOT jobs.runs_if_parents_fail THEN jobs.run_at
        WHEN jobs.blocking_parents > r.n THEN jobs.run_at
        ELSE max(jobs.run_at, :now) END,
    error = CASE WHEN r.cause IS NOT NULL AND NOT jobs.runs_if_parents_fail THEN r.cause ELSE jobs.error END,
    finished_at = CASE WHEN r.cause IS NOT NULL AND NOT jobs.runs_if_parents_fail THEN :now
                       ELSE jobs.finished_at END
FROM (SELECT value ->> 0 AS child, value ->> 1 AS n, value ->> 2 AS cause
      FROM json_each(:resolved)) AS r
WHERE jobs.id = r.child AND +jobs.state = 'BLOCKED'
RETURNING jobs.id, jobs.queue, jobs.state, jobs.has_children;

-- name: children
SELECT child FROM dependencies WHERE parent = ? ORDER BY child LIMIT ?;

-- name: forget_edges
-- A pruned child's edges, given its id and its parents (a JSON array of ids).
DELETE FROM dependencies WHERE child = :child AND parent IN (SELECT value FROM json_each(:parents));

-- name: forget_children
-- A pruned parent's edges: a job no longer stored lists no children (its children keep its id).
DELETE FROM dependencies WHERE parent = ?;

-- ---- what the dashboard reads (insight.py) -------------------------------------------------

-- name: record_error
-- A failed attempt, recorded just before retry_job or dead_letter_job changes the job, on the
-- same lease check (no row: a stale failure): its worker and start are still on the row then.
-- OR REPLACE: should a row be left over under this number, the fail still goes through.
INSERT OR REPLACE INTO attempt_errors
    (job_id, n, attempt, started_at, failed_at, worker_id, error, traceback)
SELECT id, failed_attempts + 1, retry_count + 1, last_attempt, :now, worker_id, :error, :traceback
FROM jobs
WHERE id = :id AND state = 'PROCESSING' AND lease_token = :token
  AND (NOT :if_expired OR lease_expires_at <= :now)
RETURNING n;

-- name: trim_errors
-- A job's attempts older than the latest ones kept: given the id and the n of the last to drop.
DELETE FROM attempt_errors WHERE job_id = ? AND n <= ?;

-- name: forget_errors
-- The attempts of deleted jobs (a JSON array of ids).
DELETE FROM attempt_errors WHERE job_id IN (SELECT value FROM json_each(?));

-- name: attempt_errors
SELECT attempt, started_at, failed_at, error, traceback, worker_id FROM attempt_errors
WHERE job_id = ? ORDER BY n;

-- name: find_by_key
-- The job a key points to, live or past its TTL (until prune drops the key or the job), if it
-- holds that key (a key row left by a deleted job may name an id a later job took).
SELECT {job_columns} FROM idempotency_keys AS k JOIN jobs ON jobs.id = k.job_id
WHERE k.key = ? AND jobs.idempotency_key = k.key;

-- name: last_seq
SELECT coalesce(max(seq), 0) FROM jobs;

-- name: add_freed
-- Seqs that a delete freed at the end of jobs (see the arrivals table).
INSERT INTO arrivals (id, freed) VALUES (1, ?)
ON CONFLICT (id) DO UPDATE SET freed = freed + excluded.freed;

-- name: enqueued_total
-- Two seeks in one statement, so one snapshot: the last seq (the rightmost rowid) and the row.
SELECT coalesce((SELECT max(seq) FROM jobs), 0) + coalesce((SELECT freed FROM arrivals WHERE id = 1), 0);

-- name: put_worker_report
INSERT INTO worker_reports (worker_id, expires_at, report) VALUES (?, ?, ?)
ON CONFLICT (worker_id) DO UPDATE SET expires_at = excluded.expires_at, report = excluded.report;

-- name: drop_expired_reports
DELETE FROM worker_reports WHERE expires_at <= ?;

-- name: worker_reports
SELECT report FROM worker_reports WHERE expires_at > ? ORDER BY worker_id;

-- name: remove_worker_report
DELETE FROM worker_reports WHERE worker_id = ?;
