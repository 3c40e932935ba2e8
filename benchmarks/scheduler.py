"""What a scheduler costs: CPU time of one scheduler with N schedules, per minute of their time.

N schedules (default 1,000) each fire every minute (``* * * * *``, spread over the 60 seconds
by a seconds field, so the scheduler wakes every second). A FakeClock stands in for time: the
scheduler's loop is run as the worker runs it (``run_once``, then a sleep of ``interval()``),
with the clock advanced by each sleep, over 10 minutes of schedule time. The CPU time of the
process (the store's threads included) per minute is the scheduler's cost at steady state; the
target (issue 16) is under 1 % of a core for 1,000 schedules. Run from the repository root:

    .venv/bin/python benchmarks/scheduler.py [--schedules 1000] [--backend memory|sqlite|all]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from jobqueue import FakeClock, JobQueue
from jobqueue.backends.memory import MemoryBackend
from jobqueue.backends.sqlite import SQLiteBackend
from jobqueue.worker.scheduler import Scheduler
from jobqueue.worker.signals import WorkerSignals

MINUTES = 10


async def cost(backend_name: str, schedules: int, tmp: Path) -> tuple[float, int]:
    """CPU seconds per minute of schedule time, and the ticks fired."""
    clock = FakeClock(1_700_000_000.0)
    backend = MemoryBackend(clock=clock) if backend_name == "memory" else SQLiteBackend(tmp / "s.db", clock=clock)
    app = JobQueue(backend=backend, clock=clock)

    @app.task(name="noop")
    async def noop(payload: object) -> None:
        return None

    for n in range(schedules):
        app.schedule(f"s{n}", task="noop", cron=f"{n % 60} * * * * *")
    async with app:
        scheduler = Scheduler(app, clock, WorkerSignals())
        await scheduler.run_once()  # registers them all: start-up, not steady state
        clock.advance(scheduler.interval())
        fired, started, cpu = 0, clock.time(), time.process_time()
        while clock.time() - started < MINUTES * 60:
            fired += await scheduler.run_once()
            clock.advance(scheduler.interval())
        spent = time.process_time() - cpu
    return spent / MINUTES, fired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--backend", choices=["memory", "sqlite", "all"], default="all")
    args = parser.parse_args()
    print(f"\n{args.schedules} schedules, each once a minute, {MINUTES} minutes of schedule time\n")
    print("| backend | ticks fired | CPU s per minute | share of one core |")
    print("|---|---:|---:|---:|")
    for name in ["memory", "sqlite"] if args.backend == "all" else [args.backend]:
        with tempfile.TemporaryDirectory() as tmp:
            per_minute, fired = asyncio.run(cost(name, args.schedules, Path(tmp)))
        print(f"| {name} | {fired:,} | {per_minute:.3f} | {per_minute / 60:.2%} |", flush=True)


if __name__ == "__main__":
    main()
