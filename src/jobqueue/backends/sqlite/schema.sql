-- jobqueue SQLite schema: the current full schema. A fresh database is created from this file;
-- an existing one is brought here by migrations/NNNN_*.sql. tests/unit/test_sqlite_schema.py
-- proves the two agree.

CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY,       -- arrival order: FIFO within a priority
    id               TEXT NOT NULL UNIQUE,      -- UUIDv7
    queue            TEXT NOT NULL,
    task             TEXT NOT NULL,
    payload          TEXT NOT NULL,             -- JSON
    priority         INTEGER NOT NULL,
    state            TEXT NOT NULL,
    retry_count      INTEGER NOT NULL DEFAULT 0,
    max_retries      INTEGER NOT NULL,
    idempotency_key  TEXT,
    created_at       REAL NOT NULL,             -- POSIX seconds
    run_at           REAL NOT NULL,             -- not claimable before this
    started_at       REAL,
    finished_at      REAL,
    last_attempt     REAL,
    next_retry_at    REAL,
    error            TEXT,
    result           TEXT,                      -- JSON
    timeout          REAL,
    lease_expires_at REAL,
    worker_id        TEXT,
    lease_token      INTEGER NOT NULL DEFAULT 0, -- bumped by every claim: fences stale workers
    -- depends_on (dependencies.py): the parents' ids as a JSON array (NULL: none), how many of
    -- its edges are unresolved (while BLOCKED), on_parent_failure = "run", and whether a child
    -- was enqueued waiting on it (only then does its finish look for edges to resolve).
    parents          TEXT,
    blocking_parents INTEGER NOT NULL DEFAULT 0,
    runs_if_parents_fail INTEGER NOT NULL DEFAULT 0,
    has_children     INTEGER NOT NULL DEFAULT 0,
    -- Limits (limited.py): the key of its queue's per-key limits, NULL for none.
    rate_key         TEXT,
    -- How many of its attempts failed in all, replays included (unlike retry_count): the ``n``
    -- of its latest attempt_errors row, and whether deleting the job must look for any.
    failed_attempts  INTEGER NOT NULL DEFAULT 0
);

-- Claim walks this index in order: only waiting jobs are in it, so it stays small however many
-- finished jobs the table holds.
CREATE INDEX jobs_waiting ON jobs (queue, priority DESC, seq, run_at)
    WHERE state IN ('PENDING', 'SCHEDULED', 'FAILED');
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'PROCESSING';
-- An idle worker's wait ends when the earliest delayed or retried job of its queues comes due
-- (due_in): one seek here, however many jobs wait.
CREATE INDEX jobs_due ON jobs (queue, run_at) WHERE state IN ('SCHEDULED', 'FAILED');
CREATE INDEX jobs_finished ON jobs (finished_at)
    WHERE state IN ('COMPLETED', 'DEAD_LETTERED', 'CANCELLED');
-- A key's running jobs, counted by a claim of a queue with a per-key concurrency limit: one seek
-- and as many entries as that key runs (jobs without a key are not in it).
CREATE INDEX jobs_running_keys ON jobs (queue, rate_key)
    WHERE state = 'PROCESSING' AND rate_key IS NOT NULL;

