"""``WorkerConfig``: how a worker runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    #: How often the worker looks whether its running jobs were cancelled (one read of all their
    #: leases); ``None``: only at heartbeats.
    cancel_check_interval: float | None = 0.5
    #: Claim across ``queues`` in a weighted rotation instead of by job priority: each claim
    #: starts with the next queue of the rotation, so a busy queue cannot starve the others.
    #: ``True`` weighs every queue 1; a mapping gives weights by queue (missing ones weigh 1).
    fair: bool | Mapping[str, int] = False
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
    #: How often this worker writes its report (who it is, its counters) to the store, for the
    #: dashboard's list of workers and its charts; ``None``: never (the worker is not listed).
    report_interval: float | None = 1.0
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
        if self.report_interval is not None and self.report_interval <= 0:
            raise ValueError("report_interval must be > 0 (or None)")
        if self.cancel_check_interval is not None and self.cancel_check_interval <= 0:
            raise ValueError("cancel_check_interval must be > 0 (or None)")
        if not isinstance(self.fair, bool) and any(
            isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in self.fair.values()
        ):
            raise ValueError("fair: every queue weight must be an integer >= 1")
        if self.pool not in ("thread", "process"):
            raise ValueError("pool must be 'thread' or 'process'")
