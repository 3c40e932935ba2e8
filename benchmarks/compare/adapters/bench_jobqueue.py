"""jobqueue in the side-by-side benchmark, on each of its backends.

Variants (row names): ``memory`` (in-process: the producer and the worker share one process, as
the memory backend can't be shared), ``sqlite`` (``durability=normal``: WAL, no fsync per commit;
survives a crash of the process, not of the machine, which is still more than the Redis queues
here keep, Redis running without persistence), ``sqlite-full`` (the default: every accepted job
fsynced), ``postgres`` and ``redis`` (defaults). Workers are ``jobqueue worker`` processes with
``--concurrency 10`` (and ``--processes P`` for the scaling rows), defaults otherwise.

A job counts as processed only when its completion is stored: the process step waits for the
side channel (like every queue) and then for the backend's completed count to reach N.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import protocol

from jobqueue import JobQueue, JobState, Worker, WorkerConfig

app = JobQueue()  # a worker process takes its URL from JOBQUEUE_URL


@app.task(name="noop")
async def noop(enqueued_at: float) -> None:
    await protocol.record_started_async(enqueued_at)


class Producer:
    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    async def enqueue_one(self, enqueued_at: float) -> None:
        await self.queue.enqueue("noop", enqueued_at)

    async def enqueue_many(self, times: list[float]) -> None:
        await self.queue.enqueue_many([self.queue.new_job("noop", t) for t in times])


@asynccontextmanager
async def producer() -> AsyncIterator[Producer]:
    async with app:
        yield Producer(app)


async def completed() -> int:
    return (await app.stats()).queues["default"].counts[JobState.COMPLETED]


async def wait_completed(n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await completed() < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{await completed()} of {n} completions stored within {timeout:.0f} s")
        await asyncio.sleep(protocol.POLL)


def worker_argv(processes: int) -> Any:
    def command(concurrency: int) -> list[str]:
        return [sys.executable, "-m", "jobqueue", "worker", "bench_jobqueue:app", "--concurrency", str(concurrency),
                "--processes", str(processes), "--log-level", "WARNING"]  # fmt: skip

    return command


# ---- reset per backend -------------------------------------------------------------------------

SQLITE_DIR = Path(os.environ.get("BENCH_SQLITE_DIR") or Path(tempfile.gettempdir()) / "jobqueue-bench")


def reset_sqlite() -> None:
    shutil.rmtree(SQLITE_DIR, ignore_errors=True)
    SQLITE_DIR.mkdir(parents=True)


async def reset_postgres() -> None:
    import asyncpg

    conn = await asyncpg.connect(protocol.PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{protocol.PG_DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{protocol.PG_DATABASE}"')
    finally:
        await conn.close()


# ---- a worker in this process: the memory backend, and SQLite as `jobqueue serve` runs it ------


def in_process_worker(concurrency: int) -> Worker:
    return Worker(app, WorkerConfig(concurrency=concurrency, reaper_interval=None))


def in_process_steps(adapter: protocol.Adapter) -> dict[str, Any]:
    async def process(args: argparse.Namespace) -> dict[str, Any]:
        await protocol.call(adapter.reset)
        protocol.clear_side_channel()
        async with app:
            await protocol.enqueue_all(adapter, Producer(app), args.n, args.batch)
            worker = in_process_worker(args.concurrency)
            spawned_wall, spawned = time.time(), time.perf_counter()
            await worker.drain()
            elapsed = time.perf_counter() - spawned
            assert await completed() == args.n
        return protocol.processing_figures(args.n, elapsed, spawned_wall)

    async def latency(args: argparse.Namespace) -> dict[str, Any]:
        await protocol.call(adapter.reset)
        protocol.clear_side_channel()
        async with app:
            worker = in_process_worker(args.concurrency)
            runner = asyncio.create_task(worker.run())
            await protocol.warm_up_then_offer(Producer(app), args)
            worker.stop()
            await runner
        return protocol.latency_figures()

    return {"process": process, "latency": latency}


VARIANTS = {
    "memory": ("memory://", None, "memory backend; producer and Worker(concurrency=10) in one process, uvloop"),
    "sqlite": (
        f"sqlite:///{SQLITE_DIR / 'bench.db'}?durability=normal",
        reset_sqlite,
        "SQLite file, durability=normal (WAL, no fsync per commit); jobqueue worker --concurrency 10, uvloop",
    ),
    "sqlite-inproc": (
        f"sqlite:///{SQLITE_DIR / 'bench.db'}?durability=normal",
        reset_sqlite,
        "SQLite file, durability=normal; Worker(concurrency=10) in the producer's process (as jobqueue serve "
        "runs it), uvloop",
    ),
    "sqlite-full": (
        f"sqlite:///{SQLITE_DIR / 'bench.db'}",
        reset_sqlite,
        "SQLite file, durability=full (default: accepted jobs fsynced); jobqueue worker --concurrency 10, uvloop",
    ),
    "postgres": (
        protocol.PG_DSN,
        reset_postgres,
        "PostgreSQL, asyncpg, defaults (durability=full, LISTEN/NOTIFY); jobqueue worker --concurrency 10, uvloop",
    ),
    "redis": (protocol.REDIS_URL, protocol.flush_redis, "Redis, defaults; jobqueue worker --concurrency 10, uvloop"),
}
IN_PROCESS = {"memory", "sqlite-inproc"}


def variant(name: str) -> Any:
    url, reset, mode = VARIANTS[name]

    def make(args: argparse.Namespace) -> protocol.Adapter:
        app.use_backend(url)
        processes = getattr(args, "processes", 1)
        row = name if processes == 1 else f"{name} x{processes} processes"
        adapter = protocol.Adapter(
            name=f"jobqueue-{row}",
            mode=mode if processes == 1 else mode.replace("10,", f"10 --processes {processes},"),
            versions=protocol.versions_of("jobqueue", "asyncpg", "redis", "hiredis", "uvloop", "orjson"),
            reset=reset or (lambda: None),
            producer=producer,
            worker_command=worker_argv(processes),
            worker_env={"JOBQUEUE_URL": url},
            has_batch=True,
            bulk_api="JobQueue.enqueue_many(x1000)",
            use_uvloop=True,
            notes="the worker runs in the producer's process" if name in IN_PROCESS else "",
        )
        if name in IN_PROCESS:
            adapter.steps = in_process_steps(adapter)
        else:
            adapter.steps = {"process": stored_process(adapter)}
        return adapter

    return make


def stored_process(adapter: protocol.Adapter) -> Any:
    """The protocol's process step, ended by the N-th stored completion rather than the N-th start."""

    async def step(args: argparse.Namespace) -> dict[str, Any]:
        await protocol.call(adapter.reset)
        async with app:
            await protocol.enqueue_all(adapter, Producer(app), args.n, args.batch)
            protocol.clear_side_channel()
            spawned_wall, spawned = time.time(), time.perf_counter()
            proc = protocol.spawn_worker(adapter, args.concurrency)
            try:
                await protocol.wait_for_started(args.n, args.timeout, proc)
                await wait_completed(args.n, args.timeout)
                elapsed = time.perf_counter() - spawned
            finally:
                protocol.stop_worker(proc)
        return protocol.processing_figures(args.n, elapsed, spawned_wall)

    return step


if __name__ == "__main__":
    os.environ.setdefault("JOBQUEUE_URL", "memory://")
    protocol.main({name: variant(name) for name in VARIANTS})
