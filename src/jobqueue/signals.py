"""Test signals: points in the code that tests wait for, instead of sleeping and polling.

Production code calls ``signal(value)`` at a decision point ("claimed", "heartbeat sent", ...);
that costs one attribute check until a test calls :meth:`TestSignal.init`, after which each value
is kept until the test takes it with ``await signal.wait()``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class TestSignal(Generic[T]):
    """One decision point. Not thread-safe: signalled and awaited on one event loop."""

    __test__ = False  # not a test class, whatever pytest thinks of its name
    __slots__ = ("_values", "_waiter")

    def __init__(self) -> None:
        self._values: deque[T] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def init(self) -> None:
        """Start keeping values (tests only)."""
        self._values = deque()

    def signal(self, value: T) -> None:
        values = self._values
        if values is None:
            return
        values.append(value)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float = 10.0) -> T:
        """The next value signalled (oldest first); ``TimeoutError`` after ``timeout`` real seconds."""
        values = self._values
        if values is None:
            raise RuntimeError("call init() on this signal before waiting for it")
        async with asyncio.timeout(timeout):
            while not values:
                self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter
        return values.popleft()

    def pending(self) -> int:
        """Values signalled and not yet waited for."""
        return 0 if self._values is None else len(self._values)
