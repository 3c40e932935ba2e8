"""Counters and histograms a worker keeps; the metrics endpoint renders them."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

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


@dataclass(slots=True)
class WorkerMetrics:
    claimed: int = 0
    completed: int = 0
    failed: int = 0  # attempts that failed (retried or dead-lettered)
    retried: int = 0
    dead_lettered: int = 0
    lost_leases: int = 0  # attempts whose lease was taken away while running
    released: int = 0
    recovered: int = 0  # expired leases this worker's reaper recovered
    abandoned_threads: int = 0  # thread handlers still running past their timeout
    #: Seconds from the job's due time to the start of its attempt.
    start_latency: Histogram = field(default_factory=Histogram)
    #: Seconds an attempt ran.
    duration: Histogram = field(default_factory=Histogram)
