"""taskiq on Redis (taskiq-redis): ``task.kiq`` one job at a time (taskiq has no bulk API).

Mode (ANCHORS.md): ``taskiq worker --workers 1 --max-async-tasks 10``; the worker runs on uvloop
by itself when it is installed (taskiq's ``uv`` extra). "main" uses ListQueueBroker (LPUSH/BRPOP,
no acknowledgement); "stream" uses RedisStreamBroker (consumer group, acknowledged). No result
backend. ``--log-level WARNING``: at the default INFO the worker logs a line per task to stderr,
which the protocol pipes and never reads.
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager

import protocol
from taskiq_redis import ListQueueBroker, RedisStreamBroker


async def noop(enqueued_at: float) -> None:
    await protocol.record_started_async(enqueued_at)


# Making a broker does not connect.
list_broker = ListQueueBroker(protocol.REDIS_URL)
stream_broker = RedisStreamBroker(protocol.REDIS_URL)
TASKS = {
    "list_broker": list_broker.register_task(noop, task_name="noop"),
    "stream_broker": stream_broker.register_task(noop, task_name="noop"),
}


class Producer:
    def __init__(self, task) -> None:
        self.task = task

    async def enqueue_one(self, enqueued_at: float) -> None:
        await self.task.kiq(enqueued_at)


def adapter(name: str, broker: str, concurrency: int) -> protocol.Adapter:
    task = TASKS[broker]

    @asynccontextmanager
    async def producer():
        # The stream broker's startup makes its consumer group, before any job is added.
        await task.broker.startup()
        try:
            yield Producer(task)
        finally:
            await task.broker.shutdown()

    def worker_command(concurrency: int) -> list[str]:
        cli = [sys.executable, "-m", "taskiq", "worker", f"bench_taskiq:{broker}", "--workers", "1"]
        return [*cli, "--max-async-tasks", str(concurrency), "--log-level", "WARNING"]

    return protocol.Adapter(
        name=name,
        mode=f"taskiq-redis {type(task.broker).__name__}; taskiq worker --workers 1 --max-async-tasks {concurrency}, "
        "uvloop",
        versions=protocol.versions_of("taskiq", "taskiq-redis", "redis", "hiredis", "uvloop"),
        reset=protocol.flush_redis,
        producer=producer,
        worker_command=worker_command,
        use_uvloop=True,
    )


if __name__ == "__main__":
    protocol.main(
        {
            "main": lambda args: adapter("taskiq", "list_broker", args.concurrency),
            "stream": lambda args: adapter("taskiq-stream", "stream_broker", args.concurrency),
        }
    )