-- Keys outlive neither their TTL nor prune; kept apart from jobs so that job retention and key
-- retention are independent.
CREATE TABLE idempotency_keys (
    key        TEXT PRIMARY KEY,
    job_id     TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;

-- Job counts by queue and state: the capacity check and stats read a few rows instead of
-- counting the table. Every statement that adds, removes or moves a job adjusts them in the same
-- transaction (backend.py, _Counts), once per batch: a trigger per row cost ~12 us per insert.
CREATE TABLE queue_counts (
    queue TEXT NOT NULL,
    state TEXT NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) WITHOUT ROWID;

-- Workers waiting for work (their last claim found none). An enqueue hands each due job to one of
-- them: inserted already claimed for it, in the same transaction, and sent to its process's wake
-- socket (``address``), so that no claim lies between enqueue and start. ``slots``: how many more
-- it takes; ``handed``: ids of the jobs handed since it registered (a JSON array), which its next
-- claim takes in case a message was lost. Its next claim, or its stopping, removes the row.
CREATE TABLE waiting_workers (
    worker_id TEXT PRIMARY KEY,
    address   TEXT NOT NULL,
    queues    TEXT NOT NULL,             -- JSON array
    slots     INTEGER NOT NULL,
    lease     REAL NOT NULL,             -- seconds
    handed    TEXT NOT NULL DEFAULT '[]' -- JSON array of job ids
) WITHOUT ROWID;

-- Each task's job defaults as its workers registered them (RegisteredTask.to_json), so that a job
-- submitted by task name from anywhere gets them.
CREATE TABLE tasks (
    name     TEXT PRIMARY KEY,
    defaults TEXT NOT NULL,
    updated  REAL NOT NULL
) WITHOUT ROWID;

-- Periodic schedules, shared by every scheduler (jobqueue.periodic writes ``spec``, a JSON text).
-- A tick is fired by moving ``last_tick`` forward in the transaction that enqueues its job
-- (schedules.py, fire): under the write lock, so that one tick becomes one job however many
-- schedulers and processes fire it. ``last_job_id`` is NULL when the queue was full then.
CREATE TABLE schedules (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    paused      INTEGER NOT NULL DEFAULT 0,
    last_tick   REAL,              -- POSIX seconds of the last tick fired; NULL before the first
    last_job_id TEXT
) WITHOUT ROWID;

-- One row per edge of depends_on: ``child`` (a job id) named ``parent`` (a job id). An edge is
-- resolved once, when its parent first finishes (or at once if it had finished when the child was
-- enqueued); the rows stay, so that children() can list them, until the child is pruned.
CREATE TABLE dependencies (
    parent   TEXT NOT NULL,
    child    TEXT NOT NULL,
    resolved INTEGER NOT NULL,
    PRIMARY KEY (parent, child)
) WITHOUT ROWID;

-- Settings of queues, shared by every process on the file (queues.py). ``paused``: 1 or 0 once
-- pause_queue has set it; no row (or NULL) while it never has, the only case in which
-- pause_queue(initial=True) sets it. Claims, the hand-off and due_in read it in their own statement.
-- ``limits``: the limits in force (limited.py's JSON form; NULL: none), read by the same
-- statements; ``configured``: the limits last configured from code (NULL: never), which a restart
-- with the same code leaves alone; ``slot_waited``: 1 while the last claim (or hand-off) of the
-- queue got fewer jobs than it asked for, so a slot freed may be wanted (limited.slots_wanted);
-- ``holds_slots``: 1 with a concurrency limit, when a job
-- leaving PROCESSING must wake waiting workers (read by the statements that finish jobs).
CREATE TABLE queue_settings (
    queue  TEXT PRIMARY KEY,
    paused INTEGER,
    limits TEXT,
    configured TEXT,
    holds_slots INTEGER NOT NULL DEFAULT 0,
    slot_waited INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Token buckets of rate limits (limited.py), in the GCRA form: ``tat`` is when the bucket is full
-- again (a bucket absent, or with ``tat`` in the past, is full). ``rate_key`` '' is the queue's
-- own bucket, any other a key's. Prune drops the rows that are full again.
CREATE TABLE rate_buckets (
    queue    TEXT NOT NULL,
    rate_key TEXT NOT NULL,
    tat      REAL NOT NULL,
    PRIMARY KEY (queue, rate_key)
) WITHOUT ROWID;

-- What the dashboard reads (insight.py). Each failed attempt of a job, recorded by the fail that
-- counted it, in its transaction; ``n`` is the job's failed_attempts then, so the latest
-- MAX_ATTEMPT_ERRORS are the highest (``attempt`` starts again at 1 after a replay). The job's
-- delete and prune remove its rows. The small columns come first: the traceback may overflow.
CREATE TABLE attempt_errors (
    job_id     TEXT NOT NULL,
    n          INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    started_at REAL,
    failed_at  REAL NOT NULL,
    worker_id  TEXT,
    error      TEXT NOT NULL,
    traceback  TEXT,
    PRIMARY KEY (job_id, n)
) WITHOUT ROWID;

-- The last report of each worker (JSON text), until ``expires_at`` (the store's clock). A report
-- drops the expired ones; ``expires_at`` comes before the report so that reading it never reads
-- a long report's overflow pages.
CREATE TABLE worker_reports (
    worker_id  TEXT PRIMARY KEY,
    expires_at REAL NOT NULL,
    report     TEXT NOT NULL
) WITHOUT ROWID;

-- The arrival counter (enqueued_total) is max(jobs.seq) + ``freed``. SQLite gives a new job
-- max(seq) + 1, so deleting the last jobs would hand their seqs out again and the counter would
-- go down; delete and prune add here the seqs they free at the end (the enqueue writes nothing).
-- One row, absent until the first such delete.
CREATE TABLE arrivals (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    freed INTEGER NOT NULL
);
