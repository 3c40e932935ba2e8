"""The insight operations of :class:`~jobqueue.backends.core.BackendBase`: what a dashboard reads
about jobs and workers (failed attempts, lookups by key, the arrival counter, worker reports),
checked here once, as the job operations are in :mod:`jobqueue.backends.core`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from jobqueue.errors import ValidationError
from jobqueue.job import Job
from jobqueue.outcomes import AttemptError

#: No job id or key holds it (see :data:`jobqueue.backends.core.NUL`).
NUL = "\x00"
#: The longest worker report a store keeps (a report is a few hundred bytes).
MAX_REPORT = 64 * 1024
MAX_WORKER_ID = 200


def _check_worker_id(worker_id: str) -> None:
    if not isinstance(worker_id, str) or not worker_id or len(worker_id) > MAX_WORKER_ID or NUL in worker_id:
        raise ValidationError("worker_id", f"must be a non-empty string of at most {MAX_WORKER_ID} characters")


class InsightOperations(ABC):
    """The public insight operations, checked, over a backend's own ``_operation``."""

    @abstractmethod
    def _require_open(self) -> None: ...

    async def attempt_errors(self, job_id: str) -> list[AttemptError]:
        self._require_open()
        if NUL in job_id:
            return []
        return await self._attempt_errors(job_id)

    async def find_by_key(self, key: str) -> Job | None:
        self._require_open()
        if not key or NUL in key:
            return None
        return await self._find_by_key(key)

    async def enqueued_total(self) -> int:
        self._require_open()
        return await self._enqueued_total()

    async def report_worker(self, worker_id: str, report: str, ttl: float) -> None:
        self._require_open()
        _check_worker_id(worker_id)
        if not isinstance(report, str) or len(report) > MAX_REPORT or NUL in report:
            raise ValidationError("report", f"must be JSON text of at most {MAX_REPORT} characters")
        if not ttl > 0:
            raise ValidationError("ttl", "must be > 0 seconds")
        await self._report_worker(worker_id, report, float(ttl))

    async def worker_reports(self) -> list[str]:
        self._require_open()
        return await self._worker_reports()

    async def remove_worker_report(self, worker_id: str) -> None:
        self._require_open()
        _check_worker_id(worker_id)
        await self._remove_worker_report(worker_id)

    @abstractmethod
    async def _attempt_errors(self, job_id: str) -> list[AttemptError]: ...

    @abstractmethod
    async def _find_by_key(self, key: str) -> Job | None: ...

    @abstractmethod
    async def _enqueued_total(self) -> int: ...

    @abstractmethod
    async def _report_worker(self, worker_id: str, report: str, ttl: float) -> None: ...

    @abstractmethod
    async def _worker_reports(self) -> list[str]:
        """Live reports, sorted by worker id; a backend may drop expired ones as it reads."""

    @abstractmethod
    async def _remove_worker_report(self, worker_id: str) -> None: ...
