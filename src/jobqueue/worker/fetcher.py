"""The fetcher: the worker's main loop, which claims jobs for its free slots and waits for work.

It claims at most as many jobs as the worker has free slots, in one call. While busy it claims
once half the slots are free rather than at every freed slot, so that one round trip carries
several jobs; when idle it claims at once, since latency matters then. Between claims it waits for
new work (the backend wakes it when a job is enqueued), a freed slot, or a stop. On a backend with
the :class:`~jobqueue.backends.base.Handoff` capability, an empty claim leaves the worker ready to
be handed the next jobs directly.

Fair claiming (``WorkerConfig.fair``): each claim asks first for the next queue of a smooth
weighted rotation (weights 3 and 1 give a, a, b, a, ...) and fills what is left of its slots from
all the queues by job priority. A backlog in one queue then takes at most its share of the claims,
at the cost of strict priority across queues and, when the queue first asked is empty, a second
round trip.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from jobqueue.backends.base import Backend, Handoff
from jobqueue.backends.params import ClaimParams
from jobqueue.clock import Clock
from jobqueue.errors import BackendError
from jobqueue.job import Job
from jobqueue.worker.completer import Completer
from jobqueue.worker.config import WorkerConfig
from jobqueue.worker.signals import WorkerSignals
from jobqueue.worker.slots import Slots

log = logging.getLogger("jobqueue.worker")


class Fetcher:
    def __init__(
        self,
        backend: Backend,
        config: WorkerConfig,
        worker_id: str,
        slots: Slots,
        start_job: Callable[[Job], None],
        completer: Completer,
        clock: Clock,
        signals: WorkerSignals,
    ) -> None:
        self.backend = backend
        self.handoff = backend if isinstance(backend, Handoff) else None
        self.config = config
        self.worker_id = worker_id
        self.slots = slots
        self.start_job = start_job
        self.completer = completer
        self.clock = clock
        self.signals = signals
        #: ``clock.monotonic()`` of the last claim that reached the store (``None`` before the
        #: first): a worker that has free slots but stops claiming is stuck, which readiness sees.
        self.last_claim_at: float | None = None
        self._stop = asyncio.Event()
        #: What the loop is waiting on; a freed slot or stop() resolves it (see _wait).
        self._interrupt: asyncio.Future[None] | None = None
        self.rotation = None if not config.fair or len(config.queues) < 2 else WeightedRotation(config)
        if self.handoff is not None:
            # Jobs handed to this worker's free slots must be taken even while it is too busy to
            # claim (it claims again once half its slots are free): their arrival ends a wait.
            self.handoff.watch_handed(worker_id, self.poke)

    def stop(self) -> None:
        """Claim no more; the loop returns at its next turn."""
        self._stop.set()
        self.poke()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def poke(self) -> None:
        """End the current wait (a slot was freed, or stop)."""
        if self._interrupt is not None:
            _resolve(self._interrupt)

    async def run_once(self, *, wait: bool = False) -> list[Job]:
        """Claim for the free slots and start what comes back; ``wait``: the loop will wait if
        nothing does, so a backend that can hand jobs to a waiting worker may do so."""
        config = self.config
        free = self.slots.free
        jobs: list[Job] = []
        if self.rotation is not None:
            jobs = await self.backend.claim(ClaimParams((self.rotation.next(),), self.worker_id, free, config.lease))
        if len(jobs) < free:
            params = ClaimParams(config.queues, self.worker_id, free - len(jobs), config.lease)
            if wait and not jobs and self.handoff is not None:
                jobs = await self.handoff.claim_or_wait(params)
            else:
                jobs += await self.backend.claim(params)
        self.last_claim_at = self.clock.monotonic()
        self.signals.claimed.signal(jobs)
        for job in jobs:
            self.start_job(job)
        return jobs

    async def run(self, *, drain: bool) -> None:
        """Fetch until stopped, or (``drain``) until no due job is left and nothing runs."""
        slots, concurrency = self.slots, self.config.concurrency
        while not self._stop.is_set():
            free = slots.free
            # While busy, claim once half the slots are free (see the module docstring), or
            # take the jobs already handed to the free ones.
            handed = self.handoff is not None and self.handoff.handed_waiting(self.worker_id)
            if free > 0 and (free * 2 >= concurrency or not slots.busy or handed):
                try:
                    jobs = await self.run_once(wait=not drain)
                except BackendError as exc:
                    if drain:
                        raise
                    # The store is down or restarting: keep running jobs going and try again.
                    log.error("worker.claim_failed id=%s: %s; retrying", self.worker_id, exc)
                    await self._pause_after_error()
                    continue
                if jobs:
                    await asyncio.sleep(0)  # let finished jobs free their slots before claiming again
                    continue
                if drain and not slots.busy:
                    # Outcomes still being written may make a job due again (a retry with no
                    # delay): write them, and stop only if a claim then still finds nothing.
                    await self.completer.drain()
                    if not await self.run_once():
                        return
                    continue
            await self._wait(free * 2 >= concurrency or not slots.busy)

    async def _pause_after_error(self) -> None:
        """Back off (jittered, up to the poll interval) unless asked to stop meanwhile."""
        pause = asyncio.ensure_future(self.clock.sleep(self.config.poll_interval * random.uniform(0.5, 1.0)))
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait([pause, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            pause.cancel()
            stop.cancel()

    async def _wait(self, for_work: bool) -> None:
        """Wait for a wake-up: new work (when a slot is free), a freed slot, or shutdown.

        One future that everything resolves, and at most one task: this runs between every burst
        of jobs, and each object or loop turn here is on the enqueue-to-start latency."""
        loop = asyncio.get_running_loop()
        interrupt = self._interrupt = loop.create_future()
        if self._stop.is_set() or (self.slots.free and self.handoff and self.handoff.handed_waiting(self.worker_id)):
            return  # (jobs handed since the loop looked, and a slot for them: their poke came before this wait)
        work: asyncio.Task[bool] | None = None
        if for_work:
            timeout = self.config.poll_interval * random.uniform(0.8, 1.2)
            work = loop.create_task(self.backend.wait_for_work(self.config.queues, timeout))
            # Resolve this wait's future only: a task cancelled below finishes a loop turn later,
            # and poking whatever wait is current by then would wake it for nothing, which then
            # cancels its own task, and so on: a worker claiming in a busy loop.
            work.add_done_callback(lambda _: _resolve(interrupt))
        self.signals.waiting.signal(None)
        try:
            await interrupt
        finally:
            self._interrupt = None
            if work is not None and not work.done():
                work.cancel()  # it may hold a LISTEN or a timer; nobody needs its answer now
        failure = None if work is None or not work.done() or work.cancelled() else work.exception()
        if isinstance(failure, BackendError):
            # Waiting failed at once (a lost LISTEN connection, say): do not spin on it.
            log.error("worker.wait_failed id=%s: %s; retrying", self.worker_id, failure)
            await self._pause_after_error()
        elif failure is not None:
            raise failure


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class WeightedRotation:
    """Smooth weighted round robin over a worker's queues: each turn, every queue gains its weight
    and the one with the most goes next, paying the total; so turns interleave in proportion."""

    def __init__(self, config: WorkerConfig) -> None:
        weights = {} if isinstance(config.fair, bool) else dict(config.fair)
        self.weights = {queue: weights.get(queue, 1) for queue in dict.fromkeys(config.queues)}
        self._total = sum(self.weights.values())
        self._current = dict.fromkeys(self.weights, 0)

    def next(self) -> str:
        current = self._current
        for queue, weight in self.weights.items():
            current[queue] += weight
        chosen = max(current, key=current.__getitem__)
        current[chosen] -= self._total
        return chosen
