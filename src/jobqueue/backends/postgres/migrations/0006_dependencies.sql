-- 0006: jobs that wait for other jobs (depends_on; dependencies.py). BLOCKED jobs count against
-- capacity, so lock_waiting counts them.
ALTER TABLE jobs
    ADD COLUMN parents text[],
    ADD COLUMN has_children boolean NOT NULL DEFAULT false,
    ADD COLUMN blocking_parents integer,
    ADD COLUMN runs_if_parents_fail boolean;

CREATE OR REPLACE FUNCTION lock_waiting(queue_name text) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema()), hashtext(queue_name));
    RETURN (SELECT COALESCE(sum(n), 0) FROM queue_counts
            WHERE queue = queue_name AND state IN ('PENDING', 'BLOCKED', 'SCHEDULED', 'FAILED'));
END
$$;

-- The edges of depends_on, one row per (parent, child); children() lists a parent's by child id.
-- resolved: the parent finished and its edge was applied to the child, once (a parent replayed
-- and completed again changes nothing). Prune deletes a job's edges with it.
CREATE TABLE job_dependencies (
    parent_id text COLLATE "C" NOT NULL,
    child_id  text COLLATE "C" NOT NULL,
    resolved  boolean NOT NULL,
    PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX job_dependencies_child ON job_dependencies (child_id);

-- Resolves the unresolved edges of jobs just finished (finished_ids, in finished_states), called
-- by the statement that finished them while it holds their row locks. A BLOCKED child whose last
-- edge resolves becomes PENDING (due from then), or SCHEDULED while its run_at is later; one whose
-- parent was dead-lettered or cancelled is dead-lettered (unless it runs anyway), and then its
-- own children are resolved the same way (the cascade). VOLATILE: each query takes a fresh
-- snapshot, so it sees the edges a child's enqueue committed while the finishing statement
-- waited for a parent's lock, which that statement's own snapshot (READ COMMITTED) cannot.
-- Children are changed in id order, so that two parents releasing the same children lock them in
-- one order. Returns the changes to queue_counts, for the caller to add with its own in one
-- sorted write.
CREATE FUNCTION resolve_children(finished_ids text[], finished_states text[], resolved_at double precision)
    RETURNS TABLE (moved_queue text, moved_state text, delta bigint)
    LANGUAGE plpgsql VOLATILE
    SET search_path FROM CURRENT
AS $$
DECLARE
    parent_ids text[] := finished_ids;
    parent_states text[] := finished_states;
    child_ids text[];
    resolved_counts bigint[];
    failures text[];
    queues text[] := '{}';
    states text[] := '{}';
BEGIN
    WHILE cardinality(parent_ids) > 0 LOOP
        WITH resolved AS (
            UPDATE job_dependencies d SET resolved = true
            FROM unnest(parent_ids, parent_states) AS f(id, state)
            WHERE d.parent_id = f.id AND NOT d.resolved
            RETURNING d.child_id, d.parent_id, f.state
        ),
        per_child AS (
            SELECT r.child_id, count(*) AS n,
                   (array_agg('parent job ' || r.parent_id || ' was ' || replace(lower(r.state), '_', '-')
                              ORDER BY r.parent_id) FILTER (WHERE r.state <> 'COMPLETED'))[1] AS failure
            FROM resolved r GROUP BY r.child_id
        )
        SELECT array_agg(p.child_id ORDER BY p.child_id), array_agg(p.n ORDER BY p.child_id),
               array_agg(p.failure ORDER BY p.child_id)
        INTO child_ids, resolved_counts, failures
        FROM per_child p;

        WITH changed AS (
            UPDATE jobs c
            SET blocking_parents = c.blocking_parents - p.n,
                state = CASE WHEN p.failure IS NOT NULL AND NOT c.runs_if_parents_fail THEN 'DEAD_LETTERED'
                             WHEN c.blocking_parents > p.n THEN 'BLOCKED'
                             WHEN c.run_at > resolved_at THEN 'SCHEDULED'
                             ELSE 'PENDING' END,
                error = CASE WHEN p.failure IS NOT NULL AND NOT c.runs_if_parents_fail THEN p.failure
                             ELSE c.error END,
                finished_at = CASE WHEN p.failure IS NOT NULL AND NOT c.runs_if_parents_fail THEN resolved_at
                                   ELSE c.finished_at END,
                -- A child released now is due from now: its wait for a worker starts then.
                run_at = CASE WHEN (p.failure IS NOT NULL AND NOT c.runs_if_parents_fail)
                                   OR c.blocking_parents > p.n THEN c.run_at
                              ELSE GREATEST(c.run_at, resolved_at) END
            FROM unnest(child_ids, resolved_counts, failures) AS p(id, n, failure)
            WHERE c.id = p.id AND c.state = 'BLOCKED'
            RETURNING c.id, c.queue, c.state, c.has_children
        )
        SELECT COALESCE(array_agg(ch.id) FILTER (WHERE ch.state = 'DEAD_LETTERED' AND ch.has_children), '{}'),
               queues || COALESCE(array_agg(ch.queue) FILTER (WHERE ch.state <> 'BLOCKED'), '{}'),
               states || COALESCE(array_agg(ch.state) FILTER (WHERE ch.state <> 'BLOCKED'), '{}')
        INTO parent_ids, queues, states
        FROM changed ch;
        parent_states := array_fill('DEAD_LETTERED'::text, ARRAY[cardinality(parent_ids)]);
    END LOOP;
    RETURN QUERY
        SELECT m.queue, m.state, count(*) FROM unnest(queues, states) AS m(queue, state)
        GROUP BY m.queue, m.state
        UNION ALL
        SELECT m.queue, 'BLOCKED', -count(*) FROM unnest(queues) AS m(queue) GROUP BY m.queue;
END
$$;
