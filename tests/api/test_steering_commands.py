"""The commands that steer queues and act on many jobs: ``queue limit``, ``cancel``, ``dlq replay|purge``."""

from __future__ import annotations

import asyncio
import json

from jobqueue.app import JobQueue
from jobqueue.errors import PermanentError
from jobqueue.worker import Worker, WorkerConfig
from tests.api.test_commands import run, store

__all__ = ["store"]  # the fixture, imported for pytest


def test_a_queues_limits_are_set_listed_and_cleared(store: str) -> None:
    code, out, _ = run("queue", "limit", "api", "--rate", "100/s", "--concurrency", "5", "--key-rate", "2/s",
                       "--backend", store)  # fmt: skip
    assert code == 0 and out.strip() == "api: 100/s (burst 100), 5 at once; per key 2/s (burst 2)"
    listed = {q["name"]: q for q in json.loads(run("queue", "list", "--json", "--backend", store)[1])["queues"]}
    assert listed["api"]["limits"]["concurrency"] == 5
    assert "100/s (burst 100)" in run("queue", "--backend", store)[1]
    assert "limits" in run("stats", "--backend", store)[1]
    # A change keeps the limits not given; a new rate drops the old burst.
    code, out, _ = run("queue", "limit", "api", "--concurrency", "3", "--rate", "5/s", "--backend", store)
    assert out.strip() == "api: 5/s (burst 5), 3 at once; per key 2/s (burst 2)"
    assert run("queue", "limit", "api", "--clear", "--backend", store)[:2] == (0, "api: no limits\n")
    code, _, err = run("queue", "limit", "api", "--backend", store)
    assert code == 2 and "needs a limit" in err
    code, _, err = run("queue", "limit", "api", "--rate", "fast", "--backend", store)
    assert code == 2 and "error: rate: " in err
    code, _, err = run("queue", "pause", "api", "--rate", "1/s", "--backend", store)
    assert code == 2 and "limits go with" in err


def test_jobs_are_cancelled_by_id_or_filter(store: str) -> None:
    first = run("submit", "1", "--queue", "mail", "--backend", store)[1].strip()
    run("submit", "2", "--queue", "mail", "--rate-key", "tenant-1", "--backend", store)
    run("submit", "3", "--backend", store)
    assert json.loads(run("get", first, "--backend", store)[1])["rate_key"] is None
    assert run("cancel", first, "--backend", store)[:2] == (0, f"cancelled {first}\n")
    code, _, err = run("cancel", first, "--backend", store)
    assert code == 1 and "cannot cancel" in err
    assert run("cancel", "--queue", "mail", "--state", "pending", "--backend", store)[:2] == (0, "cancelled 1\n")
    code, _, err = run("cancel", "--backend", store)
    assert code == 2 and "job ids, or a filter" in err
    assert run("cancel", "--all", "--backend", store)[:2] == (0, "cancelled 1\n")


def test_the_dlq_is_replayed_and_purged_by_filter(store: str) -> None:
    async def fill() -> None:
        async with JobQueue(store) as queue:

            @queue.task(name="fails", max_retries=0)
            async def fails(payload: str) -> None:
                raise PermanentError(payload)

            await queue.enqueue_many([queue.new_job("fails", "timeout", queue="mail") for _ in range(3)])
            await queue.enqueue_many([queue.new_job("fails", "refused") for _ in range(2)])
            await Worker(queue, WorkerConfig(reaper_interval=None, queues=("mail", "default"))).drain()

    asyncio.run(fill())
    assert run("dlq", "replay", "--error", "TIMEOUT", "--backend", store)[:2] == (0, "replayed 3, stayed 0\n")
    code, _, err = run("dlq", "purge", "--backend", store)
    assert code == 2 and "error: all: give a filter" in err
    code, _, err = run("dlq", "list", "--queue", "mail", "--backend", store)
    assert code == 2 and "filters go with" in err
    assert run("dlq", "purge", "--until", "9999-01-01T00:00:00+00:00", "--backend", store)[:2] == (0, "purged 2\n")
    assert json.loads(run("dlq", "--json", "--backend", store)[1])["count"] == 0
