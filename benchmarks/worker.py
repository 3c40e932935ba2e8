"""Worker throughput and enqueue-to-start latency, for the memory and SQLite backends.

Protocol (issue "Worker runtime", the same as ../shared/references/ANCHORS.md uses for other queues):

1. processing: N no-op jobs are queued first; one worker at concurrency 10 is started and timed
   until the N-th completion is stored. SQLite: the worker is a real ``jobqueue worker`` process,
   timed from spawn ("spawn->done") and from its first start to its last finish ("steady", read
   from the jobs' own times). memory: the worker runs in this process (memory cannot be shared),
   timed from ``drain()`` start to end.
2. latency: with the worker idle, 1,000 jobs are offered at 200 jobs/s; latency = the attempt's
   start (``last_attempt``) minus the job's ``created_at``, both stamped by the same clock.

Each figure is the median of ``--runs`` runs, with the spread. Run from the repository root:

    .venv/bin/python benchmarks/worker.py [--quick] [--backend memory|sqlite|all] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jobqueue import JobQueue, JobState, Worker, WorkerConfig
from jobqueue.backends import ListParams

ROOT = Path(__file__).resolve().parents[1]
APP_MODULE = "benchmarks.noop_app:app"


def noop_app(url: str) -> JobQueue:
    app = JobQueue(url)

    @app.task(name="noop")
    async def noop(payload: object) -> None:
        return None

    return app


async def all_jobs(app: JobQueue) -> list[Any]:
    jobs, cursor = [], None
    while True:
        page = await app.backend.list_jobs(ListParams(cursor=cursor, limit=10_000))
        jobs += page.jobs
        if page.next_cursor is None:
            return jobs
        cursor = page.next_cursor


async def queue_jobs(app: JobQueue, n: int) -> None:
    for start in range(0, n, 1000):
        await app.enqueue_many([app.new_job("noop", i) for i in range(start, min(n, start + 1000))])


async def processing_memory(n: int) -> dict[str, float]:
    app = noop_app("memory://")
    async with app:
        await queue_jobs(app, n)
        worker = Worker(app, WorkerConfig(concurrency=10, reaper_interval=None))
        started = time.perf_counter()
        await worker.drain()
        elapsed = time.perf_counter() - started
        assert (await app.stats()).queues["default"].counts[JobState.COMPLETED] == n
    return {"jobs_per_s": n / elapsed, "steady_jobs_per_s": n / elapsed}


async def processing_sqlite(n: int, tmp: Path) -> dict[str, float]:
    url = f"sqlite:///{tmp / 'bench.db'}"
    app = noop_app(url)
    async with app:
        await queue_jobs(app, n)
        env = dict(os.environ, JOBQUEUE_URL=url, PYTHONPATH=str(ROOT))
        cmd = [sys.executable, "-m", "jobqueue", "worker", APP_MODULE, "--concurrency", "10",
               "--log-level", "WARNING"]  # fmt: skip
        spawned = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
        try:
            while (await app.stats()).queues["default"].counts[JobState.COMPLETED] < n:
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - spawned
        finally:
            proc.terminate()
            proc.wait(30)
        jobs = await all_jobs(app)
    first = min(j.started_at for j in jobs)
    last = max(j.finished_at for j in jobs)
    return {"jobs_per_s": n / elapsed, "steady_jobs_per_s": n / (last - first)}


async def latency(url: str, offered: int, rate: float, worker_proc: bool) -> dict[str, float]:
    app = noop_app(url)
    async with app:
        runner: asyncio.Task[None] | None = None
        proc = None
        if worker_proc:
            env = dict(os.environ, JOBQUEUE_URL=url, PYTHONPATH=str(ROOT))
            cmd = [sys.executable, "-m", "jobqueue", "worker", APP_MODULE, "--concurrency", "10",
                   "--log-level", "WARNING", "--poll-interval", "1"]  # fmt: skip
            proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
            await app.enqueue("noop", "warm-up")  # wait until the worker is up and fetching
            while (await app.stats()).queues["default"].counts[JobState.COMPLETED] < 1:
                await asyncio.sleep(0.01)
        else:
            worker = Worker(app, WorkerConfig(concurrency=10, reaper_interval=None))
            runner = asyncio.create_task(worker.run())
        start = time.perf_counter()
        for i in range(offered):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await app.enqueue("noop", i)
        expected = offered + (1 if worker_proc else 0)
        while (await app.stats()).queues["default"].counts[JobState.COMPLETED] < expected:
            await asyncio.sleep(0.01)
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        if runner is not None:
            worker.stop()
            await runner
        jobs = [j for j in await all_jobs(app) if j.payload != "warm-up"]
    samples = sorted((j.last_attempt - j.created_at) * 1000 for j in jobs)

    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(p / 100 * len(samples)))]

    return {"p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "max_ms": samples[-1]}


def median_of(runs: list[dict[str, float]]) -> dict[str, Any]:
    out = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        out[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["memory", "sqlite", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="N=2,000 and 200 latency samples, 1 run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    n, offered, runs = (2_000, 200, 1) if args.quick else (20_000, 1_000, args.runs)
    backends = ["memory", "sqlite"] if args.backend == "all" else [args.backend]
    results: dict[str, Any] = {}
    for backend in backends:
        proc_runs, lat_runs = [], []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                if backend == "memory":
                    proc_runs.append(asyncio.run(processing_memory(n)))
                    lat_runs.append(asyncio.run(latency("memory://", offered, 200.0, worker_proc=False)))
                else:
                    proc_runs.append(asyncio.run(processing_sqlite(n, Path(tmp))))
                with tempfile.TemporaryDirectory() as tmp2:
                    if backend == "sqlite":
                        url = f"sqlite:///{Path(tmp2) / 'lat.db'}"
                        lat_runs.append(asyncio.run(latency(url, offered, 200.0, worker_proc=True)))
        results[backend] = {"processing": median_of(proc_runs), "latency": median_of(lat_runs)}
    print(f"\nN={n}, latency over {offered} jobs at 200 jobs/s, median of {runs} run(s) [min-max]\n")
    print("| backend | processed jobs/s | steady jobs/s | p50 ms | p95 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backend, r in results.items():
        p, lat = r["processing"], r["latency"]

        def cell(d: dict[str, float], fmt: str) -> str:
            return f"{d['median']:{fmt}} [{d['min']:{fmt}}-{d['max']:{fmt}}]"

        print(f"| {backend} | {cell(p['jobs_per_s'], ',.0f')} | {cell(p['steady_jobs_per_s'], ',.0f')} | "
              f"{cell(lat['p50_ms'], '.2f')} | {cell(lat['p95_ms'], '.2f')} | {cell(lat['p99_ms'], '.2f')} | "
              f"{cell(lat['max_ms'], '.1f')} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
