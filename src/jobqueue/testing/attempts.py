"""The conformance suite, part 2: claims, delays, outcomes of attempts, fencing, lease expiry."""

from __future__ import annotations

import pytest

from jobqueue.backends.base import Backend
from jobqueue.backends.params import ClaimParams, Completion, Failure, Lease
from jobqueue.clock import FakeClock
from jobqueue.errors import ValidationError
from jobqueue.job import NewJob
from jobqueue.testing.helpers import S, claim, lease_of, put, state_of
from jobqueue.worker.reaper import WORKER_LOST, recover_expired


class AttemptSuite:
    """Running jobs: claim order, delayed jobs, outcomes, fencing and expired leases."""

    # ---- claim order -----------------------------------------------------------------

    async def test_claim_takes_highest_priority_first_then_oldest(self, backend: Backend, clock: FakeClock) -> None:
        jobs = []
        for n, priority in enumerate([1, 5, 1, 9, 5, 1]):
            jobs += await put(backend, NewJob(f"job-{n}", priority=priority))
            clock.advance(0.001)
        claimed = await claim(backend, limit=10)
        assert [j.payload for j in claimed] == ["job-3", "job-1", "job-4", "job-0", "job-2", "job-5"]
        assert all(j.state is S.PROCESSING for j in claimed)

    async def test_claim_respects_limit_and_never_hands_a_job_out_twice(self, backend: Backend) -> None:
        await put(backend, *(NewJob(n) for n in range(25)))
        seen: list[int] = []
        while batch := await claim(backend, limit=10):
            assert len(batch) <= 10
            seen += [j.payload for j in batch]
        assert sorted(seen) == list(range(25))

    async def test_claim_only_from_named_queues_merging_by_priority(self, backend: Backend) -> None:
        await put(backend, NewJob("a-low", queue="a", priority=1), NewJob("b-high", queue="b", priority=3))
        await put(backend, NewJob("c", queue="c", priority=9), NewJob("a-mid", queue="a", priority=2))
        claimed = await claim(backend, limit=10, queues=("a", "b"))
        assert [j.payload for j in claimed] == ["b-high", "a-mid", "a-low"]
        assert [j.payload for j in await claim(backend, queues=("c",))] == ["c"]

    async def test_claim_sets_lease_worker_and_attempt_times(self, backend: Backend, clock: FakeClock) -> None:
        (job,) = await put(backend, NewJob("x"))
        clock.advance(5)
        (claimed,) = await backend.claim(ClaimParams(["default"], "w-42", 1, lease=20))
        assert claimed.worker_id == "w-42"
        assert claimed.lease_expires_at == clock.time() + 20
        assert claimed.started_at == claimed.last_attempt == clock.time()
        assert claimed.lease_token != job.lease_token
        assert await backend.get(job.id) == claimed

    async def test_each_claim_gets_a_fresh_token(self, backend: Backend) -> None:
        await put(backend, NewJob("x"))
        (first,) = await claim(backend)
        assert await backend.release([lease_of(first)]) == [True]
        (second,) = await claim(backend)
        assert second.lease_token != first.lease_token
        assert await backend.complete([Completion(lease_of(first))]) == [False]

    # ---- delayed jobs ----------------------------------------------------------------

    async def test_delayed_job_is_scheduled_and_not_claimable_before_due(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        (job,) = await put(backend, NewJob("later", delay=60))
        assert job.state is S.SCHEDULED and job.run_at == clock.time() + 60
        (at,) = await put(backend, NewJob("at", run_at=clock.time() + 30))
        assert at.state is S.SCHEDULED
        assert await claim(backend) == []
        clock.advance(29.9)
        assert await claim(backend) == []
        clock.advance(0.1)
        assert [j.payload for j in await claim(backend)] == ["at"]
        clock.advance(30)
        assert [j.payload for j in await claim(backend)] == ["later"]

    async def test_run_at_in_the_past_is_pending(self, backend: Backend, clock: FakeClock) -> None:
        (job,) = await put(backend, NewJob("now", run_at=clock.time() - 10))
        assert job.state is S.PENDING
        assert [j.id for j in await claim(backend)] == [job.id]

    # ---- completion, failure and fencing ---------------------------------------------

    async def test_complete_stores_result_and_finish_time(self, backend: Backend, clock: FakeClock) -> None:
        await put(backend, NewJob("x"))
        (job,) = await claim(backend)
        clock.advance(2)
        assert await backend.complete([Completion(lease_of(job), {"ok": True})]) == [True]
        done = await backend.get(job.id)
        assert done is not None
        assert done.state is S.COMPLETED and done.result == {"ok": True}
        assert done.finished_at == clock.time() and done.lease_expires_at is None and done.worker_id is None

    async def test_result_must_be_json(self, backend: Backend) -> None:
        await put(backend, NewJob("x"))
        (job,) = await claim(backend)
        with pytest.raises(ValidationError):
            await backend.complete([Completion(lease_of(job), object())])
        assert await state_of(backend, job.id) is S.PROCESSING

    async def test_stale_token_changes_nothing(self, backend: Backend) -> None:
        await put(backend, NewJob("x"))
        (job,) = await claim(backend)
        stale = Lease(job.id, job.lease_token + 1000)
        assert await backend.complete([Completion(stale, 1)]) == [False]
        assert await backend.fail([Failure(stale, "boom", None)]) == [False]
        assert await backend.heartbeat([stale]) == [False]
        assert await backend.release([stale]) == [False]
        assert await backend.get(job.id) == job
        unknown = Lease("no-such-job", 1)
        assert await backend.complete([Completion(unknown)]) == [False]

    async def test_batches_answer_each_item_in_order(self, backend: Backend) -> None:
        await put(backend, *(NewJob(n) for n in range(3)))
        a, b, c = await claim(backend)
        stale = Lease(b.id, b.lease_token + 1)
        assert await backend.complete([Completion(lease_of(a)), Completion(stale), Completion(lease_of(c))]) == [
            True,
            False,
            True,
        ]
        assert await state_of(backend, b.id) is S.PROCESSING

    async def test_fail_with_retries_left_waits_then_runs_again(self, backend: Backend, clock: FakeClock) -> None:
        await put(backend, NewJob("x", max_retries=2))
        (job,) = await claim(backend)
        assert await backend.fail([Failure(lease_of(job), "boom", retry_delay=5)]) == [True]
        failed = await backend.get(job.id)
        assert failed is not None
        assert failed.state is S.FAILED and failed.retry_count == 1 and failed.error == "boom"
        assert failed.next_retry_at == clock.time() + 5
        assert await claim(backend) == []
        clock.advance(5)
        (again,) = await claim(backend)
        assert again.id == job.id and again.attempt == 2 and again.next_retry_at is None

    async def test_fail_without_retry_dead_letters(self, backend: Backend, clock: FakeClock) -> None:
        await put(backend, NewJob("x", max_retries=0))
        (job,) = await claim(backend)
        assert await backend.fail([Failure(lease_of(job), "fatal", retry_delay=None)]) == [True]
        dead = await backend.get(job.id)
        assert dead is not None
        assert dead.state is S.DEAD_LETTERED and dead.retry_count == 1 and dead.error == "fatal"
        assert dead.finished_at == clock.time()
        assert await claim(backend) == []

    async def test_heartbeat_extends_the_lease(self, backend: Backend, clock: FakeClock) -> None:
        await put(backend, NewJob("x"))
        (job,) = await claim(backend, lease=10)
        clock.advance(8)
        assert await backend.heartbeat([lease_of(job)], lease=10) == [True]
        clock.advance(8)
        assert await backend.expired_leases() == []
        assert await recover_expired(backend) == 0
        assert await backend.complete([Completion(lease_of(job))]) == [True]

    async def test_release_returns_the_job_without_counting_an_attempt(self, backend: Backend) -> None:
        await put(backend, NewJob("x"))
        (job,) = await claim(backend)
        assert await backend.release([lease_of(job)]) == [True]
        released = await backend.get(job.id)
        assert released is not None
        assert released.state is S.PENDING and released.retry_count == 0 and released.lease_expires_at is None
        (again,) = await claim(backend)
        assert again.id == job.id and again.attempt == 1

    # ---- lease expiry ----------------------------------------------------------------

    async def test_expired_lease_is_retried_as_worker_lost(self, backend: Backend, clock: FakeClock) -> None:
        await put(backend, NewJob("x", max_retries=1))
        (job,) = await claim(backend, lease=10)
        clock.advance(9.9)
        assert await backend.expired_leases() == []
        clock.advance(0.1)
        assert [j.id for j in await backend.expired_leases()] == [job.id]
        assert await recover_expired(backend) == 1
        recovered = await backend.get(job.id)
        assert recovered is not None
        assert recovered.state is S.FAILED and recovered.retry_count == 1 and recovered.error == WORKER_LOST
        # The worker that lost the lease comes back too late: fenced off.
        assert await backend.complete([Completion(lease_of(job), "late")]) == [False]
        clock.advance(60)
        (second,) = await claim(backend, lease=10)
        clock.advance(10)
        assert await recover_expired(backend) == 1
        dead = await backend.get(job.id)
        assert dead is not None and dead.state is S.DEAD_LETTERED and dead.retry_count == 2
        assert await backend.fail([Failure(lease_of(second), "late", None)]) == [False]

    async def test_expired_but_unrecovered_lease_can_still_complete(self, backend: Backend, clock: FakeClock) -> None:
        await put(backend, NewJob("x"))
        (job,) = await claim(backend, lease=10)
        clock.advance(11)
        assert await backend.complete([Completion(lease_of(job), 1)]) == [True]
        assert await recover_expired(backend) == 0
        assert await state_of(backend, job.id) is S.COMPLETED

    async def test_a_heartbeat_after_expiry_beats_the_reaper(self, backend: Backend, clock: FakeClock) -> None:
        await put(backend, NewJob("x"))
        (job,) = await claim(backend, lease=10)
        clock.advance(11)
        (seen,) = await backend.expired_leases()
        assert await backend.heartbeat([lease_of(job)], lease=10) == [True]  # the worker was only slow
        reaper = Failure(Lease(seen.id, seen.lease_token), WORKER_LOST, 1.0, if_expired=True)
        assert await backend.fail([reaper]) == [False]
        assert await state_of(backend, job.id) is S.PROCESSING
        assert await backend.complete([Completion(lease_of(job), "ok")]) == [True]

    async def test_recovered_jobs_reenter_a_full_queue(self, backend: Backend, clock: FakeClock) -> None:
        await put(backend, NewJob("a"), NewJob("b"), capacity={"default": 2})
        (job,) = await claim(backend, limit=1, lease=5)
        await put(backend, NewJob("c"), capacity={"default": 2})
        clock.advance(5)
        assert await recover_expired(backend) == 1
        stats = await backend.stats()
        assert stats.queues["default"].waiting == 3  # over capacity, and nothing was dropped
        assert await state_of(backend, job.id) is S.FAILED
