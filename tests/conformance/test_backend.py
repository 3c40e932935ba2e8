"""The conformance suite: every backend must behave the same on every operation.

Each test runs once per backend in ``tests.backends.ALL_BACKENDS`` through the ``backend`` fixture,
with a :class:`~jobqueue.clock.FakeClock` so that leases, delays and key TTLs are driven by the test.
"""

from __future__ import annotations

import asyncio

import pytest

from jobqueue.backends.base import (
    Accepted,
    Backend,
    ClaimParams,
    Completion,
    Duplicate,
    Failure,
    Lease,
    ListParams,
    PruneParams,
    Rejected,
)
from jobqueue.clock import FakeClock
from jobqueue.errors import InvalidTransition, JobNotFound, QueueFull, ValidationError
from jobqueue.job import Job, JobState, NewJob
from jobqueue.recovery import WORKER_LOST, recover_expired

S = JobState


async def put(backend: Backend, *jobs: NewJob, capacity: dict[str, int] | None = None) -> list[Job]:
    outcomes = await backend.enqueue(jobs, capacity)
    assert all(isinstance(o, Accepted) for o in outcomes), outcomes
    return [o.job for o in outcomes if isinstance(o, Accepted)]


async def claim(
    backend: Backend, limit: int = 10, queues: tuple[str, ...] = ("default",), lease: float = 30.0
) -> list[Job]:
    return await backend.claim(ClaimParams(queues, "worker-1", limit, lease))


def lease_of(job: Job) -> Lease:
    return Lease(job.id, job.lease_token)


async def state_of(backend: Backend, job_id: str) -> JobState:
    job = await backend.get(job_id)
    assert job is not None
    return job.state


# ---- enqueue and read back ---------------------------------------------------------------


async def test_enqueue_stores_every_field(backend: Backend, clock: FakeClock) -> None:
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


async def test_get_unknown_is_none(backend: Backend) -> None:
    assert await backend.get("no-such-job") is None


async def test_payloads_round_trip_as_json(backend: Backend) -> None:
    payloads = ["text", 0, 1.5, True, [1, "a"], {"nested": {"deep": [None, False]}}, "ünïcödé ✓"]
    jobs = await put(backend, *(NewJob(p) for p in payloads))
    for job, payload in zip(jobs, payloads, strict=True):
        stored = await backend.get(job.id)
        assert stored is not None and stored.payload == payload


async def test_empty_enqueue_is_a_no_op(backend: Backend) -> None:
    assert await backend.enqueue([]) == []


# ---- claim order ---------------------------------------------------------------------------


async def test_claim_takes_highest_priority_first_then_oldest(backend: Backend, clock: FakeClock) -> None:
    jobs = []
    for n, priority in enumerate([1, 5, 1, 9, 5, 1]):
        jobs += await put(backend, NewJob(f"job-{n}", priority=priority))
        clock.advance(0.001)
    claimed = await claim(backend, limit=10)
    assert [j.payload for j in claimed] == ["job-3", "job-1", "job-4", "job-0", "job-2", "job-5"]
    assert all(j.state is S.PROCESSING for j in claimed)


async def test_claim_respects_limit_and_never_hands_a_job_out_twice(backend: Backend) -> None:
    await put(backend, *(NewJob(n) for n in range(25)))
    seen: list[int] = []
    while batch := await claim(backend, limit=10):
        assert len(batch) <= 10
        seen += [j.payload for j in batch]
    assert sorted(seen) == list(range(25))


async def test_a_waiting_worker_gets_new_work_once_and_gives_back_the_rest_when_forgotten(
    backend: Backend,
) -> None:
    # A backend may hand jobs straight to a worker that claimed with wait=True and found nothing
    # (SQLite does); whatever it does, each job reaches one worker once, and jobs its claims have
    # not taken go back to the queue when it is forgotten.
    waiting = ClaimParams(["default"], "w1", 2, wait=True)
    assert await backend.claim(waiting) == []
    await put(backend, *(NewJob(n) for n in range(3)))
    taken = await backend.claim(ClaimParams(["default"], "w1", 1, wait=True))
    assert len(taken) == 1 and taken[0].worker_id == "w1"
    await backend.forget_worker("w1")
    others = await claim(backend, limit=10)
    assert sorted(j.payload for j in [*taken, *others]) == [0, 1, 2]
    assert await backend.claim(waiting) == []  # nothing is handed out twice


