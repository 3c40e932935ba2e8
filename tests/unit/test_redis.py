"""What only the Redis backend has: URLs, key layout, server clock, scripts, wake-ups, retention.

The behaviour every backend shares is in the conformance suite; these tests run on the shared test
Redis, each under a key prefix of its own (``TestRedisBackend`` deletes its keys on close).
"""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from jobqueue.backends import ClaimParams, Completion, Failure, Lease, ListParams, PruneParams, create_backend
from jobqueue.backends.params import Tick
from jobqueue.backends.redis import RedisBackend
from jobqueue.clock import FakeClock
from jobqueue.errors import BackendError, BackendUnavailable, ConfigurationError
from jobqueue.job import JobState, NewJob
from jobqueue.outcomes import Accepted, StoredSchedule
from jobqueue.retention import Retention
from tests.backends import TestRedisBackend, require_redis, unique_prefix

S = JobState


async def keys_of(backend: RedisBackend) -> list[bytes]:
    keys: list[bytes] = []
    cursor = b"0"
    while True:
        cursor, batch = await backend._call("SCAN", cursor, "MATCH", backend.namespace + "*", "COUNT", "1000")
        keys += batch
        if cursor == b"0":
            return keys


async def run_one(backend: RedisBackend, job: NewJob) -> None:
    await backend.enqueue([job])
    (claimed,) = await backend.claim(ClaimParams([job.queue], "w", 1))
    assert await backend.complete([Completion(Lease(claimed.id, claimed.lease_token), "ok")]) == [True]


# ---- URLs ------------------------------------------------------------------------------------


def test_urls_select_the_redis_backend_with_its_options() -> None:
    backend = create_backend("redis://localhost:6380/2?prefix=app1&command_timeout=3")
    assert isinstance(backend, RedisBackend)
    assert (backend.address.host, backend.address.port, backend.address.db) == ("localhost", 6380, 2)
    assert backend.namespace == "{app1}:"
    tls = create_backend("rediss://user:secret@cache.internal:6379/0")
    assert isinstance(tls, RedisBackend) and tls.address.tls is not None
    assert (tls.address.username, tls.address.password) == ("user", "secret")
    assert backend.capabilities.server_clock and backend.capabilities.cross_process_wakeup
    assert not create_backend("redis://localhost", clock=FakeClock()).capabilities.server_clock


def test_retention_is_set_from_the_url() -> None:
    backend = create_backend("redis://localhost/0?keep_completed=3600&keep_dead=forever")
    assert isinstance(backend, RedisBackend)
    assert backend.retention == Retention(completed=3600.0, dead_lettered=None, cancelled=Retention().cancelled)
    with pytest.raises(ConfigurationError, match="keep_cancelled"):
        create_backend("redis://localhost/0?keep_cancelled=later")


def test_bad_redis_urls_and_options_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown redis option"):
        create_backend("redis://localhost/0?prefx=typo")
    with pytest.raises(ConfigurationError, match="command_timeout"):
        create_backend("redis://localhost/0?command_timeout=soon")
    with pytest.raises(ConfigurationError, match="braces"):
        RedisBackend("redis://localhost", prefix="a{b}")


async def test_an_unreachable_server_is_unavailable() -> None:
    backend = RedisBackend("redis://127.0.0.1:1/0", connect_timeout=1.0)
    with pytest.raises(BackendUnavailable, match="cannot connect"):
        await backend.open()
    await backend.close()


async def test_calls_before_open_are_refused() -> None:
    backend = RedisBackend(require_redis(), prefix=unique_prefix())
    with pytest.raises(ConfigurationError, match="not open"):
        await backend.enqueue([NewJob("x")])


# ---- key layout ------------------------------------------------------------------------------


async def test_every_key_carries_the_namespace_hash_tag(redis: RedisBackend) -> None:
    await run_one(redis, NewJob("a", queue="mail", idempotency_key="k"))
    await redis.enqueue([NewJob("b", queue="images", delay=60)])
    keys = await keys_of(redis)
    assert len(keys) >= 8
    # Redis Cluster hashes only what is inside the first {...}: one slot for the whole namespace.
    assert all(key.startswith(redis.namespace.encode()) for key in keys)


