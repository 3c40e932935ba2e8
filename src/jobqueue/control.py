"""Steering queues while they run: pause and resume, for every worker sharing the store.

``JobQueue`` takes these methods from :class:`QueueControl`. The paused state lives in the store
(:meth:`~jobqueue.backends.base.Backend.pause_queue`), so a pause holds for every worker on every
host, from the moment the call returns, and across restarts.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from jobqueue.backends.base import Backend

T = TypeVar("T")


class QueueControl:
    """The queue-steering methods of :class:`~jobqueue.app.JobQueue`."""

    backend: Backend
    #: Queues that start paused: paused when the app first opens on a store that never had their
    #: state (a resume by an operator is not undone by a restart).
    start_paused: frozenset[str]

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
