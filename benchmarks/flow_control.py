"""What flow control costs, and how soon a cancel reaches a running job, on every backend.

Throughput: N no-op jobs run by one worker in this process (concurrency 10), three ways in one
run, interleaved: no limits; a rate limit far above what is reached (1,000,000/s); a concurrency
limit above the worker's concurrency (1,000). Target (issue 17): each limited run within 10 % of
the unlimited one. Cancel: J jobs that wait forever are started (async handlers), then each is
cancelled through the app; the latency is from the cancel call to the handler's
``CancelledError``. Target: p99 under 1 s. Run from the repository root:

    .venv/bin/python benchmarks/flow_control.py [--quick] [--backend memory|sqlite|postgres|redis|all]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path

from due_time import BACKENDS, fresh

from jobqueue import JobQueue, QueueLimits, Rate, Worker, WorkerConfig

MODES = {
    "none": QueueLimits(),
    "rate 1,000,000/s": QueueLimits(rate=Rate(1_000_000, 1.0, 1_000_000)),
    "concurrency 1,000": QueueLimits(concurrency=1000),
}


async def processed(name: str, limits: QueueLimits, jobs: int, tmp: Path) -> float:
    """Jobs per second a worker runs from a full queue under ``limits``."""
    async with fresh(name, tmp) as backend:
        app = JobQueue(backend=backend)

        @app.task(name="noop")
        async def noop(payload: object) -> None:
            return None

        async with app:
            await app.set_limits("default", limits)
            for start in range(0, jobs, 1000):
                await app.enqueue_many([app.new_job(noop, n) for n in range(start, min(jobs, start + 1000))])
            began = time.perf_counter()
            await Worker(app, WorkerConfig(concurrency=10, reaper_interval=None)).drain()
            return jobs / (time.perf_counter() - began)


async def cancel_latencies(name: str, count: int, tmp: Path) -> list[float]:
    """Seconds from each cancel call to its running handler being cancelled."""
    async with fresh(name, tmp) as backend:
        app = JobQueue(backend=backend)
        started: dict[str, asyncio.Event] = {}
        stopped: dict[str, float] = {}

        @app.task(name="held")
        async def held(payload: str) -> None:
            started[payload].set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                stopped[payload] = time.perf_counter()
                raise

        async with app:
            # Twice the slots the jobs need: a busy worker claims again only once half its slots
            # are free, and these jobs never finish by themselves.
            worker = Worker(app, WorkerConfig(concurrency=2 * count, reaper_interval=None))
            runner = asyncio.create_task(worker.run())
            ids = []
            for n in range(count):
                started[str(n)] = asyncio.Event()
                ids.append((await held.enqueue(str(n))).id)
            await asyncio.wait_for(asyncio.gather(*(event.wait() for event in started.values())), 30)
            asked: dict[str, float] = {}
            for n, job_id in enumerate(ids):
                asked[str(n)] = time.perf_counter()
                await app.cancel(job_id)
                await asyncio.sleep(0.05)  # spread the cancels over the watch's period
            deadline = time.perf_counter() + 10
            while len(stopped) < count and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
            worker.stop()
            await runner
    assert len(stopped) == count, f"{count - len(stopped)} handlers were never cancelled"
    return sorted(stopped[key] - asked[key] for key in asked)


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))]


def main() -> None:
    logging.getLogger("jobqueue").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="2,000 jobs and 20 cancels instead of 10,000 and 100")
    parser.add_argument("--runs", type=int, default=3, help="runs of each mode, interleaved (median shown)")
    parser.add_argument("--no-cancel", action="store_true", help="only the throughput table")
    args = parser.parse_args()
    jobs, cancels = (2000, 20) if args.quick else (10_000, 100)
    names = BACKENDS if args.backend == "all" else [args.backend]
    print(f"\nprocessed jobs/s, {jobs:,} no-op jobs, one worker at concurrency 10, median of {args.runs}\n")
    print("| backend | " + " | ".join(MODES) + " | rate / none | concurrency / none |")
    print("|---|" + "---:|" * (len(MODES) + 2))
    for name in names:
        rates: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(args.runs):
            for mode, limits in MODES.items():
                with tempfile.TemporaryDirectory() as tmp:
                    rates[mode].append(asyncio.run(processed(name, limits, jobs, Path(tmp))))
        median = {mode: statistics.median(values) for mode, values in rates.items()}
        base = median["none"]
        cells = " | ".join(f"{median[mode]:,.0f}" for mode in MODES)
        print(f"| {name} | {cells} | {median['rate 1,000,000/s'] / base:.2f} | "
              f"{median['concurrency 1,000'] / base:.2f} |", flush=True)  # fmt: skip
    if args.no_cancel:
        return
    print(f"\ncancel of a running job: call to handler cancelled, {cancels} jobs\n")
    print("| backend | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|")
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            latencies = asyncio.run(cancel_latencies(name, cancels, Path(tmp)))
        print(f"| {name} | {percentile(latencies, 0.5) * 1000:.0f} | {percentile(latencies, 0.99) * 1000:.0f} | "
              f"{latencies[-1] * 1000:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