async def test_claim_only_from_named_queues_merging_by_priority(backend: Backend) -> None:
    await put(backend, NewJob("a-low", queue="a", priority=1), NewJob("b-high", queue="b", priority=3))
    await put(backend, NewJob("c", queue="c", priority=9), NewJob("a-mid", queue="a", priority=2))
    claimed = await claim(backend, limit=10, queues=("a", "b"))
    assert [j.payload for j in claimed] == ["b-high", "a-mid", "a-low"]
    assert [j.payload for j in await claim(backend, queues=("c",))] == ["c"]


async def test_claim_sets_lease_worker_and_attempt_times(backend: Backend, clock: FakeClock) -> None:
    (job,) = await put(backend, NewJob("x"))
    clock.advance(5)
    (claimed,) = await backend.claim(ClaimParams(["default"], "w-42", 1, lease=20))
    assert claimed.worker_id == "w-42"
    assert claimed.lease_expires_at == clock.time() + 20
    assert claimed.started_at == claimed.last_attempt == clock.time()
    assert claimed.lease_token != job.lease_token
    assert await backend.get(job.id) == claimed


async def test_each_claim_gets_a_fresh_token(backend: Backend) -> None:
    await put(backend, NewJob("x"))
    (first,) = await claim(backend)
    assert await backend.release([lease_of(first)]) == [True]
    (second,) = await claim(backend)
    assert second.lease_token != first.lease_token
    assert await backend.complete([Completion(lease_of(first))]) == [False]


# ---- delayed jobs --------------------------------------------------------------------------


async def test_delayed_job_is_scheduled_and_not_claimable_before_due(backend: Backend, clock: FakeClock) -> None:
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


async def test_run_at_in_the_past_is_pending(backend: Backend, clock: FakeClock) -> None:
    (job,) = await put(backend, NewJob("now", run_at=clock.time() - 10))
    assert job.state is S.PENDING
    assert [j.id for j in await claim(backend)] == [job.id]


# ---- completion, failure and fencing -------------------------------------------------------


async def test_complete_stores_result_and_finish_time(backend: Backend, clock: FakeClock) -> None:
    await put(backend, NewJob("x"))
    (job,) = await claim(backend)
    clock.advance(2)
    assert await backend.complete([Completion(lease_of(job), {"ok": True})]) == [True]
    done = await backend.get(job.id)
    assert done is not None
    assert done.state is S.COMPLETED and done.result == {"ok": True}
    assert done.finished_at == clock.time() and done.lease_expires_at is None and done.worker_id is None


async def test_result_must_be_json(backend: Backend) -> None:
    await put(backend, NewJob("x"))
    (job,) = await claim(backend)
    with pytest.raises(ValidationError):
        await backend.complete([Completion(lease_of(job), object())])
    assert await state_of(backend, job.id) is S.PROCESSING


async def test_stale_token_changes_nothing(backend: Backend) -> None:
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


async def test_batches_answer_each_item_in_order(backend: Backend) -> None:
    await put(backend, *(NewJob(n) for n in range(3)))
    a, b, c = await claim(backend)
    stale = Lease(b.id, b.lease_token + 1)
    assert await backend.complete([Completion(lease_of(a)), Completion(stale), Completion(lease_of(c))]) == [
        True,
        False,
        True,
    ]
    assert await state_of(backend, b.id) is S.PROCESSING


async def test_fail_with_retries_left_waits_then_runs_again(backend: Backend, clock: FakeClock) -> None:
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


async def test_fail_without_retry_dead_letters(backend: Backend, clock: FakeClock) -> None:
    await put(backend, NewJob("x", max_retries=0))
    (job,) = await claim(backend)
    assert await backend.fail([Failure(lease_of(job), "fatal", retry_delay=None)]) == [True]
    dead = await backend.get(job.id)
    assert dead is not None
    assert dead.state is S.DEAD_LETTERED and dead.retry_count == 1 and dead.error == "fatal"
    assert dead.finished_at == clock.time()
    assert await claim(backend) == []


async def test_heartbeat_extends_the_lease(backend: Backend, clock: FakeClock) -> None:
    await put(backend, NewJob("x"))
    (job,) = await claim(backend, lease=10)
    clock.advance(8)
    assert await backend.heartbeat([lease_of(job)], lease=10) == [True]
    clock.advance(8)
    assert await backend.expired_leases() == []
    assert await recover_expired(backend) == 0
    assert await backend.complete([Completion(lease_of(job))]) == [True]


async def test_release_returns_the_job_without_counting_an_attempt(backend: Backend) -> None:
    await put(backend, NewJob("x"))
    (job,) = await claim(backend)
    assert await backend.release([lease_of(job)]) == [True]
    released = await backend.get(job.id)
    assert released is not None
    assert released.state is S.PENDING and released.retry_count == 0 and released.lease_expires_at is None
    (again,) = await claim(backend)
    assert again.id == job.id and again.attempt == 1


