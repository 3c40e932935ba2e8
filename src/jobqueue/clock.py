"""Time sources.

Memory and SQLite backends take their notion of "now" from an injected :class:`Clock`, so that
tests can move time forward with :class:`FakeClock` instead of sleeping. Server-backed stores
(PostgreSQL, Redis) use the server's clock unless a clock is injected for tests.

Wall time is a POSIX timestamp in seconds (float) so that storage and arithmetic stay cheap;
:func:`to_datetime` turns one into an aware UTC ``datetime`` for display.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Where the current time comes from."""

    def time(self) -> float:
        """Wall-clock time as a POSIX timestamp in seconds."""
        ...

    def monotonic(self) -> float:
        """A clock for measuring intervals; never goes backwards."""
        ...

    def sleep(self, seconds: float) -> Awaitable[None]:
        """An awaitable that waits ``seconds`` of this clock's time (from this call, not from the
        first ``await``: a fake clock's test may advance it before the sleeper runs)."""
        ...


_wall_time, _monotonic = time.time, time.monotonic


class SystemClock:
    """The real clock."""

    # The C functions themselves, not methods that call them: the worker reads the clock a few
    # times per job, and a Python frame costs more than the reading.
    time = staticmethod(_wall_time)
    monotonic = staticmethod(_monotonic)

    def sleep(self, seconds: float) -> Awaitable[None]:
        return asyncio.sleep(seconds)


class FakeClock:
    """A clock that moves only when a test calls :meth:`advance`.

    ``sleep`` returns once the clock has been advanced to its deadline, so code that sleeps on
    this clock can be driven step by step without real waiting. A sleep is registered when
    ``sleep()`` is called, so a test that advances the clock right after the code under test
    started a sleep wakes it.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._monotonic = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (must not be negative) and wake sleepers that are due."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds
        self._monotonic += seconds
        still_waiting = []
        for deadline, future in self._sleepers:
            if future.done():
                continue
            if deadline <= self._monotonic:
                future.set_result(None)
            else:
                still_waiting.append((deadline, future))
        self._sleepers = still_waiting

    def sleep(self, seconds: float) -> Awaitable[None]:
        if seconds <= 0:
            return asyncio.sleep(0)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._monotonic + seconds, future))
        return future


def to_datetime(timestamp: float | None) -> datetime | None:
    """A POSIX timestamp as an aware UTC datetime (``None`` stays ``None``)."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
