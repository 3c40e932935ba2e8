"""The conformance suite, part 7: rate and concurrency limits, kept in the store for every claim."""

from __future__ import annotations

import asyncio

from jobqueue.backends.base import Backend
from jobqueue.backends.params import ClaimParams, Completion, Failure, Lease
from jobqueue.clock import FakeClock
from jobqueue.job import JobState, NewJob
from jobqueue.limits import QueueLimits, Rate
from jobqueue.testing.helpers import claim, lease_of, put, state_of

S = JobState
MAIL = ("mail",)


def mail(payload: object = "m", **fields: object) -> NewJob:
    return NewJob(payload, queue="mail", **fields)  # type: ignore[arg-type]


async def ids(backend: Backend, limit: int = 10, queues: tuple[str, ...] = MAIL) -> list[str]:
    return [job.id for job in await claim(backend, limit=limit, queues=queues)]


class LimitSuite:
    """Rate and concurrency limits bound every claim, alone or side by side."""

    async def test_limits_are_stored_and_cleared(self, backend: Backend) -> None:
        limits = QueueLimits.of("1000/h", 3, burst=10, key_rate="5/10s", key_concurrency=1)
        assert await backend.queue_limits() == {}
        assert await backend.set_queue_limits("mail", limits) == limits
        assert await backend.set_queue_limits("alpha", QueueLimits(concurrency=2)) == QueueLimits(concurrency=2)
        assert await backend.queue_limits() == {"alpha": QueueLimits(concurrency=2), "mail": limits}
        assert (await backend.queue_limits())["mail"].rate == Rate(1000, 3600.0, 10)
        assert await backend.set_queue_limits("mail", QueueLimits()) == QueueLimits()
        assert await backend.queue_limits() == {"alpha": QueueLimits(concurrency=2)}

    async def test_configured_limits_do_not_undo_a_change_made_at_run_time(self, backend: Backend) -> None:
        code, by_hand, new_code = QueueLimits(concurrency=2), QueueLimits(concurrency=5), QueueLimits(concurrency=3)
        assert await backend.set_queue_limits("mail", code, configured=True) == code
        assert await backend.set_queue_limits("mail", by_hand) == by_hand
        # A restart with the same code keeps the operator's change...
        assert await backend.set_queue_limits("mail", code, configured=True) == by_hand
        assert await backend.queue_limits() == {"mail": by_hand}
        # ...and a deploy with new limits in code wins.
        assert await backend.set_queue_limits("mail", new_code, configured=True) == new_code
        assert await backend.set_queue_limits("mail", QueueLimits(), configured=True) == QueueLimits()
        assert await backend.queue_limits() == {}

    async def test_a_concurrency_limit_caps_running_jobs_and_every_exit_frees_a_slot(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        await backend.set_queue_limits("mail", QueueLimits(concurrency=2))
        await put(backend, *(mail(n) for n in range(8)))
        first, second = await claim(backend, queues=MAIL)
        assert await ids(backend) == []
        await backend.complete([Completion(lease_of(first))])
        (third,) = await claim(backend, queues=MAIL)
        await backend.fail([Failure(lease_of(second), "boom", retry_delay=60)])
        (fourth,) = await claim(backend, queues=MAIL)
        await backend.release([lease_of(third)])
        (fifth,) = await claim(backend, queues=MAIL)
        await backend.cancel(fourth.id)
        (sixth,) = await claim(backend, queues=MAIL, lease=1)
        assert await ids(backend) == []
        clock.advance(2)  # the lease of sixth expires and the reaper takes it back
        (expired,) = [job for job in await backend.expired_leases() if job.id == sixth.id]
        assert await backend.fail([Failure(lease_of(expired), "lease expired", 60, if_expired=True)]) == [True]
        assert len(await ids(backend)) == 1
        assert await state_of(backend, fifth.id) is S.PROCESSING

    async def test_a_limit_lowered_below_what_runs_stops_claims_until_enough_finish(self, backend: Backend) -> None:
        await put(backend, *(mail(n) for n in range(6)))
        running = await claim(backend, limit=3, queues=MAIL)
        await backend.set_queue_limits("mail", QueueLimits(concurrency=2))
        assert await ids(backend) == []
        await backend.complete([Completion(lease_of(running[0]))])
        assert await ids(backend) == []
        await backend.complete([Completion(lease_of(running[1]))])
        assert len(await ids(backend)) == 1

    async def test_concurrent_claims_never_exceed_the_limit_together(self, backend: Backend) -> None:
        await backend.set_queue_limits("mail", QueueLimits(concurrency=3, rate=Rate.parse("5/s")))
        await put(backend, *(mail(n) for n in range(30)))
        batches = await asyncio.gather(
            *(backend.claim(ClaimParams(MAIL, f"worker-{n}", 2)) for n in range(8)), return_exceptions=True
        )
        claimed = [job for batch in batches if isinstance(batch, list) for job in batch]
        assert not [b for b in batches if isinstance(b, BaseException)]
        assert len(claimed) == 3

    async def test_a_key_at_its_limit_is_skipped_and_other_keys_run(self, backend: Backend) -> None:
        await backend.set_queue_limits("mail", QueueLimits(key_concurrency=1))
        a1, a2, b1, free, a3 = await put(
            backend,
            mail(1, rate_key="a", priority=5),
            mail(2, rate_key="a", priority=5),
            mail(3, rate_key="b"),
            mail(4),
            mail(5, rate_key="a"),
        )
        claimed = await claim(backend, queues=MAIL)
        assert [job.id for job in claimed] == [a1.id, b1.id, free.id]
        assert claimed[0].rate_key == "a" and claimed[2].rate_key is None
        held = await backend.get(a2.id)
        assert held is not None and held.state is S.PENDING and held.retry_count == 0 and held.rate_key == "a"
        assert await ids(backend) == []
        await backend.complete([Completion(lease_of(claimed[0]))])
        assert await ids(backend) == [a2.id]
        assert await state_of(backend, a3.id) is S.PENDING

    async def test_a_key_behind_a_long_run_of_a_full_key_is_still_claimed(self, backend: Backend) -> None:
        # One tenant's backlog at the head of the queue must not hide the others' jobs from a claim.
        await backend.set_queue_limits("mail", QueueLimits(key_concurrency=1, key_rate=Rate.parse("1000/s")))
        for start in range(0, 1500, 500):
            await put(backend, *(mail(n, rate_key="big") for n in range(start, start + 500)))
        small = await put(backend, mail("s1", rate_key="small"), mail("s2", rate_key="other"), mail("free"))
        first = await claim(backend, queues=MAIL, limit=3)
        assert [job.rate_key for job in first] == ["big", "small", "other"]
        assert [job.id for job in await claim(backend, queues=MAIL, limit=3)] == [small[2].id]

    async def test_a_rate_spends_a_token_per_job_and_refills_evenly(self, backend: Backend, clock: FakeClock) -> None:
        await backend.set_queue_limits("mail", QueueLimits(rate=Rate.parse("2/s")))  # burst 2
        await put(backend, *(mail(n) for n in range(6)))
        assert len(await ids(backend)) == 2
        assert await ids(backend) == []
        clock.advance(0.5)
        (one,) = await claim(backend, queues=MAIL)
        clock.advance(0.25)
        assert await ids(backend) == []
        # A failed job gives no token back, and its retry waits for one like any job.
        await backend.fail([Failure(lease_of(one), "boom", retry_delay=0)])
        clock.advance(0.25)
        assert len(await ids(backend)) == 1
        clock.advance(10)  # a full bucket holds the burst, no more
        assert len(await ids(backend)) == 2

    async def test_a_key_rate_holds_each_key_to_its_own_bucket(self, backend: Backend, clock: FakeClock) -> None:
        await backend.set_queue_limits("mail", QueueLimits(key_rate=Rate.parse("1/s")))
        a1, a2, b1, free1, free2 = await put(
            backend, mail(1, rate_key="a"), mail(2, rate_key="a"), mail(3, rate_key="b"), mail(4), mail(5)
        )
        assert await ids(backend) == [a1.id, b1.id, free1.id, free2.id]
        assert await ids(backend) == []
        clock.advance(1)
        assert await ids(backend) == [a2.id]

    async def test_queue_and_key_limits_hold_together_and_other_queues_are_free(self, backend: Backend) -> None:
        await backend.set_queue_limits("mail", QueueLimits(concurrency=2, key_concurrency=1))
        await put(backend, mail(1, rate_key="a"), mail(2, rate_key="a"), mail(3, rate_key="b"), mail(4))
        await put(backend, *(NewJob(n) for n in range(3)))
        claimed = await claim(backend, limit=10, queues=("mail", "default"))
        assert sorted(job.queue for job in claimed) == ["default"] * 3 + ["mail"] * 2
        assert {job.rate_key for job in claimed if job.queue == "mail"} == {"a", "b"}

    async def test_a_wait_ends_when_the_next_token_comes(self, backend: Backend, clock: FakeClock) -> None:
        await backend.set_queue_limits("mail", QueueLimits(rate=Rate(1, 0.2, 1)))
        await put(backend, mail(1), mail(2))
        assert len(await ids(backend)) == 1
        await _wait_until_token(backend, 0.2)
        clock.advance(0.2)
        assert len(await ids(backend)) == 1

    async def test_a_wait_ends_when_a_key_gets_its_next_token(self, backend: Backend, clock: FakeClock) -> None:
        await backend.set_queue_limits("mail", QueueLimits(key_rate=Rate(1, 0.2, 1)))
        await put(backend, mail(1, rate_key="a"), mail(2, rate_key="a"))
        assert len(await ids(backend)) == 1
        await _wait_until_token(backend, 0.2)
        clock.advance(0.2)
        assert len(await ids(backend)) == 1

    async def test_a_freed_slot_wakes_a_waiting_worker(self, backend: Backend) -> None:
        await backend.set_queue_limits("mail", QueueLimits(concurrency=1))
        await put(backend, mail(1), mail(2))
        (running,) = await claim(backend, queues=MAIL)
        await backend.wait_for_work(["mail"], 0.01)  # drain any earlier wake-up
        waiter = asyncio.create_task(backend.wait_for_work(["mail"], 30))
        await asyncio.sleep(0)
        await backend.complete([Completion(lease_of(running))])
        assert await asyncio.wait_for(waiter, 5) is True
        assert len(await ids(backend)) == 1

    async def test_jobs_held_back_for_a_slot_do_not_end_a_wait(self, backend: Backend) -> None:
        await backend.set_queue_limits("mail", QueueLimits(concurrency=1))
        await put(backend, mail(1), mail(2))
        await claim(backend, queues=MAIL)
        await backend.wait_for_work(["mail"], 0.01)
        # Waiting jobs held back by a slot are not work until it frees: the wait lasts.
        assert await backend.wait_for_work(["mail"], 0.05) is False

    async def test_due_jobs_held_back_by_a_key_do_not_end_a_wait(self, backend: Backend, clock: FakeClock) -> None:
        # A tenant's delayed job and its retry come due while the tenant is at its limit: the
        # worker must wait for the slot, not spin on jobs that are due but held back.
        await backend.set_queue_limits("mail", QueueLimits(key_concurrency=1))
        await put(backend, mail(1, rate_key="a"), mail(2, rate_key="a"), mail(3, rate_key="a", delay=1))
        assert len(await ids(backend)) == 1
        clock.advance(2)
        assert await ids(backend) == []
        await backend.wait_for_work(["mail"], 0.01)
        assert await backend.wait_for_work(["mail"], 0.05) is False


class RunningJobSuite:
    """A running job cancelled, a lease checked, finished jobs deleted."""

    async def test_a_running_job_is_cancelled_and_its_worker_is_fenced(self, backend: Backend) -> None:
        (job,) = await put(backend, NewJob("x", max_retries=5))
        (running,) = await claim(backend)
        assert await backend.check_leases([lease_of(running)]) == [True]
        cancelled = await backend.cancel(job.id)
        assert cancelled.state is S.CANCELLED and cancelled.finished_at is not None
        assert cancelled.worker_id is None and cancelled.lease_expires_at is None
        lease = lease_of(running)
        assert await backend.check_leases([lease]) == [False]
        assert await backend.heartbeat([lease]) == [False]
        assert await backend.complete([Completion(lease, "late")]) == [False]
        assert await backend.fail([Failure(lease, "late", retry_delay=0)]) == [False]
        assert await backend.release([lease]) == [False]
        assert await claim(backend) == []
        assert await backend.expired_leases() == []
        stored = await backend.get(job.id)
        assert stored is not None and stored.state is S.CANCELLED and stored.result is None
        stats = await backend.stats()
        assert stats.queues["default"].counts[S.CANCELLED] == 1
        assert stats.queues["default"].counts[S.PROCESSING] == 0

    async def test_cancelling_a_running_parent_resolves_its_children(self, backend: Backend) -> None:
        (parent,) = await put(backend, NewJob("p"))
        child, anyway = await put(
            backend, NewJob("c", depends_on=[parent.id]), NewJob("r", depends_on=[parent.id], on_parent_failure="run")
        )
        await claim(backend, limit=1)
        await backend.cancel(parent.id)
        assert await state_of(backend, child.id) is S.DEAD_LETTERED
        assert await state_of(backend, anyway.id) is S.PENDING

    async def test_check_leases_answers_for_each_lease(self, backend: Backend, clock: FakeClock) -> None:
        await put(backend, NewJob(1), NewJob(2))
        first, second = await claim(backend, lease=1)
        await backend.complete([Completion(lease_of(first))])
        clock.advance(2)
        (expired,) = await backend.expired_leases()
        await backend.fail([Failure(lease_of(expired), "lease expired", 0, if_expired=True)])
        (again,) = await claim(backend)
        assert again.id == second.id
        leases = [lease_of(first), lease_of(second), lease_of(again), Lease("no-such-job", 1)]
        assert await backend.check_leases(leases) == [False, False, True, False]

    async def test_a_finished_job_is_deleted_and_no_other(self, backend: Backend) -> None:
        done, dead, gone, waiting, running = await put(
            backend, NewJob(1), NewJob(2, max_retries=0), NewJob(3), NewJob(4, priority=-1), NewJob(5, priority=-1)
        )
        first, second, third = await claim(backend, limit=3)
        await backend.complete([Completion(lease_of(first))])
        await backend.fail([Failure(lease_of(second), "boom", None)])
        await backend.release([lease_of(third)])
        await backend.cancel(gone.id)
        await claim(backend, limit=1)  # waiting or running, whichever comes first: neither deletable
        asked = [done.id, dead.id, gone.id, waiting.id, running.id, "no-such-job", done.id]
        assert await backend.delete(asked) == [True, True, True, False, False, False, True]
        assert await backend.get_many([done.id, dead.id, gone.id]) == [None, None, None]
        counts = (await backend.stats()).queues["default"].counts
        assert counts[S.COMPLETED] == counts[S.DEAD_LETTERED] == counts[S.CANCELLED] == 0
        assert counts[S.PENDING] + counts[S.PROCESSING] == 2
        assert await backend.delete([done.id]) == [False]

    async def test_a_deleted_job_frees_its_key_and_leaves_its_children(self, backend: Backend) -> None:
        (parent,) = await put(backend, NewJob("p", idempotency_key="k"))
        (child,) = await put(backend, NewJob("c", depends_on=[parent.id]))
        (running,) = await claim(backend)
        await backend.complete([Completion(lease_of(running))])
        assert await backend.delete([parent.id]) == [True]
        assert await backend.children(parent.id) == []
        assert await state_of(backend, child.id) is S.PENDING
        (again,) = await put(backend, NewJob("p2", idempotency_key="k"))
        assert again.id != parent.id


async def _wait_until_token(backend: Backend, due_in: float) -> None:
    """Wait for work as an idle worker would, with a poll far longer than ``due_in``: each wait
    must end by the time the next token comes (the fake clock stands still)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() < started + due_in:  # a spurious wake-up is allowed: wait again
        await asyncio.wait_for(backend.wait_for_work(["mail"], 30), 10 * due_in)
