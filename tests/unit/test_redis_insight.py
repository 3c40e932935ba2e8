"""What only the Redis backend shows of the insight operations: the reaper's and batched failures
recorded by the fail script, the records' text through Lua's JSON and back, the lists trimmed and
deleted with their jobs by every path that deletes jobs, and the server's clock for reports.

The behaviour every backend shares is in the conformance suite (``InsightSuite``).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest

from jobqueue.backends import ClaimParams, Completion, Failure, Lease, PruneParams
from jobqueue.backends.params import MAX_ATTEMPT_ERRORS
from jobqueue.backends.redis import RedisBackend
from jobqueue.clock import FakeClock
from jobqueue.job import Job, NewJob
from jobqueue.retention import Retention
from jobqueue.testing.helpers import put
from tests.backends import TestRedisBackend, require_redis, unique_prefix


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def faked(clock: FakeClock) -> AsyncIterator[RedisBackend]:
    """A Redis backend on a fake clock that deletes dead-lettered jobs 10 s after they finish."""
    backend = TestRedisBackend(
        require_redis(), clock=clock, prefix=unique_prefix(), retention=Retention(dead_lettered=10)
    )
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


async def claim(backend: RedisBackend, worker: str = "w", limit: int = 1, lease: float = 30.0) -> list[Job]:
    return await backend.claim(ClaimParams(["default"], worker, limit, lease))


async def fail(
    backend: RedisBackend, job: Job, error: str = "boom", delay: float | None = 0.0, traceback: str | None = None
) -> None:
    assert await backend.fail([Failure(Lease(job.id, job.lease_token), error, delay, traceback=traceback)]) == [True]


async def error_lists(backend: RedisBackend) -> list[str]:
    """The ids of the jobs that have a list of failed attempts."""
    pattern, ids, cursor = backend.namespace + "errors:*", [], b"0"
    while True:
        cursor, keys = await backend._call("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
        ids += [key.decode().removeprefix(backend.namespace + "errors:") for key in keys]
        if cursor == b"0":
            return sorted(ids)


async def test_the_reaper_and_a_batch_record_one_attempt_per_job_failed(faked: RedisBackend, clock: FakeClock) -> None:
    await put(faked, *(NewJob(n, max_retries=5) for n in range(3)))
    a, b, c = await claim(faked, "w-1", limit=3, lease=5)
    clock.advance(6)
    # The reaper's failure of a lease renewed in the meantime is stale: nothing is recorded.
    assert await faked.heartbeat([Lease(c.id, c.lease_token)], lease=30) == [True]
    failures = [Failure(Lease(j.id, j.lease_token), "lease expired", 0.0, if_expired=True) for j in (a, b, c)]
    assert await faked.fail(failures) == [True, True, False]
    for job in (a, b):
        (error,) = await faked.attempt_errors(job.id)
        assert (error.attempt, error.error, error.worker_id, error.traceback) == (1, "lease expired", "w-1", None)
        assert (error.started_at, error.failed_at) == (job.last_attempt, clock.time())  # exact doubles
    assert await faked.attempt_errors(c.id) == []


async def test_records_keep_any_text_exactly(faked: RedisBackend) -> None:
    text = 'quote " backslash \\ slash / tab \t newline \n nul \x00 del \x7f é 漢 🙂 </script>'
    (job,) = await put(faked, NewJob("x", max_retries=5))
    for trace in (text, "", None):
        (claimed,) = await claim(faked, worker=text)
        await fail(faked, claimed, error=f"{text} {trace!r}".replace("\x00", ""), traceback=trace)
    first, second, third = await faked.attempt_errors(job.id)
    # A NUL in a traceback is escaped by the checked operation, as in an error; the worker id is kept.
    assert (first.worker_id, first.traceback) == (text, text.replace("\x00", "\\x00"))
    assert (second.traceback, third.traceback) == ("", None)
    assert third.error == f"{text} None".replace("\x00", "")
    stored = await faked.get(job.id)
    assert stored is not None and stored.error == third.error  # the job's own field as before


async def test_the_list_stays_at_its_bound(faked: RedisBackend) -> None:
    (job,) = await put(faked, NewJob("x", max_retries=100))
    for _ in range(MAX_ATTEMPT_ERRORS + 5):
        (claimed,) = await claim(faked)
        await fail(faked, claimed)
    assert await faked._call("LLEN", f"{faked.namespace}errors:{job.id}") == MAX_ATTEMPT_ERRORS
    assert [e.attempt for e in await faked.attempt_errors(job.id)] == list(range(6, MAX_ATTEMPT_ERRORS + 6))


async def test_every_path_that_deletes_jobs_deletes_their_attempts(faked: RedisBackend, clock: FakeClock) -> None:
    async def dead(n: int) -> list[str]:
        jobs = await put(faked, *(NewJob(i, max_retries=0) for i in range(n)))
        for claimed in await claim(faked, limit=n):
            await fail(faked, claimed, delay=None)
        return sorted(job.id for job in jobs)

    old = await dead(3)
    assert await error_lists(faked) == old
    clock.advance(11)
    newer = await dead(1)  # the fail script's retention deletes the three older jobs, lists and all
    assert await error_lists(faked) == newer
    clock.advance(11)
    await faked.prune(PruneParams(dead_before=clock.time()))
    assert await error_lists(faked) == []
    # A job completed after a replay keeps its attempts until it is deleted.
    (job_id,) = await dead(1)
    await faked.replay_dead(job_id)
    (again,) = await claim(faked)
    await faked.complete([Completion(Lease(again.id, again.lease_token))])
    assert len(await faked.attempt_errors(job_id)) == 1
    assert await faked.delete([job_id]) == [True]
    assert await error_lists(faked) == []


async def test_reports_and_records_use_the_servers_clock(redis: RedisBackend) -> None:
    before = time.time()
    await redis.report_worker("w-1", json.dumps({"id": "w-1"}), ttl=60)
    # A nanosecond is below a double's resolution at today's time: w-2's report expires as it is
    # stored, and the next read, a moment later by the server's clock, drops it.
    await redis.report_worker("w-2", json.dumps({"id": "w-2"}), ttl=1e-9)
    expires = float(await redis._call("ZSCORE", f"{redis.namespace}workers:expiry", "w-1"))
    assert before + 59 < expires < time.time() + 61
    assert await redis.worker_reports() == [json.dumps({"id": "w-1"})]
    assert await redis._call("HKEYS", f"{redis.namespace}workers") == [b"w-1"]
    assert await redis._call("ZRANGE", f"{redis.namespace}workers:expiry", 0, -1) == [b"w-1"]
    await redis.remove_worker_report("w-1")
    assert await redis.worker_reports() == []
    (job,) = await put(redis, NewJob("x"))
    (claimed,) = await claim(redis, "w-1")
    await fail(redis, claimed, delay=None)
    (error,) = await redis.attempt_errors(job.id)
    assert claimed.last_attempt is not None and error.started_at == claimed.last_attempt
    assert claimed.last_attempt <= error.failed_at <= time.time() + 1
    assert await redis.enqueued_total() == 1
