"""The heartbeater: one timer renews every lease the worker holds, at a third of the lease.

It runs on the event loop, which handler code cannot block (sync handlers run in threads or
processes), so a busy worker keeps its leases. A lease found lost (the reaper took the job back
after the worker stalled past it) stops that job's work: its result would be fenced off anyway.
"""

from __future__ import annotations

import logging

from jobqueue.backends.base import Backend
from jobqueue.clock import Clock
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
                self.slots.lose(lease.job_id)
        self.signals.heartbeat_sent.signal(owned)
        return owned
