"""Queues paused and resumed for every process on the file (``pause_queue``).

Storage: ``queue_settings`` holds a row per queue whose paused state was ever set; ``paused`` is
NULL for none yet, so that ``initial=True`` sets a state only once, however often workers
configured to start a queue paused restart.

Where the pause is read: in the statements that give a job to a worker, inside their own write
transaction (``BEGIN IMMEDIATE``, on the caller's thread or the writer thread alike, starts from
the latest commit of any process), so every claim that starts after a pause has committed sees
it. ``claim_candidates`` returns no job of a paused queue, and ``insert_handed_job`` hands none to a
waiting worker (whenever that worker registered); ``next_due`` leaves a paused queue's delayed
jobs out of ``due_in``, so that they do not end a worker's wait. Each reads it with one seek of
``queue_settings`` in the statement's ``LIMIT``, nothing more on a store where no queue is paused.

A job already handed to a worker when the pause commits was claimed for it by the enqueue, in a
transaction before the pause: the worker still receives it, as a worker finishes a job it had
claimed. A resume wakes waiting workers as an enqueue does, in this process and the others.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TypeVar

from jobqueue.backends.core import BackendBase
from jobqueue.backends.sqlite.sql import Q

T = TypeVar("T")


def pause(conn: sqlite3.Connection, queue: str, paused: bool, initial: bool) -> tuple[bool, bool]:
    """Set a queue's paused state (with ``initial``, only one never set): whether it was paused
    before, and whether it is now."""
    row = conn.execute(Q["queue_paused"], (queue,)).fetchone()
    stored = None if row is None else row[0]
    before = bool(stored)
    if initial and stored is not None:
        return before, before
    if stored is None or before != paused:  # unchanged: no write, which would wake every poller
        conn.execute(Q["set_queue_paused"], (queue, int(paused)))
    return before, paused


def paused_queues(conn: sqlite3.Connection) -> list[str]:
    return [queue for (queue,) in conn.execute(Q["paused_queues"])]


class QueuePauses(BackendBase, ABC):
    """The paused-queue operations of the SQLite backend, on its transactions and wake-ups."""

    @abstractmethod
    async def _write(
        self, body: Callable[[sqlite3.Connection], T], *, durable: bool = False, inline: bool = True
    ) -> T: ...

    @abstractmethod
    async def _read(self, body: Callable[[sqlite3.Connection], T]) -> T: ...

    @abstractmethod
    def _work_available(self) -> None: ...

    async def _pause_queue(self, queue: str, paused: bool, initial: bool) -> bool:
        # Durable as a schedule's pause is: an operator's decision must survive a power loss.
        before, now = await self._write(lambda conn: pause(conn, queue, paused, initial), durable=True)
        if before and not now:
            self._work_available()  # its jobs are work again, for workers waiting anywhere
        return now

    async def _paused_queues(self) -> list[str]:
        return await self._read(paused_queues)
