"""Looking inside the queue: live workers, a job's failed attempts, lookups by idempotency key, and
how many jobs have arrived. ``JobQueue`` takes these methods from :class:`JobInsight`; the
dashboard (and anyone else) reads them through it."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from jobqueue.backends.base import Backend
from jobqueue.job import Job
from jobqueue.outcomes import AttemptError
from jobqueue.status import WorkerReport

T = TypeVar("T")


class JobInsight:
    """The reading methods of :class:`~jobqueue.app.JobQueue` that a dashboard needs."""

    backend: Backend

    async def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        raise NotImplementedError

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