async def test_prefixes_keep_applications_apart(redis: RedisBackend) -> None:
    other = TestRedisBackend(require_redis(), prefix=unique_prefix())
    await other.open()
    try:
        (mine,) = await redis.enqueue([NewJob("mine", idempotency_key="shared-key")])
        (theirs,) = await other.enqueue([NewJob("theirs", idempotency_key="shared-key")])
        assert isinstance(mine, Accepted) and isinstance(theirs, Accepted)
        assert await other.get(mine.job.id) is None
        assert [j.payload for j in await other.claim(ClaimParams(["default"], "w", 10))] == ["theirs"]
    finally:
        await other.close()


async def test_listing_merges_the_state_indexes_in_byte_order(redis: RedisBackend) -> None:
    # Ids of the caller's choosing, in different states: the merge must order them as bytes
    # (as ZRANGEBYLEX does), whatever the server's locale would say ("B" < "a" < "b-2" < "b2").
    await redis.enqueue([NewJob(n, id=i) for n, i in enumerate(["b2", "a", "b-2", "B"])])
    await redis.claim(ClaimParams(["default"], "w", 2))  # "b2" and "a" become PROCESSING
    page = await redis.list_jobs(ListParams(limit=3))
    assert [j.id for j in page.jobs] == ["B", "a", "b-2"] and page.next_cursor == "b-2"
    rest = await redis.list_jobs(ListParams(cursor=page.next_cursor))
    assert [j.id for j in rest.jobs] == ["b2"] and rest.next_cursor is None


# ---- time ------------------------------------------------------------------------------------


async def test_times_come_from_the_redis_server(redis: RedisBackend) -> None:
    before = time.time()
    (outcome,) = await redis.enqueue([NewJob("x")])
    assert isinstance(outcome, Accepted)
    (job,) = await redis.claim(ClaimParams(["default"], "w", 1, lease=7.5))
    assert job.last_attempt is not None and job.lease_expires_at is not None
    # Same machine here, so the server's clock agrees with ours to well within a second.
    assert abs(outcome.job.created_at - before) < 1.0
    assert job.lease_expires_at == pytest.approx(job.last_attempt + 7.5, abs=1e-6)
    stored = await redis.get(job.id)
    assert stored == job


async def test_a_delayed_job_ends_an_idle_wait_when_it_comes_due(redis: RedisBackend) -> None:
    await redis.wait_for_work(["default"], 1.0)  # subscribe first
    await redis.enqueue([NewJob("soon", delay=0.3)])
    await redis.wait_for_work(["default"], 0.01)  # the enqueue's own wake-up
    started = time.monotonic()
    assert await redis.wait_for_work(["default"], 10.0) is True
    assert 0.1 < time.monotonic() - started < 3.0
    assert [j.payload for j in await redis.claim(ClaimParams(["default"], "w", 1))] == ["soon"]


# ---- scripts and errors ----------------------------------------------------------------------


async def test_scripts_are_loaded_again_when_the_server_forgot_them(redis: RedisBackend) -> None:
    # As after a restart or SCRIPT FLUSH (not run here: the test server is shared).
    redis._scripts._sha["enqueue"] = "0" * 40
    (outcome,) = await redis.enqueue([NewJob("x")])
    assert isinstance(outcome, Accepted)
    assert redis._scripts._sha["enqueue"] != "0" * 40


async def test_a_large_batch_is_stored_in_slices_that_see_each_other(redis: RedisBackend) -> None:
    jobs = [NewJob(n, idempotency_key="same" if n in (10, 2100) else None) for n in range(2500)]
    outcomes = await redis.enqueue(jobs, {"default": 2000})
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds[2100] == "Duplicate" and outcomes[2100].job.id == jobs[10].id  # type: ignore[union-attr]
    assert kinds[:2000] == ["Accepted"] * 2000  # the key is checked before the capacity:
    assert kinds[2000:] == ["Rejected"] * 100 + ["Duplicate"] + ["Rejected"] * 399
    assert (await redis.stats()).queues["default"].counts[S.PENDING] == 2000


