-- 0005: periodic schedules shared by every scheduler (schedules.py, fire_tick).
CREATE TABLE schedules (
    name        text COLLATE "C" PRIMARY KEY,
    spec        text NOT NULL,
    paused      boolean NOT NULL DEFAULT false,
    last_tick   double precision,
    last_job_id text COLLATE "C"
);
