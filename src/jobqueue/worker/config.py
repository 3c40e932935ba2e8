"""``WorkerConfig``: how a worker runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from jobqueue.retention import Retention
from jobqueue.task import Pool


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
    #: Fire the app's periodic schedules from this worker (each tick is one job however many do).
    scheduler: bool = True
    #: How long finished jobs are kept before this worker's cleaner prunes them; ``None``: never.
    retention: Retention | None = field(default_factory=Retention)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.lease <= 0 or self.poll_interval <= 0 or self.grace < 0:
            raise ValueError("lease and poll_interval must be > 0, grace >= 0")
        if self.reaper_interval is not None and self.reaper_interval <= 0:
            raise ValueError("reaper_interval must be > 0 (or None: no reaper)")
        if not self.queues:
            raise ValueError("a worker needs at least one queue")
        if self.pool not in ("thread", "process"):
            raise ValueError("pool must be 'thread' or 'process'")