async def test_redis_errors_become_backend_errors(redis: RedisBackend) -> None:
    with pytest.raises(BackendError, match="Redis error"):
        await redis._call("NO-SUCH-COMMAND")


# ---- wake-ups across processes -----------------------------------------------------------------


async def test_an_enqueue_through_another_connection_wakes_a_waiter(redis: RedisBackend) -> None:
    # A second backend object on the same namespace is what another process would have: its
    # enqueue reaches this one only through Redis (pub/sub), never through an in-process event.
    producer = RedisBackend(redis.url, prefix=redis.prefix)
    await producer.open()
    try:
        await redis.wait_for_work(["mail"], 1.0)  # subscribe
        waiter = asyncio.create_task(redis.wait_for_work(["mail"], 30.0))
        await asyncio.sleep(0)
        started = time.monotonic()
        await producer.enqueue([NewJob("x", queue="mail")])
        assert await asyncio.wait_for(waiter, 5) is True
        assert time.monotonic() - started < 1.0
    finally:
        await producer.close()


async def test_work_in_other_queues_does_not_wake_a_waiter(redis: RedisBackend) -> None:
    await redis.wait_for_work(["mail"], 1.0)
    producer = RedisBackend(redis.url, prefix=redis.prefix)
    await producer.open()
    try:
        waiter = asyncio.create_task(redis.wait_for_work(["mail"], 0.3))
        await asyncio.sleep(0)
        await producer.enqueue([NewJob("x", queue="images")])
        assert await waiter is False
    finally:
        await producer.close()


# ---- periodic schedules ----------------------------------------------------------------------


async def test_schedules_live_in_the_namespace_outlive_prune_and_go_with_drop(redis: RedisBackend) -> None:
    await redis.register_schedules([StoredSchedule("nightly", "{}")])
    fired = await redis.fire(Tick("nightly", 1_700_000_000.0, NewJob("tick")))
    assert isinstance(fired, Accepted)
    (claimed,) = await redis.claim(ClaimParams(["default"], "w", 1))
    assert await redis.complete([Completion(Lease(claimed.id, claimed.lease_token))]) == [True]
    keys = set(await keys_of(redis))
    assert {f"{redis.namespace}schedules".encode(), f"{redis.namespace}schedule:nightly".encode()} <= keys
    # Pruning every finished job takes the tick's job, never what the schedulers share.
    await redis.prune(PruneParams(completed_before=time.time() + 3600))
    assert await redis.get(fired.job.id) is None
    assert await redis.schedules() == [StoredSchedule("nightly", "{}", False, 1_700_000_000.0, fired.job.id)]
    await redis.drop()
    assert await keys_of(redis) == []


async def test_a_tick_time_is_kept_to_the_last_bit(redis: RedisBackend) -> None:
    at = math.nextafter(1_700_000_000.1, math.inf)
    given = StoredSchedule("given", "{}", last_tick=math.nextafter(at, -math.inf), last_job_id="j")
    await redis.register_schedules([StoredSchedule("nightly", "{}"), given])
    assert isinstance(await redis.fire(Tick("nightly", at, NewJob("tick"))), Accepted)
    stored, nightly = await redis.schedules()
    assert stored == given and nightly.last_tick == at
    # One ulp earlier is an earlier tick, one ulp later a later one: no rounding on the way.
    assert await redis.fire(Tick("nightly", math.nextafter(at, -math.inf), NewJob("tick"))) is None
    assert isinstance(await redis.fire(Tick("nightly", math.nextafter(at, math.inf), NewJob("tick"))), Accepted)
    assert isinstance(await redis.fire(Tick("given", at, NewJob("tick"))), Accepted)


