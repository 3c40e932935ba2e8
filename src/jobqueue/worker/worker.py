"""The worker: claims jobs, runs them, records outcomes, keeps leases alive, recovers lost ones.

Services, each a loop on the worker's event loop:

- fetch loop: claims at most as many jobs as it has free slots, in one call; waits for work
  (woken by enqueues at once), for a slot to free, or for shutdown;
- executor: one asyncio task per running job (:mod:`.executor`);
- completer: writes outcomes in batches (:mod:`.completer`);
- heartbeater: one timer renews every held lease at lease/3; handler code cannot starve it since
  sync handlers run in threads; a lease found lost cancels its job's work;
- reaper: recovers expired leases of any worker as failed attempts ("worker lost");
- cleaner: prunes old finished jobs and expired keys (:mod:`.cleaner`).

Ownership is per incarnation: every Worker gets a fresh id, so a restarted process never mistakes
its predecessor's leases for its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from jobqueue.app import JobQueue
from jobqueue.backends.base import ClaimParams, Lease
from jobqueue.errors import BackendError
from jobqueue.job import Job
from jobqueue.recovery import recover_expired
from jobqueue.task import Pool
from jobqueue.worker.cleaner import Cleaner, Retention
from jobqueue.worker.completer import Completer
from jobqueue.worker.executor import Outcome, Runtime, run_attempt
from jobqueue.worker.metrics import WorkerMetrics
from jobqueue.worker.processes import ProcessPool

log = logging.getLogger("jobqueue.worker")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How a worker runs. Every time is in seconds."""

    queues: Sequence[str] = ("default",)
    #: Jobs run at once in this process.
    concurrency: int = 10
    #: Lease granted per claim; renewed every ``lease / 3`` while the job runs.
    lease: float = 30.0
    #: Longest idle wait before looking for work again when no wake-up came (jittered +/-20 %).
    poll_interval: float = 1.0
    #: How often this worker's reaper looks for expired leases; ``None`` disables the reaper.
    reaper_interval: float | None = 5.0
    #: On shutdown, how long running jobs may take to finish before they are released.
    grace: float = 30.0
    #: Attempt timeout for jobs and tasks that set none; ``None``: no limit.
    default_timeout: float | None = None
    #: Where plain-function handlers without a ``pool`` option run: ``"thread"`` or ``"process"``.
    pool: Pool = "thread"
    #: Child processes for ``pool="process"`` tasks (default: ``concurrency``), started on first use.
    process_pool_size: int | None = None
    #: How long finished jobs are kept before this worker's cleaner prunes them; ``None``: never.
    retention: Retention | None = field(default_factory=Retention)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.lease <= 0 or self.poll_interval <= 0 or self.grace < 0:
            raise ValueError("lease and poll_interval must be > 0, grace >= 0")
        if not self.queues:
            raise ValueError("a worker needs at least one queue")
        if self.pool not in ("thread", "process"):
            raise ValueError("pool must be 'thread' or 'process'")


