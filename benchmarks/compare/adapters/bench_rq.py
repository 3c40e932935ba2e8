"""RQ on Redis, with its worker pool and its bulk enqueue (``Queue.enqueue_many``).

Variants (the modes of ANCHORS.md):

``main``    "rq": ``rq worker-pool -n 10 -w rq.worker.Worker``, RQ's default worker, which forks a work
            horse per job. It manages ~90 jobs/s here, so N is capped at 5,000 as in ANCHORS.md.
``simple``  "rq-simple": ``-w rq.worker.SimpleWorker``, which runs jobs in the worker process itself.

The forking worker imports this module (and ``protocol``) anew in every work horse, so the worker may
write bytecode caches: with PYTHONDONTWRITEBYTECODE set (it is in our sessions) every job would compile
both modules from source again (~5 ms of CPU per job), which a user's deployment does not do.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import protocol
import redis
from rq import Queue

# By name: run as a script this module is "__main__", but the worker imports it as bench_rq.
TASK = "bench_rq.noop"


def noop(enqueued_at: float) -> None:
    protocol.record_started(enqueued_at)


@contextmanager
def producer():
    queue = Queue(connection=redis.Redis.from_url(protocol.REDIS_URL))
    yield SimpleNamespace(
        enqueue_one=lambda enqueued_at: queue.enqueue(TASK, enqueued_at),
        enqueue_many=lambda times: queue.enqueue_many([Queue.prepare_data(TASK, (t,)) for t in times]),
    )


def adapter(args, name: str, worker_class: str, notes: str = "") -> protocol.Adapter:
    def worker_command(concurrency: int) -> list[str]:
        rq = str(Path(sys.executable).with_name("rq"))
        return [rq, "worker-pool", "-n", str(concurrency), "-w", worker_class, "-u", protocol.REDIS_URL]

    return protocol.Adapter(
        name=name,
        mode=f"redis; rq worker-pool -n {args.concurrency} -w {worker_class}",
        versions=protocol.versions_of("rq", "redis", "hiredis"),
        reset=protocol.flush_redis,
        producer=producer,
        worker_command=worker_command,
        worker_env={"PYTHONDONTWRITEBYTECODE": ""},  # empty means unset to Python
        has_batch=True,
        bulk_api="Queue.enqueue_many(prepare_data x1000)",
        notes=notes,
    )


def main(args) -> protocol.Adapter:
    args.n = min(args.n, 5000)
    return adapter(
        args,
        "rq",
        "rq.worker.Worker",
        "N capped at 5,000: the forking worker manages ~90 jobs/s; its latency is a growing backlog",
    )


if __name__ == "__main__":
    protocol.main({"main": main, "simple": lambda args: adapter(args, "rq-simple", "rq.worker.SimpleWorker")})