# ---- lease expiry ----------------------------------------------------------------------------


async def test_expired_lease_is_retried_as_worker_lost(backend: Backend, clock: FakeClock) -> None:
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


async def test_expired_but_unrecovered_lease_can_still_complete(backend: Backend, clock: FakeClock) -> None:
    await put(backend, NewJob("x"))
    (job,) = await claim(backend, lease=10)
    clock.advance(11)
    assert await backend.complete([Completion(lease_of(job), 1)]) == [True]
    assert await recover_expired(backend) == 0
    assert await state_of(backend, job.id) is S.COMPLETED


async def test_a_heartbeat_after_expiry_beats_the_reaper(backend: Backend, clock: FakeClock) -> None:
    await put(backend, NewJob("x"))
    (job,) = await claim(backend, lease=10)
    clock.advance(11)
    (seen,) = await backend.expired_leases()
    assert await backend.heartbeat([lease_of(job)], lease=10) == [True]  # the worker was only slow
    reaper = Failure(Lease(seen.id, seen.lease_token), WORKER_LOST, 1.0, if_expired=True)
    assert await backend.fail([reaper]) == [False]
    assert await state_of(backend, job.id) is S.PROCESSING
    assert await backend.complete([Completion(lease_of(job), "ok")]) == [True]


async def test_recovered_jobs_reenter_a_full_queue(backend: Backend, clock: FakeClock) -> None:
    await put(backend, NewJob("a"), NewJob("b"), capacity={"default": 2})
    (job,) = await claim(backend, limit=1, lease=5)
    await put(backend, NewJob("c"), capacity={"default": 2})
    clock.advance(5)
    assert await recover_expired(backend) == 1
    stats = await backend.stats()
    assert stats.queues["default"].waiting == 3  # over capacity, and nothing was dropped
    assert await state_of(backend, job.id) is S.FAILED


# ---- idempotency -----------------------------------------------------------------------------


async def test_duplicate_key_returns_the_existing_job_with_state_and_result(backend: Backend) -> None:
    (first,) = await put(backend, NewJob("x", idempotency_key="k"))
    (job,) = await claim(backend)
    await backend.complete([Completion(lease_of(job), {"sum": 3})])
    (outcome,) = await backend.enqueue([NewJob("other", idempotency_key="k")])
    assert isinstance(outcome, Duplicate)
    assert outcome.job.id == first.id
    assert outcome.job.state is S.COMPLETED and outcome.job.result == {"sum": 3}


async def test_duplicate_inside_one_batch(backend: Backend) -> None:
    outcomes = await backend.enqueue([NewJob(1, idempotency_key="k"), NewJob(2, idempotency_key="k"), NewJob(3)])
    first, second, third = outcomes
    assert isinstance(first, Accepted) and isinstance(second, Duplicate) and isinstance(third, Accepted)
    assert second.job.id == first.job.id


async def test_the_same_job_sent_twice_is_stored_once(backend: Backend) -> None:
    job = NewJob("x")
    (first,) = await put(backend, job)
    (again,) = await backend.enqueue([job])  # a producer retrying after a lost answer
    assert isinstance(again, Duplicate) and again.job.id == first.id
    other = NewJob("y")
    outcomes = await backend.enqueue([other, NewJob("z"), other])
    assert [type(o) for o in outcomes] == [Accepted, Accepted, Duplicate]
    assert len((await backend.list_jobs(ListParams())).jobs) == 3
    assert (await backend.stats()).queues["default"].counts[S.PENDING] == 3


async def test_fifty_concurrent_enqueues_of_one_key_create_one_job(backend: Backend) -> None:
    outcomes = await asyncio.gather(*(backend.enqueue([NewJob(n, idempotency_key="same")]) for n in range(50)))
    flat = [o for (o,) in outcomes]
    accepted = [o for o in flat if isinstance(o, Accepted)]
    assert len(accepted) == 1
    assert all(isinstance(o, Duplicate) and o.job.id == accepted[0].job.id for o in flat if o is not accepted[0])
    page = await backend.list_jobs(ListParams())
    assert len(page.jobs) == 1


