"""Everything one API app holds, kept on ``app.state.jobqueue`` (no module-level state)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from starlette.requests import Request

from jobqueue.api.schemas import TaskDefaults
from jobqueue.api.shedding import Shedder
from jobqueue.app import JobQueue
from jobqueue.metrics import ApiCounters, MetricsSnapshot, PrometheusExporter, WorkerSummary
from jobqueue.worker import Worker

log = logging.getLogger("jobqueue.api")


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """How the API behaves. Times are in seconds."""

    #: Bearer token every route but ``/health`` requires; ``None``: no authentication (loopback only).
    token: str | None = None
    #: Largest request body accepted (413 beyond), counted as it streams in.
    max_body_bytes: int = 1 << 20
    #: Most jobs in one ``POST /jobs/batch``.
    max_batch: int = 1000
    #: ``Retry-After`` sent with a 503 (queue full, store unavailable).
    retry_after: int = 1
    #: ``/ready`` fails when the store does not answer within this time.
    ready_timeout: float = 2.0
    #: ``/ready`` fails when jobs are pending, a worker slot is free, and no job was claimed for this long.
    stall_after: float = 30.0
    #: After a queue refuses a job for capacity, further jobs without an idempotency key are refused
    #: for this long without asking the store (see :mod:`jobqueue.api.shedding`). 0: off.
    shed_window: float = 0.05

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1 or self.max_batch < 1 or self.retry_after < 0 or self.shed_window < 0:
            raise ValueError("max_body_bytes and max_batch must be >= 1; retry_after and shed_window >= 0")


@dataclass(slots=True)
class ApiState:
    """What one app holds: its queue, settings, in-process workers, counters and caches."""

    queue: JobQueue
    config: ApiConfig
    #: Workers this app runs in its own process (``jobqueue serve``); empty for an API alone.
    workers: list[Worker]
    counters: ApiCounters = field(default_factory=ApiCounters)
    exporter: PrometheusExporter = field(default_factory=PrometheusExporter)
    worker_tasks: list[asyncio.Task[None]] = field(default_factory=list)
    shedder: Shedder = field(init=False)
    #: Task defaults for submissions, worked out once per task.
    defaults: TaskDefaults = field(default_factory=TaskDefaults)
    #: Claims counted by the last readiness probe; since when probes have seen a stall (monotonic).
    last_claimed: int = 0
    stalled_since: float | None = None

    def __post_init__(self) -> None:
        self.shedder = Shedder(self.config.shed_window)

    @property
    def retry_after(self) -> dict[str, str]:
        """The ``Retry-After`` header every 503 carries."""
        return {"Retry-After": str(self.config.retry_after)}

    def capacities(self, queues: list[str]) -> dict[str, int]:
        """The capacity of each queue that has one."""
        return self.queue.capacities(queues)

    def worker_summary(self) -> WorkerSummary:
        """The in-process workers' slots, running jobs and counters, added up."""
        return WorkerSummary.of((w.config.concurrency, w.running, w.metrics) for w in self.workers)

    async def snapshot(self) -> MetricsSnapshot:
        """The store's counts and this process's counters, for ``/metrics`` and ``/queues``."""
        stats = await self.queue.stats()
        queues = sorted(set(stats.queues) | {q for w in self.workers for q in w.config.queues} | {"default"})
        return MetricsSnapshot(stats, self.capacities(queues), self.counters, self.worker_summary())

    # ---- in-process workers ---------------------------------------------------------------

    def start_workers(self) -> None:
        """Run each in-process worker as a task on the running loop (the app's lifespan calls this)."""
        for worker in self.workers:
            self.worker_tasks.append(asyncio.get_running_loop().create_task(worker.run(), name=f"worker-{worker.id}"))

    async def stop_workers(self) -> None:
        """Stop claiming, let running jobs finish within each worker's grace, release the rest."""
        for worker in self.workers:
            worker.stop()
        for task in self.worker_tasks:
            try:
                await task
            except Exception:
                log.exception("a worker stopped with an error")
        self.worker_tasks.clear()

    def dead_workers(self) -> int:
        """Workers whose task ended while the app runs (a crash: they no longer fetch)."""
        return sum(task.done() for task in self.worker_tasks)


def get_state(request: Request) -> ApiState:
    """The app's state (set by :func:`jobqueue.api.create_app`)."""
    state: ApiState = request.app.state.jobqueue
    return state
