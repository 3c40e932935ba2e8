"""SQLite's queue limits beyond the conformance suite: the hand-off to a waiting worker is a claim
too and keeps to them, a full key at the head of a queue is walked past, workers are woken only
when a freed slot has a job waiting for it, and the stored state (limits, buckets, an older
file) is what it should be."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from jobqueue import Accepted, EnqueueOutcome, Job, JobState, NewJob
from jobqueue.backends import ClaimParams, Completion, Lease, PruneParams, SQLiteBackend
from jobqueue.backends.sqlite.connection import _statements
from jobqueue.backends.sqlite.sql import migrations
from jobqueue.clock import FakeClock
from jobqueue.limits import QueueLimits, Rate

S = JobState


def job_of(outcome: EnqueueOutcome) -> Job:
    assert isinstance(outcome, Accepted)
    return outcome.job


def waiting(worker: str, limit: int = 10) -> ClaimParams:
    return ClaimParams(["default"], worker, limit, 30.0)


def lease(job: Job) -> Lease:
    return Lease(job.id, job.lease_token)


async def test_a_hand_off_keeps_to_the_queue_concurrency(pair: tuple[SQLiteBackend, SQLiteBackend]) -> None:
    producer, worker = pair
    await producer.set_queue_limits("default", QueueLimits(concurrency=2))
    assert await worker.claim_or_wait(waiting("w1")) == []
    outcomes = await producer.enqueue([NewJob(task="t", payload=n) for n in range(4)])
    assert [job_of(o).state for o in outcomes] == [S.PROCESSING, S.PROCESSING, S.PENDING, S.PENDING]
    (third,) = await producer.enqueue([NewJob(task="t", payload=4)])  # a batch of its own: the same
    assert (job_of(third).state, job_of(third).worker_id, job_of(third).lease_token) == (S.PENDING, None, 0)
    stored = await producer.get(job_of(outcomes[2]).id)
    assert stored is not None and (stored.state, stored.started_at, stored.last_attempt) == (S.PENDING, None, None)
    counts = (await producer.stats()).queues["default"].counts
    assert (counts[S.PROCESSING], counts[S.PENDING]) == (2, 3)
    assert await worker.wait_for_work(["default"], 5)
    handed = await worker.claim_or_wait(waiting("w1"))
    assert [j.payload for j in handed] == [0, 1]
    assert await worker.claim_or_wait(waiting("w1")) == []  # its limit: the others wait
    await worker.complete([Completion(lease(handed[0]))])
    assert [j.payload for j in await worker.claim_or_wait(waiting("w1"))] == [2]


async def test_a_hand_off_keeps_to_the_keys_and_spends_their_tokens(tmp_path: Path) -> None:
    clock = FakeClock()
    async with SQLiteBackend(tmp_path / "jobs.db", clock=clock, durability="normal") as backend:
        limits = QueueLimits(key_concurrency=1, key_rate=Rate(2, 1.0, 2), rate=Rate(4, 1.0, 3))
        await backend.set_queue_limits("default", limits)
        await backend.claim_or_wait(waiting("w1"))
        outcomes = await backend.enqueue(
            [NewJob(task="t", payload=n, rate_key=key) for n, key in enumerate(["a", "a", "b", None, "c"])]
        )
        # a: one at a time; the queue's rate: three tokens, so c waits too.
        assert [(job_of(o).state, job_of(o).rate_key) for o in outcomes] == [
            (S.PROCESSING, "a"), (S.PENDING, "a"), (S.PROCESSING, "b"), (S.PROCESSING, None), (S.PENDING, "c"),
        ]  # fmt: skip
        assert await backend.claim(ClaimParams(["default"], "w2", 10)) == []  # no token is left for c
        clock.advance(0.25)  # one token of the queue's
        (c,) = await backend.claim(ClaimParams(["default"], "w2", 10))
        assert c.id == job_of(outcomes[4]).id and c.rate_key == "c"


async def test_a_limited_queue_job_is_not_handed_ahead_of_one_held_back(
    pair: tuple[SQLiteBackend, SQLiteBackend],
) -> None:
    producer, worker = pair
    await producer.set_queue_limits("default", QueueLimits(concurrency=1))
    _, older = await producer.enqueue([NewJob(task="t", payload=1), NewJob(task="t", payload=2)])
    (running,) = await worker.claim(waiting("w2"))
    assert await worker.claim_or_wait(waiting("w1")) == []  # registered: the slot is taken
    await worker.complete([Completion(lease(running))])  # the slot is free, before w1 claims again
    (newer,) = await producer.enqueue([NewJob(task="t", payload=3)])
    assert job_of(newer).state is S.PENDING  # not handed: the older job goes first
    (next_up,) = await worker.claim_or_wait(waiting("w1"))
    assert next_up.id == job_of(older).id
    (urgent,) = await producer.enqueue([NewJob(task="t", payload=4, priority=5)])
    assert job_of(urgent).state is S.PENDING  # ahead in order, but its queue's slot is taken


async def test_a_key_at_its_limit_with_thousands_of_jobs_at_the_head_does_not_hide_the_others(
    tmp_path: Path,
) -> None:
    async with SQLiteBackend(tmp_path / "jobs.db", durability="normal") as backend:
        await backend.set_queue_limits("default", QueueLimits(key_concurrency=1))
        await backend.enqueue([NewJob(task="t", payload=n, rate_key="a") for n in range(3000)])
        later = await backend.enqueue(
            [NewJob(task="t", payload="b", rate_key="b"), NewJob(task="t", payload="free")]
            + [NewJob(task="t", payload=f"c{n}", rate_key=f"c{n}") for n in range(20)]
        )
        params = ClaimParams(["default"], "w", 10, 30.0)
        first = await backend.claim(params)
        assert [j.payload for j in first] == [0, "b", "free"] + [f"c{n}" for n in range(7)]
        second = await backend.claim(params)  # a's jobs are walked past again, the keys not full yet taken
        assert [j.payload for j in second] == [f"c{n}" for n in range(7, 17)]
        assert [j.payload for j in await backend.claim(params)] == ["c17", "c18", "c19"]
        assert await backend.claim(params) == []
        await backend.complete([Completion(lease(first[0]))])
        assert [j.payload for j in await backend.claim(params)] == [1]
        assert all(job_of(o).state is S.PENDING for o in later)


async def test_only_a_freed_slot_that_a_job_waits_for_wakes_other_processes(
    pair: tuple[SQLiteBackend, SQLiteBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    producer, worker = pair
    notified: list[int] = []
    monkeypatch.setattr(producer._channel, "notify", lambda: notified.append(1))
    await producer.set_queue_limits("mail", QueueLimits(concurrency=1))
    await producer.enqueue([NewJob(task="t", payload=n) for n in range(2)])  # no limits
    await producer.enqueue([NewJob(task="t", payload=1, queue="mail")])
    notified.clear()
    for job in await producer.claim(ClaimParams(["default", "mail"], "w", 10)):
        await producer.complete([Completion(lease(job))])
    assert notified == []  # nobody waits for a slot: neither queue's completions wake anyone
    await producer.enqueue([NewJob(task="t", payload=n, queue="mail") for n in range(2)])
    (running,) = await producer.claim(ClaimParams(["mail"], "w", 10))
    notified.clear()
    await worker.wait_for_work(["mail"], 0.01)
    await producer.complete([Completion(lease(running))])
    assert notified == [1]  # a job waits for the slot
    (again,) = await worker.claim(ClaimParams(["mail"], "w2", 10))
    notified.clear()
    await producer.cancel(again.id)  # a cancel frees its slot too, but nothing waits now
    assert notified == []


async def test_a_change_of_limits_in_another_process_wakes_waiting_workers(
    pair: tuple[SQLiteBackend, SQLiteBackend],
) -> None:
    producer, worker = pair
    await producer.set_queue_limits("default", QueueLimits(concurrency=1))
    await producer.enqueue([NewJob(task="t", payload=n) for n in range(2)])
    assert len(await worker.claim(waiting("w1"))) == 1
    await worker.wait_for_work(["default"], 0.01)
    assert await producer.set_queue_limits("default", QueueLimits(concurrency=2)) == QueueLimits(concurrency=2)
    assert await worker.wait_for_work(["default"], 5)
    assert len(await worker.claim(waiting("w1"))) == 1


async def test_the_wait_ends_at_the_soonest_token_of_an_empty_key_only(tmp_path: Path) -> None:
    clock = FakeClock()
    async with SQLiteBackend(tmp_path / "jobs.db", clock=clock) as backend:
        await backend.set_queue_limits("default", QueueLimits(key_rate=Rate(1, 10.0, 2)))
        await backend.enqueue([NewJob(task="t", payload=k, rate_key=k) for k in ["a", "a", "b", "c", "c"]])
        assert len(await backend.claim(waiting("w"))) == 5  # a and c: two tokens each, b one
        assert await backend._due_in(["default"]) == pytest.approx(10.0)  # a, c empty; b has a token
        clock.advance(4)
        await backend.enqueue([NewJob(task="t", payload="b", rate_key="b")])
        assert len(await backend.claim(waiting("w"))) == 1  # b's last token: empty from now, till 10 + 10
        assert await backend._due_in(["default"]) == pytest.approx(6.0)
        await backend.pause_queue("default", True)
        assert await backend._due_in(["default"]) is None  # a paused queue's tokens are no work
        await backend.pause_queue("default", False)
        await backend.set_queue_limits("default", QueueLimits())
        assert await backend._due_in(["default"]) is None  # no limits, no buckets that count


async def test_prune_drops_the_buckets_that_are_full_again(tmp_path: Path) -> None:
    clock = FakeClock()
    db = tmp_path / "jobs.db"
    async with SQLiteBackend(db, clock=clock) as backend:
        await backend.set_queue_limits("default", QueueLimits(rate=Rate(10, 1.0, 10), key_rate=Rate(1, 60.0, 1)))
        await backend.enqueue([NewJob(task="t", payload=k, rate_key=k) for k in ["a", "b"]])
        await backend.claim(waiting("w"))
        clock.advance(30)  # the queue's bucket is full again; the keys' are not
        await backend.prune(PruneParams(completed_before=0))
        with closing(sqlite3.connect(db)) as conn:
            assert sorted(conn.execute("SELECT queue, rate_key FROM rate_buckets")) == [
                ("default", "a"), ("default", "b"),
            ]  # fmt: skip
        clock.advance(31)
        await backend.prune(PruneParams(completed_before=0))
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("SELECT count(*) FROM rate_buckets").fetchone() == (0,)


async def test_limits_come_back_exactly_as_stored(tmp_path: Path) -> None:
    odd = QueueLimits(rate=Rate(1, 1 / 3, 7), concurrency=3, key_rate=Rate(5, 0.1 + 0.2, 1), key_concurrency=2)
    async with SQLiteBackend(tmp_path / "jobs.db") as first:
        assert await first.set_queue_limits("default", odd) == odd
    async with SQLiteBackend(tmp_path / "jobs.db") as second:
        assert await second.queue_limits() == {"default": odd}


async def test_a_store_made_before_limits_opens_with_its_jobs_unkeyed(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        for number, script in migrations():
            if number > 8:
                break
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 8")
        conn.execute(
            "INSERT INTO jobs (id, queue, task, payload, priority, state, max_retries, created_at, run_at) "
            "VALUES ('old', 'default', 't', '1', 0, 'PENDING', 3, 0, 0)"
        )
        conn.execute("INSERT INTO queue_counts VALUES ('default', 'PENDING', 1)")
        conn.execute("INSERT INTO queue_settings (queue, paused) VALUES ('mail', 1)")
    async with SQLiteBackend(db) as backend:
        assert await backend.paused_queues() == ["mail"]
        await backend.set_queue_limits("default", QueueLimits(key_concurrency=1))
        (job,) = await backend.claim(waiting("w"))
        assert (job.id, job.rate_key) == ("old", None)