async def test_key_expires_after_its_ttl(backend: Backend, clock: FakeClock) -> None:
    (first,) = await put(backend, NewJob("x", idempotency_key="k", key_ttl=100))
    clock.advance(99)
    (dup,) = await backend.enqueue([NewJob("y", idempotency_key="k", key_ttl=100)])
    assert isinstance(dup, Duplicate) and dup.job.id == first.id
    clock.advance(1)
    (second,) = await put(backend, NewJob("y", idempotency_key="k", key_ttl=100))
    assert second.id != first.id
    (dup2,) = await backend.enqueue([NewJob("z", idempotency_key="k")])
    assert isinstance(dup2, Duplicate) and dup2.job.id == second.id


async def test_rejected_job_does_not_reserve_its_key(backend: Backend) -> None:
    await put(backend, NewJob("a"), capacity={"default": 1})
    (rejected,) = await backend.enqueue([NewJob("b", idempotency_key="k")], {"default": 1})
    assert rejected == Rejected("default", 1)
    (accepted,) = await backend.enqueue([NewJob("b", idempotency_key="k")], {"default": 2})
    assert isinstance(accepted, Accepted)


# ---- capacity ----------------------------------------------------------------------------------


async def test_two_hundred_concurrent_enqueues_into_capacity_one_hundred(backend: Backend) -> None:
    capacity = {"default": 100}

    async def offer(n: int) -> bool:
        (outcome,) = await backend.enqueue([NewJob(n)], capacity)
        stats = await backend.stats()
        assert stats.queues["default"].waiting <= 100
        return isinstance(outcome, Accepted)

    accepted = await asyncio.gather(*(offer(n) for n in range(200)))
    assert sum(accepted) == 100
    assert (await backend.stats()).queues["default"].waiting == 100


async def test_capacity_counts_waiting_jobs_only(backend: Backend, clock: FakeClock) -> None:
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


async def test_retries_reenter_a_full_queue(backend: Backend) -> None:
    capacity = {"default": 2}
    await put(backend, NewJob("a"), NewJob("b"), capacity=capacity)
    (job,) = await claim(backend, limit=1)
    await put(backend, NewJob("c"), capacity=capacity)
    assert await backend.fail([Failure(lease_of(job), "boom", retry_delay=1)]) == [True]
    assert (await backend.stats()).queues["default"].waiting == 3


async def test_batch_enqueue_stops_at_capacity(backend: Backend) -> None:
    outcomes = await backend.enqueue([NewJob(n) for n in range(5)], {"default": 3})
    assert [type(o) for o in outcomes] == [Accepted] * 3 + [Rejected] * 2


# ---- dead-letter queue ---------------------------------------------------------------------------


async def dead_job(backend: Backend, payload: object = "x") -> Job:
    (job,) = await put(backend, NewJob(payload, max_retries=0))
    (claimed,) = await claim(backend, limit=1)
    assert claimed.id == job.id
    await backend.fail([Failure(lease_of(claimed), "boom", None)])
    return job


async def test_replay_dead_gives_a_fresh_attempt_budget(backend: Backend) -> None:
    job = await dead_job(backend)
    replayed = await backend.replay_dead(job.id)
    assert replayed.state is S.PENDING and replayed.retry_count == 0 and replayed.finished_at is None
    (again,) = await claim(backend)
    assert again.id == job.id and again.attempt == 1


async def test_replay_into_a_full_queue_keeps_the_job_in_the_dlq(backend: Backend) -> None:
    job = await dead_job(backend)
    await put(backend, NewJob("filler"), capacity={"default": 1})
    with pytest.raises(QueueFull):
        await backend.replay_dead(job.id, capacity=1)
    assert await state_of(backend, job.id) is S.DEAD_LETTERED
    replayed = await backend.replay_dead(job.id, capacity=2)
    assert replayed.state is S.PENDING


async def test_replay_errors(backend: Backend) -> None:
    with pytest.raises(JobNotFound):
        await backend.replay_dead("no-such-job")
    (job,) = await put(backend, NewJob("x"))
    with pytest.raises(InvalidTransition):
        await backend.replay_dead(job.id)


# ---- cancel --------------------------------------------------------------------------------------


async def test_cancel_waiting_jobs(backend: Backend, clock: FakeClock) -> None:
    pending, scheduled = await put(backend, NewJob("p"), NewJob("s", delay=10))
    for job in (pending, scheduled):
        cancelled = await backend.cancel(job.id)
        assert cancelled.state is S.CANCELLED and cancelled.finished_at == clock.time()
    clock.advance(20)
    assert await claim(backend) == []


async def test_cancel_a_failed_job_awaiting_retry(backend: Backend, clock: FakeClock) -> None:
    await put(backend, NewJob("x"))
    (job,) = await claim(backend)
    await backend.fail([Failure(lease_of(job), "boom", 5)])
    assert (await backend.cancel(job.id)).state is S.CANCELLED
    clock.advance(10)
    assert await claim(backend) == []


