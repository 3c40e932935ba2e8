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
import logging
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


class Pulse:
    """Samples every ``interval`` seconds, keeping ``window`` points."""

    def __init__(self, queue: JobQueue, interval: float = 1.0, window: int = 900) -> None:
        self.queue = queue
        self.interval = interval
        self.points: deque[PulsePoint] = deque(maxlen=window)
        self._seq = 0
        self._last: tuple[float, int, dict[str, WorkerReport]] | None = None
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
        by_id = {r.id: r for r in reports}
        last, self._last = self._last, (now, total, by_id)
        if last is None or now <= last[0]:
            return None
        then, last_total, last_reports = last
        elapsed = now - then
        completed = failed = 0
        latency = [0] * (len(BUCKETS) + 1)
        for report in reports:
            before = last_reports.get(report.id)
            if before is None and report.started_at < then:
                continue  # known only from now on: its counters hold work done before the last reading
            completed += _delta(report, before, "completed")
            failed += _delta(report, before, "failed")
            old = before.start_latency if before is not None else ()
            for i, n in enumerate(report.start_latency[: len(latency)]):
                latency[i] += max(0, n - (old[i] if i < len(old) else 0))
        self._seq += 1
        point = PulsePoint(
            self._seq, now, max(0, total - last_total) / elapsed, completed / elapsed, failed / elapsed,
            tuple(percentile(latency, q) for q in PERCENTILES) if any(latency) else None,
        )  # fmt: skip
        self.points.append(point)
        return point


def _delta(report: WorkerReport, before: WorkerReport | None, counter: str) -> int:
    now = report.counters.get(counter, 0)
    return max(0, now - (0 if before is None else before.counters.get(counter, 0)))
