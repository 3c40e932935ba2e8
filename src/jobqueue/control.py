"""Steering queues while they run: pause and resume, rate and concurrency limits, for every
worker sharing the store.

``JobQueue`` takes these methods from :class:`QueueControl`. The paused state and the limits live
in the store (:meth:`~jobqueue.backends.base.Backend.pause_queue`,
:meth:`~jobqueue.backends.base.Backend.set_queue_limits`), so they hold for every worker on every
host, from the moment the call returns, and across restarts. Limits given to ``JobQueue(limits=...)``
are applied at each open as *configured* limits: a restart with the same code keeps a change made
at run time (HTTP, CLI, :meth:`set_limits`), and a deploy with other limits in code replaces it.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from jobqueue.backends.base import Backend
from jobqueue.job import check_name
from jobqueue.limits import QueueLimits, Rate

T = TypeVar("T")


class QueueControl:
    """The queue-steering methods of :class:`~jobqueue.app.JobQueue`."""

    backend: Backend
    #: Queues that start paused: paused when the app first opens on a store that never had their
    #: state (a resume by an operator is not undone by a restart).
    start_paused: frozenset[str]
    #: Limits from code, applied at every open (see the module docstring).
    configured_limits: dict[str, QueueLimits]

    async def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        raise NotImplementedError

    def _run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        raise NotImplementedError

    async def pause(self, queue: str) -> None:
        """Stop every worker from starting jobs of ``queue`` (enqueues are still accepted, and jobs
        running now finish); holds for every claim that starts after this returns."""
        await self._run(self.backend.pause_queue(queue, True))

    async def resume(self, queue: str) -> None:
        """Let workers start jobs of ``queue`` again; waiting workers are woken at once."""
        await self._run(self.backend.pause_queue(queue, False))

    async def paused_queues(self) -> list[str]:
        return await self._run(self.backend.paused_queues())

    def paused_queues_sync(self) -> list[str]:
        return self._run_sync(self.backend.paused_queues())

    def pause_sync(self, queue: str) -> None:
        self._run_sync(self.backend.pause_queue(queue, True))

    def resume_sync(self, queue: str) -> None:
        self._run_sync(self.backend.pause_queue(queue, False))

    async def _apply_start_paused(self) -> None:
        for queue in sorted(self.start_paused):
            await self.backend.pause_queue(queue, True, initial=True)

    async def set_limits(
        self,
        queue: str,
        limits: QueueLimits | None = None,
        *,
        rate: str | Rate | None = None,
        burst: int | None = None,
        concurrency: int | None = None,
        key_rate: str | Rate | None = None,
        key_burst: int | None = None,
        key_concurrency: int | None = None,
    ) -> QueueLimits:
        """Replace the limits of ``queue`` for every worker: ``app.set_limits("api", rate="100/s",
        concurrency=5, key_rate="10/s")``, or a :class:`~jobqueue.limits.QueueLimits`. With no
        limit given, the queue's limits are cleared. Answers the limits now in force."""
        if limits is None:
            limits = QueueLimits.of(rate, concurrency, burst=burst, key_rate=key_rate, key_burst=key_burst,
                                    key_concurrency=key_concurrency)  # fmt: skip
        return await self._run(self.backend.set_queue_limits(queue, limits))

    def set_limits_sync(self, queue: str, limits: QueueLimits | None = None, **short: Any) -> QueueLimits:
        if limits is None:
            limits = QueueLimits.of(**short)
        return self._run_sync(self.backend.set_queue_limits(queue, limits))

    async def limits(self) -> dict[str, QueueLimits]:
        """The limits in force, by queue (queues without any left out)."""
        return await self._run(self.backend.queue_limits())

    def limits_sync(self) -> dict[str, QueueLimits]:
        return self._run_sync(self.backend.queue_limits())

    async def _apply_configured_limits(self) -> None:
        for queue, limits in sorted(self.configured_limits.items()):
            await self.backend.set_queue_limits(queue, limits, configured=True)


def configured_limits(limits: Mapping[str, QueueLimits | Mapping[str, Any]] | None) -> dict[str, QueueLimits]:
    """``JobQueue(limits=...)`` checked: each queue's :class:`QueueLimits`, or its dict form
    (``{"rate": "100/s", "concurrency": 5}``)."""
    checked: dict[str, QueueLimits] = {}
    for queue, value in (limits or {}).items():
        check_name("queue", queue)
        checked[queue] = value if isinstance(value, QueueLimits) else QueueLimits.from_dict(dict(value))
    return checked
