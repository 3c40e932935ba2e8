"""The shape of the worker's side services: ``start()``, ``stop()`` and ``run_once()``.

Each service does one thing on a timer of the worker's clock (renew leases, recover expired ones,
prune), so a test drives it with a :class:`~jobqueue.clock.FakeClock`, or calls ``run_once()``
itself. ``start`` and ``stop`` are idempotent, and ``stop`` before ``start`` does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import ClassVar

from jobqueue.clock import Clock

log = logging.getLogger("jobqueue.worker")


class PeriodicService:
    """Runs :meth:`run_once` every :meth:`interval` seconds of ``clock`` until stopped.

    A failed run is logged and the next one comes on time: a store that is down for a while
    stops nothing.
    """

    #: Used in log lines and task names.
    name: ClassVar[str]
    #: Run once at start rather than after the first interval.
    run_at_start: ClassVar[bool] = False

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        #: The worker this service belongs to, for log lines.
        self.owner = ""
        self._task: asyncio.Task[None] | None = None

    def interval(self) -> float:
        raise NotImplementedError

    async def run_once(self) -> object:
        raise NotImplementedError

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"jobqueue-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        if self.run_at_start:
            await self._run_logged()
        while True:
            await self.clock.sleep(self.interval())
            await self._run_logged()

    async def _run_logged(self) -> None:
        try:
            await self.run_once()
        except Exception as exc:
            log.error("worker.%s_failed id=%s: %s", self.name, self.owner, exc)
