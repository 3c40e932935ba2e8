"""Jobs that wait for other jobs (``depends_on``) on PostgreSQL.

Storage: a child's parents are kept in order in its ``parents`` column (returned with the job) and
as edges in ``job_dependencies`` (parent, child, resolved), which :meth:`children` lists and a
parent's end walks. A BLOCKED child counts its unresolved edges in ``blocking_parents``.

Enqueue (``enqueue_dependent``, dependencies.sql): a child's statement locks its parents, reads
their latest committed states, and flags each unfinished one ``has_children``. The statements that
finish jobs read that flag on the row they lock. ``complete`` and ``fail`` (queries.sql) leave a
flagged job alone, so that a job without children costs what it always did; it is finished by
``complete_parents`` or ``fail_parents`` (``cancel`` does both), which resolve its children in the
same statement, and so the same transaction, through the ``resolve_children`` function
(schema.sql), whose queries see every edge committed before they start. Either the child's lock
came first, and the finishing statement, having waited for it, finds the flag and then the edge;
or the parent finished first, and the child's statement, having waited for that, finds it finished
and resolves the edge at once. A child is never left BLOCKED by a race, nor by a crash: its release
commits with its parent's end, or neither does.

Rounds: a batch whose jobs name earlier members as parents is sent as consecutive rounds, each
judged as if its jobs were enqueued one by one, the parents a round names stored by an earlier
round (committed, or written earlier in the caller's transaction).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import asyncpg

from jobqueue.backends.core import BackendBase
from jobqueue.backends.postgres.rows import job_of
from jobqueue.job import Job, JobState, NewJob
from jobqueue.outcomes import Accepted, EnqueueOutcome


class PostgresDependencies(BackendBase, ABC):
    """Finishing jobs that children wait for, and the dependency reads, for PostgresBackend."""

    @abstractmethod
    async def _run(self, name: str, *args: Any, accept: bool = False) -> list[asyncpg.Record]: ...

    @abstractmethod
    def _work_available(self, queues: set[str]) -> None: ...

    async def _finish_parents(
        self, statement: str, rows: list[asyncpg.Record], columns: Sequence[list[Any]]
    ) -> set[str]:
        """The ids of the attempts of ``columns`` (job ids first) finished, ``rows`` being the
        answer of complete or fail: those it left (jobs a child has named, and stale leases) are
        run through ``statement``, complete_parents or fail_parents, which wakes the workers of
        the children they release. A batch without such jobs costs nothing more. Either way the
        workers waiting for a slot that a finished job freed are woken (``freed``, sql.py)."""
        done = {row[0] for row in rows}
        woken = {row["freed"] for row in rows if row["freed"] is not None}
        if len(done) < len(columns[0]):
            left = [i for i, job_id in enumerate(columns[0]) if job_id not in done]
            finished = await self._run(statement, *([column[i] for i in left] for column in columns))
            if finished and finished[0]["woken"]:
                woken.update(finished[0]["woken"])
            woken.update(row["freed"] for row in finished if row["freed"] is not None)
            done.update(row[0] for row in finished)
        if woken:
            self._work_available(woken)
        return done

    async def _get_many(self, job_ids: Sequence[str]) -> list[Job | None]:
        return [job_of(row) for row in await self._run("get_jobs", list(job_ids))]

    async def _children(self, job_id: str, limit: int) -> list[str]:
        return [row[0] for row in await self._run("children", job_id, limit)]


def lock_order(*columns: list[Any]) -> Sequence[list[Any]]:
    """The columns of a batch of attempts (job ids first) in job id order, the order in which a
    child's enqueue locks its parents: a worker finishing several parents at once and a child
    naming them wait for each other instead of deadlocking. A lone attempt is left as it is."""
    if len(columns[0]) < 2:
        return columns
    order = sorted(range(len(columns[0])), key=columns[0].__getitem__)
    return [[column[i] for i in order] for column in columns]


def split_in_order(jobs: Sequence[NewJob], pending: list[int]) -> tuple[list[int], list[int]]:
    """The next round of a batch with parents: the pending jobs in order up to the first that
    repeats the id or key of one before it in the round, or names one as a parent; the rest wait.
    A statement cannot see its own inserts, and cutting the batch (rather than setting single
    jobs aside) keeps every job judged after all those before it, as if enqueued alone."""
    ids: set[str] = set()
    keys: set[str] = set()
    for n, i in enumerate(pending):
        job = jobs[i]
        key = job.idempotency_key
        if job.id in ids or (key is not None and key in keys) or not ids.isdisjoint(job.depends_on):
            return pending[:n], pending[n:]
        ids.add(job.id)
        if key is not None:
            keys.add(key)
    return pending, []


def add_parents(batch: list[NewJob], rows: list[dict[str, Any]]) -> None:
    """Add each job's parents (``dp``) and failure rule (``ro``) to its row of ``$2``."""
    for job, row in zip(batch, rows, strict=True):
        if job.depends_on:
            row["dp"] = job.depends_on
            if job.runs_if_parents_fail:
                row["ro"] = True


def settle_dependents(
    jobs: Sequence[NewJob],
    batch: list[int],
    rows: list[tuple[str, str, list[str]]],
    outcomes: list[EnqueueOutcome | None],
    now: float,
) -> None:
    """Give the accepted jobs with parents their parents and the state the statement chose:
    ``rows`` are (B, F or R, job id, [error])."""
    by_id = {jobs[i].id: i for i in batch}
    for kind, job_id, error in rows:
        i = by_id[job_id]
        outcome = outcomes[i]
        assert isinstance(outcome, Accepted), "the A row lists every job inserted"
        job = outcome.job
        job.parents = tuple(jobs[i].depends_on)
        if kind == "B":
            job.state = JobState.BLOCKED
        elif kind == "F":
            job.state, job.error, job.finished_at = JobState.DEAD_LETTERED, error[0], now
