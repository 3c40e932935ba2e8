"""arq on Redis: ``ArqRedis.enqueue_job`` one job at a time (arq has no bulk API).

Mode (ANCHORS.md): one arq worker, max_jobs=10, uvloop, defaults otherwise (keep_result 3600 s,
queue_read_limit 100). "main" keeps the default poll_delay of 0.5 s, which caps arq near 200 jobs/s;
"poll0.01" polls every 10 ms. arq's CLI neither installs uvloop nor takes max_jobs, so the worker
is started with ``arq.worker.run_worker`` (what the CLI calls) on uvloop, without the CLI's logging
set-up, which logs two INFO lines per job (work no other queue here does).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import asynccontextmanager

import protocol
import redis.asyncio
from arq import create_pool
from arq.connections import RedisSettings


async def noop(ctx: dict, enqueued_at: float) -> None:
    await protocol.record_started_async(enqueued_at)


class WorkerSettings:
    functions = (noop,)
    redis_settings = RedisSettings.from_dsn(protocol.REDIS_URL)
    max_jobs = 10


# Not a subclass: arq reads a settings class's own __dict__, so inherited settings would be lost.
class WorkerSettingsPoll:
    functions = (noop,)
    redis_settings = RedisSettings.from_dsn(protocol.REDIS_URL)
    max_jobs = 10
    poll_delay = 0.01


WORKER = (
    "import sys, uvloop, arq.worker, bench_arq; uvloop.install(); "
    "arq.worker.run_worker(getattr(bench_arq, sys.argv[1]), max_jobs=int(sys.argv[2]))"
)


class Producer:
    def __init__(self, pool: redis.asyncio.Redis) -> None:
        self.pool = pool

    async def enqueue_one(self, enqueued_at: float) -> None:
        await self.pool.enqueue_job("noop", enqueued_at)


@asynccontextmanager
async def producer():
    pool = await create_pool(WorkerSettings.redis_settings)
    try:
        yield Producer(pool)
    finally:
        await pool.aclose()


def default_poll(args: argparse.Namespace) -> protocol.Adapter:
    # The 0.5 s poll caps the default worker near 200 jobs/s: N=20,000 would take 100 s a run
    # and say nothing more than 5,000 do (as for RQ's forking worker).
    args.n = min(args.n, 5000)
    row = adapter("arq", "WorkerSettings", "0.5 (default)", args.concurrency)
    row.notes = "N capped at 5,000: the default 0.5 s poll caps the worker near 200 jobs/s"
    return row


def adapter(name: str, settings: str, poll: str, concurrency: int) -> protocol.Adapter:
    return protocol.Adapter(
        name=name,
        mode=f"redis; arq worker max_jobs={concurrency}, poll_delay={poll}, uvloop, defaults otherwise "
        "(keep_result 3600s, queue_read_limit 100)",
        versions=protocol.versions_of("arq", "redis", "hiredis", "uvloop"),
        reset=protocol.flush_redis,
        producer=producer,
        worker_command=lambda concurrency: [sys.executable, "-c", WORKER, settings, str(concurrency)],
        use_uvloop=True,
    )


if __name__ == "__main__":
    protocol.main(
        {
            "main": default_poll,
            "poll0.01": lambda args: adapter("arq-poll0.01", "WorkerSettingsPoll", "0.01", args.concurrency),
        }
    )
