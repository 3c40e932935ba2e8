"""The hand-off (the :class:`~jobqueue.backends.base.Handoff` capability) of the SQLite backend:
a worker that would wait for work is registered, enqueues store new jobs already claimed for it
(:func:`.claims.hand`), and each handed job reaches it once, by a message to its process or by its
next claim (:mod:`.handoff` keeps that bookkeeping). A mixin of
:class:`~jobqueue.backends.sqlite.backend.SQLiteBackend`, on its connections and wake channel.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TypeVar

from jobqueue.backends.core import BackendBase
from jobqueue.backends.params import ClaimParams
from jobqueue.backends.sqlite import claims
from jobqueue.backends.sqlite.handoff import Handed, Handoffs
from jobqueue.backends.sqlite.rows import job_of, row_of
from jobqueue.backends.sqlite.wake import Sent, WakeChannel
from jobqueue.backends.wakeup import Wakeup
from jobqueue.clock import Clock
from jobqueue.job import Job, dump_json, load_json

T = TypeVar("T")


class SQLiteHandoff(BackendBase, ABC):
    """Handing new jobs straight to waiting workers, and taking them at the workers' claims."""

    clock: Clock
    _handoffs: Handoffs
    _channel: WakeChannel
    _wakeup: Wakeup
    #: Counts hints that claimable work may exist beyond what was handed (see claim_or_wait).
    _signals: int

    @abstractmethod
    async def _write(self, body: Callable[[sqlite3.Connection], T], *, durable: bool = False,
                     inline: bool = True) -> T: ...  # fmt: skip

    @abstractmethod
    def _listen(self) -> None: ...

    @abstractmethod
    def _work_available(self) -> None: ...

    async def _send_handed(self, handed: Sequence[Handed]) -> None:
        """Send each handed job to its worker's process; give back those of processes gone."""
        gone: set[str] = set()
        for item in handed:
            if item.address == self._channel.address:  # a worker of this very process
                self._delivered(item.worker_id, item.job)
                continue
            if item.worker_id in gone:
                continue
            sent = self._channel.send_job(item.address, dump_json([item.worker_id, row_of(item.job)]))
            if sent is Sent.GONE:
                gone.add(item.worker_id)
            # Sent.FULL: that process is alive but behind; its worker's next claim takes the job.
        if gone:
            released = await self._write(lambda conn: sum(claims.unregister(conn, w, set()) for w in gone))
            if released:
                self._work_available()

    def _on_handed_message(self, message: bytes) -> None:
        try:
            worker_id, row = load_json(message)
            job = job_of(row)
        except (ValueError, TypeError, KeyError, IndexError):
            return  # not ours to read: its job is still in the worker's registration
        self._delivered(worker_id, job)

    def _delivered(self, worker_id: str, job: Job) -> None:
        """A handed job reached this process: its worker takes it at its next call."""
        if self._handoffs.deliver(worker_id, job):
            self._wakeup.wake()

    def watch_handed(self, worker_id: str, callback: Callable[[], None]) -> None:
        self._handoffs.watch(worker_id, callback)

    def handed_waiting(self, worker_id: str) -> bool:
        return self._handoffs.waiting(worker_id)

    async def claim_or_wait(self, params: ClaimParams) -> list[Job]:
        """Claim; when nothing is due, register the worker so that enqueues hand it new jobs."""
        if params.limit <= 0:
            return []
        self._require_open()
        return await self._claim_for(params, register=True)

    async def _claim_for(self, params: ClaimParams, *, register: bool) -> list[Job]:
        worker_id, handoffs = params.worker_id, self._handoffs
        delivered = handoffs.take(worker_id, params.limit)
        if delivered:
            return delivered  # handed to it and already here: no transaction at all
        if register:
            self._listen()
            handoffs.local.add(worker_id)
            if handoffs.still_waiting(worker_id, params.limit, self._signals):
                # Still registered with slots to spare, and nothing announced work that was not
                # handed: a claim would find nothing (the next poll or wake-up looks again).
                return []
        signals = self._signals
        claim = claims.WaiterClaim(params, register, handoffs, self._channel.address, self.clock)
        jobs = await self._write(claim)
        handoffs.registered(worker_id, params.limit if claim.registered else 0, signals)
        if claim.handed_ids:
            return handoffs.settle(worker_id, claim.handed_ids, claim.handed) + jobs
        return jobs

    async def forget_worker(self, worker_id: str) -> None:
        self._require_open()
        self._handoffs.unwatch(worker_id)
        await self._forget(worker_id)

    async def _forget(self, worker_id: str) -> None:
        if worker_id not in self._handoffs.local:
            return
        taken = self._handoffs.forget(worker_id)  # from now on, messages for it are dropped
        released = await self._write(lambda conn: claims.unregister(conn, worker_id, taken))
        if released:
            self._work_available()
