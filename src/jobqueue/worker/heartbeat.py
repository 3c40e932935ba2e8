"""The heartbeater, which renews every lease the worker holds at a third of the lease, and the
lease watch, which looks twice a second whether each is still held.

Both run on the event loop, which handler code cannot block (sync handlers run in threads or
processes), so a busy worker keeps its leases. A lease found lost (the job was cancelled, or the
reaper took it back after the worker stalled past it) stops that job's work: its result would be
fenced off anyway. The watch only reads (one small query for all held jobs), so a cancel reaches a
running job within about half a second without writing leases that often.
"""

from __future__ import annotations

import logging

from jobqueue.backends.base import Backend
from jobqueue.clock import Clock
from jobqueue.job import JobState
from jobqueue.worker.service import PeriodicService
from jobqueue.worker.signals import WorkerSignals
from jobqueue.worker.slots import Slots

log = logging.getLogger("jobqueue.worker")


class Heartbeater(PeriodicService):
    name = "heartbeat"

    def __init__(self, backend: Backend, slots: Slots, lease: float, clock: Clock, signals: WorkerSignals) -> None:
        super().__init__(clock)
        self.backend = backend
        self.slots = slots
        self.lease = lease
        self.signals = signals

    def interval(self) -> float:
        return self.lease / 3

    async def run_once(self) -> list[bool]:
        """Renew every held lease; stop the work of any lease found lost. Whether each is held."""
        held = self.slots.held()
        if not held:
            return []
        owned = await self.backend.heartbeat([lease for lease, _ in held], self.lease)
        for (lease, _), still in zip(held, owned, strict=True):
            if not still:
                self.slots.lose(lease)
        self.signals.heartbeat_sent.signal(owned)
        return owned


class LeaseWatch(PeriodicService):
    name = "lease-watch"

    def __init__(self, backend: Backend, slots: Slots, interval: float, clock: Clock) -> None:
        super().__init__(clock)
        self.backend = backend
        self.slots = slots
        self._interval = interval

    def interval(self) -> float:
        return self._interval

    async def run_once(self) -> list[str]:
        """Stop the work of every job whose lease is no longer held; the ids of those stopped."""
        held = self.slots.held()
        if not held:
            return []
        still = await self.backend.check_leases([lease for lease, _ in held])
        lost = [lease for (lease, _), owned in zip(held, still, strict=True) if not owned]
        if lost:
            # Rare, and worth a read: the log line should say whether someone cancelled the job
            # (an operator's act) or the reaper took it back (a stall worth a warning).
            jobs = await self.backend.get_many([lease.job_id for lease in lost])
            for lease, job in zip(lost, jobs, strict=True):
                self.slots.lose(lease, cancelled=job is not None and job.state is JobState.CANCELLED)
        return [lease.job_id for lease in lost]
