"""What a worker reports about itself: its counters, and the summary the HTTP API reads.

The worker keeps a :class:`WorkerMetrics`; whatever runs workers next to the API (``jobqueue
serve``) hands the API a :class:`WorkerStatus`, so ``/metrics`` and ``/ready`` can show them
without the API knowing what a worker is.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Protocol

#: Upper bounds (seconds) of the histogram buckets, Prometheus style (cumulative when rendered).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(slots=True)
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.n += 1

    def add(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.total += other.total
        self.n += other.n


@dataclass(slots=True)
class WorkerMetrics:
    """A worker's counters since it started."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0  # attempts that failed (retried or dead-lettered)
    retried: int = 0
    dead_lettered: int = 0
    lost_leases: int = 0  # attempts whose lease was taken away while running (cancelled, or recovered)
    released: int = 0
    recovered: int = 0  # expired leases this worker's reaper recovered
    abandoned_threads: int = 0  # thread handlers still running past their timeout
    #: Seconds from the job's due time to the start of its attempt.
    start_latency: Histogram = field(default_factory=Histogram)
    #: Seconds an attempt ran.
    duration: Histogram = field(default_factory=Histogram)

    def add(self, other: WorkerMetrics) -> None:
        for counter in fields(self):
            mine = getattr(self, counter.name)
            if isinstance(mine, Histogram):
                mine.add(getattr(other, counter.name))
            else:
                setattr(self, counter.name, mine + getattr(other, counter.name))


@dataclass(frozen=True, slots=True)
class WorkerSummary:
    """Workers, added up (one worker, or all those of a process)."""

    #: Jobs they can run at once (the sum of their concurrency); 0 when there are none.
    slots: int = 0
    #: Jobs running now.
    busy: int = 0
    #: Whether one of them has a free slot (it would claim a pending job of its queues).
    has_free_slot: bool = False
    #: The queues they take jobs from.
    queues: frozenset[str] = frozenset()
    #: How many workers there are, and how many have stopped while they should be running.
    workers: int = 0
    stopped: int = 0
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)

    @classmethod
    def total(cls, summaries: Iterable[WorkerSummary]) -> WorkerSummary:
        metrics = WorkerMetrics()
        slots = busy = workers = stopped = 0
        free = False
        queues: set[str] = set()
        for summary in summaries:
            slots += summary.slots
            busy += summary.busy
            workers += summary.workers
            stopped += summary.stopped
            free = free or summary.has_free_slot
            queues |= summary.queues
            metrics.add(summary.metrics)
        return cls(slots, busy, free, frozenset(queues), workers, stopped, metrics)


class WorkerStatus(Protocol):
    """A read-only view of the workers running beside an API, for ``/metrics`` and ``/ready``."""

    def worker_summary(self) -> WorkerSummary: ...


#: The counters of :class:`WorkerMetrics` a report carries (the histograms go as bucket counts).
REPORTED_COUNTERS = (
    "claimed", "completed", "failed", "retried", "dead_lettered", "lost_leases", "released", "recovered",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """What a worker tells the store about itself every second or so (``Backend.report_worker``),
    so that a dashboard anywhere lists the workers and charts their counters. Counters count
    since the worker started; a reader takes differences between two reports of one worker."""

    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    busy: int
    started_at: float
    reported_at: float
    version: str
    #: Counters by name (:data:`REPORTED_COUNTERS`).
    counters: dict[str, int] = field(default_factory=dict)
    #: ``WorkerMetrics.start_latency`` bucket counts (:data:`BUCKETS`, then one past the last).
    start_latency: tuple[int, ...] = ()

    def to_json(self) -> str:
        return json.dumps({name: getattr(self, name) for name in self.__slots__}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> WorkerReport | None:
        """The report, or ``None`` for text that is not one (another version's, say): a reader
        lists the workers it understands rather than fail on one."""
        try:
            data = json.loads(text)
            return cls(
                str(data["id"]), str(data["host"]), int(data["pid"]), tuple(map(str, data["queues"])),
                int(data["concurrency"]), int(data["busy"]), float(data["started_at"]), float(data["reported_at"]),
                str(data["version"]), {str(k): int(v) for k, v in dict(data["counters"]).items()},
                tuple(int(n) for n in data["start_latency"]),
            )  # fmt: skip
        except (ValueError, TypeError, KeyError):
            return None
