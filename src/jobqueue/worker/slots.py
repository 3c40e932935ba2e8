"""The jobs running in one worker, a slot each: what the fetcher fills, the heartbeater renews and
a shutdown releases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from jobqueue.backends.params import Lease


class Slots:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        #: Called when a slot is freed (the fetcher's ``poke``: a free slot may end its wait).
        self.on_freed: Callable[[], None] = _nothing
        self._running: dict[str, tuple[Lease, asyncio.Task[None]]] = {}
        self._lost: set[str] = set()

    @property
    def busy(self) -> int:
        return len(self._running)

    @property
    def free(self) -> int:
        return self.concurrency - len(self._running)

    def fill(self, lease: Lease, task: asyncio.Task[None]) -> None:
        self._running[lease.job_id] = (lease, task)

    def free_slot(self, job_id: str) -> None:
        """The job's attempt is over (recorded, fenced or cancelled)."""
        self._lost.discard(job_id)
        self._running.pop(job_id, None)
        self.on_freed()

    def held(self) -> list[tuple[Lease, asyncio.Task[None]]]:
        return list(self._running.values())

    def lose(self, job_id: str) -> None:
        """The job's lease was taken away: stop its work."""
        held = self._running.get(job_id)
        if held is not None and not held[1].done():
            self._lost.add(job_id)
            held[1].cancel()

    def was_lost(self, job_id: str) -> bool:
        return job_id in self._lost


def _nothing() -> None:
    pass
