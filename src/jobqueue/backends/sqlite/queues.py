"""Settings of queues for every process on the file: paused and resumed (``pause_queue``), and
their rate and concurrency limits (``set_queue_limits``; enforced by :mod:`.limited`).

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

Limits: ``queue_settings.limits`` holds those in force, read where the pause is (see
:mod:`.limited`), ``configured`` the ones last configured from code, and ``holds_slots``
whether a job leaving PROCESSING frees a slot. A change of the limits in force wakes waiting
workers everywhere (a raised limit may admit jobs held back), and takes effect for every claim
that starts after it commits.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TypeVar

from jobqueue.backends.core import BackendBase
from jobqueue.backends.sqlite.limited import NO_LIMITS, dump_limits, load_limits
from jobqueue.backends.sqlite.sql import Q
from jobqueue.limits import QueueLimits

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


def set_limits(
    conn: sqlite3.Connection, queue: str, limits: QueueLimits, configured: bool
) -> tuple[QueueLimits, QueueLimits]:
    """Store a queue's limits (see ``Backend.set_queue_limits``): those in force before, and now."""
    row = conn.execute(Q["queue_limits_of"], (queue,)).fetchone()
    stored, last_configured = (None, None) if row is None else row
    before = NO_LIMITS if stored is None else load_limits(stored)
    if configured:
        if last_configured is not None and load_limits(last_configured) == limits:
            return before, before  # the same code started again: a change made at run time stays
        last_configured = dump_limits(limits)
    in_force = dump_limits(limits) if limits else None
    if (in_force, last_configured) != (stored, None if row is None else row[1]):  # no write for nothing
        conn.execute(Q["set_queue_limits"], (queue, in_force, last_configured, int(limits.holds_slots)))
    return before, limits


def all_limits(conn: sqlite3.Connection) -> dict[str, QueueLimits]:
    return {queue: load_limits(text) for queue, text in conn.execute(Q["all_queue_limits"])}


class QueueSettings(BackendBase, ABC):
    """The queue-settings operations of the SQLite backend, on its transactions and wake-ups."""

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

    async def _set_queue_limits(self, queue: str, limits: QueueLimits, configured: bool) -> QueueLimits:
        # Durable, as a pause is: an operator's decision.
        before, now = await self._write(lambda conn: set_limits(conn, queue, limits, configured), durable=True)
        if now != before:
            self._work_available()  # a raised limit may admit jobs held back, for workers anywhere
        return now

    async def _queue_limits(self) -> dict[str, QueueLimits]:
        return await self._read(all_limits)
