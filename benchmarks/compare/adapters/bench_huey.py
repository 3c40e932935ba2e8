"""Huey with RedisHuey, as a user would run it: defaults otherwise.

Mode (as in ANCHORS.md): ``huey_consumer bench_huey.huey -w 10 -k thread -q``, one consumer process
with 10 worker threads. ``-q`` keeps its log to warnings: without it the consumer logs two lines per job,
work no other queue here does.
Huey has no bulk enqueue, so jobs are enqueued one call at a time.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import protocol
from huey import RedisHuey

huey = RedisHuey("bench", url=protocol.REDIS_URL)


@huey.task()
def noop(enqueued_at: float) -> None:
    protocol.record_started(enqueued_at)


@contextmanager
def producer():
    yield SimpleNamespace(enqueue_one=noop)


def worker_command(concurrency: int) -> list[str]:
    consumer = str(Path(sys.executable).with_name("huey_consumer"))
    return [consumer, "bench_huey.huey", "-w", str(concurrency), "-k", "thread", "-q"]


def main(args) -> protocol.Adapter:
    return protocol.Adapter(
        name="huey",
        mode=f"RedisHuey; huey_consumer -w {args.concurrency} -k thread -q (defaults otherwise)",
        versions=protocol.versions_of("huey", "redis", "hiredis"),
        reset=protocol.flush_redis,
        producer=producer,
        worker_command=worker_command,
    )


if __name__ == "__main__":
    # Huey names a task after its function's module, and run as a script this file is "__main__": enqueue
    # through the module the consumer imports, so that jobs name "bench_huey.noop".
    import bench_huey

    protocol.main({"main": bench_huey.main})
