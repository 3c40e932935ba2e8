"""SAQ on Redis: ``Queue.enqueue`` one job at a time (SAQ has no bulk enqueue).

Mode (ANCHORS.md): one SAQ worker, concurrency=10, uvloop, defaults otherwise. SAQ's CLI takes
neither a concurrency nor an event loop, so the worker is started with ``saq.worker.start`` (what
the CLI calls) on uvloop, after setting the concurrency in the settings it is given.
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager

import protocol
from saq import Queue


async def noop(ctx: dict, *, enqueued_at: float) -> None:
    await protocol.record_started_async(enqueued_at)


# What saq.worker.start reads; making the Queue does not connect.
SETTINGS = {"queue": Queue.from_url(protocol.REDIS_URL), "functions": [noop], "concurrency": 10}

WORKER = (
    "import sys, uvloop, saq.worker, bench_saq; uvloop.install(); "
    "bench_saq.SETTINGS['concurrency'] = int(sys.argv[1]); saq.worker.start('bench_saq.SETTINGS')"
)


class Producer:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    async def enqueue_one(self, enqueued_at: float) -> None:
        await self.queue.enqueue("noop", enqueued_at=enqueued_at)


@asynccontextmanager
async def producer():
    queue = Queue.from_url(protocol.REDIS_URL)
    await queue.connect()
    try:
        yield Producer(queue)
    finally:
        await queue.disconnect()


def main(args) -> protocol.Adapter:
    return protocol.Adapter(
        name="saq",
        mode=f"redis queue; saq worker concurrency={args.concurrency}, uvloop, defaults otherwise",
        versions=protocol.versions_of("saq", "redis", "hiredis", "uvloop"),
        reset=protocol.flush_redis,
        producer=producer,
        worker_command=lambda concurrency: [sys.executable, "-c", WORKER, str(concurrency)],
        use_uvloop=True,
    )


if __name__ == "__main__":
    protocol.main({"main": main})
