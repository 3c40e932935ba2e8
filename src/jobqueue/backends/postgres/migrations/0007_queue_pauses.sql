-- 0007: queues paused and resumed for every worker (queues.py; the claim reads queue_pauses_paused).
CREATE TABLE queue_pauses (
    queue  text COLLATE "C" PRIMARY KEY,
    paused boolean NOT NULL
);
CREATE INDEX queue_pauses_paused ON queue_pauses (queue) WHERE paused;
