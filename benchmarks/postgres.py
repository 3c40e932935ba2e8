"""PostgreSQL backend benchmarks: enqueue, processing, enqueue-to-start latency, claim at depth.

Scenarios (each on a fresh schema of the local database, dropped afterwards):

``single``      N sequential ``enqueue([job])`` calls from one coroutine, and from 50 coroutines
``batch``       N jobs in ``enqueue`` calls of 1,000
``process``     N no-op jobs queued first, then one ``jobqueue worker`` process at concurrency 10,
                timed from spawn to the N-th completion ("spawn->done") and from its first start to
                its last finish, read from the jobs' own times ("steady")
``latency``     1,000 jobs offered one by one at 200 jobs/s to an idle worker process; latency =
                the attempt's start (``last_attempt``) minus ``created_at``, both the server's clock
``depth``       claim latency (``claim(limit=1)``, 300 calls) with 1,000 and with 1,000,000
                waiting jobs: the partial index keeps the two close

Run from the repository root (PostgreSQL at ``--url``, default the local test database)::

    .venv/bin/python benchmarks/postgres.py                 # everything (~2 min)
    .venv/bin/python benchmarks/postgres.py --quick         # small sizes; depth with 100,000
    .venv/bin/python benchmarks/postgres.py --scenario process --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from jobqueue.backends import ClaimParams, Completion, Lease
from jobqueue.backends.postgres import PostgresBackend
from jobqueue.job import JobState, NewJob

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = os.environ.get("JOBQUEUE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TARGETS = {
    "single (1 producer)": ">= 3,000",
    "single (50 producers)": ">= 3,000",
    "batch (1,000/call)": ">= 100,000",
    "processed, spawn->done": ">= 8,000",
    "processed, steady": ">= 8,000",
}


@asynccontextmanager
async def fresh(url: str, **options: Any) -> AsyncIterator[PostgresBackend]:
    schema = f"jqbench_{uuid.uuid4().hex[:10]}"
    backend = PostgresBackend(url, schema=schema, **options)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
        conn = await asyncpg.connect(url)
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


def jobs(n: int) -> list[NewJob]:
    return [NewJob({"n": i}, task="noop") for i in range(n)]


async def bench_single(url: str, n: int) -> dict[str, float]:
    out = {}
    async with fresh(url) as backend:
        todo = jobs(n)
        start = time.perf_counter()
        for job in todo:
            await backend.enqueue([job])
        out["single (1 producer)"] = n / (time.perf_counter() - start)
    async with fresh(url, pool_size=50) as backend:
        todo = jobs(n)
        await asyncio.gather(*(backend.enqueue([j]) for j in todo[:50]))  # warm the pool

        async def producer(mine: list[NewJob]) -> None:
            for job in mine:
                await backend.enqueue([job])

        start = time.perf_counter()
        await asyncio.gather(*(producer(todo[50 + i :: 50]) for i in range(50)))
        out["single (50 producers)"] = (n - 50) / (time.perf_counter() - start)
    return out


async def bench_batch(url: str, n: int) -> dict[str, float]:
    async with fresh(url) as backend:
        todo = jobs(n)
        start = time.perf_counter()
        for i in range(0, n, 1000):
            await backend.enqueue(todo[i : i + 1000])
        return {"batch (1,000/call)": n / (time.perf_counter() - start)}


def spawn_worker(url: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, JOBQUEUE_URL=url, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "jobqueue", "worker", "benchmarks.noop_app:app", "--concurrency", "10",
           "--log-level", "WARNING"]  # fmt: skip
    return subprocess.Popen(cmd, env=env, cwd=ROOT)


async def completed(backend: PostgresBackend) -> int:
    stats = await backend.stats()
    q = stats.queues.get("default")
    return 0 if q is None else q.counts[JobState.COMPLETED]


async def wait_completed(backend: PostgresBackend, n: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while await completed(backend) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {n} jobs completed in {timeout} s")
        await asyncio.sleep(0.01)


async def bench_process(url: str, n: int) -> dict[str, float]:
    async with fresh(url) as backend:
        todo = jobs(n)
        for i in range(0, n, 1000):
            await backend.enqueue(todo[i : i + 1000])
        start = time.perf_counter()
        worker = spawn_worker(f"{url}?schema={backend.schema}")
        try:
            await wait_completed(backend, n)
            total = time.perf_counter() - start
        finally:
            worker.terminate()
            worker.wait()
        conn = await asyncpg.connect(url)
        first, last = await conn.fetchrow(f'SELECT min(started_at), max(finished_at) FROM "{backend.schema}".jobs')
        await conn.close()
        return {"processed, spawn->done": n / total, "processed, steady": n / (last - first)}


async def bench_latency(url: str, n: int, rate: float = 200.0) -> dict[str, float]:
    async with fresh(url) as backend:
        worker = spawn_worker(f"{url}?schema={backend.schema}")
        try:
            await backend.enqueue([NewJob("warm-up", task="noop")])
            await wait_completed(backend, 1, timeout=30)
            start = time.perf_counter()
            for i in range(n):
                await backend.enqueue([NewJob(i, task="noop")])
                pause = start + (i + 1) / rate - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
            await wait_completed(backend, n + 1)
        finally:
            worker.terminate()
            worker.wait()
        conn = await asyncpg.connect(url)
        query = f'SELECT last_attempt - created_at FROM "{backend.schema}".jobs WHERE payload::text <> \'"warm-up"\''
        rows = await conn.fetch(query)
        await conn.close()
        ms = sorted(r[0] * 1000 for r in rows)
        p50, p99 = ms[len(ms) // 2], ms[int(len(ms) * 0.99) - 1]
        return {"latency p50 ms": p50, "latency p99 ms": p99, "latency max ms": ms[-1]}


async def claim_latency(backend: PostgresBackend, calls: int = 300) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        (job,) = await backend.claim(ClaimParams(["default"], "bench", 1))
        times.append(time.perf_counter() - start)
        await backend.complete([Completion(Lease(job.id, job.lease_token))])
    return statistics.median(times) * 1000


async def bench_depth(url: str, deep: int) -> dict[str, float]:
    out = {}
    for depth in (1_000, deep):
        async with fresh(url) as backend:
            for i in range(0, depth, 10_000):
                await backend.enqueue(jobs(min(10_000, depth - i)))
            conn = await asyncpg.connect(url)
            await conn.execute(f'ANALYZE "{backend.schema}".jobs')
            await conn.close()
            out[f"claim ms at {depth:,} waiting"] = await claim_latency(backend)
    return out


SCENARIOS = {
    "single": (bench_single, 5_000, 1_000),
    "batch": (bench_batch, 100_000, 20_000),
    "process": (bench_process, 20_000, 5_000),
    "latency": (bench_latency, 1_000, 200),
    "depth": (bench_depth, 1_000_000, 100_000),
}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    for name in args.scenario or list(SCENARIOS):
        fn, full, quick = SCENARIOS[name]
        for _ in range(args.runs):
            for label, value in (await fn(args.url, quick if args.quick else full)).items():
                results.setdefault(label, []).append(value)
                print(f"  {label}: {value:,.2f}", flush=True)
    print(f"\nPostgreSQL {args.url}, median of {args.runs} run(s) [min-max]\n")
    print("| measure | value | target |\n|---|---:|---:|")
    for label, values in results.items():
        spread = f" [{min(values):,.2f}-{max(values):,.2f}]" if len(values) > 1 else ""
        print(f"| {label} | {statistics.median(values):,.2f}{spread} | {TARGETS.get(label, '')} |")


if __name__ == "__main__":
    asyncio.run(main())