async def test_a_tick_fired_through_another_connection_wakes_a_waiter(redis: RedisBackend) -> None:
    scheduler = RedisBackend(redis.url, prefix=redis.prefix)
    await scheduler.open()
    try:
        await scheduler.register_schedules([StoredSchedule("nightly", "{}")])
        await redis.wait_for_work(["mail"], 1.0)  # subscribe
        waiter = asyncio.create_task(redis.wait_for_work(["mail"], 30.0))
        await asyncio.sleep(0)
        assert isinstance(await scheduler.fire(Tick("nightly", 1_700_000_000.0, NewJob("x", queue="mail"))), Accepted)
        assert await asyncio.wait_for(waiter, 5) is True
    finally:
        await scheduler.close()


# ---- retention -------------------------------------------------------------------------------


async def test_finished_jobs_are_deleted_after_their_retention() -> None:
    clock = FakeClock()
    retention = Retention(completed=60, dead_lettered=600, cancelled=60)
    backend = TestRedisBackend(require_redis(), clock=clock, prefix=unique_prefix(), retention=retention)
    await backend.open()

    async def dead_letter(job: NewJob) -> None:
        await backend.enqueue([job])
        (claimed,) = await backend.claim(ClaimParams(["default"], "w", 1))
        assert await backend.fail([Failure(Lease(claimed.id, claimed.lease_token), "boom", None)]) == [True]

    try:
        old_done, old_dead, old_cancelled = NewJob("done"), NewJob("dead"), NewJob("cancelled")
        await run_one(backend, old_done)
        await dead_letter(old_dead)
        await backend.enqueue([old_cancelled])
        await backend.cancel(old_cancelled.id)
        clock.advance(61)
        # Each script that finishes a job also deletes the expired ones of the same state.
        await run_one(backend, NewJob("new"))
        await dead_letter(NewJob("new dead"))
        cancelled = NewJob("new cancelled")
        await backend.enqueue([cancelled])
        await backend.cancel(cancelled.id)
        assert await backend.get(old_done.id) is None
        assert await backend.get(old_cancelled.id) is None
        assert await backend.get(old_dead.id) is not None  # dead-lettered jobs are kept for 600 s
        counts = (await backend.stats()).queues["default"].counts
        assert (counts[S.COMPLETED], counts[S.DEAD_LETTERED], counts[S.CANCELLED]) == (1, 2, 1)
    finally:
        await backend.close()


async def test_memory_stays_flat_under_steady_load() -> None:
    """Jobs, keys and index entries level off once retention starts deleting: nothing grows."""
    clock = FakeClock()
    backend = TestRedisBackend(
        require_redis(), clock=clock, prefix=unique_prefix(), retention=Retention(completed=120), key_grace=30
    )
    await backend.open()
    try:
        sizes: list[int] = []
        for round_ in range(16):
            jobs = [NewJob(i, idempotency_key=f"r{round_}-{i}", key_ttl=60) for i in range(40)]
            await backend.enqueue(jobs)
            while claimed := await backend.claim(ClaimParams(["default"], "w", 15)):
                await backend.complete([Completion(Lease(j.id, j.lease_token)) for j in claimed])
            clock.advance(30)
            sizes.append(await _stored_entries(backend))
        steady = sizes[8:]
        assert max(steady) - min(steady) <= 0.1 * max(steady), sizes
        stats = await backend.stats()
        assert stats.queues["default"].counts[S.COMPLETED] <= 5 * 40  # retention (120 s) / round (30 s) + 1
        assert stats.idempotency_keys <= 4 * 40  # key ttl (60 s) + grace (30 s) = 3 rounds, + 1
    finally:
        await backend.close()


async def _stored_entries(backend: RedisBackend) -> int:
    """Keys plus the members of every sorted set and hash of the namespace."""
    total = 0
    for key in await keys_of(backend):
        kind = await backend._call("TYPE", key)
        if kind == b"zset":
            total += await backend._call("ZCARD", key)
        elif kind == b"hash" and not key.startswith((backend.namespace + "job:").encode()):
            total += await backend._call("HLEN", key)
        else:
            total += 1
    return total
