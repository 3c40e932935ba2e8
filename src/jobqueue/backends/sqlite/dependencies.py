"""Jobs that wait for other jobs (``depends_on``) on SQLite: edges stored with the child at its
enqueue, resolved in the transaction that finishes each parent.

Storage: a child's row keeps its parents' ids (``parents``, a JSON array, read back as
``Job.parents``), how many of its edges are still unresolved (``blocking_parents``) and
whether it runs if a parent fails (``runs_if_parents_fail``); each edge is a row of
``dependencies`` (parent, child, resolved), which ``children()`` reads. A parent that a child
waits on gets ``has_children`` set, and the statement finishing a job returns that flag: only
then are edges looked at, so a job without children costs its finish nothing more.

Races: the enqueue that reads a parent's state and the operation that finishes the parent are
both write transactions, and SQLite's write lock (``BEGIN IMMEDIATE``, shared by every process
on the file) runs one after the other. Either the enqueue sees the parent finished, or it has
left an edge that the finish resolves. A crash rolls back the whole transaction, edges and
releases included, so no child waits for a parent already finished.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from jobqueue.backends.sqlite.rows import Counts, job_of
from jobqueue.backends.sqlite.sql import Q
from jobqueue.job import Job, JobState, NewJob, dump_json, load_json, parent_failed_error
from jobqueue.outcomes import MissingParent

#: A parent in one of these states fails a child that does not run anyway.
PARENT_FAILED = frozenset({JobState.DEAD_LETTERED.value, JobState.CANCELLED.value})


def store_child(conn: sqlite3.Connection, new: NewJob, now: float) -> Job | MissingParent:
    """Store ``new``, a job with parents (its key and queue's capacity already checked): BLOCKED
    while a parent is unfinished, else as its finished parents decide. Nothing is written when a
    parent is not stored; otherwise the job's own row is the first write (see enqueue)."""
    parents = tuple(new.depends_on)
    all_ids = dump_json(parents).decode()
    looked_up = dump_json((*parents, new.id)).decode()
    states: dict[str, str] = dict(conn.execute(Q["parent_states"], (looked_up,)).fetchall())
    if new.id in states:
        # The same job sent again: a Duplicate, whatever became of its parents since (enqueue
        # answers so on this error, before which nothing of this job has been written).
        raise sqlite3.IntegrityError(f"job {new.id} is stored already")
    if len(states) < len(parents):
        return MissingParent(next(parent for parent in parents if parent not in states))
    unfinished: list[str] = []
    error = None
    for parent in parents:
        parent_state = states[parent]
        if parent_state == "COMPLETED":
            continue
        if parent_state in PARENT_FAILED:
            if error is None and not new.runs_if_parents_fail:
                error = parent_failed_error(parent, parent_state)
        else:
            unfinished.append(parent)
    due = new.due_at(now)
    finished_at = None
    if error is not None:
        # Dead from the start: nothing will ever unblock it, so its edges are resolved now.
        state, finished_at, unfinished = JobState.DEAD_LETTERED, now, []
    elif unfinished:
        state = JobState.BLOCKED
    else:
        state = JobState.SCHEDULED if due > now else JobState.PENDING
    conn.execute(
        Q["insert_child"],
        {
            "id": new.id, "queue": new.queue, "task": new.task, "payload": new.payload_json.decode(),
            "priority": new.priority, "state": state.value, "max_retries": new.max_retries,
            "key": new.idempotency_key, "now": now, "due": due, "timeout": new.timeout,
            "finished_at": finished_at, "error": error, "parents": all_ids, "blocking": len(unfinished),
            "runs_anyway": new.runs_if_parents_fail, "rate_key": new.rate_key,
        },
    )  # fmt: skip
    if unfinished:
        waited_on = dump_json(unfinished).decode()
        conn.execute(Q["insert_edges"], {"child": new.id, "parents": waited_on, "resolved": 0})
        conn.execute(Q["flag_parents"], (waited_on,))
        if len(unfinished) < len(parents):
            waiting = set(unfinished)
            done = dump_json([parent for parent in parents if parent not in waiting]).decode()
            conn.execute(Q["insert_edges"], {"child": new.id, "parents": done, "resolved": 1})
    else:
        conn.execute(Q["insert_edges"], {"child": new.id, "parents": all_ids, "resolved": 1})
    return Job(
        new.id, new.queue, new.task, load_json(new.payload_json), new.priority, state, 0, new.max_retries,
        new.idempotency_key, now, due, finished_at=finished_at, error=error, timeout=new.timeout,
        parents=parents, rate_key=new.rate_key,
    )  # fmt: skip


def resolve(conn: sqlite3.Connection, finished: list[str], state: str, now: float, counts: Counts) -> int:
    """Resolve the unresolved edges of parents that have just finished in ``state`` (all alike),
    in the transaction that finished them, and then those of every child this dead-letters (the
    cascade, one level per round). Counts go into ``counts``; the answer is how many children
    became due or SCHEDULED, for which waiting workers are to be woken after the commit."""
    released = 0
    while finished:
        edges = conn.execute(Q["resolve_edges"], (dump_json(finished).decode(),)).fetchall()
        if not edges:
            break
        failed = state in PARENT_FAILED
        edges_of: dict[str, int] = {}
        errors: dict[str, str] = {}  # a child fails for the first failed parent found
        for parent, child in edges:
            edges_of[child] = edges_of.get(child, 0) + 1
            if failed and child not in errors:
                errors[child] = parent_failed_error(parent, state)
        resolved = dump_json([[child, n, errors.get(child)] for child, n in edges_of.items()]).decode()
        rows = conn.execute(Q["resolve_children"], {"resolved": resolved, "now": now}).fetchall()
        finished = []
        for child, queue, child_state, has_children in rows:
            if child_state == "BLOCKED":
                continue  # still waiting for other parents
            counts.move(queue, "BLOCKED", child_state)
            if child_state != "DEAD_LETTERED":
                released += 1
            elif has_children:
                finished.append(child)
        state = JobState.DEAD_LETTERED.value  # the next round resolves the children dead-lettered now
    return released


def jobs(conn: sqlite3.Connection, job_ids: Sequence[str]) -> list[Job | None]:
    """The stored jobs of these ids, in any order (get_many puts them in order)."""
    return [job_of(row) for row in conn.execute(Q["existing_jobs"], (dump_json(job_ids).decode(),))]


def children(conn: sqlite3.Connection, job_id: str, limit: int) -> list[str]:
    return [child for (child,) in conn.execute(Q["children"], (job_id, limit))]


def forget(conn: sqlite3.Connection, children: Iterable[Sequence[str]], parents: Iterable[str]) -> None:
    """Delete the edges of pruned children, given as (id, parents JSON) pairs, and of pruned parents."""
    conn.executemany(Q["forget_edges"], ({"child": child, "parents": named} for child, named in children))
    conn.executemany(Q["forget_children"], ((parent,) for parent in parents))
