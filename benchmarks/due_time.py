"""How late delayed jobs start: an idle worker's due-time lateness, on every backend.

The worker runs in this process at concurrency 10 with its poll interval at 10 s, so a poll never
finds a job: each must start because the worker waited for its due time. Jobs are enqueued one at
a time at 20 jobs/s, each delayed by 0.05-0.25 s (several are due at once, none is due on
arrival); lateness = the attempt's start (``last_attempt``) minus the job's ``run_at``, both
stamped by the store's clock. Target (issue 15): p99 within 10 ms. PostgreSQL and Redis run on a
fresh schema or key prefix, dropped afterwards. Run from the repository root:

    .venv/bin/python benchmarks/due_time.py [--quick] [--backend memory|sqlite|postgres|redis|all]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from jobqueue import JobQueue, JobState, Worker, WorkerConfig
from jobqueue.backends import Backend
from jobqueue.backends.memory import MemoryBackend
from jobqueue.backends.postgres import PostgresBackend
from jobqueue.backends.redis import RedisBackend
from jobqueue.backends.sqlite import SQLiteBackend

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
BACKENDS = ["memory", "sqlite", "postgres", "redis"]


@asynccontextmanager
async def fresh(name: str, tmp: Path) -> AsyncIterator[Backend]:
    backend: Backend
    if name == "memory":
        backend = MemoryBackend()
    elif name == "sqlite":
        backend = SQLiteBackend(tmp / "due.db")
    elif name == "postgres":
        backend = PostgresBackend(POSTGRES_URL, schema=f"jqbench_{uuid.uuid4().hex[:10]}")
    else:
        backend = RedisBackend(REDIS_URL, prefix=f"bench-{uuid.uuid4().hex[:8]}")
    await backend.open()
    try:
        yield backend
    finally:
        if isinstance(backend, RedisBackend):
            await backend.drop()
        await backend.close()
        if isinstance(backend, PostgresBackend):
            conn = await asyncpg.connect(POSTGRES_URL)
            await conn.execute(f'DROP SCHEMA "{backend.schema}" CASCADE')
            await conn.close()


async def lateness(name: str, offered: int, tmp: Path) -> list[float]:
    async with fresh(name, tmp) as backend:
        app = JobQueue(backend=backend)

        @app.task(name="noop")
        async def noop(payload: object) -> None:
            return None

        async with app:
            worker = Worker(app, WorkerConfig(concurrency=10, poll_interval=10.0, reaper_interval=None))
            runner = asyncio.create_task(worker.run())
            rng = random.Random(7)
            start = time.perf_counter()
            for i in range(offered):
                pause = start + i / 20 - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
                await noop.enqueue(i, delay=rng.uniform(0.05, 0.25))
            while (await app.stats()).queues["default"].counts[JobState.COMPLETED] < offered:
                await asyncio.sleep(0.05)
            worker.stop()
            await runner
            page = await app.list_jobs(limit=offered)
    return sorted((job.last_attempt - job.run_at) * 1000 for job in page.jobs if job.last_attempt is not None)


def percentile(samples: list[float], p: float) -> float:
    return samples[min(len(samples) - 1, int(p / 100 * len(samples)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="50 jobs per backend instead of 400")
    args = parser.parse_args()
    offered = 50 if args.quick else 400
    print(f"\n{offered} jobs per backend, delayed 0.05-0.25 s, idle worker polling every 10 s\n")
    print("| backend | late p50 ms | p95 ms | p99 ms | max ms | mean ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in BACKENDS if args.backend == "all" else [args.backend]:
        with tempfile.TemporaryDirectory() as tmp:
            samples = asyncio.run(lateness(name, offered, Path(tmp)))
        cells = [percentile(samples, p) for p in (50, 95, 99)] + [samples[-1], statistics.fmean(samples)]
        print(f"| {name} | " + " | ".join(f"{value:.2f}" for value in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
