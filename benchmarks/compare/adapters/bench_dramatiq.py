"""Dramatiq with its RedisBroker, as a user would run it: default middleware, defaults otherwise.

Mode (as in ANCHORS.md): ``dramatiq bench_dramatiq --processes 1 --threads 10``, one worker process
with 10 worker threads under Dramatiq's supervisor process. Dramatiq has no bulk enqueue (``group``
sends one message per actor call), so jobs are sent one at a time with ``Actor.send``.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import dramatiq
import protocol
from dramatiq.brokers.redis import RedisBroker

# Set before the actor is declared: the actor binds to the global broker, in the producer and in the worker.
dramatiq.set_broker(RedisBroker(url=protocol.REDIS_URL))


@dramatiq.actor
def noop(enqueued_at: float) -> None:
    protocol.record_started(enqueued_at)


@contextmanager
def producer():
    yield SimpleNamespace(enqueue_one=noop.send)


def worker_command(concurrency: int) -> list[str]:
    dramatiq_cli = str(Path(sys.executable).with_name("dramatiq"))
    return [dramatiq_cli, "bench_dramatiq", "--processes", "1", "--threads", str(concurrency)]


def main(args) -> protocol.Adapter:
    return protocol.Adapter(
        name="dramatiq",
        mode=f"RedisBroker; dramatiq --processes 1 --threads {args.concurrency} (defaults otherwise)",
        versions=protocol.versions_of("dramatiq", "redis", "hiredis"),
        reset=protocol.flush_redis,
        producer=producer,
        worker_command=worker_command,
    )


if __name__ == "__main__":
    protocol.main({"main": main})
