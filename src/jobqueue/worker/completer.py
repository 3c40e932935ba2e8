"""Writes attempt outcomes in batches.

Outcomes queue up while the previous write is in flight and go out together in the next one, so
a busy worker makes few backend calls and an idle one adds no delay (no timer, no minimum batch).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from jobqueue.backends.base import Backend
from jobqueue.backends.params import Completion, Failure

log = logging.getLogger("jobqueue.worker")

T = TypeVar("T", Completion, Failure)


class Completer:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._completions: list[tuple[Completion, asyncio.Future[bool]]] = []
        self._failures: list[tuple[Failure, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    def complete(self, completion: Completion) -> asyncio.Future[bool]:
        """Queue a completion; the future answers whether the lease was still held."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._completions.append((completion, future))
        self._kick()
        return future

    def fail(self, failure: Failure) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._failures.append((failure, future))
        self._kick()
        return future

    def _kick(self) -> None:
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush_all())

    async def _flush_all(self) -> None:
        while self._completions or self._failures:
            completions, self._completions = self._completions, []
            failures, self._failures = self._failures, []
            if completions:
                await self._write(completions, self._backend.complete)
            if failures:
                await self._write(failures, self._backend.fail)

    @staticmethod
    async def _write(
        items: list[tuple[T, asyncio.Future[bool]]], call: Callable[[Sequence[T]], Awaitable[list[bool]]]
    ) -> None:
        try:
            results = await call([item for item, _ in items])
        except Exception as exc:
            # The leases stay PROCESSING in the store and expire: the reaper recovers the jobs.
            log.error("could not record %d outcomes: %s", len(items), exc)
            results = [False] * len(items)
        for (_, future), ok in zip(items, results, strict=True):
            if not future.done():
                future.set_result(bool(ok))

    async def drain(self) -> None:
        """Wait until every queued outcome is written (shielded from cancellation)."""
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)

    async def stop(self) -> None:
        """The worker stops: write what is queued."""
        await self.drain()
