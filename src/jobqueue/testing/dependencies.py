"""The conformance suite, part 5: jobs that wait for other jobs (``depends_on``)."""

from __future__ import annotations

import asyncio

from jobqueue.backends.base import Backend
from jobqueue.backends.params import Completion, Failure, ListParams, PruneParams
from jobqueue.clock import FakeClock
from jobqueue.job import Job, JobState, NewJob, parent_failed_error
from jobqueue.outcomes import Accepted, Duplicate, MissingParent, Rejected
from jobqueue.testing.helpers import claim, lease_of, put, state_of

S = JobState


async def run(backend: Backend, *jobs: Job, result: object = None) -> None:
    """Claim and complete ``jobs`` (and nothing else)."""
    claimed = await claim(backend, limit=100)
    assert {job.id for job in claimed} == {job.id for job in jobs}
    assert await backend.complete([Completion(lease_of(job), result) for job in claimed]) == [True] * len(claimed)


async def kill(backend: Backend, job: Job) -> None:
    """Claim ``job`` and dead-letter it."""
    (claimed,) = await claim(backend, limit=1)
    assert claimed.id == job.id
    assert await backend.fail([Failure(lease_of(claimed), "boom", None)]) == [True]


class DependencySuite:
    """Children wait BLOCKED for their parents, and parents that fail fail them."""

    async def test_a_child_waits_blocked_until_its_parents_complete(self, backend: Backend, clock: FakeClock) -> None:
        first, second = await put(backend, NewJob("a"), NewJob("b"))
        (child,) = await put(backend, NewJob("c", depends_on=[first.id, second.id]))
        assert (child.state, child.parents) == (S.BLOCKED, (first.id, second.id))
        assert await backend.children(first.id) == [child.id]
        listed = await backend.list_jobs(ListParams(state=S.BLOCKED))
        assert [job.id for job in listed.jobs] == [child.id]
        claimed = await claim(backend, limit=10)
        assert {job.id for job in claimed} == {first.id, second.id}  # never the child
        await backend.complete([Completion(lease_of(claimed[0]), 1)])
        assert await state_of(backend, child.id) is S.BLOCKED
        assert await claim(backend) == []
        clock.advance(5)
        await backend.complete([Completion(lease_of(claimed[1]), 2)])
        released = await backend.get(child.id)
        assert released is not None and released.state is S.PENDING and released.parents == (first.id, second.id)
        assert released.run_at == clock.time()  # due from its release: its wait for a worker starts then
        (started,) = await claim(backend)
        assert started.id == child.id and started.parents == (first.id, second.id)

    async def test_blocked_jobs_are_listed_counted_and_take_capacity(self, backend: Backend) -> None:
        (parent,) = await put(backend, NewJob("p"))
        (child,) = await put(backend, NewJob("c", depends_on=[parent.id]))
        stats = (await backend.stats()).queues["default"]
        assert (stats.counts[S.BLOCKED], stats.waiting) == (1, 2)
        outcomes = await backend.enqueue([NewJob("over", depends_on=[parent.id])], {"default": 2})
        assert outcomes == [Rejected("default", 2)]
        assert await backend.children(parent.id) == [child.id]

    async def test_a_parent_already_completed_counts_as_done(self, backend: Backend) -> None:
        (parent,) = await put(backend, NewJob("p"))
        await run(backend, parent)
        (child,) = await put(backend, NewJob("c", depends_on=[parent.id]))
        assert child.state is S.PENDING
        (delayed,) = await put(backend, NewJob("d", depends_on=[parent.id], delay=60))
        assert delayed.state is S.SCHEDULED

    async def test_a_parent_not_stored_stores_nothing(self, backend: Backend) -> None:
        (parent,) = await put(backend, NewJob("p"))
        orphan = NewJob("c", depends_on=[parent.id, "no-such-job"], idempotency_key="k")
        assert await backend.enqueue([orphan]) == [MissingParent("no-such-job")]
        assert await backend.get(orphan.id) is None
        assert await backend.children(parent.id) == []
        (again,) = await put(backend, NewJob("c", idempotency_key="k"))  # the key was not taken
        assert again.state is S.PENDING

    async def test_a_batch_may_name_its_own_earlier_members(self, backend: Backend) -> None:
        first = NewJob("a")
        second = NewJob("b", depends_on=[first.id])
        third = NewJob("c", depends_on=[first.id, second.id])
        stored = await put(backend, first, second, third)
        assert [job.state for job in stored] == [S.PENDING, S.BLOCKED, S.BLOCKED]
        await run(backend, stored[0])
        await run(backend, stored[1])
        await run(backend, stored[2])

    async def test_a_dead_lettered_parent_fails_its_children_and_theirs(self, backend: Backend) -> None:
        (parent,) = await put(backend, NewJob("p", max_retries=0))
        (child,) = await put(backend, NewJob("c", depends_on=[parent.id]))
        (grandchild,) = await put(backend, NewJob("g", depends_on=[child.id]))
        await kill(backend, parent)
        for job_id, cause in ((child.id, parent.id), (grandchild.id, child.id)):
            failed = await backend.get(job_id)
            assert failed is not None and failed.state is S.DEAD_LETTERED
            assert failed.error == parent_failed_error(cause, S.DEAD_LETTERED)
            assert failed.retry_count == 0 and failed.finished_at is not None
        assert (await backend.stats()).queues["default"].waiting == 0
        # Born to a dead parent: dead at once.
        (late,) = await put(backend, NewJob("l", depends_on=[parent.id]))
        assert late.state is S.DEAD_LETTERED and late.error == parent_failed_error(parent.id, S.DEAD_LETTERED)

    async def test_a_parent_retried_keeps_its_children_waiting(self, backend: Backend, clock: FakeClock) -> None:
        (parent,) = await put(backend, NewJob("p"))
        (child,) = await put(backend, NewJob("c", depends_on=[parent.id]))
        (attempt,) = await claim(backend)
        await backend.fail([Failure(lease_of(attempt), "boom", 5.0)])
        assert await state_of(backend, child.id) is S.BLOCKED
        # A stale completion from the first attempt releases nothing.
        assert await backend.complete([Completion(lease_of(attempt), None)]) == [False]
        clock.advance(5)
        await run(backend, parent)
        assert await state_of(backend, child.id) is S.PENDING

    async def test_a_child_may_run_whatever_its_parents_became(self, backend: Backend) -> None:
        dying, living = await put(backend, NewJob("d", max_retries=0), NewJob("l", priority=-1))
        (child,) = await put(backend, NewJob("c", depends_on=[dying.id, living.id], on_parent_failure="run"))
        await kill(backend, dying)
        assert await state_of(backend, child.id) is S.BLOCKED
        # The dead parent replayed and completed resolves nothing twice: the child still waits.
        await backend.replay_dead(dying.id)
        (again,) = await claim(backend, limit=1)
        assert again.id == dying.id
        await backend.complete([Completion(lease_of(again), None)])
        assert await state_of(backend, child.id) is S.BLOCKED
        await run(backend, living)
        await run(backend, child)
        (cancelled,) = await put(backend, NewJob("x"))
        await backend.cancel(cancelled.id)
        (anyway,) = await put(backend, NewJob("y", depends_on=[cancelled.id], on_parent_failure="run"))
        assert anyway.state is S.PENDING

    async def test_cancelling_fails_the_children_and_a_blocked_job_can_be_cancelled(self, backend: Backend) -> None:
        (parent,) = await put(backend, NewJob("p"))
        (child,) = await put(backend, NewJob("c", depends_on=[parent.id]))
        (grandchild,) = await put(backend, NewJob("g", depends_on=[child.id]))
        cancelled = await backend.cancel(child.id)
        assert cancelled.state is S.CANCELLED
        failed = await backend.get(grandchild.id)
        assert failed is not None and failed.state is S.DEAD_LETTERED
        assert failed.error == parent_failed_error(child.id, S.CANCELLED)
        await backend.cancel(parent.id)
        assert await claim(backend) == []

    async def test_a_released_child_due_later_waits_for_its_time(self, backend: Backend, clock: FakeClock) -> None:
        (parent,) = await put(backend, NewJob("p"))
        (child,) = await put(backend, NewJob("c", depends_on=[parent.id], delay=60))
        await run(backend, parent)
        assert await state_of(backend, child.id) is S.SCHEDULED
        clock.advance(60)
        await run(backend, child)

    async def test_a_replayed_child_runs(self, backend: Backend) -> None:
        (parent,) = await put(backend, NewJob("p", max_retries=0))
        (child,) = await put(backend, NewJob("c", depends_on=[parent.id]))
        await kill(backend, parent)
        replayed = await backend.replay_dead(child.id)
        assert replayed.state is S.PENDING
        await run(backend, replayed)

    async def test_a_release_wakes_a_waiting_worker(self, backend: Backend) -> None:
        (parent,) = await put(backend, NewJob("p"))
        await put(backend, NewJob("c", depends_on=[parent.id]))
        (attempt,) = await claim(backend)
        await backend.wait_for_work(["default"], 0.01)  # drain any earlier wake-up
        waiter = asyncio.create_task(backend.wait_for_work(["default"], 30))
        await asyncio.sleep(0)
        await backend.complete([Completion(lease_of(attempt), None)])
        assert await asyncio.wait_for(waiter, 5) is True

    async def test_a_child_enqueued_as_its_parent_completes_is_never_stranded(self, backend: Backend) -> None:
        parents = await put(backend, *(NewJob(n) for n in range(20)))
        claimed = await claim(backend, limit=20)

        async def child_of(parent: Job) -> Job:
            (outcome,) = await backend.enqueue([NewJob("c", depends_on=[parent.id], priority=-1)])
            assert isinstance(outcome, Accepted)
            return outcome.job

        children = await asyncio.gather(
            *(child_of(parent) for parent in parents),
            *(backend.complete([Completion(lease_of(job), None)]) for job in claimed),
        )
        for child in children[: len(parents)]:
            assert isinstance(child, Job)
            assert await state_of(backend, child.id) is S.PENDING

    async def test_a_fan_in_is_released_by_its_last_parent(self, backend: Backend) -> None:
        parents = await put(backend, *(NewJob(n) for n in range(1000)))
        (child,) = await put(backend, NewJob("fan-in", depends_on=[job.id for job in parents], priority=-1))
        assert len(await backend.children(parents[0].id)) == 1
        for _ in range(10):
            batch = await claim(backend, limit=100)
            assert child.id not in {job.id for job in batch}
            await backend.complete([Completion(lease_of(job), job.payload) for job in batch])
        (last,) = await claim(backend)
        assert last.id == child.id and len(last.parents) == 1000
        results = await backend.get_many([*last.parents[:3], "no-such-job"])
        assert [None if job is None else job.result for job in results] == [0, 1, 2, None]

    async def test_pruning_a_child_forgets_it(self, backend: Backend, clock: FakeClock) -> None:
        (parent,) = await put(backend, NewJob("p"))
        (child,) = await put(backend, NewJob("c", depends_on=[parent.id]))
        await run(backend, parent)
        await run(backend, child)
        clock.advance(10)
        await backend.prune(PruneParams(completed_before=clock.time()))
        assert await backend.children(parent.id) == []
        assert await backend.get_many([parent.id, child.id]) == [None, None]

    async def test_a_pruned_parent_lists_no_children_and_its_child_keeps_naming_it(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        (parent,) = await put(backend, NewJob("p"))
        (child,) = await put(backend, NewJob("c", depends_on=[parent.id]))
        await run(backend, parent)
        clock.advance(10)
        await run(backend, child)
        await backend.prune(PruneParams(completed_before=clock.time() - 5))
        assert await backend.children(parent.id) == []
        kept = await backend.get(child.id)
        assert kept is not None and kept.parents == (parent.id,)

    async def test_a_job_stored_under_a_pruned_childs_id_is_not_that_child(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        first, second = await put(backend, NewJob("b", priority=5), NewJob("d"))
        (child,) = await put(backend, NewJob("c", depends_on=[first.id], id="my-child"))
        await backend.cancel(child.id)
        clock.advance(10)
        await backend.prune(PruneParams(cancelled_before=clock.time()))
        (again,) = await put(backend, NewJob("c", depends_on=[first.id, second.id], id="my-child"))
        (claimed,) = await claim(backend, limit=1)
        assert claimed.id == first.id
        await backend.complete([Completion(lease_of(claimed), None)])  # one edge of the new job, once
        assert await state_of(backend, again.id) is S.BLOCKED

    async def test_a_child_sent_again_after_its_parent_was_pruned_is_a_duplicate(
        self, backend: Backend, clock: FakeClock
    ) -> None:
        (parent,) = await put(backend, NewJob("p"))
        child = NewJob("c", depends_on=[parent.id])
        await put(backend, child)
        await run(backend, parent)
        clock.advance(10)
        await backend.prune(PruneParams(completed_before=clock.time() - 5))
        (again,) = await backend.enqueue([child])  # a retry after a lost answer
        assert isinstance(again, Duplicate) and again.job.id == child.id
