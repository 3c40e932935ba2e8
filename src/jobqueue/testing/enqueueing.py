"""The conformance suite, part 1: enqueue, read back, idempotency keys, capacity."""

from __future__ import annotations

import asyncio

import pytest

from jobqueue.backends.base import Backend
from jobqueue.backends.params import Completion, Failure, ListParams
from jobqueue.clock import FakeClock
from jobqueue.errors import JobNotFound
from jobqueue.job import NewJob
from jobqueue.outcomes import Accepted, Duplicate, Rejected
from jobqueue.testing.helpers import S, claim, lease_of, put


class EnqueueSuite:
    """Storing jobs: every field kept, one job per key, capacity exact."""

    # ---- enqueue and read back -------------------------------------------------------

    async def test_enqueue_stores_every_field(self, backend: Backend, clock: FakeClock) -> None:
        (job,) = await put(
            backend,
            NewJob({"order": 42, "items": [1, 2]}, task="send", queue="mail", priority=7, max_retries=5,
                   idempotency_key="order-42", timeout=12.5),
        )  # fmt: skip
        stored = await backend.get(job.id)
        assert stored == job
        assert stored.payload == {"order": 42, "items": [1, 2]}
        assert (stored.task, stored.queue, stored.priority, stored.max_retries) == ("send", "mail", 7, 5)
        assert stored.state is S.PENDING
        assert stored.retry_count == 0 and stored.attempt == 1
        assert stored.idempotency_key == "order-42"
        assert stored.timeout == 12.5
        assert stored.created_at == clock.time() == stored.run_at
        assert stored.started_at is None and stored.finished_at is None and stored.lease_expires_at is None

    async def test_get_unknown_is_none(self, backend: Backend) -> None:
        assert await backend.get("no-such-job") is None

    async def test_payloads_round_trip_as_json(self, backend: Backend) -> None:
        payloads = ["text", 0, 1.5, True, [1, "a"], {"nested": {"deep": [None, False]}}, "ünïcödé ✓"]
        jobs = await put(backend, *(NewJob(p) for p in payloads))
        for job, payload in zip(jobs, payloads, strict=True):
            stored = await backend.get(job.id)
            assert stored is not None and stored.payload == payload

    async def test_nul_characters_round_trip_in_payloads_results_and_errors(self, backend: Backend) -> None:
        # Valid JSON that PostgreSQL's text cannot hold as such: every backend keeps it alike.
        payload = {"text": "a\x00b", "k\x00": ["\x00"]}
        first, second = await put(backend, NewJob(payload), NewJob("retry me"))
        assert first.payload == payload
        held = {job.id: job for job in await claim(backend, limit=2)}
        assert await backend.complete([Completion(lease_of(held[first.id]), {"out": "c\x00d"})]) == [True]
        assert await backend.fail([Failure(lease_of(held[second.id]), "bad \x00 input", retry_delay=None)]) == [True]
        done, failed = await backend.get(first.id), await backend.get(second.id)
        assert done is not None and (done.payload, done.result) == (payload, {"out": "c\x00d"})
        assert failed is not None and failed.error is not None and failed.error.startswith("bad ")

    async def test_an_id_holding_nul_is_not_found(self, backend: Backend) -> None:
        assert await backend.get("x\x00") is None
        for operation in (backend.cancel, backend.replay_dead):
            with pytest.raises(JobNotFound):
                await operation("x\x00")

    async def test_empty_enqueue_is_a_no_op(self, backend: Backend) -> None:
        assert await backend.enqueue([]) == []

    # ---- idempotency -----------------------------------------------------------------

    async def test_duplicate_key_returns_the_existing_job_with_state_and_result(self, backend: Backend) -> None:
        (first,) = await put(backend, NewJob("x", idempotency_key="k"))
        (job,) = await claim(backend)
        await backend.complete([Completion(lease_of(job), {"sum": 3})])
        (outcome,) = await backend.enqueue([NewJob("other", idempotency_key="k")])
        assert isinstance(outcome, Duplicate)
        assert outcome.job.id == first.id
        assert outcome.job.state is S.COMPLETED and outcome.job.result == {"sum": 3}

    async def test_duplicate_inside_one_batch(self, backend: Backend) -> None:
        outcomes = await backend.enqueue([NewJob(1, idempotency_key="k"), NewJob(2, idempotency_key="k"), NewJob(3)])
        first, second, third = outcomes
        assert isinstance(first, Accepted) and isinstance(second, Duplicate) and isinstance(third, Accepted)
        assert second.job.id == first.job.id

    async def test_the_same_job_sent_twice_is_stored_once(self, backend: Backend) -> None:
        job = NewJob("x")
        (first,) = await put(backend, job)
        (again,) = await backend.enqueue([job])  # a producer retrying after a lost answer
        assert isinstance(again, Duplicate) and again.job.id == first.id
        other = NewJob("y")
        outcomes = await backend.enqueue([other, NewJob("z"), other])
        assert [type(o) for o in outcomes] == [Accepted, Accepted, Duplicate]
        assert len((await backend.list_jobs(ListParams())).jobs) == 3
        assert (await backend.stats()).queues["default"].counts[S.PENDING] == 3

    async def test_fifty_concurrent_enqueues_of_one_key_create_one_job(self, backend: Backend) -> None:
        outcomes = await asyncio.gather(*(backend.enqueue([NewJob(n, idempotency_key="same")]) for n in range(50)))
        flat = [o for (o,) in outcomes]
        accepted = [o for o in flat if isinstance(o, Accepted)]
        assert len(accepted) == 1
        assert all(isinstance(o, Duplicate) and o.job.id == accepted[0].job.id for o in flat if o is not accepted[0])
        page = await backend.list_jobs(ListParams())
        assert len(page.jobs) == 1

    async def test_key_expires_after_its_ttl(self, backend: Backend, clock: FakeClock) -> None:
        (first,) = await put(backend, NewJob("x", idempotency_key="k", key_ttl=100))
        clock.advance(99)
        (dup,) = await backend.enqueue([NewJob("y", idempotency_key="k", key_ttl=100)])
        assert isinstance(dup, Duplicate) and dup.job.id == first.id
        clock.advance(1)
        (second,) = await put(backend, NewJob("y", idempotency_key="k", key_ttl=100))
        assert second.id != first.id
        (dup2,) = await backend.enqueue([NewJob("z", idempotency_key="k")])
        assert isinstance(dup2, Duplicate) and dup2.job.id == second.id

    async def test_rejected_job_does_not_reserve_its_key(self, backend: Backend) -> None:
        await put(backend, NewJob("a"), capacity={"default": 1})
        (rejected,) = await backend.enqueue([NewJob("b", idempotency_key="k")], {"default": 1})
        assert rejected == Rejected("default", 1)
        (accepted,) = await backend.enqueue([NewJob("b", idempotency_key="k")], {"default": 2})
        assert isinstance(accepted, Accepted)

    # ---- capacity --------------------------------------------------------------------

    async def test_two_hundred_concurrent_enqueues_into_capacity_one_hundred(self, backend: Backend) -> None:
        capacity = {"default": 100}

        async def offer(n: int) -> bool:
            (outcome,) = await backend.enqueue([NewJob(n)], capacity)
            stats = await backend.stats()
            assert stats.queues["default"].waiting <= 100
            return isinstance(outcome, Accepted)

        accepted = await asyncio.gather(*(offer(n) for n in range(200)))
        assert sum(accepted) == 100
        assert (await backend.stats()).queues["default"].waiting == 100

    async def test_capacity_counts_waiting_jobs_only(self, backend: Backend, clock: FakeClock) -> None:
        capacity = {"default": 3}
        await put(backend, NewJob("pending"), NewJob("scheduled", delay=100), NewJob("retrying"), capacity=capacity)
        # SCHEDULED and PENDING count; a claimed job does not; a FAILED one awaiting retry does.
        (rejected,) = await backend.enqueue([NewJob("over")], capacity)
        assert isinstance(rejected, Rejected)
        claimed = await claim(backend, limit=1)
        await put(backend, NewJob("fits"), capacity=capacity)
        await backend.fail([Failure(lease_of(claimed[0]), "boom", retry_delay=10)])
        (rejected,) = await backend.enqueue([NewJob("over")], capacity)
        assert isinstance(rejected, Rejected)
        # Other queues are unaffected, and a queue without a capacity is unbounded.
        await put(backend, NewJob("elsewhere", queue="other"), capacity=capacity)
        await put(backend, NewJob("unbounded"))

    async def test_retries_reenter_a_full_queue(self, backend: Backend) -> None:
        capacity = {"default": 2}
        await put(backend, NewJob("a"), NewJob("b"), capacity=capacity)
        (job,) = await claim(backend, limit=1)
        await put(backend, NewJob("c"), capacity=capacity)
        assert await backend.fail([Failure(lease_of(job), "boom", retry_delay=1)]) == [True]
        assert (await backend.stats()).queues["default"].waiting == 3

    async def test_batch_enqueue_stops_at_capacity(self, backend: Backend) -> None:
        outcomes = await backend.enqueue([NewJob(n) for n in range(5)], {"default": 3})
        assert [type(o) for o in outcomes] == [Accepted] * 3 + [Rejected] * 2
