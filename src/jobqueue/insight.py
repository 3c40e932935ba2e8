"""Looking inside the queue: listing jobs (by state, queue, task, creation time), live workers, a
job's failed attempts, lookups by idempotency key, and how many jobs have arrived. ``JobQueue``
takes these methods from :class:`JobInsight`; the dashboard (and anyone else) reads them."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from jobqueue.backends.base import Backend
from jobqueue.backends.params import ListParams
from jobqueue.job import Job, JobState, id_floor
from jobqueue.outcomes import AttemptError, Page
from jobqueue.status import WorkerReport

T = TypeVar("T")
#: How far ahead of the store's clock a producer's clock may be for ``created_before`` to find its
#: jobs: ids (UUIDv7) carry the producer's time, ``created_at`` the store's.
ID_CLOCK_SKEW = 3600.0


class JobInsight:
    """The reading methods of :class:`~jobqueue.app.JobQueue` that a dashboard needs."""

    backend: Backend

    async def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        raise NotImplementedError

    async def list_jobs(
        self,
        state: JobState | None = None,
        queue: str | None = None,
        task: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
        *,
        created_after: float | None = None,
        created_before: float | None = None,
    ) -> Page:
        """Jobs matching the filters, oldest first, a page at a time. ``created_after`` and
        ``created_before`` (POSIX seconds) bound ``created_at``; the ids, which sort by the time
        their producer made them (UUIDv7), bound the range read, so a bound costs what a page does
        (ids of other shapes, chosen by a caller, sort after every UUID: ``created_before`` does
        not reach them)."""
        if created_after is not None and (cursor is None or cursor < id_floor(created_after)):
            cursor = id_floor(created_after)
        page = await self._run(self.backend.list_jobs(ListParams(state, queue, task, cursor, limit)))
        if created_after is None and created_before is None:
            return page
        # Ids come from producers' clocks: a page ends the range only past a margin for their skew.
        end = None if created_before is None else id_floor(created_before + ID_CLOCK_SKEW)
        kept = [job for job in page.jobs if created_between(job, created_after, created_before)]
        if end is not None and page.jobs and page.jobs[-1].id >= end:
            return Page([job for job in kept if job.id < end], None)  # the id range is done
        return Page(kept, page.next_cursor)

    async def dead_letters(self, limit: int = 100, cursor: str | None = None) -> Page:
        """The dead-letter queue, oldest first."""
        return await self.list_jobs(state=JobState.DEAD_LETTERED, cursor=cursor, limit=limit)

    async def workers(self) -> list[WorkerReport]:
        """Every live worker sharing the store, by id, as its last report tells (workers write
        one every ``WorkerConfig.report_interval``; reports this version cannot read are left out)."""
        texts = await self._run(self.backend.worker_reports())
        return [report for text in texts if (report := WorkerReport.from_json(text)) is not None]

    async def attempt_errors(self, job_id: str) -> list[AttemptError]:
        """The job's failed attempts (error, traceback, worker), oldest first."""
        return await self._run(self.backend.attempt_errors(job_id))

    async def find_by_key(self, key: str) -> Job | None:
        """The job that holds idempotency key ``key``, or ``None``."""
        return await self._run(self.backend.find_by_key(key))

    async def enqueued_total(self) -> int:
        """The store's arrival counter (see :meth:`~jobqueue.backends.base.Backend.enqueued_total`)."""
        return await self._run(self.backend.enqueued_total())


def created_between(job: Job, after: float | None, before: float | None) -> bool:
    """Whether the store stamped ``job`` created in [after, before) (``None``: unbounded)."""
    return (after is None or job.created_at >= after) and (before is None or job.created_at < before)
