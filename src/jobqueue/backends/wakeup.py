"""In-process wake-ups for ``wait_for_work``.

A wake with no one waiting is remembered, so that a claimer that found nothing and is about to
wait does not sleep through a job enqueued in between (a missed wake-up would cost a poll interval).
Safe to call ``wake`` from any thread.
"""

from __future__ import annotations

import asyncio
import threading


class Wakeup:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[asyncio.Future[bool]] = set()
        self._pending = False

    def wake(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, set()
            if not waiters:
                self._pending = True
        for future in waiters:
            loop = future.get_loop()
            if loop.is_closed():
                continue
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                _resolve(future)
            else:
                loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, timeout: float) -> bool:
        """``True`` when woken (or a wake was pending), ``False`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        with self._lock:
            if self._pending:
                self._pending = False
                return True
            self._waiters.add(future)
        # A timer handle rather than asyncio.wait_for: a worker waits here between every burst of
        # jobs, and the wake-up path is on its enqueue-to-start latency.
        timer = loop.call_later(timeout, _expire, future)
        try:
            return await future
        finally:
            timer.cancel()
            with self._lock:
                self._waiters.discard(future)


def _resolve(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(True)


def _expire(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)
