"""The worker: claims jobs, runs them, records outcomes, keeps leases alive, recovers lost ones.

A worker is a set of small services, started and stopped by :meth:`Worker.run`, all on one clock
(the ``clock`` given, else the app's, else the real one), so that a test can drive them with a
:class:`~jobqueue.clock.FakeClock`:

- fetcher (:mod:`.fetcher`): the main loop; claims at most as many jobs as there are free slots;
- executor (:mod:`.executor`): one asyncio task per running job;
- completer (:mod:`.completer`): writes outcomes in batches;
- heartbeater (:mod:`.heartbeat`): renews every held lease at lease/3;
- lease watch (:mod:`.heartbeat`): stops the work of a job cancelled (or recovered) meanwhile;
- reaper (:mod:`.reaper`): recovers expired leases of any worker as failed attempts;
- cleaner (:mod:`.cleaner`): prunes old finished jobs and expired keys;
- scheduler (:mod:`.scheduler`): fires the app's periodic schedules (each tick once, store-wide);
- presence (:mod:`.presence`): writes the worker's report to the store, for the dashboard.

Ownership is per incarnation: every Worker gets a fresh id, so a restarted process never mistakes
its predecessor's leases for its own. ``worker.signals`` (:mod:`.signals`) are the points tests
wait for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor

from jobqueue.app import JobQueue
from jobqueue.backends.params import Lease
from jobqueue.clock import Clock, SystemClock
from jobqueue.errors import BackendError
from jobqueue.job import Job, JobState
from jobqueue.retention import Retention
from jobqueue.status import WorkerMetrics, WorkerSummary
from jobqueue.worker.cleaner import Cleaner
from jobqueue.worker.completer import Completer
from jobqueue.worker.config import WorkerConfig
from jobqueue.worker.executor import Outcome, Runtime, failure_before_start, run_attempt
from jobqueue.worker.fetcher import Fetcher
from jobqueue.worker.heartbeat import Heartbeater, LeaseWatch
from jobqueue.worker.presence import Presence
from jobqueue.worker.processes import ProcessPool
from jobqueue.worker.reaper import Reaper
from jobqueue.worker.scheduler import Scheduler
from jobqueue.worker.signals import WorkerSignals
from jobqueue.worker.slots import Slots

log = logging.getLogger("jobqueue.worker")


class Worker:
    """Runs the jobs of ``app``'s queues named in ``config``, on the app's backend as it is now."""

    def __init__(self, app: JobQueue, config: WorkerConfig | None = None, *, clock: Clock | None = None) -> None:
        self.app = app
        self.config = config = config or WorkerConfig()
        self.clock: Clock = clock or app.clock or SystemClock()
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.metrics = WorkerMetrics()
        self.signals = WorkerSignals()
        backend = app.backend
        self.completer = Completer(backend, config.lease, self.clock, self.signals)
        self.slots = Slots(config.concurrency)
        self.fetcher = Fetcher(backend, config, self.id, self.slots, self._start, self.completer, self.clock,
                               self.signals)  # fmt: skip
        self.slots.on_freed = self.fetcher.poke
        self.heartbeater = Heartbeater(backend, self.slots, config.lease, self.clock, self.signals)
        self.lease_watch = LeaseWatch(backend, self.slots, config.cancel_check_interval or 0.5, self.clock)
        self.reaper = Reaper(backend, app.retry_policy, config.reaper_interval or 5.0, self.clock, self.metrics,
                             self.signals)  # fmt: skip
        self.cleaner = Cleaner(backend, config.retention or Retention(), self.clock, self.signals)
        self.scheduler = Scheduler(app, self.clock, self.signals)
        self.presence = Presence(backend, self.id, tuple(config.queues), config.concurrency, lambda: self.slots.busy,
                                 self.metrics, config.report_interval or 1.0, self.clock)  # fmt: skip
        for service in (self.heartbeater, self.lease_watch, self.reaper, self.cleaner):
            service.owner = self.id
        self._signals = 0
        self._runtime: Runtime | None = None

    # ---- public ---------------------------------------------------------------------------

    async def run(self, *, install_signal_handlers: bool = False) -> None:
        """Run until :meth:`stop` (or SIGTERM/SIGINT when handlers are installed), then shut down."""
        await self._serve(drain=False, install_signal_handlers=install_signal_handlers)

    async def drain(self) -> None:
        """Run until no due job is left and nothing is running, then return (tests, scripts)."""
        await self._serve(drain=True, install_signal_handlers=False)

    def stop(self) -> None:
        """Ask for a graceful shutdown: stop claiming, let running jobs finish within the grace."""
        self.fetcher.stop()

    @property
    def running(self) -> int:
        return self.slots.busy

    @property
    def last_claim_at(self) -> float | None:
        """``clock.monotonic()`` of the last claim that reached the store (``None`` before the first)."""
        return self.fetcher.last_claim_at

    def status(self) -> WorkerSummary:
        """This worker's slots, running jobs and counters, as the API shows them."""
        busy = self.slots.busy
        return WorkerSummary(self.config.concurrency, busy, busy < self.config.concurrency,
                             frozenset(self.config.queues), 1, 0, self.metrics)  # fmt: skip

    # ---- lifecycle ------------------------------------------------------------------------

    async def _serve(self, *, drain: bool, install_signal_handlers: bool) -> None:
        await self.app.open()
        loop = asyncio.get_running_loop()
        config = self.config
        self._runtime = Runtime(
            threads=ThreadPoolExecutor(config.concurrency, thread_name_prefix="jobqueue-handler"),
            processes=ProcessPool(config.process_pool_size or config.concurrency) if self._needs_processes() else None,
            default_pool=config.pool,
            default_timeout=config.default_timeout,
        )
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal)
        services = [
            self.heartbeater,
            *([self.lease_watch] if config.cancel_check_interval is not None else []),
            *([self.reaper] if config.reaper_interval is not None else []),
            *([self.cleaner] if config.retention is not None else []),
            *([self.scheduler] if config.scheduler and self.app.schedules else []),
            *([self.presence] if config.report_interval is not None else []),
        ]
        await self._register_tasks()
        for service in services:
            service.start()
        log.info("worker.started id=%s queues=%s concurrency=%d", self.id, ",".join(config.queues), config.concurrency)
        try:
            await self.fetcher.run(drain=drain)
        finally:
            await self._shutdown()
            for service in services:
                await service.stop()
            if install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            # Threads past their timeout cannot be joined; do not wait for them.
            self._runtime.threads.shutdown(wait=False, cancel_futures=True)
            self.stuck_threads = self._runtime.thread_calls.running
            if self.stuck_threads:
                log.warning("worker.threads_left_running id=%s threads=%d: their jobs were released (or timed out) "
                            "and run again elsewhere; what these threads return is discarded", self.id,
                            self.stuck_threads)  # fmt: skip
            if self._runtime.processes is not None:
                await self._runtime.processes.close()
            log.info("worker.stopped id=%s", self.id)

    async def _register_tasks(self) -> None:
        """Store this app's task defaults, so that jobs submitted by name from anywhere get them."""
        try:
            await self.fetcher.backend.register_tasks(self.app.registered_tasks())
        except BackendError as exc:  # the store is down: claims will say so, and retry
            log.warning("worker.register_failed id=%s: %s", self.id, exc)

    #: Handler threads still running when the worker stopped (past the grace period or a timeout):
    #: Python cannot stop a thread, and the interpreter waits for them at exit (see run_worker).
    stuck_threads = 0

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
        handoff = self.fetcher.handoff
        if handoff is not None:
            try:
                await handoff.forget_worker(self.id)  # nothing more is handed to us
            except Exception as exc:  # the store is down: jobs handed to us come back by lease expiry
                log.error("worker.forget_failed id=%s: %s", self.id, exc)
        held = self.slots.held()
        self.signals.stopping.signal(len(held))
        if held:
            pending = await self._finish_within_grace([task for _, task in held])
            leases = [lease for lease, task in held if task in pending]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if leases:
                released = await self.app.backend.release(leases)
                self.metrics.released += sum(released)
                log.info("worker.released id=%s jobs=%d", self.id, sum(released))
        await self.completer.stop()

    async def _finish_within_grace(self, running: list[asyncio.Task[None]]) -> set[asyncio.Task[None]]:
        """Wait for the running jobs, up to the grace period of the worker's clock; those left."""
        pending = set(running)
        timer = asyncio.ensure_future(self.clock.sleep(self.config.grace))
        try:
            while pending and not timer.done():
                done, _ = await asyncio.wait({*pending, timer}, return_when=asyncio.FIRST_COMPLETED)
                pending -= done
        finally:
            timer.cancel()
        return pending

    # ---- running jobs ---------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        self.metrics.claimed += 1
        started = self.clock.time()
        self.metrics.start_latency.observe(max(0.0, (job.last_attempt or started) - job.run_at))
        task = asyncio.get_running_loop().create_task(self._execute(job), name=f"jobqueue-job-{job.id}")
        self.slots.fill(Lease(job.id, job.lease_token), task, job)

    async def _execute(self, job: Job) -> None:
        assert self._runtime is not None
        started = self.clock.monotonic()
        try:
            outcome = None
            if job.parents:
                outcome = await self._read_parent_results(job)
            if outcome is None:
                outcome = await run_attempt(job, self.app.tasks.get(job.task), self._runtime)
            self.slots.recording(job.id)
            await self._record(job, outcome, self.clock.monotonic() - started)
        except asyncio.CancelledError:
            if self.slots.was_cancelled(job.id):
                self.metrics.lost_leases += 1
                log.info("job.cancelled id=%s task=%s attempt=%d: work stopped", job.id, job.task, job.attempt,
                         extra=self._fields(job, "job.cancelled", "cancelled"))  # fmt: skip
            elif self.slots.was_lost(job.id):
                self.metrics.lost_leases += 1
                log.warning("job.lease_lost id=%s task=%s attempt=%d: work stopped", job.id, job.task, job.attempt,
                            extra=self._fields(job, "job.lease_lost", "lease_lost"))  # fmt: skip
            # Otherwise a shutdown past its grace: the lease is released by _shutdown.
        finally:
            self.slots.free_slot(job.id)
            self.signals.finished.signal(job)

    async def _read_parent_results(self, job: Job) -> Outcome | None:
        """Give the handler its parents' results (``current_job().parent_results``); a store that
        cannot answer fails the attempt (retried as any failure) rather than run it without them."""
        try:
            parents = await self.app.backend.get_many(job.parents)
        except Exception as exc:
            task = self.app.tasks.get(job.task)
            return failure_before_start(job, task, f"could not read its parents' results: {exc}")
        job.parent_results = {p.id: p.result for p in parents if p is not None and p.state is JobState.COMPLETED}
        return None

    async def _record(self, job: Job, outcome: Outcome, duration: float) -> None:
        self.metrics.duration.observe(duration)
        if outcome.abandoned_thread:
            # The thread keeps a pool slot until its handler returns; say so, it may need fixing.
            self.metrics.abandoned_threads += 1
        if outcome.completion is not None:
            ok = await self.completer.complete(outcome.completion)
            event = "job.completed"
            if ok:
                self.metrics.completed += 1
        else:
            assert outcome.failure is not None
            ok = await self.completer.fail(outcome.failure)
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
            log.warning("job.fenced id=%s task=%s attempt=%d: lease no longer held, outcome discarded", job.id,
                        job.task, job.attempt, extra=self._fields(job, "job.fenced", "fenced", duration))  # fmt: skip
            return
        if log.isEnabledFor(logging.INFO):  # the fields cost a dict per job: only when logged
            failed = None if outcome.failure is None else outcome.failure.error
            fields = self._fields(job, event, event.partition(".")[2], duration, failed)
            error = "" if failed is None else f" error={failed!r}"
            log.info("%s id=%s task=%s attempt=%d duration=%.4fs%s", event, job.id, job.task, job.attempt, duration,
                     error, extra=fields)  # fmt: skip

    def _fields(
        self, job: Job, event: str, outcome: str, duration: float | None = None, error: str | None = None
    ) -> dict[str, object]:
        """A job event's fields, for structured logs (``jobqueue.logs``; text logs leave them out)."""
        return {"event": event, "job_id": job.id, "task": job.task, "queue": job.queue, "attempt": job.attempt,
                "duration": duration, "outcome": outcome, "error": error, "worker_id": self.id}  # fmt: skip
