"""Everything one API app holds, kept on ``app.state.jobqueue`` (no module-level state)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.requests import Request

from jobqueue.api.metrics import ApiCounters, MetricsSnapshot, PrometheusExporter
from jobqueue.api.pulse import Pulse
from jobqueue.api.schemas import TaskDefaults
from jobqueue.api.shedding import Shedder
from jobqueue.app import JobQueue
from jobqueue.status import WorkerStatus, WorkerSummary


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
    """What one app holds: its queue, settings, the status of in-process workers, counters, caches."""

    queue: JobQueue
    config: ApiConfig
    #: The workers run beside this app in its process (``jobqueue serve``); ``None`` for an API alone.
    workers: WorkerStatus | None
    counters: ApiCounters = field(default_factory=ApiCounters)
    exporter: PrometheusExporter = field(default_factory=PrometheusExporter)
    shedder: Shedder = field(init=False)
    #: The dashboard's chart points, sampled once a second while the app runs.
    pulse: Pulse = field(init=False)
    #: Task defaults for submissions, worked out once per task.
    defaults: TaskDefaults = field(default_factory=TaskDefaults)
    #: Claims counted by the last readiness probe; since when probes have seen a stall (monotonic).
    last_claimed: int = 0
    stalled_since: float | None = None

    def __post_init__(self) -> None:
        self.shedder = Shedder(self.config.shed_window)
        self.pulse = Pulse(self.queue)

    @property
    def retry_after(self) -> dict[str, str]:
        """The ``Retry-After`` header every 503 carries."""
        return {"Retry-After": str(self.config.retry_after)}

    def capacities(self, queues: list[str]) -> dict[str, int]:
        """The capacity of each queue that has one."""
        return self.queue.capacities(queues)

    def worker_summary(self) -> WorkerSummary:
        """The in-process workers' slots, running jobs and counters, added up."""
        return WorkerSummary() if self.workers is None else self.workers.worker_summary()

    async def snapshot(self) -> MetricsSnapshot:
        """The store's counts and this process's counters, for ``/metrics`` and ``/queues``."""
        stats, paused, limits = await asyncio.gather(
            self.queue.stats(), self.queue.paused_queues(), self.queue.limits()
        )
        workers = self.worker_summary()
        queues = sorted(set(stats.queues) | workers.queues | {"default"})
        return MetricsSnapshot(stats, self.capacities(queues), self.counters, workers, frozenset(paused), limits)


def get_state(request: Request) -> ApiState:
    """The app's state (set by :func:`jobqueue.api.create_app`)."""
    state: ApiState = request.app.state.jobqueue
    return state
