"""The Redis backend on the local server: enqueue rates, worker throughput, enqueue-to-start latency.

Four figures, each the median of ``--runs`` runs (min-max shown), each run under a fresh key prefix
that is deleted afterwards (the server may be shared: nothing else is touched):

``single``     5,000 sequential ``await backend.enqueue([job])`` calls from one coroutine
``batch``      20,000 jobs in ``enqueue`` calls of 1,000
``processed``  20,000 no-op jobs queued first, then one ``jobqueue worker`` process at concurrency
               10; "spawn->done" from the process's spawn to the 20,000th completion, "steady" from
               the first job's start to the last one's finish (the jobs' own server-clock times)
``latency``    with that worker idle, 1,000 jobs offered at 200 jobs/s; latency = the attempt's
               start (``last_attempt``) minus ``created_at``, both stamped by the Redis clock

For context, two ceilings are measured in the same run: sequential ``PING`` round trips per second
through the backend's own connection and through redis-py's asyncio client. On a shared machine
the figures move with its load; compare them with these ceilings of the same moment.

``NewJob`` objects are built before the clock starts. Run from the repository root::

    .venv/bin/python benchmarks/redis_bench.py [--url redis://127.0.0.1:6379/0] [--quick] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from jobqueue import JobQueue, JobState
from jobqueue.backends import ListParams
from jobqueue.backends.redis import RedisBackend
from jobqueue.job import NewJob

ROOT = Path(__file__).resolve().parents[1]
APP_MODULE = "benchmarks.noop_app:app"
TARGETS = {"single": ">= 9,000", "batch": ">= 100,000", "processed": ">= 8,000", "p50": "<= 0.5", "p99": "<= 1.5"}


def prefixed(url: str, prefix: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}prefix={prefix}"


async def drop(url: str, prefix: str) -> None:
    backend = RedisBackend(url, prefix=prefix)
    await backend.open()
    try:
        await backend.drop()
    finally:
        await backend.close()


async def enqueue_rate(url: str, n: int, batch: int) -> float:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    backend = RedisBackend(url, prefix=prefix)
    await backend.open()
    jobs = [NewJob({"n": i, "kind": "bench"}, task="noop") for i in range(n)]
    chunks = [jobs[i : i + batch] for i in range(0, n, batch)]
    try:
        start = time.perf_counter()
        for chunk in chunks:
            await backend.enqueue(chunk)
        elapsed = time.perf_counter() - start
        stats = await backend.stats()
        assert stats.queues["default"].counts[JobState.PENDING] == n
    finally:
        await backend.close()
        await drop(url, prefix)
    return n / elapsed


async def round_trips(url: str, n: int) -> tuple[float, float]:
    """Sequential PINGs per second: through the backend's connection, and through redis-py."""
    import redis.asyncio

    backend = RedisBackend(url, prefix=f"bench-{uuid.uuid4().hex[:8]}")
    await backend.open()
    try:
        start = time.perf_counter()
        for _ in range(n):
            await backend._call("PING")
        ours = n / (time.perf_counter() - start)
    finally:
        await backend.close()
    client = redis.asyncio.Redis.from_url(url)
    try:
        await client.ping()
        start = time.perf_counter()
        for _ in range(n):
            await client.ping()
        theirs = n / (time.perf_counter() - start)
    finally:
        await client.aclose()
    return ours, theirs


async def all_jobs(app: JobQueue) -> list[Any]:
    jobs, cursor = [], None
    while True:
        page = await app.backend.list_jobs(ListParams(cursor=cursor, limit=10_000))
        jobs += page.jobs
        if page.next_cursor is None:
            return jobs
        cursor = page.next_cursor


async def completed(app: JobQueue) -> int:
    stats = await app.stats()
    return stats.queues["default"].counts[JobState.COMPLETED] if "default" in stats.queues else 0


def spawn_worker(url: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, JOBQUEUE_URL=url, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "jobqueue", "worker", APP_MODULE, "--concurrency", "10", "--log-level", "WARNING"]
    return subprocess.Popen(cmd, env=env, cwd=ROOT)


async def with_app(url: str, body: Callable[[JobQueue, str], Awaitable[dict[str, float]]]) -> dict[str, float]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    store = prefixed(url, prefix)
    try:
        async with JobQueue(store) as app:
            return await body(app, store)
    finally:
        await drop(url, prefix)


