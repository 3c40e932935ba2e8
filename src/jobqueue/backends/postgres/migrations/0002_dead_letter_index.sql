-- 0002: list the dead-letter queue by id without walking every job (GET /dlq on a large table).
CREATE INDEX jobs_dead ON jobs (id) WHERE state = 'DEAD_LETTERED';
