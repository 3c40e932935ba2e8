"""The dashboard's chart points (``api.pulse``) and the worker reports they are made of."""

from __future__ import annotations

import os
import socket

import pytest

from jobqueue import JobQueue
from jobqueue.api.pulse import Pulse, percentile
from jobqueue.backends.memory import MemoryBackend
from jobqueue.clock import FakeClock
from jobqueue.status import BUCKETS, Histogram, WorkerReport
from jobqueue.worker import Worker, WorkerConfig


def report(
    worker_id: str, started_at: float, reported_at: float, latencies: list[float], **counters: int
) -> WorkerReport:
    histogram = Histogram()
    for seconds in latencies:
        histogram.observe(seconds)
    return WorkerReport(worker_id, "h", 1, ("default",), 4, 0, started_at, reported_at, "0", counters,
                        tuple(histogram.counts))  # fmt: skip


def test_percentiles_interpolate_within_a_bucket() -> None:
    counts = [0] * (len(BUCKETS) + 1)
    counts[BUCKETS.index(0.01)] = 100  # 100 starts between 5 ms and 10 ms
    assert percentile(counts, 0.5) == pytest.approx(0.0075)
    assert percentile(counts, 0.99) == pytest.approx(0.00995)
    counts[-1] = 100  # as many past the last bound: reported at it
    assert percentile(counts, 0.99) == BUCKETS[-1]


async def test_points_are_rates_between_readings_and_reports() -> None:
    app = JobQueue(backend=MemoryBackend(FakeClock(1000.0)))
    await app.open()
    pulse, backend = Pulse(app), app.backend

    async def write(*reports: WorkerReport) -> None:
        for r in reports:
            await backend.report_worker(r.id, r.to_json(), ttl=60)

    await write(report("a", 900.0, 999.0, [0.001] * 10, completed=50, failed=5))
    assert await pulse.sample(now=1000.0) is None  # nothing to take a difference from yet
    for n in range(10):
        await app.enqueue("t", n)
    # a: 4 completed, 1 failed and 1 lease recovered (a failed attempt too) in its 2 s since its
    # last report; b: new, 2 completed in its first second.
    await write(report("a", 900.0, 1001.0, [0.001] * 10 + [0.004] * 4, completed=54, failed=6, recovered=1),
                report("b", 1000.5, 1001.5, [0.02, 0.02], completed=2))  # fmt: skip
    point = await pulse.sample(now=1002.0)
    assert point is not None and point.seq == 1
    assert (point.enqueued, point.completed, point.failed) == (5.0, 4.0, 1.0)
    assert point.latency is not None
    p50, p95, p99 = point.latency
    assert 0.0025 < p50 <= 0.005 < p95 <= p99 <= 0.025
    # No new report in the next second (the workers tick on clocks of their own): rates stand.
    steady = await pulse.sample(now=1003.0)
    assert steady is not None and (steady.enqueued, steady.completed, steady.failed) == (0.0, 4.0, 1.0)
    await backend.remove_worker_report("b")  # b stopped
    after = await pulse.sample(now=1004.0)
    assert after is not None and after.completed == 2.0
    assert [p.seq for p in pulse.after(0)] == [1, 2, 3] and pulse.after(3) == []
    await app.close()


async def test_a_worker_reports_itself_while_it_runs_and_leaves_when_it_stops() -> None:
    clock = FakeClock()
    app = JobQueue(backend=MemoryBackend(clock))
    await app.open()
    worker = Worker(app, WorkerConfig(queues=("default", "mail"), concurrency=3, report_interval=2.0), clock=clock)
    worker.metrics.completed = 7
    worker.presence.start()
    written = await worker.presence.run_once()
    (listed,) = await app.workers()
    assert listed == written
    assert (listed.id, listed.host, listed.pid, listed.queues) == (
        worker.id,
        socket.gethostname(),
        os.getpid(),
        ("default", "mail"),
    )
    assert (listed.concurrency, listed.busy, listed.counters["completed"]) == (3, 0, 7)
    clock.advance(5.0)  # a report lives 3 intervals (6 s): still listed
    assert [w.id for w in await app.workers()] == [worker.id]
    await worker.presence.stop()
    assert await app.workers() == []
    await app.close()


def test_a_report_that_is_not_one_reads_as_none() -> None:
    assert WorkerReport.from_json("{") is None
    assert WorkerReport.from_json('{"id": "x"}') is None
    good = report("w", 1.0, 2.0, [0.1], completed=1)
    assert WorkerReport.from_json(good.to_json()) == good


def test_report_interval_is_checked() -> None:
    with pytest.raises(ValueError, match="report_interval"):
        WorkerConfig(report_interval=0)