async def processed(app: JobQueue, store: str, n: int) -> dict[str, float]:
    for start in range(0, n, 1000):
        await app.enqueue_many([app.new_job("noop", i) for i in range(start, min(n, start + 1000))])
    spawned = time.perf_counter()
    proc = spawn_worker(store)
    try:
        while await completed(app) < n:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - spawned
    finally:
        proc.terminate()
        proc.wait(30)
    jobs = await all_jobs(app)
    first = min(j.started_at for j in jobs)
    last = max(j.finished_at for j in jobs)
    return {"jobs_per_s": n / elapsed, "steady_jobs_per_s": n / (last - first)}


async def latency(app: JobQueue, store: str, offered: int, rate: float) -> dict[str, float]:
    proc = spawn_worker(store)
    try:
        await app.enqueue("noop", "warm-up")  # wait until the worker is up and fetching
        while await completed(app) < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        start = time.perf_counter()
        for i in range(offered):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await app.enqueue("noop", i)
        while await completed(app) < offered + 1:
            await asyncio.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(30)
    jobs = [j for j in await all_jobs(app) if j.payload != "warm-up"]
    samples = sorted((j.last_attempt - j.created_at) * 1000 for j in jobs)

    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(p / 100 * len(samples)))]

    return {"p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "max_ms": samples[-1]}


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def cell(d: dict[str, float], fmt: str) -> str:
    return f"{d['median']:{fmt}} [{d['min']:{fmt}}-{d['max']:{fmt}}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("JOBQUEUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes, 1 run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    scale, runs = (10, 1) if args.quick else (1, args.runs)
    single, batch, n, offered = 5_000 // scale, 20_000 // scale, 20_000 // scale, 1_000 // scale
    rows: dict[str, list[float]] = {}
    for _ in range(runs):
        ours, theirs = asyncio.run(round_trips(args.url, single))
        rows.setdefault("ping_ours", []).append(ours)
        rows.setdefault("ping_redis_py", []).append(theirs)
        rows.setdefault("single", []).append(asyncio.run(enqueue_rate(args.url, single, 1)))
        rows.setdefault("batch", []).append(asyncio.run(enqueue_rate(args.url, batch, 1_000)))
        p = asyncio.run(with_app(args.url, lambda app, store: processed(app, store, n)))
        rows.setdefault("processed", []).append(p["jobs_per_s"])
        rows.setdefault("steady", []).append(p["steady_jobs_per_s"])
        lat = asyncio.run(with_app(args.url, lambda app, store: latency(app, store, offered, 200.0)))
        for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
            rows.setdefault(key, []).append(lat[key])
    results = {key: summary(values) for key, values in rows.items()}
    print(f"\nRedis at {args.url}: median of {runs} run(s) [min-max]\n")
    print("| figure | result | target |")
    print("|---|---:|---:|")
    print(f"| single enqueue, jobs/s ({single:,} calls) | {cell(results['single'], ',.0f')} | {TARGETS['single']} |")
    print(f"| batch enqueue, jobs/s ({batch:,} in calls of 1,000) | {cell(results['batch'], ',.0f')} | "
          f"{TARGETS['batch']} |")  # fmt: skip
    print(f"| processed, jobs/s ({n:,} no-op, 1 process, concurrency 10; spawn->done) | "
          f"{cell(results['processed'], ',.0f')} | {TARGETS['processed']} |")  # fmt: skip
    print(f"| processed, steady jobs/s (first start -> last finish) | {cell(results['steady'], ',.0f')} | |")
    print(f"| enqueue-to-start p50, ms ({offered:,} jobs at 200/s) | {cell(results['p50_ms'], '.3f')} | "
          f"{TARGETS['p50']} |")  # fmt: skip
    print(f"| enqueue-to-start p95, ms | {cell(results['p95_ms'], '.3f')} | |")
    print(f"| enqueue-to-start p99, ms | {cell(results['p99_ms'], '.3f')} | {TARGETS['p99']} |")
    print(f"| enqueue-to-start max, ms | {cell(results['max_ms'], '.2f')} | |")
    print(f"| (ceiling) sequential PINGs/s, the backend's connection | {cell(results['ping_ours'], ',.0f')} | |")
    print(f"| (ceiling) sequential PINGs/s, redis-py asyncio | {cell(results['ping_redis_py'], ',.0f')} | |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
