"""The jobs running in one worker, a slot each: what the fetcher fills, the heartbeater renews and
a shutdown releases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from jobqueue.backends.params import Lease
from jobqueue.job import Job


class Slots:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        #: Called when a slot is freed (the fetcher's ``poke``: a free slot may end its wait).
        self.on_freed: Callable[[], None] = _nothing
        self._running: dict[str, tuple[Lease, asyncio.Task[None]]] = {}
        self._jobs: dict[str, Job] = {}
        self._lost: dict[str, bool] = {}  # job id -> whether it was cancelled (else recovered)
        self._recording: set[str] = set()  # attempts whose handler is done: their outcome is being written

    @property
    def busy(self) -> int:
        return len(self._running)

    @property
    def free(self) -> int:
        return self.concurrency - len(self._running)

    def fill(self, lease: Lease, task: asyncio.Task[None], job: Job) -> None:
        self._running[lease.job_id] = (lease, task)
        self._jobs[lease.job_id] = job

    def free_slot(self, job_id: str) -> None:
        """The job's attempt is over (recorded, fenced or cancelled)."""
        self._lost.pop(job_id, None)
        self._recording.discard(job_id)
        self._running.pop(job_id, None)
        self._jobs.pop(job_id, None)
        self.on_freed()

    def held(self) -> list[tuple[Lease, asyncio.Task[None]]]:
        return list(self._running.values())

    def recording(self, job_id: str) -> None:
        """The attempt's handler is done and its outcome is being written: a lease found lost now
        is the outcome's own doing (or is fenced when it is written), not a reason to stop it."""
        self._recording.add(job_id)

    def lose(self, lease: Lease, *, cancelled: bool = False) -> None:
        """The job's lease was taken away (cancelled, or recovered by a reaper): stop its work.

        The asyncio task of the attempt is cancelled, which cancels an async handler and kills a
        process-pool child; a thread cannot be stopped, so its handler sees ``job.cancelled``."""
        job_id = lease.job_id
        held = self._running.get(job_id)
        # Only the attempt that lease belongs to: a check answered after the job was retried
        # and claimed again by this worker must not stop the new attempt.
        if held is not None and held[0].token == lease.token and job_id not in self._recording and not held[1].done():
            job = self._jobs.get(job_id)
            if job is not None:
                job.cancelled = True
            self._lost[job_id] = cancelled
            held[1].cancel()

    def was_lost(self, job_id: str) -> bool:
        return job_id in self._lost

    def was_cancelled(self, job_id: str) -> bool:
        return self._lost.get(job_id, False)


def _nothing() -> None:
    pass
