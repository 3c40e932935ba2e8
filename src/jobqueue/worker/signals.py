"""The worker's test signals (see :mod:`jobqueue.signals`): tests wait on these, not on sleeps."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from jobqueue.job import Job
from jobqueue.outcomes import PruneResult
from jobqueue.signals import TestSignal


@dataclass(slots=True)
class WorkerSignals:
    #: A claim reached the store: the jobs it returned (maybe none).
    claimed: TestSignal[list[Job]] = field(default_factory=TestSignal)
    #: The fetch loop began to wait (for work, a freed slot or a stop).
    waiting: TestSignal[None] = field(default_factory=TestSignal)
    #: An attempt ended and its outcome was recorded (or fenced off): the job as claimed.
    finished: TestSignal[Job] = field(default_factory=TestSignal)
    #: Outcomes could not be written (the store is unavailable) and will be retried: how many.
    outcome_retrying: TestSignal[int] = field(default_factory=TestSignal)
    #: Leases were renewed: for each held lease, whether it is still held.
    heartbeat_sent: TestSignal[list[bool]] = field(default_factory=TestSignal)
    #: The reaper looked for expired leases: how many it recovered.
    lease_recovered: TestSignal[int] = field(default_factory=TestSignal)
    #: The cleaner pruned.
    pruned: TestSignal[PruneResult] = field(default_factory=TestSignal)
    #: The scheduler looked at the schedules: how many ticks became jobs.
    schedules_checked: TestSignal[int] = field(default_factory=TestSignal)
    #: A scheduler fired a tick (it became a job, or the queue was full): (schedule, tick time).
    tick_fired: TestSignal[tuple[str, float]] = field(default_factory=TestSignal)
    #: Shutdown began: the number of jobs still running, which get the grace period.
    stopping: TestSignal[int] = field(default_factory=TestSignal)

    def init(self) -> None:
        """Start keeping every signal (tests only)."""
        for signal in fields(self):
            getattr(self, signal.name).init()
