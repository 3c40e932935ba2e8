"""How soon a fan-in starts: one child waiting for 10,000 parents, on every backend.

The parents are enqueued in batches of 1,000, then one child ``depends_on`` all of them in a single
call; a worker in this process (concurrency 50) runs them all. Release lag = the child's ``run_at``
(stamped by the store when its last edge resolved) minus the latest parent's ``finished_at``;
start lag adds the wait for a worker to claim it. Target (issue 16): released within 1 s of the
last parent's completion on each backend. Run from the repository root:

    .venv/bin/python benchmarks/fan_in.py [--quick] [--backend memory|sqlite|postgres|redis|all]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from due_time import BACKENDS, fresh

from jobqueue import JobQueue, Worker, WorkerConfig


async def fan_in(name: str, parents: int, tmp: Path) -> tuple[float, float, float, float]:
    """Seconds: the child's enqueue, the run of every job, the release lag and the start lag."""
    async with fresh(name, tmp) as backend:
        app = JobQueue(backend=backend)

        @app.task(name="noop")
        async def noop(payload: object) -> object:
            return payload

        async with app:
            ids: list[str] = []
            for start in range(0, parents, 1000):
                jobs = [app.new_job(noop, n) for n in range(start, min(parents, start + 1000))]
                await app.enqueue_many(jobs)
                ids.extend(job.id for job in jobs)
            began = time.perf_counter()
            child = await noop.enqueue("fan-in", depends_on=ids, priority=-1)
            enqueued = time.perf_counter()
            await Worker(app, WorkerConfig(concurrency=50, reaper_interval=None)).drain()
            ran = time.perf_counter()
            done = await app.backend.get_many(ids)
            finished = await app.get(child.id)
    assert finished is not None and finished.started_at is not None
    last = max(job.finished_at or 0.0 for job in done if job is not None)
    return enqueued - began, ran - enqueued, finished.run_at - last, finished.started_at - last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="1,000 parents instead of 10,000")
    args = parser.parse_args()
    parents = 1000 if args.quick else 10_000
    print(f"\none child waiting for {parents:,} parents; worker concurrency 50\n")
    print("| backend | child enqueue ms | all jobs run s | released after last parent ms | started after ms |")
    print("|---|---:|---:|---:|---:|")
    for name in BACKENDS if args.backend == "all" else [args.backend]:
        with tempfile.TemporaryDirectory() as tmp:
            enqueue, run, release, start = asyncio.run(fan_in(name, parents, Path(tmp)))
        print(f"| {name} | {enqueue * 1000:.1f} | {run:.2f} | {release * 1000:.1f} | {start * 1000:.1f} |", flush=True)


if __name__ == "__main__":
    main()
