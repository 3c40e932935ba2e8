"""Celery with its Redis broker, as a user would run it: no result backend, defaults otherwise.

Variants (the modes of ANCHORS.md):

``main``     "celery-prefork": ``celery -A bench_celery worker -P prefork -c 10``, Celery's default pool.
``threads``  "celery-threads": ``-P threads -c 10``, one process with a thread pool.

Celery has no bulk enqueue (``group`` and ``chunks`` publish one message per task, or one message for
many calls run as one task), so jobs are enqueued with ``delay`` one at a time.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import protocol
from celery import Celery

app = Celery("bench_celery", broker=protocol.REDIS_URL)


# Named explicitly: run as a script this module is "__main__", but the worker imports it as bench_celery.
@app.task(name="bench_celery.noop")
def noop(enqueued_at: float) -> None:
    protocol.record_started(enqueued_at)


@contextmanager
def producer():
    yield SimpleNamespace(enqueue_one=noop.delay)


def adapter(args, name: str, pool: str) -> protocol.Adapter:
    def worker_command(concurrency: int) -> list[str]:
        celery = str(Path(sys.executable).with_name("celery"))
        return [celery, "-A", "bench_celery", "worker", "-P", pool, "-c", str(concurrency)]

    return protocol.Adapter(
        name=name,
        mode=f"redis broker, no result backend; worker -P {pool} -c {args.concurrency}, defaults otherwise",
        versions=protocol.versions_of("celery", "kombu", "redis", "hiredis", "billiard"),
        reset=protocol.flush_redis,
        producer=producer,
        worker_command=worker_command,
    )


if __name__ == "__main__":
    protocol.main(
        {
            "main": lambda args: adapter(args, "celery-prefork", "prefork"),
            "threads": lambda args: adapter(args, "celery-threads", "threads"),
        }
    )
