"""The dashboard's live charts: once a second, jobs enqueued, completed and failed per second and
the percentiles of enqueue-to-start latency, for the last 15 minutes.

One sampler per API process, however many tabs are open: it reads the store's arrival counter and
the workers' reports (two small reads a second), takes the differences from the last reading, and
keeps the points in a ring. A tab asks for the points after the last one it has, so each poll
costs the server a few lines of JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass

from jobqueue.app import JobQueue
from jobqueue.status import BUCKETS, WorkerReport

log = logging.getLogger("jobqueue.api")

PERCENTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class PulsePoint:
    seq: int
    #: POSIX seconds of the reading.
    at: float
    enqueued: float
    completed: float
    failed: float
    #: Enqueue-to-start latency percentiles (seconds) of the jobs started since the last reading;
    #: ``None`` when none started.
    latency: tuple[float, ...] | None

    def to_json(self) -> list[object]:
        return [self.seq, round(self.at, 3), round(self.enqueued, 2), round(self.completed, 2), round(self.failed, 2),
                None if self.latency is None else [round(v, 6) for v in self.latency]]  # fmt: skip


def percentile(counts: list[int], q: float) -> float:
    """The ``q`` quantile of a histogram over :data:`BUCKETS` (linear within a bucket)."""
    total = sum(counts)
    target = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= target:
            low = 0.0 if i == 0 else BUCKETS[i - 1]
            high = BUCKETS[min(i, len(BUCKETS) - 1)]
            return low + (high - low) * ((target - seen) / n)
        seen += n
    return BUCKETS[-1]


@dataclass(slots=True)
class WorkerRates:
    """What one worker did between its last two reports, as rates: the sampler and the workers
    tick on clocks of their own, so a second may hold no new report of a worker and the next two;
    each worker's last rates stand until its next report, so the sum stays steady."""

    report: WorkerReport
    completed: float = 0.0
    failed: float = 0.0
    #: Start-latency histogram counts of the jobs it started in that interval.
    latency: tuple[int, ...] = ()

    def follow(self, report: WorkerReport) -> None:
        before = self.report
        elapsed = report.reported_at - before.reported_at
        if elapsed <= 0:
            return
        self.completed = _delta(report, before, "completed") / elapsed
        self.failed = (_delta(report, before, "failed") + _delta(report, before, "recovered")) / elapsed
        self.latency = tuple(max(0, n - (before.start_latency[i] if i < len(before.start_latency) else 0))
                             for i, n in enumerate(report.start_latency))  # fmt: skip
        self.report = report


class Pulse:
    """Samples every ``interval`` seconds, keeping ``window`` points."""

    def __init__(self, queue: JobQueue, interval: float = 1.0, window: int = 900) -> None:
        self.queue = queue
        self.interval = interval
        self.points: deque[PulsePoint] = deque(maxlen=window)
        #: Tells the points of this process from a predecessor's (a tab that saw those starts over).
        self.epoch = secrets.token_hex(4)
        self._seq = 0
        self._last: tuple[float, int] | None = None
        self._workers: dict[str, WorkerRates] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="jobqueue-pulse")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def after(self, seq: int) -> list[PulsePoint]:
        """The points newer than ``seq`` (all of them for 0)."""
        return [p for p in self.points if p.seq > seq]

    async def _loop(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception as exc:  # the store is down: the chart shows a gap, the next try is on time
                log.debug("pulse sample failed: %s", exc)
                self._last = None
            await asyncio.sleep(self.interval)

    async def sample(self, now: float | None = None) -> PulsePoint | None:
        """Read the store once; the new point (``None`` for the first reading, which has no before)."""
        total, reports = await asyncio.gather(self.queue.enqueued_total(), self.queue.workers())
        now = time.time() if now is None else now
        self._follow(reports)
        last, self._last = self._last, (now, total)
        if last is None or now <= last[0]:
            return None
        rates = list(self._workers.values())
        latency = [0] * (len(BUCKETS) + 1)
        for worker in rates:
            for i, n in enumerate(worker.latency[: len(latency)]):
                latency[i] += n
        self._seq += 1
        point = PulsePoint(
            self._seq, now, max(0, total - last[1]) / (now - last[0]), sum(w.completed for w in rates),
            sum(w.failed for w in rates), tuple(percentile(latency, q) for q in PERCENTILES) if any(latency) else None,
        )  # fmt: skip
        self.points.append(point)
        return point

    def _follow(self, reports: list[WorkerReport]) -> None:
        """Take in the workers' reports: rates for each worker with a new one, gone ones dropped."""
        workers = {}
        for report in reports:
            known = self._workers.get(report.id)
            if known is None:
                # First seen: its counters hold all it did since it started, which is a rate too.
                known = WorkerRates(dataclasses.replace(report, counters={}, start_latency=(),
                                                        reported_at=report.started_at))  # fmt: skip
            known.follow(report)
            workers[report.id] = known
        self._workers = workers


def _delta(report: WorkerReport, before: WorkerReport, counter: str) -> int:
    return max(0, report.counters.get(counter, 0) - before.counters.get(counter, 0))