class Worker:
    def __init__(self, app: JobQueue, config: WorkerConfig | None = None) -> None:
        self.app = app
        self.config = config or WorkerConfig()
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.metrics = WorkerMetrics()
        self._running: dict[str, tuple[Lease, asyncio.Task[None]]] = {}
        self._lost: set[str] = set()
        self._stop = asyncio.Event()
        #: What the fetch loop is waiting on; a freed slot or stop() resolves it (see _wait).
        self._interrupt: asyncio.Future[None] | None = None
        self._signals = 0
        #: ``time.monotonic()`` of the last claim that reached the store (``None`` before the first):
        #: a worker that has free slots but stops claiming is stuck, which readiness checks can see.
        self.last_claim_at: float | None = None
        self._runtime: Runtime | None = None
        self._completer: Completer | None = None

    # ---- public ---------------------------------------------------------------------------

    async def run(self, *, install_signal_handlers: bool = False) -> None:
        """Run until :meth:`stop` (or SIGTERM/SIGINT when handlers are installed), then shut down."""
        await self._serve(drain=False, install_signal_handlers=install_signal_handlers)

    async def drain(self) -> None:
        """Run until no due job is left and nothing is running, then return (tests, scripts)."""
        await self._serve(drain=True, install_signal_handlers=False)

    def stop(self) -> None:
        """Ask for a graceful shutdown: stop claiming, let running jobs finish within the grace."""
        self._stop.set()
        self._poke()

    @property
    def running(self) -> int:
        return len(self._running)

    # ---- lifecycle ------------------------------------------------------------------------

    async def _serve(self, *, drain: bool, install_signal_handlers: bool) -> None:
        await self.app.open()
        loop = asyncio.get_running_loop()
        self._runtime = Runtime(
            threads=ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="jobqueue-handler"),
            processes=ProcessPool(self.config.process_pool_size or self.config.concurrency)
            if self._needs_processes()
            else None,
            default_pool=self.config.pool,
            default_timeout=self.config.default_timeout,
        )
        self._completer = Completer(self.app.backend)
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal)
        side = [loop.create_task(self._heartbeat_loop(), name="jobqueue-heartbeat")]
        if self.config.reaper_interval is not None:
            side.append(loop.create_task(self._reaper_loop(), name="jobqueue-reaper"))
        if self.config.retention is not None:
            cleaner = Cleaner(self.app.backend, self.config.retention)
            side.append(loop.create_task(cleaner.run(), name="jobqueue-cleaner"))
        log.info("worker.started id=%s queues=%s concurrency=%d", self.id, ",".join(self.config.queues),
                 self.config.concurrency)  # fmt: skip
        try:
            await self._fetch_loop(drain)
        finally:
            await self._shutdown()
            for task in side:
                task.cancel()
            await asyncio.gather(*side, return_exceptions=True)
            if install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            # Threads past their timeout cannot be joined; do not wait for them.
            self._runtime.threads.shutdown(wait=False, cancel_futures=True)
            if self._runtime.processes is not None:
                await self._runtime.processes.close()
            log.info("worker.stopped id=%s", self.id)

    def _needs_processes(self) -> bool:
        return any(task.pool_for(self.config.pool) == "process" for task in self.app.tasks.values())

    def _on_signal(self) -> None:
        self._signals += 1
        if self._signals == 1:
            log.warning("worker.stopping id=%s: finishing running jobs (grace %g s); signal again to exit now",
                        self.id, self.config.grace)  # fmt: skip
            self.stop()
        else:
            # Leave at once. Nothing is lost: our leases expire and the reaper recovers the jobs.
            log.warning("worker.exit id=%s: second signal, leaving %d jobs to lease expiry", self.id, self.running)
            os._exit(1)

    async def _shutdown(self) -> None:
        try:
            await self.app.backend.forget_worker(self.id)  # nothing more is handed to us
        except Exception as exc:  # the store is down: jobs handed to us come back by lease expiry
            log.error("worker.forget_failed id=%s: %s", self.id, exc)
        running = [task for _, task in self._running.values()]
        if running:
            _, pending = await asyncio.wait(running, timeout=self.config.grace)
            leases = [lease for lease, task in self._running.values() if task in pending]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if leases:
                released = await self.app.backend.release(leases)
                self.metrics.released += sum(released)
                log.info("worker.released id=%s jobs=%d", self.id, sum(released))
        assert self._completer is not None
        await self._completer.drain()

    # ---- fetch loop -----------------------------------------------------------------------

    async def _fetch_loop(self, drain: bool) -> None:
        backend, config = self.app.backend, self.config
        while not self._stop.is_set():
            free = config.concurrency - len(self._running)
            # While busy, claim once half the slots are free rather than at every freed slot: one
            # round trip then carries several jobs. When idle, claim at once (latency matters).
            if free > 0 and (free * 2 >= config.concurrency or not self._running):
                try:
                    # wait=True: if this finds nothing, the backend may hand us new jobs directly.
                    params = ClaimParams(config.queues, self.id, free, config.lease, wait=not drain)
                    jobs = await backend.claim(params)
                    self.last_claim_at = time.monotonic()
                except BackendError as exc:
                    if drain:
                        raise
                    # The store is down or restarting: keep running jobs going and try again.
                    log.error("worker.claim_failed id=%s: %s; retrying", self.id, exc)
                    await self._pause_after_error()
                    continue
                for job in jobs:
                    self._start(job)
                if jobs:
                    await asyncio.sleep(0)  # let finished jobs free their slots before claiming again
                    continue
                if drain and not self._running:
                    # Outcomes still being written may make a job due again (a retry with no
                    # delay): write them, and stop only if a claim then still finds nothing.
                    assert self._completer is not None
                    await self._completer.drain()
                    jobs = await backend.claim(ClaimParams(config.queues, self.id, free, config.lease))
                    for job in jobs:
                        self._start(job)
                    if not jobs:
                        return
                    continue
            await self._wait(free * 2 >= config.concurrency or not self._running)

    async def _pause_after_error(self) -> None:
        """Back off (jittered, up to the poll interval) unless asked to stop meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.config.poll_interval * random.uniform(0.5, 1.0))

    async def _wait(self, for_work: bool) -> None:
        """Wait for a wake-up: new work (when a slot is free), a freed slot, or shutdown.

        One future that everything resolves, and at most one task: this runs between every burst
        of jobs, and each object or loop turn here is on the enqueue-to-start latency."""
        loop = asyncio.get_running_loop()
        interrupt = self._interrupt = loop.create_future()
        if self._stop.is_set():
            return
        work: asyncio.Task[bool] | None = None
        if for_work:
            timeout = self.config.poll_interval * random.uniform(0.8, 1.2)
            work = loop.create_task(self.app.backend.wait_for_work(self.config.queues, timeout))
            # Resolve this wait's future only: a task cancelled below finishes a loop turn later,
            # and poking whatever wait is current by then would wake it for nothing, which then
            # cancels its own task, and so on: a worker claiming in a busy loop.
            work.add_done_callback(lambda _: _resolve(interrupt))
        try:
            await interrupt
        finally:
            self._interrupt = None
            if work is not None and not work.done():
                work.cancel()  # it may hold a LISTEN or a timer; nobody needs its answer now
        failure = None if work is None or not work.done() or work.cancelled() else work.exception()
        if isinstance(failure, BackendError):
            # Waiting failed at once (a lost LISTEN connection, say): do not spin on it.
            log.error("worker.wait_failed id=%s: %s; retrying", self.id, failure)
            await self._pause_after_error()
        elif failure is not None:
            raise failure

    def _poke(self) -> None:
        if self._interrupt is not None:
            _resolve(self._interrupt)

    def _start(self, job: Job) -> None:
        self.metrics.claimed += 1
        started = time.time()
        self.metrics.start_latency.observe(max(0.0, (job.last_attempt or started) - job.run_at))
        task = asyncio.get_running_loop().create_task(self._execute(job), name=f"jobqueue-job-{job.id}")
        self._running[job.id] = (Lease(job.id, job.lease_token), task)

    async def _execute(self, job: Job) -> None:
        assert self._runtime is not None and self._completer is not None
        started = time.perf_counter()
        try:
            outcome = await run_attempt(job, self.app.tasks.get(job.task), self._runtime)
            await self._record(job, outcome, time.perf_counter() - started)
        except asyncio.CancelledError:
            if job.id in self._lost:
                log.warning("job.lease_lost id=%s task=%s attempt=%d: work stopped", job.id, job.task, job.attempt)
            # Otherwise a shutdown past its grace: the lease is released by _shutdown.
        finally:
            self._lost.discard(job.id)
            self._running.pop(job.id, None)
            self._poke()

    async def _record(self, job: Job, outcome: Outcome, duration: float) -> None:
        assert self._completer is not None
        self.metrics.duration.observe(duration)
        if outcome.abandoned_thread:
            # The thread keeps a pool slot until its handler returns; say so, it may need fixing.
            self.metrics.abandoned_threads += 1
        if outcome.completion is not None:
            ok = await self._completer.complete(outcome.completion)
            event = "job.completed"
            if ok:
                self.metrics.completed += 1
        else:
            assert outcome.failure is not None
            ok = await self._completer.fail(outcome.failure)
            dead = outcome.failure.retry_delay is None
            event = "job.dead_lettered" if dead else "job.retrying"
            if ok:
                self.metrics.failed += 1
                if dead:
                    self.metrics.dead_lettered += 1
                else:
                    self.metrics.retried += 1
        if not ok:
            self.metrics.lost_leases += 1
            log.warning("job.fenced id=%s task=%s attempt=%d: lease no longer held, outcome discarded",
                        job.id, job.task, job.attempt)  # fmt: skip
            return
        error = "" if outcome.failure is None else f" error={outcome.failure.error!r}"
        log.info("%s id=%s task=%s attempt=%d duration=%.4fs%s", event, job.id, job.task, job.attempt, duration, error)

    # ---- side services --------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        interval = self.config.lease / 3
        while True:
            await asyncio.sleep(interval)
            await self.heartbeat_once()

    async def heartbeat_once(self) -> None:
        """Renew every held lease; stop the work of any lease found lost."""
        held = list(self._running.values())
        if not held:
            return
        try:
            owned = await self.app.backend.heartbeat([lease for lease, _ in held], self.config.lease)
        except Exception as exc:  # the store is down: keep working, try again next beat
            log.error("worker.heartbeat_failed id=%s: %s", self.id, exc)
            return
        for (lease, task), still in zip(held, owned, strict=True):
            if not still and not task.done():
                self._lost.add(lease.job_id)
                task.cancel()

    async def _reaper_loop(self) -> None:
        assert self.config.reaper_interval is not None
        while True:
            await self.reap_once()
            await asyncio.sleep(self.config.reaper_interval * random.uniform(0.8, 1.2))

    async def reap_once(self) -> int:
        """Recover expired leases (of any worker); returns how many."""
        try:
            recovered = await recover_expired(self.app.backend, self.app.retry_policy)
        except Exception as exc:
            log.error("worker.reaper_failed id=%s: %s", self.id, exc)
            return 0
        if recovered:
            self.metrics.recovered += recovered
            log.warning("worker.recovered id=%s jobs=%d (lease expired: worker lost)", self.id, recovered)
        return recovered


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
