-- 0009: what the dashboard reads (insight.py): the failed attempts of each job and the reports of
-- live workers.

-- One row per failed attempt, written by the statement that failed it (fail, fail_parents), which
-- also trims the job's rows to the latest MAX_ATTEMPT_ERRORS; prune and delete remove a job's rows
-- with it. token is the attempt's lease_token: bumped by every claim and never reset (a replay
-- resets only the attempt number), so it orders a job's attempts, replays included.
CREATE TABLE attempt_errors (
    job_id     text COLLATE "C" NOT NULL,
    token      bigint NOT NULL,
    attempt    integer NOT NULL,
    started_at double precision,
    failed_at  double precision NOT NULL,
    error      text NOT NULL,
    traceback  text,
    worker_id  text,
    PRIMARY KEY (job_id, token)
);

-- Each worker's last report (JSON text), until expires_at by the store's clock; listing them
-- deletes the expired ones (a worker that crashed never removes its own).
CREATE TABLE worker_reports (
    worker_id  text COLLATE "C" PRIMARY KEY,
    report     text NOT NULL,
    expires_at double precision NOT NULL
);
