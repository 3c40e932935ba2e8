"""Writes attempt outcomes in batches.

Outcomes queue up while the previous write is in flight and go out together in the next one, so
a busy worker makes few backend calls and an idle one adds no delay (no timer, no minimum batch).
A write the store could not take (unavailable: a restart, a partition) is retried with backoff for
up to a lease: the heartbeat keeps renewing the jobs' leases meanwhile, so a short outage costs no
job a second run. Retrying is safe because the store fences every outcome by its lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from jobqueue.backends.base import Backend
from jobqueue.backends.params import Completion, Failure
from jobqueue.clock import Clock, SystemClock
from jobqueue.errors import BackendUnavailable
from jobqueue.worker.signals import WorkerSignals

log = logging.getLogger("jobqueue.worker")

T = TypeVar("T", Completion, Failure)
#: First and longest pause between retries of a write the store could not take.
RETRY_FIRST, RETRY_MOST = 0.05, 1.0


class Completer:
    def __init__(
        self,
        backend: Backend,
        retry_for: float = 30.0,
        clock: Clock | None = None,
        signals: WorkerSignals | None = None,
    ) -> None:
        self._backend = backend
        #: How long an unavailable store's writes are retried: past a lease they would be fenced.
        self.retry_for = retry_for
        self.clock = clock or SystemClock()
        self.signals = signals or WorkerSignals()
        self._stopping = False
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

    async def _write(
        self, items: list[tuple[T, asyncio.Future[bool]]], call: Callable[[Sequence[T]], Awaitable[list[bool]]]
    ) -> None:
        batch = [item for item, _ in items]
        deadline, pause = self.clock.monotonic() + self.retry_for, RETRY_FIRST
        while True:
            try:
                results = await call(batch)
                break
            except BackendUnavailable as exc:
                if self._stopping or self.clock.monotonic() + pause > deadline:
                    results = self._give_up(len(items), exc)
                    break
                log.warning("could not record %d outcomes, retrying in %.2f s: %s", len(items), pause, exc)
                self.signals.outcome_retrying.signal(len(items))
                await self.clock.sleep(pause)
                pause = min(pause * 2, RETRY_MOST)
            except Exception as exc:
                results = self._give_up(len(items), exc)
                break
        for (_, future), ok in zip(items, results, strict=True):
            if not future.done():
                future.set_result(bool(ok))

    @staticmethod
    def _give_up(count: int, exc: Exception) -> list[bool]:
        # The leases stay PROCESSING in the store and expire: the reaper recovers the jobs.
        log.error("could not record %d outcomes: %s", count, exc)
        return [False] * count

    async def drain(self) -> None:
        """Wait until every queued outcome is written (shielded from cancellation)."""
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)

    async def stop(self) -> None:
        """The worker stops: write what is queued, trying each write once more at most."""
        self._stopping = True
        await self.drain()
