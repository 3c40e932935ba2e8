-- 0008: queues paused for every worker on the file (queues.py).
CREATE TABLE queue_settings (
    queue  TEXT PRIMARY KEY,
    paused INTEGER
) WITHOUT ROWID;
