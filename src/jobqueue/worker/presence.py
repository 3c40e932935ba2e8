"""The presence service: a worker's report in the store every ``report_interval`` seconds (who it
is, what it runs, its counters), so that a dashboard on any host lists the live workers and charts
what they do. A worker gone without a word drops out when its last report expires."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable

from jobqueue.backends.base import Backend
from jobqueue.clock import Clock
from jobqueue.status import REPORTED_COUNTERS, WorkerMetrics, WorkerReport
from jobqueue.version import __version__
from jobqueue.worker.service import PeriodicService

log = logging.getLogger("jobqueue.worker")

#: A report outlives this many intervals, so one late or lost write does not hide a live worker.
MISSED_REPORTS = 3
#: ... and never less than this many seconds.
MIN_TTL = 5.0


class Presence(PeriodicService):
    name = "presence"
    run_at_start = True

    def __init__(
        self,
        backend: Backend,
        worker_id: str,
        queues: tuple[str, ...],
        concurrency: int,
        busy: Callable[[], int],
        metrics: WorkerMetrics,
        interval: float,
        clock: Clock,
    ) -> None:
        super().__init__(clock)
        self.backend = backend
        self.worker_id = worker_id
        self.queues = queues
        self.concurrency = concurrency
        self.busy = busy
        self.metrics = metrics
        self._interval = interval
        self.started_at = clock.time()

    def interval(self) -> float:
        return self._interval

    def report(self) -> WorkerReport:
        metrics = self.metrics
        return WorkerReport(
            self.worker_id, socket.gethostname(), os.getpid(), self.queues, self.concurrency, self.busy(),
            self.started_at, self.clock.time(), __version__,
            {name: getattr(metrics, name) for name in REPORTED_COUNTERS}, tuple(metrics.start_latency.counts),
        )  # fmt: skip

    async def run_once(self) -> WorkerReport:
        report = self.report()
        ttl = max(MIN_TTL, MISSED_REPORTS * self._interval)
        await self.backend.report_worker(self.worker_id, report.to_json(), ttl)
        return report

    async def stop(self) -> None:
        """Stop reporting, and leave the list of workers at once."""
        running = self._task is not None
        await super().stop()
        if running:
            try:
                await self.backend.remove_worker_report(self.worker_id)
            except Exception as exc:  # the store is down: the report expires by itself
                log.warning("worker.unreport_failed id=%s: %s", self.worker_id, exc)
