"""LISTEN/NOTIFY wake-ups: idle workers on any machine start a new job within milliseconds.

A lone enqueue notifies inside its own transaction (see ``PostgresBackend.enqueue``). Concurrent
ones announce work after they commit, through :class:`Announcer`: a background task that sends one
NOTIFY for everything enqueued while the previous one was in flight. PostgreSQL serialises the
commits of notifying transactions on one global lock, held through the WAL flush: concurrent
producers that each notified in their transaction would lose group commit.

Workers listen on a dedicated connection. When it is lost, waits fall back to the caller's poll
timeout (the worker's jittered poll interval) and the listener is re-established at most once per
``RELISTEN_INTERVAL``; a wait that re-establishes it reports work, since notifications sent
meanwhile were missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from jobqueue.backends.postgres.driver import DRIVER_ERRORS
from jobqueue.backends.wakeup import Wakeup

log = logging.getLogger("jobqueue.postgres")

RELISTEN_INTERVAL = 1.0

Connect = Callable[[], Awaitable[asyncpg.Connection]]
Send = Callable[[str], Awaitable[Any]]


class Announcer:
    """Sends NOTIFYs for queues that received work, coalescing those that arrive meanwhile."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._queues: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def announce(self, queues: set[str]) -> None:
        self._queues |= queues
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="jobqueue-pg-announce")

    async def _run(self) -> None:
        while self._queues:
            queues, self._queues = self._queues, set()
            try:
                await self._send(",".join(sorted(queues)))
            except Exception as exc:  # workers fall back to polling; the job is stored either way
                log.warning("postgres.notify_failed: %s", exc)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 2.0)
            except TimeoutError:
                self._task.cancel()
        self._task = None


class Listener:
    """Wakes :class:`Wakeup` waiters on every notification of ``channel``."""

    def __init__(self, connect: Connect, channel: str, wakeup: Wakeup) -> None:
        self._connect = connect
        self._channel = channel
        self._wakeup = wakeup
        self._conn: asyncpg.Connection | None = None
        self._next_attempt = 0.0
        self._closed = False

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def start(self) -> bool:
        """Connect and LISTEN; ``False`` (logged) when the server cannot be reached now."""
        self._next_attempt = asyncio.get_running_loop().time() + RELISTEN_INTERVAL
        try:
            conn = await self._connect()
        except DRIVER_ERRORS as exc:
            log.warning("postgres.listen_failed: %s; polling until the server is back", exc)
            return False
        try:
            await conn.add_listener(self._channel, self._on_notify)
        except DRIVER_ERRORS as exc:
            log.warning("postgres.listen_failed: %s; polling until the server is back", exc)
            conn.terminate()
            return False
        conn.add_termination_listener(self._on_lost)
        if self._closed:  # closed while connecting
            conn.terminate()
            return False
        self._conn = conn
        return True

    def _on_notify(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self._wakeup.wake()

    def _on_lost(self, conn: object) -> None:
        if not self._closed:
            log.warning("postgres.listener_lost: polling until it is re-established")
        self._conn = None
        self._wakeup.wake()  # let the waiter notice and reconnect

    async def ensure(self) -> bool:
        """Re-establish a lost listener (rate-limited); ``True`` when it was just re-established."""
        if self.listening or self._closed:
            return False
        if asyncio.get_running_loop().time() < self._next_attempt:
            return False
        return await self.start()

    def retry_in(self) -> float | None:
        """Seconds until :meth:`ensure` may try to re-establish a lost listener; ``None`` if not lost."""
        if self.listening or self._closed:
            return None
        return max(0.0, self._next_attempt - asyncio.get_running_loop().time())

    async def close(self) -> None:
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2.0)
            except DRIVER_ERRORS:
                conn.terminate()
