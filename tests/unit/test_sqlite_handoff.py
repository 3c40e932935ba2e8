"""SQLite hands a new job straight to a waiting worker: stored claimed for it, sent to its process."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobqueue import Accepted, EnqueueOutcome, Job, JobState, NewJob
from jobqueue.backends import ClaimParams, Completion, Lease, SQLiteBackend
from jobqueue.backends.sqlite.rows import row_of
from jobqueue.backends.sqlite.wake import Sent
from jobqueue.job import dump_json

S = JobState


def job_of(outcome: EnqueueOutcome) -> Job:
    assert isinstance(outcome, Accepted)
    return outcome.job


def waiting(worker: str, limit: int = 10) -> ClaimParams:
    return ClaimParams(["default"], worker, limit, 30.0)


async def test_a_waiting_worker_in_another_process_is_handed_the_job(
    pair: tuple[SQLiteBackend, SQLiteBackend],
) -> None:
    producer, worker = pair
    assert await worker.claim_or_wait(waiting("w1")) == []  # nothing yet: w1 now waits for work
    (outcome,) = await producer.enqueue([NewJob(task="t", payload={"n": 1})])
    handed = job_of(outcome)
    assert (handed.state, handed.worker_id, handed.lease_token) == (S.PROCESSING, "w1", 1)
    assert await producer.claim(ClaimParams(["default"], "w2", 10)) == []  # nobody else gets it
    assert await worker.wait_for_work(["default"], 5)  # the message woke the worker's process
    (job,) = await worker.claim_or_wait(waiting("w1"))
    assert (job.id, job.payload, job.lease_token) == (handed.id, {"n": 1}, 1)
    assert await worker.complete([Completion(Lease(job.id, job.lease_token), "ok")]) == [True]
    stored = await producer.get(job.id)
    assert stored is not None and (stored.state, stored.result) == (S.COMPLETED, "ok")
    assert (await producer.stats()).queues["default"].counts[S.COMPLETED] == 1
    assert await worker.claim_or_wait(waiting("w1")) == []  # handed once, not twice


async def test_a_lost_message_is_made_up_by_the_next_claim(
    pair: tuple[SQLiteBackend, SQLiteBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    producer, worker = pair
    await worker.claim_or_wait(waiting("w1"))
    assert not await worker.wait_for_work(["default"], 0.01)  # it waits, listening
    send = producer._channel.send_job
    monkeypatch.setattr(producer._channel, "send_job", lambda address, message: Sent.OK)  # lost
    (outcome,) = await producer.enqueue([NewJob(task="t", payload=1)])
    # No message came: the worker's wait ends at its poll interval, and its claim reads the job
    # from its registration.
    assert not await worker.wait_for_work(["default"], 0.05)
    (job,) = await worker.claim_or_wait(waiting("w1"))
    assert job.id == job_of(outcome).id
    address = worker._channel.address
    assert address is not None
    assert send(address, dump_json(["w1", row_of(job_of(outcome))])) is Sent.OK  # the message, late
    producer._channel.notify()  # a wake-up behind it: once woken, the worker has read both
    assert await worker.wait_for_work(["default"], 5)
    assert await worker.claim_or_wait(waiting("w1")) == []  # the late copy was dropped


async def test_a_job_handed_to_a_dead_process_goes_back_to_the_queue(
    pair: tuple[SQLiteBackend, SQLiteBackend],
) -> None:
    producer, worker = pair
    await worker.claim_or_wait(waiting("w1"))
    listener = worker._channel._listener
    assert listener is not None
    listener.close()  # the process died: its socket file is left, nobody reads it
    (outcome,) = await producer.enqueue([NewJob(task="t", payload=1)])
    stored = await producer.get(job_of(outcome).id)
    assert stored is not None and stored.state is S.PENDING and stored.worker_id is None
    (job,) = await producer.claim(ClaimParams(["default"], "w2", 10))
    assert job.id == job_of(outcome).id
    # The dead worker's registration is gone: the next job is not handed to it.
    (second,) = await producer.enqueue([NewJob(task="t", payload=2)])
    assert job_of(second).state is S.PENDING


async def test_a_stopping_worker_gives_back_what_it_has_not_taken(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "jobs.db", durability="normal") as backend:
        await backend.claim_or_wait(waiting("w1"))
        taken, untaken = await backend.enqueue([NewJob(task="t", payload=1), NewJob(task="t", payload=2)])
        assert job_of(taken).worker_id == job_of(untaken).worker_id == "w1"
        (job,) = await backend.claim_or_wait(waiting("w1", limit=1))  # one delivered job is taken
        assert job.id == job_of(taken).id
        await backend.forget_worker("w1")
        kept, released = await backend.get(job_of(taken).id), await backend.get(job_of(untaken).id)
        assert kept is not None and (kept.state, kept.worker_id) == (S.PROCESSING, "w1")
        assert released is not None and (released.state, released.worker_id) == (S.PENDING, None)
        counts = (await backend.stats()).queues["default"].counts
        assert (counts[S.PROCESSING], counts[S.PENDING]) == (1, 1)
        (new,) = await backend.enqueue([NewJob(task="t", payload=3)])
        assert job_of(new).state is S.PENDING  # nothing is handed to a forgotten worker


async def test_only_due_small_jobs_of_its_queues_are_handed_and_no_more_than_its_slots(tmp_path: Path) -> None:
    async with SQLiteBackend(tmp_path / "jobs.db", durability="normal") as backend:
        await backend.claim_or_wait(waiting("w1", limit=2))
        outcomes = await backend.enqueue(
            [
                NewJob(task="t", payload=1, delay=60),  # not due
                NewJob(task="t", payload="x" * 4000),  # too big for a message
                NewJob(task="t", payload=2, queue="other"),  # not its queue
                NewJob(task="t", payload=3),
                NewJob(task="t", payload=4),
                NewJob(task="t", payload=5),  # its two slots are taken
            ]
        )
        assert [job_of(o).state for o in outcomes] == [S.SCHEDULED, S.PENDING, S.PENDING, S.PROCESSING, S.PROCESSING,
                                                   S.PENDING]  # fmt: skip
        jobs = await backend.claim_or_wait(waiting("w1", limit=2))
        assert [j.payload for j in jobs] == [3, 4]


async def test_a_registered_worker_still_claims_work_that_was_not_handed(
    pair: tuple[SQLiteBackend, SQLiteBackend],
) -> None:
    producer, worker = pair
    await worker.claim_or_wait(waiting("w1"))
    (small,) = await producer.enqueue([NewJob(task="t", payload=1)])
    assert await worker.wait_for_work(["default"], 5)
    assert [j.id for j in await worker.claim_or_wait(waiting("w1"))] == [job_of(small).id]
    assert await worker.claim_or_wait(waiting("w1")) == []  # still registered: answered without the database
    (big,) = await producer.enqueue([NewJob(task="t", payload="x" * 4000)])  # not handed: announced
    assert job_of(big).state is S.PENDING
    assert await worker.wait_for_work(["default"], 5)
    assert [j.id for j in await worker.claim_or_wait(waiting("w1"))] == [job_of(big).id]


async def test_a_paused_queue_is_handed_to_no_worker_even_one_that_waited_before_the_pause(
    pair: tuple[SQLiteBackend, SQLiteBackend],
) -> None:
    producer, worker = pair
    assert await worker.claim_or_wait(waiting("w1")) == []  # registered while the queue runs
    assert await producer.claim_or_wait(waiting("w2")) == []  # and one in the pausing process
    assert await producer.pause_queue("default", True) is True
    (kept,) = await producer.enqueue([NewJob(task="t", payload=1)])
    assert (job_of(kept).state, job_of(kept).worker_id) == (S.PENDING, None)  # handed to neither
    await worker.wait_for_work(["default"], 0.05)  # the enqueue's wake-up, if it came: no work
    assert await worker.claim_or_wait(waiting("w1")) == []
    assert await producer.claim_or_wait(waiting("w2")) == []
    await producer.wait_for_work(["default"], 0.01)  # its own enqueue's wake-up, spent
    assert await worker.pause_queue("default", False) is False  # resumed from the other process
    assert await producer.wait_for_work(["default"], 5)  # which woke this one, as an enqueue does
    (job,) = await producer.claim_or_wait(waiting("w2"))
    assert job.id == job_of(kept).id
    (handed,) = await producer.enqueue([NewJob(task="t", payload=2)])
    assert job_of(handed).worker_id == "w1"  # w1 is still waiting: hand-offs go on


@pytest.mark.parametrize("same_process", [True, False])
async def test_a_worker_too_busy_to_claim_still_takes_the_jobs_handed_to_its_free_slots(
    pair: tuple[SQLiteBackend, SQLiteBackend], same_process: bool
) -> None:
    # Long jobs arrive one by one: once more than half its slots run, the worker stops claiming
    # (it waits for half to be free), yet the jobs handed to the other slots must start, not sit
    # leased to it until the lease runs out.
    import asyncio

    from jobqueue import JobQueue, Worker, WorkerConfig

    producer, backend = pair
    app = JobQueue(backend=backend)
    started: set[int] = set()
    all_started = asyncio.Event()

    @app.task(name="long")
    async def long(n: int) -> None:
        started.add(n)
        if len(started) == 20:
            all_started.set()
        await asyncio.Event().wait()

    await app.open()
    worker = Worker(app, WorkerConfig(concurrency=20, reaper_interval=None, grace=0))
    worker.signals.init()
    runner = asyncio.create_task(worker.run())
    await worker.signals.waiting.wait()
    source = backend if same_process else producer
    for n in range(20):
        await source.enqueue([NewJob(n, task="long")])
        await asyncio.sleep(0)  # let the worker take what came, as enqueues spread over time would
    await asyncio.wait_for(all_started.wait(), 10)
    worker.stop()
    await asyncio.wait_for(runner, 10)
