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
        self._waiters: set[asyncio.Future[None]] = set()
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
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._pending:
                self._pending = False
                return True
            self._waiters.add(future)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters.discard(future)
        return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
