"""Queues paused and resumed for every worker sharing the database.

State: one row of ``queue_pauses`` per queue whose state was ever set (so ``initial`` can tell a
queue never set from one resumed by hand), and the partial index ``queue_pauses_paused`` of the
paused ones. No worker caches it: ``claim`` and ``due_in`` (queries.sql) probe that index per
queue inside their own single statement, with that statement's READ COMMITTED snapshot, so every
claim that starts after :meth:`pause_queue` returns sees the pause, and a store where no queue is
paused pays one probe of an empty index per queue claimed from.

A resume sends a NOTIFY on the workers' channel in its own statement (delivered at its commit,
like a lone enqueue's), and wakes this process's waiters at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import asyncpg

from jobqueue.backends.core import BackendBase
from jobqueue.backends.postgres.sql import Queries
from jobqueue.backends.wakeup import Wakeup


class PostgresQueues(BackendBase, ABC):
    """The queue pause operations of :class:`~jobqueue.backends.base.Backend`, for PostgresBackend."""

    q: Queries
    _wakeup: Wakeup

    @abstractmethod
    async def _run(self, name: str, *args: Any, accept: bool = False) -> list[asyncpg.Record]: ...

    async def _pause_queue(self, queue: str, paused: bool, initial: bool) -> bool:
        # Committed as a cancel is (the accepting pool): a pause that a server crash undid would
        # let the queue's jobs run again.
        ((now_paused, notified),) = await self._run("pause_queue", queue, paused, initial, self.q.channel, accept=True)
        if notified:
            self._wakeup.wake()  # waiters in this process; other processes heard the NOTIFY
        return bool(now_paused)

    async def _paused_queues(self) -> list[str]:
        return [row[0] for row in await self._run("paused_queues")]