async def test_cancel_errors(backend: Backend) -> None:
    with pytest.raises(JobNotFound):
        await backend.cancel("no-such-job")
    await put(backend, NewJob("x"))
    (job,) = await claim(backend)
    with pytest.raises(InvalidTransition):
        await backend.cancel(job.id)
    await backend.complete([Completion(lease_of(job))])
    with pytest.raises(InvalidTransition):
        await backend.cancel(job.id)


# ---- list, stats, prune ------------------------------------------------------------------------


async def test_list_filters_and_pages(backend: Backend, clock: FakeClock) -> None:
    jobs = []
    for n in range(7):
        jobs += await put(backend, NewJob(n, queue="a" if n % 2 else "b", task="t" if n < 3 else "u"))
        clock.advance(0.001)
    ids = [j.id for j in jobs]
    seen: list[str] = []
    cursor = None
    while True:
        page = await backend.list_jobs(ListParams(limit=3, cursor=cursor))
        seen += [j.id for j in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(ids)
    page = await backend.list_jobs(ListParams(queue="a"))
    assert sorted(j.payload for j in page.jobs) == [1, 3, 5]
    page = await backend.list_jobs(ListParams(task="t", queue="b"))
    assert sorted(j.payload for j in page.jobs) == [0, 2]
    await dead_job(backend, "dead")
    page = await backend.list_jobs(ListParams(state=S.DEAD_LETTERED))
    assert [j.payload for j in page.jobs] == ["dead"]
    exact = await backend.list_jobs(ListParams(queue="a", limit=3))
    assert len(exact.jobs) == 3 and exact.next_cursor is None


def test_page_limits_are_validated() -> None:
    for limit in (0, -1, 10_001):
        with pytest.raises(ValidationError):
            ListParams(limit=limit)


async def test_stats_count_by_queue_and_state(backend: Backend) -> None:
    await put(backend, NewJob(1), NewJob(2), NewJob(3, queue="other", idempotency_key="k"), NewJob(4, delay=9))
    (job,) = await claim(backend, limit=1)
    await backend.complete([Completion(lease_of(job))])
    stats = await backend.stats()
    assert set(stats.queues) == {"default", "other"}
    default = stats.queues["default"].counts
    assert (default[S.PENDING], default[S.SCHEDULED], default[S.COMPLETED], default[S.PROCESSING]) == (1, 1, 1, 0)
    assert stats.queues["other"].counts[S.PENDING] == 1
    assert stats.idempotency_keys == 1


async def test_prune_removes_old_finished_jobs_and_expired_keys(backend: Backend, clock: FakeClock) -> None:
    old_done, old_dead = await put(backend, NewJob("done", idempotency_key="k1", key_ttl=10), NewJob("dead"))
    a, b = await claim(backend, limit=2)
    await backend.complete([Completion(lease_of(a))])
    await backend.fail([Failure(lease_of(b), "x", None)])
    clock.advance(100)
    await put(backend, NewJob("waiting", idempotency_key="k2"))
    (fresh,) = await claim(backend)
    await backend.complete([Completion(lease_of(fresh))])
    cutoff = clock.time() - 50
    result = await backend.prune(PruneParams(completed_before=cutoff))
    assert (result.jobs, result.keys) == (1, 1)
    assert await backend.get(old_done.id) is None
    assert await backend.get(old_dead.id) is not None  # dead jobs are kept unless asked
    assert await backend.get(fresh.id) is not None
    result = await backend.prune(PruneParams(dead_before=cutoff))
    assert (result.jobs, result.keys) == (1, 0)
    assert await backend.get(old_dead.id) is None
    stats = await backend.stats()
    assert stats.idempotency_keys == 1
    assert stats.queues["default"].counts[S.COMPLETED] == 1
    assert stats.queues["default"].counts[S.DEAD_LETTERED] == 0


# ---- wake-ups --------------------------------------------------------------------------------------


async def test_wait_for_work_wakes_on_enqueue(backend: Backend) -> None:
    # Drain any wake-up left over from earlier operations, then wait for real.
    await backend.wait_for_work(["default"], 0.01)
    waiter = asyncio.create_task(backend.wait_for_work(["default"], 30))
    await asyncio.sleep(0)
    await put(backend, NewJob("x"))
    assert await asyncio.wait_for(waiter, 5) is True


async def test_wait_for_work_times_out_without_work(backend: Backend) -> None:
    await backend.wait_for_work(["default"], 0.01)
    assert await backend.wait_for_work(["default"], 0.05) is False
