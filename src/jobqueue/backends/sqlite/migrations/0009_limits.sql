-- 0009: rate and concurrency limits of queues (limited.py, queues.py).
ALTER TABLE jobs ADD COLUMN rate_key TEXT;
CREATE INDEX jobs_running_keys ON jobs (queue, rate_key)
    WHERE state = 'PROCESSING' AND rate_key IS NOT NULL;

ALTER TABLE queue_settings ADD COLUMN limits TEXT;
ALTER TABLE queue_settings ADD COLUMN configured TEXT;
ALTER TABLE queue_settings ADD COLUMN holds_slots INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue_settings ADD COLUMN slot_waited INTEGER NOT NULL DEFAULT 0;

CREATE TABLE rate_buckets (
    queue    TEXT NOT NULL,
    rate_key TEXT NOT NULL,
    tat      REAL NOT NULL,
    PRIMARY KEY (queue, rate_key)
) WITHOUT ROWID;
